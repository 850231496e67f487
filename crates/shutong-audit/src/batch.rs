//! Group commit for events that belong to no state change of their own: the data plane's access log writes
//! thousands at a time, and chains them as it writes them. Each backend's own fast path — one prepared
//! insert per event in one SQLite transaction on a native connection, `COPY … FROM STDIN` on PostgreSQL —
//! on a connection the writer keeps, in a transaction that holds the lock on `audit_chain_head` (as the
//! sealer does): each event gets the next chain position and `h_i` before it is inserted, so it is written
//! once and never updated. The sealer then only signs checkpoints over them (and chains events written
//! by state changes, which are written in their own transactions without the lock). Events that belong to
//! a state change are written by [`crate::record`] in that change's transaction.

use std::sync::Arc;

use shutong_store::{Backend, Db, StoreError, StoreResult, binary};

use crate::StampedEvent;
use crate::chain::{EventRef, SealedEvent};
use crate::seal::{LOCK_HEAD, MOVE_HEAD, READ_HEAD, head_hash};

/// The most events a group commit writes in one transaction. On SQLite, the auditors' index by target
/// (resource) takes its inserts at as many places as there are distinct targets in a group, and each
/// place costs a page written to the WAL at every commit: bigger groups share those pages among more
/// events (`shutong-bench audit`: 4,096 → 16,384 events per group raised SQLite's append rate by about a
/// quarter; PostgreSQL's COPY was unchanged). At 100,000 events/s a full group is 0.16 s of traffic.
pub const GROUP_COMMIT_EVENTS: usize = 16_384;

const COLUMNS: &str =
    "seq, at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip, chain_seq, chain_hash";

/// Chains one event after `h`: its link, written into `hex` as the stored 64 hex digits.
fn link(h: &mut [u8; 32], ev: EventRef<'_>, buf: &mut Vec<u8>, hex_out: &mut [u8; 64]) {
    buf.clear();
    ev.encode(buf);
    *h = shutong_crypto::sm3_chain(h, buf);
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(*h, hex_out);
}

fn corrupt(why: String) -> StoreError {
    StoreError::Other(sqlx::Error::Protocol(why))
}

/// An event to be stored with its chain position and `seq`, which are given out when it is written.
fn at(ev: &SealedEvent, chain_seq: i64, seq: i64) -> EventRef<'_> {
    EventRef { chain_seq, seq, ..ev.as_ref() }
}

/// Events converted to their stored form (the details' JSON as text; positions not given out yet), ready for
/// [`BatchWriter::write_prepared`] and for its retries. Preparing is the writer's CPU work outside the
/// database: the access log prepares the next group while the previous one is written.
#[derive(Clone, Default)]
pub struct PreparedEvents(Arc<Vec<SealedEvent>>);

impl std::fmt::Debug for PreparedEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedEvents").field("events", &self.0.len()).finish()
    }
}

impl PreparedEvents {
    pub fn new(events: &[StampedEvent<'_>]) -> Self {
        PreparedEvents(Arc::new(
            events
                .iter()
                .map(|StampedEvent { at_ms, ctx, event: e }| SealedEvent {
                    chain_seq: 0,
                    seq: 0,
                    at_ms: *at_ms,
                    actor_user_id: ctx.actor_user_id,
                    actor: ctx.actor.clone(),
                    department_id: e.department_id,
                    action: e.action.to_string(),
                    target_kind: e.target_kind.to_string(),
                    target_id: e.target_id.clone(),
                    detail: e.detail.to_string(),
                    request_id: ctx.request_id.clone(),
                    ip: ctx.ip.clone(),
                })
                .collect(),
        ))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A long-lived writer of event batches (one per process: the access log's).
pub struct BatchWriter {
    db: Db,
    pg: Option<sqlx::PgConnection>,
    lite: Option<rusqlite::Connection>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter").field("backend", &self.db.backend()).finish_non_exhaustive()
    }
}

fn lite_error(e: rusqlite::Error) -> StoreError {
    StoreError::Other(sqlx::Error::Io(std::io::Error::other(e)))
}

impl BatchWriter {
    pub fn new(db: Db) -> Self {
        BatchWriter { db, pg: None, lite: None }
    }

    /// Writes the events in one transaction, chained. On an error nothing was written and the connection is
    /// dropped (the next call opens a new one): the caller retries.
    pub async fn write(&mut self, events: &[StampedEvent<'_>]) -> StoreResult<()> {
        self.write_prepared(&PreparedEvents::new(events)).await
    }

    /// [`BatchWriter::write`] for events prepared beforehand.
    pub async fn write_prepared(&mut self, events: &PreparedEvents) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let result = match self.db.backend() {
            Backend::Postgres => self.write_pg(&events.0).await,
            Backend::Sqlite if self.db.sqlite_path().is_some() => self.write_lite(events.0.clone()).await,
            // A database without a file (in memory, tests): through the pool, left to the sealer to chain.
            Backend::Sqlite => {
                let mut tx = self.db.pool().begin().await?;
                for r in events.0.iter() {
                    sqlx::query(
                        "INSERT INTO audit_events (at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(r.at_ms)
                    .bind(r.actor_user_id)
                    .bind(&r.actor)
                    .bind(r.department_id)
                    .bind(&r.action)
                    .bind(&r.target_kind)
                    .bind(&r.target_id)
                    .bind(&r.detail)
                    .bind(&r.request_id)
                    .bind(&r.ip)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await.map_err(StoreError::from)
            }
        };
        if result.is_err() {
            self.pg = None;
            self.lite = None;
        }
        result
    }

    async fn write_pg(&mut self, rows: &[SealedEvent]) -> StoreResult<()> {
        use sqlx::{Connection, Row as _};
        if self.pg.is_none() {
            self.pg = self.db.pg_connection().await?;
        }
        let conn = self.pg.as_mut().ok_or_else(|| StoreError::Other(sqlx::Error::PoolClosed))?;
        let mut tx = conn.begin().await?;
        sqlx::query(LOCK_HEAD).execute(&mut *tx).await?;
        let head = sqlx::query(READ_HEAD).fetch_one(&mut *tx).await?;
        let mut n: i64 = head.try_get(0)?;
        let mut h = head_hash(&head.try_get::<String, _>(1)?).map_err(corrupt)?;
        // The events' own numbers, reserved now: the canonical encoding covers them.
        let mut seqs: Vec<i64> =
            sqlx::query_scalar("SELECT array_agg(nextval(pg_get_serial_sequence('audit_events', 'seq'))) FROM generate_series(1, $1)")
                .bind(i64::try_from(rows.len()).unwrap_or(i64::MAX))
                .fetch_one(&mut *tx)
                .await?;
        seqs.sort_unstable();
        // Binary COPY: the server takes integers and text as they are, without parsing or unescaping.
        let mut copy =
            shutong_store::native::CopyIn::begin(&mut tx, "audit_events", &COLUMNS.split(", ").collect::<Vec<_>>(), false).await?;
        // Sent in parts, so that the server inserts while the next part is chained.
        let (mut enc, mut hex_out) = (Vec::with_capacity(512), [0u8; 64]);
        for (part, seqs) in rows.chunks(1024).zip(seqs.chunks(1024)) {
            for (row, &seq) in part.iter().zip(seqs) {
                n += 1;
                link(&mut h, at(row, n, seq), &mut enc, &mut hex_out);
                let buf = copy.row();
                binary::int8(buf, Some(seq));
                binary::int8(buf, Some(row.at_ms));
                binary::int8(buf, row.actor_user_id);
                binary::text(buf, Some(row.actor.as_bytes()));
                binary::int8(buf, row.department_id);
                binary::text(buf, Some(row.action.as_bytes()));
                binary::text(buf, Some(row.target_kind.as_bytes()));
                binary::text(buf, Some(row.target_id.as_bytes()));
                binary::text(buf, Some(row.detail.as_bytes()));
                binary::text(buf, row.request_id.as_deref().map(str::as_bytes));
                binary::text(buf, row.ip.as_deref().map(str::as_bytes));
                binary::int8(buf, Some(n));
                binary::text(buf, Some(&hex_out));
            }
            if let Err(e) = copy.send().await {
                copy.abort(&e.to_string()).await;
                return Err(e.into());
            }
        }
        copy.finish().await?;
        sqlx::query(MOVE_HEAD).bind(n).bind(hex::encode(h)).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn write_lite(&mut self, rows: Arc<Vec<SealedEvent>>) -> StoreResult<()> {
        let path = self.db.sqlite_path().ok_or_else(|| StoreError::Other(sqlx::Error::PoolClosed))?.to_path_buf();
        let conn = self.lite.take();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            // The b-trees of the events and their indexes stay in memory between batches.
            let open = || shutong_store::native::sqlite_writer(&path, Some(65_536));
            let mut conn = match conn.map_or_else(open, Ok) {
                Ok(c) => c,
                Err(e) => return (None, Err(lite_error(e))),
            };
            let run = |conn: &mut rusqlite::Connection| -> StoreResult<()> {
                // IMMEDIATE: the write lock first, so the chain head read below is the one this
                // transaction extends (the sealer's transactions take the same lock).
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(lite_error)?;
                let (mut n, stored): (i64, String) = tx.query_row(READ_HEAD, [], |r| Ok((r.get(0)?, r.get(1)?))).map_err(lite_error)?;
                let mut h = head_hash(&stored).map_err(corrupt)?;
                // AUTOINCREMENT's counter: numbers of removed (archived) events are never given again.
                let seq: i64 = tx
                    .query_row(
                        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'), 0), \
                         COALESCE((SELECT MAX(seq) FROM audit_events), 0))",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(lite_error)?;
                // The links are computed on a thread of their own, a part ahead of the inserts.
                let h = std::thread::scope(|scope| -> StoreResult<[u8; 32]> {
                    let (links_tx, links_rx) = std::sync::mpsc::sync_channel::<Vec<(i64, i64, [u8; 64])>>(16);
                    let (seq0, n0, rows) = (seq, n, &rows);
                    let hasher = scope.spawn(move || {
                        let (mut seq, mut n, mut enc, mut hex_out) = (seq0, n0, Vec::with_capacity(512), [0u8; 64]);
                        for part in rows.chunks(1024) {
                            let mut out = Vec::with_capacity(part.len());
                            for row in part {
                                seq += 1;
                                n += 1;
                                link(&mut h, at(row, n, seq), &mut enc, &mut hex_out);
                                out.push((seq, n, hex_out));
                            }
                            if links_tx.send(out).is_err() {
                                break;
                            }
                        }
                        h
                    });
                    let mut stmt = tx
                        .prepare_cached(&format!(
                            "INSERT INTO audit_events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                        ))
                        .map_err(lite_error)?;
                    for part in rows.chunks(1024) {
                        let links = links_rx.recv().map_err(|_| corrupt("the audit link thread stopped".into()))?;
                        for (row, (seq, n, hash)) in part.iter().zip(&links) {
                            stmt.execute(rusqlite::params![
                                seq,
                                row.at_ms,
                                row.actor_user_id,
                                row.actor,
                                row.department_id,
                                row.action,
                                row.target_kind,
                                row.target_id,
                                row.detail,
                                row.request_id,
                                row.ip,
                                n,
                                std::str::from_utf8(hash).unwrap_or_default()
                            ])
                            .map_err(lite_error)?;
                        }
                    }
                    drop(links_rx);
                    hasher.join().map_err(|_| corrupt("the audit link thread failed".into()))
                })?;
                n += i64::try_from(rows.len()).unwrap_or(i64::MAX);
                tx.execute(MOVE_HEAD, rusqlite::params![n, hex::encode(h)]).map_err(lite_error)?;
                tx.commit().map_err(lite_error)
            };
            let result = run(&mut conn);
            (Some(conn), result)
        })
        .await
        .map_err(|e| StoreError::Other(sqlx::Error::Io(std::io::Error::other(e))))?;
        self.lite = conn;
        result
    }
}

//! Group commit for events that belong to no state change of their own: the data plane's access log writes
//! thousands at a time. Each backend's own fast path — one prepared insert per event in one SQLite
//! transaction on a native connection, `COPY … FROM STDIN` on PostgreSQL — on a connection the writer keeps.
//! Events that belong to a state change are written by [`crate::record`] in that change's transaction.

use shutong_store::{Backend, Db, StoreError, StoreResult};

use crate::StampedEvent;

/// The most events a group commit writes in one transaction. On SQLite, the auditors' index by target
/// (resource) takes its inserts at as many places as there are distinct targets in a group, and each
/// place costs a page written to the WAL at every commit: bigger groups share those pages among more
/// events (`shutong-bench audit`: 4,096 → 16,384 events per group raised SQLite's append rate by about a
/// quarter; PostgreSQL's COPY was unchanged). At 100,000 events/s a full group is 0.16 s of traffic.
pub const GROUP_COMMIT_EVENTS: usize = 16_384;

const COLUMNS: &str = "at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip";

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

    /// Writes the events in one transaction. On an error nothing was written and the connection is dropped
    /// (the next call opens a new one): the caller retries.
    pub async fn write(&mut self, events: &[StampedEvent<'_>]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let rows: Vec<[Option<String>; 10]> = events
            .iter()
            .map(|StampedEvent { at_ms, ctx, event: e }| {
                [
                    Some(at_ms.to_string()),
                    ctx.actor_user_id.map(|v| v.to_string()),
                    Some(ctx.actor.clone()),
                    e.department_id.map(|v| v.to_string()),
                    Some(e.action.to_string()),
                    Some(e.target_kind.to_string()),
                    Some(e.target_id.clone()),
                    Some(e.detail.to_string()),
                    ctx.request_id.clone(),
                    ctx.ip.clone(),
                ]
            })
            .collect();
        let result = match self.db.backend() {
            Backend::Postgres => self.write_pg(&rows).await,
            Backend::Sqlite if self.db.sqlite_path().is_some() => self.write_lite(rows).await,
            // A database without a file (in memory): through the pool.
            Backend::Sqlite => {
                let mut tx = self.db.pool().begin().await?;
                crate::record_stamped(&mut tx, events).await?;
                tx.commit().await.map_err(StoreError::from)
            }
        };
        if result.is_err() {
            self.pg = None;
            self.lite = None;
        }
        result
    }

    async fn write_pg(&mut self, rows: &[[Option<String>; 10]]) -> StoreResult<()> {
        if self.pg.is_none() {
            self.pg = self.db.pg_connection().await?;
        }
        let conn = self.pg.as_mut().ok_or_else(|| StoreError::Other(sqlx::Error::PoolClosed))?;
        let mut buf = Vec::with_capacity(rows.len() * 320);
        for row in rows {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    buf.push(b'\t');
                }
                shutong_store::copy_text_field(&mut buf, v.as_deref());
            }
            buf.push(b'\n');
        }
        // COPY is one statement: it commits on its own, all rows or none.
        let mut copy = conn.copy_in_raw(&format!("COPY audit_events ({COLUMNS}) FROM STDIN")).await?;
        if let Err(e) = copy.send(buf).await {
            let _ = copy.abort(e.to_string()).await;
            return Err(e.into());
        }
        copy.finish().await?;
        Ok(())
    }

    async fn write_lite(&mut self, rows: Vec<[Option<String>; 10]>) -> StoreResult<()> {
        let path = self.db.sqlite_path().ok_or_else(|| StoreError::Other(sqlx::Error::PoolClosed))?.to_path_buf();
        let conn = self.lite.take();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let open = || -> rusqlite::Result<rusqlite::Connection> {
                let c = rusqlite::Connection::open(&path)?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c.pragma_update(None, "synchronous", "NORMAL")?;
                // The b-trees of the events and their four indexes stay in memory between batches.
                c.pragma_update(None, "cache_size", -65_536)?;
                Ok(c)
            };
            let mut conn = match conn.map_or_else(open, Ok) {
                Ok(c) => c,
                Err(e) => return (None, Err(e)),
            };
            let run = |conn: &mut rusqlite::Connection| -> rusqlite::Result<()> {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                {
                    let mut stmt = tx.prepare_cached(&format!(
                        "INSERT INTO audit_events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ))?;
                    for row in &rows {
                        let int = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<i64>().ok());
                        stmt.execute(rusqlite::params![
                            int(&row[0]),
                            int(&row[1]),
                            row[2],
                            int(&row[3]),
                            row[4],
                            row[5],
                            row[6],
                            row[7],
                            row[8],
                            row[9]
                        ])?;
                    }
                }
                tx.commit()
            };
            let result = run(&mut conn);
            (Some(conn), result)
        })
        .await
        .map_err(|e| StoreError::Other(sqlx::Error::Io(std::io::Error::other(e))))?;
        self.lite = conn;
        result.map_err(lite_error)
    }
}

//! 提供: a table of the department's database kept in step on the platform.
//!
//! First the snapshot: the table up to its change value at the start, read in key order and sent as one
//! full batch in parts (CSV, `snapshot_chunk_rows` rows each, the next part read while one is on its way),
//! straight to the platform, which loads each part and makes the whole visible with the last. The offsets
//! record each part before it is sent (its last key) and after the platform took it, so that after a crash
//! the part on its way is read again over the same keys and re-sent, and the platform answers a part it
//! has with the batch's report: every row is in the batch once. Then the changes after the snapshot's change
//! value: capture writes each batch to the outbox in the same SQLite transaction as the new offset, and
//! delivery sends the outbox in order, each batch under an ID derived from its offsets, which the platform
//! applies once: a crash or a cut between any two steps repeats a delivery, never a change, and loses none.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use shutong_client::types::exchange::{DataFormat, IngestMode};
use shutong_client::{Client, ClientError};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use tokio::sync::Notify;

use crate::config::{ChangeKind, DeleteDetection, Publication};
use crate::source::{self, Dialect, text_at};
use crate::state::{State, now_ms};

mod snapshot;

pub use snapshot::Progress;

/// Why a flow stopped: what a person must fix, named.
#[derive(Debug, Clone)]
pub struct Stop(pub String);

/// A batch ID derived from a publication's offsets (letters, digits, `.`; at most 94 characters).
pub fn batch_id(epoch: &str, publication: &str, what: &str) -> String {
    let digest = hex::encode(shutong_crypto::sm3(what.as_bytes()));
    format!("{epoch}.{publication}.{}", &digest[..20])
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v.map(str::trim), Some("1" | "t" | "true" | "TRUE" | "True" | "y" | "Y" | "yes" | "是"))
}

/// One table publication's capture side.
pub struct TableCapture {
    pub cfg: Publication,
    dialect: Dialect,
    pool: AnyPool,
    state: State,
    table: String,
    key: String,
    change: String,
    kind: ChangeKind,
    /// (local column, item), the key first.
    columns: Vec<(String, String)>,
    key_numeric: bool,
    pub limit_bytes: i64,
    pub wake: Arc<Notify>,
    client: Client,
    progress: Progress,
}

/// One row of the source as read.
struct SourceRow {
    key: String,
    /// The change column as text (a timestamp at its full precision).
    change: String,
    /// The change column as a number (sequence capture).
    number: Option<i64>,
    /// Marked deleted (soft deletion).
    deleted: bool,
    record: Map<String, Value>,
}

struct Offsets {
    phase: String,
    snapshot_after: Option<String>,
    snapshot_upto: Option<String>,
    change_offset: Option<String>,
    change_key: Option<String>,
    /// The snapshot's batch ID, its parts taken, and the part on its way (last key, whether the last part).
    snapshot_batch: Option<String>,
    snapshot_part: i64,
    pending: Option<(String, bool)>,
}

impl TableCapture {
    pub async fn open(
        cfg: &Publication,
        state: &State,
        limit_bytes: i64,
        wake: Arc<Notify>,
        client: Client,
        progress: Progress,
    ) -> anyhow::Result<TableCapture> {
        let url = cfg.database_url.clone().unwrap_or_default();
        let dialect = Dialect::of(&url);
        let pool = source::connect(&url, 2).await?;
        let key = cfg.key.clone().unwrap_or_default();
        let mut columns = vec![(key.clone(), cfg.columns.get(&key).cloned().unwrap_or_default())];
        columns.extend(cfg.columns.iter().filter(|(c, _)| **c != key).map(|(c, i)| (c.clone(), i.clone())));
        let mut capture = TableCapture {
            cfg: cfg.clone(),
            dialect,
            pool,
            state: state.clone(),
            table: cfg.table.clone().unwrap_or_default(),
            key,
            change: cfg.change_column.clone().unwrap_or_default(),
            kind: cfg.change_kind.unwrap_or(ChangeKind::Sequence),
            columns,
            key_numeric: false,
            limit_bytes,
            wake,
            client,
            progress,
        };
        capture.check_columns().await?;
        Ok(capture)
    }

    /// The resource item the key column maps to.
    pub fn key_item(&self) -> &str {
        &self.columns[0].1
    }

    /// Every mapped column, the key, the change and soft-delete columns are in the table; the key's kind.
    pub async fn check_columns(&mut self) -> anyhow::Result<()> {
        let mut wanted: Vec<&str> = self.columns.iter().map(|(c, _)| c.as_str()).collect();
        wanted.push(&self.change);
        if let Some(sd) = &self.cfg.soft_delete_column {
            wanted.push(sd);
        }
        let missing = source::missing_columns(&self.pool, self.dialect, &self.table, &wanted).await?;
        if let Some(c) = missing.first() {
            let item = self.columns.iter().find(|(l, _)| l == c).map(|(_, i)| format!(" (mapped to {i})")).unwrap_or_default();
            anyhow::bail!("publication {}: column '{c}'{item} is not in table '{}'", self.cfg.name, self.table);
        }
        let probe = sqlx::query(&format!("SELECT {} FROM {} LIMIT 1", self.dialect.quote(&self.key), self.dialect.quote(&self.table)))
            .fetch_optional(&self.pool)
            .await;
        self.key_numeric = matches!(probe, Ok(Some(r)) if r.try_get::<i64, _>(0).is_ok());
        Ok(())
    }

    fn key_select(&self) -> String {
        if self.key_numeric { self.dialect.quote(&self.key) } else { self.dialect.text(&self.key) }
    }

    fn key_text(&self, r: &AnyRow) -> anyhow::Result<String> {
        Ok(if self.key_numeric { r.try_get::<i64, _>(0)?.to_string() } else { r.try_get::<String, _>(0)? })
    }

    /// `SELECT key, item columns…, change, soft-delete` (the change as text; a sequence also as a number).
    fn select_list(&self) -> String {
        let mut s = vec![self.key_select()];
        s.extend(self.columns.iter().map(|(c, _)| self.dialect.text(c)));
        s.push(self.dialect.text(&self.change));
        if self.kind == ChangeKind::Sequence {
            s.push(self.dialect.quote(&self.change));
        }
        if let Some(sd) = &self.cfg.soft_delete_column {
            s.push(self.dialect.text(sd));
        }
        // Each named apart: PostgreSQL names a cast after its column, and the change column is read twice, so
        // an `ORDER BY` of the column would otherwise be ambiguous.
        s.iter().enumerate().map(|(i, e)| format!("{e} AS {}", self.dialect.quote(&format!("s_{i}")))).collect::<Vec<_>>().join(", ")
    }

    /// A row as read.
    fn read_row(&self, r: &AnyRow) -> anyhow::Result<SourceRow> {
        let key = self.key_text(r)?;
        let mut record = Map::new();
        for (i, (_, item)) in self.columns.iter().enumerate() {
            let v = text_at(r, i + 1)?;
            record.insert(item.clone(), v.map(Value::String).unwrap_or(Value::Null));
        }
        let mut at = self.columns.len() + 1;
        let change: String = r.try_get::<Option<String>, _>(at)?.unwrap_or_default();
        at += 1;
        let number = if self.kind == ChangeKind::Sequence {
            let n: Option<i64> = r.try_get(at)?;
            at += 1;
            n
        } else {
            None
        };
        let deleted = if self.cfg.soft_delete_column.is_some() { truthy(r.try_get::<Option<String>, _>(at)?.as_deref()) } else { false };
        Ok(SourceRow { key, change, number, deleted, record })
    }

    async fn offsets(&self) -> anyhow::Result<Option<Offsets>> {
        let r = sqlx::query(
            "SELECT phase, snapshot_after, snapshot_upto, change_offset, change_key, snapshot_batch, snapshot_part, pending_last, \
             pending_final FROM offsets WHERE publication = $1",
        )
        .bind(&self.cfg.name)
        .fetch_optional(&self.state.pool)
        .await?;
        Ok(r.map(|r| Offsets {
            phase: r.get(0),
            snapshot_after: r.get(1),
            snapshot_upto: r.get(2),
            change_offset: r.get(3),
            change_key: r.get(4),
            snapshot_batch: r.get(5),
            snapshot_part: r.get(6),
            pending: r.get::<Option<String>, _>(7).map(|k| (k, r.get::<i64, _>(8) == 1)),
        }))
    }

    /// Reads what is new in the table into the outbox. Returns the rows captured (0: nothing new).
    pub async fn step(&self) -> anyhow::Result<usize> {
        let (_, bytes, _) = self.state.outbox_depth(None).await?;
        if bytes >= self.limit_bytes {
            anyhow::bail!(
                "the outbox holds {} MiB, its limit (node.outbox_limit_mb): capture paused until the platform takes the waiting batches",
                bytes >> 20
            );
        }
        let offsets = match self.offsets().await? {
            Some(o) => o,
            None => self.start_snapshot().await?,
        };
        if offsets.phase == "snapshot" { self.snapshot(&offsets).await } else { self.changes(&offsets).await }
    }

    async fn start_snapshot(&self) -> anyhow::Result<Offsets> {
        let t = self.dialect.quote(&self.table);
        let c = self.dialect.quote(&self.change);
        let upto: Option<String> = match self.kind {
            ChangeKind::Sequence => {
                let n: Option<i64> = sqlx::query(&format!("SELECT MAX({c}) FROM {t}")).fetch_one(&self.pool).await?.try_get(0)?;
                n.map(|n| n.to_string())
            }
            ChangeKind::Timestamp => {
                let cast = match self.dialect {
                    Dialect::MySql => format!("CAST(MAX({c}) AS CHAR)"),
                    _ => format!("CAST(MAX({c}) AS TEXT)"),
                };
                sqlx::query(&format!("SELECT {cast} FROM {t}")).fetch_one(&self.pool).await?.try_get(0)?
            }
        };
        let now = now_ms();
        let batch = batch_id(&self.state.epoch, &self.cfg.name, &format!("snapshot|{}|{now}", upto.clone().unwrap_or_default()));
        sqlx::query(
            "INSERT INTO offsets (publication, phase, snapshot_after, snapshot_upto, change_offset, change_key, updated_at, snapshot_batch) \
             VALUES ($1, $2, NULL, $3, $3, NULL, $4, $5)",
        )
        .bind(&self.cfg.name)
        .bind(if upto.is_some() { "snapshot" } else { "changes" })
        .bind(&upto)
        .bind(now)
        .bind(&batch)
        .execute(&self.state.pool)
        .await?;
        Ok(Offsets {
            phase: if upto.is_some() { "snapshot".into() } else { "changes".into() },
            snapshot_after: None,
            snapshot_upto: upto.clone(),
            change_offset: upto,
            change_key: None,
            snapshot_batch: Some(batch),
            snapshot_part: 0,
            pending: None,
        })
    }

    fn bind_key<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        key: &str,
    ) -> anyhow::Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>> {
        Ok(if self.key_numeric { q.bind(key.parse::<i64>()?) } else { q.bind(key.to_string()) })
    }

    /// The changes after the offset, in change order.
    async fn changes(&self, o: &Offsets) -> anyhow::Result<usize> {
        let d = self.dialect;
        let t = d.quote(&self.table);
        let c = d.quote(&self.change);
        let limit = self.cfg.batch_rows;
        let rows = match (self.kind, &o.change_offset) {
            (_, None) => {
                sqlx::query(&format!(
                    "SELECT {} FROM {t} WHERE {c} IS NOT NULL ORDER BY {c}, {} LIMIT {limit}",
                    self.select_list(),
                    d.quote(&self.key)
                ))
                .fetch_all(&self.pool)
                .await?
            }
            (ChangeKind::Sequence, Some(off)) => {
                sqlx::query(&format!("SELECT {} FROM {t} WHERE {c} > {} ORDER BY {c} LIMIT {limit}", self.select_list(), d.param(1)))
                    .bind(off.parse::<i64>().unwrap_or(0))
                    .fetch_all(&self.pool)
                    .await?
            }
            // Just after the snapshot: it took every row up to its timestamp (late ones come with the window).
            (ChangeKind::Timestamp, Some(off)) if o.change_key.is_none() => {
                sqlx::query(&format!(
                    "SELECT {} FROM {t} WHERE {c} > {} ORDER BY {c}, {} LIMIT {limit}",
                    self.select_list(),
                    d.ts_param(1),
                    d.quote(&self.key)
                ))
                .bind(off.clone())
                .fetch_all(&self.pool)
                .await?
            }
            (ChangeKind::Timestamp, Some(off)) => {
                let k = d.quote(&self.key);
                let (p1, p2, p3) = (d.ts_param(1), d.ts_param(2), d.param(3));
                let sql = format!(
                    "SELECT {} FROM {t} WHERE {c} > {p1} OR ({c} = {p2} AND {k} > {p3}) ORDER BY {c}, {k} LIMIT {limit}",
                    self.select_list()
                );
                let q = sqlx::query(&sql).bind(off.clone()).bind(off.clone());
                let q = self.bind_key(q, o.change_key.as_deref().unwrap_or_default())?;
                q.fetch_all(&self.pool).await?
            }
        };
        let mut records = Vec::new();
        let mut recent = Vec::new();
        let mut last = (o.change_offset.clone(), o.change_key.clone());
        for r in &rows {
            let SourceRow { key, change, number, deleted, record } = self.read_row(r)?;
            last = (Some(number.map(|n| n.to_string()).unwrap_or_else(|| change.clone())), Some(key.clone()));
            if self.kind == ChangeKind::Timestamp {
                recent.push((key.clone(), change));
            }
            records.push((key, deleted, record));
        }
        // Timestamps: the safety window read again, for commits that landed late with an earlier time.
        if self.kind == ChangeKind::Timestamp
            && let Some(off) = &o.change_offset
            && self.cfg.safety_window_seconds > 0
        {
            let sql = format!(
                "SELECT {} FROM {t} WHERE {c} > {} AND {c} <= {} ORDER BY {c} LIMIT {limit}",
                self.select_list(),
                d.ts_minus(1, self.cfg.safety_window_seconds),
                d.ts_param(2)
            );
            let late = sqlx::query(&sql).bind(off.clone()).bind(off.clone()).fetch_all(&self.pool).await?;
            for r in &late {
                let SourceRow { key, change, deleted, record, .. } = self.read_row(r)?;
                let seen = sqlx::query("SELECT 1 FROM recent WHERE publication = $1 AND record_key = $2 AND ts = $3")
                    .bind(&self.cfg.name)
                    .bind(&key)
                    .bind(&change)
                    .fetch_optional(&self.state.pool)
                    .await?
                    .is_some();
                if !seen && !recent.iter().any(|(k, ts)| *k == key && *ts == change) {
                    recent.push((key.clone(), change));
                    records.push((key, deleted, record));
                }
            }
        }
        if records.is_empty() {
            return Ok(0);
        }
        let mut tx = self.state.pool.begin().await?;
        let what = format!(
            "changes|{}|{}|{}|{}",
            o.change_offset.clone().unwrap_or_default(),
            o.change_key.clone().unwrap_or_default(),
            last.0.clone().unwrap_or_default(),
            records.len()
        );
        self.enqueue(&mut tx, &what, &records, &recent).await?;
        sqlx::query("UPDATE offsets SET change_offset = $1, change_key = $2, updated_at = $3 WHERE publication = $4")
            .bind(&last.0)
            .bind(&last.1)
            .bind(now_ms())
            .bind(&self.cfg.name)
            .execute(&mut *tx)
            .await?;
        if self.kind == ChangeKind::Timestamp {
            let horizon = now_ms() - (self.cfg.safety_window_seconds as i64 * 2 + 60) * 1000;
            sqlx::query("DELETE FROM recent WHERE publication = $1 AND at < $2")
                .bind(&self.cfg.name)
                .bind(horizon)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.wake.notify_one();
        Ok(records.len())
    }

    /// Writes records to the outbox as batches of `batch_rows` (NDJSON, deletions as `_op: delete`), and
    /// keeps the keys sent for comparison and the recent timestamps, in the caller's transaction.
    async fn enqueue(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        what: &str,
        records: &[(String, bool, Map<String, Value>)],
        recent: &[(String, String)],
    ) -> anyhow::Result<()> {
        let key_item = self.columns[0].1.clone();
        let now = now_ms();
        for (i, chunk) in records.chunks(self.cfg.batch_rows).enumerate() {
            let mut body = Vec::with_capacity(chunk.len() * 128);
            for (key, deleted, record) in chunk {
                let line = if *deleted { json!({ key_item.as_str(): key, "_op": "delete" }) } else { Value::Object(record.clone()) };
                serde_json::to_writer(&mut body, &line)?;
                body.push(b'\n');
            }
            let id = batch_id(&self.state.epoch, &self.cfg.name, &format!("{what}|{i}"));
            sqlx::query(
                "INSERT INTO outbox (publication, batch_id, rows, bytes, body, oldest_ms, created_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(&self.cfg.name)
            .bind(&id)
            .bind(chunk.len() as i64)
            .bind(body.len() as i64)
            .bind(&body)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query("UPDATE offsets SET captured = captured + $1 WHERE publication = $2")
            .bind(records.len() as i64)
            .bind(&self.cfg.name)
            .execute(&mut **tx)
            .await?;
        if self.cfg.deletes == DeleteDetection::Compare {
            for (key, deleted, _) in records {
                if *deleted {
                    sqlx::query("DELETE FROM sent_keys WHERE publication = $1 AND record_key = $2")
                        .bind(&self.cfg.name)
                        .bind(key)
                        .execute(&mut **tx)
                        .await?;
                }
            }
            let live = records.iter().filter(|(_, deleted, _)| !deleted).map(|(key, _, _)| key.as_str());
            self.remember_sent(tx, live, now).await?;
        }
        self.remember_recent(tx, recent, now).await
    }

    /// Keys sent as live (for deletions by comparison), in the caller's transaction.
    async fn remember_sent<'k>(
        &self,
        tx: &mut sqlx::SqliteConnection,
        keys: impl Iterator<Item = &'k str>,
        now: i64,
    ) -> anyhow::Result<()> {
        for key in keys {
            sqlx::query(
                "INSERT INTO sent_keys (publication, record_key, sent_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (publication, record_key) DO UPDATE SET sent_at = excluded.sent_at",
            )
            .bind(&self.cfg.name)
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Timestamps sent within the safety window (not sent twice when it is read again), in the caller's
    /// transaction.
    async fn remember_recent(&self, tx: &mut sqlx::SqliteConnection, recent: &[(String, String)], now: i64) -> anyhow::Result<()> {
        for (key, ts) in recent {
            sqlx::query("INSERT INTO recent (publication, record_key, ts, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(&self.cfg.name)
                .bind(key)
                .bind(ts)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Deletions by comparison: keys sent before the comparison started that the table no longer holds
    /// become deletions in the outbox. The table's keys are streamed into the state database (bounded memory).
    pub async fn compare(&self) -> anyhow::Result<usize> {
        use futures_util::TryStreamExt;
        let started = now_ms();
        sqlx::query("DELETE FROM compare_keys WHERE publication = $1").bind(&self.cfg.name).execute(&self.state.pool).await?;
        let sql = format!("SELECT {} FROM {}", self.key_select(), self.dialect.quote(&self.table));
        let mut stream = sqlx::query(&sql).fetch(&self.pool);
        let mut chunk: Vec<String> = Vec::with_capacity(5000);
        loop {
            let next = stream.try_next().await?;
            if let Some(r) = &next {
                chunk.push(self.key_text(r)?);
            }
            if chunk.len() >= 5000 || (next.is_none() && !chunk.is_empty()) {
                let mut tx = self.state.pool.begin().await?;
                for k in chunk.drain(..) {
                    sqlx::query("INSERT INTO compare_keys (publication, record_key) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(&self.cfg.name)
                        .bind(k)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
            if next.is_none() {
                break;
            }
        }
        drop(stream);
        let mut tx = self.state.pool.begin().await?;
        let gone: Vec<String> = sqlx::query(
            "SELECT s.record_key FROM sent_keys s WHERE s.publication = $1 AND s.sent_at < $2 AND NOT EXISTS \
             (SELECT 1 FROM compare_keys c WHERE c.publication = s.publication AND c.record_key = s.record_key) ORDER BY s.record_key",
        )
        .bind(&self.cfg.name)
        .bind(started)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        if !gone.is_empty() {
            let records: Vec<(String, bool, Map<String, Value>)> = gone.iter().map(|k| (k.clone(), true, Map::new())).collect();
            let first = gone.first().cloned().unwrap_or_default();
            self.enqueue(&mut tx, &format!("compare|{started}|{first}|{}", gone.len()), &records, &[]).await?;
        }
        sqlx::query("DELETE FROM compare_keys WHERE publication = $1").bind(&self.cfg.name).execute(&mut *tx).await?;
        tx.commit().await?;
        if !gone.is_empty() {
            self.wake.notify_one();
        }
        Ok(gone.len())
    }
}

/// The result of one delivery attempt.
pub enum Delivered {
    /// A batch went through (rows sent, rows rejected).
    Batch { rows: i64, rejected: i64 },
    /// Nothing waits.
    Idle,
}

/// How a failed delivery is treated.
pub enum DeliveryError {
    /// The platform is unreachable or busy: try again later (the batch stays in the outbox).
    Offline(String),
    /// The platform refused the node (a wrong key, a skewed clock): its reason; retried, as a person may fix it.
    Refused(String),
    /// The platform refused the batch as a whole: the publication stops; the batch stays in the outbox.
    Stopped(String),
}

/// Sends the publication's oldest waiting batch.
pub async fn deliver_one(
    client: &Client,
    state: &State,
    publication: &str,
    resource: &str,
    key_item: &str,
) -> Result<Delivered, DeliveryError> {
    let local = |e: anyhow::Error| DeliveryError::Offline(format!("node state: {e}"));
    let row = sqlx::query("SELECT id, batch_id, body, rows FROM outbox WHERE publication = $1 ORDER BY id LIMIT 1")
        .bind(publication)
        .fetch_optional(&state.pool)
        .await
        .map_err(|e| local(e.into()))?;
    let Some(row) = row else { return Ok(Delivered::Idle) };
    let (id, batch, body, rows): (i64, String, Vec<u8>, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    let report = match client.post_batch(resource, IngestMode::Incremental, DataFormat::Ndjson, &batch, body.clone()).await {
        Ok(r) => r,
        Err(e) => return Err(classify(&e)),
    };
    // The keys of rejected rows, from the batch itself where the report does not name them.
    let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    let mut tx = state.pool.begin().await.map_err(|e| local(e.into()))?;
    for r in &report.rejects {
        let key = r.key.clone().or_else(|| {
            let line = lines.get((r.row - 1).max(0) as usize)?;
            let v: Map<String, Value> = serde_json::from_slice(line).ok()?;
            v.get(key_item).and_then(|v| v.as_str().map(str::to_string))
        });
        sqlx::query(
            "INSERT INTO rejects (publication, batch_id, row_number, record_key, field, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(publication)
        .bind(&batch)
        .bind(r.row)
        .bind(&key)
        .bind(&r.field)
        .bind(&r.reason)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| local(e.into()))?;
    }
    sqlx::query("DELETE FROM outbox WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(|e| local(e.into()))?;
    tx.commit().await.map_err(|e| local(e.into()))?;
    if report.rows_rejected > 0 {
        tracing::warn!(publication, batch = %batch, rejected = report.rows_rejected, "the platform rejected rows; they are kept in the node's rejects table");
    }
    Ok(Delivered::Batch { rows, rejected: report.rows_rejected })
}

/// Sorts a client error into offline (retry), refused (retry, said loudly) or stopped.
pub fn classify(e: &ClientError) -> DeliveryError {
    match e.status().map(|s| s.as_u16()) {
        None => DeliveryError::Offline(e.to_string()),
        Some(401) => DeliveryError::Refused(format!("the platform refused the node's signature: {e}")),
        Some(408 | 409 | 425 | 429) | Some(500..=599) => DeliveryError::Offline(e.to_string()),
        Some(_) => DeliveryError::Stopped(e.to_string()),
    }
}

/// Sleeps `d`, or less when woken.
pub async fn nap(wake: &Notify, d: Duration) {
    let _ = tokio::time::timeout(d, wake.notified()).await;
}

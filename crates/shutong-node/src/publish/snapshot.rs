//! The snapshot: the table up to the change value seen at its start, in key order, sent as one full batch
//! in parts (see the parent module). On PostgreSQL a part leaves the database as CSV through `COPY (SELECT …)
//! TO STDOUT` in key order (`LIMIT snapshot_chunk_rows`), and the node only frames it; its last key, read
//! from its last record, is recorded before it is sent, so that a part re-sent after a crash is the same
//! key range. Elsewhere rows are read through sqlx and written as CSV.

use std::sync::Arc;

use futures_util::TryStreamExt;
use shutong_client::types::exchange::{BatchReport, DataFormat};
use sqlx::{Connection, Executor, Row};

use super::{Offsets, TableCapture, truthy};
use crate::config::{ChangeKind, DeleteDetection};
use crate::source::{Dialect, text_at};
use crate::state::now_ms;

/// One part of the snapshot as read.
pub(super) struct SnapshotPart {
    /// CSV: a header naming the items, then the rows.
    body: Vec<u8>,
    rows: i64,
    /// The key the part starts after, and the last key read (live or soft-deleted), where the next starts.
    after: Option<String>,
    last_key: Option<String>,
    /// The last part of the snapshot.
    last: bool,
    /// Keys sent (for deletions by comparison), and timestamps within the safety window.
    keys: Vec<String>,
    recent: Vec<(String, String)>,
}

/// Reports a part taken by the platform: (rows, rows rejected).
pub type Progress = Arc<dyn Fn(i64, i64) + Send + Sync>;

/// A PostgreSQL source's connection for COPY, and the text expression of each mapped column (timestamps
/// as `YYYY-MM-DD HH24:MI:SS` in China time, as values read through sqlx are normalised).
pub(super) struct CopySource {
    conn: sqlx::PgConnection,
    select: Vec<String>,
}

impl CopySource {
    async fn open(capture: &TableCapture) -> anyhow::Result<CopySource> {
        let url = capture.cfg.database_url.clone().unwrap_or_default();
        let mut conn = sqlx::PgConnection::connect(&url).await.map_err(|e| anyhow::anyhow!("{}: {e}", crate::source::redact(&url)))?;
        conn.execute("SET TIME ZONE 'Asia/Shanghai'").await?;
        // Literals below are standard strings: a backslash is a backslash.
        conn.execute("SET standard_conforming_strings = on").await?;
        let d = Dialect::Postgres;
        let probe = format!(
            "SELECT {} FROM {}",
            capture.columns.iter().map(|(c, _)| d.quote(c)).collect::<Vec<_>>().join(", "),
            d.quote(&capture.table)
        );
        let statement = conn.prepare(&probe).await?;
        let mut select = Vec::new();
        for (i, (column, _)) in capture.columns.iter().enumerate() {
            use sqlx::{Column, Statement, TypeInfo};
            let kind = statement.columns().get(i).map(|c| c.type_info().name().to_ascii_uppercase()).unwrap_or_default();
            select.push(if kind.starts_with("TIMESTAMP") {
                format!("to_char({}, 'YYYY-MM-DD HH24:MI:SS')", d.quote(column))
            } else {
                d.text(column)
            });
        }
        Ok(CopySource { conn, select })
    }
}

/// A PostgreSQL string literal (`standard_conforming_strings` is on).
fn literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// The CSV records in `body` (newlines outside quotes), and where the last one starts.
fn records(body: &[u8]) -> (i64, usize) {
    let mut quoted = false;
    let (mut n, mut last, mut start) = (0, 0, 0);
    for (i, b) in body.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                n += 1;
                last = start;
                start = i + 1;
            }
            _ => {}
        }
    }
    (n, last)
}

impl TableCapture {
    /// The snapshot, from where the offsets stand to its end (see the module comment). Returns the rows sent;
    /// an error leaves the offsets at the last part taken, for the next call.
    pub(super) async fn snapshot(&self, o: &Offsets) -> anyhow::Result<usize> {
        let batch = o.snapshot_batch.clone().ok_or_else(|| anyhow::anyhow!("the snapshot has no batch ID: reset the node's state"))?;
        // PostgreSQL: parts leave the database as CSV through COPY, on a connection of the snapshot's own.
        let mut copy = match self.dialect {
            Dialect::Postgres => Some(CopySource::open(self).await?),
            _ => None,
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<anyhow::Result<SnapshotPart>>(1);
        let reader = async {
            let tx = tx;
            let mut after = o.snapshot_after.clone();
            // A part on its way when the node stopped is read again over the same keys.
            let mut pending = o.pending.clone();
            loop {
                let part = match copy.as_mut() {
                    Some(c) => self.read_part_copy(c, o, after.as_deref(), pending.take()).await,
                    None => self.read_part(o, after.as_deref(), pending.take()).await,
                };
                let end = match &part {
                    Ok(p) => {
                        if p.last_key.is_some() {
                            after = p.last_key.clone();
                        }
                        p.last
                    }
                    Err(_) => true,
                };
                if tx.send(part).await.is_err() || end {
                    break;
                }
            }
        };
        let sender = async {
            let mut rx = rx;
            let mut taken = o.snapshot_part;
            let mut sent = 0usize;
            while let Some(part) = rx.recv().await {
                let mut part = part?;
                let number = taken + 1;
                if number == 1 && part.last && part.rows == 0 {
                    // Nothing to load: every row was deleted since the snapshot began.
                    self.take_part(&batch, number, &part, None).await?;
                    break;
                }
                sqlx::query("UPDATE offsets SET pending_last = $1, pending_final = $2, updated_at = $3 WHERE publication = $4")
                    .bind(part.last_key.clone().or_else(|| part.after.clone()).unwrap_or_default())
                    .bind(part.last as i64)
                    .bind(now_ms())
                    .bind(&self.cfg.name)
                    .execute(&self.state.pool)
                    .await?;
                let body = std::mem::take(&mut part.body);
                match self.client.post_batch_part(&self.cfg.resource, DataFormat::Csv, &batch, number, part.last, body).await {
                    Ok(report) => self.take_part(&batch, number, &part, Some(&report)).await?,
                    Err(e) if e.code() == Some("batch_parts_lost") => {
                        self.restart_snapshot().await?;
                        anyhow::bail!("the platform lost the snapshot's batch between two parts: the snapshot starts again ({e})");
                    }
                    Err(e) => return Err(anyhow::Error::new(e).context(format!("snapshot part {number}"))),
                }
                taken = number;
                sent += part.rows as usize;
                if part.last {
                    break;
                }
            }
            anyhow::Ok(sent)
        };
        let ((), sent) = tokio::join!(reader, sender);
        let sent = sent?;
        self.wake.notify_one();
        Ok(sent.max(1))
    }

    /// Reads the next part of the snapshot: rows up to the snapshot's change value, after `after` — up to
    /// `pending`'s last key (a part re-sent), or `snapshot_chunk_rows` rows.
    async fn read_part(&self, o: &Offsets, after: Option<&str>, pending: Option<(String, bool)>) -> anyhow::Result<SnapshotPart> {
        let d = self.dialect;
        let upto = o.snapshot_upto.clone().unwrap_or_default();
        let mut n = 0;
        // Timestamps: whether a row falls in the safety window before the snapshot's end, which the changes
        // read again — such rows are remembered as sent, so that they are not sent twice.
        let in_window = if self.kind == ChangeKind::Timestamp {
            n += 1;
            format!(", CASE WHEN {} > {} THEN 1 ELSE 0 END", d.quote(&self.change), d.ts_minus(n, self.cfg.safety_window_seconds))
        } else {
            String::new()
        };
        let mut wheres = Vec::new();
        if after.is_some() {
            n += 1;
            wheres.push(format!("{} > {}", d.quote(&self.key), d.param(n)));
        }
        if pending.is_some() {
            n += 1;
            wheres.push(format!("{} <= {}", d.quote(&self.key), d.param(n)));
        }
        n += 1;
        wheres.push(match self.kind {
            ChangeKind::Sequence => format!("{} <= {}", d.quote(&self.change), d.param(n)),
            ChangeKind::Timestamp => format!("{} <= {}", d.quote(&self.change), d.ts_param(n)),
        });
        let limit = if pending.is_some() { String::new() } else { format!(" LIMIT {}", self.cfg.snapshot_chunk_rows) };
        let sql = format!(
            "SELECT {}{in_window} FROM {} WHERE {} ORDER BY {}{limit}",
            self.select_list(),
            d.quote(&self.table),
            wheres.join(" AND "),
            d.quote(&self.key),
        );
        let mut q = sqlx::query(&sql);
        if self.kind == ChangeKind::Timestamp {
            q = q.bind(upto.clone());
        }
        if let Some(after) = after {
            q = self.bind_key(q, after)?;
        }
        if let Some((last, _)) = &pending {
            q = self.bind_key(q, last)?;
        }
        q = match self.kind {
            ChangeKind::Sequence => q.bind(upto.parse::<i64>().unwrap_or(0)),
            ChangeKind::Timestamp => q.bind(upto.clone()),
        };
        let rows = q.fetch_all(&self.pool).await?;
        let last = match &pending {
            Some((_, last)) => *last,
            None => rows.len() < self.cfg.snapshot_chunk_rows,
        };
        let mut csv = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 160));
        csv.write_record(self.columns.iter().map(|(_, item)| item.as_str()))?;
        let mut part = SnapshotPart {
            body: Vec::new(),
            rows: 0,
            after: after.map(str::to_string),
            last_key: None,
            last,
            keys: Vec::new(),
            recent: Vec::new(),
        };
        let compare = self.cfg.deletes == DeleteDetection::Compare;
        for r in &rows {
            let key = self.key_text(r)?;
            let deleted = self.cfg.soft_delete_column.is_some() && truthy(text_at(r, self.soft_delete_at())?.as_deref());
            if self.kind == ChangeKind::Timestamp && r.try_get::<i64, _>(r.columns().len() - 1)? == 1 {
                let change: String = r.try_get::<Option<String>, _>(self.columns.len() + 1)?.unwrap_or_default();
                part.recent.push((key.clone(), change));
            }
            if !deleted {
                csv.write_field(&key)?;
                for i in 1..self.columns.len() {
                    csv.write_field(text_at(r, i + 1)?.unwrap_or_default())?;
                }
                csv.write_record(None::<&[u8]>)?;
                part.rows += 1;
                if compare {
                    part.keys.push(key.clone());
                }
            }
            part.last_key = Some(key);
        }
        part.body = csv.into_inner().map_err(|e| anyhow::anyhow!("snapshot part: {e}"))?;
        Ok(part)
    }

    /// The next part of the snapshot from PostgreSQL through COPY: its key range first, then its rows.
    async fn read_part_copy(
        &self,
        source: &mut CopySource,
        o: &Offsets,
        after: Option<&str>,
        pending: Option<(String, bool)>,
    ) -> anyhow::Result<SnapshotPart> {
        let d = Dialect::Postgres;
        let (t, k, c) = (d.quote(&self.table), d.quote(&self.key), d.quote(&self.change));
        let upto = o.snapshot_upto.clone().unwrap_or_default();
        let upto = match self.kind {
            ChangeKind::Sequence => upto.parse::<i64>().map_err(|e| anyhow::anyhow!("the snapshot's end '{upto}': {e}"))?.to_string(),
            ChangeKind::Timestamp => format!("CAST({} AS TIMESTAMPTZ)", literal(&upto)),
        };
        let key = |v: &str| -> anyhow::Result<String> {
            Ok(if self.key_numeric { v.parse::<i64>().map_err(|e| anyhow::anyhow!("key '{v}': {e}"))?.to_string() } else { literal(v) })
        };
        let mut range = format!("{c} <= {upto}");
        if let Some(a) = after {
            range = format!("{k} > {} AND {range}", key(a)?);
        }
        let live = |range: &str| match &self.cfg.soft_delete_column {
            Some(sd) => format!(
                "{range} AND TRIM(COALESCE(CAST({} AS TEXT), '')) NOT IN ('1', 't', 'true', 'TRUE', 'True', 'y', 'Y', 'yes', '是')",
                d.quote(sd)
            ),
            None => range.to_string(),
        };
        // A new part: the next `snapshot_chunk_rows` live rows, its last key read from its last record. A part
        // re-sent: its recorded key range.
        let (rows_sql, limit, last) = match &pending {
            Some((last_key, last)) => (live(&format!("{range} AND {k} <= {}", key(last_key)?)), String::new(), Some(*last)),
            None => (live(&range), format!(" LIMIT {}", self.cfg.snapshot_chunk_rows), None),
        };
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record(self.columns.iter().map(|(_, item)| item.as_str()))?;
        let mut body = csv.into_inner().map_err(|e| anyhow::anyhow!("snapshot part: {e}"))?;
        let mut select = vec![d.text(&self.key)];
        select.extend(source.select.iter().skip(1).cloned());
        let sql = format!("COPY (SELECT {} FROM {t} WHERE {rows_sql} ORDER BY {k}{limit}) TO STDOUT WITH (FORMAT csv)", select.join(", "));
        let header = body.len();
        {
            let mut stream = source.conn.copy_out_raw(&sql).await?;
            while let Some(chunk) = stream.try_next().await? {
                body.extend_from_slice(&chunk);
            }
        }
        let (rows, last_start) = records(&body[header..]);
        let last_key = match pending {
            Some((last_key, _)) => Some(last_key),
            None if rows == 0 => None,
            None => {
                let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&body[header + last_start..]);
                let mut record = csv::StringRecord::new();
                reader.read_record(&mut record)?;
                Some(record.get(0).unwrap_or_default().to_string())
            }
        };
        let last = last.unwrap_or(rows < self.cfg.snapshot_chunk_rows as i64);
        let mut part = SnapshotPart { body, rows, after: after.map(str::to_string), last_key, last, keys: Vec::new(), recent: Vec::new() };
        let Some(last_key) = part.last_key.clone() else {
            return Ok(part);
        };
        let range = format!("{range} AND {k} <= {}", key(&last_key)?);
        let live = live(&range);
        if self.cfg.deletes == DeleteDetection::Compare {
            let sql = format!("SELECT {} FROM {t} WHERE {live} ORDER BY {k}", self.key_select());
            for r in sqlx::query(&sql).fetch_all(&self.pool).await? {
                part.keys.push(self.key_text(&r)?);
            }
        }
        if self.kind == ChangeKind::Timestamp {
            let sql = format!(
                "SELECT {}, CAST({c} AS TEXT) FROM {t} WHERE {range} AND {c} > ({upto} - INTERVAL '{} seconds')",
                self.key_select(),
                self.cfg.safety_window_seconds
            );
            for r in sqlx::query(&sql).fetch_all(&self.pool).await? {
                part.recent.push((self.key_text(&r)?, r.try_get::<Option<String>, _>(1)?.unwrap_or_default()));
            }
        }
        Ok(part)
    }

    /// The column of the soft-deletion flag in [`Self::select_list`].
    fn soft_delete_at(&self) -> usize {
        self.columns.len() + 2 + usize::from(self.kind == ChangeKind::Sequence)
    }

    /// Records a part the platform took (or, without a report, an empty snapshot), with the keys it sent,
    /// the timestamps within the safety window and the rows the platform rejected, in one transaction.
    async fn take_part(&self, batch: &str, number: i64, part: &SnapshotPart, report: Option<&BatchReport>) -> anyhow::Result<()> {
        let now = now_ms();
        // The rows of the batch as the platform counts them (a part sent again after a crash may have been read
        // with other rows than the copy the platform took). Read before the transaction, which then starts by
        // writing (only this task writes the publication's offsets).
        let (rows, rejected) = report.map_or((0, 0), |r| (r.rows_received, r.rows_rejected));
        let before = sqlx::query("SELECT snapshot_rows, snapshot_rejected FROM offsets WHERE publication = $1")
            .bind(&self.cfg.name)
            .fetch_one(&self.state.pool)
            .await?;
        let (rows_before, rejected_before): (i64, i64) = (before.get(0), before.get(1));
        let mut tx = self.state.pool.begin().await?;
        sqlx::query(
            "UPDATE offsets SET phase = $1, snapshot_part = $2, snapshot_after = COALESCE($3, snapshot_after), \
             captured = captured - snapshot_rows + $4, snapshot_rows = $4, snapshot_rejected = $5, pending_last = NULL, pending_final = 0, \
             updated_at = $6 WHERE publication = $7",
        )
        .bind(if part.last { "changes" } else { "snapshot" })
        .bind(number)
        .bind(&part.last_key)
        .bind(rows)
        .bind(rejected)
        .bind(now)
        .bind(&self.cfg.name)
        .execute(&mut *tx)
        .await?;
        self.remember_sent(&mut tx, part.keys.iter().map(String::as_str), now).await?;
        self.remember_recent(&mut tx, &part.recent, now).await?;
        if let Some(report) = report {
            // The report lists the batch's rejects so far: they replace those recorded for it.
            sqlx::query("DELETE FROM rejects WHERE publication = $1 AND batch_id = $2")
                .bind(&self.cfg.name)
                .bind(batch)
                .execute(&mut *tx)
                .await?;
            for r in &report.rejects {
                sqlx::query(
                    "INSERT INTO rejects (publication, batch_id, row_number, record_key, field, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&self.cfg.name)
                .bind(batch)
                .bind(r.row)
                .bind(&r.key)
                .bind(&r.field)
                .bind(&r.reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        (self.progress)(rows - rows_before, rejected - rejected_before);
        if rejected > 0 && part.last {
            tracing::warn!(publication = %self.cfg.name, batch, rejected, "the platform rejected rows of the snapshot; they are kept in the node's rejects table");
        }
        Ok(())
    }

    /// The platform lost the snapshot's batch: its parts are sent again from the first (the rows counted
    /// as sent are taken back from the ledger).
    async fn restart_snapshot(&self) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE offsets SET snapshot_part = 0, snapshot_after = NULL, captured = captured - snapshot_rows, snapshot_rows = 0, \
             snapshot_rejected = 0, pending_last = NULL, pending_final = 0, updated_at = $1 WHERE publication = $2",
        )
        .bind(now_ms())
        .bind(&self.cfg.name)
        .execute(&self.state.pool)
        .await?;
        Ok(())
    }
}

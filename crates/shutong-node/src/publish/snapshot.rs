//! The snapshot: the table up to the change value seen at its start, in key order, sent as one full batch
//! in parts (see the parent module). On PostgreSQL the table leaves the database as CSV through one `COPY
//! (SELECT … ORDER BY key) TO STDOUT`, and the node only cuts the stream into parts of `snapshot_chunk_rows`
//! records; a part's last key, read from its last record, is recorded before it is sent, so that a part
//! re-sent after a crash is the same key range, and the stream starts again after it. Elsewhere rows are
//! read through sqlx, a part at a time, and written as CSV.

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
        // A table not stored in key order is sorted for the snapshot's stream: in memory up to this much,
        // then in runs on disk (the server's default, 4 MB, makes many small runs).
        conn.execute("SET work_mem = '64MB'").await?;
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

/// Cuts a stream of CSV records into parts: bytes are appended to the part being filled (which starts with
/// the header) until it holds the number of records asked for.
struct Cutter {
    body: Vec<u8>,
    /// The header's length: records start after it.
    header: usize,
    quoted: bool,
    rows: i64,
    /// Where the record being read starts, and where the last complete one started (after the header).
    start: usize,
    last: usize,
}

impl Cutter {
    fn new(header: &[u8]) -> Cutter {
        Cutter { body: header.to_vec(), header: header.len(), quoted: false, rows: 0, start: 0, last: 0 }
    }

    /// Appends `bytes` until the part holds `per_part` records: returns how many bytes were taken when it
    /// does (the rest belongs to the next part), `None` when all were taken and the part is not full.
    fn push(&mut self, bytes: &[u8], per_part: i64) -> Option<usize> {
        let at = self.body.len() - self.header;
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b'"' => self.quoted = !self.quoted,
                b'\n' if !self.quoted => {
                    self.rows += 1;
                    self.last = self.start;
                    self.start = at + i + 1;
                    if self.rows >= per_part {
                        self.body.extend_from_slice(&bytes[..=i]);
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        self.body.extend_from_slice(bytes);
        None
    }

    /// The part filled so far (its body, records, and where its last record starts after the header); a new
    /// part begins.
    fn take(&mut self, header: &[u8]) -> (Vec<u8>, i64, usize) {
        let body = std::mem::replace(&mut self.body, header.to_vec());
        let taken = (body, self.rows, self.last);
        self.rows = 0;
        self.start = 0;
        self.last = 0;
        taken
    }
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
            match copy.as_mut() {
                Some(source) => self.stream_parts(source, o, &tx).await,
                None => {
                    let mut after = o.snapshot_after.clone();
                    // A part on its way when the node stopped is read again over the same keys.
                    let mut pending = o.pending.clone();
                    loop {
                        let part = self.read_part(o, after.as_deref(), pending.take()).await;
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

    /// The snapshot from PostgreSQL through COPY, from where the offsets stand: a part on its way when the
    /// node stopped is read again over its recorded key range, then the rest of the table leaves the
    /// database as one `COPY (SELECT … ORDER BY key) TO STDOUT`, cut into parts of `snapshot_chunk_rows`
    /// records as it arrives. One statement lets PostgreSQL choose how to produce key order — an index scan
    /// of a table stored in key order, or a sequential scan and a sort of one that is not (a key such as a
    /// 公民身份号码 is stored in the order rows were written), where a `LIMIT` per part would fetch every row
    /// through the index at random. The stream waits while a part is on its way (the channel holds one).
    async fn stream_parts(&self, source: &mut CopySource, o: &Offsets, tx: &tokio::sync::mpsc::Sender<anyhow::Result<SnapshotPart>>) {
        let mut after = o.snapshot_after.clone();
        if let Some(pending) = o.pending.clone() {
            let part = self.read_range_copy(source, o, after.as_deref(), pending).await;
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
                return;
            }
        }
        if let Err(e) = self.stream_rest(source, o, after, tx).await {
            let _ = tx.send(Err(e)).await;
        }
    }

    /// The rows after `after` as one COPY stream, cut into parts (see [`Self::stream_parts`]).
    async fn stream_rest(
        &self,
        source: &mut CopySource,
        o: &Offsets,
        mut after: Option<String>,
        tx: &tokio::sync::mpsc::Sender<anyhow::Result<SnapshotPart>>,
    ) -> anyhow::Result<()> {
        let sql = self.copy_statement(source, o, after.as_deref(), None)?;
        let header = self.csv_header()?;
        let per_part = self.cfg.snapshot_chunk_rows as i64;
        let mut cutter = Cutter::new(&header);
        let mut stream = source.conn.copy_out_raw(&sql).await?;
        while let Some(chunk) = stream.try_next().await? {
            let mut rest: &[u8] = &chunk;
            while let Some(n) = cutter.push(rest, per_part) {
                rest = &rest[n..];
                let (body, rows, last_start) = cutter.take(&header);
                let part = self.finish_part(o, body, header.len(), rows, last_start, after.clone(), None, false).await?;
                after = part.last_key.clone().or(after);
                if tx.send(Ok(part)).await.is_err() {
                    return Ok(());
                }
            }
        }
        drop(stream);
        let (body, rows, last_start) = cutter.take(&header);
        let part = self.finish_part(o, body, header.len(), rows, last_start, after, None, true).await?;
        let _ = tx.send(Ok(part)).await;
        Ok(())
    }

    /// A part re-sent after a crash, from PostgreSQL through COPY: the live rows after `after` up to its
    /// recorded last key.
    async fn read_range_copy(
        &self,
        source: &mut CopySource,
        o: &Offsets,
        after: Option<&str>,
        pending: (String, bool),
    ) -> anyhow::Result<SnapshotPart> {
        let sql = self.copy_statement(source, o, after, Some(&pending.0))?;
        let mut body = self.csv_header()?;
        let header = body.len();
        {
            let mut stream = source.conn.copy_out_raw(&sql).await?;
            while let Some(chunk) = stream.try_next().await? {
                body.extend_from_slice(&chunk);
            }
        }
        let (rows, last_start) = records(&body[header..]);
        let (last_key, last) = pending;
        self.finish_part(o, body, header, rows, last_start, after.map(str::to_string), Some(last_key), last).await
    }

    /// The CSV header: the items, in the mapping's order.
    fn csv_header(&self) -> anyhow::Result<Vec<u8>> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record(self.columns.iter().map(|(_, item)| item.as_str()))?;
        csv.into_inner().map_err(|e| anyhow::anyhow!("snapshot part: {e}"))
    }

    /// A key as a PostgreSQL literal.
    fn key_literal(&self, v: &str) -> anyhow::Result<String> {
        Ok(if self.key_numeric { v.parse::<i64>().map_err(|e| anyhow::anyhow!("key '{v}': {e}"))?.to_string() } else { literal(v) })
    }

    /// The snapshot's end as a PostgreSQL expression.
    fn upto_literal(&self, o: &Offsets) -> anyhow::Result<String> {
        let upto = o.snapshot_upto.clone().unwrap_or_default();
        Ok(match self.kind {
            ChangeKind::Sequence => upto.parse::<i64>().map_err(|e| anyhow::anyhow!("the snapshot's end '{upto}': {e}"))?.to_string(),
            ChangeKind::Timestamp => format!("CAST({} AS TIMESTAMPTZ)", literal(&upto)),
        })
    }

    /// The rows of the snapshot after `after` (up to `upto_key`, if given) and up to its change value, as
    /// `WHERE` conditions; `live` adds the soft-deletion filter.
    fn snapshot_range(&self, o: &Offsets, after: Option<&str>, upto_key: Option<&str>, live: bool) -> anyhow::Result<String> {
        let d = Dialect::Postgres;
        let (k, c) = (d.quote(&self.key), d.quote(&self.change));
        let mut range = format!("{c} <= {}", self.upto_literal(o)?);
        if let Some(a) = after {
            range = format!("{k} > {} AND {range}", self.key_literal(a)?);
        }
        if let Some(u) = upto_key {
            range = format!("{range} AND {k} <= {}", self.key_literal(u)?);
        }
        if let (true, Some(sd)) = (live, &self.cfg.soft_delete_column) {
            range = format!(
                "{range} AND TRIM(COALESCE(CAST({} AS TEXT), '')) NOT IN ('1', 't', 'true', 'TRUE', 'True', 'y', 'Y', 'yes', '是')",
                d.quote(sd)
            );
        }
        Ok(range)
    }

    /// `COPY (SELECT … ORDER BY key) TO STDOUT` of the live rows in a range, as CSV.
    fn copy_statement(&self, source: &CopySource, o: &Offsets, after: Option<&str>, upto_key: Option<&str>) -> anyhow::Result<String> {
        let d = Dialect::Postgres;
        let mut select = vec![d.text(&self.key)];
        select.extend(source.select.iter().skip(1).cloned());
        Ok(format!(
            "COPY (SELECT {} FROM {} WHERE {} ORDER BY {}) TO STDOUT WITH (FORMAT csv)",
            select.join(", "),
            d.quote(&self.table),
            self.snapshot_range(o, after, upto_key, true)?,
            d.quote(&self.key)
        ))
    }

    /// A part read through COPY, made ready to send: its last key (given, or read from its last record), the
    /// keys it sent (deletions by comparison) and its timestamps within the safety window.
    #[allow(clippy::too_many_arguments)]
    async fn finish_part(
        &self,
        o: &Offsets,
        body: Vec<u8>,
        header: usize,
        rows: i64,
        last_start: usize,
        after: Option<String>,
        last_key: Option<String>,
        last: bool,
    ) -> anyhow::Result<SnapshotPart> {
        let last_key = match last_key {
            Some(k) => Some(k),
            None if rows == 0 => None,
            None => {
                let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&body[header + last_start..]);
                let mut record = csv::StringRecord::new();
                reader.read_record(&mut record)?;
                Some(record.get(0).unwrap_or_default().to_string())
            }
        };
        let mut part = SnapshotPart { body, rows, after, last_key, last, keys: Vec::new(), recent: Vec::new() };
        let Some(last_key) = part.last_key.clone() else {
            return Ok(part);
        };
        let d = Dialect::Postgres;
        let t = d.quote(&self.table);
        if self.cfg.deletes == DeleteDetection::Compare {
            let live = self.snapshot_range(o, part.after.as_deref(), Some(&last_key), true)?;
            let sql = format!("SELECT {} FROM {t} WHERE {live} ORDER BY {}", self.key_select(), d.quote(&self.key));
            for r in sqlx::query(&sql).fetch_all(&self.pool).await? {
                part.keys.push(self.key_text(&r)?);
            }
        }
        if self.kind == ChangeKind::Timestamp {
            let range = self.snapshot_range(o, part.after.as_deref(), Some(&last_key), false)?;
            let sql = format!(
                "SELECT {}, CAST({} AS TEXT) FROM {t} WHERE {range} AND {} > ({} - INTERVAL '{} seconds')",
                self.key_select(),
                d.quote(&self.change),
                d.quote(&self.change),
                self.upto_literal(o)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutter_cuts_at_record_ends_outside_quotes() {
        let header = b"a,b\n";
        let mut c = Cutter::new(header);
        // Three records, the second with a quoted newline, arriving in pieces that break records apart.
        let stream: &[&[u8]] = &[b"1,x\n2,\"y", b"\nz\"\n3", b",w\n"];
        let mut parts = Vec::new();
        for piece in stream {
            let mut rest: &[u8] = piece;
            while let Some(n) = c.push(rest, 2) {
                rest = &rest[n..];
                parts.push(c.take(header));
            }
        }
        parts.push(c.take(header));
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, b"a,b\n1,x\n2,\"y\nz\"\n".to_vec());
        assert_eq!((parts[0].1, parts[0].2), (2, 4));
        assert_eq!(&parts[0].0[header.len() + parts[0].2..], b"2,\"y\nz\"\n");
        assert_eq!(parts[1].0, b"a,b\n3,w\n".to_vec());
        assert_eq!((parts[1].1, parts[1].2), (1, 0));
        // The records counted agree with a scan of the whole part.
        assert_eq!(records(&parts[0].0[header.len()..]), (2, 4));
    }
}

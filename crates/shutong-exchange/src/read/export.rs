//! 批量下载: the dataset within the grant, streamed as CSV, NDJSON or Parquet.

use super::*;

/// A download being streamed.
pub struct Export {
    pub content_type: &'static str,
    pub file_name: String,
    pub records_hint: i64,
    pub body: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

/// 批量下载: the whole dataset within the grant (row filter, items, masking), streamed as CSV, NDJSON or
/// Parquet. With a daily quota, the rows are counted first and the export is refused if they exceed it.
pub async fn export(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &shutong_catalog::ResourceCode,
    format: DataFormat,
    grant: Option<shutong_sharing::GrantId>,
) -> ExchangeResult<Export> {
    let code = resource.as_str();
    if format == DataFormat::Xlsx {
        return Err(invalid("format", "downloads are csv, ndjson or parquet"));
    }
    let a = authorize(ex, actor, resource, AccessMethod::BulkDownload, grant).await?;
    take_rate(ex, &a)?;
    let table = a.table()?.to_string();
    let n = a.binding.columns.len();
    let mut params = Vec::new();
    let filter = conditions_sql(&a, &a.row_filter.conditions, &mut params, "grant.row_filter")?;
    let app: Vec<RowCondition> = after_decryption(&a, &a.row_filter.conditions).into_iter().cloned().collect();
    let mut hint = a.binding.row_count;
    if a.grant.as_ref().and_then(|g| g.daily_quota).is_some() {
        hint = if app.is_empty() {
            let sql = format!("SELECT COUNT(*) FROM {table} WHERE d = 0{filter}");
            let mut q = sqlx::query_scalar::<_, i64>(&sql);
            for p in &params {
                q = q.bind(p.clone());
            }
            q.fetch_one(ex.pool.pool()).await?
        } else {
            // Counted by reading the rows the SQL conditions leave and decrypting what the others name.
            let sql = format!("SELECT d{} FROM {table} WHERE d = 0{filter}", columns_sql(n));
            let mut q = sqlx::query(&sql);
            for p in &params {
                q = q.bind(p.as_str());
            }
            let refs: Vec<&RowCondition> = app.iter().collect();
            let mut rows = q.fetch(ex.pool.pool());
            let mut count = 0i64;
            use futures_util::TryStreamExt;
            while let Some(r) = rows.try_next().await? {
                if a.passes(&refs, &values_of(&r, 1, n)?)? {
                    count += 1;
                }
            }
            count
        };
        require_quota(ex, &a, hint).await?;
    }
    // Records under verification (校核中): when there are any, the key is read too, to fill the last column.
    let flags = crate::flags::flags_of(ex, resource).await?;
    let flags = (!flags.is_empty()).then_some(flags);
    let mut columns: Vec<String> = (0..n).map(|i| export_column(&a, &app, i)).collect();
    if flags.is_some() {
        columns.push("k".into());
    }
    let width = columns.len();
    let sql = format!("SELECT {} FROM {table} WHERE d = 0{filter}", columns.join(", "));
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let ex2 = ex.clone();
    let ctx2 = ctx.clone();
    let a2 = a.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let sent = stream_rows(&ex2, &a2, &table, &sql, &params, width, format, flags, &tx).await;
            let (records, failure) = match sent {
                Ok(n) => (n, None),
                Err((n, e)) => (n, Some(e)),
            };
            if let Some(e) = &failure {
                tracing::warn!(error = %e, "an export stopped early");
                let _ = tx.send(Err(std::io::Error::other(e.clone()))).await;
            }
            count_usage(&ex2, &a2, records);
            ex2.log
                .record(event(
                    &ex2,
                    &ctx2,
                    &a2,
                    shutong_audit::Action::DataExport,
                    records,
                    json!({"format": format, "complete": failure.is_none()}),
                ))
                .await;
        })
    });
    let ext = match format {
        DataFormat::Ndjson => "ndjson",
        DataFormat::Parquet => "parquet",
        _ => "csv",
    };
    Ok(Export {
        content_type: match format {
            DataFormat::Ndjson => "application/x-ndjson",
            DataFormat::Parquet => "application/vnd.apache.parquet",
            _ => "text/csv; charset=utf-8",
        },
        file_name: format!("{}.{ext}", code.replace('/', "-")),
        records_hint: hint,
        body: rx,
    })
}

/// What an export reads of column `i`: nothing (NULL) for a column neither delivered nor named by a condition
/// evaluated after decryption, so that no unneeded value (ciphertexts among them) is read or sent.
/// (Cutting the ciphertext off masked values in SQL on PostgreSQL was tried: the string functions cost the
/// server more than sending the bytes, 0.52× → 0.23× COPY.)
fn export_column(a: &Access, app: &[RowCondition], i: usize) -> String {
    let delivered = a.items.iter().any(|it| it.column == i);
    let in_conditions = app.iter().any(|c| a.all_columns.get(&c.item) == Some(&i));
    if delivered || in_conditions { format!("c{i}") } else { "NULL".into() }
}

type Sender = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Streams the rows; returns the records sent, or those sent and the error that stopped it.
/// Encodes rows and sends the encoded chunks to the client, counting rows; an error carries the count so far.
struct Emitter<'a> {
    enc: Encoder<'a>,
    /// Row-filter conditions evaluated after decryption.
    app: Vec<&'a RowCondition>,
    tx: &'a Sender,
    count: i64,
}

impl Emitter<'_> {
    fn fail(&self, e: impl ToString) -> (i64, String) {
        (self.count, e.to_string())
    }

    async fn row<S: AsRef<str>>(&mut self, values: &[Option<S>]) -> Result<(), (i64, String)> {
        self.push(values)?;
        self.send_if_full().await
    }

    /// Encodes a row (if it passes the conditions evaluated here) without sending anything.
    fn push<S: AsRef<str>>(&mut self, values: &[Option<S>]) -> Result<(), (i64, String)> {
        if !self.app.is_empty() && !self.enc.a.passes(&self.app, values).map_err(|e| self.fail(e))? {
            return Ok(());
        }
        self.enc.push(values).map_err(|e| self.fail(e))?;
        self.count += 1;
        Ok(())
    }

    /// Sends the encoded bytes once there are enough of them.
    async fn send_if_full(&mut self) -> Result<(), (i64, String)> {
        if let Some(bytes) = self.enc.take_if_full().map_err(|e| self.fail(e))?
            && self.tx.send(Ok(bytes)).await.is_err()
        {
            return Err(self.fail("the client went away"));
        }
        Ok(())
    }

    async fn finish(self) -> Result<i64, (i64, String)> {
        let count = self.count;
        let last = self.enc.finish().map_err(|e| (count, e))?;
        if !last.is_empty() && self.tx.send(Ok(last)).await.is_err() {
            return Err((count, "the client went away".into()));
        }
        Ok(count)
    }
}

#[allow(clippy::too_many_arguments)]
async fn stream_rows(
    ex: &Exchange,
    a: &Access,
    table: &str,
    sql: &str,
    params: &[String],
    n: usize,
    format: DataFormat,
    flags: Option<Arc<crate::flags::FlagSet>>,
    tx: &Sender,
) -> Result<i64, (i64, String)> {
    use futures_util::StreamExt;
    let app = after_decryption(a, &a.row_filter.conditions);
    let mut out = Emitter { enc: Encoder::new(ex, a, format, flags.clone()).map_err(|e| (0, e))?, app, tx, count: 0 };
    // Each backend's own driver: values are read as borrowed text, without the portable pool's per-value
    // conversion (and, on SQLite, without sqlx handing every row across threads).
    match ex.pool.backend() {
        shutong_store::Backend::Postgres => {
            // COPY (SELECT …) TO STDOUT: the server's fastest way out, parsed here in a streaming pass. COPY
            // takes no parameters, so the row filter's values are inlined as standard string literals.
            let mut conn =
                ex.pool.pg_connection().await.map_err(|e| (0, e.to_string()))?.ok_or((0, "no PostgreSQL connection".to_string()))?;
            // The literals rely on standard strings (a backslash is just a character): make sure of it. The
            // stream leaves through this one connection, so parallel workers only add the hand-over of every
            // row to it, and JIT compilation buys nothing for a plain scan (shutong-bench exchange, N = 3M,
            // 2 cores: 0.48x COPY with PostgreSQL's defaults, 0.65-0.67x without either).
            for set in ["SET standard_conforming_strings = on", "SET max_parallel_workers_per_gather = 0", "SET jit = off"] {
                sqlx::query(set).execute(&mut conn).await.map_err(|e| out.fail(e))?;
            }
            // Binary: the server sends text values as they are, without escaping them, and they are read
            // here without unescaping.
            let copy = format!("COPY ({}) TO STDOUT WITH (FORMAT binary)", inline_params(sql, params));
            let mut stream = conn.copy_out_raw(&copy).await.map_err(|e| out.fail(e))?;
            let mut reader = shutong_store::binary::Reader::default();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| out.fail(e))?;
                reader
                    .feed::<String>(&chunk, n, |fields| {
                        let values: Vec<Option<&str>> = fields
                            .iter()
                            .map(|f| f.map(std::str::from_utf8).transpose())
                            .collect::<Result<_, _>>()
                            .map_err(|e| e.to_string())?;
                        out.push(&values).map_err(|(_, e)| e)
                    })
                    .map_err(|e| out.fail(e))?;
                out.send_if_full().await?;
            }
            if !reader.finished() {
                return Err(out.fail("COPY output ended inside a row"));
            }
        }
        shutong_store::Backend::Sqlite if format != DataFormat::Parquet => {
            let path = ex.pool.sqlite_path().ok_or((0, "the pool is not a SQLite file".to_string()))?;
            let header = std::mem::take(&mut out.enc.buf);
            if !header.is_empty() && tx.send(Ok(Bytes::from(header))).await.is_err() {
                return Err((0, "the client went away".into()));
            }
            return lite_export_parallel(ex, a, path, table, sql, params, n, format, flags, &out.app, tx);
        }
        shutong_store::Backend::Sqlite => {
            let path = ex.pool.sqlite_path().ok_or((0, "the pool is not a SQLite file".to_string()))?;
            let conn = lite_reader(path, 10).map_err(|e| (0, e.to_string()))?;
            let mut stmt = conn.prepare(sql).map_err(|e| (0, e.to_string()))?;
            bind_numbered(&mut stmt, params.iter().map(String::as_str)).map_err(|e| (0, e.to_string()))?;
            let mut rows = stmt.raw_query();
            while let Some(r) = rows.next().map_err(|e| out.fail(e))? {
                let values = lite_values(r, n).map_err(|e| out.fail(e))?;
                out.row(&values).await?;
            }
        }
    }
    out.finish().await
}

/// A read-only connection to the SQLite pool file, waiting up to `busy_seconds` for a writer.
pub(super) fn lite_reader(path: &std::path::Path, busy_seconds: u64) -> rusqlite::Result<rusqlite::Connection> {
    shutong_store::native::sqlite_reader(path, std::time::Duration::from_secs(busy_seconds))
}

/// A row's first `n` columns as borrowed text (or NULL).
fn lite_values<'r>(r: &'r rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Vec<Option<&'r str>>> {
    (0..n).map(|i| r.get_ref(i).and_then(|v| Ok(v.as_str_or_null()?))).collect()
}

/// Readers of a parallel SQLite export.
const EXPORT_READERS: usize = 2;

/// A CSV or NDJSON export from SQLite, read and encoded by [`EXPORT_READERS`] threads at once: the table's
/// rowids are cut into segments (at most 65,536 rowids, at least 1,024), reader `w` takes segments `w`,
/// `w + READERS`, …, and the segments' bytes are sent on in order, so the output is the same as one reader's
/// (rowid order). A reader is at most two segments ahead of the one being sent.
#[allow(clippy::too_many_arguments)]
fn lite_export_parallel(
    ex: &Exchange,
    a: &Access,
    path: &std::path::Path,
    table: &str,
    sql: &str,
    params: &[String],
    n: usize,
    format: DataFormat,
    flags: Option<Arc<crate::flags::FlagSet>>,
    app: &[&RowCondition],
    tx: &Sender,
) -> Result<i64, (i64, String)> {
    type Segment = Result<(Vec<Bytes>, i64), String>;
    let open = || lite_reader(path, 10);
    // The readers do not share a snapshot. The table is the binding's current one, which batches do not
    // change in place (a full batch makes a new table); an increment merged meanwhile may be seen by one
    // segment and not another, as a single reader may see it or not.
    let (lo, hi): (i64, i64) = open()
        .and_then(|c| {
            c.query_row(&format!("SELECT COALESCE(MIN(rowid), 0), COALESCE(MAX(rowid), -1) FROM {table}"), [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
        .map_err(|e| (0, e.to_string()))?;
    let span = (hi - lo + 1).max(0);
    let per = (span / 32).clamp(1024, 65_536);
    let segments = if span == 0 { 0 } else { (span + per - 1) / per };
    let ranged = format!("{sql} AND rowid >= $r1 AND rowid < $r2");
    let mut receivers = Vec::with_capacity(EXPORT_READERS);
    std::thread::scope(|scope| {
        for w in 0..EXPORT_READERS as i64 {
            let (stx, srx) = std::sync::mpsc::sync_channel::<Segment>(2);
            receivers.push(srx);
            let ranged = &ranged;
            let flags = flags.clone();
            scope.spawn(move || {
                let run = || -> Result<(), String> {
                    let conn = open().map_err(|e| e.to_string())?;
                    let mut stmt = conn.prepare(ranged).map_err(|e| e.to_string())?;
                    let mut i = w;
                    while i < segments {
                        let (from, to) = (lo + i * per, lo + (i + 1) * per);
                        let mut enc = Encoder::rows_only(ex, a, format, flags.clone())?;
                        let mut chunks = Vec::new();
                        let mut rows = 0i64;
                        bind_numbered(&mut stmt, params.iter().map(String::as_str)).map_err(|e| e.to_string())?;
                        let r1 = stmt.parameter_index("$r1").map_err(|e| e.to_string())?.ok_or("no $r1")?;
                        let r2 = stmt.parameter_index("$r2").map_err(|e| e.to_string())?.ok_or("no $r2")?;
                        stmt.raw_bind_parameter(r1, from).map_err(|e| e.to_string())?;
                        stmt.raw_bind_parameter(r2, to).map_err(|e| e.to_string())?;
                        let mut q = stmt.raw_query();
                        while let Some(r) = q.next().map_err(|e| e.to_string())? {
                            let values = lite_values(r, n).map_err(|e| e.to_string())?;
                            if !app.is_empty() && !a.passes(app, &values).map_err(|e| e.to_string())? {
                                continue;
                            }
                            enc.push(&values)?;
                            rows += 1;
                            if let Some(b) = enc.take_if_full()? {
                                chunks.push(b);
                            }
                        }
                        drop(q);
                        chunks.push(enc.finish()?);
                        if stx.send(Ok((chunks, rows))).is_err() {
                            return Ok(());
                        }
                        i += EXPORT_READERS as i64;
                    }
                    Ok(())
                };
                if let Err(e) = run() {
                    let _ = stx.send(Err(e));
                }
            });
        }
        // One more thread sends the segments on in order (not this one: it runs the export's async code,
        // where blocking sends are not allowed).
        let merger = scope.spawn(move || {
            let mut count = 0i64;
            for i in 0..segments {
                let part = receivers[(i as usize) % EXPORT_READERS].recv().map_err(|_| (count, "an export reader stopped".to_string()))?;
                let (chunks, rows) = part.map_err(|e| (count, e))?;
                for b in chunks {
                    if !b.is_empty() && tx.blocking_send(Ok(b)).is_err() {
                        return Err((count, "the client went away".to_string()));
                    }
                }
                count += rows;
            }
            // Readers blocked on a full channel end when their receivers are dropped, here.
            Ok(count)
        });
        merger.join().unwrap_or_else(|_| Err((0, "the export's sending thread failed".to_string())))
    })
}

/// `sql` with its `$n` parameters replaced by standard string literals (`'…'`, quotes doubled), for COPY.
fn inline_params(sql: &str, params: &[String]) -> String {
    let mut out = sql.to_string();
    // Highest first, so that `$1` does not match the start of `$10`.
    for (i, p) in params.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), &format!("'{}'", p.replace('\'', "''")));
    }
    out
}

/// Encodes projected rows into the download format, in chunks of about 256 KiB.
pub struct Encoder<'a> {
    ex: &'a Exchange,
    a: &'a Access,
    format: DataFormat,
    buf: Vec<u8>,
    parquet: Option<ParquetSink>,
    /// The dataset's records under verification, when there are any: each row then ends with its stored key.
    /// CSV and Parquet always end with the flag's column ([`crate::flags::FLAG_FIELD`]), empty for a record
    /// under no objection, so that a download's columns never depend on others' objections.
    flags: Option<Arc<crate::flags::FlagSet>>,
}

struct ParquetSink {
    writer: parquet::arrow::ArrowWriter<Vec<u8>>,
    schema: Arc<arrow_schema::Schema>,
    builders: Vec<arrow_array::builder::StringBuilder>,
    rows: usize,
}

const CHUNK: usize = 256 * 1024;
const ROW_GROUP: usize = 65_536;

impl<'a> Encoder<'a> {
    pub fn new(ex: &'a Exchange, a: &'a Access, format: DataFormat, flags: Option<Arc<crate::flags::FlagSet>>) -> Result<Self, String> {
        Self::with_header(ex, a, format, flags, true)
    }

    /// An encoder of CSV or NDJSON rows only, without the CSV header line: a later part of an export
    /// encoded in parallel.
    fn rows_only(ex: &'a Exchange, a: &'a Access, format: DataFormat, flags: Option<Arc<crate::flags::FlagSet>>) -> Result<Self, String> {
        Self::with_header(ex, a, format, flags, false)
    }

    fn with_header(
        ex: &'a Exchange,
        a: &'a Access,
        format: DataFormat,
        flags: Option<Arc<crate::flags::FlagSet>>,
        header: bool,
    ) -> Result<Self, String> {
        let mut e = Encoder { ex, a, format, buf: Vec::with_capacity(CHUNK + 4096), parquet: None, flags };
        match format {
            DataFormat::Parquet => {
                let mut fields: Vec<arrow_schema::Field> =
                    a.items.iter().map(|i| arrow_schema::Field::new(i.name.clone(), arrow_schema::DataType::Utf8, true)).collect();
                fields.push(arrow_schema::Field::new(crate::flags::FLAG_FIELD, arrow_schema::DataType::Utf8, true));
                let schema = Arc::new(arrow_schema::Schema::new(fields));
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(ROW_GROUP))
                    .build();
                let writer = parquet::arrow::ArrowWriter::try_new(Vec::with_capacity(CHUNK), schema.clone(), Some(props))
                    .map_err(|e| e.to_string())?;
                let builders = (0..a.items.len() + 1).map(|_| Default::default()).collect();
                e.parquet = Some(ParquetSink { writer, schema, builders, rows: 0 });
            }
            DataFormat::Ndjson => {}
            _ if !header => {}
            _ => {
                for (n, i) in a.items.iter().enumerate() {
                    csv_field(&mut e.buf, n, Some(&i.name));
                }
                csv_field(&mut e.buf, a.items.len(), Some(crate::flags::FLAG_FIELD));
                e.buf.extend_from_slice(b"\r\n");
            }
        }
        Ok(e)
    }

    pub fn push<S: AsRef<str>>(&mut self, values: &[Option<S>]) -> Result<(), String> {
        let (ex, a) = (self.ex, self.a);
        let masked = |i: &crate::access::OutItem| -> Result<Option<std::borrow::Cow<'_, str>>, String> {
            match values.get(i.column).and_then(|v| v.as_ref()) {
                Some(v) => crate::access::reveal(ex, a, i, v.as_ref()).map(Some).map_err(|e| e.to_string()),
                None => Ok(None),
            }
        };
        // The stored key, last, when the dataset has records under verification.
        let key = || values.get(a.binding.columns.len()).and_then(|v| v.as_ref()).map(|k| k.as_ref());
        match self.format {
            DataFormat::Ndjson => {
                let mut rec = project(self.ex, self.a, values).map_err(|e| e.to_string())?;
                if let (Some(flags), Some(k)) = (&self.flags, key())
                    && let Some(flag) = flags.value(k)
                {
                    rec.insert(crate::flags::FLAG_FIELD.into(), flag);
                }
                serde_json::to_writer(&mut self.buf, &rec).map_err(|e| e.to_string())?;
                self.buf.push(b'\n');
            }
            DataFormat::Parquet => {
                let items = &self.a.items;
                let mut vals: Vec<Option<std::borrow::Cow<'_, str>>> = items.iter().map(masked).collect::<Result<_, _>>()?;
                vals.push(self.flags.as_ref().and_then(|flags| key().and_then(|k| flags.cell(k))).map(std::borrow::Cow::Owned));
                let sink = self.parquet.as_mut().ok_or("no parquet writer")?;
                for (b, v) in sink.builders.iter_mut().zip(vals) {
                    b.append_option(v);
                }
                sink.rows += 1;
                if sink.rows >= ROW_GROUP {
                    self.flush_parquet()?;
                }
            }
            _ => {
                for (n, i) in self.a.items.iter().enumerate() {
                    let v = masked(i)?;
                    csv_field(&mut self.buf, n, v.as_deref());
                }
                let cell = self.flags.as_ref().and_then(|flags| key().and_then(|k| flags.cell(k)));
                csv_field(&mut self.buf, self.a.items.len(), cell.as_deref());
                self.buf.extend_from_slice(b"\r\n");
            }
        }
        Ok(())
    }

    fn flush_parquet(&mut self) -> Result<(), String> {
        let sink = self.parquet.as_mut().ok_or("no parquet writer")?;
        if sink.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<arrow_array::ArrayRef> = sink.builders.iter_mut().map(|b| Arc::new(b.finish()) as arrow_array::ArrayRef).collect();
        let batch = arrow_array::RecordBatch::try_new(sink.schema.clone(), arrays).map_err(|e| e.to_string())?;
        sink.writer.write(&batch).map_err(|e| e.to_string())?;
        sink.writer.flush().map_err(|e| e.to_string())?;
        sink.rows = 0;
        self.buf.append(sink.writer.inner_mut());
        Ok(())
    }

    /// The encoded bytes once there are enough of them.
    pub fn take_if_full(&mut self) -> Result<Option<Bytes>, String> {
        if self.buf.len() >= CHUNK {
            return Ok(Some(Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096)))));
        }
        Ok(None)
    }

    /// The rest, with the Parquet footer.
    pub fn finish(mut self) -> Result<Bytes, String> {
        if self.parquet.is_some() {
            self.flush_parquet()?;
            let sink = self.parquet.take().ok_or("no parquet writer")?;
            let rest = sink.writer.into_inner().map_err(|e| e.to_string())?;
            self.buf.extend_from_slice(&rest);
        }
        Ok(Bytes::from(self.buf))
    }
}

/// Appends one CSV field (RFC 4180: quoted when it holds a delimiter, quote or line break).
fn csv_field(buf: &mut Vec<u8>, n: usize, v: Option<&str>) {
    if n > 0 {
        buf.push(b',');
    }
    let Some(v) = v else { return };
    if v.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        buf.push(b'"');
        for b in v.bytes() {
            if b == b'"' {
                buf.push(b'"');
            }
            buf.push(b);
        }
        buf.push(b'"');
    } else {
        buf.extend_from_slice(v.as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod copy_tests {
    use super::*;

    #[test]
    fn params_are_inlined_as_literals() {
        let sql = "SELECT c0 FROM t WHERE d = 0 AND (c1 = $1 OR c1 = $10) AND (substr(c2, 1, 2) = $2)";
        let params: Vec<String> = (1..=10).map(|i| if i == 1 { "O'Brien".into() } else { format!("v{i}") }).collect();
        let out = inline_params(sql, &params);
        assert_eq!(out, "SELECT c0 FROM t WHERE d = 0 AND (c1 = 'O''Brien' OR c1 = 'v10') AND (substr(c2, 1, 2) = 'v2')");
    }
}

//! 数据归集: a provider's batch, streamed from the upload into a table of its own, then made visible in one
//! short transaction.
//!
//! A full batch loads into a new generation table (`xd_<code>_b<batch>`); an incremental batch into a
//! staging table (`xs_…`). Readers keep using the binding's current table until the final transaction
//! points the binding at the new generation (or merges the staging rows into it), records the batch and its
//! report, and releases the dataset's claim. A crash before that transaction leaves an orphan table that
//! the next start drops, and the batch `failed`; after it, the batch is complete. A batch ID that committed
//! once is answered with its report and not applied again.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use serde_json::json;
use shutong_audit::{AuditContext, NewAuditEvent};
use shutong_identity::{DepartmentId, Principal};
use shutong_reference::IdNumberValidator;
use shutong_store::{Backend, Row, binary, now_ms};

use crate::binding::{get_binding, load_batch, may_load, published};
use crate::model::*;
use crate::parse::{Columns, ParseOptions, Parsed};
use crate::validate::ItemCheck;
use crate::{Exchange, ExchangeError, ExchangeResult, invalid, schema};

/// What a batch is.
#[derive(Clone, Debug)]
pub struct BatchRequest {
    pub resource_code: String,
    pub mode: IngestMode,
    pub format: DataFormat,
    /// The client's batch ID (letters, digits, `.`, `_`, `-`, `:`; up to 100): re-sending it is safe.
    pub batch_id: Option<String>,
    pub delimiter: Option<u8>,
    pub encoding: Option<String>,
    /// Refuse the whole batch if any row is rejected (default: apply the valid rows, report the others).
    pub all_or_nothing: bool,
}

/// The upload: a reader (CSV, NDJSON), or a file on disk (XLSX needs random access).
pub enum Input {
    Reader(Box<dyn Read + Send + 'static>),
    File(std::path::PathBuf),
}

/// Checks a client batch ID.
pub fn check_batch_id(id: &str) -> ExchangeResult<()> {
    if id.is_empty() || id.len() > 100 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':')) {
        return Err(invalid("batch_id", format!("'{id}' must be 1–100 letters, digits, '.', '_', '-' or ':'")));
    }
    Ok(())
}

/// The report of a committed batch with this ID, if there is one.
pub async fn committed_batch(ex: &Exchange, code: &str, batch_id: &str) -> ExchangeResult<Option<BatchReport>> {
    let id: Option<i64> =
        sqlx::query("SELECT id FROM exchange_batches WHERE resource_code = $1 AND batch_key = $2 AND status = 'committed'")
            .bind(code)
            .bind(batch_id)
            .fetch_optional(ex.pool.pool())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    match id {
        Some(id) => {
            let mut r = load_batch(ex, code, id).await?;
            r.replayed = true;
            Ok(Some(r))
        }
        None => Ok(None),
    }
}

/// Everything a batch needs before reading its input: authorisation, the binding, an idempotency check.
/// Returns `Ok(Err(report))` when the batch ID already committed.
pub async fn prepare(ex: &Exchange, actor: &Principal, req: &BatchRequest) -> ExchangeResult<Result<(), BatchReport>> {
    if let Some(id) = &req.batch_id {
        check_batch_id(id)?;
    }
    let binding = get_binding(ex, &req.resource_code).await?.ok_or_else(|| ExchangeError::NotFound { what: "binding" })?;
    if !may_load(actor, DepartmentId(binding.provider_department_id)) {
        return Err(ExchangeError::Forbidden(
            "only the provider's catalog editors, administrators and system accounts load its data".into(),
        ));
    }
    if binding.kind != BindingKind::Dataset {
        return Err(ExchangeError::Conflict(format!("{} is bound as {}, not as a dataset", req.resource_code, binding.kind.label_zh())));
    }
    if req.format == DataFormat::Parquet {
        return Err(invalid("format", "Parquet is a download format; upload CSV, NDJSON or XLSX"));
    }
    if let Some(id) = &req.batch_id
        && let Some(done) = committed_batch(ex, &req.resource_code, id).await?
    {
        return Ok(Err(done));
    }
    Ok(Ok(()))
}

struct Chunk {
    rows: Vec<(i64, String, bool, Vec<Option<String>>)>,
    rejects: Vec<RejectedRow>,
}

enum Feed {
    Chunk(Chunk),
    Done { encoding: &'static str },
    Failed(ExchangeError),
}

/// Runs a batch: reads, validates and loads `input`, then commits it atomically. See the module comment.
pub async fn ingest(ex: &Exchange, actor: &Principal, ctx: &AuditContext, req: BatchRequest, input: Input) -> ExchangeResult<BatchReport> {
    if let Err(done) = prepare(ex, actor, &req).await? {
        return Ok(done);
    }
    let code = req.resource_code.clone();
    let p = published(ex, &code).await?;
    let binding = get_binding(ex, &code).await?.ok_or(ExchangeError::NotFound { what: "binding" })?;
    let key_item = binding.key_item.clone().ok_or_else(|| ExchangeError::Conflict("the dataset has no key item".into()))?;
    // Columns: the binding's, then items added by later catalog versions.
    let mut names = binding.columns.clone();
    for i in &p.document.items {
        if !names.contains(&i.name) {
            names.push(i.name.clone());
        }
    }
    let checks: Vec<Option<ItemCheck>> = names.iter().map(|n| p.document.items.iter().find(|i| &i.name == n).map(ItemCheck::of)).collect();
    let key = names
        .iter()
        .position(|n| *n == key_item)
        .ok_or_else(|| ExchangeError::Conflict(format!("the key item '{key_item}' is no longer an item")))?;
    if checks[key].is_none() {
        return Err(ExchangeError::Conflict(format!("the key item '{key_item}' is no longer in the published catalog entry")));
    }
    // A sensitive key is stored as its blind index. The table's choice stands until a full batch replaces it.
    let key_sealed = if req.mode == IngestMode::Full || binding.table_name.is_none() {
        ex.data_keys.is_some() && checks[key].as_ref().is_some_and(|c| c.mask.is_some())
    } else {
        binding.key_sealed
    };
    let columns = Columns { names, checks, key, key_sealed };

    // The batch record and the dataset's claim.
    let started = now_ms();
    let batch_key = req.batch_id.clone().unwrap_or_else(|| format!("auto-{}", uuid::Uuid::new_v4().simple()));
    let batch: i64 = sqlx::query(
        "INSERT INTO exchange_batches (resource_code, batch_key, mode, format, encoding, status, started_at, submitted_by, provider_department_id) \
         VALUES ($1, $2, $3, $4, '', 'loading', $5, $6, $7) RETURNING id",
    )
    .bind(&code)
    .bind(&batch_key)
    .bind(req.mode.as_str())
    .bind(req.format.as_str())
    .bind(started)
    .bind(&ctx.actor)
    .bind(binding.provider_department_id)
    .fetch_one(ex.pool.pool())
    .await?
    .try_get(0)?;
    if !claim(ex, &code, batch, started).await? {
        finish_failed(ex, batch, "another batch of this dataset is being loaded", false).await;
        return Err(ExchangeError::Conflict(format!("another batch of {code} is being loaded: try again when it has finished")));
    }
    let base: i64 = sqlx::query("SELECT last_seq FROM exchange_bindings WHERE resource_code = $1")
        .bind(&code)
        .fetch_one(ex.pool.pool())
        .await?
        .try_get(0)?;
    let load_table = schema::table_name(if req.mode == IngestMode::Full { "xd" } else { "xs" }, &code, batch);
    let result = load(ex, &req, input, &columns, batch, base, started, &load_table).await;
    let (encoding, received, rejects, rejected_count) = match result {
        Ok(v) => v,
        Err(e) => {
            drop_table(ex, &load_table).await;
            finish_failed(ex, batch, &failure_text(&e), true).await;
            return Err(e);
        }
    };
    let accepted = received - rejected_count;
    let empty_full = req.mode == IngestMode::Full && accepted == 0;
    if (req.all_or_nothing && rejected_count > 0) || empty_full {
        drop_table(ex, &load_table).await;
        let message = if empty_full {
            format!("the full batch has no valid rows ({rejected_count} rejected): it would empty the dataset, so nothing was applied")
        } else {
            format!("{rejected_count} of {received} rows were rejected and all_or_nothing is set: nothing was applied")
        };
        let report = finish_rejected(ex, batch, encoding, received, rejected_count, &rejects, &message).await?;
        return Err(ExchangeError::BatchRejected { message, report: Box::new(report) });
    }
    match commit(ex, ctx, &req, &p.provider, &columns, batch, base, started, &load_table, encoding, received, &rejects, rejected_count)
        .await
    {
        Ok(report) => Ok(report),
        Err(e) => {
            drop_table(ex, &load_table).await;
            let duplicate = matches!(&e, ExchangeError::Store(shutong_store::StoreError::Conflict { .. }));
            finish_failed(ex, batch, &failure_text(&e), true).await;
            if duplicate {
                // The same batch ID committed concurrently: answer with that batch's report.
                if let Some(done) = committed_batch(ex, &code, &batch_key).await? {
                    return Ok(done);
                }
            }
            Err(e)
        }
    }
}

/// The key column's type. On PostgreSQL keys collate "C" (byte order, as on SQLite): the key index is
/// built and searched with plain byte comparisons instead of the locale's, which made a full batch's index
/// build and every lookup slower, and gave no order anyone relies on.
fn key_type(ex: &Exchange) -> &'static str {
    match ex.pool.backend() {
        Backend::Postgres => "TEXT COLLATE \"C\"",
        Backend::Sqlite => "TEXT",
    }
}

/// Takes the dataset's claim for `holder` (a batch, or -1 for a re-encryption pass) unless another holder's
/// claim is younger than `exchange.claim_timeout_seconds`. Returns whether it was taken.
pub(crate) async fn claim(ex: &Exchange, code: &str, holder: i64, now: i64) -> ExchangeResult<bool> {
    let claimed = sqlx::query(
        "UPDATE exchange_bindings SET busy_batch = $1, busy_since = $2 WHERE resource_code = $3 AND (busy_batch IS NULL OR busy_since < $4)",
    )
    .bind(holder)
    .bind(now)
    .bind(code)
    .bind(now - ex.settings.claim_timeout_ms)
    .execute(ex.pool.pool())
    .await?
    .rows_affected();
    Ok(claimed > 0)
}

/// Reads the input on a blocking thread and writes its valid rows into `table`. Returns the encoding read,
/// the rows received, the reported rejects and the number rejected.
#[allow(clippy::too_many_arguments)]
async fn load(
    ex: &Exchange,
    req: &BatchRequest,
    input: Input,
    columns: &Columns,
    batch: i64,
    base: i64,
    started: i64,
    table: &str,
) -> ExchangeResult<(&'static str, i64, Vec<RejectedRow>, i64)> {
    let ncols = columns.names.len();
    let cols_sql: String = (0..ncols).map(|i| format!(", c{i} TEXT")).collect();
    // A full batch loads into a table without its key index (appends only) and builds it at the end (on
    // SQLite the sequence index is kept as the rows arrive, see below); an incremental batch stages into a
    // table keyed by k, where later rows win.
    let key_sql = format!("k {} {}", key_type(ex), if req.mode == IngestMode::Full { "NOT NULL" } else { "PRIMARY KEY" });
    let create =
        format!("CREATE TABLE {table} ({key_sql}, s BIGINT NOT NULL, b BIGINT NOT NULL, t BIGINT NOT NULL, d BIGINT NOT NULL{cols_sql})");
    // PostgreSQL: a full batch streams into its table with COPY, on a connection of its own, in the
    // transaction that creates the table, so that COPY may FREEZE the rows: they are written frozen and
    // all-visible, leaving no hint bits for the first readers (the first export, the first lookups) to set
    // and write back, and no whole-table vacuum to follow. (A failed load closes the connection: the
    // transaction, table and all, is rolled back.)
    let mut pg = if req.mode == IngestMode::Full { ex.pool.pg_connection().await? } else { None };
    match pg.as_mut() {
        Some(conn) => {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
            sqlx::query(&create).execute(&mut *conn).await?;
        }
        None => {
            sqlx::query(&create).execute(ex.pool.pool()).await?;
            if req.mode == IngestMode::Full {
                // SQLite: the sequence index is kept as the rows arrive, in increasing `s`, so that every
                // entry goes at its right edge; only the key index is built at the end, on one core.
                sqlx::query(&format!("CREATE INDEX {table}_s ON {table} (s)")).execute(ex.pool.pool()).await?;
            }
        }
    }

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Feed>(4);
    let chunk_rows = ex.settings.chunk_rows.max(1);
    let opts = ParseOptions { format: req.format, mode: req.mode, delimiter: req.delimiter, encoding: req.encoding.clone() };
    let today = ex.sharing.today();
    let xlsx_limits = ex.settings.xlsx_limits;
    let cols = Columns { names: columns.names.clone(), checks: columns.checks.clone(), key: columns.key, key_sealed: columns.key_sealed };
    // Sensitive items are encrypted on a thread of their own between the parser and the writer (a
    // pipeline: parsing, encrypting and writing overlap), before any row reaches the database.
    let sealer = ex.keys().map(|keys| {
        let columns: Vec<Option<crate::sealed::ColumnSealer>> = cols
            .checks
            .iter()
            .zip(&cols.names)
            .map(|(c, name)| {
                c.as_ref().and_then(|c| c.mask).map(|kind| crate::sealed::ColumnSealer::new(&ex.mask_rules, &req.resource_code, name, kind))
            })
            .collect();
        (keys, ex.mask_rules.clone(), columns)
    });
    let tx = match sealer {
        None => tx,
        Some((keys, rules, columns)) => {
            let key_sealed = cols.key_sealed;
            let seal_row = move |key: &mut String, values: &mut [Option<String>]| -> ExchangeResult<()> {
                if key_sealed {
                    *key = crate::sealed::key_column(Some(&keys), true, key)?.into_owned();
                }
                for (v, sealer) in values.iter_mut().zip(&columns) {
                    if let (Some(sealer), Some(plain)) = (sealer, v.as_deref()) {
                        *v = Some(sealer.seal(&keys, &rules, plain)?);
                    }
                }
                Ok(())
            };
            let (parsed_tx, mut parsed) = tokio::sync::mpsc::channel::<Feed>(4);
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
            tokio::task::spawn_blocking(move || {
                while let Some(feed) = parsed.blocking_recv() {
                    let feed = match feed {
                        Feed::Chunk(mut c) => {
                            // Split over the cores: SM4 in software is the dearest step of a batch.
                            let per = c.rows.len().div_ceil(threads).max(256);
                            let result = std::thread::scope(|scope| {
                                let mut parts = c.rows.chunks_mut(per);
                                let first = parts.next();
                                let others: Vec<_> = parts
                                    .map(|part| scope.spawn(|| part.iter_mut().try_for_each(|(_, key, _, values)| seal_row(key, values))))
                                    .collect();
                                let mut result =
                                    first.map_or(Ok(()), |part| part.iter_mut().try_for_each(|(_, key, _, values)| seal_row(key, values)));
                                for h in others {
                                    let r = h.join().unwrap_or_else(|_| Err(ExchangeError::Sealed("an encrypting thread failed".into())));
                                    result = result.and(r);
                                }
                                result
                            });
                            match result {
                                Ok(()) => Feed::Chunk(c),
                                Err(e) => Feed::Failed(e),
                            }
                        }
                        other => other,
                    };
                    let failed = matches!(feed, Feed::Failed(_));
                    if tx.blocking_send(feed).is_err() || failed {
                        return;
                    }
                }
            });
            parsed_tx
        }
    };
    let parser = tokio::task::spawn_blocking(move || {
        let ids = IdNumberValidator::new(today);
        let source = match input {
            Input::Reader(r) => match opts.format {
                DataFormat::Ndjson => crate::parse::ndjson_source(r, &opts, &cols, ids),
                DataFormat::Xlsx => Err(invalid("format", "an XLSX upload must be spooled to a file first")),
                _ => crate::parse::csv_source(r, &opts, &cols, ids),
            },
            Input::File(path) => match std::fs::File::open(&path) {
                Err(e) => Err(invalid("file", format!("cannot open {}: {e}", path.display()))),
                Ok(f) => match opts.format {
                    DataFormat::Xlsx => crate::parse::xlsx_source(f, &opts, &cols, ids, &xlsx_limits),
                    DataFormat::Ndjson => crate::parse::ndjson_source(Box::new(f), &opts, &cols, ids),
                    _ => crate::parse::csv_source(Box::new(f), &opts, &cols, ids),
                },
            },
        };
        let mut source = match source {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.blocking_send(Feed::Failed(e));
                return;
            }
        };
        let mut chunk = Chunk { rows: Vec::with_capacity(chunk_rows), rejects: Vec::new() };
        loop {
            match source.next_row() {
                None => break,
                Some(Err(e)) => {
                    let err = if e.to_string().contains("length limit exceeded") {
                        ExchangeError::TooLarge("the upload is larger than exchange.max_upload_bytes: nothing was applied".into())
                    } else {
                        invalid("file", format!("the upload broke off: {e}; nothing was applied"))
                    };
                    let _ = tx.blocking_send(Feed::Failed(err));
                    return;
                }
                Some(Ok(Parsed::Row { row, key, delete, values })) => chunk.rows.push((row, key, delete, values)),
                Some(Ok(Parsed::Reject(r))) => chunk.rejects.push(r),
            }
            if chunk.rows.len() >= chunk_rows || chunk.rejects.len() >= chunk_rows {
                let full = std::mem::replace(&mut chunk, Chunk { rows: Vec::with_capacity(chunk_rows), rejects: Vec::new() });
                if tx.blocking_send(Feed::Chunk(full)).is_err() {
                    return;
                }
            }
        }
        let encoding = source.encoding();
        if !chunk.rows.is_empty() || !chunk.rejects.is_empty() {
            let _ = tx.blocking_send(Feed::Chunk(chunk));
        }
        let _ = tx.blocking_send(Feed::Done { encoding });
    });

    let full = req.mode == IngestMode::Full;
    // SQLite binds parameters in time that grows faster than their number: small statements, one
    // transaction per chunk.
    let per_stmt = (300 / (3 + ncols)).clamp(1, chunk_rows);
    let names: String = (0..ncols).map(|i| format!(", c{i}")).collect();
    let on_conflict = if full {
        String::new()
    } else {
        let sets: String = (0..ncols).map(|i| format!(", c{i} = excluded.c{i}")).collect();
        format!(" ON CONFLICT (k) DO UPDATE SET s = excluded.s, d = excluded.d{sets}")
    };
    let fields = i16::try_from(5 + ncols).map_err(|_| invalid("columns", "too many columns"))?;
    let mut copy = match pg.as_mut() {
        // Binary: the server takes the values as they are, without parsing or unescaping them.
        Some(conn) => {
            Some(conn.copy_in_raw(&format!("COPY {table} (k, s, b, t, d{names}) FROM STDIN WITH (FORMAT binary, FREEZE)")).await?)
        }
        None => None,
    };
    // SQLite: a writer of its own on a blocking thread, one prepared single-row insert per row and one
    // transaction per chunk (sqlx would hand every statement across threads).
    let mut lite = match ex.pool.sqlite_path() {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).map_err(crate::store_failure)?;
            conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(crate::store_failure)?;
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(crate::store_failure)?;
            Some(conn)
        }
        None => None,
    };
    let lite_sql = Arc::new(format!(
        "INSERT INTO {table} (k, s, b, t, d{names}) VALUES (?1, ?2, {batch}, {started}, ?3{}){on_conflict}",
        (0..ncols).map(|c| format!(", ?{}", c + 4)).collect::<String>()
    ));
    let mut sql_cache: HashMap<usize, String> = HashMap::new();
    let mut rejects: Vec<RejectedRow> = Vec::new();
    let mut rejected = 0i64;
    let mut received = 0i64;
    let mut chunks = 0u64;
    let mut encoding = "utf-8";
    let max_reported = ex.settings.max_reported_rejects;
    let mut text = Vec::with_capacity(1 << 20);
    if let Some(c) = copy.as_mut() {
        binary::header(&mut text);
        c.send(text.as_slice()).await?;
    }
    while let Some(feed) = rx.recv().await {
        let chunk = match feed {
            Feed::Chunk(c) => c,
            Feed::Done { encoding: e } => {
                encoding = e;
                break;
            }
            Feed::Failed(e) => {
                let _ = parser.await;
                if let Some(c) = copy.take() {
                    let _ = c.abort("the upload failed").await;
                }
                return Err(e);
            }
        };
        received += (chunk.rows.len() + chunk.rejects.len()) as i64;
        for r in chunk.rejects {
            keep_reject(&mut rejects, &mut rejected, max_reported, r);
        }
        // Within a full batch a key may appear once: later repeats are rejected (first wins; repeats across
        // chunks are found when the key index is built). Within an incremental batch later rows win.
        let mut rows = chunk.rows;
        if full {
            let mut seen: HashMap<&str, i64> = HashMap::with_capacity(rows.len());
            let mut dup = Vec::new();
            for (i, (row, key, _, _)) in rows.iter().enumerate() {
                if let Some(first) = seen.get(key.as_str()) {
                    dup.push((i, *first, *row, key.clone()));
                } else {
                    seen.insert(key, *row);
                }
            }
            for (i, first, row, key) in dup.into_iter().rev() {
                rows.remove(i);
                let r = RejectedRow { row, key: Some(key), field: None, reason: format!("the key repeats row {first}") };
                keep_reject(&mut rejects, &mut rejected, max_reported, r);
            }
        } else {
            let mut last: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
            for (i, (_, key, _, _)) in rows.iter().enumerate() {
                last.insert(key, i);
            }
            if last.len() < rows.len() {
                let keep_idx: std::collections::HashSet<usize> = last.values().copied().collect();
                let mut i = 0;
                rows.retain(|_| {
                    let k = keep_idx.contains(&i);
                    i += 1;
                    k
                });
            }
        }
        if let Some(c) = copy.as_mut() {
            text.clear();
            for (row, key, delete, values) in &rows {
                binary::row(&mut text, fields);
                binary::text(&mut text, Some(key.as_bytes()));
                binary::int8(&mut text, Some(base + row));
                binary::int8(&mut text, Some(batch));
                binary::int8(&mut text, Some(started));
                binary::int8(&mut text, Some(*delete as i64));
                for v in values {
                    binary::text(&mut text, v.as_deref().map(str::as_bytes));
                }
            }
            c.send(text.as_slice()).await?;
        } else if let Some(conn) = lite.take() {
            let sql = lite_sql.clone();
            let (conn, written) = tokio::task::spawn_blocking(move || {
                let mut conn = conn;
                let written = write_chunk(&mut conn, &sql, base, &rows);
                (conn, written)
            })
            .await
            .map_err(crate::store_failure)?;
            written.map_err(crate::store_failure)?;
            lite = Some(conn);
        } else {
            let mut tx = ex.pool.pool().begin().await?;
            for part in rows.chunks(per_stmt) {
                let sql = sql_cache.entry(part.len()).or_insert_with(|| {
                    let width = 3 + ncols;
                    let mut s = String::with_capacity(64 + part.len() * width * 6);
                    s.push_str(&format!("INSERT INTO {table} (k, s, b, t, d{names}) VALUES "));
                    for r in 0..part.len() {
                        if r > 0 {
                            s.push(',');
                        }
                        let b = r * width;
                        s.push_str(&format!("(${}, ${}, {batch}, {started}, ${}", b + 1, b + 2, b + 3));
                        for c in 0..ncols {
                            s.push_str(&format!(", ${}", b + 4 + c));
                        }
                        s.push(')');
                    }
                    s.push_str(&on_conflict);
                    s
                });
                let mut q = sqlx::query(sql.as_str());
                for (row, key, delete, values) in part {
                    q = q.bind(key.as_str()).bind(base + row).bind(*delete as i64);
                    for v in values {
                        q = q.bind(v.as_deref());
                    }
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        chunks += 1;
        if chunks.is_multiple_of(16) {
            sqlx::query("UPDATE exchange_bindings SET busy_since = $1 WHERE resource_code = $2 AND busy_batch = $3")
                .bind(now_ms())
                .bind(&req.resource_code)
                .bind(batch)
                .execute(ex.pool.pool())
                .await?;
        }
    }
    if let Some(mut c) = copy.take() {
        c.send(&binary::TRAILER[..]).await?;
        c.finish().await?;
    }
    drop(copy);
    if let Some(conn) = pg.as_mut() {
        sqlx::query("COMMIT").execute(&mut *conn).await?;
    }
    drop(pg);
    if full {
        // The key index. A key repeated across chunks makes it fail: keep each key's first row, reject the
        // others, and build it again.
        let unique = format!("CREATE UNIQUE INDEX {table}_k ON {table} (k)");
        let by_seq = format!("CREATE INDEX {table}_s ON {table} (s)");
        // On PostgreSQL both are built at once, on two connections: a build's last stage (merging the sorted
        // runs and writing the index) runs on one core. On SQLite (one writer) the sequence index exists
        // already, and the key index's sorter takes a second thread (shutong-bench exchange, N = 3M: the
        // load's single-threaded tail went from about 5 s to about 2 s with both changes).
        let pg = ex.pool.backend() == shutong_store::Backend::Postgres;
        let (built, seq_built) = if pg {
            let (k, s) = tokio::join!(sqlx::query(&unique).execute(ex.pool.pool()), sqlx::query(&by_seq).execute(ex.pool.pool()));
            (k, Some(s))
        } else {
            let mut conn = ex.pool.pool().acquire().await?;
            sqlx::query("PRAGMA threads = 2").execute(&mut *conn).await?;
            let built = sqlx::query(&unique).execute(&mut *conn).await;
            // Back to one thread for the pool's other users; should that fail, a second sorter thread is
            // all the connection keeps.
            let _ = sqlx::query("PRAGMA threads = 0").execute(&mut *conn).await;
            (built, None)
        };
        if let Err(e) = built {
            match shutong_store::StoreError::from(e) {
                shutong_store::StoreError::Conflict { .. } => {}
                other => return Err(other.into()),
            }
            let dups = sqlx::query(&format!(
                "SELECT k, s FROM {table} WHERE k IN (SELECT k FROM {table} GROUP BY k HAVING COUNT(*) > 1) ORDER BY k, s"
            ))
            .fetch_all(ex.pool.pool())
            .await?;
            let mut first: Option<(String, i64)> = None;
            for r in dups {
                let (k, s): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
                match &first {
                    Some((fk, fs)) if *fk == k => {
                        sqlx::query(&format!("DELETE FROM {table} WHERE k = $1 AND s = $2"))
                            .bind(&k)
                            .bind(s)
                            .execute(ex.pool.pool())
                            .await?;
                        let reason = format!("the key repeats row {}", fs - base);
                        keep_reject(
                            &mut rejects,
                            &mut rejected,
                            max_reported,
                            RejectedRow { row: s - base, key: Some(k), field: None, reason },
                        );
                    }
                    _ => first = Some((k, s)),
                }
            }
            sqlx::query(&unique).execute(ex.pool.pool()).await?;
        }
        if let Some(built) = seq_built {
            built?;
        }
    }
    let _ = parser.await;
    rejects.sort_by_key(|r| r.row);
    Ok((encoding, received, rejects, rejected))
}

/// Writes one chunk in one SQLite transaction with a prepared single-row insert.
fn write_chunk(
    conn: &mut rusqlite::Connection,
    sql: &str,
    base: i64,
    rows: &[(i64, String, bool, Vec<Option<String>>)],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(sql)?;
        for (row, key, delete, values) in rows {
            stmt.raw_bind_parameter(1, key.as_str())?;
            stmt.raw_bind_parameter(2, base + row)?;
            stmt.raw_bind_parameter(3, *delete as i64)?;
            for (i, v) in values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 4, v.as_deref())?;
            }
            stmt.raw_execute()?;
        }
    }
    tx.commit()
}

/// The final transaction: the loaded rows become the dataset (full) or are merged into it (incremental).
#[allow(clippy::too_many_arguments)]
async fn commit(
    ex: &Exchange,
    ctx: &AuditContext,
    req: &BatchRequest,
    provider: &DepartmentId,
    columns: &Columns,
    batch: i64,
    base: i64,
    started: i64,
    load_table: &str,
    encoding: &str,
    received: i64,
    rejects: &[RejectedRow],
    rejected: i64,
) -> ExchangeResult<BatchReport> {
    let code = &req.resource_code;
    let ncols = columns.names.len();
    let mut tx = ex.pool.pool().begin().await?;
    // Still ours? (A claim lapses if this writer stalled past the timeout and another batch took over.)
    let row = sqlx::query("SELECT busy_batch, table_name, last_seq, row_count, columns FROM exchange_bindings WHERE resource_code = $1")
        .bind(code)
        .fetch_one(&mut *tx)
        .await?;
    if row.try_get::<Option<i64>, _>("busy_batch")? != Some(batch) {
        return Err(ExchangeError::Conflict(
            "the batch lost its claim on the dataset (it stalled past exchange.claim_timeout_seconds)".into(),
        ));
    }
    let old_table: Option<String> = row.try_get("table_name")?;
    let last_seq: i64 = row.try_get("last_seq")?;
    let old_count: i64 = row.try_get("row_count")?;
    let old_columns: Vec<String> = shutong_store::parse_column(&row, "exchange_bindings", "columns", |s| serde_json::from_str(s).ok())?;
    let now = now_ms();
    let (upserted, deleted, rows_after, first_seq, max_seq, table, reset_seq, drop_after) = if req.mode == IngestMode::Full {
        let r = sqlx::query(&format!("SELECT COUNT(*), MIN(s), MAX(s) FROM {load_table}")).fetch_one(&mut *tx).await?;
        let n: i64 = r.try_get(0)?;
        let min: Option<i64> = r.try_get(1)?;
        let max: Option<i64> = r.try_get(2)?;
        (n, 0, n, min, max, load_table.to_string(), Some(min.unwrap_or(last_seq + 1)), old_table.clone())
    } else {
        // The dataset's table: the current one, extended by new columns, or a new one for a first batch.
        let target = match &old_table {
            Some(t) => {
                for i in old_columns.len()..ncols {
                    sqlx::query(&format!("ALTER TABLE {t} ADD COLUMN c{i} TEXT")).execute(&mut *tx).await?;
                }
                t.clone()
            }
            None => {
                let t = schema::table_name("xd", code, batch);
                let cols_sql: String = (0..ncols).map(|i| format!(", c{i} TEXT")).collect();
                sqlx::query(&format!(
                    "CREATE TABLE {t} (k {} NOT NULL, s BIGINT NOT NULL, b BIGINT NOT NULL, t BIGINT NOT NULL, d BIGINT NOT NULL{cols_sql})",
                    key_type(ex)
                ))
                .execute(&mut *tx)
                .await?;
                sqlx::query(&format!("CREATE UNIQUE INDEX {t}_k ON {t} (k)")).execute(&mut *tx).await?;
                sqlx::query(&format!("CREATE INDEX {t}_s ON {t} (s)")).execute(&mut *tx).await?;
                t
            }
        };
        // The staging keys compare in the target's collation, so that its key index serves the join: a
        // dataset created before keys collated "C" keeps the database's default.
        let collate = match ex.pool.backend() {
            Backend::Postgres => {
                let c: Option<String> = sqlx::query(
                    "SELECT collation_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'k'",
                )
                .bind(&target)
                .fetch_optional(&mut *tx)
                .await?
                .and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten());
                if c.as_deref() == Some("C") { "" } else { " COLLATE \"default\"" }
            }
            Backend::Sqlite => "",
        };
        let r = sqlx::query(&format!(
            "SELECT COALESCE(SUM(CASE WHEN st.d = 0 THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN st.d = 1 THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN st.d = 0 AND (t.k IS NULL OR t.d = 1) THEN 1 ELSE 0 END), 0), \
                    COALESCE(SUM(CASE WHEN st.d = 1 AND t.k IS NOT NULL AND t.d = 0 THEN 1 ELSE 0 END), 0), \
                    MIN(st.s), MAX(st.s) \
             FROM {load_table} st LEFT JOIN {target} t ON t.k = st.k{collate}"
        ))
        .fetch_one(&mut *tx)
        .await?;
        let (ups, dels, added, removed): (i64, i64, i64, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        let (min, max): (Option<i64>, Option<i64>) = (r.try_get(4)?, r.try_get(5)?);
        let names: String = (0..ncols).map(|i| format!(", c{i}")).collect();
        let sets: String = (0..ncols).map(|i| format!(", c{i} = excluded.c{i}")).collect();
        sqlx::query(&format!(
            "INSERT INTO {target} (k, s, b, t, d{names}) SELECT k, s, b, t, d{names} FROM {load_table} WHERE true \
             ON CONFLICT (k) DO UPDATE SET s = excluded.s, b = excluded.b, t = excluded.t, d = excluded.d{sets}"
        ))
        .execute(&mut *tx)
        .await?;
        (ups, dels, old_count + added - removed, min, max, target, None, Some(load_table.to_string()))
    };
    let new_last = max_seq.unwrap_or(last_seq).max(last_seq);
    sqlx::query(
        "UPDATE exchange_bindings SET table_name = $1, columns = $2, last_seq = $3, reset_seq = COALESCE($4, reset_seq), row_count = $5, \
         last_batch_at = $6, busy_batch = NULL, busy_since = NULL, updated_at = $6, key_sealed = $8 WHERE resource_code = $7",
    )
    .bind(&table)
    .bind(json!(columns.names).to_string())
    .bind(new_last)
    .bind(reset_seq)
    .bind(rows_after)
    .bind(now)
    .bind(code)
    .bind(columns.key_sealed as i64)
    .execute(&mut *tx)
    .await?;
    // `audited` marked batches whose event was still to be written by an older release; the event is now
    // written with the batch, in its transaction or through the pool's audit outbox.
    let audited = true;
    sqlx::query(
        "UPDATE exchange_batches SET status = 'committed', encoding = $1, rows_received = $2, rows_upserted = $3, rows_deleted = $4, \
         rows_rejected = $5, rows_after = $6, first_seq = $7, last_seq = $8, finished_at = $9, audited = $10 WHERE id = $11",
    )
    .bind(encoding)
    .bind(received)
    .bind(upserted)
    .bind(deleted)
    .bind(rejected)
    .bind(rows_after)
    .bind(first_seq)
    .bind(max_seq)
    .bind(now)
    .bind(audited as i64)
    .bind(batch)
    .execute(&mut *tx)
    .await?;
    insert_rejects(&mut tx, batch, rejects).await?;
    let detail = json!({
        "batch": batch, "batch_id": req.batch_id, "mode": req.mode, "format": req.format, "received": received,
        "upserted": upserted, "deleted": deleted, "rejected": rejected, "rows_after": rows_after,
        "first_seq": first_seq, "last_seq": max_seq, "started_at": started, "base_seq": base,
    });
    if ex.same_database() {
        shutong_audit::record(&mut tx, ctx, batch_event(code, provider, detail.clone())).await?;
    } else {
        shutong_audit::outbox::enqueue(&mut tx, ctx, batch_event(code, provider, detail.clone())).await?;
    }
    tx.commit().await?;
    if let Some(t) = drop_after {
        drop_table(ex, &t).await;
    }
    if !ex.same_database() {
        audit_outbox(ex).await;
    }
    ex.invalidate();
    load_batch(ex, code, batch).await
}

fn batch_event(code: &str, provider: &DepartmentId, detail: serde_json::Value) -> NewAuditEvent<'static> {
    NewAuditEvent { action: "data.batch", target_kind: "resource", target_id: code.to_string(), department_id: Some(provider.0), detail }
}

/// Moves the events of the pool's audit outbox into the platform's trail (SQLite: the pool is a database of
/// its own), and writes those of committed batches left unaudited by an older release. Run after every
/// commit and at start; what fails stays for the next run.
pub async fn audit_outbox(ex: &Exchange) {
    if ex.same_database() {
        return;
    }
    if let Err(e) = shutong_audit::outbox::drain(&ex.db, &ex.pool, "pool").await {
        tracing::warn!(error = %e, "pool audit outbox: will retry");
    }
    let run = async {
        let rows = sqlx::query("SELECT * FROM exchange_batches WHERE status = 'committed' AND audited = 0 ORDER BY id LIMIT 100")
            .fetch_all(ex.pool.pool())
            .await?;
        for r in rows {
            let report = crate::binding::report_from_row(&r)?;
            let provider = DepartmentId(r.try_get("provider_department_id")?);
            let ctx = AuditContext { actor: report.submitted_by.clone(), ..Default::default() };
            let detail = json!({
                "batch": report.id, "batch_id": report.batch_id, "mode": report.mode, "format": report.format,
                "received": report.rows_received, "upserted": report.rows_upserted, "deleted": report.rows_deleted,
                "rejected": report.rows_rejected, "rows_after": report.rows_after, "first_seq": report.first_seq,
                "last_seq": report.last_seq, "started_at": report.started_at_ms,
            });
            let mut conn = ex.db.pool().acquire().await.map_err(shutong_store::StoreError::from)?;
            shutong_audit::record(&mut conn, &ctx, batch_event(&report.resource_code, &provider, detail)).await?;
            sqlx::query("UPDATE exchange_batches SET audited = 1 WHERE id = $1").bind(report.id).execute(ex.pool.pool()).await?;
        }
        ExchangeResult::Ok(())
    };
    if let Err(e) = run.await {
        tracing::warn!(error = %e, "batch audit outbox: will retry");
    }
}

async fn insert_rejects(tx: &mut shutong_store::Tx, batch: i64, rejects: &[RejectedRow]) -> ExchangeResult<()> {
    for part in rejects.chunks(500) {
        let mut sql = String::from("INSERT INTO exchange_rejects (batch_id, row_no, record_key, field, reason) VALUES ");
        for i in 0..part.len() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 4;
            sql.push_str(&format!("({batch}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4));
        }
        let mut q = sqlx::query(&sql);
        for r in part {
            q = q.bind(r.row).bind(r.key.as_deref()).bind(r.field.as_deref()).bind(r.reason.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn drop_table(ex: &Exchange, table: &str) {
    if schema::is_pool_table_name(table)
        && let Err(e) = sqlx::query(&format!("DROP TABLE IF EXISTS {table}")).execute(ex.pool.pool()).await
    {
        tracing::warn!(error = %e, table, "could not drop a dataset table; the next start drops it");
    }
}

/// Why a batch failed, as its report shows it to the provider: the error for what the provider can mend,
/// opaque for the platform's own faults (they are logged, as a 5xx answer is).
fn failure_text(e: &ExchangeError) -> String {
    match e {
        ExchangeError::Store(shutong_store::StoreError::Unavailable(_)) => "the database was unavailable: send the batch again".into(),
        ExchangeError::Store(_) | ExchangeError::Sealed(_) => "an internal error stopped the batch (see the server log)".into(),
        other => other.to_string(),
    }
}

/// Marks a batch failed and releases its claim (if `release`).
async fn finish_failed(ex: &Exchange, batch: i64, why: &str, release: bool) {
    let run = async {
        sqlx::query("UPDATE exchange_batches SET status = 'failed', failure = $1, finished_at = $2 WHERE id = $3")
            .bind(why)
            .bind(now_ms())
            .bind(batch)
            .execute(ex.pool.pool())
            .await?;
        if release {
            sqlx::query("UPDATE exchange_bindings SET busy_batch = NULL, busy_since = NULL WHERE busy_batch = $1")
                .bind(batch)
                .execute(ex.pool.pool())
                .await?;
        }
        ExchangeResult::Ok(())
    };
    if let Err(e) = run.await {
        tracing::warn!(error = %e, batch, "could not record a failed batch; the next start cleans it up");
    }
}

async fn finish_rejected(
    ex: &Exchange,
    batch: i64,
    encoding: &str,
    received: i64,
    rejected: i64,
    rejects: &[RejectedRow],
    why: &str,
) -> ExchangeResult<BatchReport> {
    let mut tx = ex.pool.pool().begin().await?;
    sqlx::query(
        "UPDATE exchange_batches SET status = 'rejected', encoding = $1, rows_received = $2, rows_rejected = $3, failure = $4, finished_at = $5 WHERE id = $6",
    )
    .bind(encoding)
    .bind(received)
    .bind(rejected)
    .bind(why)
    .bind(now_ms())
    .bind(batch)
    .execute(&mut *tx)
    .await?;
    insert_rejects(&mut tx, batch, rejects).await?;
    sqlx::query("UPDATE exchange_bindings SET busy_batch = NULL, busy_since = NULL WHERE busy_batch = $1")
        .bind(batch)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let code: String =
        sqlx::query("SELECT resource_code FROM exchange_batches WHERE id = $1").bind(batch).fetch_one(ex.pool.pool()).await?.try_get(0)?;
    load_batch(ex, &code, batch).await
}

fn keep_reject(rejects: &mut Vec<RejectedRow>, rejected: &mut i64, max: usize, r: RejectedRow) {
    *rejected += 1;
    if rejects.len() < max {
        rejects.push(r);
    }
}

//! Loading a batch into its table: the input is parsed on a blocking thread, sensitive items are encrypted
//! on another, and the main task writes each chunk through the backend's [`Writer`] while the next is
//! parsed (a pipeline of bounded channels: memory stays a few chunks whatever the upload's size). A full
//! batch's key index is built at the end.

use std::collections::HashMap;

use shutong_reference::IdNumberValidator;
use shutong_store::{Row, now_ms};

use super::writers::{LoadRow, Target, Writer};
use super::{BatchRequest, Input, keep_reject, key_type};
use crate::model::*;
use crate::parse::{Columns, ParseOptions, Parsed};
use crate::{Exchange, ExchangeError, ExchangeResult, invalid};

struct Chunk {
    rows: Vec<LoadRow>,
    rejects: Vec<RejectedRow>,
}

enum Feed {
    Chunk(Chunk),
    Done { encoding: &'static str },
    Failed(ExchangeError),
}

/// What a load read: the encoding, the rows received, the rejects reported and the number rejected.
pub(super) type Loaded = (&'static str, i64, Vec<RejectedRow>, i64);

/// Where a load stands in its batch: a batch sent whole is one stage that creates its table and finishes
/// it; a batch uploaded in parts creates its table with the first part, appends the others and finishes
/// with the last.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stage {
    /// The table exists (a later part): rows are appended.
    pub append: bool,
    /// The last rows of the batch: a full batch's key index is built.
    pub finish: bool,
    /// Rows of the batch before this load: row `r` of this input is row `row_offset + r` of the batch.
    pub row_offset: i64,
    /// Rejects the batch has reported already (they count against `exchange.max_reported_rejects`).
    pub reported: usize,
}

impl Stage {
    /// A batch sent whole.
    pub const WHOLE: Stage = Stage { append: false, finish: true, row_offset: 0, reported: 0 };
}

/// Reads the input and writes its valid rows into `table`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn load(
    ex: &Exchange,
    req: &BatchRequest,
    input: Input,
    columns: &Columns,
    batch: i64,
    base: i64,
    started: i64,
    table: &str,
    stage: Stage,
) -> ExchangeResult<Loaded> {
    let full = req.mode == IngestMode::Full;
    let offset = stage.row_offset;
    let target = Target { table, ncols: columns.names.len(), batch, started, base: base + offset, full, freeze: !stage.append };
    // PostgreSQL: a full batch streams into its table with COPY, on a connection of its own, in the
    // transaction that creates the table, so that COPY may FREEZE the rows: they are written frozen and
    // all-visible, leaving no hint bits for the first readers (the first export, the first lookups) to set
    // and write back, and no whole-table vacuum to follow. (A failed load closes the connection: the
    // transaction, table and all, is rolled back.)
    let mut pg = if full { ex.pool.pg_connection().await? } else { None };
    if stage.append {
        if let Some(conn) = pg.as_mut() {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
        }
    } else {
        create_table(ex, pg.as_mut(), &target).await?;
    }

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Feed>(4);
    let tx = spawn_sealer(ex, req, columns, tx);
    let parser = spawn_parser(ex, req, input, columns, tx);

    let max_reported = ex.settings.max_reported_rejects.saturating_sub(stage.reported);
    let (mut rejects, mut rejected, mut received, mut chunks, mut encoding) = (Vec::new(), 0i64, 0i64, 0u64, "utf-8");
    let mut writer = Writer::open(ex, pg.as_mut(), &target).await?;
    while let Some(feed) = rx.recv().await {
        let chunk = match feed {
            Feed::Chunk(c) => c,
            Feed::Done { encoding: e } => {
                encoding = e;
                break;
            }
            Feed::Failed(e) => {
                let _ = parser.await;
                writer.abort("the upload failed").await;
                return Err(e);
            }
        };
        received += (chunk.rows.len() + chunk.rejects.len()) as i64;
        for r in chunk.rejects {
            keep_reject(&mut rejects, &mut rejected, max_reported, RejectedRow { row: r.row + offset, ..r });
        }
        let rows = one_row_per_key(chunk.rows, full, offset, |r| keep_reject(&mut rejects, &mut rejected, max_reported, r));
        writer.write(rows).await?;
        chunks += 1;
        if chunks.is_multiple_of(16) {
            // The claim's heartbeat: a batch still loading is not taken for a crashed one.
            sqlx::query("UPDATE exchange_bindings SET busy_since = $1 WHERE resource_code = $2 AND busy_batch = $3")
                .bind(now_ms())
                .bind(req.resource_code.as_str())
                .bind(batch)
                .execute(ex.pool.pool())
                .await?;
        }
    }
    writer.finish().await?;
    if let Some(conn) = pg.as_mut() {
        sqlx::query("COMMIT").execute(&mut *conn).await?;
    }
    drop(pg);
    if full && stage.finish {
        build_key_index(ex, table, base, &mut |r| keep_reject(&mut rejects, &mut rejected, max_reported, r)).await?;
    }
    let _ = parser.await;
    rejects.sort_by_key(|r| r.row);
    Ok((encoding, received, rejects, rejected))
}

/// Creates the load table. A full batch loads into a table without its key index (appends only) and
/// builds it at the end (on SQLite the sequence index is kept as the rows arrive); an incremental batch
/// stages into a table keyed by `k`, where later rows win.
async fn create_table(ex: &Exchange, pg: Option<&mut sqlx::PgConnection>, t: &Target<'_>) -> ExchangeResult<()> {
    let table = t.table;
    let cols_sql: String = (0..t.ncols).map(|i| format!(", c{i} TEXT")).collect();
    let key_sql = format!("k {} {}", key_type(ex), if t.full { "NOT NULL" } else { "PRIMARY KEY" });
    let create =
        format!("CREATE TABLE {table} ({key_sql}, s BIGINT NOT NULL, b BIGINT NOT NULL, t BIGINT NOT NULL, d BIGINT NOT NULL{cols_sql})");
    match pg {
        Some(conn) => {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
            sqlx::query(&create).execute(&mut *conn).await?;
        }
        None => {
            sqlx::query(&create).execute(ex.pool.pool()).await?;
            if t.full && ex.pool.backend() == shutong_store::Backend::Sqlite {
                // SQLite: the sequence index is kept as the rows arrive, in increasing `s`, so that every
                // entry goes at its right edge; only the key index is built at the end, on one core.
                sqlx::query(&format!("CREATE INDEX {table}_s ON {table} (s)")).execute(ex.pool.pool()).await?;
            }
        }
    }
    Ok(())
}

/// Within a full batch a key may appear once: later repeats are rejected (first wins; repeats across chunks
/// are found when the key index is built). Within an incremental batch later rows win.
fn one_row_per_key(mut rows: Vec<LoadRow>, full: bool, offset: i64, mut reject: impl FnMut(RejectedRow)) -> Vec<LoadRow> {
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
            reject(RejectedRow {
                row: row + offset,
                key: Some(key),
                field: None,
                reason: format!("the key repeats row {}", first + offset),
            });
        }
    } else {
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
        for (i, (_, key, _, _)) in rows.iter().enumerate() {
            last.insert(key, i);
        }
        if last.len() < rows.len() {
            let keep: std::collections::HashSet<usize> = last.values().copied().collect();
            let mut i = 0;
            rows.retain(|_| {
                let k = keep.contains(&i);
                i += 1;
                k
            });
        }
    }
    rows
}

/// Sensitive items are encrypted on a thread of their own between the parser and the writer (a pipeline:
/// parsing, encrypting and writing overlap), before any row reaches the database. Returns the sender the
/// parser feeds: `out` itself when nothing is sealed.
fn spawn_sealer(
    ex: &Exchange,
    req: &BatchRequest,
    cols: &Columns,
    out: tokio::sync::mpsc::Sender<Feed>,
) -> tokio::sync::mpsc::Sender<Feed> {
    let Some(keys) = ex.keys() else {
        return out;
    };
    let rules = ex.mask_rules.clone();
    let columns: Vec<Option<crate::sealed::ColumnSealer>> = cols
        .checks
        .iter()
        .zip(&cols.names)
        .map(|(c, name)| {
            c.as_ref()
                .and_then(|c| c.mask)
                .map(|kind| crate::sealed::ColumnSealer::new(&ex.mask_rules, req.resource_code.as_str(), name, kind))
        })
        .collect();
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
            if out.blocking_send(feed).is_err() || failed {
                return;
            }
        }
    });
    parsed_tx
}

/// Parses the input on a blocking thread into chunks of rows and rejects.
fn spawn_parser(
    ex: &Exchange,
    req: &BatchRequest,
    input: Input,
    columns: &Columns,
    tx: tokio::sync::mpsc::Sender<Feed>,
) -> tokio::task::JoinHandle<()> {
    let chunk_rows = ex.settings.chunk_rows.max(1);
    let opts = ParseOptions { format: req.format, mode: req.mode, delimiter: req.delimiter, encoding: req.encoding.clone() };
    let today = ex.sharing.today();
    let xlsx_limits = ex.settings.xlsx_limits;
    let cols = Columns { names: columns.names.clone(), checks: columns.checks.clone(), key: columns.key, key_sealed: columns.key_sealed };
    tokio::task::spawn_blocking(move || {
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
    })
}

/// A full batch's key index. A key repeated across chunks makes it fail: each key's first row is kept, the
/// others rejected, and it is built again. On PostgreSQL the sequence index is built at the same time on a
/// second connection (a build's last stage — merging the sorted runs and writing the index — runs on one
/// core); on SQLite (one writer) the sequence index exists already, and the key index's sorter takes a
/// second thread (shutong-bench exchange, N = 3M: the load's single-threaded tail went from about 5 s to
/// about 2 s with both changes).
async fn build_key_index(ex: &Exchange, table: &str, base: i64, reject: &mut impl FnMut(RejectedRow)) -> ExchangeResult<()> {
    let unique = format!("CREATE UNIQUE INDEX {table}_k ON {table} (k)");
    let by_seq = format!("CREATE INDEX {table}_s ON {table} (s)");
    let (built, seq_built) = if ex.pool.backend() == shutong_store::Backend::Postgres {
        let (k, s) = tokio::join!(sqlx::query(&unique).execute(ex.pool.pool()), sqlx::query(&by_seq).execute(ex.pool.pool()));
        (k, Some(s))
    } else {
        let mut conn = ex.pool.pool().acquire().await?;
        sqlx::query("PRAGMA threads = 2").execute(&mut *conn).await?;
        let built = sqlx::query(&unique).execute(&mut *conn).await;
        // Back to one thread for the pool's other users; should that fail, a second sorter thread is all the
        // connection keeps.
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
                    sqlx::query(&format!("DELETE FROM {table} WHERE k = $1 AND s = $2")).bind(&k).bind(s).execute(ex.pool.pool()).await?;
                    let reason = format!("the key repeats row {}", fs - base);
                    reject(RejectedRow { row: s - base, key: Some(k), field: None, reason });
                }
                _ => first = Some((k, s)),
            }
        }
        sqlx::query(&unique).execute(ex.pool.pool()).await?;
    }
    if let Some(built) = seq_built {
        built?;
    }
    Ok(())
}

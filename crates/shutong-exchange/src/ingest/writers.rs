//! The ways a batch's rows reach its load table, behind one interface ([`Writer`]): which one a batch uses
//! depends on the backend and the mode, and nothing else in the load does.

use std::collections::HashMap;
use std::sync::Arc;

use shutong_store::{binary, native};

use crate::{Exchange, ExchangeResult, invalid};

/// One parsed row: its number in the file, its key, whether it deletes, and its values in column order.
pub(super) type LoadRow = (i64, String, bool, Vec<Option<String>>);

/// Where rows go: the load table, its width, and the batch's fixed columns.
pub(super) struct Target<'a> {
    pub table: &'a str,
    pub ncols: usize,
    pub batch: i64,
    pub started: i64,
    /// The dataset's last sequence number before the batch: a row's `s` is `base + row`.
    pub base: i64,
    /// A full batch appends (its key index is built at the end); an incremental one upserts by key.
    pub full: bool,
    /// PostgreSQL, full batch: COPY may FREEZE the rows (the table was created in the load's transaction;
    /// not so for the later parts of a batch uploaded in parts).
    pub freeze: bool,
}

impl Target<'_> {
    fn column_names(&self) -> String {
        (0..self.ncols).map(|i| format!(", c{i}")).collect()
    }

    /// Later rows of an incremental batch win.
    fn on_conflict(&self) -> String {
        if self.full {
            return String::new();
        }
        let sets: String = (0..self.ncols).map(|i| format!(", c{i} = excluded.c{i}")).collect();
        format!(" ON CONFLICT (k) DO UPDATE SET s = excluded.s, d = excluded.d{sets}")
    }
}

/// A batch's writer. Each chunk is written before the next is read; a failed write fails the batch, whose
/// load table is then dropped.
pub(super) enum Writer<'c> {
    /// PostgreSQL, full batch: binary `COPY … FREEZE` on the connection whose transaction created the
    /// table (see `load::create_table`).
    Copy { copy: native::CopyIn<'c>, batch: i64, started: i64, base: i64 },
    /// SQLite: a rusqlite connection of its own on a blocking thread, a prepared single-row insert and one
    /// transaction per chunk (sqlx would hand every statement across threads).
    Lite { conn: Option<rusqlite::Connection>, sql: Arc<String>, base: i64 },
    /// PostgreSQL, incremental batch: multi-row `INSERT … ON CONFLICT` through the pool, one transaction
    /// per chunk.
    Pool {
        ex: &'c Exchange,
        head: String,
        tail: String,
        width: usize,
        per_stmt: usize,
        cache: HashMap<usize, String>,
        batch: i64,
        started: i64,
        base: i64,
    },
}

impl<'c> Writer<'c> {
    /// The writer for this backend and mode. `pg` is the connection a full batch on PostgreSQL created its
    /// table on.
    pub(super) async fn open(ex: &'c Exchange, pg: Option<&'c mut sqlx::PgConnection>, t: &Target<'_>) -> ExchangeResult<Writer<'c>> {
        let names = t.column_names();
        let (table, batch, started, base) = (t.table, t.batch, t.started, t.base);
        if let Some(conn) = pg {
            let mut columns = vec!["k".to_string(), "s".into(), "b".into(), "t".into(), "d".into()];
            columns.extend((0..t.ncols).map(|i| format!("c{i}")));
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            i16::try_from(columns.len()).map_err(|_| invalid("columns", "too many columns"))?;
            let copy = native::CopyIn::begin(conn, table, &columns, t.freeze).await?;
            return Ok(Writer::Copy { copy, batch, started, base });
        }
        if let Some(path) = ex.pool.sqlite_path() {
            let conn = native::sqlite_writer(path, None).map_err(crate::store_failure)?;
            let params: String = (0..t.ncols).map(|c| format!(", ?{}", c + 4)).collect();
            let sql =
                format!("INSERT INTO {table} (k, s, b, t, d{names}) VALUES (?1, ?2, {batch}, {started}, ?3{params}){}", t.on_conflict());
            return Ok(Writer::Lite { conn: Some(conn), sql: Arc::new(sql), base });
        }
        let width = 3 + t.ncols;
        Ok(Writer::Pool {
            ex,
            head: format!("INSERT INTO {table} (k, s, b, t, d{names}) VALUES "),
            tail: t.on_conflict(),
            width,
            // Parameters per statement stay few: binding time grows faster than their number.
            per_stmt: (300 / width).clamp(1, ex.settings.chunk_rows.max(1)),
            cache: HashMap::new(),
            batch,
            started,
            base,
        })
    }

    /// Writes one chunk of rows.
    pub(super) async fn write(&mut self, rows: Vec<LoadRow>) -> ExchangeResult<()> {
        match self {
            Writer::Copy { copy, batch, started, base } => {
                for (row, key, delete, values) in &rows {
                    let buf = copy.row();
                    binary::text(buf, Some(key.as_bytes()));
                    binary::int8(buf, Some(*base + row));
                    binary::int8(buf, Some(*batch));
                    binary::int8(buf, Some(*started));
                    binary::int8(buf, Some(*delete as i64));
                    for v in values {
                        binary::text(buf, v.as_deref().map(str::as_bytes));
                    }
                }
                copy.send().await?;
            }
            Writer::Lite { conn, sql, base } => {
                let Some(taken) = conn.take() else {
                    return Err(crate::store_failure("the SQLite writer was lost after a failed write"));
                };
                let (sql, base) = (sql.clone(), *base);
                let (taken, written) = tokio::task::spawn_blocking(move || {
                    let mut taken = taken;
                    let written = write_lite_chunk(&mut taken, &sql, base, &rows);
                    (taken, written)
                })
                .await
                .map_err(crate::store_failure)?;
                written.map_err(crate::store_failure)?;
                *conn = Some(taken);
            }
            Writer::Pool { ex, head, tail, width, per_stmt, cache, batch, started, base } => {
                let mut tx = ex.pool.pool().begin().await?;
                for part in rows.chunks(*per_stmt) {
                    let sql = cache.entry(part.len()).or_insert_with(|| multi_row_insert(head, tail, *width, part.len(), *batch, *started));
                    let mut q = sqlx::query(sql.as_str());
                    for (row, key, delete, values) in part {
                        q = q.bind(key.as_str()).bind(*base + row).bind(*delete as i64);
                        for v in values {
                            q = q.bind(v.as_deref());
                        }
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Every row is written (for COPY: the trailer is sent and the server has the rows).
    pub(super) async fn finish(self) -> ExchangeResult<()> {
        if let Writer::Copy { copy, .. } = self {
            copy.finish().await?;
        }
        Ok(())
    }

    /// The load failed: nothing more is written.
    pub(super) async fn abort(self, why: &str) {
        if let Writer::Copy { copy, .. } = self {
            copy.abort(why).await;
        }
    }
}

/// `INSERT … VALUES (…), (…) …` for `rows` rows of `width` parameters each (key, sequence, deletion, the
/// values), with the batch and its start time inlined.
fn multi_row_insert(head: &str, tail: &str, width: usize, rows: usize, batch: i64, started: i64) -> String {
    let mut s = String::with_capacity(head.len() + tail.len() + rows * width * 6);
    s.push_str(head);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        let b = r * width;
        s.push_str(&format!("(${}, ${}, {batch}, {started}, ${}", b + 1, b + 2, b + 3));
        for c in 0..width - 3 {
            s.push_str(&format!(", ${}", b + 4 + c));
        }
        s.push(')');
    }
    s.push_str(tail);
    s
}

/// Writes one chunk in one SQLite transaction with a prepared single-row insert.
fn write_lite_chunk(conn: &mut rusqlite::Connection, sql: &str, base: i64, rows: &[LoadRow]) -> rusqlite::Result<()> {
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

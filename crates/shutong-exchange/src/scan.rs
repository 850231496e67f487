//! 数据质量读取: every live record of a pooled dataset, read once for the platform's own checks (the quality
//! checks of 办法 第十七条 / 第十八条), outside any grant and outside the access log: nothing leaves the platform.
//! Values come as stored (an encrypted value stays sealed: the reader opens what it needs with
//! [`crate::sealed::open`]). Each backend's own driver is used, as the bulk download does: PostgreSQL's binary
//! `COPY … TO STDOUT` parsed as it arrives, a read-only rusqlite connection on SQLite.

use crate::model::BindingView;
use crate::{Exchange, ExchangeError, ExchangeResult, store_failure};

/// What a scan saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanFigures {
    /// Live records read.
    pub rows: i64,
}

/// Reads every live record of the dataset bound to `binding` (or only those last written by batch `batch`),
/// handing `visit` the stored values of the dataset's columns in the binding's column order. A dataset with
/// no data yet is an empty scan.
pub async fn scan_dataset(
    ex: &Exchange,
    binding: &BindingView,
    batch: Option<crate::model::BatchId>,
    visit: &mut (dyn FnMut(&[Option<&str>]) -> ExchangeResult<()> + Send),
) -> ExchangeResult<ScanFigures> {
    let Some(table) = binding.table_name.as_deref() else { return Ok(ScanFigures::default()) };
    let n = binding.columns.len();
    let columns: String = (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>().join(", ");
    let only = batch.map(|b| format!(" AND b = {}", b.0)).unwrap_or_default();
    let select = if n == 0 { "k".to_string() } else { columns };
    let sql = format!("SELECT {select} FROM {table} WHERE d = 0{only}");
    let rows = stream_sql(ex, &sql, n, &["SET max_parallel_workers_per_gather = 0", "SET jit = off"], visit).await?;
    Ok(ScanFigures { rows })
}

/// One key of two datasets side by side ([`join_by_key`]).
pub struct Joined<'r> {
    /// The key column's value (a blind index for a sensitive key), from whichever side has the record.
    pub key: &'r str,
    /// The first dataset's chosen columns, if it has the record.
    pub left: Option<&'r [Option<&'r str>]>,
    /// The second dataset's chosen columns, if it has the record.
    pub right: Option<&'r [Option<&'r str>]>,
}

/// Two pooled datasets side by side by key (一数一源, R-Q-2): every key live in either, with the stored values
/// of `left_columns` of the first and `right_columns` of the second (absent where the dataset has no such
/// record). One `FULL OUTER JOIN` in the pool, streamed (PostgreSQL's binary COPY; a read-only SQLite
/// connection). Both datasets are keyed the same way (the same key item, blind-indexed alike), so keys
/// compare as stored. Outside grants and the access log, as every scan.
pub async fn join_by_key(
    ex: &Exchange,
    left: &BindingView,
    left_columns: &[usize],
    right: &BindingView,
    right_columns: &[usize],
    visit: &mut (dyn FnMut(Joined<'_>) -> ExchangeResult<()> + Send),
) -> ExchangeResult<ScanFigures> {
    let (Some(lt), Some(rt)) = (left.table_name.as_deref(), right.table_name.as_deref()) else { return Ok(ScanFigures::default()) };
    let (nl, nr) = (left_columns.len(), right_columns.len());
    let sql = join_sql(ex, &[(lt, left_columns), (rt, right_columns)], None);
    let width = 2 + nl + nr;
    let mut hand = |f: &[Option<&str>]| -> ExchangeResult<()> {
        let key = f[0].or(f[1]).ok_or_else(|| store_failure("a joined record without a key"))?;
        let (l, r) = f[2..].split_at(nl);
        visit(Joined { key, left: f[0].is_some().then_some(l), right: f[1].is_some().then_some(r) })
    };
    let rows = stream_sql(ex, &sql, width, &["SET jit = off"], &mut hand).await?;
    Ok(ScanFigures { rows })
}

/// A string as an SQL literal (quotes doubled): for the keys inlined in a `COPY`, which takes no parameters.
fn literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// A record's stored values per dataset, absent where the dataset has no such record.
pub type Slots<'r> = [Option<&'r [Option<&'r str>]>];

/// The visitor of [`join_many`]: the stored key and one slot per dataset.
pub type JoinVisitor<'v> = dyn FnMut(&str, &Slots<'_>) -> ExchangeResult<()> + Send + 'v;

/// Several pooled datasets side by side by key (主题库): every key live in any of them (or only `keys`, stored
/// key values), with each dataset's chosen columns, absent where it has no such record. Chained
/// `FULL OUTER JOIN`s in the pool, streamed. `visit` gets the key and one slot per dataset.
pub async fn join_many(
    ex: &Exchange,
    members: &[(&BindingView, Vec<usize>)],
    keys: Option<&[String]>,
    visit: &mut JoinVisitor<'_>,
) -> ExchangeResult<ScanFigures> {
    let mut tables = Vec::new();
    for (b, _) in members {
        match b.table_name.as_deref() {
            Some(t) => tables.push(t),
            None => return Ok(ScanFigures::default()),
        }
    }
    if members.is_empty() || keys.is_some_and(|k| k.is_empty()) {
        return Ok(ScanFigures::default());
    }
    let parts: Vec<(&str, &[usize])> = tables.iter().zip(members).map(|(t, (_, c))| (*t, c.as_slice())).collect();
    let sql = join_sql(ex, &parts, keys);
    let n = members.len();
    let widths: Vec<usize> = members.iter().map(|(_, c)| c.len()).collect();
    let width = n + widths.iter().sum::<usize>();
    let mut hand = |f: &[Option<&str>]| -> ExchangeResult<()> {
        let key = f[..n].iter().find_map(|k| *k).ok_or_else(|| store_failure("a joined record without a key"))?;
        let mut slots: Vec<Option<&[Option<&str>]>> = Vec::with_capacity(n);
        let mut at = n;
        for (i, w) in widths.iter().enumerate() {
            slots.push(f[i].is_some().then(|| &f[at..at + w]));
            at += w;
        }
        visit(key, &slots)
    };
    let rows = stream_sql(ex, &sql, width, &["SET standard_conforming_strings = on"], &mut hand).await?;
    Ok(ScanFigures { rows })
}

/// The stored keys of a dataset's records changed (written or deleted) after sequence number `since`, at most
/// `limit` (None: more than that changed).
pub async fn changed_keys(ex: &Exchange, binding: &BindingView, since: i64, limit: usize) -> ExchangeResult<Option<Vec<String>>> {
    let Some(table) = binding.table_name.as_deref() else { return Ok(Some(Vec::new())) };
    let keys: Vec<String> = sqlx::query_scalar(&format!("SELECT k FROM {table} WHERE s > $1 ORDER BY s LIMIT {}", limit + 1))
        .bind(since)
        .fetch_all(ex.pool.pool())
        .await?;
    Ok((keys.len() <= limit).then_some(keys))
}

/// Streams the rows of one `SELECT` over the pool (its first `width` columns as stored text) to `hand`:
/// PostgreSQL's binary `COPY … TO STDOUT` parsed as it arrives, or a read-only rusqlite connection on SQLite
/// (on a multi-threaded runtime the worker hands its other tasks on first). Returns the rows handed.
async fn stream_sql(
    ex: &Exchange,
    sql: &str,
    width: usize,
    settings: &[&str],
    hand: &mut (dyn FnMut(&[Option<&str>]) -> ExchangeResult<()> + Send),
) -> ExchangeResult<i64> {
    let mut rows = 0i64;
    match ex.pool.backend() {
        shutong_store::Backend::Postgres => {
            use futures_util::StreamExt;
            let mut conn = ex.pool.pg_connection().await?.ok_or_else(|| store_failure("no PostgreSQL connection for the pool"))?;
            for set in settings {
                sqlx::query(set).execute(&mut conn).await?;
            }
            let copy = format!("COPY ({sql}) TO STDOUT WITH (FORMAT binary)");
            let mut stream = conn.copy_out_raw(&copy).await?;
            let mut reader = shutong_store::binary::Reader::default();
            // The handler's own error, kept whole while the parser carries its message.
            let mut failed: Option<ExchangeError> = None;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                reader
                    .feed::<String>(&chunk, width.max(1), |f| {
                        let values: Vec<Option<&str>> = f
                            .iter()
                            .take(width)
                            .map(|v| v.map(std::str::from_utf8).transpose())
                            .collect::<Result<_, _>>()
                            .map_err(|e| e.to_string())?;
                        rows += 1;
                        hand(&values).map_err(|e| {
                            let m = e.to_string();
                            failed = Some(e);
                            m
                        })
                    })
                    .map_err(|m| failed.take().unwrap_or_else(|| store_failure(m)))?;
            }
            if !reader.finished() {
                return Err(store_failure("COPY output ended inside a row"));
            }
        }
        shutong_store::Backend::Sqlite => {
            let path = ex.pool.sqlite_path().ok_or_else(|| store_failure("the pool is not a SQLite file"))?;
            let mut read = || -> ExchangeResult<i64> {
                let conn = shutong_store::native::sqlite_reader(path, std::time::Duration::from_secs(10)).map_err(store_failure)?;
                let mut stmt = conn.prepare(sql).map_err(store_failure)?;
                let mut it = stmt.raw_query();
                let mut rows = 0i64;
                while let Some(r) = it.next().map_err(store_failure)? {
                    let values: Vec<Option<&str>> = (0..width)
                        .map(|i| r.get_ref(i).and_then(|v| Ok(v.as_str_or_null()?)))
                        .collect::<rusqlite::Result<_>>()
                        .map_err(store_failure)?;
                    rows += 1;
                    hand(&values)?;
                }
                Ok(rows)
            };
            let multi =
                tokio::runtime::Handle::try_current().is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
            rows = if multi { tokio::task::block_in_place(read)? } else { read()? };
        }
    }
    Ok(rows)
}

/// 唯一性: the live records holding a value of column `column` that another live record holds too (empty
/// values aside), and up to `limit` of them as the raw values of column `show` (the key item's).
pub async fn duplicates(
    ex: &Exchange,
    binding: &BindingView,
    column: usize,
    show: usize,
    limit: usize,
) -> ExchangeResult<(i64, Vec<String>)> {
    let Some(t) = binding.table_name.as_deref() else { return Ok((0, Vec::new())) };
    let repeated = format!(
        "SELECT c{column} FROM {t} WHERE d = 0 AND c{column} IS NOT NULL AND c{column} <> '' GROUP BY c{column} HAVING COUNT(*) > 1"
    );
    let count: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT CAST(SUM(n) AS BIGINT) FROM (SELECT COUNT(*) AS n FROM {t} WHERE d = 0 AND c{column} IS NOT NULL AND c{column} <> '' \
         GROUP BY c{column} HAVING COUNT(*) > 1) x"
    ))
    .fetch_one(ex.pool.pool())
    .await?;
    let samples: Vec<Option<String>> = sqlx::query_scalar(&format!(
        "SELECT c{show} FROM {t} WHERE d = 0 AND c{column} IN ({repeated}) ORDER BY c{column}, k LIMIT {limit}"
    ))
    .fetch_all(ex.pool.pool())
    .await?;
    Ok((count.unwrap_or(0), samples.into_iter().map(Option::unwrap_or_default).collect()))
}

/// What [`missing_references`] found.
#[derive(Clone, Debug, Default)]
pub struct References {
    /// Live records with a value in the column.
    pub checked: i64,
    /// Those whose value is not a live key of the other dataset.
    pub missing: i64,
    /// Up to the limit, the raw values of the `show` column of the records missing their reference.
    pub samples: Vec<String>,
}

/// 引用一致: the live records of `from` whose column `column` (opened if sealed) is not the key of a live
/// record of `to`. Read in pages of 2,000 in key order, each page's values looked up in `to` at once (as
/// blind indexes when `to` keeps its keys sealed): bounded memory whatever the sizes.
pub async fn missing_references(
    ex: &Exchange,
    from: &BindingView,
    column: usize,
    show: usize,
    to: &BindingView,
    limit: usize,
) -> ExchangeResult<References> {
    let mut out = References::default();
    let (Some(ft), Some(tt)) = (from.table_name.as_deref(), to.table_name.as_deref()) else { return Ok(out) };
    let keys = ex.keys();
    let item = from.columns.get(column).cloned().unwrap_or_default();
    let page = format!("SELECT k, c{column}, c{show} FROM {ft} WHERE d = 0 AND k > $1 ORDER BY k LIMIT 2000");
    let mut after = String::new();
    loop {
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(&page).bind(&after).fetch_all(ex.pool.pool()).await?;
        let Some(last) = rows.last() else { break };
        after = last.0.clone();
        let mut wanted: Vec<(String, Option<String>)> = Vec::new();
        for (_, v, shown) in &rows {
            let Some(raw) = v.as_deref().filter(|v| !v.trim().is_empty()) else { continue };
            let plain = crate::sealed::open(keys.as_deref(), from.resource_code.as_str(), &item, raw)?;
            let target = crate::sealed::key_column(keys.as_deref(), to.key_sealed, plain.trim())?.into_owned();
            wanted.push((target, shown.clone()));
        }
        out.checked += wanted.len() as i64;
        if !wanted.is_empty() {
            let list = wanted.iter().map(|(k, _)| literal(k)).collect::<Vec<_>>().join(", ");
            let found: std::collections::HashSet<String> =
                sqlx::query_scalar::<_, String>(&format!("SELECT k FROM {tt} WHERE d = 0 AND k IN ({list})"))
                    .fetch_all(ex.pool.pool())
                    .await?
                    .into_iter()
                    .collect();
            for (k, shown) in wanted {
                if !found.contains(&k) {
                    out.missing += 1;
                    if out.samples.len() < limit {
                        out.samples.push(shown.unwrap_or_default());
                    }
                }
            }
        }
        if rows.len() < 2000 {
            break;
        }
    }
    Ok(out)
}

/// The `SELECT` that puts datasets side by side by key: each dataset's key (NULL where it has no live record)
/// then its chosen columns. On PostgreSQL, over all keys, chained `FULL OUTER JOIN`s of the live records (hash
/// joins). Otherwise — on SQLite, whose full joins of subqueries find no index, and for a set of keys — the
/// live keys of every dataset (or those named) once, each dataset `LEFT JOIN`ed by its key index.
fn join_sql(ex: &Exchange, members: &[(&str, &[usize])], keys: Option<&[String]>) -> String {
    let mut select: Vec<String> = (0..members.len()).map(|i| format!("m{i}.k")).collect();
    for (i, (_, cols)) in members.iter().enumerate() {
        select.extend(cols.iter().map(|c| format!("m{i}.c{c}")));
    }
    let select = select.join(", ");
    if ex.pool.backend() == shutong_store::Backend::Postgres && keys.is_none() {
        let sub = |i: usize| {
            let cols: String = members[i].1.iter().map(|c| format!(", c{c}")).collect();
            format!("(SELECT k{cols} FROM {} WHERE d = 0) m{i}", members[i].0)
        };
        let mut from = sub(0);
        for i in 1..members.len() {
            let earlier: Vec<String> = (0..i).map(|j| format!("m{j}.k")).collect();
            let on = if i == 1 { "m0.k".to_string() } else { format!("COALESCE({})", earlier.join(", ")) };
            from.push_str(&format!(" FULL OUTER JOIN {} ON m{i}.k = {on}", sub(i)));
        }
        return format!("SELECT {select} FROM {from}");
    }
    let only = keys.map(|k| format!(" AND k IN ({})", k.iter().map(|v| literal(v)).collect::<Vec<_>>().join(", "))).unwrap_or_default();
    let all: Vec<String> = members.iter().map(|(t, _)| format!("SELECT k FROM {t} WHERE d = 0{only}")).collect();
    let joins: String =
        members.iter().enumerate().map(|(i, (t, _))| format!(" LEFT JOIN {t} m{i} ON m{i}.k = u.k AND m{i}.d = 0")).collect();
    format!("SELECT {select} FROM ({}) u{joins}", all.join(" UNION "))
}

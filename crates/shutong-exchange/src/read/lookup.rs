//! 联机查询 by key: one record, checked against the grant, masked, audited.

use super::*;

/// 按键查询: one record by its key.
pub async fn lookup(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &shutong_catalog::ResourceCode,
    key: &str,
    grant: Option<shutong_sharing::GrantId>,
) -> ExchangeResult<Record> {
    let mut retried = false;
    loop {
        let a = authorize(ex, actor, resource, AccessMethod::OnlineQuery, grant).await?;
        match lookup_once(ex, ctx, &a, key).await {
            Err(e) if !retried && table_gone(&e) => {
                ex.invalidate();
                retried = true;
            }
            other => return other,
        }
    }
}

async fn lookup_once(ex: &Exchange, ctx: &AuditContext, a: &Access, key: &str) -> ExchangeResult<Record> {
    take_rate(ex, a)?;
    require_quota(ex, a, 1).await?;
    let key = normalise_key(a, key, ex.sharing.today())?;
    let table = a.table()?;
    let n = a.binding.columns.len();
    let mut params = Vec::new();
    let filter = conditions_sql(a, &a.row_filter.conditions, &mut params, "grant.row_filter")?;
    let one = || format!("SELECT d{} FROM {table} WHERE k = ${} AND d = 0{filter}", columns_sql(n), params.len() + 1);
    let k = crate::sealed::key_column(a.keys.as_deref(), a.binding.key_sealed, &key)?;
    let found = match (ex.pool.sqlite_path(), ex.pool.backend()) {
        (Some(path), _) => lite_lookup(path, &one(), &params, &k, n)?,
        (None, shutong_store::Backend::Postgres) => {
            // The same statement for a batch of keys (see `lookups`).
            let sql = format!("SELECT k{} FROM {table} WHERE k = ANY(${}) AND d = 0{filter}", columns_sql(n), params.len() + 1);
            ex.runtime.lookups.get(&ex.pool, &sql, params, k.to_string(), n).await.map_err(crate::store_failure)?
        }
        (None, shutong_store::Backend::Sqlite) => {
            let sql = one();
            let mut q = sqlx::query(&sql);
            for p in &params {
                q = q.bind(p.as_str());
            }
            let row = q.bind(k.as_ref()).fetch_optional(ex.pool.pool()).await?;
            row.map(|r| values_of(&r, 1, n)).transpose()?
        }
    };
    let app = after_decryption(a, &a.row_filter.conditions);
    let found = match found {
        Some(values) if !a.passes(&app, &values)? => None,
        other => other,
    };
    let records = found.is_some() as i64;
    count_usage(ex, a, records);
    let logged_key = a.logged(ex, a.binding.key_item.as_deref().unwrap_or_default(), &key);
    ex.log.record(event(ex, ctx, a, shutong_audit::Action::DataLookup, records, json!({"key": logged_key}))).await;
    match found {
        Some(values) => {
            let mut record = project(ex, a, &values)?;
            let flags = crate::flags::flags_of(ex, &a.binding.resource_code).await?;
            if let Some(flag) = flags.value(&k) {
                record.insert(crate::flags::FLAG_FIELD.into(), flag);
            }
            Ok(record)
        }
        None => Err(ExchangeError::NotFound { what: "record" }),
    }
}

/// Binds `$1`, `$2`, … on a rusqlite statement. They are named parameters to SQLite, indexed in order of
/// first appearance, not by their number: bind them by name.
pub(super) fn bind_numbered<'v>(stmt: &mut rusqlite::Statement<'_>, values: impl Iterator<Item = &'v str>) -> rusqlite::Result<()> {
    for (i, v) in values.enumerate() {
        let name = format!("${}", i + 1);
        let index = stmt.parameter_index(&name)?.ok_or(rusqlite::Error::InvalidParameterName(name))?;
        stmt.raw_bind_parameter(index, v)?;
    }
    Ok(())
}

thread_local! {
    /// Read-only SQLite connections of this thread, one per pool file, with their prepared statements.
    static LITE_READERS: std::cell::RefCell<HashMap<std::path::PathBuf, rusqlite::Connection>> = Default::default();
}

/// A point lookup on SQLite, on the calling thread: an indexed read of one row takes microseconds, less
/// than handing the statement to sqlx's connection thread and back.
fn lite_lookup(path: &std::path::Path, sql: &str, params: &[String], key: &str, n: usize) -> ExchangeResult<Option<Vec<Option<String>>>> {
    let run = |conn: &rusqlite::Connection| -> rusqlite::Result<Option<Vec<Option<String>>>> {
        let mut stmt = conn.prepare_cached(sql)?;
        bind_numbered(&mut stmt, params.iter().map(String::as_str).chain(std::iter::once(key)))?;
        let mut rows = stmt.raw_query();
        match rows.next()? {
            Some(r) => Ok(Some((1..=n).map(|i| r.get::<_, Option<String>>(i)).collect::<rusqlite::Result<_>>()?)),
            None => Ok(None),
        }
    };
    LITE_READERS
        .with(|cell| {
            let mut readers = cell.borrow_mut();
            if !readers.contains_key(path) {
                if readers.len() > 16 {
                    readers.clear();
                }
                let conn = lite_reader(path, 2)?;
                conn.set_prepared_statement_cache_capacity(64);
                readers.insert(path.to_path_buf(), conn);
            }
            let conn = readers.get(path).ok_or(rusqlite::Error::InvalidQuery)?;
            let result = run(conn);
            if result.is_err() {
                // A schema change (a dropped table) or a broken connection: start afresh next time.
                readers.remove(path);
            }
            result
        })
        .map_err(crate::store_failure)
}

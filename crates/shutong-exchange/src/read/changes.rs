//! 订阅: the change feed after a sequence number.

use super::*;

/// One change of the feed.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub seq: i64,
    /// `upsert` or `delete`.
    pub op: String,
    /// The record's key when the grant delivers the key item in clear. When it masks the key item or does
    /// not deliver it, the record's pseudonym (化名): `~` and 32 hex digits, the same for every change of the
    /// record under this grant, different under another grant, and revealing nothing of the key (HMAC-SM3
    /// with the platform's index key); absent only if the platform keeps no data keys.
    pub key: Option<String>,
    /// The record after the change (absent for a deletion).
    pub record: Option<Record>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// Pass as `since` next time.
    pub next_since: i64,
    /// The dataset's last sequence number.
    pub last_seq: i64,
    /// A full replacement happened after `since`: records absent from this feed no longer exist; discard the
    /// local copy and rebuild it from the changes (or from an export).
    pub reset: bool,
}

/// One read of the change feed.
#[derive(Clone, Copy, Debug, Default)]
pub struct FeedRead {
    /// The last sequence number already applied (0: from the start).
    pub since: i64,
    /// Changes per page (default 100, at most `exchange.max_page`).
    pub limit: Option<i64>,
    /// One of several grants in force.
    pub grant: Option<shutong_sharing::GrantId>,
    /// Long-poll: how long to wait for a change when none follows `since` (ms, at most `exchange.changes_max_wait_ms`).
    pub wait_ms: Option<i64>,
}

/// 订阅: the changes after `since`, in sequence order (each record's latest state). With `wait_ms`, a read
/// that finds nothing new waits up to that long for the dataset's next commit and answers as soon as it
/// comes (long-poll): a subscriber sees a change within moments of its commit without polling.
pub async fn changes(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &shutong_catalog::ResourceCode,
    read: FeedRead,
) -> ExchangeResult<ChangePage> {
    let FeedRead { since, limit, grant, wait_ms } = read;
    let wait_ms = wait_ms.unwrap_or(0);
    if !(0..=ex.settings.changes_max_wait_ms).contains(&wait_ms) {
        return Err(invalid("wait_ms", format!("must be between 0 and {}", ex.settings.changes_max_wait_ms)));
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait_ms as u64);
    loop {
        // Registered before the read, so that a commit between the read and the wait is not missed.
        let woken = ex.runtime.data_changed.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let ahead = match crate::binding::get_binding(ex, resource).await? {
            Some(b) => b.last_seq > since || (since > 0 && since < b.reset_seq),
            None => true,
        };
        if ahead || wait_ms == 0 {
            return changes_now(ex, actor, ctx, resource, since, limit, grant).await;
        }
        // Nothing new: the access is still checked now (a revoked grant answers at once), then we wait.
        authorize(ex, actor, resource, AccessMethod::Subscription, grant).await?;
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            return changes_now(ex, actor, ctx, resource, since, limit, grant).await;
        }
    }
}

async fn changes_now(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &shutong_catalog::ResourceCode,
    since: i64,
    limit: Option<i64>,
    grant: Option<shutong_sharing::GrantId>,
) -> ExchangeResult<ChangePage> {
    let mut retried = false;
    loop {
        let a = authorize(ex, actor, resource, AccessMethod::Subscription, grant).await?;
        match changes_once(ex, ctx, &a, since, limit).await {
            Err(e) if !retried && table_gone(&e) => {
                ex.invalidate();
                retried = true;
            }
            other => return other,
        }
    }
}

async fn changes_once(ex: &Exchange, ctx: &AuditContext, a: &Access, since: i64, limit: Option<i64>) -> ExchangeResult<ChangePage> {
    if since < 0 {
        return Err(invalid("since", "must be 0 or a sequence number"));
    }
    let limit = limit.unwrap_or(100);
    if !(1..=ex.settings.max_page).contains(&limit) {
        return Err(invalid("limit", format!("must be between 1 and {}", ex.settings.max_page)));
    }
    take_rate(ex, a)?;
    let left = require_quota(ex, a, 1).await?;
    let limit = left.map_or(limit, |l| limit.min(l));
    let table = a.table()?;
    let n = a.binding.columns.len();
    // `since` is $1; the row filter's parameters follow.
    let mut params = vec![String::new()];
    let filter = conditions_sql(a, &a.row_filter.conditions, &mut params, "grant.row_filter")?;
    let app = after_decryption(a, &a.row_filter.conditions);
    let page = if app.is_empty() { limit } else { limit.max(1000) };
    let sql = format!("SELECT s, d{}, k FROM {table} WHERE s > $1{filter} ORDER BY s LIMIT {page}", columns_sql(n));
    let key_out = a.items.iter().find(|i| i.column == a.key_column);
    // A grant that masks the key item, or does not deliver it, gets each record's pseudonym as its key (a
    // masked key may repeat across records; a subscriber still keeps its copy by key).
    let pseudonyms = match key_out {
        Some(k) if k.mask.is_none() => None,
        _ => a.keys.clone(),
    };
    let flags = crate::flags::flags_of(ex, &a.binding.resource_code).await?;
    let mut out = Vec::new();
    let mut from = since;
    let mut scanned = 0usize;
    'pages: loop {
        let mut q = sqlx::query(&sql).bind(from);
        for p in &params[1..] {
            q = q.bind(p.as_str());
        }
        let rows = q.fetch_all(ex.pool.pool()).await?;
        let exhausted = (rows.len() as i64) < page;
        for r in &rows {
            let seq: i64 = r.try_get(0)?;
            let deleted: i64 = r.try_get(1)?;
            let values = values_of(r, 2, n)?;
            scanned += 1;
            // Like the conditions evaluated in SQL: a deletion keeps only its key, so a row filter on
            // another item does not pass it.
            if a.passes(&app, &values)? {
                if out.len() as i64 == limit {
                    break 'pages;
                }
                let mut record = project(ex, a, &values)?;
                let stored_key: String = r.try_get(2 + n)?;
                if let Some(flag) = flags.value(&stored_key) {
                    record.insert(crate::flags::FLAG_FIELD.into(), flag);
                }
                let key = match &pseudonyms {
                    Some(keys) => Some(crate::sealed::pseudonym(keys, a.grant_id().unwrap_or(0), &stored_key)),
                    None => key_out.and_then(|k| record.get(&k.name)).and_then(|v| v.as_str()).map(str::to_string),
                };
                out.push(Change {
                    seq,
                    op: if deleted == 1 { "delete".into() } else { "upsert".into() },
                    key,
                    record: (deleted == 0).then_some(record),
                });
            }
            from = seq;
        }
        if exhausted || scanned >= SCAN_LIMIT {
            break;
        }
    }
    count_usage(ex, a, out.len() as i64);
    ex.log.record(event(ex, ctx, a, shutong_audit::Action::DataChanges, out.len() as i64, json!({"since": since}))).await;
    let next_since = from.max(since.max(0));
    let reset = since > 0 && since < a.binding.reset_seq;
    Ok(ChangePage { changes: out, next_since, last_seq: a.binding.last_seq, reset })
}

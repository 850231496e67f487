//! 联机查询 by conditions: a page of records within the grant.

use super::*;

/// A filtered query (联机查询).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    /// All must hold: `eq`, `in`, `prefix` on granted items.
    #[serde(default)]
    pub conditions: Vec<RowCondition>,
    /// Cursor: the `next_after` of the previous page.
    #[serde(default)]
    pub after: Option<String>,
    /// 1–`exchange.max_page` (default 100).
    #[serde(default)]
    pub limit: Option<i64>,
    /// Which grant to use, if several are in force.
    #[serde(default)]
    pub grant_id: Option<shutong_sharing::GrantId>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RecordPage {
    pub records: Vec<Record>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
    pub grant_id: Option<i64>,
    /// The items delivered, in order.
    pub items: Vec<String>,
}

pub async fn query(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &shutong_catalog::ResourceCode,
    spec: &QuerySpec,
) -> ExchangeResult<RecordPage> {
    let mut retried = false;
    loop {
        let a = authorize(ex, actor, resource, AccessMethod::OnlineQuery, spec.grant_id).await?;
        match query_once(ex, ctx, &a, spec).await {
            Err(e) if !retried && table_gone(&e) => {
                ex.invalidate();
                retried = true;
            }
            other => return other,
        }
    }
}

async fn query_once(ex: &Exchange, ctx: &AuditContext, a: &Access, spec: &QuerySpec) -> ExchangeResult<RecordPage> {
    let limit = spec.limit.unwrap_or(100);
    if !(1..=ex.settings.max_page).contains(&limit) {
        return Err(invalid("limit", format!("must be between 1 and {}", ex.settings.max_page)));
    }
    for (i, c) in spec.conditions.iter().enumerate() {
        if !a.items.iter().any(|it| it.name == c.item) {
            return Err(invalid(&format!("conditions[{i}].item"), format!("'{}' is not among the items you may read", c.item)));
        }
    }
    take_rate(ex, a)?;
    let left = require_quota(ex, a, 1).await?;
    let limit = left.map_or(limit, |l| limit.min(l));
    let table = a.table()?;
    let n = a.binding.columns.len();
    let mut params = Vec::new();
    let mut filter = conditions_sql(a, &a.row_filter.conditions, &mut params, "grant.row_filter")?;
    filter.push_str(&conditions_sql(a, &spec.conditions, &mut params, "conditions")?);
    let app = after_decryption(a, a.row_filter.conditions.iter().chain(&spec.conditions));
    // Rows are read in key order from the cursor on; with conditions after decryption, in pages until the
    // page is full or SCAN_LIMIT rows were read.
    let page = if app.is_empty() { limit as usize + 1 } else { (limit as usize + 1).max(1000) };
    params.push(spec.after.clone().unwrap_or_default());
    let cursor_param = params.len();
    filter.push_str(&format!(" AND k > ${cursor_param}"));
    let sql = format!("SELECT k{} FROM {table} WHERE d = 0{filter} ORDER BY k LIMIT {page}", columns_sql(n));
    let flags = crate::flags::flags_of(ex, &a.binding.resource_code).await?;
    let mut records = Vec::new();
    let mut last_key: Option<String> = None;
    let mut more = false;
    let mut scanned = 0usize;
    'pages: loop {
        let mut q = sqlx::query(&sql);
        for p in &params {
            q = q.bind(p.as_str());
        }
        let rows = q.fetch_all(ex.pool.pool()).await?;
        let exhausted = rows.len() < page;
        for r in &rows {
            let k: String = r.try_get(0)?;
            let values = values_of(r, 1, n)?;
            scanned += 1;
            if a.passes(&app, &values)? {
                if records.len() as i64 == limit {
                    more = true;
                    break 'pages;
                }
                let mut record = project(ex, a, &values)?;
                if let Some(flag) = flags.value(&k) {
                    record.insert(crate::flags::FLAG_FIELD.into(), flag);
                }
                records.push(record);
            }
            last_key = Some(k);
        }
        if exhausted {
            break;
        }
        if scanned >= SCAN_LIMIT {
            more = true;
            break;
        }
        params[cursor_param - 1] = last_key.clone().unwrap_or_default();
    }
    count_usage(ex, a, records.len() as i64);
    let conds: Vec<String> = spec
        .conditions
        .iter()
        .map(|c| {
            let values: Vec<String> = c.values.iter().map(|v| a.logged(ex, &c.item, v)).collect();
            format!("{} {} {}", c.item, c.op.as_str(), values.join("|"))
        })
        .collect();
    ex.log
        .record(event(
            ex,
            ctx,
            a,
            shutong_audit::Action::DataQuery,
            records.len() as i64,
            json!({"conditions": conds, "after": spec.after}),
        ))
        .await;
    Ok(RecordPage { records, next_after: if more { last_key } else { None }, grant_id: a.grant_id(), items: a.item_names_out() })
}

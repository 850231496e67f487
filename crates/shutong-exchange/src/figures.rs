//! Figures of the data plane for the portal's homes and the statistics endpoints: how fresh each dataset is
//! against its catalog entry's 更新周期 (数据时效性, 办法 第十七条 keeps shared data timely), and which
//! resources are consumed most (from the access log, under the trail's reading rule).

use chrono::NaiveDate;
use serde::Serialize;
use shutong_catalog::UpdateCycle;
use shutong_identity::{DepartmentId, Principal};

use crate::model::BindingKind;
use crate::{Exchange, ExchangeError, ExchangeResult};

shutong_catalog::value_list!(
    /// 数据时效: where a dataset stands against its update cycle.
    Freshness {
        /// Loaded within its cycle.
        Fresh => "fresh" / "按时更新",
        /// Its last load is older than its cycle allows.
        Overdue => "overdue" / "超期未更新",
        /// Bound but never loaded.
        NeverLoaded => "never_loaded" / "尚未归集",
        /// Updated irregularly (不定期): no due date.
        Irregular => "irregular" / "不定期更新",
    }
);

/// 数据集时效: one bound dataset's last load against its 更新周期.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetFreshness {
    pub resource_code: String,
    pub resource_name: String,
    pub provider_department_id: i64,
    pub update_cycle: UpdateCycle,
    pub rows: i64,
    pub last_batch_at_ms: Option<i64>,
    /// The last China day on which a load keeps the dataset fresh (none: never loaded or irregular).
    pub due_on: Option<NaiveDate>,
    pub freshness: Freshness,
}

fn china_day(ms: i64) -> NaiveDate {
    (shutong_store::from_ms(ms) + chrono::Duration::hours(8)).date_naive()
}

/// The datasets (pooled rows and file sets) whose batches `actor` may read (the provider's members, the
/// sharing authority, auditors), most overdue first; resources no longer published are left out.
pub async fn freshness(ex: &Exchange, actor: &Principal) -> ExchangeResult<Vec<DatasetFreshness>> {
    let today = ex.sharing.today();
    let mut out = Vec::new();
    let reads = crate::binding::batch_readers(ex, actor).await?;
    for b in crate::binding::list_bindings(ex).await? {
        if b.kind == BindingKind::Service || !reads(DepartmentId(b.provider_department_id)) {
            continue;
        }
        let published = match crate::binding::published(ex, &b.resource_code).await {
            Ok(p) => p,
            Err(ExchangeError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let cycle = published.document.update_cycle;
        let due_on = match (b.last_batch_at_ms, cycle.max_age_days()) {
            (Some(at), Some(days)) => china_day(at).checked_add_days(chrono::Days::new(u64::from(days))),
            _ => None,
        };
        let freshness = match (b.last_batch_at_ms, due_on) {
            (None, _) => Freshness::NeverLoaded,
            (Some(_), None) => Freshness::Irregular,
            (Some(_), Some(d)) if d < today => Freshness::Overdue,
            (Some(_), Some(_)) => Freshness::Fresh,
        };
        out.push(DatasetFreshness {
            resource_code: b.resource_code.to_string(),
            resource_name: published.document.name.clone(),
            provider_department_id: b.provider_department_id,
            update_cycle: cycle,
            rows: b.row_count,
            last_batch_at_ms: b.last_batch_at_ms,
            due_on,
            freshness,
        });
    }
    let rank = |f: Freshness| match f {
        Freshness::Overdue => 0,
        Freshness::NeverLoaded => 1,
        Freshness::Fresh => 2,
        Freshness::Irregular => 3,
    };
    out.sort_by(|a, b| rank(a.freshness).cmp(&rank(b.freshness)).then(a.due_on.cmp(&b.due_on)).then(a.resource_code.cmp(&b.resource_code)));
    Ok(out)
}

/// A resource and how often its data was read.
#[derive(Clone, Debug, Serialize)]
pub struct ConsumedResource {
    pub resource_code: String,
    /// Empty when the resource is no longer published.
    pub resource_name: String,
    pub accesses: i64,
}

/// The `limit` resources read most on the `days` China days ending with `last_day` (消费最多的资源): the
/// platform's for administrators and auditors, a department's own reads for its staff.
pub async fn top_consumed(
    ex: &Exchange,
    actor: &Principal,
    last_day: NaiveDate,
    days: u32,
    limit: i64,
) -> ExchangeResult<Vec<ConsumedResource>> {
    let counts = shutong_audit::figures::top_resources(&ex.db, actor, last_day, days, limit).await.map_err(|e| match e {
        shutong_audit::AuditError::Forbidden(m) => ExchangeError::Forbidden(m),
        shutong_audit::AuditError::Store(s) => ExchangeError::Store(s),
        other => ExchangeError::Conflict(other.to_string()),
    })?;
    let mut out = Vec::with_capacity(counts.len());
    for c in counts {
        let name = match shutong_catalog::ResourceCode::parse(&c.resource_code) {
            Ok(code) => match crate::binding::published(ex, &code).await {
                Ok(p) => p.document.name,
                Err(ExchangeError::NotFound { .. }) => String::new(),
                Err(e) => return Err(e),
            },
            Err(_) => String::new(),
        };
        out.push(ConsumedResource { resource_code: c.resource_code, resource_name: name, accesses: c.accesses });
    }
    Ok(out)
}

/// 存储量: the bytes a bound dataset takes in the pool, its table with its indexes (PostgreSQL's
/// `pg_total_relation_size`, SQLite's `dbstat` table); `None` for a binding without a pooled table (a
/// service or a file store).
pub async fn dataset_bytes(ex: &Exchange, binding: &crate::model::BindingView) -> ExchangeResult<Option<i64>> {
    let Some(table) = binding.table_name.as_deref() else { return Ok(None) };
    let sql = match ex.pool.backend() {
        shutong_store::Backend::Postgres => "SELECT CAST(COALESCE(pg_total_relation_size(to_regclass($1)), 0) AS BIGINT)",
        shutong_store::Backend::Sqlite => {
            "SELECT CAST(COALESCE(SUM(d.pgsize), 0) AS BIGINT) FROM dbstat d JOIN sqlite_master m ON m.name = d.name WHERE m.tbl_name = $1"
        }
    };
    let bytes: i64 = sqlx::query(sql).bind(table).fetch_one(ex.pool.pool()).await.and_then(|r| sqlx::Row::try_get(&r, 0))?;
    Ok(Some(bytes))
}

/// How much a dataset is in use: the grants in force on it and the calls made under them over the last 30
/// days (what ranks a provider's queue of objections by impact).
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ResourceUse {
    pub grants_in_force: i64,
    pub calls_30_days: i64,
}

pub async fn resource_use(ex: &Exchange, resource: &shutong_catalog::ResourceCode) -> ExchangeResult<ResourceUse> {
    let code = resource.as_str();
    let today = ex.sharing.today();
    let from = (today - chrono::Duration::days(29)).to_string();
    let today = today.to_string();
    let grants: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, status, valid_from, valid_to FROM sharing_grants WHERE resource_code = $1")
            .bind(code)
            .fetch_all(ex.db.pool())
            .await?;
    let grants_in_force = grants.iter().filter(|(_, status, from, to)| status == "active" && *from <= today && *to >= today).count() as i64;
    // The usage counters are in the pool (another database on SQLite): summed per grant.
    let mut calls = 0i64;
    for (id, ..) in &grants {
        let c: Option<i64> = sqlx::query_scalar("SELECT CAST(SUM(calls) AS BIGINT) FROM exchange_usage WHERE grant_id = $1 AND day >= $2")
            .bind(id)
            .bind(&from)
            .fetch_one(ex.pool.pool())
            .await?;
        calls += c.unwrap_or(0);
    }
    Ok(ResourceUse { grants_in_force, calls_30_days: calls })
}

/// The first batch committed on a dataset at or after `since_ms` (what corrected the records of an objection).
pub async fn batch_committed_since(ex: &Exchange, resource: &shutong_catalog::ResourceCode, since_ms: i64) -> ExchangeResult<Option<i64>> {
    let code = resource.as_str();
    Ok(sqlx::query_scalar(
        "SELECT id FROM exchange_batches WHERE resource_code = $1 AND status = 'committed' AND finished_at >= $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(code)
    .bind(since_ms)
    .fetch_optional(ex.pool.pool())
    .await?)
}

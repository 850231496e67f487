//! The check every data access passes (R-EX-1 … R-EX-5): who the caller acts for, the grant in force that
//! allows this access method, the items that may leave (granted, still in the published entry, never
//! 不予共享, bound to a column), masking unless the grant allows clear text, the grant's row filter, its
//! daily quota and its rate.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use shutong_catalog::SharingType;
use shutong_identity::{DepartmentId, Principal};
use shutong_reference::MaskKind;
use shutong_sharing::{AccessMethod, GrantId, GrantView, RowCondition, RowFilter, acts_for};

use crate::binding::{get_binding, published};
use crate::model::*;
use crate::validate::{IdentKind, identifier_kind};
use crate::{Exchange, ExchangeError, ExchangeResult};

/// An item that may leave the platform in this access, with its column and masking.
#[derive(Clone, Debug)]
pub struct OutItem {
    pub name: String,
    pub column: usize,
    pub mask: Option<MaskKind>,
    /// The fingerprint of `mask`'s rule (see [`crate::sealed`]); empty without a mask.
    pub fingerprint: String,
}

/// A resolved access: the binding, the grant (none for the provider reading its own data), the items.
#[derive(Clone, Debug)]
pub struct Access {
    pub binding: BindingView,
    pub grant: Option<GrantView>,
    pub consumer: DepartmentId,
    pub method: AccessMethod,
    pub items: Vec<OutItem>,
    pub row_filter: RowFilter,
    /// The key item's column and its identifier kind.
    pub key_column: usize,
    pub key_ident: Option<IdentKind>,
    /// Every item's column by name (row filters may name items outside the grant).
    pub all_columns: HashMap<String, usize>,
    /// Items of the published entry by name (for query conditions).
    pub item_names: Vec<String>,
    /// Per column: a sensitive item stored encrypted, so conditions on it are evaluated after decryption.
    pub sealed_columns: Vec<bool>,
    /// Per column: the item's masking kind in the catalog, whatever this grant delivers (what the access log
    /// must not record in clear).
    pub column_masks: Vec<Option<MaskKind>>,
    /// The data key ring when the decision was made, taken once for every value the access reads (a key
    /// file change invalidates cached decisions, see [`Exchange::invalidate`]).
    pub keys: Option<Arc<shutong_crypto::DataKeys>>,
}

impl Access {
    pub fn grant_id(&self) -> Option<i64> {
        self.grant.as_ref().map(|g| g.id)
    }
    pub fn purpose(&self) -> String {
        match &self.grant {
            Some(g) => g.purpose.as_str().to_string(),
            None => "provider".into(),
        }
    }
    pub fn item_names_out(&self) -> Vec<String> {
        self.items.iter().map(|i| i.name.clone()).collect()
    }
    /// The sensitive items (those with a masking kind) a consumer's grant delivers in clear text: what makes
    /// an access a sensitive one in the trail (明文访问敏感数据). The provider reading its own data has none.
    pub fn clear_sensitive(&self) -> Vec<String> {
        if self.grant.is_none() {
            return Vec::new();
        }
        self.items
            .iter()
            .filter(|i| i.mask.is_none() && self.column_masks.get(i.column).copied().flatten().is_some())
            .map(|i| i.name.clone())
            .collect()
    }
    /// Whether a condition must be evaluated after decryption (it names a sensitive item stored encrypted).
    pub fn is_app_condition(&self, c: &RowCondition) -> bool {
        self.all_columns.get(&c.item).is_some_and(|&col| self.sealed_columns.get(col).copied().unwrap_or(false))
    }

    /// Whether a stored row passes `conds` (those evaluated after decryption), decrypting what they name.
    pub fn passes<S: AsRef<str>>(&self, conds: &[&RowCondition], values: &[Option<S>]) -> ExchangeResult<bool> {
        for c in conds {
            let Some(&col) = self.all_columns.get(&c.item) else { return Ok(false) };
            // A missing value passes no condition, as in SQL.
            let Some(raw) = values.get(col).and_then(|v| v.as_ref()) else { return Ok(false) };
            let plain = crate::sealed::open(self.keys.as_deref(), self.binding.resource_code.as_str(), &c.item, raw.as_ref())?;
            if !c.holds(&plain) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A value of `item` as the access log records it (see [`crate::sealed::logged_value`]).
    pub fn logged(&self, ex: &Exchange, item: &str, value: &str) -> String {
        let mask = self.all_columns.get(item).and_then(|&col| self.column_masks.get(col).copied().flatten());
        crate::sealed::logged_value(self.keys.as_deref(), &ex.mask_rules, mask, value)
    }

    pub fn table(&self) -> ExchangeResult<&str> {
        self.binding.table_name.as_deref().ok_or(ExchangeError::NotFound { what: "data (no batch has been loaded yet)" })
    }
}

/// Cache key: (department, resource code, method, grant, clear text requested).
type AccessKey = (i64, String, AccessMethod, Option<i64>, bool);
/// Cached decision: when it was made, the invalidation generation it belongs to, the decision.
type AccessEntry = (Instant, u64, Arc<Access>);

#[derive(Default)]
pub(crate) struct Runtime {
    generation: AtomicU64,
    cache: Mutex<HashMap<AccessKey, AccessEntry>>,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
    usage: Mutex<HashMap<(i64, String), i64>>,
    /// Point lookups on PostgreSQL, batched.
    pub(crate) lookups: Arc<crate::lookups::Lookups>,
    /// Woken after every committed change of a dataset in this process: change-feed reads waiting for
    /// their next change (`wait_ms`) look again.
    pub(crate) data_changed: tokio::sync::Notify,
    /// Snapshots of the datasets' 校核中 flags.
    pub(crate) flags: crate::flags::FlagCache,
    /// The check a batch passes before it commits (blocking quality rules).
    pub(crate) batch_gate: std::sync::RwLock<Option<Arc<dyn crate::BatchGate>>>,
}

impl Runtime {
    /// Forgets every cached access decision, and wakes the change-feed reads waiting for a change: they
    /// look again (a revoked grant answers them at once).
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
        self.data_changed.notify_waiters();
    }
}

/// Resolves and checks an access. `grant_id` picks one of several grants; by default the one in force that
/// allows the method with the most items.
pub async fn authorize(
    ex: &Exchange,
    actor: &Principal,
    resource: &shutong_catalog::ResourceCode,
    method: AccessMethod,
    grant_id: Option<GrantId>,
) -> ExchangeResult<Arc<Access>> {
    let code = resource.as_str();
    let grant_id = grant_id.map(|g| g.0);
    let Some(department) = actor.department_id else {
        return Err(ExchangeError::Forbidden("data is delivered to departments: this account belongs to none".into()));
    };
    if !acts_for(actor, department) {
        return Err(ExchangeError::Forbidden("auditors read the trail, not the data".into()));
    }
    let key = (department.0, code.to_string(), method, grant_id, actor.is_system);
    let generation = ex.runtime.generation.load(Ordering::SeqCst);
    if ex.settings.access_cache_ms > 0
        && let Ok(cache) = ex.runtime.cache.lock()
        && let Some((at, g, a)) = cache.get(&key)
        && *g == generation
        && at.elapsed().as_millis() < ex.settings.access_cache_ms as u128
    {
        return Ok(a.clone());
    }
    let access = Arc::new(resolve(ex, department, resource, method, grant_id).await?);
    if ex.settings.access_cache_ms > 0
        && let Ok(mut cache) = ex.runtime.cache.lock()
    {
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), generation, access.clone()));
    }
    Ok(access)
}

async fn resolve(
    ex: &Exchange,
    department: DepartmentId,
    resource: &shutong_catalog::ResourceCode,
    method: AccessMethod,
    grant_id: Option<i64>,
) -> ExchangeResult<Access> {
    let code = resource.as_str();
    let p = published(ex, resource).await?;
    let binding = get_binding(ex, resource).await?.ok_or(ExchangeError::NotFound { what: "data (the resource is not bound to data)" })?;
    let provider_self = department == p.provider;
    let grant = if provider_self {
        None
    } else {
        let grants = shutong_sharing::grants_in_force(&ex.sharing, department, resource).await?;
        if grants.is_empty() {
            return Err(ExchangeError::NoGrant(format!(
                "no grant in force for {code}: apply for it (POST /api/v1/requests) or subscribe (POST /api/v1/subscriptions)"
            )));
        }
        let mut allowed: Vec<GrantView> = grants.into_iter().filter(|g| g.access_methods.contains(&method)).collect();
        if let Some(id) = grant_id {
            allowed.retain(|g| g.id == id);
            if allowed.is_empty() {
                return Err(ExchangeError::NoGrant(format!("grant {id} is not in force for {code} and {}", method.as_str())));
            }
        }
        allowed.sort_by_key(|g| std::cmp::Reverse(g.items.len()));
        Some(allowed.into_iter().next().ok_or_else(|| {
            ExchangeError::NoGrant(format!("your grants for {code} do not allow {} ({})", method.as_str(), method.label_zh()))
        })?)
    };
    let column_of = |name: &str| binding.columns.iter().position(|c| c == name);
    let mut items = Vec::new();
    for item in &p.document.items {
        let granted = match &grant {
            None => true,
            Some(g) => g.items.contains(&item.name) && item.sharing_type != SharingType::NotShared,
        };
        if !granted {
            continue;
        }
        if let Some(column) = column_of(&item.name) {
            let clear = grant.as_ref().is_none_or(|g| g.clear_text);
            let mask = if clear { None } else { item.mask };
            let fingerprint = mask.map(|k| crate::sealed::rule_fingerprint(&ex.mask_rules, k)).unwrap_or_default();
            items.push(OutItem { name: item.name.clone(), column, mask, fingerprint });
        }
    }
    let key_item = binding.key_item.clone().unwrap_or_default();
    let key_column = column_of(&key_item).unwrap_or(0);
    let key_ident = p.document.items.iter().find(|i| i.name == key_item).and_then(identifier_kind);
    let all_columns = binding.columns.iter().enumerate().map(|(i, c)| (c.clone(), i)).collect();
    let column_masks: Vec<Option<MaskKind>> =
        binding.columns.iter().map(|c| p.document.items.iter().find(|i| &i.name == c).and_then(|i| i.mask)).collect();
    let keys = ex.keys();
    let sealed_columns = column_masks.iter().map(|m| keys.is_some() && m.is_some()).collect();
    Ok(Access {
        row_filter: grant.as_ref().map(|g| g.row_filter.clone()).unwrap_or_default(),
        grant,
        consumer: department,
        method,
        items,
        key_column,
        key_ident,
        all_columns,
        item_names: p.document.items.iter().map(|i| i.name.clone()).collect(),
        sealed_columns,
        column_masks,
        keys,
        binding,
    })
}

/// Takes one request from the grant's rate (a token bucket of `grant_rate_per_second`, burst one second).
pub fn take_rate(ex: &Exchange, a: &Access) -> ExchangeResult<()> {
    let (Some(g), rate) = (&a.grant, ex.settings.grant_rate_per_second) else { return Ok(()) };
    if rate == 0 {
        return Ok(());
    }
    let rate = rate as f64;
    let mut buckets = ex.runtime.buckets.lock().map_err(|_| ExchangeError::Limited("rate limiter unavailable".into()))?;
    let now = Instant::now();
    let (tokens, at) = buckets.entry(g.id).or_insert((rate, now));
    *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(rate);
    *at = now;
    if *tokens < 1.0 {
        return Err(ExchangeError::Limited(format!("grant {} allows {rate} requests per second (exchange.grant_rate_per_second)", g.id)));
    }
    *tokens -= 1.0;
    Ok(())
}

/// Records left today under the grant's daily quota (`None`: unlimited).
pub async fn quota_left(ex: &Exchange, a: &Access) -> ExchangeResult<Option<i64>> {
    let Some(g) = &a.grant else { return Ok(None) };
    let Some(quota) = g.daily_quota else { return Ok(None) };
    let day = ex.sharing.today().to_string();
    let cached = ex.runtime.usage.lock().ok().and_then(|u| u.get(&(g.id, day.clone())).copied());
    let used = match cached {
        Some(u) => u,
        None => {
            let used: i64 = sqlx::query("SELECT records FROM exchange_usage WHERE grant_id = $1 AND day = $2")
                .bind(g.id)
                .bind(&day)
                .fetch_optional(ex.pool.pool())
                .await?
                .map(|r| shutong_store::Row::try_get(&r, 0))
                .transpose()?
                .unwrap_or(0);
            match ex.runtime.usage.lock() {
                Ok(mut u) => *u.entry((g.id, day)).or_insert(used),
                Err(_) => used,
            }
        }
    };
    Ok(Some((quota - used).max(0)))
}

/// Counts records delivered under a grant towards today's quota (persisted by the access log).
pub fn count_usage(ex: &Exchange, a: &Access, records: i64) {
    if let Some(g) = &a.grant
        && g.daily_quota.is_some()
        && let Ok(mut u) = ex.runtime.usage.lock()
    {
        *u.entry((g.id, ex.sharing.today().to_string())).or_insert(0) += records;
    }
}

/// Refuses when the quota is used up.
pub async fn require_quota(ex: &Exchange, a: &Access, need: i64) -> ExchangeResult<Option<i64>> {
    let left = quota_left(ex, a).await?;
    if let (Some(left), Some(g)) = (left, &a.grant)
        && left < need.max(1)
    {
        return Err(ExchangeError::Limited(format!(
            "grant {} has a daily quota of {} records; {} are left today and this access needs {}",
            g.id,
            g.daily_quota.unwrap_or(0),
            left,
            need.max(1)
        )));
    }
    Ok(left)
}

/// A stored row as it leaves: the granted items in catalog order, masked where required. Values are
/// indexed by column.
pub fn project<S: AsRef<str>>(ex: &Exchange, a: &Access, values: &[Option<S>]) -> ExchangeResult<Record> {
    let mut out = Record::new();
    for item in &a.items {
        let v = match values.get(item.column).and_then(|v| v.as_ref()) {
            Some(raw) => serde_json::Value::String(reveal(ex, a, item, raw.as_ref())?.into_owned()),
            None => serde_json::Value::Null,
        };
        out.insert(item.name.clone(), v);
    }
    Ok(out)
}

/// One stored value as delivered to the caller: decrypted if need be, masked unless in clear.
pub fn reveal<'v>(ex: &Exchange, a: &Access, item: &OutItem, raw: &'v str) -> ExchangeResult<std::borrow::Cow<'v, str>> {
    let mask = item.mask.map(|k| (k, item.fingerprint.as_str()));
    crate::sealed::reveal(a.keys.as_deref(), &ex.mask_rules, a.binding.resource_code.as_str(), &item.name, raw, mask)
}

/// Whether a stored row is within the grant's row filter.
pub fn in_rows(a: &Access, values: &[Option<String>]) -> bool {
    a.row_filter.matches(|item| a.all_columns.get(item).and_then(|&c| values.get(c)).and_then(|v| v.as_deref()))
}

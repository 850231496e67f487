//! 校核中 (办法 第十八条; R-Q-1): records under verification. While an objection on a record is open, every read
//! of that record — lookup, query, export, change feed, and so the exchange node's subscriptions — carries the
//! flag, for every consumer, and the record is delivered as usual (the flag never holds up use).
//!
//! The flags live in the platform database (`record_flags`), written by the objection service in its own
//! transaction through [`raise`] and [`lower`]; reads take them from a per-dataset snapshot kept for
//! [`FLAG_CACHE_MS`] (forgotten at once in this process by [`forget`]). A record whose flag is raised or
//! lowered is also queued (`record_flag_feed`), and [`carry_to_feed`] gives it a new sequence number so that
//! the change feed delivers it again with its flag as it is now: a subscriber's copy follows the flag even
//! though the record's values did not change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use shutong_store::{Row, Tx};

use crate::{Exchange, ExchangeResult};

/// The field (JSON) or column (CSV, Parquet) that carries the flag: the objected items of the record (an
/// empty list when the objection names the whole record). In JSON, absent on records under no objection; in
/// CSV and Parquet, always the last column, empty for them.
pub const FLAG_FIELD: &str = "_校核中";

/// How long a snapshot of a dataset's flags serves reads (ms) before it is read again: the bound on how
/// late another replica sees a flag raised or lowered.
pub const FLAG_CACHE_MS: u128 = 1000;

/// The records of a dataset under verification: stored key (the key column's value, a blind index for a
/// sensitive key) → the objected items (empty: the whole record).
#[derive(Debug, Default)]
pub struct FlagSet {
    by_key: HashMap<String, Vec<String>>,
}

impl FlagSet {
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// The objected items of a record, if it is under verification.
    pub fn get(&self, stored_key: &str) -> Option<&[String]> {
        self.by_key.get(stored_key).map(Vec::as_slice)
    }

    /// The flag as delivered in JSON.
    pub fn value(&self, stored_key: &str) -> Option<serde_json::Value> {
        self.get(stored_key).map(|items| serde_json::json!(items))
    }

    /// The flag as a CSV or Parquet cell: the items joined by `、`, `全部` for the whole record, nothing when
    /// the record is under no objection.
    pub fn cell(&self, stored_key: &str) -> Option<String> {
        self.get(stored_key).map(|items| if items.is_empty() { "全部".to_string() } else { items.join("、") })
    }
}

#[derive(Default)]
pub(crate) struct FlagCache {
    sets: std::sync::Mutex<HashMap<String, (Instant, Arc<FlagSet>)>>,
}

/// Flags the records of an objection (in the objection's transaction, in the platform database).
pub async fn raise(
    tx: &mut Tx,
    resource: &shutong_catalog::ResourceCode,
    objection: i64,
    stored_keys: &[String],
    items: &[String],
) -> ExchangeResult<()> {
    let code = resource.as_str();
    let items = serde_json::to_string(items).unwrap_or_else(|_| "[]".into());
    for k in stored_keys {
        sqlx::query(
            "INSERT INTO record_flags (resource_code, stored_key, objection_id, items) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (resource_code, stored_key, objection_id) DO UPDATE SET items = excluded.items",
        )
        .bind(code)
        .bind(k)
        .bind(objection)
        .bind(&items)
        .execute(&mut **tx)
        .await?;
        queue(tx, code, k).await?;
    }
    Ok(())
}

/// Lowers the flags of an objection (in the transaction that answers or closes it).
pub async fn lower(tx: &mut Tx, resource: &shutong_catalog::ResourceCode, objection: i64) -> ExchangeResult<()> {
    let code = resource.as_str();
    let keys: Vec<String> = sqlx::query_scalar("SELECT stored_key FROM record_flags WHERE resource_code = $1 AND objection_id = $2")
        .bind(code)
        .bind(objection)
        .fetch_all(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM record_flags WHERE resource_code = $1 AND objection_id = $2")
        .bind(code)
        .bind(objection)
        .execute(&mut **tx)
        .await?;
    for k in &keys {
        queue(tx, code, k).await?;
    }
    Ok(())
}

async fn queue(tx: &mut Tx, code: &str, k: &str) -> ExchangeResult<()> {
    sqlx::query(
        "INSERT INTO record_flag_feed (resource_code, stored_key) VALUES ($1, $2) ON CONFLICT (resource_code, stored_key) DO NOTHING",
    )
    .bind(code)
    .bind(k)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Forgets this process's snapshot of a dataset's flags (after raising or lowering them).
pub fn forget(ex: &Exchange, resource: &shutong_catalog::ResourceCode) {
    if let Ok(mut sets) = ex.runtime.flags.sets.lock() {
        sets.remove(resource.as_str());
    }
}

/// The records of a dataset under verification now (a snapshot at most [`FLAG_CACHE_MS`] old).
pub async fn flags_of(ex: &Exchange, resource: &shutong_catalog::ResourceCode) -> ExchangeResult<Arc<FlagSet>> {
    let code = resource.as_str();
    if let Ok(sets) = ex.runtime.flags.sets.lock()
        && let Some((at, set)) = sets.get(code)
        && at.elapsed().as_millis() < FLAG_CACHE_MS
    {
        return Ok(set.clone());
    }
    let rows = sqlx::query("SELECT stored_key, items FROM record_flags WHERE resource_code = $1 ORDER BY objection_id")
        .bind(code)
        .fetch_all(ex.db.pool())
        .await?;
    let mut set = FlagSet::default();
    for r in &rows {
        let k: String = r.try_get("stored_key")?;
        let items: String = r.try_get("items")?;
        let items: Vec<String> = serde_json::from_str(&items)
            .map_err(|_| crate::ExchangeError::Store(shutong_store::StoreError::decode("record_flags", "items", &items)))?;
        let entry = set.by_key.entry(k).or_insert_with(|| items.clone());
        // Several objections on one record: the union of their items; any on the whole record flags it all.
        if entry.is_empty() || items.is_empty() {
            entry.clear();
        } else {
            for i in items {
                if !entry.contains(&i) {
                    entry.push(i);
                }
            }
        }
    }
    let set = Arc::new(set);
    if let Ok(mut sets) = ex.runtime.flags.sets.lock() {
        if sets.len() > 10_000 {
            sets.clear();
        }
        sets.insert(code.to_string(), (Instant::now(), set.clone()));
    }
    Ok(set)
}

/// What [`carry_to_feed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// The queued records (how many) have new sequence numbers: the feed delivers them again.
    Done(usize),
    /// A batch holds the dataset: try again later.
    Busy,
}

/// Gives the records whose flag changed a new sequence number each, so that the change feed delivers them
/// again with their flag as it is now. Holds the dataset's claim in the pool transaction that does it, so no
/// batch numbers changes meanwhile. Idempotent: a crash between the pool's commit and the queue's cleanup
/// only delivers the records once more.
pub async fn carry_to_feed(ex: &Exchange, resource: &shutong_catalog::ResourceCode) -> ExchangeResult<Carried> {
    let code = resource.as_str();
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT stored_key FROM record_flag_feed WHERE resource_code = $1 ORDER BY stored_key LIMIT 10000")
            .bind(code)
            .fetch_all(ex.db.pool())
            .await?;
    if keys.is_empty() {
        return Ok(Carried::Done(0));
    }
    let mut tx = ex.pool.begin().await?;
    let binding = sqlx::query("SELECT table_name, last_seq FROM exchange_bindings WHERE resource_code = $1")
        .bind(code)
        .fetch_optional(&mut *tx)
        .await?;
    let mut carried = 0;
    if let Some(b) = binding
        && let Some(table) = b.try_get::<Option<String>, _>("table_name")?
    {
        if !crate::ingest::claim(&mut *tx, ex, code, FEED_HOLDER, shutong_store::now_ms()).await? {
            tx.rollback().await?;
            return Ok(Carried::Busy);
        }
        let mut seq: i64 = b.try_get("last_seq")?;
        for k in &keys {
            let changed = sqlx::query(&format!("UPDATE {table} SET s = $1 WHERE k = $2 AND d = 0"))
                .bind(seq + 1)
                .bind(k)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed > 0 {
                seq += 1;
                carried += 1;
            }
        }
        sqlx::query("UPDATE exchange_bindings SET last_seq = $1, busy_batch = NULL, busy_since = NULL WHERE resource_code = $2")
            .bind(seq)
            .bind(code)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let mut done = ex.db.begin().await?;
    for k in &keys {
        sqlx::query("DELETE FROM record_flag_feed WHERE resource_code = $1 AND stored_key = $2")
            .bind(code)
            .bind(k)
            .execute(&mut *done)
            .await?;
    }
    done.commit().await?;
    if carried > 0 {
        ex.invalidate();
    }
    Ok(Carried::Done(carried))
}

/// The claim holder of [`carry_to_feed`] (batches hold theirs by batch number, a re-encryption pass by -1).
const FEED_HOLDER: i64 = -2;

/// A record an objection names, as found under the filer's grant.
#[derive(Clone, Debug)]
pub struct LocatedRecord {
    /// The key column's value (a blind index for a sensitive key).
    pub stored_key: String,
    /// The key as the trail records it (masked when the key item is sensitive).
    pub shown_key: String,
    /// SM3 of the record's stored values when the objection was filed: a later answer 已更正 needs them changed.
    pub digest: String,
}

/// The records an objection names, found under the filer's access.
#[derive(Clone, Debug)]
pub struct Located {
    pub grant_id: Option<i64>,
    pub records: Vec<LocatedRecord>,
}

/// Finds the records a consumer objects to (疑义校核), under a grant in force for any access method: each
/// key must name a live record the grant lets the consumer see (otherwise 404, as for a lookup), each item
/// one the grant delivers (otherwise 403 naming it).
pub async fn locate(
    ex: &Exchange,
    actor: &shutong_identity::Principal,
    resource: &shutong_catalog::ResourceCode,
    grant: Option<shutong_sharing::GrantId>,
    keys: &[String],
    items: &[String],
) -> ExchangeResult<Located> {
    let a = any_access(ex, actor, resource, grant).await?;
    for (i, item) in items.iter().enumerate() {
        if !a.items.iter().any(|o| &o.name == item) {
            return Err(crate::ExchangeError::Forbidden(format!("items[{i}]: '{item}' is not among the items your grant delivers")));
        }
    }
    let table = a.table()?;
    let n = a.binding.columns.len();
    let mut params = Vec::new();
    let filter = crate::read::row_filter_sql(&a, &mut params)?;
    let sql = format!("SELECT d{} FROM {table} WHERE d = 0{filter} AND k = ${}", crate::read::columns_of(n), params.len() + 1);
    let app = crate::read::decrypted_conditions(&a);
    let today = ex.sharing.today();
    let mut records: Vec<LocatedRecord> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let key = crate::read::normalise_key(&a, key, today).map_err(|e| match e {
            crate::ExchangeError::Validation { message, .. } => crate::invalid(&format!("keys[{i}]"), message),
            other => other,
        })?;
        let k = crate::sealed::key_column(a.keys.as_deref(), a.binding.key_sealed, &key)?.into_owned();
        if records.iter().any(|r| r.stored_key == k) {
            continue;
        }
        let mut q = sqlx::query(&sql);
        for p in &params {
            q = q.bind(p.as_str());
        }
        let row = q.bind(&k).fetch_optional(ex.pool.pool()).await?;
        let values: Vec<Option<String>> = match row {
            Some(r) => (0..n).map(|c| r.try_get::<Option<String>, _>(c + 1)).collect::<Result<_, _>>()?,
            None => return Err(crate::ExchangeError::NotFound { what: "record" }),
        };
        if !a.passes(&app, &values)? {
            return Err(crate::ExchangeError::NotFound { what: "record" });
        }
        let shown_key = a.logged(ex, a.binding.key_item.as_deref().unwrap_or_default(), &key);
        records.push(LocatedRecord { stored_key: k, shown_key, digest: digest(&values) });
    }
    Ok(Located { grant_id: a.grant_id(), records })
}

/// The consumer's access under a grant in force for any method (online query first).
async fn any_access(
    ex: &Exchange,
    actor: &shutong_identity::Principal,
    resource: &shutong_catalog::ResourceCode,
    grant: Option<shutong_sharing::GrantId>,
) -> ExchangeResult<Arc<crate::Access>> {
    use shutong_sharing::AccessMethod;
    let mut first_error = None;
    for method in [AccessMethod::OnlineQuery, AccessMethod::BulkDownload, AccessMethod::Subscription] {
        match crate::authorize(ex, actor, resource, method, grant).await {
            Ok(a) => return Ok(a),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| crate::ExchangeError::NoGrant(format!("no grant in force for {resource}"))))
}

/// The items the actor's grant delivers (what an objection may name); none without a grant in force.
pub async fn objectable_items(
    ex: &Exchange,
    actor: &shutong_identity::Principal,
    resource: &shutong_catalog::ResourceCode,
) -> ExchangeResult<Vec<String>> {
    match any_access(ex, actor, resource, None).await {
        Ok(a) => Ok(a.item_names_out()),
        Err(crate::ExchangeError::NoGrant(_) | crate::ExchangeError::Forbidden(_) | crate::ExchangeError::NotFound { .. }) => {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// SM3 of a record's stored values, in column order.
fn digest(values: &[Option<String>]) -> String {
    let mut buf = Vec::new();
    for v in values {
        match v {
            Some(v) => {
                buf.push(1u8);
                buf.extend_from_slice(v.as_bytes());
            }
            None => buf.push(0u8),
        }
        buf.push(0x1f);
    }
    hex::encode(shutong_crypto::sm3(&buf))
}

/// The digests of records as they are now (by stored key; none for a record gone), for the provider's answer
/// 已更正: a corrected record differs from what was objected to.
pub async fn current_digests(
    ex: &Exchange,
    resource: &shutong_catalog::ResourceCode,
    stored_keys: &[String],
) -> ExchangeResult<Vec<Option<String>>> {
    let Some(binding) = crate::binding::get_binding(ex, resource).await? else { return Ok(stored_keys.iter().map(|_| None).collect()) };
    let Some(table) = binding.table_name.as_deref() else { return Ok(stored_keys.iter().map(|_| None).collect()) };
    let n = binding.columns.len();
    let sql = format!("SELECT d{} FROM {table} WHERE d = 0 AND k = $1", crate::read::columns_of(n));
    let mut out = Vec::with_capacity(stored_keys.len());
    for k in stored_keys {
        let row = sqlx::query(&sql).bind(k).fetch_optional(ex.pool.pool()).await?;
        out.push(match row {
            Some(r) => Some(digest(&(0..n).map(|c| r.try_get::<Option<String>, _>(c + 1)).collect::<Result<Vec<_>, _>>()?)),
            None => None,
        });
    }
    Ok(out)
}

/// The digest of one record as it is now (by stored key), if it is live.
pub async fn current_record_digest(
    ex: &Exchange,
    resource: &shutong_catalog::ResourceCode,
    stored_key: &str,
) -> ExchangeResult<Option<String>> {
    Ok(current_digests(ex, resource, &[stored_key.to_string()]).await?.into_iter().next().flatten())
}

//! 一数一源、多元校核 (办法 第四条(三); R-Q-2): the sharing authority declares each base data element (人口: 姓名,
//! 性别, 出生日期, 户籍地址 keyed by 公民身份号码; 法人: 名称, 法定代表人, 住所 keyed by 统一社会信用代码) with its
//! authoritative resource and items. Every other pooled dataset keyed by the same item and carrying some of
//! those items (by name, or as the authority mapped them) is reconciled with the authoritative one by key:
//! keys missing on either side and values that differ per item. Each reconciliation is appended with its
//! figures and its conflicts per key (never changed), reported to both providers, and a conflict can become an
//! objection against either side.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use shutong_audit::{Action, AuditContext, Change, NewAuditEvent};
use shutong_catalog::{ResourceCode, value_list};
use shutong_exchange::{BindingKind, BindingView, Exchange, sealed};
use shutong_identity::{DepartmentId, Principal};
use shutong_store::Row;

use crate::service::{QualityError, QualityResult, invalid, is_authority, unreadable};

shutong_store::typed_id!(
    /// 基础数据元素标识: a base data element the authority declared (办法 第四条(三) 一数一源).
    ElementId
);
shutong_store::typed_id!(
    /// 比对标识: one reconciliation of a dataset with an element's authoritative resource.
    ConsistencyRunId
);
shutong_store::typed_id!(
    /// 比对差异标识: one conflict a reconciliation found.
    ConflictId
);

value_list!(
    /// What a reconciliation found for one key.
    ConflictKind {
        /// 权威来源有、本数据集无.
        MissingInResource => "missing_in_resource" / "本数据集缺少",
        /// 本数据集有、权威来源无.
        MissingInAuthoritative => "missing_in_authoritative" / "权威来源缺少",
        /// 取值不一致.
        Differs => "differs" / "取值不一致",
    }
);

value_list!(
    /// What started a reconciliation.
    ReconcileCause {
        Batch => "batch" / "数据归集",
        Schedule => "schedule" / "定时比对",
        Manual => "manual" / "手动比对",
    }
);

/// The most conflicts one reconciliation keeps (every one is counted).
pub const CONFLICT_LIMIT: usize = 10_000;

/// 基础数据元素: an element, its key item, its authoritative resource and items, and the datasets carrying it.
#[derive(Clone, Debug, Serialize)]
pub struct BaseElement {
    pub id: ElementId,
    pub name: String,
    pub key_item: String,
    pub resource_code: String,
    pub items: Vec<String>,
    /// The datasets reconciled with it: each with its items as mapped (authoritative item → its item).
    pub carriers: Vec<Carrier>,
}

/// A dataset carrying an element.
#[derive(Clone, Debug, Serialize)]
pub struct Carrier {
    pub resource_code: String,
    pub provider_department_id: i64,
    /// Authoritative item → the dataset's item.
    pub items: BTreeMap<String, String>,
    /// Mapped by the authority (else by item names).
    pub explicit: bool,
}

/// An element to declare.
#[derive(Clone, Debug)]
pub struct NewElement {
    pub name: String,
    pub key_item: String,
    pub resource: ResourceCode,
    pub items: Vec<String>,
}

/// One item's figures in a reconciliation.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ItemConsistency {
    /// The authoritative item.
    pub item: String,
    /// The dataset's item.
    pub resource_item: String,
    /// Keys present in both.
    pub compared: i64,
    pub differing: i64,
    /// Agreeing among compared, hundredths of a percent.
    pub rate: i64,
}

/// 比对记录: one reconciliation, appended and never changed.
#[derive(Clone, Debug, Serialize)]
pub struct ConsistencyRun {
    pub id: ConsistencyRunId,
    pub element_id: ElementId,
    pub resource_code: String,
    pub authoritative_code: String,
    pub provider_department_id: i64,
    pub authoritative_department_id: i64,
    pub cause: ReconcileCause,
    pub ran_at_ms: i64,
    /// Keys in either dataset.
    pub keys_compared: i64,
    pub missing_in_resource: i64,
    pub missing_in_authoritative: i64,
    /// Keys in both whose values differ in at least one item.
    pub differing_keys: i64,
    pub items: Vec<ItemConsistency>,
    /// The dataset's keys that the authoritative dataset has with the same values in every item, among the
    /// dataset's keys: hundredths of a percent (keys only in the authoritative dataset do not count).
    pub rate: i64,
    pub conflicts_kept: i64,
    pub actor: String,
    /// In one run's read: its conflicts (at most [`CONFLICT_LIMIT`]).
    pub conflicts: Vec<Conflict>,
}

/// 比对差异: one key's conflict.
#[derive(Clone, Debug, Serialize)]
pub struct Conflict {
    pub id: ConflictId,
    /// The key, masked as the trail shows it for a sensitive key item.
    pub key: String,
    pub kind: ConflictKind,
    pub item: Option<String>,
    /// The values, masked for a sensitive item.
    pub authoritative_value: Option<String>,
    pub resource_value: Option<String>,
}

/// A pooled dataset (bound as a dataset, with data), its provider and entry.
async fn pooled(ex: &Exchange, code: &ResourceCode, field: &str) -> QualityResult<(shutong_exchange::Published, BindingView)> {
    let p = shutong_exchange::published(ex, code).await.map_err(|_| invalid(field, format!("'{code}' is not a published resource")))?;
    let b = shutong_exchange::get_binding(ex, code).await?.filter(|b| b.kind == BindingKind::Dataset);
    let b = b.ok_or_else(|| invalid(field, format!("'{code}' is not bound as a dataset")))?;
    Ok((p, b))
}

// ------------------------------------------------------------------ elements

async fn stored_elements(ex: &Exchange) -> QualityResult<Vec<(ElementId, String, String, String, Vec<String>)>> {
    let rows =
        sqlx::query("SELECT id, name, key_item, resource_code, items FROM base_elements ORDER BY id").fetch_all(ex.db.pool()).await?;
    rows.iter()
        .map(|r| {
            let items: String = r.try_get("items")?;
            Ok((
                ElementId(r.try_get("id")?),
                r.try_get("name")?,
                r.try_get("key_item")?,
                r.try_get("resource_code")?,
                serde_json::from_str(&items).map_err(|_| unreadable("base_elements", "items", &items))?,
            ))
        })
        .collect()
}

/// The datasets carrying an element: explicitly mapped ones, then every other pooled dataset keyed by the
/// element's key item that has items of the same names.
async fn carriers(ex: &Exchange, id: ElementId, key_item: &str, authoritative: &str, items: &[String]) -> QualityResult<Vec<Carrier>> {
    let explicit: Vec<(String, String)> = sqlx::query_as("SELECT resource_code, items FROM base_element_mappings WHERE element_id = $1")
        .bind(id.0)
        .fetch_all(ex.db.pool())
        .await?;
    let mut out = Vec::new();
    for b in shutong_exchange::list_bindings(ex).await? {
        let code = b.resource_code.to_string();
        if code == authoritative || b.kind != BindingKind::Dataset || b.key_item.as_deref() != Some(key_item) {
            continue;
        }
        let (map, is_explicit) = match explicit.iter().find(|(c, _)| *c == code) {
            Some((_, m)) => (serde_json::from_str(m).map_err(|_| unreadable("base_element_mappings", "items", m))?, true),
            None => (
                items.iter().filter(|i| b.columns.contains(i)).map(|i| (i.clone(), i.clone())).collect::<BTreeMap<String, String>>(),
                false,
            ),
        };
        if map.is_empty() || shutong_exchange::published(ex, &b.resource_code).await.is_err() {
            continue;
        }
        out.push(Carrier { resource_code: code, provider_department_id: b.provider_department_id, items: map, explicit: is_explicit });
    }
    Ok(out)
}

/// Every base element with the datasets carrying it.
pub async fn elements(ex: &Exchange) -> QualityResult<Vec<BaseElement>> {
    let mut out = Vec::new();
    for (id, name, key_item, code, items) in stored_elements(ex).await? {
        let carriers = carriers(ex, id, &key_item, &code, &items).await?;
        out.push(BaseElement { id, name, key_item, resource_code: code, items, carriers });
    }
    Ok(out)
}

pub async fn element(ex: &Exchange, id: ElementId) -> QualityResult<BaseElement> {
    elements(ex).await?.into_iter().find(|e| e.id == id).ok_or(QualityError::NotFound { what: "base element" })
}

/// Declares a base element (or redeclares one of the same name): the sharing authority only. The
/// authoritative resource must be a pooled dataset keyed by `key_item`, holding every item named. Audited
/// `quality.element_declare`.
pub async fn declare_element(ex: &Exchange, actor: &Principal, ctx: &AuditContext, new: &NewElement) -> QualityResult<BaseElement> {
    if !is_authority(ex, actor).await? {
        return Err(QualityError::Forbidden("base data elements are declared by the sharing authority".into()));
    }
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(invalid("name", "must be 1 to 50 characters"));
    }
    let (p, b) = pooled(ex, &new.resource, "resource_code").await?;
    if b.key_item.as_deref() != Some(new.key_item.as_str()) {
        return Err(invalid("key_item", format!("'{}' is not the key item of {}", new.key_item, new.resource)));
    }
    if new.items.is_empty() || new.items.len() > 100 {
        return Err(invalid("items", "name 1 to 100 items"));
    }
    for (i, item) in new.items.iter().enumerate() {
        if !p.document.items.iter().any(|x| &x.name == item) || !b.columns.contains(item) {
            return Err(invalid(&format!("items[{i}]"), format!("'{item}' is not an item of the dataset {}", new.resource)));
        }
        if *item == new.key_item || new.items[..i].contains(item) {
            return Err(invalid(&format!("items[{i}]"), format!("'{item}' is the key or named twice")));
        }
    }
    let now = ex.sharing.clock.now_ms();
    let items = serde_json::to_string(&new.items).unwrap_or_else(|_| "[]".into());
    let mut change = Change::begin(&ex.db, ctx).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO base_elements (name, key_item, resource_code, items, created_at, created_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $5) ON CONFLICT (name) DO UPDATE SET key_item = excluded.key_item, \
         resource_code = excluded.resource_code, items = excluded.items, updated_at = excluded.updated_at RETURNING id",
    )
    .bind(name)
    .bind(&new.key_item)
    .bind(new.resource.as_str())
    .bind(&items)
    .bind(now)
    .bind(&ctx.actor)
    .fetch_one(&mut **change.tx())
    .await?;
    change
        .record(NewAuditEvent {
            action: Action::ElementDeclare,
            target_kind: "base_element",
            target_id: id.to_string(),
            department_id: Some(p.provider.0),
            detail: json!({"name": name, "key_item": new.key_item, "resource": new.resource.as_str(), "items": new.items}),
        })
        .await?;
    change.commit().await?;
    element(ex, ElementId(id)).await
}

/// Maps a dataset's items onto an element's (authoritative item → the dataset's item), for a dataset whose
/// items are named otherwise; an empty map removes the mapping (back to matching by name). The sharing
/// authority only. Audited `quality.element_map`.
pub async fn map_element(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    id: ElementId,
    resource: &ResourceCode,
    items: &BTreeMap<String, String>,
) -> QualityResult<BaseElement> {
    if !is_authority(ex, actor).await? {
        return Err(QualityError::Forbidden("base data elements are mapped by the sharing authority".into()));
    }
    let e = element(ex, id).await?;
    let (p, b) = pooled(ex, resource, "resource_code").await?;
    if resource.as_str() == e.resource_code {
        return Err(invalid("resource_code", "the authoritative resource is not mapped onto itself"));
    }
    if b.key_item.as_deref() != Some(e.key_item.as_str()) {
        return Err(invalid("resource_code", format!("{resource} is not keyed by {}", e.key_item)));
    }
    for (from, to) in items {
        if !e.items.contains(from) {
            return Err(invalid("items", format!("'{from}' is not an item of the element {}", e.name)));
        }
        if !b.columns.contains(to) {
            return Err(invalid("items", format!("'{to}' is not an item of the dataset {resource}")));
        }
    }
    let now = ex.sharing.clock.now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    sqlx::query("DELETE FROM base_element_mappings WHERE element_id = $1 AND resource_code = $2")
        .bind(id.0)
        .bind(resource.as_str())
        .execute(&mut **change.tx())
        .await?;
    if !items.is_empty() {
        sqlx::query(
            "INSERT INTO base_element_mappings (element_id, resource_code, items, created_at, created_by) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.0)
        .bind(resource.as_str())
        .bind(serde_json::to_string(items).unwrap_or_else(|_| "{}".into()))
        .bind(now)
        .bind(&ctx.actor)
        .execute(&mut **change.tx())
        .await?;
    }
    change
        .record(NewAuditEvent {
            action: Action::ElementMap,
            target_kind: "base_element",
            target_id: id.0.to_string(),
            department_id: Some(p.provider.0),
            detail: json!({"resource": resource.as_str(), "items": items}),
        })
        .await?;
    change.commit().await?;
    element(ex, id).await
}

// ------------------------------------------------------------------ reconciliation

/// Who may start a reconciliation: the authority, or a keeper of either dataset's provider.
fn may_reconcile(p: &Principal, departments: &[i64]) -> bool {
    p.operator
        || departments.iter().any(|d| {
            p.has_role_in(shutong_identity::Role::DepartmentAdmin, DepartmentId(*d))
                || p.has_role_in(shutong_identity::Role::CatalogEditor, DepartmentId(*d))
                || shutong_exchange::may_load(p, DepartmentId(*d))
        })
}

/// Reconciles an element's carriers (or the one named) with its authoritative dataset, appending one run each
/// with its conflicts, telling both providers of the conflicts found. Audited `quality.reconcile` per run.
pub async fn reconcile(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    id: ElementId,
    only: Option<&ResourceCode>,
    cause: ReconcileCause,
) -> QualityResult<Vec<ConsistencyRun>> {
    let e = element(ex, id).await?;
    let authority = is_authority(ex, actor).await?;
    let auth_code = ResourceCode::parse(&e.resource_code).map_err(|_| unreadable("base_elements", "resource_code", &e.resource_code))?;
    let (auth_pub, auth_binding) = pooled(ex, &auth_code, "resource_code").await?;
    let mut out = Vec::new();
    for c in e.carriers.iter().filter(|c| only.is_none_or(|o| o.as_str() == c.resource_code)) {
        if !authority && !may_reconcile(actor, &[auth_pub.provider.0, c.provider_department_id]) {
            return Err(QualityError::Forbidden("reconciliation is started by the sharing authority or either dataset's provider".into()));
        }
        let code = ResourceCode::parse(&c.resource_code).map_err(|_| unreadable("exchange_bindings", "resource_code", &c.resource_code))?;
        let (_, binding) = pooled(ex, &code, "resource_code").await?;
        out.push(reconcile_one(ex, ctx, &e, (&auth_code, &auth_binding, auth_pub.provider.0), (&code, &binding, c), cause).await?);
    }
    if only.is_some() && out.is_empty() {
        return Err(QualityError::NotFound { what: "dataset carrying the element" });
    }
    Ok(out)
}

/// Reconciles every element involving a dataset (as authoritative or carrier): after a batch, as the
/// system. Returns the runs appended.
pub async fn reconcile_involving(ex: &Exchange, code: &ResourceCode, cause: ReconcileCause) -> QualityResult<usize> {
    let operator = Principal::operator("system:quality");
    let ctx = AuditContext::system("system:quality");
    let mut n = 0;
    for e in elements(ex).await? {
        let only = if e.resource_code == code.as_str() {
            None
        } else if e.carriers.iter().any(|c| c.resource_code == code.as_str()) {
            Some(code)
        } else {
            continue;
        };
        n += reconcile(ex, &operator, &ctx, e.id, only, cause).await?.len();
    }
    Ok(n)
}

/// Every element's every carrier (the daily schedule).
pub async fn reconcile_all(ex: &Exchange) -> QualityResult<usize> {
    let operator = Principal::operator("system:quality");
    let ctx = AuditContext::system("system:quality");
    let mut n = 0;
    for e in elements(ex).await? {
        match reconcile(ex, &operator, &ctx, e.id, None, ReconcileCause::Schedule).await {
            Ok(runs) => n += runs.len(),
            // An authoritative dataset withdrawn or unbound meanwhile: nothing to compare.
            Err(QualityError::Validation { .. } | QualityError::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(n)
}

/// What a reconciliation counts as it goes.
#[derive(Default)]
struct Tally {
    keys: i64,
    missing_in_resource: i64,
    missing_in_authoritative: i64,
    differing_keys: i64,
    compared: Vec<i64>,
    differing: Vec<i64>,
    conflicts: Vec<Found>,
}

/// A conflict as found: the stored key, the key as shown, the item and both values as shown.
struct Found {
    stored: String,
    shown: String,
    kind: ConflictKind,
    item: Option<String>,
    authoritative: Option<String>,
    resource: Option<String>,
}

async fn reconcile_one(
    ex: &Exchange,
    ctx: &AuditContext,
    e: &BaseElement,
    (auth_code, auth, auth_dept): (&ResourceCode, &BindingView, i64),
    (code, binding, carrier): (&ResourceCode, &BindingView, &Carrier),
    cause: ReconcileCause,
) -> QualityResult<ConsistencyRun> {
    let pairs: Vec<(String, String)> = carrier.items.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
    let col = |b: &BindingView, item: &str| b.columns.iter().position(|c| c == item);
    // The key item's own column first on both sides (to show a sealed key), then the compared items.
    let mut left = vec![col(auth, &e.key_item).unwrap_or(0)];
    let mut right = vec![col(binding, &e.key_item).unwrap_or(0)];
    for (a, b) in &pairs {
        left.push(col(auth, a).ok_or_else(|| invalid("items", format!("'{a}' is no longer a column of {auth_code}")))?);
        right.push(col(binding, b).ok_or_else(|| invalid("items", format!("'{b}' is no longer a column of {code}")))?);
    }
    let keys = ex.keys();
    let masks = ex.mask_rules.clone();
    let published = shutong_exchange::published(ex, auth_code).await?;
    let mask_of = |item: &str| published.document.items.iter().find(|i| i.name == item).and_then(|i| i.mask);
    let key_mask = mask_of(&e.key_item);
    let item_masks: Vec<Option<shutong_reference::MaskKind>> = pairs.iter().map(|(a, _)| mask_of(a)).collect();
    let shown = |mask: Option<shutong_reference::MaskKind>, v: &str| match mask {
        Some(m) => masks.mask(m, v),
        None => v.to_string(),
    };
    let mut t = Tally { compared: vec![0; pairs.len()], differing: vec![0; pairs.len()], ..Default::default() };
    let (ac, rc) = (auth_code.as_str().to_string(), code.as_str().to_string());
    let mut visit = |j: shutong_exchange::scan::Joined<'_>| -> shutong_exchange::ExchangeResult<()> {
        t.keys += 1;
        let open_key = |vals: &[Option<&str>], code: &str| -> shutong_exchange::ExchangeResult<String> {
            match vals.first().copied().flatten() {
                Some(raw) => Ok(shown(key_mask, &sealed::open(keys.as_deref(), code, &e.key_item, raw)?)),
                None => Ok(j.key.to_string()),
            }
        };
        let keep = t.conflicts.len() < CONFLICT_LIMIT;
        match (j.left, j.right) {
            (Some(l), None) => {
                t.missing_in_resource += 1;
                if keep {
                    let shown = open_key(l, &ac)?;
                    t.conflicts.push(Found {
                        stored: j.key.to_string(),
                        shown,
                        kind: ConflictKind::MissingInResource,
                        item: None,
                        authoritative: None,
                        resource: None,
                    });
                }
            }
            (None, Some(r)) => {
                t.missing_in_authoritative += 1;
                if keep {
                    let shown = open_key(r, &rc)?;
                    t.conflicts.push(Found {
                        stored: j.key.to_string(),
                        shown,
                        kind: ConflictKind::MissingInAuthoritative,
                        item: None,
                        authoritative: None,
                        resource: None,
                    });
                }
            }
            (Some(l), Some(r)) => {
                let mut any = false;
                for (i, (a_item, b_item)) in pairs.iter().enumerate() {
                    let (lv, rv) = (l[i + 1], r[i + 1]);
                    t.compared[i] += 1;
                    let lp = lv.map(|v| sealed::open(keys.as_deref(), &ac, a_item, v)).transpose()?;
                    let rp = rv.map(|v| sealed::open(keys.as_deref(), &rc, b_item, v)).transpose()?;
                    let same = lp.as_deref().map(str::trim) == rp.as_deref().map(str::trim);
                    if !same {
                        t.differing[i] += 1;
                        any = true;
                        if t.conflicts.len() < CONFLICT_LIMIT {
                            let m = item_masks[i];
                            let key = open_key(l, &ac)?;
                            t.conflicts.push(Found {
                                stored: j.key.to_string(),
                                shown: key,
                                kind: ConflictKind::Differs,
                                item: Some(a_item.clone()),
                                authoritative: lp.as_deref().map(|v| shown(m, v)),
                                resource: rp.as_deref().map(|v| shown(m, v)),
                            });
                        }
                    }
                }
                if any {
                    t.differing_keys += 1;
                }
            }
            (None, None) => {}
        }
        Ok(())
    };
    shutong_exchange::scan::join_by_key(ex, auth, &left, binding, &right, &mut visit).await?;
    let items: Vec<ItemConsistency> = pairs
        .iter()
        .enumerate()
        .map(|(i, (a, b))| ItemConsistency {
            item: a.clone(),
            resource_item: b.clone(),
            compared: t.compared[i],
            differing: t.differing[i],
            rate: if t.compared[i] == 0 { 10_000 } else { (t.compared[i] - t.differing[i]) * 10_000 / t.compared[i] },
        })
        .collect();
    // Among the dataset's own keys: a dataset may rightly hold a part of the element's population (参保人员 of
    // 人口), so keys only in the authoritative dataset are counted apart and do not lower its rate.
    let own = t.keys - t.missing_in_resource;
    let agreeing = own - t.missing_in_authoritative - t.differing_keys;
    let rate = if own == 0 { 10_000 } else { agreeing * 10_000 / own };
    let now = ex.sharing.clock.now_ms();
    let conflicts_found = t.missing_in_resource + t.missing_in_authoritative + t.differing_keys;
    let mut change = Change::begin(&ex.db, ctx).await?;
    let run: i64 = sqlx::query_scalar(
        "INSERT INTO consistency_runs (element_id, resource_code, authoritative_code, provider_department_id, authoritative_department_id, \
         cause, ran_at, keys_compared, missing_in_resource, missing_in_authoritative, differing_keys, items, rate, conflicts_kept, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
    )
    .bind(e.id.0)
    .bind(code.as_str())
    .bind(auth_code.as_str())
    .bind(carrier.provider_department_id)
    .bind(auth_dept)
    .bind(cause.as_str())
    .bind(now)
    .bind(t.keys)
    .bind(t.missing_in_resource)
    .bind(t.missing_in_authoritative)
    .bind(t.differing_keys)
    .bind(serde_json::to_string(&items).unwrap_or_else(|_| "[]".into()))
    .bind(rate)
    .bind(t.conflicts.len() as i64)
    .bind(&ctx.actor)
    .fetch_one(&mut **change.tx())
    .await?;
    for f in &t.conflicts {
        sqlx::query(
            "INSERT INTO consistency_conflicts (run_id, stored_key, shown_key, kind, item, authoritative_value, resource_value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(run)
        .bind(&f.stored)
        .bind(&f.shown)
        .bind(f.kind.as_str())
        .bind(&f.item)
        .bind(&f.authoritative)
        .bind(&f.resource)
        .execute(&mut **change.tx())
        .await?;
    }
    if conflicts_found > 0 {
        let message = format!(
            "一数一源比对（{}）：{} 与权威来源 {} 有 {} 个主键不一致（取值不一致 {}，本数据集缺少 {}，权威来源缺少 {}）",
            e.name, code, auth_code, conflicts_found, t.differing_keys, t.missing_in_resource, t.missing_in_authoritative
        );
        for dept in [carrier.provider_department_id, auth_dept] {
            shutong_sharing::notify_department(
                change.tx(),
                DepartmentId(dept),
                "consistency_conflict",
                ("consistency_run", run),
                &message,
                &format!("consistency:{run}:{dept}"),
                now,
            )
            .await?;
        }
    }
    change
        .record(NewAuditEvent {
            action: Action::Reconcile,
            target_kind: "consistency_run",
            target_id: run.to_string(),
            department_id: Some(carrier.provider_department_id),
            detail: json!({"element": e.name, "resource": code.as_str(), "authoritative": auth_code.as_str(), "keys": t.keys,
                "differing_keys": t.differing_keys, "missing_in_resource": t.missing_in_resource,
                "missing_in_authoritative": t.missing_in_authoritative, "rate": rate, "cause": cause.as_str()}),
        })
        .await?;
    change.commit().await?;
    load_run(ex, ConsistencyRunId(run), false).await
}

// ------------------------------------------------------------------ reading

fn run_from_row(r: &shutong_store::AnyRow) -> QualityResult<ConsistencyRun> {
    let cause: String = r.try_get("cause")?;
    let items: String = r.try_get("items")?;
    Ok(ConsistencyRun {
        id: ConsistencyRunId(r.try_get("id")?),
        element_id: ElementId(r.try_get("element_id")?),
        resource_code: r.try_get("resource_code")?,
        authoritative_code: r.try_get("authoritative_code")?,
        provider_department_id: r.try_get("provider_department_id")?,
        authoritative_department_id: r.try_get("authoritative_department_id")?,
        cause: ReconcileCause::parse(&cause).ok_or_else(|| unreadable("consistency_runs", "cause", &cause))?,
        ran_at_ms: r.try_get("ran_at")?,
        keys_compared: r.try_get("keys_compared")?,
        missing_in_resource: r.try_get("missing_in_resource")?,
        missing_in_authoritative: r.try_get("missing_in_authoritative")?,
        differing_keys: r.try_get("differing_keys")?,
        items: serde_json::from_str(&items).map_err(|_| unreadable("consistency_runs", "items", &items))?,
        rate: r.try_get("rate")?,
        conflicts_kept: r.try_get("conflicts_kept")?,
        actor: r.try_get("actor")?,
        conflicts: Vec::new(),
    })
}

const RUN_COLUMNS: &str = "id, element_id, resource_code, authoritative_code, provider_department_id, authoritative_department_id, cause, \
    ran_at, keys_compared, missing_in_resource, missing_in_authoritative, differing_keys, items, rate, conflicts_kept, actor";

async fn load_run(ex: &Exchange, id: ConsistencyRunId, with_conflicts: bool) -> QualityResult<ConsistencyRun> {
    let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM consistency_runs WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(ex.db.pool())
        .await?
        .ok_or(QualityError::NotFound { what: "reconciliation" })?;
    let mut run = run_from_row(&row)?;
    if with_conflicts {
        let rows = sqlx::query(
            "SELECT id, shown_key, kind, item, authoritative_value, resource_value FROM consistency_conflicts WHERE run_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(ex.db.pool())
        .await?;
        run.conflicts = rows
            .iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(Conflict {
                    id: ConflictId(r.try_get("id")?),
                    key: r.try_get("shown_key")?,
                    kind: ConflictKind::parse(&kind).ok_or_else(|| unreadable("consistency_conflicts", "kind", &kind))?,
                    item: r.try_get("item")?,
                    authoritative_value: r.try_get("authoritative_value")?,
                    resource_value: r.try_get("resource_value")?,
                })
            })
            .collect::<QualityResult<_>>()?;
    }
    Ok(run)
}

/// Whether the viewer reads a run: the authority, and the people of either provider.
async fn reads_run(ex: &Exchange, p: &Principal, run: &ConsistencyRun) -> QualityResult<bool> {
    let mine = |d: i64| p.department_id == Some(DepartmentId(d));
    Ok(mine(run.provider_department_id) || mine(run.authoritative_department_id) || is_authority(ex, p).await? || p.operator)
}

/// One reconciliation with its conflicts.
pub async fn consistency_run(ex: &Exchange, viewer: &Principal, id: ConsistencyRunId) -> QualityResult<ConsistencyRun> {
    let run = load_run(ex, id, true).await?;
    if !reads_run(ex, viewer, &run).await? {
        return Err(QualityError::NotFound { what: "reconciliation" });
    }
    Ok(run)
}

/// The latest reconciliations the viewer reads (of one element, if named), newest first, at most `limit`.
pub async fn consistency_runs(
    ex: &Exchange,
    viewer: &Principal,
    element: Option<ElementId>,
    limit: i64,
) -> QualityResult<Vec<ConsistencyRun>> {
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM consistency_runs WHERE ($1 = 0 OR element_id = $1) ORDER BY id DESC LIMIT {}",
        limit.clamp(1, 500) * 4
    ))
    .bind(element.map(|e| e.0).unwrap_or(0))
    .fetch_all(ex.db.pool())
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let run = run_from_row(r)?;
        if reads_run(ex, viewer, &run).await? {
            out.push(run);
        }
        if out.len() as i64 >= limit {
            break;
        }
    }
    Ok(out)
}

/// A conflict and its run (for turning it into an objection).
pub async fn conflict(ex: &Exchange, viewer: &Principal, id: ConflictId) -> QualityResult<(ConsistencyRun, Conflict, String)> {
    let row = sqlx::query("SELECT run_id, stored_key FROM consistency_conflicts WHERE id = $1")
        .bind(id.0)
        .fetch_optional(ex.db.pool())
        .await?
        .ok_or(QualityError::NotFound { what: "conflict" })?;
    let run = consistency_run(ex, viewer, ConsistencyRunId(row.try_get("run_id")?)).await?;
    let stored: String = row.try_get("stored_key")?;
    let c = run.conflicts.iter().find(|c| c.id == id).cloned().ok_or(QualityError::NotFound { what: "conflict" })?;
    Ok((run, c, stored))
}

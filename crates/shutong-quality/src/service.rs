//! Service functions of data quality: one per state change (a dimension's weight, a rule added or retired,
//! a check recorded), each authorised, validated and written in one transaction with its audit event; and
//! the readers of rules, checks and scores.

use std::collections::BTreeMap;

use serde_json::json;
use shutong_audit::{Action, AuditContext, Change, NewAuditEvent};
use shutong_catalog::{DataType, ResourceCode, ResourceDocument};
use shutong_exchange::Exchange;
use shutong_identity::{DepartmentId, Principal, Role};
use shutong_reference::RegionTable;
use shutong_store::{Row, StoreError};

use crate::check::{Evaluator, compile_pattern, range_bounds, share_score};
use crate::model::*;

/// Errors of the quality services, each mapping to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// A field is invalid (422), named.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// Not found, or not visible to the principal (404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The principal may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Not in a state that allows this (409).
    #[error("{0}")]
    State(String),
    /// An upload beyond its size limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The data plane failed (an encrypted value that does not open: 500).
    #[error(transparent)]
    Exchange(shutong_exchange::ExchangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for QualityError {
    fn from(e: sqlx::Error) -> Self {
        QualityError::Store(e.into())
    }
}

impl From<shutong_exchange::ExchangeError> for QualityError {
    fn from(e: shutong_exchange::ExchangeError) -> Self {
        use shutong_exchange::ExchangeError as E;
        match e {
            E::Store(s) => QualityError::Store(s),
            E::NotFound { what } => QualityError::NotFound { what },
            E::Forbidden(m) => QualityError::Forbidden(m),
            other => QualityError::Exchange(other),
        }
    }
}

impl From<shutong_sharing::SharingError> for QualityError {
    fn from(e: shutong_sharing::SharingError) -> Self {
        use shutong_sharing::SharingError as S;
        match e {
            S::Store(s) => QualityError::Store(s),
            S::NotFound { what } => QualityError::NotFound { what },
            S::Forbidden(m) => QualityError::Forbidden(m),
            other => QualityError::State(other.to_string()),
        }
    }
}

impl From<shutong_catalog::CatalogError> for QualityError {
    fn from(e: shutong_catalog::CatalogError) -> Self {
        use shutong_catalog::CatalogError as C;
        match e {
            C::Store(s) => QualityError::Store(s),
            C::NotFound { what } => QualityError::NotFound { what },
            C::Forbidden(m) => QualityError::Forbidden(m),
            other => QualityError::State(other.to_string()),
        }
    }
}

pub type QualityResult<T> = Result<T, QualityError>;

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> QualityError {
    QualityError::Validation { field: field.into(), message: message.into() }
}

pub(crate) fn unreadable(table: &'static str, column: &'static str, value: &str) -> QualityError {
    QualityError::Store(StoreError::decode(table, column, value))
}

// ------------------------------------------------------------------ who may do what

/// The dataset as this module sees it: its catalog entry in force and its provider.
struct Dataset {
    code: String,
    provider: DepartmentId,
    document: ResourceDocument,
}

/// The published resource, if the viewer may see it (as the catalog decides).
async fn dataset(ex: &Exchange, viewer: &Principal, resource: &ResourceCode) -> QualityResult<Dataset> {
    shutong_catalog::get_resource(&ex.db, viewer, resource, None).await?;
    let p = shutong_exchange::published(ex, resource).await?;
    Ok(Dataset { code: p.code, provider: p.provider, document: p.document })
}

pub(crate) async fn is_authority(ex: &Exchange, p: &Principal) -> QualityResult<bool> {
    Ok(shutong_catalog::is_authority(&ex.db, p).await?)
}

/// Keeps a dataset's rules and asks for its checks: the provider's department administrators and catalog
/// editors (办法 第十七条: the provider answers for its data), and the sharing authority.
async fn require_keeper(ex: &Exchange, p: &Principal, provider: DepartmentId) -> QualityResult<()> {
    if p.has_role_in(Role::DepartmentAdmin, provider) || p.has_role_in(Role::CatalogEditor, provider) || is_authority(ex, p).await? {
        Ok(())
    } else {
        Err(QualityError::Forbidden("only the provider's administrators and catalog editors, or the sharing authority".into()))
    }
}

/// Whether the principal keeps this dataset's rules and may ask for a check (the portal shows the forms).
pub async fn may_keep(ex: &Exchange, p: &Principal, resource: &ResourceCode) -> QualityResult<bool> {
    let ds = dataset(ex, p, resource).await?;
    match require_keeper(ex, p, ds.provider).await {
        Ok(()) => Ok(true),
        Err(QualityError::Forbidden(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the principal sets the dimensions' weights (the sharing authority).
pub async fn may_set_dimensions(ex: &Exchange, p: &Principal) -> QualityResult<bool> {
    is_authority(ex, p).await
}

// ------------------------------------------------------------------ dimensions

/// The five dimensions with the names and weights the authority set, in their order.
pub async fn dimensions(ex: &Exchange) -> QualityResult<Vec<DimensionSetting>> {
    let rows = sqlx::query("SELECT code, name, weight, updated_at, updated_by FROM quality_dimensions ORDER BY position")
        .fetch_all(ex.db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            let code: String = r.try_get("code")?;
            Ok(DimensionSetting {
                dimension: Dimension::parse(&code).ok_or_else(|| unreadable("quality_dimensions", "code", &code))?,
                name: r.try_get("name")?,
                weight: r.try_get("weight")?,
                updated_at_ms: r.try_get("updated_at")?,
                updated_by: r.try_get("updated_by")?,
            })
        })
        .collect()
}

/// Sets a dimension's name and weight (0–100): the sharing authority only. Audited `quality.dimension_update`.
pub async fn set_dimension(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    dimension: Dimension,
    name: Option<&str>,
    weight: i64,
) -> QualityResult<DimensionSetting> {
    if !is_authority(ex, actor).await? {
        return Err(QualityError::Forbidden("the quality dimensions are the sharing authority's to set".into()));
    }
    if !(0..=100).contains(&weight) {
        return Err(invalid("weight", "must be between 0 and 100"));
    }
    let name = match name.map(str::trim) {
        None => None,
        Some(n) if n.is_empty() || n.chars().count() > 20 || n.chars().any(char::is_control) => {
            return Err(invalid("name", "must be 1 to 20 characters"));
        }
        Some(n) => Some(n.to_string()),
    };
    let now = ex.sharing.clock.now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    let before = sqlx::query("SELECT name, weight FROM quality_dimensions WHERE code = $1")
        .bind(dimension.as_str())
        .fetch_one(&mut **change.tx())
        .await?;
    let (old_name, old_weight): (String, i64) = (before.try_get("name")?, before.try_get("weight")?);
    let new_name = name.unwrap_or(old_name.clone());
    sqlx::query("UPDATE quality_dimensions SET name = $1, weight = $2, updated_at = $3, updated_by = $4 WHERE code = $5")
        .bind(&new_name)
        .bind(weight)
        .bind(now)
        .bind(&ctx.actor)
        .bind(dimension.as_str())
        .execute(&mut **change.tx())
        .await?;
    change
        .record(NewAuditEvent {
            action: Action::QualityDimensionUpdate,
            target_kind: "quality_dimension",
            target_id: dimension.as_str().to_string(),
            department_id: None,
            detail: json!({"name": new_name, "weight": weight, "before": {"name": old_name, "weight": old_weight}}),
        })
        .await?;
    change.commit().await?;
    Ok(DimensionSetting { dimension, name: new_name, weight, updated_at_ms: now, updated_by: ctx.actor.clone() })
}

// ------------------------------------------------------------------ rules

/// The rules the catalog entry implies: 必填 for required items and the key, 长度 for character items with a
/// length, 标识码校验 for identifier items, 行政区划代码 for items under GB/T 2260, 及时性 from 更新周期.
pub fn derived_rules(doc: &ResourceDocument) -> Vec<RuleKind> {
    let mut out = Vec::new();
    for item in &doc.items {
        let name = item.name.clone();
        if item.required || item.is_key {
            out.push(RuleKind::Required { item: name.clone() });
        }
        let scheme = match shutong_exchange::validate::identifier_kind(item) {
            Some(shutong_exchange::validate::IdentKind::IdNumber) => Some(IdScheme::IdNumber),
            Some(shutong_exchange::validate::IdentKind::CreditCode) => Some(IdScheme::CreditCode),
            None if item.standard.as_deref().is_some_and(|s| s.contains("11714")) || item.name.ends_with("组织机构代码") => {
                Some(IdScheme::OrgCode)
            }
            None => None,
        };
        if let Some(scheme) = scheme {
            out.push(RuleKind::Identifier { item: name.clone(), scheme });
        } else if let (Some(max), DataType::Char | DataType::Memo) = (item.length, item.data_type) {
            out.push(RuleKind::Length { item: name.clone(), max });
        }
        if item.standard.as_deref().is_some_and(|s| s.contains("2260")) || item.name.ends_with("行政区划代码") {
            out.push(RuleKind::RegionCode { item: name });
        }
    }
    if let Some(days) = doc.update_cycle.max_age_days() {
        out.push(RuleKind::Freshness { max_age_days: days });
    }
    out
}

fn rule_from_row(r: &shutong_store::AnyRow) -> QualityResult<Rule> {
    let params: String = r.try_get("params")?;
    let kind: RuleKind = serde_json::from_str(&params).map_err(|_| unreadable("quality_rules", "params", &params))?;
    let origin: String = r.try_get("origin")?;
    let dim: String = r.try_get("dimension")?;
    Ok(Rule {
        id: Some(QualityRuleId(r.try_get("id")?)),
        key: r.try_get("rule_key")?,
        resource_code: r.try_get("resource_code")?,
        origin: RuleOrigin::parse(&origin).ok_or_else(|| unreadable("quality_rules", "origin", &origin))?,
        kind,
        dimension: Dimension::parse(&dim).ok_or_else(|| unreadable("quality_rules", "dimension", &dim))?,
        blocking: r.try_get::<i64, _>("blocking")? != 0,
        note: r.try_get("note")?,
        created_at_ms: Some(r.try_get("created_at")?),
        created_by: Some(r.try_get("created_by")?),
        retired_at_ms: r.try_get("retired_at")?,
        retired_by: r.try_get("retired_by")?,
        retire_reason: r.try_get("retire_reason")?,
    })
}

/// Every rule of a dataset: the derived ones in force or retired, then the custom ones, retired included.
async fn all_rules(ex: &Exchange, ds: &Dataset) -> QualityResult<Vec<Rule>> {
    let stored: Vec<Rule> = sqlx::query(
        "SELECT id, rule_key, resource_code, origin, params, dimension, blocking, note, created_at, created_by, retired_at, retired_by, \
         retire_reason FROM quality_rules WHERE resource_code = $1 ORDER BY id",
    )
    .bind(&ds.code)
    .fetch_all(ex.db.pool())
    .await?
    .iter()
    .map(rule_from_row)
    .collect::<QualityResult<_>>()?;
    let mut out = Vec::new();
    for kind in derived_rules(&ds.document) {
        let key = kind.derived_key();
        match stored.iter().find(|r| r.key == key) {
            Some(retired) => out.push(retired.clone()),
            None => out.push(Rule {
                id: None,
                key,
                resource_code: ds.code.clone(),
                origin: RuleOrigin::Derived,
                dimension: kind.default_dimension(),
                kind,
                blocking: false,
                note: None,
                created_at_ms: None,
                created_by: None,
                retired_at_ms: None,
                retired_by: None,
                retire_reason: None,
            }),
        }
    }
    out.extend(stored.into_iter().filter(|r| r.origin == RuleOrigin::Custom));
    Ok(out)
}

/// The rules of a dataset the viewer may see (retired ones included, marked).
pub async fn rules(ex: &Exchange, viewer: &Principal, resource: &ResourceCode) -> QualityResult<Vec<Rule>> {
    let ds = dataset(ex, viewer, resource).await?;
    all_rules(ex, &ds).await
}

/// The rules that compare records: a uniqueness cannot read a sensitive item stored encrypted (each value is
/// sealed apart); a reference names a published resource pooled as a dataset other than this one.
async fn check_set_rule(ex: &Exchange, ds: &Dataset, kind: &RuleKind) -> QualityResult<()> {
    match kind {
        RuleKind::Unique { item } => {
            let sensitive = ds.document.items.iter().any(|i| &i.name == item && i.mask.is_some());
            if sensitive && ex.keys().is_some() {
                return Err(invalid(
                    "rule.item",
                    format!("'{item}' is a sensitive item stored encrypted: its uniqueness cannot be compared"),
                ));
            }
            if ds.document.items.iter().any(|i| &i.name == item && i.is_key) {
                return Err(invalid("rule.item", format!("'{item}' is the key: it is unique by construction")));
            }
            Ok(())
        }
        RuleKind::Reference { resource, .. } => {
            let code = ResourceCode::parse(resource).map_err(|e| invalid("rule.resource", format!("'{resource}': {e}")))?;
            if code.as_str() == ds.code {
                return Err(invalid("rule.resource", "a reference names another resource"));
            }
            shutong_exchange::published(ex, &code)
                .await
                .map_err(|_| invalid("rule.resource", format!("'{resource}' is not a published resource")))?;
            match shutong_exchange::get_binding(ex, &code).await? {
                Some(b) if b.kind == shutong_exchange::BindingKind::Dataset => Ok(()),
                _ => Err(invalid("rule.resource", format!("'{resource}' is not bound as a dataset"))),
            }
        }
        _ => Ok(()),
    }
}

/// Checks a rule against the catalog entry: the items it names exist, its parameters are usable. Each
/// problem names its field (`kind.item`, `kind.pattern` …).
fn check_rule(doc: &ResourceDocument, kind: &RuleKind) -> QualityResult<()> {
    let has = |item: &str| doc.items.iter().any(|i| i.name == item);
    let item_field = |name: &str| match kind {
        RuleKind::IdConsistency { id_item, birth_item, .. } => {
            if name == id_item {
                "rule.id_item"
            } else if birth_item.as_deref() == Some(name) {
                "rule.birth_item"
            } else {
                "rule.sex_item"
            }
        }
        _ => "rule.item",
    };
    for item in kind.items() {
        if !has(item) {
            return Err(invalid(item_field(item), format!("'{item}' is not an item of the resource")));
        }
    }
    match kind {
        RuleKind::Length { max, .. } if *max == 0 || *max > 100_000 => Err(invalid("rule.max", "must be 1 to 100000")),
        RuleKind::CodeList { values, .. } => {
            if values.is_empty() || values.len() > 10_000 {
                return Err(invalid("rule.values", "must list 1 to 10000 values"));
            }
            if let Some(v) = values.iter().find(|v| v.trim().is_empty() || v.chars().count() > 200) {
                return Err(invalid("rule.values", format!("'{v}': each value must be 1 to 200 characters")));
            }
            Ok(())
        }
        RuleKind::Pattern { pattern, .. } => compile_pattern(pattern).map(|_| ()).map_err(|m| invalid("rule.pattern", m)),
        RuleKind::Range { min, max, .. } => range_bounds(min.as_deref(), max.as_deref()).map(|_| ()).map_err(|(f, m)| invalid(f, m)),
        RuleKind::IdConsistency { birth_item: None, sex_item: None, .. } => {
            Err(invalid("rule.birth_item", "name the birth date item, the sex item, or both"))
        }
        RuleKind::Freshness { max_age_days } if *max_age_days == 0 || *max_age_days > 3660 => {
            Err(invalid("rule.max_age_days", "must be 1 to 3660"))
        }
        RuleKind::VolumeChange { max_change_percent } if *max_change_percent == 0 || *max_change_percent > 1000 => {
            Err(invalid("rule.max_change_percent", "must be 1 to 1000"))
        }
        _ => Ok(()),
    }
}

/// Adds a rule to a dataset: the provider's keepers or the authority. Audited `quality.rule_create`.
pub async fn add_rule(ex: &Exchange, actor: &Principal, ctx: &AuditContext, resource: &ResourceCode, new: NewRule) -> QualityResult<Rule> {
    let ds = dataset(ex, actor, resource).await?;
    require_keeper(ex, actor, ds.provider).await?;
    check_rule(&ds.document, &new.kind)?;
    check_set_rule(ex, &ds, &new.kind).await?;
    let note = match new.note.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) if n.chars().count() > 500 || n.chars().any(|c| c.is_control() && c != '\n') => {
            return Err(invalid("note", "must not contain control characters or exceed 500 characters"));
        }
        n => n.map(str::to_string),
    };
    let dimension = new.dimension.unwrap_or(new.kind.default_dimension());
    let now = ex.sharing.clock.now_ms();
    let params = serde_json::to_string(&new.kind).map_err(|e| QualityError::State(e.to_string()))?;
    let mut change = Change::begin(&ex.db, ctx).await?;
    // The key names the rule's row once it has one: written with a placeholder, then set from the ID.
    let pending = format!("pending:{}", uuid::Uuid::new_v4().simple());
    let id: i64 = sqlx::query(
        "INSERT INTO quality_rules (resource_code, rule_key, origin, kind, params, dimension, blocking, note, created_at, created_by) \
         VALUES ($1, $2, 'custom', $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(&ds.code)
    .bind(&pending)
    .bind(new.kind.code())
    .bind(&params)
    .bind(dimension.as_str())
    .bind(new.blocking as i64)
    .bind(&note)
    .bind(now)
    .bind(&ctx.actor)
    .fetch_one(&mut **change.tx())
    .await?
    .try_get(0)?;
    let key = format!("custom:{id}");
    sqlx::query("UPDATE quality_rules SET rule_key = $1 WHERE id = $2").bind(&key).bind(id).execute(&mut **change.tx()).await?;
    change
        .record(NewAuditEvent {
            action: Action::QualityRuleCreate,
            target_kind: "quality_rule",
            target_id: id.to_string(),
            department_id: Some(ds.provider.0),
            detail: json!({"resource": ds.code, "rule": new.kind, "dimension": dimension.as_str(), "blocking": new.blocking}),
        })
        .await?;
    change.commit().await?;
    Ok(Rule {
        id: Some(QualityRuleId(id)),
        key,
        resource_code: ds.code,
        origin: RuleOrigin::Custom,
        kind: new.kind,
        dimension,
        blocking: new.blocking,
        note,
        created_at_ms: Some(now),
        created_by: Some(ctx.actor.clone()),
        retired_at_ms: None,
        retired_by: None,
        retire_reason: None,
    })
}

/// Retires a rule (by its key) with a reason: later checks leave it out; its results stay. A derived rule's
/// retirement is stored and outlives the catalog entry's revisions. Audited `quality.rule_retire`.
pub async fn retire_rule(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &ResourceCode,
    key: &str,
    reason: &str,
) -> QualityResult<Rule> {
    let ds = dataset(ex, actor, resource).await?;
    require_keeper(ex, actor, ds.provider).await?;
    let reason = reason.trim();
    if reason.chars().count() < 4 || reason.chars().count() > 500 {
        return Err(invalid("reason", "must be 4 to 500 characters"));
    }
    let rule = all_rules(ex, &ds).await?.into_iter().find(|r| r.key == key).ok_or(QualityError::NotFound { what: "rule" })?;
    if rule.retired_at_ms.is_some() {
        return Err(QualityError::State(format!("rule {key} is retired already")));
    }
    let now = ex.sharing.clock.now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    let id: i64 = match rule.id {
        Some(id) => {
            sqlx::query(
                "UPDATE quality_rules SET retired_at = $1, retired_by = $2, retire_reason = $3 WHERE id = $4 AND retired_at IS NULL",
            )
            .bind(now)
            .bind(&ctx.actor)
            .bind(reason)
            .bind(id.0)
            .execute(&mut **change.tx())
            .await?;
            id.0
        }
        None => {
            let params = serde_json::to_string(&rule.kind).map_err(|e| QualityError::State(e.to_string()))?;
            sqlx::query(
                "INSERT INTO quality_rules (resource_code, rule_key, origin, kind, params, dimension, blocking, created_at, created_by, \
                 retired_at, retired_by, retire_reason) VALUES ($1, $2, 'derived', $3, $4, $5, 0, $6, $7, $6, $7, $8) RETURNING id",
            )
            .bind(&ds.code)
            .bind(&rule.key)
            .bind(rule.kind.code())
            .bind(&params)
            .bind(rule.dimension.as_str())
            .bind(now)
            .bind(&ctx.actor)
            .bind(reason)
            .fetch_one(&mut **change.tx())
            .await?
            .try_get(0)?
        }
    };
    change
        .record(NewAuditEvent {
            action: Action::QualityRuleRetire,
            target_kind: "quality_rule",
            target_id: id.to_string(),
            department_id: Some(ds.provider.0),
            detail: json!({"resource": ds.code, "rule_key": rule.key, "reason": reason}),
        })
        .await?;
    change.commit().await?;
    Ok(Rule {
        id: Some(QualityRuleId(id)),
        retired_at_ms: Some(now),
        retired_by: Some(ctx.actor.clone()),
        retire_reason: Some(reason.to_string()),
        ..rule
    })
}

// ------------------------------------------------------------------ checks

/// Runs every rule in force over the dataset and appends the results as one check. `cause` says why:
/// a person's request (the provider's keepers or the authority), or the platform itself after a batch or on
/// its schedule (an operator principal). A scheduled check runs the dataset rules only (freshness, volume)
/// and carries the last check's record-level results into its score. Audited `quality.check`.
#[allow(clippy::too_many_arguments)]
pub async fn check(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    regions: &RegionTable,
    resource: &ResourceCode,
    cause: CheckCause,
    batch: Option<shutong_exchange::BatchId>,
) -> QualityResult<Run> {
    let ds = dataset(ex, actor, resource).await?;
    match cause {
        CheckCause::Manual => require_keeper(ex, actor, ds.provider).await?,
        CheckCause::Batch | CheckCause::Schedule if !actor.operator => {
            return Err(QualityError::Forbidden("checks after a batch or on the schedule are the platform's own".into()));
        }
        _ => {}
    }
    let binding = shutong_exchange::get_binding(ex, resource).await?.ok_or(QualityError::NotFound { what: "dataset (not bound)" })?;
    if binding.kind != shutong_exchange::BindingKind::Dataset {
        return Err(QualityError::State("only pooled datasets are checked (the resource is bound to a service or files)".into()));
    }
    if binding.table_name.is_none() {
        return Err(QualityError::State("the dataset has no data yet: there is nothing to check".into()));
    }
    let rules: Vec<Rule> = all_rules(ex, &ds).await?.into_iter().filter(|r| r.retired_at_ms.is_none()).collect();
    let started = ex.sharing.clock.now_ms();
    let today = shutong_store::china_date(started);
    let previous = latest_run(ex, &ds.code).await?;
    let row_pass = cause != CheckCause::Schedule;
    let mut results: Vec<RuleResult> = Vec::new();
    let mut rows_checked = binding.row_count;
    if row_pass {
        let kinds: Vec<&RuleKind> = rules.iter().map(|r| &r.kind).collect();
        let key_mask = binding.key_item.as_deref().and_then(|k| ds.document.items.iter().find(|i| i.name == k)).and_then(|i| i.mask);
        let keys = ex.keys();
        let mut ev = Evaluator::new(
            &ds.code,
            &binding.columns,
            binding.key_item.as_deref(),
            key_mask,
            &kinds,
            keys.as_deref(),
            &ex.mask_rules,
            regions,
            today,
        )
        .map_err(|m| QualityError::State(format!("a rule cannot be compiled: {m}")))?;
        if ev.has_row_rules() {
            shutong_exchange::scan::scan_dataset(ex, &binding, None, &mut |values| ev.row(values)).await?;
        }
        rows_checked = ev.rows;
        let finished = ex.sharing.clock.now_ms();
        for t in ev.finish() {
            let r = &rules[t.slot];
            results.push(RuleResult {
                rule_key: r.key.clone(),
                kind: r.kind.code().into(),
                dimension: r.dimension,
                checked_at_ms: finished,
                rows_checked,
                rows_failing: t.failing,
                samples: t.samples,
                score: share_score(rows_checked, t.failing),
                detail: t.detail,
            });
        }
    }
    // The rules that compare records (唯一性, 引用一致), judged by the pool over the whole dataset.
    if row_pass {
        let key_column = binding.key_item.as_deref().and_then(|k| binding.columns.iter().position(|c| c == k)).unwrap_or(0);
        let key_mask = binding.key_item.as_deref().and_then(|k| ds.document.items.iter().find(|i| i.name == k)).and_then(|i| i.mask);
        for r in rules.iter().filter(|r| r.kind.is_set_rule()) {
            let column = |item: &str| binding.columns.iter().position(|c| c == item);
            let (failing, raw, detail) = match &r.kind {
                RuleKind::Unique { item } => match column(item) {
                    Some(c) => {
                        let (n, samples) = shutong_exchange::scan::duplicates(ex, &binding, c, key_column, crate::SAMPLE_LIMIT).await?;
                        (n, samples, (n > 0).then(|| format!("{n} 条记录的“{item}”与其他记录重复")))
                    }
                    None => (0, Vec::new(), Some(format!("数据集没有“{item}”列"))),
                },
                RuleKind::Reference { item, resource } => {
                    let target = match ResourceCode::parse(resource) {
                        Ok(c) => shutong_exchange::get_binding(ex, &c).await?,
                        Err(_) => None,
                    };
                    match (column(item), target) {
                        (Some(c), Some(to)) => {
                            let refs =
                                shutong_exchange::scan::missing_references(ex, &binding, c, key_column, &to, crate::SAMPLE_LIMIT).await?;
                            let detail = (refs.missing > 0).then(|| format!("{} 条记录的“{item}”不是 {resource} 的现有主键", refs.missing));
                            (refs.missing, refs.samples, detail)
                        }
                        (_, None) => (rows_checked, Vec::new(), Some(format!("被引用的数据集 {resource} 已不存在"))),
                        (None, _) => (0, Vec::new(), Some(format!("数据集没有“{item}”列"))),
                    }
                }
                _ => continue,
            };
            let samples = raw.iter().map(|v| crate::check::shown_key(Some(v), key_mask, &ex.mask_rules)).collect();
            results.push(RuleResult {
                rule_key: r.key.clone(),
                kind: r.kind.code().into(),
                dimension: r.dimension,
                checked_at_ms: ex.sharing.clock.now_ms(),
                rows_checked,
                rows_failing: failing,
                samples,
                score: share_score(rows_checked, failing),
                detail,
            });
        }
    }
    // The dataset rules.
    let now = ex.sharing.clock.now_ms();
    for r in rules.iter().filter(|r| r.kind.is_dataset_rule()) {
        let (ok, detail) = match &r.kind {
            RuleKind::Freshness { max_age_days } => match binding.last_batch_at_ms {
                None => (false, "尚未归集数据".to_string()),
                Some(at) => {
                    // In calendar days (China time), as 更新周期 counts them.
                    let age = (shutong_store::china_date(now) - shutong_store::china_date(at)).num_days().max(0);
                    (
                        age <= *max_age_days as i64,
                        format!("最近归集于 {}，距今 {age} 天，要求不超过 {max_age_days} 天", shutong_store::china_date(at)),
                    )
                }
            },
            RuleKind::VolumeChange { max_change_percent } => match &previous {
                None => (true, format!("首次检查，记录 {rows_checked} 条")),
                Some(p) if p.rows_checked == 0 => (true, format!("上次检查无记录，本次 {rows_checked} 条")),
                Some(p) => {
                    let change = ((rows_checked - p.rows_checked).abs() * 100) / p.rows_checked;
                    (
                        change <= *max_change_percent as i64,
                        format!("记录数由 {} 变为 {rows_checked}，变化 {change}%，允许 {max_change_percent}%", p.rows_checked),
                    )
                }
            },
            _ => continue,
        };
        results.push(RuleResult {
            rule_key: r.key.clone(),
            kind: r.kind.code().into(),
            dimension: r.dimension,
            checked_at_ms: now,
            rows_checked: 1,
            rows_failing: (!ok) as i64,
            samples: Vec::new(),
            score: if ok { 10_000 } else { 0 },
            detail: Some(detail),
        });
    }
    // A scheduled check's score also counts the record-level results of the last check, for rules in force.
    let mut scored = results.clone();
    if !row_pass && let Some(p) = &previous {
        let in_force: std::collections::HashSet<&str> =
            rules.iter().filter(|r| !r.kind.is_dataset_rule()).map(|r| r.key.as_str()).collect();
        scored.extend(run_results(ex, p.id).await?.into_iter().filter(|r| in_force.contains(r.rule_key.as_str())));
    }
    let weights: BTreeMap<Dimension, i64> = dimensions(ex).await?.into_iter().map(|d| (d.dimension, d.weight)).collect();
    let (score, dims) = score_of(&scored, &weights);
    let finished = ex.sharing.clock.now_ms();
    let grade = Grade::of(score);
    let mut change = Change::begin(&ex.db, ctx).await?;
    let dims_json = serde_json::to_string(&dims).map_err(|e| QualityError::State(e.to_string()))?;
    let run_id: i64 = sqlx::query(
        "INSERT INTO quality_runs (resource_code, department_id, cause, batch_id, started_at, finished_at, rows_checked, score, grade, dimensions, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(&ds.code)
    .bind(ds.provider.0)
    .bind(cause.as_str())
    .bind(batch.map(|b| b.0))
    .bind(started)
    .bind(finished)
    .bind(rows_checked)
    .bind(score)
    .bind(grade.as_str())
    .bind(&dims_json)
    .bind(&ctx.actor)
    .fetch_one(&mut **change.tx())
    .await?
    .try_get(0)?;
    for r in &results {
        sqlx::query(
            "INSERT INTO quality_results (run_id, resource_code, rule_key, kind, dimension, checked_at, rows_checked, rows_failing, samples, score, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(run_id)
        .bind(&ds.code)
        .bind(&r.rule_key)
        .bind(&r.kind)
        .bind(r.dimension.as_str())
        .bind(r.checked_at_ms)
        .bind(r.rows_checked)
        .bind(r.rows_failing)
        .bind(serde_json::to_string(&r.samples).unwrap_or_else(|_| "[]".into()))
        .bind(r.score)
        .bind(&r.detail)
        .execute(&mut **change.tx())
        .await?;
    }
    let failing: Vec<&str> = results.iter().filter(|r| r.rows_failing > 0).map(|r| r.rule_key.as_str()).collect();
    change
        .record(NewAuditEvent {
            action: Action::QualityCheck,
            target_kind: "quality_run",
            target_id: run_id.to_string(),
            department_id: Some(ds.provider.0),
            detail: json!({"resource": ds.code, "cause": cause.as_str(), "batch_id": batch.map(|b| b.0), "rows_checked": rows_checked,
                           "score": score, "grade": grade.as_str(), "rules": results.len(), "failing": failing}),
        })
        .await?;
    change.commit().await?;
    Ok(Run {
        id: QualityRunId(run_id),
        resource_code: ds.code,
        department_id: ds.provider.0,
        cause,
        batch_id: batch.map(|b| b.0),
        started_at_ms: started,
        finished_at_ms: finished,
        rows_checked,
        score,
        grade,
        dimensions: dims,
        actor: ctx.actor.clone(),
        results,
    })
}

/// A check's score from its results: each dimension the mean of its rules' scores, the whole the mean of
/// the dimensions that have rules weighted by the authority's weights (a plain mean if all weigh 0).
pub fn score_of(results: &[RuleResult], weights: &BTreeMap<Dimension, i64>) -> (i64, Vec<DimensionScore>) {
    let mut by: BTreeMap<Dimension, (i64, i64)> = BTreeMap::new();
    for r in results {
        let e = by.entry(r.dimension).or_default();
        e.0 += r.score;
        e.1 += 1;
    }
    let dims: Vec<DimensionScore> = Dimension::ALL
        .iter()
        .filter_map(|d| by.get(d).map(|(sum, n)| DimensionScore { dimension: *d, score: sum / n, rules: *n }))
        .collect();
    if dims.is_empty() {
        return (10_000, dims);
    }
    let total_weight: i64 = dims.iter().map(|d| weights.get(&d.dimension).copied().unwrap_or(0)).sum();
    let score = if total_weight > 0 {
        dims.iter().map(|d| d.score * weights.get(&d.dimension).copied().unwrap_or(0)).sum::<i64>() / total_weight
    } else {
        dims.iter().map(|d| d.score).sum::<i64>() / dims.len() as i64
    };
    (score, dims)
}

const RUN_COLUMNS: &str =
    "id, resource_code, department_id, cause, batch_id, started_at, finished_at, rows_checked, score, grade, dimensions, actor";

fn run_from_row(r: &shutong_store::AnyRow) -> QualityResult<Run> {
    let cause: String = r.try_get("cause")?;
    let grade: String = r.try_get("grade")?;
    let dims: String = r.try_get("dimensions")?;
    Ok(Run {
        id: QualityRunId(r.try_get("id")?),
        resource_code: r.try_get("resource_code")?,
        department_id: r.try_get("department_id")?,
        cause: CheckCause::parse(&cause).ok_or_else(|| unreadable("quality_runs", "cause", &cause))?,
        batch_id: r.try_get("batch_id")?,
        started_at_ms: r.try_get("started_at")?,
        finished_at_ms: r.try_get("finished_at")?,
        rows_checked: r.try_get("rows_checked")?,
        score: r.try_get("score")?,
        grade: Grade::parse(&grade).ok_or_else(|| unreadable("quality_runs", "grade", &grade))?,
        dimensions: serde_json::from_str(&dims).map_err(|_| unreadable("quality_runs", "dimensions", &dims))?,
        actor: r.try_get("actor")?,
        results: Vec::new(),
    })
}

async fn latest_run(ex: &Exchange, code: &str) -> QualityResult<Option<Run>> {
    sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM quality_runs WHERE resource_code = $1 ORDER BY id DESC LIMIT 1"))
        .bind(code)
        .fetch_optional(ex.db.pool())
        .await?
        .as_ref()
        .map(run_from_row)
        .transpose()
}

async fn run_results(ex: &Exchange, run: QualityRunId) -> QualityResult<Vec<RuleResult>> {
    let rows = sqlx::query(
        "SELECT rule_key, kind, dimension, checked_at, rows_checked, rows_failing, samples, score, detail FROM quality_results WHERE run_id = $1 ORDER BY id",
    )
    .bind(run.0)
    .fetch_all(ex.db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let dim: String = r.try_get("dimension")?;
            let samples: String = r.try_get("samples")?;
            Ok(RuleResult {
                rule_key: r.try_get("rule_key")?,
                kind: r.try_get("kind")?,
                dimension: Dimension::parse(&dim).ok_or_else(|| unreadable("quality_results", "dimension", &dim))?,
                checked_at_ms: r.try_get("checked_at")?,
                rows_checked: r.try_get("rows_checked")?,
                rows_failing: r.try_get("rows_failing")?,
                samples: serde_json::from_str(&samples).map_err(|_| unreadable("quality_results", "samples", &samples))?,
                score: r.try_get("score")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

/// A dataset's checks, newest first (its score trended over time): `before` a check ID, at most `limit`.
pub async fn runs(ex: &Exchange, viewer: &Principal, resource: &ResourceCode, before: Option<i64>, limit: i64) -> QualityResult<Vec<Run>> {
    let ds = dataset(ex, viewer, resource).await?;
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM quality_runs WHERE resource_code = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(&ds.code)
    .bind(before)
    .bind(limit)
    .fetch_all(ex.db.pool())
    .await?;
    rows.iter().map(run_from_row).collect()
}

/// One check with its rules' results.
pub async fn run(ex: &Exchange, viewer: &Principal, id: QualityRunId) -> QualityResult<Run> {
    let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM quality_runs WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(ex.db.pool())
        .await?
        .ok_or(QualityError::NotFound { what: "quality check" })?;
    let mut run = run_from_row(&row)?;
    let code = ResourceCode::parse(&run.resource_code).map_err(|_| unreadable("quality_runs", "resource_code", &run.resource_code))?;
    dataset(ex, viewer, &code).await.map_err(|e| match e {
        QualityError::NotFound { .. } => QualityError::NotFound { what: "quality check" },
        other => other,
    })?;
    run.results = run_results(ex, id).await?;
    Ok(run)
}

/// The latest score of every checked dataset (of one department, or all), and per department the mean of
/// its datasets' scores and dimensions. Scores are shown to every user of the platform, as the catalog is;
/// failing keys only in one check's results, masked.
pub async fn scores(ex: &Exchange, department: Option<DepartmentId>) -> QualityResult<(Vec<DatasetScore>, Vec<DepartmentScore>)> {
    let rows = sqlx::query(
        "SELECT r.id, r.resource_code, r.department_id, r.finished_at, r.score, r.grade, r.dimensions, c.name AS resource_name, d.name AS department_name \
         FROM quality_runs r JOIN catalog_resources c ON c.code = r.resource_code JOIN departments d ON d.id = r.department_id \
         WHERE r.id IN (SELECT MAX(id) FROM quality_runs GROUP BY resource_code) AND ($1 IS NULL OR r.department_id = $1) \
         ORDER BY r.department_id, r.resource_code",
    )
    .bind(department.map(|d| d.0))
    .fetch_all(ex.db.pool())
    .await?;
    let mut datasets = Vec::new();
    let mut names: BTreeMap<i64, String> = BTreeMap::new();
    for r in &rows {
        let grade: String = r.try_get("grade")?;
        let dims: String = r.try_get("dimensions")?;
        let d = DatasetScore {
            resource_code: r.try_get("resource_code")?,
            resource_name: r.try_get("resource_name")?,
            department_id: r.try_get("department_id")?,
            run_id: QualityRunId(r.try_get("id")?),
            checked_at_ms: r.try_get("finished_at")?,
            score: r.try_get("score")?,
            grade: Grade::parse(&grade).ok_or_else(|| unreadable("quality_runs", "grade", &grade))?,
            dimensions: serde_json::from_str(&dims).map_err(|_| unreadable("quality_runs", "dimensions", &dims))?,
        };
        names.insert(d.department_id, r.try_get("department_name")?);
        datasets.push(d);
    }
    let mut departments = Vec::new();
    for (id, name) in names {
        let mine: Vec<&DatasetScore> = datasets.iter().filter(|d| d.department_id == id).collect();
        let n = mine.len() as i64;
        let score = mine.iter().map(|d| d.score).sum::<i64>() / n.max(1);
        let dimensions = Dimension::ALL
            .iter()
            .filter_map(|dim| {
                let s: Vec<i64> = mine.iter().flat_map(|d| d.dimensions.iter().filter(|x| x.dimension == *dim).map(|x| x.score)).collect();
                (!s.is_empty()).then(|| DimensionScore {
                    dimension: *dim,
                    score: s.iter().sum::<i64>() / s.len() as i64,
                    rules: s.len() as i64,
                })
            })
            .collect();
        departments.push(DepartmentScore {
            department_id: id,
            department_name: name,
            datasets: n,
            score,
            grade: Grade::of(score),
            dimensions,
        });
    }
    Ok((datasets, departments))
}

/// The scheduled freshness check of every pooled dataset with data (the platform's own, as `system:quality`):
/// the dataset rules of each, the last record-level results carried. Returns the checks made; a dataset that
/// fails is logged and skipped, not the end of the round.
pub async fn check_all_scheduled(ex: &Exchange, regions: &RegionTable) -> QualityResult<usize> {
    let operator = Principal::operator("system:quality");
    let ctx = AuditContext::system("system:quality");
    let mut n = 0;
    for b in shutong_exchange::list_bindings(ex).await? {
        if b.kind != shutong_exchange::BindingKind::Dataset || b.table_name.is_none() {
            continue;
        }
        match check(ex, &operator, &ctx, regions, &b.resource_code, CheckCause::Schedule, None).await {
            Ok(_) => n += 1,
            Err(QualityError::NotFound { .. }) => {}
            Err(e) => tracing::warn!(resource = %b.resource_code.as_str(), error = %e, "scheduled quality check failed"),
        }
    }
    Ok(n)
}

// ------------------------------------------------------------------ 阻断 (blocking rules)

/// The batch gate of the blocking rules (阻断): a batch whose rows fail a rule in force marked blocking is
/// refused whole, the rule and the failing keys (masked) named. Record rules only: dataset rules (及时性,
/// 数据量波动) and the rules across records (唯一性, 引用一致) are judged by the checks after the batch.
pub struct BlockingRules {
    regions: RegionTable,
}

impl BlockingRules {
    /// With the region table in force at start-up (a GB/T 2260 revision reaches the gate at the next start).
    pub fn new(regions: RegionTable) -> Self {
        BlockingRules { regions }
    }
}

impl shutong_exchange::BatchGate for BlockingRules {
    fn check<'a>(
        &'a self,
        ex: &'a Exchange,
        batch: &'a shutong_exchange::BindingView,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move { blocking_check(ex, &self.regions, batch).await.map_err(|e| e.to_string())? })
    }
}

/// Runs the blocking record rules over the batch's rows: `Ok(Err(why))` when one fails.
async fn blocking_check(ex: &Exchange, regions: &RegionTable, batch: &shutong_exchange::BindingView) -> QualityResult<Result<(), String>> {
    let p = shutong_exchange::published(ex, &batch.resource_code).await?;
    let ds = Dataset { code: p.code, provider: p.provider, document: p.document };
    let rules: Vec<Rule> = all_rules(ex, &ds)
        .await?
        .into_iter()
        .filter(|r| r.blocking && r.retired_at_ms.is_none() && !r.kind.is_dataset_rule() && !r.kind.is_set_rule())
        .collect();
    if rules.is_empty() {
        return Ok(Ok(()));
    }
    let kinds: Vec<&RuleKind> = rules.iter().map(|r| &r.kind).collect();
    let key_mask = batch.key_item.as_deref().and_then(|k| ds.document.items.iter().find(|i| i.name == k)).and_then(|i| i.mask);
    let keys = ex.keys();
    let today = ex.sharing.today();
    let mut ev = Evaluator::new(
        &ds.code,
        &batch.columns,
        batch.key_item.as_deref(),
        key_mask,
        &kinds,
        keys.as_deref(),
        &ex.mask_rules,
        regions,
        today,
    )
    .map_err(|m| QualityError::State(format!("a rule cannot be compiled: {m}")))?;
    shutong_exchange::scan::scan_dataset(ex, batch, None, &mut |values| ev.row(values)).await?;
    let failed: Vec<String> = ev
        .finish()
        .into_iter()
        .filter(|t| t.failing > 0)
        .map(|t| {
            let r = &rules[t.slot];
            let shown: Vec<&str> = t.samples.iter().take(5).map(String::as_str).collect();
            format!("{} ({}): {} row(s), e.g. {}", r.kind.label_zh(), r.kind.items().join(", "), t.failing, shown.join(", "))
        })
        .collect();
    Ok(if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) })
}

//! 挂接: binding a published resource to its data, and reading bindings and batches.

use serde::Deserialize;
use serde_json::json;
use shutong_audit::{AuditContext, NewAuditEvent};
use shutong_catalog::{ResourceDocument, SharingType};
use shutong_identity::{DepartmentId, Principal, Role};
use shutong_store::{AnyRow, Row, now_ms};

use crate::model::*;
use crate::{Exchange, ExchangeError, ExchangeResult, invalid};

/// The published version of a resource: what bindings, ingest and access are checked against.
pub struct Published {
    pub code: String,
    pub provider: DepartmentId,
    pub version: i64,
    pub document: ResourceDocument,
}

/// The resource's version in force. Withdrawn or never-published resources have no data plane.
pub async fn published(ex: &Exchange, resource: &shutong_catalog::ResourceCode) -> ExchangeResult<Published> {
    let code = resource.as_str();
    let row = sqlx::query("SELECT provider_department_id, published_version, status FROM catalog_resources WHERE code = $1")
        .bind(code)
        .fetch_optional(ex.db.pool())
        .await?
        .ok_or(ExchangeError::NotFound { what: "resource" })?;
    let status: String = row.try_get("status")?;
    let version: Option<i64> = row.try_get("published_version")?;
    let version = match version {
        Some(v) if status != "withdrawn" => v,
        _ => return Err(ExchangeError::NotFound { what: "published resource" }),
    };
    let doc: String = sqlx::query("SELECT document FROM catalog_versions WHERE code = $1 AND version = $2")
        .bind(code)
        .bind(version)
        .fetch_one(ex.db.pool())
        .await?
        .try_get(0)?;
    let document: ResourceDocument =
        serde_json::from_str(&doc).map_err(|e| ExchangeError::Store(shutong_store::StoreError::Other(sqlx::Error::Decode(Box::new(e)))))?;
    Ok(Published { code: code.to_string(), provider: DepartmentId(row.try_get("provider_department_id")?), version, document })
}

/// Who binds a resource and loads its data: the provider's catalog editors, department administrators and
/// system accounts (办法 第十二条: 谁提供谁负责更新), and the platform's operator (its own jobs: a theme database's
/// refresh).
pub fn may_load(p: &Principal, provider: DepartmentId) -> bool {
    p.operator
        || p.has_role_in(Role::CatalogEditor, provider)
        || p.has_role_in(Role::DepartmentAdmin, provider)
        || p.has_role_in(Role::SystemAccount, provider)
}

/// A binding to create or change.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBinding {
    /// dataset, service or files (数据集 / 服务接口 / 文件).
    pub kind: Option<BindingKind>,
    /// The key item of a dataset; default the resource's first key item (是否主键).
    #[serde(default)]
    pub key_item: Option<String>,
    /// The provider's service base URL, for `service`.
    #[serde(default)]
    pub service_url: Option<String>,
}

pub(crate) fn binding_from_row(r: &AnyRow) -> ExchangeResult<BindingView> {
    let columns: String = r.try_get("columns")?;
    Ok(BindingView {
        resource_code: shutong_catalog::ResourceCode::from_stored(
            "exchange_bindings",
            "resource_code",
            &r.try_get::<String, _>("resource_code")?,
        )?,
        provider_department_id: r.try_get("provider_department_id")?,
        kind: shutong_store::parse_column(r, "exchange_bindings", "kind", BindingKind::parse)?,
        key_item: r.try_get("key_item")?,
        columns: serde_json::from_str(&columns).map_err(|_| shutong_store::StoreError::decode("exchange_bindings", "columns", &columns))?,
        service_url: r.try_get("service_url")?,
        last_seq: r.try_get("last_seq")?,
        reset_seq: r.try_get("reset_seq")?,
        row_count: r.try_get("row_count")?,
        last_batch_at_ms: r.try_get("last_batch_at")?,
        created_at_ms: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        table_name: r.try_get("table_name")?,
        key_sealed: r.try_get::<i64, _>("key_sealed")? != 0,
    })
}

/// The binding of a resource, if it has one (readable by anyone who can see the published resource).
pub async fn get_binding(ex: &Exchange, resource: &shutong_catalog::ResourceCode) -> ExchangeResult<Option<BindingView>> {
    let code = resource.as_str();
    let row = sqlx::query(concat!("SELECT ", crate::binding_columns!(), " FROM exchange_bindings WHERE resource_code = $1"))
        .bind(code)
        .fetch_optional(ex.pool.pool())
        .await?;
    row.as_ref().map(binding_from_row).transpose()
}

/// Every binding, for the dashboard and the exemption check.
pub async fn list_bindings(ex: &Exchange) -> ExchangeResult<Vec<BindingView>> {
    let rows = sqlx::query(concat!("SELECT ", crate::binding_columns!(), " FROM exchange_bindings ORDER BY resource_code"))
        .fetch_all(ex.pool.pool())
        .await?;
    rows.iter().map(binding_from_row).collect()
}

/// Binds (or re-binds) a published resource to its data. A dataset's key cannot change once it holds data.
pub async fn bind(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &shutong_catalog::ResourceCode,
    new: NewBinding,
) -> ExchangeResult<BindingView> {
    let code = resource.as_str();
    let p = published(ex, resource).await?;
    if !may_load(actor, p.provider) && !actor.is_platform_admin() {
        return Err(ExchangeError::Forbidden(
            "only the provider's catalog editors, administrators and system accounts bind a resource".into(),
        ));
    }
    let kind = new.kind.ok_or_else(|| invalid("kind", format!("required: one of {}", BindingKind::expected())))?;
    let existing = get_binding(ex, resource).await?;
    let items = &p.document.items;
    let (key_item, service_url) = match kind {
        BindingKind::Dataset => {
            let key = match new.key_item.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
                Some(k) => items.iter().find(|i| i.name == k).ok_or_else(|| {
                    invalid(
                        "key_item",
                        format!(
                            "'{k}' is not an item of {code}; its items are {}",
                            items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join("、")
                        ),
                    )
                })?,
                None => items
                    .iter()
                    .find(|i| i.is_key)
                    .ok_or_else(|| invalid("key_item", "the resource marks no key item (是否主键): name one"))?,
            };
            if let Some(b) = &existing
                && b.table_name.is_some()
                && b.key_item.as_deref() != Some(key.name.as_str())
            {
                return Err(ExchangeError::Conflict(format!(
                    "the dataset is keyed by '{}' and holds data: its key cannot change",
                    b.key_item.as_deref().unwrap_or("")
                )));
            }
            (Some(key.name.clone()), None)
        }
        BindingKind::Service => {
            let url = new.service_url.as_deref().map(str::trim).unwrap_or("");
            let ok = (url.starts_with("http://"))
                && url.len() <= 500
                && !url.chars().any(|c| c.is_whitespace() || c.is_control())
                && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
            if !ok {
                return Err(invalid(
                    "service_url",
                    format!(
                        "'{url}' is not an http:// URL (the platform calls providers inside the government network; TLS ends at the exchange node)"
                    ),
                ));
            }
            (None, Some(url.trim_end_matches('/').to_string()))
        }
        BindingKind::Files => (None, None),
    };
    if p.document.sharing_type == SharingType::NotShared {
        return Err(ExchangeError::Conflict(format!("{code} is 不予共享: its data is not exchanged")));
    }
    let mut columns: Vec<String> = existing.as_ref().map(|b| b.columns.clone()).unwrap_or_default();
    for i in items {
        if !columns.contains(&i.name) {
            columns.push(i.name.clone());
        }
    }
    let now = now_ms();
    let mut change = pool_change(ex, ctx).await?;
    if existing.is_some() {
        sqlx::query("UPDATE exchange_bindings SET kind = $1, key_item = $2, service_url = $3, columns = $4, updated_at = $5 WHERE resource_code = $6")
            .bind(kind.as_str())
            .bind(&key_item)
            .bind(&service_url)
            .bind(json!(columns).to_string())
            .bind(now)
            .bind(code)
            .execute(&mut **change.tx())
            .await?;
    } else {
        sqlx::query(
            "INSERT INTO exchange_bindings (resource_code, provider_department_id, kind, key_item, columns, service_url, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7)",
        )
        .bind(code)
        .bind(p.provider.0)
        .bind(kind.as_str())
        .bind(&key_item)
        .bind(json!(columns).to_string())
        .bind(&service_url)
        .bind(now)
        .bind(&ctx.actor)
        .execute(&mut **change.tx())
        .await?;
    }
    let event = NewAuditEvent {
        action: shutong_audit::Action::ExchangeBind,
        target_kind: "resource",
        target_id: code.to_string(),
        department_id: Some(p.provider.0),
        detail: json!({"kind": kind, "key_item": key_item, "service_url": service_url}),
    };
    change.record(event).await?;
    change.notify(shutong_audit::Notice::DataChanged { code: code.to_string() });
    commit_pool_change(ex, change).await?;
    get_binding(ex, resource).await?.ok_or(ExchangeError::NotFound { what: "binding" })
}

/// Opens a change in the data pool (the unit of work of `shutong_audit::Change`): its events go into the
/// trail in the same transaction when the pool is the platform database (PostgreSQL), otherwise into the
/// pool's audit outbox in the same transaction (`shutong_audit::outbox`).
pub(crate) async fn pool_change<'c>(ex: &Exchange, ctx: &'c AuditContext) -> ExchangeResult<shutong_audit::Change<'c>> {
    Ok(if ex.same_database() {
        shutong_audit::Change::begin(&ex.pool, ctx).await?
    } else {
        shutong_audit::Change::begin_with_outbox(&ex.pool, ctx).await?
    })
}

/// Commits a pool change and runs its effects (`Notice::DataChanged`: cached access decisions forgotten),
/// then moves the outbox's events into the platform's trail (what fails there stays for the job runner's
/// next drain).
pub(crate) async fn commit_pool_change(ex: &Exchange, change: shutong_audit::Change<'_>) -> ExchangeResult<()> {
    change.commit().await?;
    if !ex.same_database() {
        crate::ingest::audit_outbox(ex).await;
    }
    Ok(())
}

// ------------------------------------------------------------------ batches

pub(crate) fn report_from_row(r: &AnyRow) -> ExchangeResult<BatchReport> {
    Ok(BatchReport {
        id: r.try_get("id")?,
        resource_code: r.try_get("resource_code")?,
        batch_id: r.try_get("batch_key")?,
        mode: shutong_store::parse_column(r, "exchange_batches", "mode", IngestMode::parse)?,
        format: shutong_store::parse_column(r, "exchange_batches", "format", DataFormat::parse)?,
        encoding: r.try_get("encoding")?,
        status: shutong_store::parse_column(r, "exchange_batches", "status", BatchStatus::parse)?,
        rows_received: r.try_get("rows_received")?,
        rows_upserted: r.try_get("rows_upserted")?,
        rows_deleted: r.try_get("rows_deleted")?,
        rows_rejected: r.try_get("rows_rejected")?,
        rows_after: r.try_get("rows_after")?,
        first_seq: r.try_get("first_seq")?,
        last_seq: r.try_get("last_seq")?,
        started_at_ms: r.try_get("started_at")?,
        finished_at_ms: r.try_get("finished_at")?,
        submitted_by: r.try_get("submitted_by")?,
        failure: r.try_get("failure")?,
        replayed: false,
        parts: r.try_get("parts")?,
        rejects: Vec::new(),
    })
}

/// Who reads a dataset's batches and reports: the provider's members, the sharing authority, auditors.
pub async fn may_read_batches(ex: &Exchange, p: &Principal, provider: DepartmentId) -> ExchangeResult<bool> {
    Ok(batch_readers(ex, p).await?(provider))
}

/// The same rule as [`may_read_batches`], asked once for many providers: whether `p` reads every provider's
/// batches is decided once, then each provider is a membership check.
pub async fn batch_readers<'a>(ex: &'a Exchange, p: &'a Principal) -> ExchangeResult<impl Fn(DepartmentId) -> bool + 'a> {
    let every = p.is_auditor() || p.is_platform_admin() || shutong_catalog::is_authority(&ex.db, p).await?;
    Ok(move |provider: DepartmentId| every || p.department_id == Some(provider) || p.roles.iter().any(|r| r.department_id == provider))
}

/// The last batches of a resource, newest first.
pub async fn list_batches(
    ex: &Exchange,
    actor: &Principal,
    resource: &shutong_catalog::ResourceCode,
    limit: i64,
) -> ExchangeResult<Vec<BatchReport>> {
    let code = resource.as_str();
    let b = get_binding(ex, resource).await?.ok_or(ExchangeError::NotFound { what: "binding" })?;
    if !may_read_batches(ex, actor, DepartmentId(b.provider_department_id)).await? {
        return Err(ExchangeError::NotFound { what: "binding" });
    }
    let rows = sqlx::query(concat!(
        "SELECT ",
        crate::batch_columns!(),
        " FROM exchange_batches WHERE resource_code = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(code)
    .bind(limit.clamp(1, 1000))
    .fetch_all(ex.pool.pool())
    .await?;
    rows.iter().map(report_from_row).collect()
}

/// One batch with its rejected rows.
pub async fn get_batch(
    ex: &Exchange,
    actor: &Principal,
    resource: &shutong_catalog::ResourceCode,
    id: BatchId,
) -> ExchangeResult<BatchReport> {
    let code = resource.as_str();
    let BatchId(id) = id;
    let b = get_binding(ex, resource).await?.ok_or(ExchangeError::NotFound { what: "binding" })?;
    if !may_read_batches(ex, actor, DepartmentId(b.provider_department_id)).await? {
        return Err(ExchangeError::NotFound { what: "batch" });
    }
    load_batch(ex, code, id).await
}

pub(crate) async fn load_batch(ex: &Exchange, code: &str, id: i64) -> ExchangeResult<BatchReport> {
    let row = sqlx::query(concat!("SELECT ", crate::batch_columns!(), " FROM exchange_batches WHERE id = $1 AND resource_code = $2"))
        .bind(id)
        .bind(code)
        .fetch_optional(ex.pool.pool())
        .await?
        .ok_or(ExchangeError::NotFound { what: "batch" })?;
    let mut report = report_from_row(&row)?;
    let rejects = sqlx::query("SELECT row_no, record_key, field, reason FROM exchange_rejects WHERE batch_id = $1 ORDER BY row_no")
        .bind(id)
        .fetch_all(ex.pool.pool())
        .await?;
    report.rejects = rejects
        .iter()
        .map(|r| Ok(RejectedRow { row: r.try_get(0)?, key: r.try_get(1)?, field: r.try_get(2)?, reason: r.try_get(3)? }))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(report)
}

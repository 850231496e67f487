//! Service functions of the catalog: one per state change, each authorised, validated and written in one
//! transaction with its audit event.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use shutong_audit::{AuditContext, Change, NewAuditEvent, Notice, record};
use shutong_identity::{DepartmentId, DepartmentKind, Principal, Role};
use shutong_reference::WorkCalendar;
use shutong_store::{AnyRow, Clock, Db, Row, StoreError, StoreResult, Tx, now_ms};

use crate::model::*;
use crate::rules::{self, Violation};

/// Errors of catalog services, each mapping to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// One field is invalid (422).
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// Rules are broken (422), all of them listed.
    #[error("{} rule violation(s): {}", .0.len(), .0.iter().map(|v| format!("{} {}: {}", v.rule, v.field, v.message)).collect::<Vec<_>>().join("; "))]
    Rules(Vec<Violation>),
    /// Not found, or not visible to the principal (404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The principal may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The resource is not in a state that allows this (409).
    #[error("{0}")]
    State(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        CatalogError::Store(e.into())
    }
}

pub type CatalogResult<T> = Result<T, CatalogError>;

fn invalid(field: &str, message: impl Into<String>) -> CatalogError {
    CatalogError::Validation { field: field.into(), message: message.into() }
}

// ------------------------------------------------------------------ who may do what

/// 共享主管部门: the platform administrators and the reviewers of a sharing-authority department review
/// catalog entries and may edit any of them (R-CAT-5, R-CAT-6).
pub async fn is_authority(db: &Db, p: &Principal) -> CatalogResult<bool> {
    if p.is_platform_admin() {
        return Ok(true);
    }
    for r in p.roles.iter().filter(|r| r.role == Role::Reviewer) {
        let kind: Option<String> = sqlx::query("SELECT kind FROM departments WHERE id = $1")
            .bind(r.department_id.0)
            .fetch_optional(db.pool())
            .await?
            .map(|row| row.get(0));
        if kind.as_deref() == Some(DepartmentKind::SharingAuthority.as_str()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// R-CAT-6 谁编制谁负责: the providing department's catalog editors, and the authority.
fn may_edit(p: &Principal, provider: DepartmentId, authority: bool) -> bool {
    authority || p.has_role_in(Role::CatalogEditor, provider)
}

/// Who may read unpublished versions: the provider's users, the authority, auditors.
fn may_read_drafts(p: &Principal, provider: DepartmentId, authority: bool) -> bool {
    authority || p.is_auditor() || p.department_id == Some(provider)
}

// ------------------------------------------------------------------ views

/// A resource as one of its versions.
#[derive(Clone, Debug, Serialize)]
pub struct ResourceView {
    pub code: String,
    pub version: i64,
    pub status: VersionStatus,
    pub latest_version: i64,
    /// The version in force (published), if any.
    pub published_version: Option<i64>,
    /// The resource's own status: the latest version's, or `withdrawn`.
    pub resource_status: VersionStatus,
    pub classification_code: String,
    pub classification_name: String,
    pub provider_department_id: i64,
    pub provider_name: String,
    /// 提供方代码: the provider's 统一社会信用代码.
    pub provider_code: String,
    pub provider_region_code: String,
    pub document: ResourceDocument,
    pub created_at_ms: i64,
    pub created_by: String,
    pub submitted_at_ms: Option<i64>,
    pub reviewed_at_ms: Option<i64>,
    pub reviewed_by: Option<String>,
    pub return_reason: Option<String>,
    /// 发布日期.
    pub published_at_ms: Option<i64>,
    pub withdrawn_at_ms: Option<i64>,
    pub withdraw_reason: Option<String>,
}

/// One line of a version history.
#[derive(Clone, Debug, Serialize)]
pub struct VersionSummary {
    pub version: i64,
    pub status: VersionStatus,
    pub name: String,
    pub created_at_ms: i64,
    pub created_by: String,
    pub submitted_at_ms: Option<i64>,
    pub reviewed_at_ms: Option<i64>,
    pub reviewed_by: Option<String>,
    pub return_reason: Option<String>,
    pub published_at_ms: Option<i64>,
}

/// A resource in a list.
#[derive(Clone, Debug, Serialize)]
pub struct ResourceSummary {
    pub code: String,
    pub name: String,
    pub status: VersionStatus,
    pub latest_version: i64,
    pub published_version: Option<i64>,
    pub classification_code: String,
    pub provider_department_id: i64,
    pub provider_name: String,
    pub sharing_type: SharingType,
    pub open_to_public: bool,
    pub format: ResourceFormat,
    pub update_cycle: UpdateCycle,
    pub updated_at_ms: i64,
}

const VIEW_SQL: &str = "SELECT r.code, r.status AS resource_status, r.latest_version, r.published_version, r.classification_code, \
    c.name AS classification_name, r.provider_department_id, d.name AS provider_name, d.credit_code AS provider_code, d.region_code AS provider_region_code, \
    v.version, v.status, v.document, v.created_at, v.created_by, v.submitted_at, v.reviewed_at, v.reviewed_by, v.return_reason, v.published_at, \
    v.withdrawn_at, v.withdraw_reason \
    FROM catalog_resources r JOIN catalog_versions v ON v.code = r.code \
    JOIN catalog_classifications c ON c.code = r.classification_code JOIN departments d ON d.id = r.provider_department_id";

/// A stored version status (`catalog_versions.status`, or the resource's own in `column`).
fn status_of(r: &AnyRow, column: &str) -> StoreResult<VersionStatus> {
    let table = if column == "resource_status" { "catalog_resources" } else { "catalog_versions" };
    shutong_store::parse_column(r, table, column, VersionStatus::parse)
}

fn view_from_row(r: &AnyRow) -> CatalogResult<ResourceView> {
    let doc: String = r.try_get("document")?;
    let document = serde_json::from_str(&doc).map_err(|e| CatalogError::State(format!("stored document unreadable: {e}")))?;
    Ok(ResourceView {
        code: r.try_get("code")?,
        version: r.try_get("version")?,
        status: status_of(r, "status")?,
        latest_version: r.try_get("latest_version")?,
        published_version: r.try_get("published_version")?,
        resource_status: status_of(r, "resource_status")?,
        classification_code: r.try_get("classification_code")?,
        classification_name: r.try_get("classification_name")?,
        provider_department_id: r.try_get("provider_department_id")?,
        provider_name: r.try_get("provider_name")?,
        provider_code: r.try_get("provider_code")?,
        provider_region_code: r.try_get("provider_region_code")?,
        document,
        created_at_ms: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        submitted_at_ms: r.try_get("submitted_at")?,
        reviewed_at_ms: r.try_get("reviewed_at")?,
        reviewed_by: r.try_get("reviewed_by")?,
        return_reason: r.try_get("return_reason")?,
        published_at_ms: r.try_get("published_at")?,
        withdrawn_at_ms: r.try_get("withdrawn_at")?,
        withdraw_reason: r.try_get("withdraw_reason")?,
    })
}

async fn load_version(conn: &mut shutong_store::AnyConnection, code: &str, version: i64) -> CatalogResult<ResourceView> {
    let row = sqlx::query(&format!("{VIEW_SQL} WHERE r.code = $1 AND v.version = $2"))
        .bind(code)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CatalogError::NotFound { what: "resource version" })?;
    view_from_row(&row)
}

/// The resource row, locked for the rest of the transaction where the backend supports it.
struct ResourceRow {
    provider: DepartmentId,
    classification: String,
    status: VersionStatus,
    latest_version: i64,
    published_version: Option<i64>,
}

async fn resource_row(tx: &mut Tx, code: &str) -> CatalogResult<ResourceRow> {
    let r = sqlx::query("SELECT provider_department_id, classification_code, status, latest_version, published_version FROM catalog_resources WHERE code = $1")
        .bind(code)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(CatalogError::NotFound { what: "resource" })?;
    Ok(ResourceRow {
        provider: DepartmentId(r.try_get("provider_department_id")?),
        classification: r.try_get("classification_code")?,
        status: status_of(&r, "status")?,
        latest_version: r.try_get("latest_version")?,
        published_version: r.try_get("published_version")?,
    })
}

async fn latest_document(tx: &mut Tx, code: &str, version: i64) -> CatalogResult<ResourceDocument> {
    let doc: String = sqlx::query("SELECT document FROM catalog_versions WHERE code = $1 AND version = $2")
        .bind(code)
        .bind(version)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    serde_json::from_str(&doc).map_err(|e| CatalogError::State(format!("stored document unreadable: {e}")))
}

fn normalise(mut doc: ResourceDocument) -> ResourceDocument {
    doc.name = doc.name.trim().to_string();
    doc.summary = doc.summary.trim().to_string();
    for i in &mut doc.items {
        i.name = i.name.trim().to_string();
    }
    doc
}

async fn sync_columns(tx: &mut Tx, code: &str, doc: &ResourceDocument, status: VersionStatus) -> CatalogResult<()> {
    sqlx::query(
        "UPDATE catalog_resources SET name = $1, sharing_type = $2, is_open = $3, format = $4, update_cycle = $5, status = $6, updated_at = $7 WHERE code = $8",
    )
    .bind(&doc.name)
    .bind(doc.sharing_type.as_str())
    .bind(doc.open_to_public as i64)
    .bind(doc.format.as_str())
    .bind(doc.update_cycle.as_str())
    .bind(status.as_str())
    .bind(now_ms())
    .bind(code)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a change of a catalog resource in its unit of work, which then refreshes the resource's
/// search entry and the access decisions that read it once committed.
async fn audit(change: &mut Change<'_>, action: &str, code: &str, provider: DepartmentId, detail: serde_json::Value) -> CatalogResult<()> {
    change
        .record(NewAuditEvent {
            action,
            target_kind: "catalog_resource",
            target_id: code.to_string(),
            department_id: Some(provider.0),
            detail,
        })
        .await?;
    change.notify(Notice::CatalogChanged { code: code.to_string() });
    Ok(())
}

fn field_violations(doc: &ResourceDocument) -> CatalogResult<()> {
    let v = rules::check_fields(doc);
    if v.is_empty() { Ok(()) } else { Err(CatalogError::Rules(v)) }
}

/// 网络分区 (SPEC §2, §6: classified resources only on inner-zone nodes): a node in the outer zone (电子政务外网)
/// refuses resources marked 涉密, whoever asks and however they arrive (new, edited, imported).
async fn check_zone(tx: &mut Tx, docs: &[(usize, &ResourceDocument)]) -> CatalogResult<()> {
    if !docs.iter().any(|(_, d)| d.secrecy == crate::model::Secrecy::Classified) {
        return Ok(());
    }
    let zone: Option<String> =
        sqlx::query("SELECT zone FROM node_identity WHERE id = 1").fetch_optional(&mut **tx).await?.map(|r| r.get::<String, _>(0));
    if zone.as_deref() == Some("inner") {
        return Ok(());
    }
    let violations = docs
        .iter()
        .filter(|(_, d)| d.secrecy == crate::model::Secrecy::Classified)
        .map(|(i, _)| rules::Violation {
            rule: "R-SEC-ZONE",
            field: if docs.len() == 1 { "secrecy".to_string() } else { format!("resources[{i}].secrecy") },
            message: "this node is in the outer zone (电子政务外网): a classified (涉密) resource belongs on an inner-zone node".into(),
        })
        .collect();
    Err(CatalogError::Rules(violations))
}

fn all_rules(doc: &ResourceDocument, classification: &str) -> CatalogResult<()> {
    let v = rules::check(doc, classification.starts_with('1'));
    if v.is_empty() { Ok(()) } else { Err(CatalogError::Rules(v)) }
}

// ------------------------------------------------------------------ lifecycle

/// Input of [`create_resource`].
#[derive(Clone, Debug)]
pub struct NewResource {
    pub classification_code: String,
    /// Defaults to the principal's department.
    pub provider: Option<DepartmentId>,
    pub document: ResourceDocument,
    /// A project's catalog entry (R-CAT-8): merged into the catalog when the project is accepted.
    pub project: Option<i64>,
}

/// 编制: creates a resource as a draft (version 1) and gives it its code.
pub async fn create_resource(db: &Db, actor: &Principal, ctx: &AuditContext, new: NewResource) -> CatalogResult<ResourceView> {
    let authority = is_authority(db, actor).await?;
    let provider = new.provider.or(actor.department_id).ok_or_else(|| invalid("provider_department_id", "required"))?;
    if !may_edit(actor, provider, authority) {
        return Err(CatalogError::Forbidden(
            "only the providing department's catalog editors (and the sharing authority) compile its catalog".into(),
        ));
    }
    let doc = normalise(new.document);
    field_violations(&doc)?;
    let mut change = Change::begin(db, ctx).await?;
    if let Some(project) = new.project {
        let row = sqlx::query("SELECT department_id, status FROM catalog_projects WHERE id = $1")
            .bind(project)
            .fetch_optional(&mut **change.tx())
            .await?
            .ok_or_else(|| invalid("project_id", format!("project {project} does not exist")))?;
        if row.try_get::<i64, _>("department_id")? != provider.0 {
            return Err(invalid("project_id", "the project belongs to another department"));
        }
        if row.try_get::<String, _>("status")? != "compiled" {
            return Err(CatalogError::State("the project was accepted; its catalog is closed".into()));
        }
    }
    check_target(change.tx(), &new.classification_code, provider).await?;
    let rows = [(new.classification_code.clone(), provider, doc)];
    let code = create_many_in_tx(&mut change, &rows, false).await?.remove(0);
    if let Some(project) = new.project {
        sqlx::query("UPDATE catalog_resources SET project_id = $1 WHERE code = $2")
            .bind(project)
            .bind(code.as_str())
            .execute(&mut **change.tx())
            .await?;
    }
    let view = load_version(change.tx(), code.as_str(), 1).await?;
    change.notify(Notice::CatalogChanged { code: code.to_string() });
    change.commit().await?;
    Ok(view)
}

/// Checks that a resource may be filed under `classification` (a 项 or deeper that exists) for an
/// existing `provider`: what [`create_many_in_tx`] expects its caller to have checked.
async fn check_target(tx: &mut Tx, classification: &str, provider: DepartmentId) -> CatalogResult<()> {
    let class_level: Option<i64> = sqlx::query("SELECT level FROM catalog_classifications WHERE code = $1")
        .bind(classification)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.get(0));
    match class_level {
        None => return Err(invalid("classification_code", format!("classification '{classification}' does not exist"))),
        Some(1) => return Err(invalid("classification_code", "a resource belongs under a 项 or deeper, not directly under a 类")),
        Some(_) => {}
    }
    let dept = sqlx::query("SELECT id FROM departments WHERE id = $1").bind(provider.0).fetch_optional(&mut **tx).await?;
    if dept.is_none() {
        return Err(invalid("provider_department_id", format!("department {provider} does not exist")));
    }
    Ok(())
}

/// Creates resources in the caller's transaction: the one insert path, for a single new entry and for an
/// import alike. Classifications and providers must have been checked by the caller. Codes are taken per classification in one step, rows are written in
/// multi-row statements, and every resource still gets its own audit event. With `submit`, each is
/// submitted for review at once.
pub(crate) async fn create_many_in_tx(
    change: &mut Change<'_>,
    rows: &[(String, DepartmentId, ResourceDocument)],
    submit: bool,
) -> CatalogResult<Vec<ResourceCode>> {
    use std::collections::BTreeMap;
    check_zone(change.tx(), &rows.iter().enumerate().map(|(i, (_, _, d))| (i, d)).collect::<Vec<_>>()).await?;
    let mut per_class: BTreeMap<&str, i64> = BTreeMap::new();
    for (class, _, _) in rows {
        *per_class.entry(class.as_str()).or_default() += 1;
    }
    // The next free sequence per classification, reserved for the whole batch.
    let mut next: BTreeMap<&str, i64> = BTreeMap::new();
    for (class, count) in &per_class {
        let last: i64 = sqlx::query(
            "INSERT INTO catalog_sequences (classification_code, last_seq) VALUES ($1, $2) \
             ON CONFLICT (classification_code) DO UPDATE SET last_seq = catalog_sequences.last_seq + $2 RETURNING last_seq",
        )
        .bind(*class)
        .bind(*count)
        .fetch_one(&mut **change.tx())
        .await?
        .try_get(0)?;
        if last > 999_999 {
            return Err(invalid("classification_code", format!("classification {class} would exceed 999999 sequence codes")));
        }
        next.insert(class, last - count + 1);
    }
    let now = now_ms();
    let status = if submit { "submitted" } else { "draft" };
    let submitted_at = submit.then_some(now);
    let mut codes = Vec::with_capacity(rows.len());
    for (class, _, _) in rows {
        let seq = next.get_mut(class.as_str()).ok_or_else(|| CatalogError::State("sequence".into()))?;
        codes.push(ResourceCode::new(class, *seq));
        *seq += 1;
    }
    const CHUNK: usize = 300;
    for (chunk_i, chunk) in rows.chunks(CHUNK).enumerate() {
        let codes = &codes[chunk_i * CHUNK..chunk_i * CHUNK + chunk.len()];
        let mut res_sql = String::from(
            "INSERT INTO catalog_resources (code, classification_code, provider_department_id, status, latest_version, published_version, name, sharing_type, is_open, format, update_cycle, created_at, updated_at) VALUES ",
        );
        let mut ver_sql =
            String::from("INSERT INTO catalog_versions (code, version, status, document, created_at, created_by, submitted_at) VALUES ");
        for i in 0..chunk.len() {
            let (r, v) = (i * 11, i * 6);
            if i > 0 {
                res_sql.push(',');
                ver_sql.push(',');
            }
            res_sql.push_str(&format!(
                "(${},${},${},${},1,NULL,${},${},${},${},${},${},${})",
                r + 1,
                r + 2,
                r + 3,
                r + 4,
                r + 5,
                r + 6,
                r + 7,
                r + 8,
                r + 9,
                r + 10,
                r + 11
            ));
            ver_sql.push_str(&format!("(${},1,${},${},${},${},${})", v + 1, v + 2, v + 3, v + 4, v + 5, v + 6));
        }
        let mut rq = sqlx::query(&res_sql);
        let mut vq = sqlx::query(&ver_sql);
        for ((class, provider, doc), code) in chunk.iter().zip(codes) {
            rq = rq
                .bind(code.as_str())
                .bind(class.as_str())
                .bind(provider.0)
                .bind(status)
                .bind(&doc.name)
                .bind(doc.sharing_type.as_str())
                .bind(doc.open_to_public as i64)
                .bind(doc.format.as_str())
                .bind(doc.update_cycle.as_str())
                .bind(now)
                .bind(now);
            vq = vq
                .bind(code.as_str())
                .bind(status)
                .bind(serde_json::to_string(doc).unwrap_or_default())
                .bind(now)
                .bind(&change.ctx().actor)
                .bind(submitted_at);
        }
        rq.execute(&mut **change.tx()).await?;
        vq.execute(&mut **change.tx()).await?;
        let events: Vec<NewAuditEvent> = chunk
            .iter()
            .zip(codes)
            .map(|((class, provider, doc), code)| NewAuditEvent {
                action: "catalog.create",
                target_kind: "catalog_resource",
                target_id: code.to_string(),
                department_id: Some(provider.0),
                detail: json!({"name": doc.name, "classification": class, "version": 1, "submitted": submit}),
            })
            .collect();
        change.record_many(&events).await?;
    }
    Ok(codes)
}

/// Replaces the document of the latest version while it is a draft (or was returned).
pub async fn update_draft(
    db: &Db,
    actor: &Principal,
    ctx: &AuditContext,
    code: &str,
    document: ResourceDocument,
) -> CatalogResult<ResourceView> {
    let authority = is_authority(db, actor).await?;
    let doc = normalise(document);
    field_violations(&doc)?;
    let mut change = Change::begin(db, ctx).await?;
    check_zone(change.tx(), &[(0, &doc)]).await?;
    let r = resource_row(change.tx(), code).await?;
    if !may_edit(actor, r.provider, authority) {
        return Err(refusal(
            actor,
            &r,
            authority,
            "only the providing department's catalog editors (and the authority) change its entries",
        ));
    }
    let status = latest_status(change.tx(), code, r.latest_version).await?;
    if !matches!(status, VersionStatus::Draft | VersionStatus::Returned) {
        return Err(CatalogError::State(format!(
            "version {} is {}; only a draft can be edited (revise a published resource first)",
            r.latest_version,
            status.label_zh()
        )));
    }
    sqlx::query("UPDATE catalog_versions SET document = $1, status = 'draft' WHERE code = $2 AND version = $3")
        .bind(serde_json::to_string(&doc).unwrap_or_default())
        .bind(code)
        .bind(r.latest_version)
        .execute(&mut **change.tx())
        .await?;
    let resource_status = if r.published_version.is_some() { VersionStatus::Published } else { VersionStatus::Draft };
    if r.published_version.is_none() {
        sync_columns(change.tx(), code, &doc, resource_status).await?;
    }
    audit(&mut change, "catalog.update_draft", code, r.provider, json!({"version": r.latest_version, "name": doc.name})).await?;
    let view = load_version(change.tx(), code, r.latest_version).await?;
    change.commit().await?;
    Ok(view)
}

/// The refusal of a change: 403 if the principal may see the resource (it is published, or the principal
/// may read its drafts), otherwise 404, so that drafts of other departments do not reveal themselves.
fn refusal(actor: &Principal, r: &ResourceRow, authority: bool, message: &str) -> CatalogError {
    if r.published_version.is_some() || may_read_drafts(actor, r.provider, authority) {
        CatalogError::Forbidden(message.into())
    } else {
        CatalogError::NotFound { what: "resource" }
    }
}

async fn latest_status(tx: &mut Tx, code: &str, version: i64) -> CatalogResult<VersionStatus> {
    let row = sqlx::query("SELECT status FROM catalog_versions WHERE code = $1 AND version = $2")
        .bind(code)
        .bind(version)
        .fetch_one(&mut **tx)
        .await?;
    Ok(status_of(&row, "status")?)
}

/// 提交审核: submits the latest draft for the authority's review; every rule must hold.
pub async fn submit(db: &Db, actor: &Principal, ctx: &AuditContext, code: &str) -> CatalogResult<ResourceView> {
    let authority = is_authority(db, actor).await?;
    let mut change = Change::begin(db, ctx).await?;
    let r = resource_row(change.tx(), code).await?;
    if !may_edit(actor, r.provider, authority) {
        return Err(refusal(actor, &r, authority, "only the providing department's catalog editors submit its entries"));
    }
    let status = latest_status(change.tx(), code, r.latest_version).await?;
    if !matches!(status, VersionStatus::Draft | VersionStatus::Returned) {
        return Err(CatalogError::State(format!("version {} is {}; only a draft can be submitted", r.latest_version, status.label_zh())));
    }
    let in_open_project: Option<i64> = sqlx::query(
        "SELECT p.id FROM catalog_resources r JOIN catalog_projects p ON p.id = r.project_id WHERE r.code = $1 AND p.status = 'compiled'",
    )
    .bind(code)
    .fetch_optional(&mut **change.tx())
    .await?
    .map(|r| r.get(0));
    if let Some(p) = in_open_project {
        return Err(CatalogError::State(format!(
            "this entry belongs to project {p}'s catalog, which is merged when the project is accepted (第二十二条)"
        )));
    }
    let doc = latest_document(change.tx(), code, r.latest_version).await?;
    all_rules(&doc, &r.classification)?;
    sqlx::query(
        "UPDATE catalog_versions SET status = 'submitted', submitted_at = $1, return_reason = NULL WHERE code = $2 AND version = $3",
    )
    .bind(now_ms())
    .bind(code)
    .bind(r.latest_version)
    .execute(&mut **change.tx())
    .await?;
    if r.published_version.is_none() {
        sqlx::query("UPDATE catalog_resources SET status = 'submitted', updated_at = $1 WHERE code = $2")
            .bind(now_ms())
            .bind(code)
            .execute(&mut **change.tx())
            .await?;
    }
    audit(&mut change, "catalog.submit", code, r.provider, json!({"version": r.latest_version})).await?;
    let view = load_version(change.tx(), code, r.latest_version).await?;
    change.commit().await?;
    Ok(view)
}

/// The authority's decision on a submission.
#[derive(Clone, Debug)]
pub enum ReviewDecision {
    /// 审核通过: publish.
    Approve,
    /// 退回: back to the provider, with the reason (required).
    Return { reason: String },
}

/// 审核: the sharing authority approves (publishes) or returns a submitted version.
pub async fn review(
    db: &Db,
    clock: &Clock,
    actor: &Principal,
    ctx: &AuditContext,
    code: &str,
    decision: ReviewDecision,
) -> CatalogResult<ResourceView> {
    if !is_authority(db, actor).await? {
        return Err(CatalogError::Forbidden("only the sharing authority reviews catalog entries".into()));
    }
    let mut change = Change::begin(db, ctx).await?;
    let r = resource_row(change.tx(), code).await?;
    let v = r.latest_version;
    let status = latest_status(change.tx(), code, v).await?;
    if status != VersionStatus::Submitted {
        return Err(CatalogError::State(format!("version {v} is {}; only a submitted version can be reviewed", status.label_zh())));
    }
    let now = now_ms();
    match decision {
        ReviewDecision::Return { reason } => {
            let reason = reason.trim().to_string();
            if reason.is_empty() || reason.chars().count() > 2000 {
                return Err(invalid("reason", "a return needs its reason (1 to 2000 characters)"));
            }
            sqlx::query("UPDATE catalog_versions SET status = 'returned', reviewed_at = $1, reviewed_by = $2, return_reason = $3 WHERE code = $4 AND version = $5")
                .bind(now)
                .bind(&ctx.actor)
                .bind(&reason)
                .bind(code)
                .bind(v)
                .execute(&mut **change.tx())
                .await?;
            if r.published_version.is_none() {
                sqlx::query("UPDATE catalog_resources SET status = 'returned', updated_at = $1 WHERE code = $2")
                    .bind(now)
                    .bind(code)
                    .execute(&mut **change.tx())
                    .await?;
            }
            audit(&mut change, "catalog.return", code, r.provider, json!({"version": v, "reason": reason})).await?;
        }
        ReviewDecision::Approve => {
            let doc = latest_document(change.tx(), code, v).await?;
            all_rules(&doc, &r.classification)?;
            if let Some(old) = r.published_version {
                sqlx::query("UPDATE catalog_versions SET status = 'superseded' WHERE code = $1 AND version = $2")
                    .bind(code)
                    .bind(old)
                    .execute(&mut **change.tx())
                    .await?;
            }
            sqlx::query("UPDATE catalog_versions SET status = 'published', reviewed_at = $1, reviewed_by = $2, published_at = $1 WHERE code = $3 AND version = $4")
                .bind(now)
                .bind(&ctx.actor)
                .bind(code)
                .bind(v)
                .execute(&mut **change.tx())
                .await?;
            sqlx::query("UPDATE catalog_resources SET published_version = $1 WHERE code = $2")
                .bind(v)
                .bind(code)
                .execute(&mut **change.tx())
                .await?;
            sync_columns(change.tx(), code, &doc, VersionStatus::Published).await?;
            // A publication answers the department's open change events (R-CAT-7).
            let today = clock.today().to_string();
            let resolved = sqlx::query(
                "UPDATE catalog_change_events SET resolved_at = $1, resolved_by = $2, resolution = $3 WHERE department_id = $4 AND resolved_at IS NULL AND occurred_on <= $5",
            )
            .bind(now)
            .bind(&ctx.actor)
            .bind(format!("目录已更新：{code} 第 {v} 版发布"))
            .bind(r.provider.0)
            .bind(&today)
            .execute(&mut **change.tx())
            .await?
            .rows_affected();
            audit(
                &mut change,
                "catalog.publish",
                code,
                r.provider,
                json!({"version": v, "previous": r.published_version, "change_events_resolved": resolved}),
            )
            .await?;
        }
    }
    let view = load_version(change.tx(), code, v).await?;
    change.commit().await?;
    Ok(view)
}

/// 修订: opens a new version (a draft copied from the published one); the published version stays in
/// force, and readable afterwards, until the new one is published.
pub async fn revise(db: &Db, actor: &Principal, ctx: &AuditContext, code: &str) -> CatalogResult<ResourceView> {
    let authority = is_authority(db, actor).await?;
    let mut change = Change::begin(db, ctx).await?;
    let r = resource_row(change.tx(), code).await?;
    if !may_edit(actor, r.provider, authority) {
        return Err(refusal(actor, &r, authority, "only the providing department's catalog editors revise its entries"));
    }
    let status = latest_status(change.tx(), code, r.latest_version).await?;
    if status != VersionStatus::Published {
        return Err(CatalogError::State(format!(
            "version {} is {}; only the published version can be revised",
            r.latest_version,
            status.label_zh()
        )));
    }
    let doc = latest_document(change.tx(), code, r.latest_version).await?;
    let next = r.latest_version + 1;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO catalog_versions (code, version, status, document, created_at, created_by) VALUES ($1, $2, 'draft', $3, $4, $5)",
    )
    .bind(code)
    .bind(next)
    .bind(serde_json::to_string(&doc).unwrap_or_default())
    .bind(now)
    .bind(&ctx.actor)
    .execute(&mut **change.tx())
    .await?;
    sqlx::query("UPDATE catalog_resources SET latest_version = $1, updated_at = $2 WHERE code = $3")
        .bind(next)
        .bind(now)
        .bind(code)
        .execute(&mut **change.tx())
        .await?;
    audit(&mut change, "catalog.revise", code, r.provider, json!({"version": next, "from": r.latest_version})).await?;
    let view = load_version(change.tx(), code, next).await?;
    change.commit().await?;
    Ok(view)
}

/// 撤销: withdraws a published resource (its versions stay readable). A reason is required.
pub async fn withdraw(db: &Db, actor: &Principal, ctx: &AuditContext, code: &str, reason: &str) -> CatalogResult<ResourceView> {
    let authority = is_authority(db, actor).await?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(invalid("reason", "a withdrawal needs its reason (1 to 2000 characters)"));
    }
    let mut change = Change::begin(db, ctx).await?;
    let r = resource_row(change.tx(), code).await?;
    if !may_edit(actor, r.provider, authority) {
        return Err(refusal(
            actor,
            &r,
            authority,
            "only the providing department's catalog editors (and the authority) withdraw its entries",
        ));
    }
    let Some(published) = r.published_version.filter(|_| r.status != VersionStatus::Withdrawn) else {
        return Err(CatalogError::State("only a published resource can be withdrawn".into()));
    };
    let now = now_ms();
    sqlx::query(
        "UPDATE catalog_versions SET status = 'withdrawn', withdrawn_at = $1, withdraw_reason = $2 WHERE code = $3 AND version = $4",
    )
    .bind(now)
    .bind(reason)
    .bind(code)
    .bind(published)
    .execute(&mut **change.tx())
    .await?;
    sqlx::query("UPDATE catalog_resources SET status = 'withdrawn', updated_at = $1 WHERE code = $2")
        .bind(now)
        .bind(code)
        .execute(&mut **change.tx())
        .await?;
    audit(&mut change, "catalog.withdraw", code, r.provider, json!({"version": published, "reason": reason})).await?;
    let view = load_version(change.tx(), code, published).await?;
    change.commit().await?;
    Ok(view)
}

// ------------------------------------------------------------------ reading

/// A resource at a version (default: the latest the viewer may see). Unpublished versions are visible
/// only to the provider's users, the authority and auditors; to others the resource does not exist
/// until it is published.
pub async fn get_resource(db: &Db, viewer: &Principal, code: &str, version: Option<i64>) -> CatalogResult<ResourceView> {
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let head =
        sqlx::query("SELECT provider_department_id, latest_version, published_version, status FROM catalog_resources WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(CatalogError::NotFound { what: "resource" })?;
    let provider = DepartmentId(head.try_get("provider_department_id")?);
    let latest: i64 = head.try_get("latest_version")?;
    let published: Option<i64> = head.try_get("published_version")?;
    let privileged = may_read_drafts(viewer, provider, is_authority(db, viewer).await?);
    let v = match (version, privileged) {
        (Some(v), _) => v,
        (None, true) => latest,
        (None, false) => published.ok_or(CatalogError::NotFound { what: "resource" })?,
    };
    let view = load_version(&mut conn, code, v).await?;
    let ever_published = matches!(view.status, VersionStatus::Published | VersionStatus::Superseded | VersionStatus::Withdrawn);
    if !privileged && !ever_published {
        return Err(CatalogError::NotFound { what: "resource version" });
    }
    Ok(view)
}

/// The version history of a resource (for the viewer: all versions if privileged, else published ones).
pub async fn list_versions(db: &Db, viewer: &Principal, code: &str) -> CatalogResult<Vec<VersionSummary>> {
    let head = get_resource(db, viewer, code, None).await?;
    let privileged = may_read_drafts(viewer, DepartmentId(head.provider_department_id), is_authority(db, viewer).await?);
    let rows = sqlx::query(
        "SELECT version, status, document, created_at, created_by, submitted_at, reviewed_at, reviewed_by, return_reason, published_at \
         FROM catalog_versions WHERE code = $1 ORDER BY version DESC",
    )
    .bind(code)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let status = status_of(&r, "status")?;
        if !privileged && !matches!(status, VersionStatus::Published | VersionStatus::Superseded | VersionStatus::Withdrawn) {
            continue;
        }
        let doc: String = r.try_get("document")?;
        let name = serde_json::from_str::<ResourceDocument>(&doc).map(|d| d.name).unwrap_or_default();
        out.push(VersionSummary {
            version: r.try_get("version")?,
            status,
            name,
            created_at_ms: r.try_get("created_at")?,
            created_by: r.try_get("created_by")?,
            submitted_at_ms: r.try_get("submitted_at")?,
            reviewed_at_ms: r.try_get("reviewed_at")?,
            reviewed_by: r.try_get("reviewed_by")?,
            return_reason: r.try_get("return_reason")?,
            published_at_ms: r.try_get("published_at")?,
        });
    }
    Ok(out)
}

/// A filter for [`list_resources`].
#[derive(Clone, Debug, Default)]
pub struct ResourceFilter {
    pub provider: Option<DepartmentId>,
    /// The resource status (draft, submitted, returned, published, withdrawn).
    pub status: Option<VersionStatus>,
    /// A classification code and everything under it.
    pub classification_prefix: Option<String>,
    /// Only resources whose latest version waits for review.
    pub awaiting_review: bool,
    /// Cursor: resources after this code.
    pub after: Option<String>,
    pub limit: i64,
}

/// Lists resources the viewer may see: published ones for everyone; the others for the provider's
/// users, the authority and auditors.
pub async fn list_resources(db: &Db, viewer: &Principal, f: &ResourceFilter) -> CatalogResult<Vec<ResourceSummary>> {
    let authority = is_authority(db, viewer).await?;
    let all = authority || viewer.is_auditor();
    let rows = sqlx::query(
        "SELECT r.code, r.name, r.status, r.latest_version, r.published_version, r.classification_code, r.provider_department_id, d.name AS provider_name, \
                r.sharing_type, r.is_open, r.format, r.update_cycle, r.updated_at, v.status AS latest_status \
         FROM catalog_resources r JOIN departments d ON d.id = r.provider_department_id \
         JOIN catalog_versions v ON v.code = r.code AND v.version = r.latest_version \
         WHERE ($1 IS NULL OR r.provider_department_id = $1) AND ($2 IS NULL OR r.status = $2) \
           AND ($3 IS NULL OR r.classification_code LIKE $3) AND ($4 = 0 OR v.status = 'submitted') AND ($5 IS NULL OR r.code > $5) \
           AND ($6 = 1 OR r.published_version IS NOT NULL OR r.provider_department_id = $7) \
         ORDER BY r.code LIMIT $8",
    )
    .bind(f.provider.map(|p| p.0))
    .bind(f.status.map(|s| s.as_str()))
    .bind(f.classification_prefix.as_ref().map(|c| format!("{c}%")))
    .bind(f.awaiting_review as i64)
    .bind(f.after.as_deref())
    .bind(all as i64)
    .bind(viewer.department_id.map(|d| d.0).unwrap_or(-1))
    .bind(f.limit.clamp(1, 1000))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ResourceSummary {
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                status: status_of(r, "status")?,
                latest_version: r.try_get("latest_version")?,
                published_version: r.try_get("published_version")?,
                classification_code: r.try_get("classification_code")?,
                provider_department_id: r.try_get("provider_department_id")?,
                provider_name: r.try_get("provider_name")?,
                sharing_type: shutong_store::parse_column(r, "catalog_resources", "sharing_type", SharingType::parse)?,
                open_to_public: r.try_get::<i64, _>("is_open")? != 0,
                format: shutong_store::parse_column(r, "catalog_resources", "format", ResourceFormat::parse)?,
                update_cycle: shutong_store::parse_column(r, "catalog_resources", "update_cycle", UpdateCycle::parse)?,
                updated_at_ms: r.try_get("updated_at")?,
            })
        })
        .collect()
}

// ------------------------------------------------------------------ classification

/// 信息资源分类 node.
#[derive(Clone, Debug, Serialize)]
pub struct Classification {
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
    /// 1 类, 2 项, 3 目, 4 细目.
    pub level: i64,
}

pub async fn list_classifications(db: &Db) -> CatalogResult<Vec<Classification>> {
    let rows = sqlx::query("SELECT code, name, parent_code, level FROM catalog_classifications ORDER BY code").fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(Classification {
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                parent_code: r.try_get("parent_code")?,
                level: r.try_get("level")?,
            })
        })
        .collect()
}

/// Adds a node to the classification tree (the authority): a 项 under a 类, a 目 under a 项, a 细目
/// under a 目.
pub async fn create_classification(
    db: &Db,
    actor: &Principal,
    ctx: &AuditContext,
    code: &str,
    name: &str,
) -> CatalogResult<Classification> {
    if !is_authority(db, actor).await? {
        return Err(CatalogError::Forbidden("only the sharing authority manages the classification".into()));
    }
    let code = code.trim();
    if !is_classification_code(code) || code.len() == 1 {
        return Err(invalid("code", format!("'{code}' is not a 项 (3 digits), 目 (6 digits) or 细目 code under 1, 2 or 3")));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1 to 100 characters"));
    }
    let parent = classification_parent(code).unwrap_or("").to_string();
    let mut tx = db.begin().await?;
    let parent_exists =
        sqlx::query("SELECT code FROM catalog_classifications WHERE code = $1").bind(&parent).fetch_optional(&mut *tx).await?.is_some();
    if !parent_exists {
        return Err(invalid("code", format!("its parent '{parent}' does not exist")));
    }
    if sqlx::query("SELECT code FROM catalog_classifications WHERE code = $1").bind(code).fetch_optional(&mut *tx).await?.is_some() {
        return Err(CatalogError::State(format!("classification {code} exists already")));
    }
    let level = classification_level(code);
    sqlx::query("INSERT INTO catalog_classifications (code, name, parent_code, level, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(code)
        .bind(name)
        .bind(&parent)
        .bind(level)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    record(
        &mut tx,
        ctx,
        NewAuditEvent {
            action: "catalog.classification_create",
            target_kind: "catalog_classification",
            target_id: code.to_string(),
            department_id: None,
            detail: json!({"name": name, "parent": parent}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Classification { code: code.to_string(), name: name.to_string(), parent_code: Some(parent), level })
}

// ------------------------------------------------------------------ change events (R-CAT-7)

/// 目录更新事件: a change that obliges a department to update its catalog within 15 working days.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeEvent {
    pub id: i64,
    pub department_id: i64,
    pub department_name: String,
    /// `law_revised` (法律法规修订) or `functions_changed` (行政管理职能变化).
    pub kind: String,
    pub description: String,
    pub occurred_on: NaiveDate,
    /// The 15th working day after the change.
    pub due_on: NaiveDate,
    pub overdue: bool,
    pub resolved_at_ms: Option<i64>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

/// The working days a department has to update its catalog after a change (办法 第九条).
pub const UPDATE_DEADLINE_WORKDAYS: i64 = 15;

/// Input of [`record_change_event`].
#[derive(Clone, Copy, Debug)]
pub struct NewChangeEvent<'a> {
    pub department: DepartmentId,
    /// `law_revised` or `functions_changed`.
    pub kind: &'a str,
    pub description: &'a str,
    pub occurred_on: NaiveDate,
}

/// Records a change event for a department; the deadline is 15 working days by the official calendar.
pub async fn record_change_event(
    db: &Db,
    clock: &Clock,
    calendar: &WorkCalendar,
    actor: &Principal,
    ctx: &AuditContext,
    new: NewChangeEvent<'_>,
) -> CatalogResult<ChangeEvent> {
    let NewChangeEvent { department, kind, description, occurred_on } = new;
    let authority = is_authority(db, actor).await?;
    if !may_edit(actor, department, authority) && !actor.has_role_in(Role::DepartmentAdmin, department) {
        return Err(CatalogError::Forbidden("change events are recorded by the department itself or the authority".into()));
    }
    if !matches!(kind, "law_revised" | "functions_changed") {
        return Err(invalid("kind", format!("'{kind}' is not law_revised or functions_changed")));
    }
    let description = description.trim();
    if description.is_empty() || description.chars().count() > 2000 {
        return Err(invalid("description", "must be 1 to 2000 characters"));
    }
    let today = clock.today();
    if occurred_on > today {
        return Err(invalid("occurred_on", format!("{occurred_on} is in the future")));
    }
    let (due, _) = calendar.add_workdays(occurred_on, UPDATE_DEADLINE_WORKDAYS).map_err(|e| invalid("occurred_on", e.to_string()))?;
    let mut tx = db.begin().await?;
    let dept_name: String = sqlx::query("SELECT name FROM departments WHERE id = $1")
        .bind(department.0)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| invalid("department_id", format!("department {department} does not exist")))?;
    let id: i64 = sqlx::query(
        "INSERT INTO catalog_change_events (department_id, kind, description, occurred_on, due_on, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(department.0)
    .bind(kind)
    .bind(description)
    .bind(occurred_on.to_string())
    .bind(due.to_string())
    .bind(now_ms())
    .bind(&ctx.actor)
    .fetch_one(&mut *tx)
    .await?
    .try_get(0)?;
    record(
        &mut tx,
        ctx,
        NewAuditEvent {
            action: "catalog.change_event",
            target_kind: "catalog_change_event",
            target_id: id.to_string(),
            department_id: Some(department.0),
            detail: json!({"kind": kind, "occurred_on": occurred_on, "due_on": due}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(ChangeEvent {
        id,
        department_id: department.0,
        department_name: dept_name,
        kind: kind.into(),
        description: description.into(),
        occurred_on,
        due_on: due,
        overdue: due < today,
        resolved_at_ms: None,
        resolved_by: None,
        resolution: None,
    })
}

/// Change events, optionally only the open ones past their deadline (the overdue list).
pub async fn list_change_events(
    db: &Db,
    clock: &Clock,
    department: Option<DepartmentId>,
    overdue_only: bool,
) -> CatalogResult<Vec<ChangeEvent>> {
    let today = clock.today();
    let rows = sqlx::query(
        "SELECT e.id, e.department_id, d.name AS department_name, e.kind, e.description, e.occurred_on, e.due_on, e.resolved_at, e.resolved_by, e.resolution \
         FROM catalog_change_events e JOIN departments d ON d.id = e.department_id \
         WHERE ($1 IS NULL OR e.department_id = $1) AND ($2 = 0 OR (e.resolved_at IS NULL AND e.due_on < $3)) ORDER BY e.due_on, e.id",
    )
    .bind(department.map(|d| d.0))
    .bind(overdue_only as i64)
    .bind(today.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let date = |c: &str| -> CatalogResult<NaiveDate> {
                let s: String = r.try_get(c)?;
                NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| CatalogError::State(format!("stored date unreadable: {e}")))
            };
            let resolved_at_ms: Option<i64> = r.try_get("resolved_at")?;
            let due_on = date("due_on")?;
            Ok(ChangeEvent {
                id: r.try_get("id")?,
                department_id: r.try_get("department_id")?,
                department_name: r.try_get("department_name")?,
                kind: r.try_get("kind")?,
                description: r.try_get("description")?,
                occurred_on: date("occurred_on")?,
                due_on,
                overdue: resolved_at_ms.is_none() && due_on < today,
                resolved_at_ms,
                resolved_by: r.try_get("resolved_by")?,
                resolution: r.try_get("resolution")?,
            })
        })
        .collect()
}

// ------------------------------------------------------------------ statistics

/// A count under a key.
#[derive(Clone, Debug, Serialize)]
pub struct Count {
    pub key: String,
    pub label: String,
    pub count: i64,
}

/// 目录统计 over published resources (withdrawn ones excluded).
#[derive(Clone, Debug, Serialize)]
pub struct CatalogStats {
    pub published: i64,
    pub drafts_and_pending: i64,
    pub by_class: Vec<Count>,
    pub by_department: Vec<Count>,
    pub by_sharing_type: Vec<Count>,
    /// Share of published resources that are shareable (无条件 or 有条件), 0–1 (Guizhou's target: 0.5).
    pub shareable_share: f64,
    /// Share of published resources open to the public, 0–1.
    pub open_share: f64,
    /// Change events past their 15-working-day deadline and not answered.
    pub overdue_change_events: i64,
}

pub async fn stats(db: &Db, clock: &Clock) -> CatalogResult<CatalogStats> {
    let count = |sql: &'static str| async move { sqlx::query(sql).fetch_one(db.pool()).await.map(|r| r.get::<i64, _>(0)) };
    let published = count("SELECT COUNT(*) FROM catalog_resources WHERE status = 'published'").await?;
    let pending = count("SELECT COUNT(*) FROM catalog_resources WHERE status IN ('draft', 'submitted', 'returned')").await?;
    let shareable = count("SELECT COUNT(*) FROM catalog_resources WHERE status = 'published' AND sharing_type <> 'not_shared'").await?;
    let open = count("SELECT COUNT(*) FROM catalog_resources WHERE status = 'published' AND is_open = 1").await?;
    let grouped = |sql: &'static str| async move {
        let rows = sqlx::query(sql).fetch_all(db.pool()).await?;
        rows.iter()
            .map(|r| Ok::<_, CatalogError>((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?, r.try_get::<i64, _>(2)?)))
            .collect::<CatalogResult<Vec<_>>>()
    };
    let by_class = grouped(
        "SELECT c.code, c.name, COUNT(r.code) FROM catalog_classifications c LEFT JOIN catalog_resources r \
         ON r.status = 'published' AND r.classification_code LIKE c.code || '%' WHERE c.level <= 2 GROUP BY c.code, c.name ORDER BY c.code",
    )
    .await?;
    let by_department = grouped(
        "SELECT CAST(d.id AS TEXT), d.name, COUNT(*) FROM catalog_resources r JOIN departments d ON d.id = r.provider_department_id \
         WHERE r.status = 'published' GROUP BY d.id, d.name ORDER BY COUNT(*) DESC, d.name",
    )
    .await?;
    let by_type = grouped("SELECT sharing_type, sharing_type, COUNT(*) FROM catalog_resources WHERE status = 'published' GROUP BY sharing_type ORDER BY sharing_type").await?;
    let overdue = list_change_events(db, clock, None, true).await?.len() as i64;
    let ratio = |n: i64| if published == 0 { 0.0 } else { n as f64 / published as f64 };
    Ok(CatalogStats {
        published,
        drafts_and_pending: pending,
        by_class: by_class.into_iter().map(|(key, label, count)| Count { key, label, count }).collect(),
        by_department: by_department.into_iter().map(|(key, label, count)| Count { key, label, count }).collect(),
        by_sharing_type: by_type
            .into_iter()
            .map(|(key, _, count)| Count { label: SharingType::parse(&key).map(|t| t.label_zh()).unwrap_or("").to_string(), key, count })
            .collect(),
        shareable_share: ratio(shareable),
        open_share: ratio(open),
        overdue_change_events: overdue,
    })
}

// ------------------------------------------------------------------ project catalogs (R-CAT-8)

/// 政务信息化项目目录: a project whose catalog is compiled before approval and merged at acceptance.
#[derive(Clone, Debug, Serialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub department_id: i64,
    /// `compiled` (目录已编制, awaiting acceptance) or `accepted` (验收, merged into the catalog).
    pub status: String,
    pub resources: i64,
    pub created_at_ms: i64,
    pub accepted_at_ms: Option<i64>,
}

/// Registers a project whose catalog the department compiles ahead of approval.
pub async fn create_project(
    db: &Db,
    actor: &Principal,
    ctx: &AuditContext,
    department: DepartmentId,
    name: &str,
) -> CatalogResult<Project> {
    let authority = is_authority(db, actor).await?;
    if !may_edit(actor, department, authority) {
        return Err(CatalogError::Forbidden("a project's catalog is compiled by its department's catalog editors".into()));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "must be 1 to 200 characters"));
    }
    let mut tx = db.begin().await?;
    if sqlx::query("SELECT id FROM departments WHERE id = $1").bind(department.0).fetch_optional(&mut *tx).await?.is_none() {
        return Err(invalid("department_id", format!("department {department} does not exist")));
    }
    let now = now_ms();
    let id: i64 = sqlx::query("INSERT INTO catalog_projects (name, department_id, status, created_at, created_by) VALUES ($1, $2, 'compiled', $3, $4) RETURNING id")
        .bind(name)
        .bind(department.0)
        .bind(now)
        .bind(&ctx.actor)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    record(
        &mut tx,
        ctx,
        NewAuditEvent {
            action: "catalog.project_create",
            target_kind: "catalog_project",
            target_id: id.to_string(),
            department_id: Some(department.0),
            detail: json!({"name": name}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Project {
        id,
        name: name.into(),
        department_id: department.0,
        status: "compiled".into(),
        resources: 0,
        created_at_ms: now,
        accepted_at_ms: None,
    })
}

pub async fn list_projects(db: &Db) -> CatalogResult<Vec<Project>> {
    let rows = sqlx::query(
        "SELECT p.id, p.name, p.department_id, p.status, p.created_at, p.accepted_at, (SELECT COUNT(*) FROM catalog_resources r WHERE r.project_id = p.id) AS resources \
         FROM catalog_projects p ORDER BY p.id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Project {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                department_id: r.try_get("department_id")?,
                status: r.try_get("status")?,
                resources: r.try_get("resources")?,
                created_at_ms: r.try_get("created_at")?,
                accepted_at_ms: r.try_get("accepted_at")?,
            })
        })
        .collect()
}

/// 验收合并: the authority accepts a project and its catalog is merged (published) into the platform
/// catalog, all entries or none: every entry must satisfy every rule, and a project without a catalog
/// cannot be accepted.
pub async fn accept_project(db: &Db, actor: &Principal, ctx: &AuditContext, project: i64) -> CatalogResult<Project> {
    if !is_authority(db, actor).await? {
        return Err(CatalogError::Forbidden("only the sharing authority accepts projects".into()));
    }
    let mut change = Change::begin(db, ctx).await?;
    let status: String = sqlx::query("SELECT status FROM catalog_projects WHERE id = $1")
        .bind(project)
        .fetch_optional(&mut **change.tx())
        .await?
        .map(|r| r.get(0))
        .ok_or(CatalogError::NotFound { what: "project" })?;
    if status != "compiled" {
        return Err(CatalogError::State(format!("project {project} was accepted already")));
    }
    let rows = sqlx::query(
        "SELECT r.code, r.classification_code, r.provider_department_id, r.latest_version, v.document FROM catalog_resources r \
         JOIN catalog_versions v ON v.code = r.code AND v.version = r.latest_version WHERE r.project_id = $1 ORDER BY r.code",
    )
    .bind(project)
    .fetch_all(&mut **change.tx())
    .await?;
    if rows.is_empty() {
        return Err(CatalogError::State("a project without a catalog cannot be accepted (第二十二条)".into()));
    }
    let mut violations = Vec::new();
    let mut entries = Vec::new();
    for r in &rows {
        let code: String = r.try_get("code")?;
        let class: String = r.try_get("classification_code")?;
        let doc: ResourceDocument = serde_json::from_str(&r.try_get::<String, _>("document")?)
            .map_err(|e| CatalogError::State(format!("stored document unreadable: {e}")))?;
        for v in rules::check(&doc, class.starts_with('1')) {
            violations.push(Violation { field: format!("{code}: {}", v.field), ..v });
        }
        entries.push((code, DepartmentId(r.try_get("provider_department_id")?), r.try_get::<i64, _>("latest_version")?, doc));
    }
    if !violations.is_empty() {
        return Err(CatalogError::Rules(violations));
    }
    let now = now_ms();
    for (code, provider, version, doc) in &entries {
        sqlx::query("UPDATE catalog_versions SET status = 'published', submitted_at = $1, reviewed_at = $1, reviewed_by = $2, published_at = $1 WHERE code = $3 AND version = $4")
            .bind(now)
            .bind(&ctx.actor)
            .bind(code)
            .bind(version)
            .execute(&mut **change.tx())
            .await?;
        sqlx::query("UPDATE catalog_resources SET published_version = $1 WHERE code = $2")
            .bind(version)
            .bind(code)
            .execute(&mut **change.tx())
            .await?;
        sync_columns(change.tx(), code, doc, VersionStatus::Published).await?;
        audit(&mut change, "catalog.merge", code, *provider, json!({"version": version, "project": project})).await?;
    }
    sqlx::query("UPDATE catalog_projects SET status = 'accepted', accepted_at = $1, accepted_by = $2 WHERE id = $3")
        .bind(now)
        .bind(&ctx.actor)
        .bind(project)
        .execute(&mut **change.tx())
        .await?;
    change
        .record(NewAuditEvent {
            action: "catalog.project_accept",
            target_kind: "catalog_project",
            target_id: project.to_string(),
            department_id: entries.first().map(|e| e.1.0),
            detail: json!({"resources": entries.len()}),
        })
        .await?;
    change.commit().await?;
    list_projects(db).await?.into_iter().find(|p| p.id == project).ok_or(CatalogError::NotFound { what: "project" })
}

/// The code of the resource named `name` (信息资源名称), for the demo seed and scripts; the first by code
/// when names repeat.
pub async fn code_by_name(db: &Db, name: &str) -> CatalogResult<Option<String>> {
    let row = sqlx::query("SELECT code FROM catalog_resources WHERE name = $1 ORDER BY code LIMIT 1")
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

//! Service functions of the catalog: one per state change, each authorised, validated and written in one
//! transaction with its audit event.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use shutong_audit::{AuditContext, Change, NewAuditEvent, Notice};
use shutong_identity::{DepartmentId, DepartmentKind, Principal, Role};
use shutong_reference::WorkCalendar;
use shutong_store::{AnyRow, Clock, Db, Row, StoreError, StoreResult, Tx, now_ms};

use crate::model::*;
use crate::rules::{self, Violation};

mod change_events;
mod classification;
mod lifecycle;
mod projects;
mod reading;
mod stats;

pub use change_events::*;
pub use classification::*;
pub use lifecycle::*;
pub use projects::*;
pub use reading::*;
pub use stats::*;

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
/// May compile catalog entries for some department (编制目录, by form or import): the sharing authority
/// (`authority`, as [`is_authority`] answered), or a catalog editor of a department (who compiles its own
/// department's entries only).
pub fn may_compile(p: &Principal, authority: bool) -> bool {
    authority || p.has_role(Role::CatalogEditor)
}

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
    pub code: ResourceCode,
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
    pub code: ResourceCode,
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
        code: shutong_store::parse_column(r, "catalog_resources", "code", |c| ResourceCode::parse(c).ok())?,
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
async fn audit(
    change: &mut Change<'_>,
    action: shutong_audit::Action,
    code: &str,
    provider: DepartmentId,
    detail: serde_json::Value,
) -> CatalogResult<()> {
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

//! Service functions of the inventory and the projects: one per state change, each authorised, validated
//! and written in one transaction with its audit event. They take the data plane (`Exchange`) because the
//! zombie criteria and the funding gates read its facts: the last load of a resource's data, and the
//! business clock.

use serde::Serialize;
pub(crate) use serde_json::json;
use shutong_audit::{Action, AuditContext, Change, NewAuditEvent};
use shutong_exchange::Exchange;
use shutong_identity::{DepartmentId, DepartmentKind, Principal, Role};
use shutong_store::{Row, StoreError};

use crate::model::*;

mod import;
mod projects;
mod register;
mod reports;
mod systems;
mod zombies;

pub use import::*;
pub use projects::*;
pub use register::*;
pub use reports::*;
pub use systems::*;
pub use zombies::*;

/// Errors of the inventory and project services, each mapping to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum SystemsError {
    /// One field is invalid (422).
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// Several fields are invalid (422), each named.
    #[error("{}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
    /// Not found, or not visible to the principal (404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The principal may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Not in a state that allows this (409).
    #[error("{0}")]
    State(String),
    /// The same system is registered already (409), named in the message.
    #[error("{field}: {message}")]
    Duplicate { field: String, message: String },
    /// A workbook is refused (422): nothing imported, every problem named by sheet, row and column.
    #[error("nothing imported: {} issue(s)", .0.len())]
    ImportRejected(Vec<crate::spreadsheet::SheetIssue>),
    /// A document could not be printed (no CJK font on the machine: 503; a template fault: 500).
    #[error(transparent)]
    Document(shutong_documents::DocumentError),
    /// A funding gate is closed (409): its reasons, each from a fact.
    #[error("the {gate} gate is closed: {}", .reasons.join("; "))]
    GateClosed { gate: Gate, reasons: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SystemsError {
    fn from(e: sqlx::Error) -> Self {
        SystemsError::Store(e.into())
    }
}

impl From<shutong_exchange::ExchangeError> for SystemsError {
    fn from(e: shutong_exchange::ExchangeError) -> Self {
        match e {
            shutong_exchange::ExchangeError::Store(s) => SystemsError::Store(s),
            other => SystemsError::State(other.to_string()),
        }
    }
}

pub type SystemsResult<T> = Result<T, SystemsError>;

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> SystemsError {
    SystemsError::Validation { field: field.into(), message: message.into() }
}

/// A reason (理由) given with a dispute, an overruling decision or a gate override: 4 to 1000 characters.
pub(crate) fn check_reason(field: &str, reason: Option<&str>) -> SystemsResult<Option<String>> {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(r) if r.chars().count() < 4 || r.chars().count() > 1000 => Err(invalid(field, "must be 4 to 1000 characters")),
        Some(r) if r.chars().any(|c| c.is_control() && c != '\n') => Err(invalid(field, "must not contain control characters")),
        Some(r) => Ok(Some(r.to_string())),
    }
}

// ------------------------------------------------------------------ who may do what

/// What the principal is to this module: the sharing authority (共享主管部门), a reviewer of the development
/// and reform department (审批部门: the approval and acceptance queues) or of the finance department (财政部门:
/// the O&M funding queue), or a reader of every department's inventory (those three and 审计机关).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Standing {
    pub authority: bool,
    pub approver: bool,
    pub finance: bool,
    pub reads_all: bool,
}

/// The principal's standing, from the kinds of the departments where it holds the reviewer role.
pub async fn standing(ex: &Exchange, p: &Principal) -> SystemsResult<Standing> {
    standing_in(&ex.db, p).await
}

/// [`standing`] from the platform database alone (the portal's navigation asks it).
pub async fn standing_in(db: &shutong_store::Db, p: &Principal) -> SystemsResult<Standing> {
    // 共享主管部门 is the catalog's rule (platform administrators, reviewers of a sharing authority).
    let authority = shutong_catalog::is_authority(db, p).await.map_err(|e| match e {
        shutong_catalog::CatalogError::Store(s) => SystemsError::Store(s),
        other => SystemsError::State(other.to_string()),
    })?;
    let mut s = Standing { authority, ..Standing::default() };
    for r in p.roles.iter().filter(|r| r.role == Role::Reviewer) {
        let kind: Option<String> = sqlx::query("SELECT kind FROM departments WHERE id = $1")
            .bind(r.department_id.0)
            .fetch_optional(db.pool())
            .await?
            .map(|row| row.get(0));
        match kind.as_deref().and_then(DepartmentKind::parse) {
            Some(DepartmentKind::DevelopmentReform) => s.approver = true,
            Some(DepartmentKind::Finance) => s.finance = true,
            _ => {}
        }
    }
    s.reads_all = s.authority || s.approver || s.finance || p.is_auditor();
    Ok(s)
}

impl Standing {
    /// Reads a department's inventory, projects and reports: its own users, and the readers of all.
    pub fn may_read(&self, p: &Principal, department: DepartmentId) -> bool {
        self.reads_all || p.department_id == Some(department)
    }

    /// Keeps a department's inventory (registers, edits, answers zombie verdicts, plans cleanups): its
    /// department administrators and catalog editors, and the authority.
    pub fn may_keep(&self, p: &Principal, department: DepartmentId) -> bool {
        self.authority || p.has_role_in(Role::DepartmentAdmin, department) || p.has_role_in(Role::CatalogEditor, department)
    }
}

/// Records one event of this module in the unit of work.
pub(crate) async fn audit(
    change: &mut Change<'_>,
    action: Action,
    target_kind: &'static str,
    target_id: i64,
    department: DepartmentId,
    detail: serde_json::Value,
) -> SystemsResult<()> {
    change
        .record(NewAuditEvent { action, target_kind, target_id: target_id.to_string(), department_id: Some(department.0), detail })
        .await?;
    Ok(())
}

pub(crate) fn unreadable(table: &'static str, column: &'static str, value: &str) -> SystemsError {
    SystemsError::Store(StoreError::decode(table, column, value))
}

/// A page of a keyset-paged list: the items, and the cursor of the next page if there is one.
#[derive(Clone, Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<i64>,
}

pub(crate) fn page<T>(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Page<T> {
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(id)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// The name of a department, for messages and views.
pub(crate) async fn department_name(ex: &Exchange, department: DepartmentId) -> SystemsResult<String> {
    sqlx::query("SELECT name FROM departments WHERE id = $1")
        .bind(department.0)
        .fetch_optional(ex.db.pool())
        .await?
        .map(|r| r.get::<String, _>(0))
        .ok_or(SystemsError::NotFound { what: "department" })
}

//! Service functions of sharing: one per state change, each authorised, validated and written in one
//! transaction with its audit event and the notices it causes.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use shutong_audit::{AuditContext, Change, NewAuditEvent, Notice};
use shutong_catalog::{ResourceDocument, SharingType};
use shutong_identity::{DepartmentId, DepartmentKind, DepartmentLevel, Principal, Role};
use shutong_reference::WorkCalendar;
use shutong_store::{AnyRow, Clock, Db, Row, StoreError, Tx};
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::model::*;

mod answers;
mod figures;
mod grants;
mod inbox;
mod reading;
mod requests;
mod sweep;

pub use answers::*;
pub use figures::*;
pub use grants::*;
pub use inbox::*;
pub use reading::*;
pub use requests::*;
pub use sweep::*;

/// Errors of sharing services, each mapping to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum SharingError {
    /// One field is invalid (422).
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// Not found, or not visible to the principal (404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The principal may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request or grant is not in a state that allows this (409).
    #[error("{0}")]
    State(String),
    /// Another open request or grant already covers this (409).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SharingError {
    fn from(e: sqlx::Error) -> Self {
        SharingError::Store(e.into())
    }
}

impl From<shutong_catalog::CatalogError> for SharingError {
    fn from(e: shutong_catalog::CatalogError) -> Self {
        use shutong_catalog::CatalogError as C;
        match e {
            C::Store(s) => SharingError::Store(s),
            C::NotFound { what } => SharingError::NotFound { what },
            C::Forbidden(m) => SharingError::Forbidden(m),
            other => SharingError::State(other.to_string()),
        }
    }
}

pub type SharingResult<T> = Result<T, SharingError>;

fn invalid(field: &str, message: impl Into<String>) -> SharingError {
    SharingError::Validation { field: field.into(), message: message.into() }
}

/// Deadlines in working days (`[sharing]` in the configuration).
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    pub answer: i64,
    pub negotiation: i64,
    pub coordination: i64,
    pub leading_group: i64,
    pub reminder: i64,
    pub expiry_notice_days: i64,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines { answer: 10, negotiation: 10, coordination: 15, leading_group: 20, reminder: 3, expiry_notice_days: 30 }
    }
}

impl Deadlines {
    pub fn of(&self, stage: Stage) -> i64 {
        match stage {
            Stage::Answer => self.answer,
            Stage::Negotiation => self.negotiation,
            Stage::Coordination => self.coordination,
            Stage::LeadingGroup => self.leading_group,
        }
    }
}

/// What the sharing services work with: the database, the working-day calendar, the business clock and
/// the deadlines.
#[derive(Clone)]
pub struct Sharing {
    pub db: Db,
    pub calendar: Arc<WorkCalendar>,
    pub clock: Clock,
    pub deadlines: Deadlines,
}

impl Sharing {
    pub fn today(&self) -> NaiveDate {
        self.clock.today()
    }

    fn due(&self, from: NaiveDate, stage: Stage) -> SharingResult<NaiveDate> {
        self.calendar
            .add_workdays(from, self.deadlines.of(stage))
            .map(|(d, _)| d)
            .map_err(|e| SharingError::State(format!("working-day calendar: {e}")))
    }
}

/// The longest period a request or grant may cover.
const MAX_PERIOD_DAYS: i64 = 5 * 366;
const MAX_TEXT: usize = 2000;

fn text(field: &str, v: &str, required: bool, max: usize) -> SharingResult<Option<String>> {
    let v = v.trim();
    if v.is_empty() {
        return if required { Err(invalid(field, "required")) } else { Ok(None) };
    }
    if v.chars().count() > max {
        return Err(invalid(field, format!("at most {max} characters")));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(Some(v.to_string()))
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// A stored JSON column (`table.column` of `r`): what does not parse is an error naming them.
fn from_json<T: serde::de::DeserializeOwned>(r: &AnyRow, table: &str, column: &str) -> SharingResult<T> {
    Ok(shutong_store::parse_column(r, table, column, |s| serde_json::from_str(s).ok())?)
}

/// A department as the sharing rules need it.
#[derive(Clone, Debug)]
struct Dept {
    id: DepartmentId,
    name: String,
    level: DepartmentLevel,
    region_code: String,
}

async fn dept(conn: &mut shutong_store::AnyConnection, id: i64, field: &str) -> SharingResult<Dept> {
    let r = sqlx::query("SELECT id, name, level, region_code FROM departments WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| invalid(field, format!("department {id} does not exist")))?;
    Ok(Dept {
        id: DepartmentId(r.try_get("id")?),
        name: r.try_get("name")?,
        level: shutong_store::parse_column(&r, "departments", "level", DepartmentLevel::parse)?,
        region_code: r.try_get("region_code")?,
    })
}

fn is_provincial(d: &Dept) -> bool {
    matches!(d.level, DepartmentLevel::Province | DepartmentLevel::National)
}

/// 本级共享主管部门 (第十六条): the city's sharing authority when both parties are city or county departments of
/// one city; otherwise the province's. Falls back to the province's (or the national one) when a city has
/// none registered.
async fn coordination_owner(tx: &mut Tx, consumer: &Dept, provider: &Dept) -> SharingResult<DepartmentId> {
    let list = authorities(tx).await?;
    let same_city = !is_provincial(consumer)
        && !is_provincial(provider)
        && consumer.region_code.get(..4).is_some()
        && consumer.region_code.get(..4) == provider.region_code.get(..4);
    if same_city {
        let city = consumer.region_code.get(..4).unwrap_or_default();
        if let Some((id, _, _)) = list.iter().find(|(_, l, r)| l == "city" && r.starts_with(city)) {
            return Ok(DepartmentId(*id));
        }
    }
    provincial_authority_of(&list, consumer)
}

fn provincial_authority_of(list: &[(i64, String, String)], consumer: &Dept) -> SharingResult<DepartmentId> {
    let province = consumer.region_code.get(..2).unwrap_or_default();
    list.iter()
        .find(|(_, l, r)| l == "province" && r.starts_with(province))
        .or_else(|| list.iter().find(|(_, l, _)| l == "province"))
        .or_else(|| list.iter().find(|(_, l, _)| l == "national"))
        .map(|(id, _, _)| DepartmentId(*id))
        .ok_or_else(|| SharingError::State("no provincial sharing authority is registered to coordinate".into()))
}

/// 领导小组: its office is the provincial sharing authority (办法 第五条).
async fn leading_group_owner(tx: &mut Tx, consumer: &Dept) -> SharingResult<DepartmentId> {
    provincial_authority_of(&authorities(tx).await?, consumer)
}

/// The sharing authorities: (ID, level, region code).
async fn authorities(tx: &mut Tx) -> SharingResult<Vec<(i64, String, String)>> {
    let rows = sqlx::query("SELECT id, level, region_code FROM departments WHERE kind = $1 ORDER BY id")
        .bind(DepartmentKind::SharingAuthority.as_str())
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("level")?, r.try_get("region_code")?))).collect::<Result<_, sqlx::Error>>()?)
}

/// Users who act for the consumer: any member of the department holding a role there other than auditor.
pub fn acts_for(p: &Principal, department: DepartmentId) -> bool {
    p.department_id == Some(department) && p.roles.iter().any(|r| r.department_id == department && r.role != Role::Auditor)
}

/// Users who answer for a department: its reviewers (审核人员) and department administrators.
fn answers_for(p: &Principal, department: DepartmentId) -> bool {
    p.has_role_in(Role::Reviewer, department) || p.has_role_in(Role::DepartmentAdmin, department)
}

/// Who sees a request: its parties, the owner of its current stage, the authority, auditors.
async fn may_see(s: &Sharing, p: &Principal, consumer: i64, provider: i64, owner: i64) -> SharingResult<bool> {
    Ok(p_in(p, consumer) || p_in(p, provider) || p_in(p, owner) || sees_all(s, p).await?)
}

/// The authority and auditors see every request and grant.
async fn sees_all(s: &Sharing, p: &Principal) -> SharingResult<bool> {
    Ok(p.is_auditor() || shutong_catalog::is_authority(&s.db, p).await?)
}

/// The departments a principal belongs to or holds a role in, as a SQL list of IDs (`None` if none, e.g. the
/// CLI operator: `IN ()` is not SQL).
fn departments_sql(p: &Principal) -> Option<String> {
    let mut mine: Vec<i64> = p.roles.iter().map(|r| r.department_id.0).collect();
    mine.extend(p.department_id.map(|d| d.0));
    mine.sort_unstable();
    mine.dedup();
    (!mine.is_empty()).then(|| mine.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))
}

/// 共享申请: a subscription or an application, and where it stands.
#[derive(Clone, Debug, Serialize)]
pub struct RequestView {
    pub id: i64,
    pub kind: RequestKind,
    pub status: RequestStatus,
    /// The current (or last) stage of 第十六条's sequence.
    pub stage: Stage,
    pub resource_code: String,
    pub resource_name: String,
    /// The published version the request was made against.
    pub resource_version: i64,
    pub consumer_department_id: i64,
    pub consumer_name: String,
    pub provider_department_id: i64,
    pub provider_name: String,
    /// Who the request waits for at its stage.
    pub owner_department_id: i64,
    pub owner_name: String,
    pub items: Vec<String>,
    pub purpose: Purpose,
    pub purpose_detail: Option<String>,
    /// 依据: the legal or duty basis.
    pub basis: String,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub access_methods: Vec<AccessMethod>,
    pub expected_volume: Option<String>,
    pub submitted_at_ms: i64,
    pub submitted_by: String,
    pub submitted_on: NaiveDate,
    /// The provider's answer is due on this date: the N-th working day after submission (第十六条).
    pub due_on: NaiveDate,
    /// The open stage's due date.
    pub stage_due_on: NaiveDate,
    /// Open and past its stage's due date (R-REQ-3).
    pub overdue: bool,
    pub answered_at_ms: Option<i64>,
    pub answered_on: Option<NaiveDate>,
    pub answered_by: Option<String>,
    /// The reason of a refusal, or the note of an approval.
    pub answer_reason: Option<String>,
    /// Answered after the due date (counts against the provider).
    pub answered_late: bool,
    pub grant_id: Option<i64>,
    /// The stage the consumer may escalate to now, if any.
    pub next_stage: Option<Stage>,
}

const REQUEST_SQL: &str = "SELECT q.*, c.name AS consumer_name, p.name AS provider_name, o.name AS owner_name, \
    c.level AS consumer_level, p.level AS provider_level \
    FROM sharing_requests q JOIN departments c ON c.id = q.consumer_department_id \
    JOIN departments p ON p.id = q.provider_department_id JOIN departments o ON o.id = q.owner_department_id";

fn request_from_row(r: &AnyRow, today: NaiveDate) -> SharingResult<RequestView> {
    let provincial = |col: &str| -> SharingResult<bool> { Ok(matches!(r.try_get::<String, _>(col)?.as_str(), "province" | "national")) };
    let provincial_involved = provincial("consumer_level")? || provincial("provider_level")?;
    let status = shutong_store::parse_column(r, "sharing_requests", "status", RequestStatus::parse)?;
    let stage = shutong_store::parse_column(r, "sharing_requests", "stage", Stage::parse)?;
    let due_on = shutong_store::parse_date_column(r, "sharing_requests", "due_on")?;
    let stage_due_on = shutong_store::parse_date_column(r, "sharing_requests", "stage_due_on")?;
    let answered_on = shutong_store::parse_optional_date_column(r, "sharing_requests", "answered_on")?;
    let next_stage = match (status, stage) {
        (RequestStatus::Rejected, Stage::Answer) => Some(Stage::Negotiation),
        (RequestStatus::Rejected | RequestStatus::Negotiating, Stage::Negotiation) => Some(Stage::Coordination),
        (RequestStatus::Rejected, Stage::Coordination) if provincial_involved => Some(Stage::LeadingGroup),
        _ => None,
    };
    Ok(RequestView {
        id: r.try_get("id")?,
        kind: shutong_store::parse_column(r, "sharing_requests", "kind", RequestKind::parse)?,
        status,
        stage,
        resource_code: r.try_get("resource_code")?,
        resource_name: r.try_get("resource_name")?,
        resource_version: r.try_get("resource_version")?,
        consumer_department_id: r.try_get("consumer_department_id")?,
        consumer_name: r.try_get("consumer_name")?,
        provider_department_id: r.try_get("provider_department_id")?,
        provider_name: r.try_get("provider_name")?,
        owner_department_id: r.try_get("owner_department_id")?,
        owner_name: r.try_get("owner_name")?,
        items: from_json(r, "sharing_requests", "items")?,
        purpose: shutong_store::parse_column(r, "sharing_requests", "purpose", Purpose::parse)?,
        purpose_detail: r.try_get("purpose_detail")?,
        basis: r.try_get("basis")?,
        period_from: shutong_store::parse_date_column(r, "sharing_requests", "period_from")?,
        period_to: shutong_store::parse_date_column(r, "sharing_requests", "period_to")?,
        access_methods: from_json(r, "sharing_requests", "access_methods")?,
        expected_volume: r.try_get("expected_volume")?,
        submitted_at_ms: r.try_get("submitted_at")?,
        submitted_by: r.try_get("submitted_by")?,
        submitted_on: shutong_store::parse_date_column(r, "sharing_requests", "submitted_on")?,
        due_on,
        stage_due_on,
        overdue: status.is_open() && today > stage_due_on,
        answered_at_ms: r.try_get("answered_at")?,
        answered_on,
        answered_by: r.try_get("answered_by")?,
        answer_reason: r.try_get("answer_reason")?,
        answered_late: answered_on.is_some_and(|a| a > due_on),
        grant_id: r.try_get("grant_id")?,
        next_stage,
    })
}

/// One step of an escalation.
#[derive(Clone, Debug, Serialize)]
pub struct EscalationView {
    pub id: i64,
    pub stage: Stage,
    pub owner_department_id: i64,
    pub owner_name: String,
    pub opened_at_ms: i64,
    pub opened_by: String,
    pub opened_on: NaiveDate,
    /// Why the consumer escalated.
    pub reason: String,
    pub due_on: NaiveDate,
    pub overdue: bool,
    pub closed_at_ms: Option<i64>,
    pub closed_on: Option<NaiveDate>,
    pub closed_by: Option<String>,
    /// `granted`, `refused` or `withdrawn` once closed; `escalated` when the consumer moved on.
    pub outcome: Option<String>,
    pub outcome_note: Option<String>,
}

/// One message of the record of the exchange.
#[derive(Clone, Debug, Serialize)]
pub struct MessageView {
    pub id: i64,
    pub stage: Stage,
    pub at_ms: i64,
    pub author: String,
    pub department_id: Option<i64>,
    pub department_name: Option<String>,
    pub body: String,
}

/// A request with its escalation steps, its messages and its grant.
#[derive(Clone, Debug, Serialize)]
pub struct RequestDetail {
    pub request: RequestView,
    pub escalations: Vec<EscalationView>,
    pub messages: Vec<MessageView>,
    pub grant: Option<GrantView>,
}

/// 授权 (R-REQ-5).
#[derive(Clone, Debug, Serialize)]
pub struct GrantView {
    pub id: i64,
    pub resource_code: String,
    pub resource_name: String,
    pub consumer_department_id: i64,
    pub consumer_name: String,
    pub provider_department_id: i64,
    pub provider_name: String,
    pub request_id: Option<i64>,
    pub origin: GrantOrigin,
    pub items: Vec<String>,
    pub row_filter: RowFilter,
    pub purpose: Purpose,
    pub purpose_detail: Option<String>,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub access_methods: Vec<AccessMethod>,
    /// Records per day, if limited.
    pub daily_quota: Option<i64>,
    /// Sensitive items are delivered in clear text (otherwise masked, R-EX-3).
    pub clear_text: bool,
    /// The state as of today: revoked and expired grants stop working at once.
    pub state: GrantState,
    pub created_at_ms: i64,
    pub created_by: String,
    pub renewed_at_ms: Option<i64>,
    pub renewed_by: Option<String>,
    pub revoked_at_ms: Option<i64>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

const GRANT_SQL: &str = "SELECT g.*, r.name AS resource_name, c.name AS consumer_name, p.name AS provider_name \
    FROM sharing_grants g JOIN catalog_resources r ON r.code = g.resource_code \
    JOIN departments c ON c.id = g.consumer_department_id JOIN departments p ON p.id = g.provider_department_id";

fn grant_from_row(r: &AnyRow, today: NaiveDate) -> SharingResult<GrantView> {
    let valid_from = shutong_store::parse_date_column(r, "sharing_grants", "valid_from")?;
    let valid_to = shutong_store::parse_date_column(r, "sharing_grants", "valid_to")?;
    let revoked = r.try_get::<String, _>("status")? == "revoked";
    let state = if revoked {
        GrantState::Revoked
    } else if today > valid_to {
        GrantState::Expired
    } else if today < valid_from {
        GrantState::NotYetValid
    } else {
        GrantState::Active
    };
    let filter: Option<String> = r.try_get("row_filter")?;
    Ok(GrantView {
        id: r.try_get("id")?,
        resource_code: r.try_get("resource_code")?,
        resource_name: r.try_get("resource_name")?,
        consumer_department_id: r.try_get("consumer_department_id")?,
        consumer_name: r.try_get("consumer_name")?,
        provider_department_id: r.try_get("provider_department_id")?,
        provider_name: r.try_get("provider_name")?,
        request_id: r.try_get("request_id")?,
        origin: shutong_store::parse_column(r, "sharing_grants", "origin", GrantOrigin::parse)?,
        items: from_json(r, "sharing_grants", "items")?,
        // A filter that no longer parses must not read as "no filter" (every row): it is an error.
        row_filter: match filter {
            None => RowFilter::default(),
            Some(f) => serde_json::from_str(&f).map_err(|_| StoreError::decode("sharing_grants", "row_filter", &f))?,
        },
        purpose: shutong_store::parse_column(r, "sharing_grants", "purpose", Purpose::parse)?,
        purpose_detail: r.try_get("purpose_detail")?,
        valid_from,
        valid_to,
        access_methods: from_json(r, "sharing_grants", "access_methods")?,
        daily_quota: r.try_get("daily_quota")?,
        clear_text: r.try_get::<i64, _>("clear_text")? != 0,
        state,
        created_at_ms: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        renewed_at_ms: r.try_get("renewed_at")?,
        renewed_by: r.try_get("renewed_by")?,
        revoked_at_ms: r.try_get("revoked_at")?,
        revoked_by: r.try_get("revoked_by")?,
        revoke_reason: r.try_get("revoke_reason")?,
    })
}

/// The published version of a resource: what requests and grants are checked against.
struct Published {
    code: String,
    version: i64,
    provider: i64,
    document: ResourceDocument,
}

async fn published(tx: &mut Tx, code: &str) -> SharingResult<Published> {
    let not_found = || invalid("resource_code", format!("resource '{code}' does not exist or is not published"));
    let code = shutong_catalog::ResourceCode::parse(code).map_err(|e| invalid("resource_code", e))?;
    let r = sqlx::query(
        "SELECT r.provider_department_id, r.published_version, r.status, v.document FROM catalog_resources r \
         JOIN catalog_versions v ON v.code = r.code AND v.version = r.published_version WHERE r.code = $1",
    )
    .bind(code.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(not_found)?;
    if r.try_get::<String, _>("status")? == "withdrawn" {
        return Err(not_found());
    }
    let doc: String = r.try_get("document")?;
    Ok(Published {
        code: code.to_string(),
        version: r.try_get("published_version")?,
        provider: r.try_get("provider_department_id")?,
        document: serde_json::from_str(&doc).map_err(|e| SharingError::State(format!("stored document unreadable: {e}")))?,
    })
}

/// An item's effective 共享类型: the stricter of the resource's and the item's.
/// An item's effective sharing type (R-CAT-3): the stricter of the resource's and the item's own (an
/// unconditional item of a conditional resource is shared with the resource's conditions). `None` for an
/// item the document does not have. The portal's request form shows this, never a rule of its own.
pub fn effective_item_sharing(doc: &ResourceDocument, item: &str) -> Option<SharingType> {
    let i = doc.items.iter().find(|i| i.name == item)?;
    Some(match (doc.sharing_type, i.sharing_type) {
        (SharingType::NotShared, _) | (_, SharingType::NotShared) => SharingType::NotShared,
        (SharingType::Conditional, _) | (_, SharingType::Conditional) => SharingType::Conditional,
        _ => SharingType::Unconditional,
    })
}

fn check_items(doc: &ResourceDocument, items: &[String], field: &str) -> SharingResult<Vec<String>> {
    if items.is_empty() {
        return Err(invalid(field, "at least one information item is required"));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, name) in items.iter().enumerate() {
        let name = name.trim();
        if !doc.items.iter().any(|x| x.name == name) {
            return Err(invalid(&format!("{field}[{i}]"), format!("'{name}' is not an information item of this resource")));
        }
        if !seen.insert(name.to_string()) {
            return Err(invalid(&format!("{field}[{i}]"), format!("'{name}' is listed twice")));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

fn check_methods(doc: &ResourceDocument, methods: &[AccessMethod], field: &str) -> SharingResult<Vec<AccessMethod>> {
    if methods.is_empty() {
        return Err(invalid(field, format!("at least one access method is required ({})", AccessMethod::expected())));
    }
    let mut out: Vec<AccessMethod> = Vec::new();
    for (i, m) in methods.iter().enumerate() {
        if out.contains(m) {
            return Err(invalid(&format!("{field}[{i}]"), format!("{} is listed twice", m.label_zh())));
        }
        if !doc.sharing_methods.is_empty() && !doc.sharing_methods.contains(&m.offered_by()) {
            return Err(invalid(
                &format!("{field}[{i}]"),
                format!(
                    "the resource does not offer {} (its 共享方式: {})",
                    m.label_zh(),
                    doc.sharing_methods.iter().map(|x| x.label_zh()).collect::<Vec<_>>().join("、")
                ),
            ));
        }
        out.push(*m);
    }
    Ok(out)
}

fn check_filter(doc: &ResourceDocument, filter: &RowFilter) -> SharingResult<()> {
    for (i, c) in filter.conditions.iter().enumerate() {
        if !doc.items.iter().any(|x| x.name == c.item) {
            return Err(invalid(
                &format!("row_filter.conditions[{i}].item"),
                format!("'{}' is not an information item of this resource", c.item),
            ));
        }
        if c.values.is_empty() || c.values.iter().any(|v| v.trim().is_empty() || v.chars().count() > 200) {
            return Err(invalid(&format!("row_filter.conditions[{i}].values"), "one or more non-empty values of at most 200 characters"));
        }
        if c.op == FilterOp::Eq && c.values.len() != 1 {
            return Err(invalid(&format!("row_filter.conditions[{i}].values"), "eq takes exactly one value (use in for several)"));
        }
    }
    if filter.conditions.len() > 20 {
        return Err(invalid("row_filter.conditions", "at most 20 conditions"));
    }
    Ok(())
}

fn check_period(today: NaiveDate, from: NaiveDate, to: NaiveDate, from_field: &str, to_field: &str) -> SharingResult<()> {
    if from < today {
        return Err(invalid(from_field, format!("{from} is in the past (today is {today})")));
    }
    if to < from {
        return Err(invalid(to_field, format!("{to} is before {from}")));
    }
    if (to - from).num_days() > MAX_PERIOD_DAYS {
        return Err(invalid(to_field, "a period covers at most 5 years"));
    }
    Ok(())
}

async fn audit(
    change: &mut Change<'_>,
    action: shutong_audit::Action,
    kind: &str,
    id: i64,
    department: i64,
    detail: serde_json::Value,
) -> SharingResult<()> {
    change.record(NewAuditEvent { action, target_kind: kind, target_id: id.to_string(), department_id: Some(department), detail }).await?;
    Ok(())
}

/// Writes a notice to a department once (by `key`), in the caller's transaction: for other modules' notices
/// (a 一数一源 conflict), shown in the department's 待办 with the sharing ones. Returns whether it is new.
#[allow(clippy::too_many_arguments)]
pub async fn notify_department(
    tx: &mut shutong_store::Tx,
    department: DepartmentId,
    kind: &str,
    target: (&str, i64),
    message: &str,
    key: &str,
    now_ms: i64,
) -> SharingResult<bool> {
    notify(tx, department.0, kind, target.0, target.1, message, None, key, now_ms).await
}

/// Writes a notice once (by key); returns whether it is new.
#[allow(clippy::too_many_arguments)]
async fn notify(
    conn: &mut shutong_store::AnyConnection,
    department: i64,
    kind: &str,
    target_kind: &str,
    target_id: i64,
    message: &str,
    due_on: Option<NaiveDate>,
    key: &str,
    now_ms: i64,
) -> SharingResult<bool> {
    let done = sqlx::query(
        "INSERT INTO notifications (department_id, kind, target_kind, target_id, message, due_on, created_at, dedupe_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(department)
    .bind(kind)
    .bind(target_kind)
    .bind(target_id.to_string())
    .bind(message)
    .bind(due_on.map(|d| d.to_string()))
    .bind(now_ms)
    .bind(key)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Input of [`subscribe`] and [`create_request`].
#[derive(Clone, Debug, Default)]
pub struct NewRequest {
    pub resource_code: String,
    /// Defaults to the principal's department.
    pub consumer: Option<DepartmentId>,
    /// The items wanted; a subscription defaults to every unconditional item.
    pub items: Vec<String>,
    pub purpose: Option<Purpose>,
    pub purpose_detail: Option<String>,
    pub basis: String,
    /// Defaults to today.
    pub period_from: Option<NaiveDate>,
    /// Defaults to a year after the start for a subscription; required for an application.
    pub period_to: Option<NaiveDate>,
    pub access_methods: Vec<AccessMethod>,
    pub expected_volume: Option<String>,
}

struct Checked {
    consumer: Dept,
    provider: Dept,
    resource: Published,
    items: Vec<String>,
    purpose: Purpose,
    purpose_detail: Option<String>,
    basis: String,
    period_from: NaiveDate,
    period_to: NaiveDate,
    methods: Vec<AccessMethod>,
    volume: Option<String>,
}

async fn check_new(s: &Sharing, tx: &mut Tx, actor: &Principal, new: &NewRequest, subscription: bool) -> SharingResult<Checked> {
    let consumer_id = new.consumer.or(actor.department_id).ok_or_else(|| invalid("consumer_department_id", "required"))?;
    if !acts_for(actor, consumer_id) {
        return Err(SharingError::Forbidden("only the consumer department's own staff apply for its data use".into()));
    }
    let consumer = dept(tx, consumer_id.0, "consumer_department_id").await?;
    let resource = published(tx, &new.resource_code).await?;
    if resource.provider == consumer.id.0 {
        return Err(invalid("resource_code", "the resource is the consumer department's own; no request is needed"));
    }
    let provider = dept(tx, resource.provider, "resource_code").await?;
    let purpose = new.purpose.ok_or_else(|| invalid("purpose", format!("required: one of {}", Purpose::expected())))?;
    let purpose_detail = text("purpose_detail", new.purpose_detail.as_deref().unwrap_or(""), purpose == Purpose::Other, 500)?;
    let basis = text("basis", &new.basis, true, MAX_TEXT)?.unwrap_or_default();
    let volume = text("expected_volume", new.expected_volume.as_deref().unwrap_or(""), false, 200)?;
    let today = s.today();
    let period_from = new.period_from.unwrap_or(today);
    let period_to = match new.period_to {
        Some(t) => t,
        None if subscription => period_from.checked_add_days(chrono::Days::new(365)).unwrap_or(period_from),
        None => return Err(invalid("period_to", "required: the last day the data is needed")),
    };
    check_period(today, period_from, period_to, "period_from", "period_to")?;
    let doc = &resource.document;
    let items = if new.items.is_empty() && subscription {
        doc.items
            .iter()
            .filter(|i| effective_item_sharing(doc, &i.name) == Some(SharingType::Unconditional))
            .map(|i| i.name.clone())
            .collect::<Vec<_>>()
    } else {
        check_items(doc, &new.items, "items")?
    };
    let methods = check_methods(doc, &new.access_methods, "access_methods")?;
    Ok(Checked { consumer, provider, resource, items, purpose, purpose_detail, basis, period_from, period_to, methods, volume })
}

#[allow(clippy::too_many_arguments)]
async fn insert_request(
    s: &Sharing,
    tx: &mut Tx,
    ctx: &AuditContext,
    c: &Checked,
    kind: RequestKind,
    status: RequestStatus,
    stage: Stage,
    owner: i64,
    due_on: NaiveDate,
    stage_due_on: NaiveDate,
) -> SharingResult<i64> {
    let now = s.clock.now_ms();
    let id: i64 = sqlx::query(
        "INSERT INTO sharing_requests (kind, resource_code, resource_version, resource_name, consumer_department_id, provider_department_id, \
         status, stage, owner_department_id, stage_due_on, items, purpose, purpose_detail, basis, period_from, period_to, access_methods, \
         expected_volume, submitted_at, submitted_by, submitted_on, due_on, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) RETURNING id",
    )
    .bind(kind.as_str())
    .bind(&c.resource.code)
    .bind(c.resource.version)
    .bind(&c.resource.document.name)
    .bind(c.consumer.id.0)
    .bind(c.provider.id.0)
    .bind(status.as_str())
    .bind(stage.as_str())
    .bind(owner)
    .bind(stage_due_on.to_string())
    .bind(to_json(&c.items))
    .bind(c.purpose.as_str())
    .bind(&c.purpose_detail)
    .bind(&c.basis)
    .bind(c.period_from.to_string())
    .bind(c.period_to.to_string())
    .bind(to_json(&c.methods))
    .bind(&c.volume)
    .bind(now)
    .bind(&ctx.actor)
    .bind(s.today().to_string())
    .bind(due_on.to_string())
    .bind(now)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    Ok(id)
}

/// Input of a grant, decided by an approval or a subscription.
struct NewGrant<'a> {
    resource_code: &'a str,
    consumer: i64,
    provider: i64,
    request: Option<i64>,
    origin: GrantOrigin,
    items: &'a [String],
    row_filter: &'a RowFilter,
    purpose: Purpose,
    purpose_detail: Option<&'a str>,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    methods: &'a [AccessMethod],
    daily_quota: Option<i64>,
    clear_text: bool,
}

async fn insert_grant(s: &Sharing, change: &mut Change<'_>, g: NewGrant<'_>) -> SharingResult<i64> {
    let ctx = change.ctx();
    let id: i64 = sqlx::query(
        "INSERT INTO sharing_grants (resource_code, consumer_department_id, provider_department_id, request_id, origin, items, row_filter, \
         purpose, purpose_detail, valid_from, valid_to, access_methods, daily_quota, clear_text, status, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'active', $15, $16) RETURNING id",
    )
    .bind(g.resource_code)
    .bind(g.consumer)
    .bind(g.provider)
    .bind(g.request)
    .bind(g.origin.as_str())
    .bind(to_json(&g.items))
    .bind((!g.row_filter.is_empty()).then(|| to_json(g.row_filter)))
    .bind(g.purpose.as_str())
    .bind(g.purpose_detail)
    .bind(g.valid_from.to_string())
    .bind(g.valid_to.to_string())
    .bind(to_json(&g.methods))
    .bind(g.daily_quota)
    .bind(g.clear_text as i64)
    .bind(s.clock.now_ms())
    .bind(&ctx.actor)
    .fetch_one(&mut **change.tx())
    .await?
    .try_get(0)?;
    audit(
        change,
        shutong_audit::Action::GrantCreate,
        "sharing_grant",
        id,
        g.provider,
        json!({"resource": g.resource_code, "consumer": g.consumer, "request": g.request, "origin": g.origin, "items": g.items,
               "row_filter": g.row_filter, "valid_from": g.valid_from, "valid_to": g.valid_to, "access_methods": g.methods,
               "daily_quota": g.daily_quota, "clear_text": g.clear_text}),
    )
    .await?;
    Ok(id)
}

#[allow(clippy::too_many_arguments)]
async fn open_step(
    s: &Sharing,
    tx: &mut Tx,
    ctx: &AuditContext,
    request: i64,
    stage: Stage,
    owner: i64,
    reason: &str,
    due: NaiveDate,
) -> SharingResult<i64> {
    let id: i64 = sqlx::query(
        "INSERT INTO sharing_escalations (request_id, stage, owner_department_id, opened_at, opened_by, opened_on, reason, due_on) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(request)
    .bind(stage.as_str())
    .bind(owner)
    .bind(s.clock.now_ms())
    .bind(&ctx.actor)
    .bind(s.today().to_string())
    .bind(reason)
    .bind(due.to_string())
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    Ok(id)
}

async fn close_step(s: &Sharing, tx: &mut Tx, ctx: &AuditContext, request: i64, outcome: &str, note: Option<&str>) -> SharingResult<()> {
    sqlx::query(
        "UPDATE sharing_escalations SET closed_at = $1, closed_on = $2, closed_by = $3, outcome = $4, outcome_note = $5 \
         WHERE request_id = $6 AND closed_at IS NULL",
    )
    .bind(s.clock.now_ms())
    .bind(s.today().to_string())
    .bind(&ctx.actor)
    .bind(outcome)
    .bind(note)
    .bind(request)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Loads a request for a change, checking that the principal may see it (404 otherwise).
async fn request_for_change(s: &Sharing, tx: &mut Tx, actor: &Principal, id: i64) -> SharingResult<RequestView> {
    let row = sqlx::query(&format!("{REQUEST_SQL} WHERE q.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(SharingError::NotFound { what: "request" })?;
    let view = request_from_row(&row, s.today())?;
    if !may_see(s, actor, view.consumer_department_id, view.provider_department_id, view.owner_department_id).await? {
        return Err(SharingError::NotFound { what: "request" });
    }
    Ok(view)
}

async fn add_message_in(
    s: &Sharing,
    tx: &mut Tx,
    ctx: &AuditContext,
    request: i64,
    stage: Stage,
    department: Option<i64>,
    body: &str,
) -> SharingResult<i64> {
    let id: i64 = sqlx::query(
        "INSERT INTO sharing_messages (request_id, stage, at, author, department_id, body) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(request)
    .bind(stage.as_str())
    .bind(s.clock.now_ms())
    .bind(&ctx.actor)
    .bind(department)
    .bind(body)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    Ok(id)
}

async fn detail_in(s: &Sharing, tx: &mut Tx, id: i64) -> SharingResult<RequestDetail> {
    let row = sqlx::query(&format!("{REQUEST_SQL} WHERE q.id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(SharingError::NotFound { what: "request" })?;
    let today = s.today();
    let request = request_from_row(&row, today)?;
    let esc = sqlx::query(
        "SELECT e.*, d.name AS owner_name FROM sharing_escalations e JOIN departments d ON d.id = e.owner_department_id WHERE e.request_id = $1 ORDER BY e.id",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    let mut escalations = Vec::with_capacity(esc.len());
    for e in &esc {
        let due_on = shutong_store::parse_date_column(e, "sharing_escalations", "due_on")?;
        let closed_at: Option<i64> = e.try_get("closed_at")?;
        escalations.push(EscalationView {
            id: e.try_get("id")?,
            stage: shutong_store::parse_column(e, "sharing_escalations", "stage", Stage::parse)?,
            owner_department_id: e.try_get("owner_department_id")?,
            owner_name: e.try_get("owner_name")?,
            opened_at_ms: e.try_get("opened_at")?,
            opened_by: e.try_get("opened_by")?,
            opened_on: shutong_store::parse_date_column(e, "sharing_escalations", "opened_on")?,
            reason: e.try_get("reason")?,
            due_on,
            overdue: closed_at.is_none() && today > due_on,
            closed_at_ms: closed_at,
            closed_on: shutong_store::parse_optional_date_column(e, "sharing_escalations", "closed_on")?,
            closed_by: e.try_get("closed_by")?,
            outcome: e.try_get("outcome")?,
            outcome_note: e.try_get("outcome_note")?,
        });
    }
    let msgs = sqlx::query(
        "SELECT m.*, d.name AS department_name FROM sharing_messages m LEFT JOIN departments d ON d.id = m.department_id WHERE m.request_id = $1 ORDER BY m.id",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    let messages = msgs
        .iter()
        .map(|m| {
            Ok(MessageView {
                id: m.try_get("id")?,
                stage: shutong_store::parse_column(m, "sharing_messages", "stage", Stage::parse)?,
                at_ms: m.try_get("at")?,
                author: m.try_get("author")?,
                department_id: m.try_get("department_id")?,
                department_name: m.try_get("department_name")?,
                body: m.try_get("body")?,
            })
        })
        .collect::<SharingResult<Vec<_>>>()?;
    let grant = match request.grant_id {
        Some(g) => {
            let row = sqlx::query(&format!("{GRANT_SQL} WHERE g.id = $1")).bind(g).fetch_one(&mut **tx).await?;
            Some(grant_from_row(&row, today)?)
        }
        None => None,
    };
    Ok(RequestDetail { request, escalations, messages, grant })
}

async fn grant_in(s: &Sharing, conn: &mut shutong_store::AnyConnection, id: i64) -> SharingResult<GrantView> {
    let row = sqlx::query(&format!("{GRANT_SQL} WHERE g.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(SharingError::NotFound { what: "grant" })?;
    grant_from_row(&row, s.today())
}

async fn may_see_grant(s: &Sharing, p: &Principal, g: &GrantView) -> SharingResult<bool> {
    may_see(s, p, g.consumer_department_id, g.provider_department_id, g.provider_department_id).await
}

fn workdays_left(s: &Sharing, today: NaiveDate, due: NaiveDate) -> Option<i64> {
    if due >= today {
        s.calendar.workdays_between(today, due).ok().map(|(n, _)| n)
    } else {
        s.calendar.workdays_between(due, today).ok().map(|(n, _)| -n)
    }
}

fn inbox_item(s: &Sharing, today: NaiveDate, kind: &str, r: &RequestView, counterpart: &str) -> InboxItem {
    let title = match kind {
        "answer" => format!("答复 {} 的共享申请", r.consumer_name),
        "negotiation" => format!("与 {} 协商", r.consumer_name),
        "coordination" => format!("协调 {} 与 {}", r.consumer_name, r.provider_name),
        "leading_group" => format!("领导小组协调 {} 与 {}", r.consumer_name, r.provider_name),
        "escalate" => format!("{}未获同意，可提请{}", r.stage.label_zh(), r.next_stage.map(|x| x.label_zh()).unwrap_or("")),
        _ => format!("{} 逾期未办（{}）", r.owner_name, r.stage.label_zh()),
    };
    let open = r.status.is_open();
    InboxItem {
        kind: kind.into(),
        title,
        request_id: Some(r.id),
        grant_id: None,
        resource_code: r.resource_code.clone(),
        resource_name: r.resource_name.clone(),
        counterpart: counterpart.into(),
        due_on: open.then_some(r.stage_due_on),
        overdue: r.overdue,
        workdays_left: if open { workdays_left(s, today, r.stage_due_on) } else { None },
    }
}

fn p_in(p: &Principal, d: i64) -> bool {
    p.department_id == Some(DepartmentId(d)) || p.roles.iter().any(|r| r.department_id.0 == d)
}

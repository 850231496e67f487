//! Service functions of sharing: one per state change, each authorised, validated and written in one
//! transaction with its audit event and the notices it causes.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use shutong_audit::{AuditContext, NewAuditEvent, record};
use shutong_catalog::{ResourceDocument, SharingType};
use shutong_identity::{DepartmentId, DepartmentKind, DepartmentLevel, Principal, Role};
use shutong_reference::WorkCalendar;
use shutong_store::{AnyRow, Clock, Db, Row, StoreError, Tx};
use std::collections::BTreeSet;
use std::sync::Arc;
use utoipa::ToSchema;

use crate::model::*;

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

// ------------------------------------------------------------------ departments and who may act

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

// ------------------------------------------------------------------ views

/// 共享申请: a subscription or an application, and where it stands.
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, ToSchema)]
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
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RequestDetail {
    pub request: RequestView,
    pub escalations: Vec<EscalationView>,
    pub messages: Vec<MessageView>,
    pub grant: Option<GrantView>,
}

/// 授权 (R-REQ-5).
#[derive(Clone, Debug, Serialize, ToSchema)]
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

// ------------------------------------------------------------------ the published resource

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

// ------------------------------------------------------------------ audit and notices

async fn audit(
    tx: &mut Tx,
    ctx: &AuditContext,
    action: &str,
    kind: &str,
    id: i64,
    department: i64,
    detail: serde_json::Value,
) -> SharingResult<()> {
    record(&mut *tx, ctx, NewAuditEvent { action, target_kind: kind, target_id: id.to_string(), department_id: Some(department), detail })
        .await?;
    Ok(())
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

// ------------------------------------------------------------------ subscriptions and applications

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

async fn insert_grant(s: &Sharing, tx: &mut Tx, ctx: &AuditContext, g: NewGrant<'_>) -> SharingResult<i64> {
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
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    audit(
        tx,
        ctx,
        "grant.create",
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

/// Commits a change that made, changed or ended a grant (its event recorded in `tx`), then runs its effects:
/// every access decision that read grants is forgotten before the caller answers.
async fn commit_grants_changed(s: &Sharing, tx: shutong_store::Tx) -> SharingResult<()> {
    tx.commit().await?;
    s.db.run_effects(&[shutong_audit::Notice::GrantsChanged]).await;
    Ok(())
}

/// 直接获取 (R-REQ-1): a consumer subscribes to an unconditional resource and holds a grant at once, with
/// purpose, items and access methods recorded.
pub async fn subscribe(s: &Sharing, actor: &Principal, ctx: &AuditContext, new: NewRequest) -> SharingResult<RequestDetail> {
    let mut tx = s.db.begin().await?;
    let c = check_new(s, &mut tx, actor, &new, true).await?;
    let doc = &c.resource.document;
    if doc.sharing_type != SharingType::Unconditional {
        return Err(invalid(
            "resource_code",
            format!("the resource is {}; apply through /api/v1/requests (R-REQ-2, R-REQ-4)", doc.sharing_type.label_zh()),
        ));
    }
    if c.items.is_empty() {
        return Err(invalid("items", "the resource has no unconditional items"));
    }
    for (i, item) in c.items.iter().enumerate() {
        let t = effective_item_sharing(doc, item).unwrap_or(SharingType::NotShared);
        if t != SharingType::Unconditional {
            return Err(invalid(&format!("items[{i}]"), format!("'{item}' is {}; apply for it through /api/v1/requests", t.label_zh())));
        }
    }
    let existing: Option<i64> = sqlx::query(
        "SELECT id FROM sharing_grants WHERE consumer_department_id = $1 AND resource_code = $2 AND purpose = $3 AND origin = 'subscription' \
         AND status = 'active' AND valid_to >= $4",
    )
    .bind(c.consumer.id.0)
    .bind(&c.resource.code)
    .bind(c.purpose.as_str())
    .bind(s.today().to_string())
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| r.get(0));
    if let Some(g) = existing {
        return Err(SharingError::Conflict(format!("grant {g} already covers this resource for this purpose; renew it instead")));
    }
    let today = s.today();
    let id = insert_request(
        s,
        &mut tx,
        ctx,
        &c,
        RequestKind::Subscription,
        RequestStatus::Approved,
        Stage::Answer,
        c.provider.id.0,
        today,
        today,
    )
    .await?;
    let grant = insert_grant(
        s,
        &mut tx,
        ctx,
        NewGrant {
            resource_code: &c.resource.code,
            consumer: c.consumer.id.0,
            provider: c.provider.id.0,
            request: Some(id),
            origin: GrantOrigin::Subscription,
            items: &c.items,
            row_filter: &RowFilter::default(),
            purpose: c.purpose,
            purpose_detail: c.purpose_detail.as_deref(),
            valid_from: c.period_from,
            valid_to: c.period_to,
            methods: &c.methods,
            daily_quota: None,
            clear_text: false,
        },
    )
    .await?;
    sqlx::query("UPDATE sharing_requests SET grant_id = $1, answered_at = $2, answered_on = $3, answered_by = 'platform' WHERE id = $4")
        .bind(grant)
        .bind(s.clock.now_ms())
        .bind(today.to_string())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit(
        &mut tx,
        ctx,
        "request.subscribe",
        "sharing_request",
        id,
        c.consumer.id.0,
        json!({"resource": c.resource.code, "provider": c.provider.id.0, "items": c.items, "purpose": c.purpose, "grant": grant}),
    )
    .await?;
    let msg = format!("{} 订阅了无条件共享资源 {}（授权 {grant}）", c.consumer.name, c.resource.document.name);
    notify(&mut tx, c.provider.id.0, "subscribed", "sharing_request", id, &msg, None, &format!("subscribed:{id}"), s.clock.now_ms())
        .await?;
    let detail = detail_in(s, &mut tx, id).await?;
    commit_grants_changed(s, tx).await?;
    Ok(detail)
}

/// 共享申请 (R-REQ-2): applies for a conditional resource; due on the N-th working day after today. A
/// request for 不予共享 data opens a negotiation (协商) with the provider at once (R-REQ-4).
pub async fn create_request(s: &Sharing, actor: &Principal, ctx: &AuditContext, new: NewRequest) -> SharingResult<RequestDetail> {
    let mut tx = s.db.begin().await?;
    let c = check_new(s, &mut tx, actor, &new, false).await?;
    let doc = &c.resource.document;
    let types: Vec<SharingType> = c.items.iter().map(|i| effective_item_sharing(doc, i).unwrap_or(SharingType::NotShared)).collect();
    let kind = if types.contains(&SharingType::NotShared) {
        RequestKind::Negotiation
    } else if types.contains(&SharingType::Conditional) {
        RequestKind::Application
    } else {
        return Err(invalid(
            "items",
            "every item asked for is 无条件共享: subscribe through /api/v1/subscriptions and the grant is given at once (R-REQ-1)",
        ));
    };
    let open: Option<i64> = sqlx::query(
        "SELECT id FROM sharing_requests WHERE consumer_department_id = $1 AND resource_code = $2 AND purpose = $3 \
         AND status IN ('pending', 'negotiating', 'coordinating', 'leading_group')",
    )
    .bind(c.consumer.id.0)
    .bind(&c.resource.code)
    .bind(c.purpose.as_str())
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| r.get(0));
    if let Some(other) = open {
        return Err(SharingError::Conflict(format!(
            "request {other} for this resource and purpose is still open; withdraw it or wait for its answer"
        )));
    }
    let today = s.today();
    let stage = if kind == RequestKind::Negotiation { Stage::Negotiation } else { Stage::Answer };
    let due = s.due(today, stage)?;
    let id = insert_request(s, &mut tx, ctx, &c, kind, stage.open_status(), stage, c.provider.id.0, due, due).await?;
    if stage == Stage::Negotiation {
        open_step(s, &mut tx, ctx, id, Stage::Negotiation, c.provider.id.0, &c.basis, due).await?;
    }
    audit(
        &mut tx,
        ctx,
        "request.create",
        "sharing_request",
        id,
        c.consumer.id.0,
        json!({"resource": c.resource.code, "provider": c.provider.id.0, "kind": kind, "items": c.items, "purpose": c.purpose,
               "period_from": c.period_from, "period_to": c.period_to, "access_methods": c.methods, "due_on": due}),
    )
    .await?;
    let msg = match kind {
        RequestKind::Negotiation => format!("{} 就不予共享资源 {} 申请协商，请在 {due} 前答复", c.consumer.name, doc.name),
        _ => format!("{} 申请共享 {}，请在 {due} 前答复（第十六条）", c.consumer.name, doc.name),
    };
    notify(&mut tx, c.provider.id.0, "request", "sharing_request", id, &msg, Some(due), &format!("request:{id}"), s.clock.now_ms()).await?;
    let detail = detail_in(s, &mut tx, id).await?;
    tx.commit().await?;
    Ok(detail)
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

// ------------------------------------------------------------------ answers

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

/// Who answers at a stage: the provider's reviewers for 答复 and 协商; the owning authority's reviewers (and
/// platform administrators) for 协调 and 领导小组.
pub fn may_answer(actor: &Principal, r: &RequestView) -> bool {
    match r.stage {
        Stage::Answer | Stage::Negotiation => answers_for(actor, DepartmentId(r.provider_department_id)),
        Stage::Coordination | Stage::LeadingGroup => actor.is_platform_admin() || answers_for(actor, DepartmentId(r.owner_department_id)),
    }
}

/// An approval: the grant, narrowed from the request where the answerer chooses.
#[derive(Clone, Debug, Default)]
pub struct Approval {
    /// A subset of the requested items; default all of them.
    pub items: Option<Vec<String>>,
    pub row_filter: Option<RowFilter>,
    /// Within the requested period; default the requested period.
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    /// A subset of the requested access methods; default all of them.
    pub access_methods: Option<Vec<AccessMethod>>,
    pub daily_quota: Option<i64>,
    /// Deliver sensitive items in clear text.
    pub clear_text: bool,
    pub note: Option<String>,
}

/// 同意: the answerer approves, possibly narrowing items, rows, period and access methods; a grant is created
/// with exactly that scope.
pub async fn approve(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: i64, a: Approval) -> SharingResult<RequestDetail> {
    let mut tx = s.db.begin().await?;
    let r = request_for_change(s, &mut tx, actor, id).await?;
    if !may_answer(actor, &r) {
        return Err(SharingError::Forbidden(format!("at the {} stage only {} answers", r.stage.label_zh(), r.owner_name)));
    }
    if !r.status.is_open() {
        return Err(SharingError::State(format!("request {id} is {}; only an open request is answered", r.status.label_zh())));
    }
    let resource = published(&mut tx, &r.resource_code).await?;
    let doc = &resource.document;
    let items = match &a.items {
        Some(list) => {
            let list = check_items(doc, list, "items")?;
            for (i, it) in list.iter().enumerate() {
                if !r.items.contains(it) {
                    return Err(invalid(
                        &format!("items[{i}]"),
                        format!("'{it}' was not requested; an approval can only narrow the items"),
                    ));
                }
            }
            list
        }
        None => r.items.clone(),
    };
    for (i, it) in items.iter().enumerate() {
        if effective_item_sharing(doc, it) == Some(SharingType::NotShared) {
            return Err(invalid(
                &format!("items[{i}]"),
                format!(
                    "'{it}' is 不予共享 in the published catalog (version {}); the provider revises the entry before it can be granted (R-CAT-1)",
                    resource.version
                ),
            ));
        }
    }
    let filter = a.row_filter.clone().unwrap_or_default();
    check_filter(doc, &filter)?;
    let today = s.today();
    let valid_from = a.valid_from.unwrap_or(r.period_from).max(today);
    let valid_to = a.valid_to.unwrap_or(r.period_to);
    if valid_from < r.period_from {
        return Err(invalid("valid_from", format!("{valid_from} is before the requested period ({})", r.period_from)));
    }
    if valid_to > r.period_to {
        return Err(invalid(
            "valid_to",
            format!("{valid_to} is after the requested period ({}); an approval can only narrow", r.period_to),
        ));
    }
    check_period(today, valid_from, valid_to, "valid_from", "valid_to")?;
    let methods = match &a.access_methods {
        Some(m) => {
            let m = check_methods(doc, m, "access_methods")?;
            for (i, x) in m.iter().enumerate() {
                if !r.access_methods.contains(x) {
                    return Err(invalid(&format!("access_methods[{i}]"), format!("{} was not requested", x.label_zh())));
                }
            }
            m
        }
        None => r.access_methods.clone(),
    };
    if let Some(q) = a.daily_quota
        && !(1..=1_000_000_000).contains(&q)
    {
        return Err(invalid("daily_quota", "between 1 and 1000000000 records per day"));
    }
    let note = text("note", a.note.as_deref().unwrap_or(""), false, MAX_TEXT)?;
    let grant = insert_grant(
        s,
        &mut tx,
        ctx,
        NewGrant {
            resource_code: &r.resource_code,
            consumer: r.consumer_department_id,
            provider: r.provider_department_id,
            request: Some(id),
            origin: r.stage.grant_origin(),
            items: &items,
            row_filter: &filter,
            purpose: r.purpose,
            purpose_detail: r.purpose_detail.as_deref(),
            valid_from,
            valid_to,
            methods: &methods,
            daily_quota: a.daily_quota,
            clear_text: a.clear_text,
        },
    )
    .await?;
    let now = s.clock.now_ms();
    sqlx::query(
        "UPDATE sharing_requests SET status = 'approved', grant_id = $1, answered_at = $2, answered_on = $3, answered_by = $4, answer_reason = $5, \
         closed_at = $2, updated_at = $2 WHERE id = $6",
    )
    .bind(grant)
    .bind(now)
    .bind(today.to_string())
    .bind(&ctx.actor)
    .bind(&note)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if r.stage != Stage::Answer {
        close_step(s, &mut tx, ctx, id, "granted", note.as_deref()).await?;
    }
    let narrowed = items.len() < r.items.len() || !filter.is_empty() || valid_to < r.period_to || methods.len() < r.access_methods.len();
    audit(
        &mut tx,
        ctx,
        "request.approve",
        "sharing_request",
        id,
        r.provider_department_id,
        json!({"stage": r.stage, "grant": grant, "items": items, "narrowed": narrowed, "due_on": r.stage_due_on, "late": today > r.stage_due_on}),
    )
    .await?;
    let msg = format!("{} 的共享申请已同意（{}），授权 {grant}", r.resource_name, r.stage.label_zh());
    notify(&mut tx, r.consumer_department_id, "approved", "sharing_request", id, &msg, None, &format!("approved:{id}"), now).await?;
    let detail = detail_in(s, &mut tx, id).await?;
    commit_grants_changed(s, tx).await?;
    Ok(detail)
}

/// 不予共享 / 拒绝: the answerer refuses; the reason is mandatory (第十六条: 应说明理由).
pub async fn reject(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: i64, reason: &str) -> SharingResult<RequestDetail> {
    let reason = text("reason", reason, true, MAX_TEXT)?.unwrap_or_default();
    let mut tx = s.db.begin().await?;
    let r = request_for_change(s, &mut tx, actor, id).await?;
    if !may_answer(actor, &r) {
        return Err(SharingError::Forbidden(format!("at the {} stage only {} answers", r.stage.label_zh(), r.owner_name)));
    }
    if !r.status.is_open() {
        return Err(SharingError::State(format!("request {id} is {}; only an open request is answered", r.status.label_zh())));
    }
    let now = s.clock.now_ms();
    let today = s.today();
    // The provider's answer (答复) is recorded once; later refusals close their escalation step.
    sqlx::query(
        "UPDATE sharing_requests SET status = 'rejected', answered_at = COALESCE(answered_at, $1), answered_on = COALESCE(answered_on, $2), \
         answered_by = COALESCE(answered_by, $3), answer_reason = $4, closed_at = $1, updated_at = $1 WHERE id = $5",
    )
    .bind(now)
    .bind(today.to_string())
    .bind(&ctx.actor)
    .bind(&reason)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if r.stage != Stage::Answer {
        close_step(s, &mut tx, ctx, id, "refused", Some(&reason)).await?;
    }
    audit(
        &mut tx,
        ctx,
        "request.reject",
        "sharing_request",
        id,
        r.provider_department_id,
        json!({"stage": r.stage, "reason": reason, "due_on": r.stage_due_on, "late": today > r.stage_due_on}),
    )
    .await?;
    let msg = format!("{} 的共享申请未获同意（{}）：{reason}", r.resource_name, r.stage.label_zh());
    notify(&mut tx, r.consumer_department_id, "rejected", "sharing_request", id, &msg, None, &format!("rejected:{id}:{}", r.stage), now)
        .await?;
    let detail = detail_in(s, &mut tx, id).await?;
    tx.commit().await?;
    Ok(detail)
}

/// 撤回: the consumer withdraws an open request.
pub async fn withdraw(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: i64, reason: Option<&str>) -> SharingResult<RequestDetail> {
    let reason = text("reason", reason.unwrap_or(""), false, MAX_TEXT)?;
    let mut tx = s.db.begin().await?;
    let r = request_for_change(s, &mut tx, actor, id).await?;
    if !acts_for(actor, DepartmentId(r.consumer_department_id)) {
        return Err(SharingError::Forbidden("only the consumer department withdraws its request".into()));
    }
    if !r.status.is_open() {
        return Err(SharingError::State(format!("request {id} is {}; only an open request can be withdrawn", r.status.label_zh())));
    }
    let now = s.clock.now_ms();
    sqlx::query("UPDATE sharing_requests SET status = 'withdrawn', closed_at = $1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if r.stage != Stage::Answer {
        close_step(s, &mut tx, ctx, id, "withdrawn", reason.as_deref()).await?;
    }
    audit(&mut tx, ctx, "request.withdraw", "sharing_request", id, r.consumer_department_id, json!({"stage": r.stage, "reason": reason}))
        .await?;
    let msg = format!("{} 撤回了对 {} 的申请", r.consumer_name, r.resource_name);
    notify(&mut tx, r.owner_department_id, "withdrawn", "sharing_request", id, &msg, None, &format!("withdrawn:{id}"), now).await?;
    let detail = detail_in(s, &mut tx, id).await?;
    tx.commit().await?;
    Ok(detail)
}

/// 协商 → 协调 → 领导小组 (R-REQ-4): the consumer takes a refused request (or a negotiation that failed) to the
/// next stage, stating why. Each stage has its owner and its deadline.
pub async fn escalate(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: i64, reason: &str) -> SharingResult<RequestDetail> {
    let reason = text("reason", reason, true, MAX_TEXT)?.unwrap_or_default();
    let mut tx = s.db.begin().await?;
    let r = request_for_change(s, &mut tx, actor, id).await?;
    if !acts_for(actor, DepartmentId(r.consumer_department_id)) {
        return Err(SharingError::Forbidden("only the consumer department escalates its request".into()));
    }
    let next = r.next_stage.ok_or_else(|| {
        SharingError::State(match (r.status, r.stage) {
            (RequestStatus::Rejected, Stage::Coordination) => {
                "the coordination's decision is final: no provincial department is involved (第十六条)".to_string()
            }
            (RequestStatus::Rejected, Stage::LeadingGroup) => "the leading group's decision is final".to_string(),
            _ => format!("request {id} is {}; only a refused request or a failed negotiation is escalated", r.status.label_zh()),
        })
    })?;
    let consumer = dept(&mut tx, r.consumer_department_id, "consumer_department_id").await?;
    let provider = dept(&mut tx, r.provider_department_id, "provider_department_id").await?;
    let owner = match next {
        Stage::Negotiation => provider.id,
        Stage::Coordination => coordination_owner(&mut tx, &consumer, &provider).await?,
        Stage::LeadingGroup => leading_group_owner(&mut tx, &consumer).await?,
        Stage::Answer => return Err(SharingError::State("no escalation back to the answer".into())),
    };
    if r.status.is_open() {
        // 协商未果: the consumer ends a negotiation that goes nowhere.
        close_step(s, &mut tx, ctx, id, "escalated", Some(&reason)).await?;
    }
    let due = s.due(s.today(), next)?;
    open_step(s, &mut tx, ctx, id, next, owner.0, &reason, due).await?;
    let now = s.clock.now_ms();
    sqlx::query(
        "UPDATE sharing_requests SET status = $1, stage = $2, owner_department_id = $3, stage_due_on = $4, closed_at = NULL, updated_at = $5 WHERE id = $6",
    )
    .bind(next.open_status().as_str())
    .bind(next.as_str())
    .bind(owner.0)
    .bind(due.to_string())
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    add_message_in(s, &mut tx, ctx, id, next, actor.department_id.map(|d| d.0), &reason).await?;
    audit(
        &mut tx,
        ctx,
        "request.escalate",
        "sharing_request",
        id,
        r.consumer_department_id,
        json!({"from": r.stage, "to": next, "owner": owner.0, "due_on": due, "reason": reason}),
    )
    .await?;
    let msg = format!("{} 就 {} 提请{}，请在 {due} 前办理", consumer.name, r.resource_name, next.label_zh());
    notify(&mut tx, owner.0, "escalation", "sharing_request", id, &msg, Some(due), &format!("escalation:{id}:{next}"), now).await?;
    let detail = detail_in(s, &mut tx, id).await?;
    commit_grants_changed(s, tx).await?;
    Ok(detail)
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

/// Adds to the record of the exchange: the parties and the owner of the current stage write while the
/// request is open.
pub async fn add_message(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: i64, body: &str) -> SharingResult<RequestDetail> {
    let body = text("body", body, true, 4000)?.unwrap_or_default();
    let mut tx = s.db.begin().await?;
    let r = request_for_change(s, &mut tx, actor, id).await?;
    let party = acts_for(actor, DepartmentId(r.consumer_department_id))
        || answers_for(actor, DepartmentId(r.provider_department_id))
        || answers_for(actor, DepartmentId(r.owner_department_id))
        || (actor.is_platform_admin() && matches!(r.stage, Stage::Coordination | Stage::LeadingGroup));
    if !party {
        return Err(SharingError::Forbidden("only the parties and the owner of the stage write in a request's record".into()));
    }
    if !r.status.is_open() {
        return Err(SharingError::State(format!("request {id} is {}; its record is closed", r.status.label_zh())));
    }
    let dept = actor.department_id.map(|d| d.0);
    let mid = add_message_in(s, &mut tx, ctx, id, r.stage, dept, &body).await?;
    audit(
        &mut tx,
        ctx,
        "request.message",
        "sharing_request",
        id,
        dept.unwrap_or(r.provider_department_id),
        json!({"stage": r.stage, "message": mid}),
    )
    .await?;
    let to = if dept == Some(r.consumer_department_id) { r.owner_department_id } else { r.consumer_department_id };
    let msg = format!("{} 的申请有新的{}记录", r.resource_name, r.stage.label_zh());
    notify(&mut tx, to, "message", "sharing_request", id, &msg, None, &format!("message:{mid}:{to}"), s.clock.now_ms()).await?;
    let detail = detail_in(s, &mut tx, id).await?;
    tx.commit().await?;
    Ok(detail)
}

// ------------------------------------------------------------------ reading requests

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

/// A request with its steps, messages and grant, for its parties, the owner of its stage, the authority
/// and auditors (404 for anyone else).
pub async fn get_request(s: &Sharing, actor: &Principal, id: i64) -> SharingResult<RequestDetail> {
    let mut tx = s.db.pool().begin().await?;
    request_for_change(s, &mut tx, actor, id).await?;
    let d = detail_in(s, &mut tx, id).await?;
    tx.rollback().await?;
    Ok(d)
}

/// Filter of [`list_requests`].
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    /// Whose side: the caller's department as consumer, as provider, as the owner of the stage, or all the
    /// caller may see.
    pub side: Option<Side>,
    pub status: Option<RequestStatus>,
    pub stage: Option<Stage>,
    pub kind: Option<RequestKind>,
    pub resource_code: Option<String>,
    /// Only open requests past their stage's due date.
    pub overdue: bool,
    /// Only requests with this department as a party.
    pub department: Option<DepartmentId>,
    /// Requests with an ID below this (pages run newest first).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Requests the principal may see, newest first: its department's as consumer, provider or owner of a stage;
/// every request for the authority and auditors.
pub async fn list_requests(s: &Sharing, actor: &Principal, f: &RequestFilter) -> SharingResult<Vec<RequestView>> {
    let wide = sees_all(s, actor).await?;
    let Some(list) = departments_sql(actor).or_else(|| wide.then(|| "NULL".to_string())) else {
        // Neither wide nor in any department: nothing to see.
        return Ok(Vec::new());
    };
    let mut sql = format!("{REQUEST_SQL} WHERE 1 = 1");
    let mut binds: Vec<String> = Vec::new();
    let side_sql = |col: &str| format!(" AND q.{col} IN ({list})");
    match f.side {
        Some(Side::Consumer) => sql.push_str(&side_sql("consumer_department_id")),
        Some(Side::Provider) => sql.push_str(&side_sql("provider_department_id")),
        Some(Side::Owner) => sql.push_str(&format!(
            "{} AND q.status IN ('pending', 'negotiating', 'coordinating', 'leading_group')",
            side_sql("owner_department_id")
        )),
        None if !wide => sql.push_str(&format!(
            " AND (q.consumer_department_id IN ({list}) OR q.provider_department_id IN ({list}) OR q.owner_department_id IN ({list}))"
        )),
        None => {}
    }
    let mut n = 0;
    let mut push = |sql: &mut String, clause: &str, v: String| {
        n += 1;
        sql.push_str(&clause.replace("?", &format!("${n}")));
        binds.push(v);
    };
    if let Some(st) = f.status {
        push(&mut sql, " AND q.status = ?", st.as_str().into());
    }
    if let Some(st) = f.stage {
        push(&mut sql, " AND q.stage = ?", st.as_str().into());
    }
    if let Some(k) = f.kind {
        push(&mut sql, " AND q.kind = ?", k.as_str().into());
    }
    if let Some(c) = &f.resource_code {
        push(&mut sql, " AND q.resource_code = ?", c.clone());
    }
    if f.overdue {
        push(
            &mut sql,
            " AND q.status IN ('pending', 'negotiating', 'coordinating', 'leading_group') AND q.stage_due_on < ?",
            s.today().to_string(),
        );
    }
    if let Some(d) = f.department {
        sql.push_str(&format!(" AND (q.consumer_department_id = {0} OR q.provider_department_id = {0})", d.0));
    }
    if let Some(b) = f.before {
        sql.push_str(&format!(" AND q.id < {b}"));
    }
    sql.push_str(&format!(" ORDER BY q.id DESC LIMIT {}", f.limit.clamp(1, 1000)));
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(s.db.pool()).await?;
    let today = s.today();
    rows.iter().map(|r| request_from_row(r, today)).collect()
}

// ------------------------------------------------------------------ grants

/// Filter of [`list_grants`].
#[derive(Clone, Debug, Default)]
pub struct GrantFilter {
    /// The caller's department as consumer (`consumer`) or provider (`provider`); default both.
    pub side: Option<Side>,
    pub resource_code: Option<String>,
    pub state: Option<GrantState>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// Grants the principal may see, newest first: those of its department (as consumer or provider); all of
/// them for the authority and auditors.
pub async fn list_grants(s: &Sharing, actor: &Principal, f: &GrantFilter) -> SharingResult<Vec<GrantView>> {
    let wide = sees_all(s, actor).await?;
    let Some(list) = departments_sql(actor).or_else(|| wide.then(|| "NULL".to_string())) else {
        // Neither wide nor in any department: nothing to see.
        return Ok(Vec::new());
    };
    let mut sql = format!("{GRANT_SQL} WHERE 1 = 1");
    match f.side {
        Some(Side::Consumer) => sql.push_str(&format!(" AND g.consumer_department_id IN ({list})")),
        Some(Side::Provider | Side::Owner) => sql.push_str(&format!(" AND g.provider_department_id IN ({list})")),
        None if !wide => sql.push_str(&format!(" AND (g.consumer_department_id IN ({list}) OR g.provider_department_id IN ({list}))")),
        None => {}
    }
    let today = s.today().to_string();
    let mut binds: Vec<String> = Vec::new();
    if let Some(c) = &f.resource_code {
        binds.push(c.clone());
        sql.push_str(&format!(" AND g.resource_code = ${}", binds.len()));
    }
    match f.state {
        Some(GrantState::Revoked) => sql.push_str(" AND g.status = 'revoked'"),
        Some(st) => {
            binds.push(today.clone());
            let n = binds.len();
            sql.push_str(&match st {
                GrantState::Active => format!(" AND g.status = 'active' AND g.valid_from <= ${n} AND g.valid_to >= ${n}"),
                GrantState::Expired => format!(" AND g.status = 'active' AND g.valid_to < ${n}"),
                _ => format!(" AND g.status = 'active' AND g.valid_from > ${n}"),
            });
        }
        None => {}
    }
    if let Some(b) = f.before {
        sql.push_str(&format!(" AND g.id < {b}"));
    }
    sql.push_str(&format!(" ORDER BY g.id DESC LIMIT {}", f.limit.clamp(1, 1000)));
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(s.db.pool()).await?;
    let today = s.today();
    rows.iter().map(|r| grant_from_row(r, today)).collect()
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

/// A grant, for its parties, the authority and auditors.
pub async fn get_grant(s: &Sharing, actor: &Principal, id: i64) -> SharingResult<GrantView> {
    let mut conn = s.db.pool().acquire().await.map_err(StoreError::from)?;
    let g = grant_in(s, &mut conn, id).await?;
    if !may_see_grant(s, actor, &g).await? {
        return Err(SharingError::NotFound { what: "grant" });
    }
    Ok(g)
}

/// Who may revoke or renew a grant: the provider's reviewers and administrators, and the authority.
pub async fn may_manage_grant(s: &Sharing, actor: &Principal, g: &GrantView) -> SharingResult<bool> {
    Ok(answers_for(actor, DepartmentId(g.provider_department_id)) || shutong_catalog::is_authority(&s.db, actor).await?)
}

/// 撤销授权: the provider or the authority revokes a grant, with a reason; it stops working at once.
pub async fn revoke_grant(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: i64, reason: &str) -> SharingResult<GrantView> {
    let reason = text("reason", reason, true, MAX_TEXT)?.unwrap_or_default();
    let mut tx = s.db.begin().await?;
    let g = grant_in(s, &mut tx, id).await?;
    if !may_see_grant(s, actor, &g).await? {
        return Err(SharingError::NotFound { what: "grant" });
    }
    if !may_manage_grant(s, actor, &g).await? {
        return Err(SharingError::Forbidden("only the provider's reviewers and the sharing authority revoke a grant".into()));
    }
    if g.state == GrantState::Revoked {
        return Err(SharingError::State(format!("grant {id} is already revoked")));
    }
    let now = s.clock.now_ms();
    sqlx::query("UPDATE sharing_grants SET status = 'revoked', revoked_at = $1, revoked_by = $2, revoke_reason = $3 WHERE id = $4")
        .bind(now)
        .bind(&ctx.actor)
        .bind(&reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit(
        &mut tx,
        ctx,
        "grant.revoke",
        "sharing_grant",
        id,
        g.provider_department_id,
        json!({"reason": reason, "consumer": g.consumer_department_id}),
    )
    .await?;
    let msg = format!("{} 的授权 {id} 已撤销：{reason}", g.resource_name);
    notify(&mut tx, g.consumer_department_id, "grant_revoked", "sharing_grant", id, &msg, None, &format!("revoked:{id}"), now).await?;
    let view = grant_in(s, &mut tx, id).await?;
    commit_grants_changed(s, tx).await?;
    Ok(view)
}

/// 续期: the provider or the authority extends a grant's validity.
pub async fn renew_grant(
    s: &Sharing,
    actor: &Principal,
    ctx: &AuditContext,
    id: i64,
    valid_to: NaiveDate,
    note: Option<&str>,
) -> SharingResult<GrantView> {
    let note = text("note", note.unwrap_or(""), false, MAX_TEXT)?;
    let mut tx = s.db.begin().await?;
    let g = grant_in(s, &mut tx, id).await?;
    if !may_see_grant(s, actor, &g).await? {
        return Err(SharingError::NotFound { what: "grant" });
    }
    if !may_manage_grant(s, actor, &g).await? {
        return Err(SharingError::Forbidden("only the provider's reviewers and the sharing authority renew a grant".into()));
    }
    if g.state == GrantState::Revoked {
        return Err(SharingError::State(format!("grant {id} is revoked; a revoked grant is not renewed (apply again)")));
    }
    if valid_to <= g.valid_to {
        return Err(invalid("valid_to", format!("{valid_to} does not extend the grant (valid to {})", g.valid_to)));
    }
    let today = s.today();
    if (valid_to - today.max(g.valid_from)).num_days() > MAX_PERIOD_DAYS {
        return Err(invalid("valid_to", "a grant runs at most 5 years ahead"));
    }
    // The resource must still be published: a withdrawn resource is not renewed.
    published(&mut tx, &g.resource_code).await?;
    let now = s.clock.now_ms();
    sqlx::query("UPDATE sharing_grants SET valid_to = $1, renewed_at = $2, renewed_by = $3 WHERE id = $4")
        .bind(valid_to.to_string())
        .bind(now)
        .bind(&ctx.actor)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit(
        &mut tx,
        ctx,
        "grant.renew",
        "sharing_grant",
        id,
        g.provider_department_id,
        json!({"previous_valid_to": g.valid_to, "valid_to": valid_to, "note": note}),
    )
    .await?;
    let msg = format!("{} 的授权 {id} 已续期至 {valid_to}", g.resource_name);
    notify(&mut tx, g.consumer_department_id, "grant_renewed", "sharing_grant", id, &msg, None, &format!("renewed:{id}:{valid_to}"), now)
        .await?;
    let view = grant_in(s, &mut tx, id).await?;
    commit_grants_changed(s, tx).await?;
    Ok(view)
}

/// The grants in force today for a consumer and a resource: what every data access is checked against
/// (R-REQ-5, R-EX-1). Revoked, expired and not yet valid grants are not returned.
pub async fn grants_in_force(s: &Sharing, consumer: DepartmentId, resource_code: &str) -> SharingResult<Vec<GrantView>> {
    let today = s.today().to_string();
    let rows = sqlx::query(&format!(
        "{GRANT_SQL} WHERE g.consumer_department_id = $1 AND g.resource_code = $2 AND g.status = 'active' AND g.valid_from <= $3 AND g.valid_to >= $3 ORDER BY g.id"
    ))
    .bind(consumer.0)
    .bind(resource_code)
    .bind(&today)
    .fetch_all(s.db.pool())
    .await?;
    let today = s.today();
    rows.iter().map(|r| grant_from_row(r, today)).collect()
}

// ------------------------------------------------------------------ inbox and notices

/// One thing waiting for the caller's department.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct InboxItem {
    /// `answer` (待答复), `negotiation`, `coordination`, `leading_group` (待办理), `escalate` (refused: the
    /// consumer may escalate), `grant_expiring`, `overdue` (the authority's list).
    pub kind: String,
    pub title: String,
    pub request_id: Option<i64>,
    pub grant_id: Option<i64>,
    pub resource_code: String,
    pub resource_name: String,
    /// The other party.
    pub counterpart: String,
    pub due_on: Option<NaiveDate>,
    pub overdue: bool,
    /// Working days left until the due date (negative when overdue).
    pub workdays_left: Option<i64>,
}

/// 提醒: a notice to a department.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Notification {
    pub id: i64,
    pub department_id: i64,
    /// request, subscribed, approved, rejected, withdrawn, escalation, message, reminder, overdue,
    /// grant_revoked, grant_renewed, grant_expiring, grant_expired.
    pub kind: String,
    pub target_kind: String,
    pub target_id: String,
    pub message: String,
    pub due_on: Option<NaiveDate>,
    pub created_at_ms: i64,
    pub read: bool,
}

/// What waits for the caller: its department's work with due dates, the authority's overdue list, and
/// unread notices.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Inbox {
    pub today: NaiveDate,
    pub waiting: Vec<InboxItem>,
    /// Every overdue open request (the authority and auditors only; empty for others).
    pub overdue: Vec<InboxItem>,
    pub notifications: Vec<Notification>,
    pub unread: i64,
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

/// The caller's inbox.
pub async fn inbox(s: &Sharing, actor: &Principal) -> SharingResult<Inbox> {
    let today = s.today();
    let mut waiting = Vec::new();
    let owned = list_requests(s, actor, &RequestFilter { side: Some(Side::Owner), limit: 1000, ..Default::default() }).await?;
    for r in owned.iter().rev() {
        if !p_in(actor, r.owner_department_id) {
            continue;
        }
        let kind = match r.stage {
            Stage::Answer => "answer",
            Stage::Negotiation => "negotiation",
            Stage::Coordination => "coordination",
            Stage::LeadingGroup => "leading_group",
        };
        let counterpart = if r.stage == Stage::Answer || r.stage == Stage::Negotiation { &r.consumer_name } else { &r.provider_name };
        waiting.push(inbox_item(s, today, kind, r, counterpart));
    }
    let refused = list_requests(
        s,
        actor,
        &RequestFilter { side: Some(Side::Consumer), status: Some(RequestStatus::Rejected), limit: 200, ..Default::default() },
    )
    .await?;
    for r in refused.iter().filter(|r| r.next_stage.is_some()) {
        waiting.push(inbox_item(s, today, "escalate", r, &r.provider_name));
    }
    let horizon = today.checked_add_days(chrono::Days::new(s.deadlines.expiry_notice_days as u64)).unwrap_or(today);
    let grants = list_grants(
        s,
        actor,
        &GrantFilter { side: Some(Side::Consumer), state: Some(GrantState::Active), limit: 1000, ..Default::default() },
    )
    .await?;
    for g in grants.iter().filter(|g| g.valid_to <= horizon && p_in(actor, g.consumer_department_id)) {
        waiting.push(InboxItem {
            kind: "grant_expiring".into(),
            title: format!("授权 {} 将于 {} 到期", g.id, g.valid_to),
            request_id: g.request_id,
            grant_id: Some(g.id),
            resource_code: g.resource_code.clone(),
            resource_name: g.resource_name.clone(),
            counterpart: g.provider_name.clone(),
            due_on: Some(g.valid_to),
            overdue: false,
            workdays_left: workdays_left(s, today, g.valid_to),
        });
    }
    waiting.sort_by_key(|i| (!i.overdue, i.due_on));
    let wide = sees_all(s, actor).await?;
    let overdue = if wide {
        list_requests(s, actor, &RequestFilter { overdue: true, limit: 1000, ..Default::default() })
            .await?
            .iter()
            .rev()
            .map(|r| inbox_item(s, today, "overdue", r, &r.consumer_name))
            .collect()
    } else {
        Vec::new()
    };
    let notifications = notifications(s, actor, 50).await?;
    let unread = inbox_unread(&s.db, actor).await?;
    Ok(Inbox { today, waiting, overdue, notifications, unread })
}

/// How many notices of the caller's department are unread.
pub async fn inbox_unread(db: &Db, actor: &Principal) -> SharingResult<i64> {
    let Some(d) = actor.department_id else { return Ok(0) };
    Ok(sqlx::query("SELECT COUNT(*) FROM notifications WHERE department_id = $1 AND read_at IS NULL")
        .bind(d.0)
        .fetch_one(db.pool())
        .await?
        .try_get(0)?)
}

fn p_in(p: &Principal, d: i64) -> bool {
    p.department_id == Some(DepartmentId(d)) || p.roles.iter().any(|r| r.department_id.0 == d)
}

/// The latest notices of the caller's department.
pub async fn notifications(s: &Sharing, actor: &Principal, limit: i64) -> SharingResult<Vec<Notification>> {
    let Some(d) = actor.department_id else { return Ok(Vec::new()) };
    let rows = sqlx::query(&format!(
        "SELECT id, department_id, kind, target_kind, target_id, message, due_on, created_at, read_at FROM notifications \
         WHERE department_id = $1 ORDER BY id DESC LIMIT {}",
        limit.clamp(1, 500)
    ))
    .bind(d.0)
    .fetch_all(s.db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Notification {
                id: r.try_get("id")?,
                department_id: r.try_get("department_id")?,
                kind: r.try_get("kind")?,
                target_kind: r.try_get("target_kind")?,
                target_id: r.try_get("target_id")?,
                message: r.try_get("message")?,
                due_on: shutong_store::parse_optional_date_column(r, "notifications", "due_on")?,
                created_at_ms: r.try_get("created_at")?,
                read: r.try_get::<Option<i64>, _>("read_at")?.is_some(),
            })
        })
        .collect()
}

/// Marks the caller's department's notices read (all, or those up to an ID). Returns how many.
pub async fn mark_read(s: &Sharing, actor: &Principal, up_to: Option<i64>) -> SharingResult<u64> {
    let Some(d) = actor.department_id else { return Ok(0) };
    let done = sqlx::query("UPDATE notifications SET read_at = $1 WHERE department_id = $2 AND read_at IS NULL AND id <= $3")
        .bind(s.clock.now_ms())
        .bind(d.0)
        .bind(up_to.unwrap_or(i64::MAX))
        .execute(s.db.pool())
        .await?;
    Ok(done.rows_affected())
}

/// What one deadline sweep did.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct SweepReport {
    pub today: NaiveDate,
    /// Stages that became overdue (each is recorded once in the audit trail).
    pub overdue: usize,
    pub reminders: usize,
    pub grants_expiring: usize,
    pub grants_expired: usize,
}

/// 逾期与提醒 (R-REQ-3): finds open stages past their due date (told to the owner, the consumer and the
/// authority, and recorded once), reminds owners of deadlines within `reminder` working days, and tells
/// grant holders of expiries. Idempotent: each notice is written once. Platform administrators (and the
/// server's own schedule, as an operator) only.
pub async fn sweep(s: &Sharing, actor: &Principal) -> SharingResult<SweepReport> {
    if !actor.is_platform_admin() {
        return Err(SharingError::Forbidden("only platform administrators run the deadline sweep".into()));
    }
    let today = s.today();
    let now = s.clock.now_ms();
    let mut report = SweepReport { today, ..Default::default() };
    let open =
        sqlx::query(&format!("{REQUEST_SQL} WHERE q.status IN ('pending', 'negotiating', 'coordinating', 'leading_group') ORDER BY q.id"))
            .fetch_all(s.db.pool())
            .await?;
    let authorities: Vec<i64> = sqlx::query("SELECT id FROM departments WHERE kind = $1 ORDER BY id")
        .bind(DepartmentKind::SharingAuthority.as_str())
        .fetch_all(s.db.pool())
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ctx = AuditContext::system("deadline-sweep");
    for row in &open {
        let r = request_from_row(row, today)?;
        let stage = r.stage;
        if r.overdue {
            let mut tx = s.db.begin().await?;
            let msg = format!("{} 对 {} 的{}已逾期（应于 {} 前办理）", r.owner_name, r.resource_name, stage.label_zh(), r.stage_due_on);
            let first = notify(
                &mut tx,
                r.owner_department_id,
                "overdue",
                "sharing_request",
                r.id,
                &msg,
                Some(r.stage_due_on),
                &format!("overdue:{}:{stage}:owner", r.id),
                now,
            )
            .await?;
            if first {
                notify(
                    &mut tx,
                    r.consumer_department_id,
                    "overdue",
                    "sharing_request",
                    r.id,
                    &msg,
                    Some(r.stage_due_on),
                    &format!("overdue:{}:{stage}:consumer", r.id),
                    now,
                )
                .await?;
                for a in &authorities {
                    if *a != r.owner_department_id {
                        notify(
                            &mut tx,
                            *a,
                            "overdue",
                            "sharing_request",
                            r.id,
                            &msg,
                            Some(r.stage_due_on),
                            &format!("overdue:{}:{stage}:authority:{a}", r.id),
                            now,
                        )
                        .await?;
                    }
                }
                audit(
                    &mut tx,
                    &ctx,
                    "request.overdue",
                    "sharing_request",
                    r.id,
                    r.owner_department_id,
                    json!({"stage": stage, "due_on": r.stage_due_on, "today": today}),
                )
                .await?;
                report.overdue += 1;
            }
            tx.commit().await?;
        } else if s.deadlines.reminder > 0 && workdays_left(s, today, r.stage_due_on).is_some_and(|n| n <= s.deadlines.reminder) {
            let msg = format!("{} 的{}将于 {} 到期，请及时办理", r.resource_name, stage.label_zh(), r.stage_due_on);
            let mut conn = s.db.pool().acquire().await.map_err(StoreError::from)?;
            if notify(
                &mut conn,
                r.owner_department_id,
                "reminder",
                "sharing_request",
                r.id,
                &msg,
                Some(r.stage_due_on),
                &format!("reminder:{}:{stage}", r.id),
                now,
            )
            .await?
            {
                report.reminders += 1;
            }
        }
    }
    let horizon = today.checked_add_days(chrono::Days::new(s.deadlines.expiry_notice_days as u64)).unwrap_or(today);
    let grants = sqlx::query(&format!("{GRANT_SQL} WHERE g.status = 'active' AND g.valid_to <= $1 ORDER BY g.id"))
        .bind(horizon.to_string())
        .fetch_all(s.db.pool())
        .await?;
    let mut conn = s.db.pool().acquire().await.map_err(StoreError::from)?;
    for row in &grants {
        let g = grant_from_row(row, today)?;
        if g.state == GrantState::Expired {
            let msg = format!("{} 的授权 {} 已于 {} 到期，访问已停止", g.resource_name, g.id, g.valid_to);
            if notify(
                &mut conn,
                g.consumer_department_id,
                "grant_expired",
                "sharing_grant",
                g.id,
                &msg,
                Some(g.valid_to),
                &format!("expired:{}:{}", g.id, g.valid_to),
                now,
            )
            .await?
            {
                report.grants_expired += 1;
            }
        } else {
            let msg = format!("{} 的授权 {} 将于 {} 到期，如需继续使用请联系提供部门续期", g.resource_name, g.id, g.valid_to);
            if notify(
                &mut conn,
                g.consumer_department_id,
                "grant_expiring",
                "sharing_grant",
                g.id,
                &msg,
                Some(g.valid_to),
                &format!("expiring:{}:{}", g.id, g.valid_to),
                now,
            )
            .await?
            {
                notify(
                    &mut conn,
                    g.provider_department_id,
                    "grant_expiring",
                    "sharing_grant",
                    g.id,
                    &msg,
                    Some(g.valid_to),
                    &format!("expiring:{}:{}:provider", g.id, g.valid_to),
                    now,
                )
                .await?;
                report.grants_expiring += 1;
            }
        }
    }
    Ok(report)
}

// ------------------------------------------------------------------ figures

/// A provider's answering record (第二十五条(三): counted against the provider).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProviderFigures {
    pub department_id: i64,
    pub department_name: String,
    /// Applications received (subscriptions excluded).
    pub received: i64,
    pub approved: i64,
    pub rejected: i64,
    pub withdrawn: i64,
    /// Still waiting for the provider's answer.
    pub pending: i64,
    /// Waiting past the due date now.
    pub overdue_now: i64,
    pub answered_on_time: i64,
    pub answered_late: i64,
    /// Subscriptions (无条件共享) served.
    pub subscriptions: i64,
    /// Requests in escalation (协商, 协调, 领导小组) now.
    pub in_escalation: i64,
    /// Grants in force today.
    pub grants_in_force: i64,
}

/// Sharing figures for the whole platform (or one department), per provider.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SharingStats {
    pub today: NaiveDate,
    pub providers: Vec<ProviderFigures>,
    pub totals: ProviderFigures,
}

/// Per-provider figures. The authority and auditors see every provider; others their own department.
pub async fn stats(s: &Sharing, actor: &Principal) -> SharingResult<SharingStats> {
    let wide = sees_all(s, actor).await?;
    let today = s.today().to_string();
    let rows = sqlx::query(
        "SELECT q.provider_department_id AS d, \
           SUM(CASE WHEN q.kind <> 'subscription' THEN 1 ELSE 0 END) AS received, \
           SUM(CASE WHEN q.kind <> 'subscription' AND q.status = 'approved' THEN 1 ELSE 0 END) AS approved, \
           SUM(CASE WHEN q.status = 'rejected' THEN 1 ELSE 0 END) AS rejected, \
           SUM(CASE WHEN q.status = 'withdrawn' THEN 1 ELSE 0 END) AS withdrawn, \
           SUM(CASE WHEN q.status = 'pending' THEN 1 ELSE 0 END) AS pending, \
           SUM(CASE WHEN q.status = 'pending' AND q.stage_due_on < $1 THEN 1 ELSE 0 END) AS overdue_now, \
           SUM(CASE WHEN q.kind = 'application' AND q.answered_on IS NOT NULL AND q.answered_on <= q.due_on THEN 1 ELSE 0 END) AS on_time, \
           SUM(CASE WHEN q.kind = 'application' AND ((q.answered_on IS NOT NULL AND q.answered_on > q.due_on) OR (q.answered_on IS NULL AND q.status <> 'withdrawn' AND q.due_on < $1)) THEN 1 ELSE 0 END) AS late, \
           SUM(CASE WHEN q.kind = 'subscription' THEN 1 ELSE 0 END) AS subscriptions, \
           SUM(CASE WHEN q.status IN ('negotiating', 'coordinating', 'leading_group') THEN 1 ELSE 0 END) AS escalation \
         FROM sharing_requests q GROUP BY q.provider_department_id",
    )
    .bind(&today)
    .fetch_all(s.db.pool())
    .await?;
    let grants = sqlx::query(
        "SELECT provider_department_id AS d, COUNT(*) AS n FROM sharing_grants WHERE status = 'active' AND valid_from <= $1 AND valid_to >= $1 GROUP BY provider_department_id",
    )
    .bind(&today)
    .fetch_all(s.db.pool())
    .await?;
    let names = sqlx::query("SELECT id, name FROM departments").fetch_all(s.db.pool()).await?;
    let name_of = |d: i64| names.iter().find(|r| r.get::<i64, _>(0) == d).map(|r| r.get::<String, _>(1)).unwrap_or_default();
    let n = |r: &AnyRow, c: &str| -> i64 { r.try_get::<Option<i64>, _>(c).ok().flatten().unwrap_or(0) };
    let blank = |d: i64, name: String| ProviderFigures {
        department_id: d,
        department_name: name,
        received: 0,
        approved: 0,
        rejected: 0,
        withdrawn: 0,
        pending: 0,
        overdue_now: 0,
        answered_on_time: 0,
        answered_late: 0,
        subscriptions: 0,
        in_escalation: 0,
        grants_in_force: 0,
    };
    let mut providers: Vec<ProviderFigures> = Vec::new();
    for r in &rows {
        let d: i64 = r.try_get("d")?;
        let mut f = blank(d, name_of(d));
        f.received = n(r, "received");
        f.approved = n(r, "approved");
        f.rejected = n(r, "rejected");
        f.withdrawn = n(r, "withdrawn");
        f.pending = n(r, "pending");
        f.overdue_now = n(r, "overdue_now");
        f.answered_on_time = n(r, "on_time");
        f.answered_late = n(r, "late");
        f.subscriptions = n(r, "subscriptions");
        f.in_escalation = n(r, "escalation");
        providers.push(f);
    }
    for r in &grants {
        let d: i64 = r.try_get("d")?;
        let count = n(r, "n");
        match providers.iter_mut().find(|f| f.department_id == d) {
            Some(f) => f.grants_in_force = count,
            None => {
                let mut f = blank(d, name_of(d));
                f.grants_in_force = count;
                providers.push(f);
            }
        }
    }
    if !wide {
        providers.retain(|f| p_in(actor, f.department_id));
    }
    providers.sort_by(|a, b| {
        b.overdue_now.cmp(&a.overdue_now).then(b.answered_late.cmp(&a.answered_late)).then(a.department_id.cmp(&b.department_id))
    });
    let mut totals = blank(0, "合计".into());
    for f in &providers {
        totals.received += f.received;
        totals.approved += f.approved;
        totals.rejected += f.rejected;
        totals.withdrawn += f.withdrawn;
        totals.pending += f.pending;
        totals.overdue_now += f.overdue_now;
        totals.answered_on_time += f.answered_on_time;
        totals.answered_late += f.answered_late;
        totals.subscriptions += f.subscriptions;
        totals.in_escalation += f.in_escalation;
        totals.grants_in_force += f.grants_in_force;
    }
    Ok(SharingStats { today: s.today(), providers, totals })
}

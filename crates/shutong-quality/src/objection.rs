//! 疑义校核 (办法 第十八条; R-Q-1): a consumer holding a grant objects to records of a dataset; from that moment
//! those records carry the 校核中 flag in every read, for every consumer, without holding up their use
//! (`shutong_exchange::flags`); the provider answers within a number of working days (已更正 by a batch that
//! changed the records, 确认无误 with an explanation, 不予受理 with a reason); the filer accepts the answer or
//! escalates it to the sharing authority, who rules. Overdue objections show to the authority and count
//! against the provider in the figures per department.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;
use shutong_audit::{Action, AuditContext, Change, NewAuditEvent};
use shutong_catalog::{ResourceCode, value_list};
use shutong_exchange::Exchange;
use shutong_exchange::flags::{self, Carried};
use shutong_identity::{DepartmentId, Principal, Role};
use shutong_sharing::{GrantId, acts_for};
use shutong_store::Row;

use crate::service::{QualityError, QualityResult, invalid, is_authority};

shutong_store::typed_id!(
    /// 疑义标识: one objection a consumer filed on records of a dataset (办法 第十八条 疑义校核).
    ObjectionId
);

value_list!(
    /// 疑义状态 (办法 第十八条): where an objection stands.
    ObjectionState {
        /// 待核实: filed, waiting for the provider's answer; the records carry the 校核中 flag.
        Open => "open" / "待核实",
        /// 已答复: the provider answered; the filer accepts or escalates.
        Answered => "answered" / "已答复",
        /// 提请裁定: the filer disputes the answer; the sharing authority rules; the records are flagged again.
        Escalated => "escalated" / "提请裁定",
        /// 已办结: accepted, or ruled.
        Closed => "closed" / "已办结",
    }
);

value_list!(
    /// 核实结果: the provider's answer to an objection.
    ObjectionAnswer {
        /// 已更正: a batch changed the records (the answer is refused while they are as they were).
        Corrected => "corrected" / "已更正",
        /// 确认无误: the data is right, with an explanation.
        Confirmed => "confirmed" / "确认无误",
        /// 不予受理: not taken up, with a reason.
        Declined => "declined" / "不予受理",
    }
);

value_list!(
    /// 裁定结果: the sharing authority's ruling on an escalated objection.
    ObjectionRuling {
        /// 疑义成立: the provider answers again, within a new period.
        Upheld => "upheld" / "疑义成立",
        /// 疑义不成立: closed.
        Dismissed => "dismissed" / "疑义不成立",
    }
);

/// How objections are handled (`[quality]` in the configuration).
#[derive(Clone, Copy, Debug)]
pub struct ObjectionSettings {
    /// Working days the provider has to answer (default 5).
    pub answer_days: i64,
    /// The largest evidence file (default 10 MiB).
    pub evidence_max_bytes: usize,
}

impl Default for ObjectionSettings {
    fn default() -> Self {
        ObjectionSettings { answer_days: 5, evidence_max_bytes: 10 * 1024 * 1024 }
    }
}

/// 疑义原因: one of the reasons an objection gives, kept by the sharing authority.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectionReason {
    pub code: String,
    pub name: String,
    pub retired: bool,
}

/// A record an objection names.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectedRecord {
    /// The key as the trail records it (masked when the key item is sensitive).
    pub key: String,
}

/// 佐证材料: the evidence file of an objection.
#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub sm3: String,
    pub uploaded_at_ms: i64,
}

/// 数据疑义 (办法 第十八条): one objection and where it stands.
#[derive(Clone, Debug, Serialize)]
pub struct Objection {
    pub id: ObjectionId,
    pub resource_code: String,
    pub provider_department_id: i64,
    pub filer_department_id: i64,
    pub filed_by: String,
    pub grant_id: Option<i64>,
    pub reason: String,
    pub reason_name: String,
    pub description: String,
    /// The objected items (empty: the whole record).
    pub items: Vec<String>,
    pub records: Vec<ObjectedRecord>,
    pub state: ObjectionState,
    pub filed_at_ms: i64,
    /// The last working day of the provider's answer.
    pub due_on: NaiveDate,
    /// Waiting for the provider's answer after `due_on`.
    pub overdue: bool,
    pub answer: Option<ObjectionAnswer>,
    pub answer_note: Option<String>,
    pub answered_at_ms: Option<i64>,
    pub answered_by: Option<String>,
    /// The batch that corrected the records (已更正).
    pub corrected_batch: Option<i64>,
    pub escalated_at_ms: Option<i64>,
    pub escalation_note: Option<String>,
    pub ruling: Option<ObjectionRuling>,
    pub ruling_note: Option<String>,
    pub ruled_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
    pub evidence: Option<Evidence>,
}

/// An objection to file.
#[derive(Clone, Debug)]
pub struct NewObjection {
    pub resource: ResourceCode,
    /// Which grant, when several are in force.
    pub grant: Option<GrantId>,
    /// The records' keys (1–100).
    pub keys: Vec<String>,
    /// The objected items (none: the whole record).
    pub items: Vec<String>,
    pub reason: String,
    pub description: String,
}

/// Which objections a list shows.
#[derive(Clone, Debug, Default)]
pub struct ObjectionFilter {
    /// `filed`: the viewer's department filed them; `received`: on its data; none: every one the viewer sees.
    pub scope: Option<ObjectionScope>,
    pub state: Option<ObjectionState>,
    pub overdue: bool,
    pub resource: Option<ResourceCode>,
}

value_list!(
    /// Whose objections a list shows.
    ObjectionScope {
        Filed => "filed" / "本部门提出",
        Received => "received" / "本部门待核实",
    }
);

/// An objection in a provider's queue, with the use of its dataset (what ranks the queue).
#[derive(Clone, Debug, Serialize)]
pub struct QueuedObjection {
    #[serde(flatten)]
    pub objection: Objection,
    pub grants_in_force: i64,
    pub calls_30_days: i64,
}

/// 疑义处理情况 of one provider department.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ObjectionFigures {
    pub department_id: i64,
    pub filed: i64,
    pub open: i64,
    pub overdue: i64,
    pub answered: i64,
    pub corrected: i64,
    pub confirmed: i64,
    pub declined: i64,
    /// Median hours from filing to the provider's answer (受理 and 答复).
    pub median_hours_to_answer: Option<f64>,
    /// Median hours from filing to closing.
    pub median_hours_to_close: Option<f64>,
    /// Answers that found a real error (已更正) among all answers, percent.
    pub real_error_percent: Option<f64>,
}

fn text(field: &str, v: &str, max: usize) -> QualityResult<String> {
    let v = v.trim();
    if v.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(invalid(field, format!("must be 1 to {max} characters")));
    }
    Ok(v.to_string())
}

/// Who answers objections for a provider: its administrators, reviewers, catalog editors and those who load
/// its data.
fn answers_for(p: &Principal, provider: DepartmentId) -> bool {
    p.has_role_in(Role::DepartmentAdmin, provider)
        || p.has_role_in(Role::Reviewer, provider)
        || p.has_role_in(Role::CatalogEditor, provider)
        || shutong_exchange::may_load(p, provider)
}

/// Whether the viewer sees an objection: its filer's and its provider's people, and the sharing authority.
async fn sees(ex: &Exchange, p: &Principal, o: &Objection) -> QualityResult<bool> {
    let mine = |d: i64| p.department_id == Some(DepartmentId(d));
    Ok(mine(o.filer_department_id) || mine(o.provider_department_id) || is_authority(ex, p).await?)
}

// ------------------------------------------------------------------ reasons

/// The reasons an objection may give, in order, retired ones included (marked).
pub async fn objection_reasons(ex: &Exchange) -> QualityResult<Vec<ObjectionReason>> {
    let rows = sqlx::query("SELECT code, name, retired_at FROM objection_reasons ORDER BY position, code").fetch_all(ex.db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(ObjectionReason {
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                retired: r.try_get::<Option<i64>, _>("retired_at")?.is_some(),
            })
        })
        .collect()
}

/// Adds, renames, retires or restores a reason: the sharing authority only. Audited
/// `quality.objection_reason_update`.
pub async fn set_objection_reason(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    code: &str,
    name: &str,
    retired: bool,
) -> QualityResult<ObjectionReason> {
    if !is_authority(ex, actor).await? {
        return Err(QualityError::Forbidden("the reasons of objections are the sharing authority's to keep".into()));
    }
    if code.is_empty() || code.len() > 32 || !code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(invalid("code", format!("'{code}' must be 1 to 32 lower-case letters, digits or underscores")));
    }
    let name = text("name", name, 20)?;
    let now = ex.sharing.clock.now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    let position: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) + 1 FROM objection_reasons").fetch_one(&mut **change.tx()).await?;
    sqlx::query(
        "INSERT INTO objection_reasons (code, name, position, retired_at, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (code) DO UPDATE SET name = excluded.name, retired_at = excluded.retired_at, updated_at = excluded.updated_at, \
         updated_by = excluded.updated_by",
    )
    .bind(code)
    .bind(&name)
    .bind(position)
    .bind(retired.then_some(now))
    .bind(now)
    .bind(&ctx.actor)
    .execute(&mut **change.tx())
    .await?;
    change
        .record(NewAuditEvent {
            action: Action::ObjectionReasonUpdate,
            target_kind: "objection_reason",
            target_id: code.to_string(),
            department_id: None,
            detail: json!({"name": name, "retired": retired}),
        })
        .await?;
    change.commit().await?;
    Ok(ObjectionReason { code: code.to_string(), name, retired })
}

// ------------------------------------------------------------------ reading

const COLUMNS: &str = "o.id, o.resource_code, o.provider_department_id, o.filer_department_id, o.filed_by, o.grant_id, o.reason, \
    COALESCE(r.name, o.reason) AS reason_name, o.description, o.items, o.state, o.filed_at, o.due_on, o.answer, o.answer_note, \
    o.answered_at, o.answered_by, o.corrected_batch, o.escalated_at, o.escalation_note, o.ruling, o.ruling_note, o.ruled_at, \
    o.closed_at, e.file_name, e.content_type, e.size, e.sm3, e.uploaded_at";

const FROM: &str =
    "FROM objections o LEFT JOIN objection_reasons r ON r.code = o.reason LEFT JOIN objection_evidence e ON e.objection_id = o.id";

fn decode(r: &shutong_store::AnyRow, today: NaiveDate) -> QualityResult<Objection> {
    let bad = |column: &'static str, v: &str| QualityError::Store(shutong_store::StoreError::decode("objections", column, v));
    let state: String = r.try_get("state")?;
    let state = ObjectionState::parse(&state).ok_or_else(|| bad("state", &state))?;
    let due: String = r.try_get("due_on")?;
    let due_on = due.parse::<NaiveDate>().map_err(|_| bad("due_on", &due))?;
    let items: String = r.try_get("items")?;
    let answer: Option<String> = r.try_get("answer")?;
    let ruling: Option<String> = r.try_get("ruling")?;
    let evidence = match r.try_get::<Option<String>, _>("file_name")? {
        Some(file_name) => Some(Evidence {
            file_name,
            content_type: r.try_get("content_type")?,
            size: r.try_get("size")?,
            sm3: r.try_get("sm3")?,
            uploaded_at_ms: r.try_get("uploaded_at")?,
        }),
        None => None,
    };
    Ok(Objection {
        id: ObjectionId(r.try_get("id")?),
        resource_code: r.try_get("resource_code")?,
        provider_department_id: r.try_get("provider_department_id")?,
        filer_department_id: r.try_get("filer_department_id")?,
        filed_by: r.try_get("filed_by")?,
        grant_id: r.try_get("grant_id")?,
        reason: r.try_get("reason")?,
        reason_name: r.try_get("reason_name")?,
        description: r.try_get("description")?,
        items: serde_json::from_str(&items).map_err(|_| bad("items", &items))?,
        records: Vec::new(),
        overdue: state == ObjectionState::Open && today > due_on,
        state,
        filed_at_ms: r.try_get("filed_at")?,
        due_on,
        answer: answer.as_deref().map(|a| ObjectionAnswer::parse(a).ok_or_else(|| bad("answer", a))).transpose()?,
        answer_note: r.try_get("answer_note")?,
        answered_at_ms: r.try_get("answered_at")?,
        answered_by: r.try_get("answered_by")?,
        corrected_batch: r.try_get("corrected_batch")?,
        escalated_at_ms: r.try_get("escalated_at")?,
        escalation_note: r.try_get("escalation_note")?,
        ruling: ruling.as_deref().map(|a| ObjectionRuling::parse(a).ok_or_else(|| bad("ruling", a))).transpose()?,
        ruling_note: r.try_get("ruling_note")?,
        ruled_at_ms: r.try_get("ruled_at")?,
        closed_at_ms: r.try_get("closed_at")?,
        evidence,
    })
}

async fn records_of(on: &shutong_store::Db, id: ObjectionId) -> QualityResult<Vec<(String, String, String)>> {
    Ok(sqlx::query_as("SELECT stored_key, shown_key, digest FROM objection_records WHERE objection_id = $1 ORDER BY position")
        .bind(id.0)
        .fetch_all(on.pool())
        .await?)
}

async fn load(ex: &Exchange, id: ObjectionId) -> QualityResult<Objection> {
    let sql = format!("SELECT {COLUMNS} {FROM} WHERE o.id = $1");
    let row = sqlx::query(&sql).bind(id.0).fetch_optional(ex.db.pool()).await?.ok_or(QualityError::NotFound { what: "objection" })?;
    let mut o = decode(&row, ex.sharing.today())?;
    o.records = records_of(&ex.db, id).await?.into_iter().map(|(_, key, _)| ObjectedRecord { key }).collect();
    Ok(o)
}

/// One objection, if the viewer sees it (its filer's and provider's people, the sharing authority).
pub async fn objection(ex: &Exchange, viewer: &Principal, id: ObjectionId) -> QualityResult<Objection> {
    let o = load(ex, id).await?;
    if !sees(ex, viewer, &o).await? {
        return Err(QualityError::NotFound { what: "objection" });
    }
    Ok(o)
}

/// The objections the viewer sees, newest first (at most 500); `received` lists the provider's queue,
/// ranked by impact (grants in force on the dataset, then its calls over 30 days), overdue first.
pub async fn objections(ex: &Exchange, viewer: &Principal, f: &ObjectionFilter) -> QualityResult<Vec<QueuedObjection>> {
    let authority = is_authority(ex, viewer).await?;
    let mut sql = format!("SELECT {COLUMNS} {FROM} WHERE 1 = 1");
    let mut params: Vec<String> = Vec::new();
    let mut bind = |v: String, sql: &mut String, clause: &str| {
        params.push(v);
        sql.push_str(&clause.replace('?', &format!("${}", params.len())));
    };
    let dept = viewer.department_id.map(|d| d.0.to_string()).unwrap_or_else(|| "-1".into());
    match f.scope {
        Some(ObjectionScope::Filed) => bind(dept, &mut sql, " AND o.filer_department_id = CAST(? AS BIGINT)"),
        Some(ObjectionScope::Received) => bind(dept, &mut sql, " AND o.provider_department_id = CAST(? AS BIGINT)"),
        None if authority => {}
        None => {
            bind(dept.clone(), &mut sql, " AND (o.filer_department_id = CAST(? AS BIGINT)");
            bind(dept, &mut sql, " OR o.provider_department_id = CAST(? AS BIGINT))");
        }
    }
    if let Some(s) = f.state {
        bind(s.as_str().to_string(), &mut sql, " AND o.state = ?");
    }
    if f.overdue {
        bind(ex.sharing.today().to_string(), &mut sql, " AND o.state = 'open' AND o.due_on < ?");
    }
    if let Some(r) = &f.resource {
        bind(r.as_str().to_string(), &mut sql, " AND o.resource_code = ?");
    }
    sql.push_str(" ORDER BY o.id DESC LIMIT 500");
    let mut q = sqlx::query(&sql);
    for p in &params {
        q = q.bind(p.as_str());
    }
    let rows = q.fetch_all(ex.db.pool()).await?;
    let today = ex.sharing.today();
    let mut use_of: BTreeMap<String, shutong_exchange::figures::ResourceUse> = BTreeMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut o = decode(r, today)?;
        o.records = records_of(&ex.db, o.id).await?.into_iter().map(|(_, key, _)| ObjectedRecord { key }).collect();
        let u = match use_of.get(&o.resource_code) {
            Some(u) => *u,
            None => {
                let u = shutong_exchange::figures::resource_use(ex, &resource_of(&o)?).await?;
                use_of.insert(o.resource_code.clone(), u);
                u
            }
        };
        out.push(QueuedObjection { objection: o, grants_in_force: u.grants_in_force, calls_30_days: u.calls_30_days });
    }
    if f.scope == Some(ObjectionScope::Received) {
        out.sort_by_key(|q| {
            let waiting = matches!(q.objection.state, ObjectionState::Open | ObjectionState::Escalated);
            (!waiting, !q.objection.overdue, std::cmp::Reverse((q.grants_in_force, q.calls_30_days)), std::cmp::Reverse(q.objection.id.0))
        });
    }
    Ok(out)
}

/// The evidence file of an objection: its name, type and bytes.
pub async fn evidence(ex: &Exchange, viewer: &Principal, id: ObjectionId) -> QualityResult<(Evidence, Vec<u8>)> {
    let o = objection(ex, viewer, id).await?;
    let e = o.evidence.ok_or(QualityError::NotFound { what: "evidence" })?;
    let bytes: Vec<u8> =
        sqlx::query_scalar("SELECT content FROM objection_evidence WHERE objection_id = $1").bind(id.0).fetch_one(ex.db.pool()).await?;
    Ok((e, bytes))
}

// ------------------------------------------------------------------ changes

/// After a change of flags: this process forgets its snapshot, and the records go to the change feed again
/// (by the runner's job [`FLAG_FEED_JOB`] when a batch holds the dataset).
async fn flags_changed(ex: &Exchange, resource: &ResourceCode) {
    let code = resource.as_str();
    flags::forget(ex, resource);
    let again = match flags::carry_to_feed(ex, resource).await {
        Ok(Carried::Done(_)) => false,
        Ok(Carried::Busy) => true,
        Err(e) => {
            tracing::warn!(error = %e, resource = code, "carrying flags to the change feed failed; the runner tries again");
            true
        }
    };
    if again {
        let at = ex.sharing.clock.now_ms() + 1000;
        if let Err(e) = shutong_store::jobs::request(&ex.db, FLAG_FEED_JOB, code, &json!({}), at).await {
            tracing::warn!(error = %e, resource = code, "asking for the flags' feed job failed");
        }
    }
}

/// The runner's job that carries changed flags to a dataset's change feed (key: the resource code).
pub const FLAG_FEED_JOB: &str = "quality.flag_feed";

/// The job's work: `Err` while a batch holds the dataset (the runner tries again).
pub async fn carry_flags(ex: &Exchange, resource: &ResourceCode) -> Result<(), String> {
    match flags::carry_to_feed(ex, resource).await {
        Ok(Carried::Done(_)) => Ok(()),
        Ok(Carried::Busy) => Err("a batch holds the dataset".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The dataset of an objection (stored valid).
fn resource_of(o: &Objection) -> QualityResult<ResourceCode> {
    ResourceCode::parse(&o.resource_code)
        .map_err(|_| QualityError::Store(shutong_store::StoreError::decode("objections", "resource_code", &o.resource_code)))
}

fn event(o: &Objection, action: Action, detail: serde_json::Value) -> NewAuditEvent<'static> {
    NewAuditEvent { action, target_kind: "objection", target_id: o.id.0.to_string(), department_id: Some(o.provider_department_id), detail }
}

/// Files an objection (疑义): a consumer holding a grant, on records it may see (otherwise 404) and items its
/// grant delivers (otherwise 403 naming the item), with a reason in force. The records carry the 校核中 flag
/// from the commit on. Audited `quality.objection_file`.
pub async fn file_objection(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    settings: &ObjectionSettings,
    new: &NewObjection,
) -> QualityResult<Objection> {
    let Some(filer) = actor.department_id.filter(|d| acts_for(actor, *d)) else {
        return Err(QualityError::Forbidden("objections are filed by the staff of a department holding a grant".into()));
    };
    if new.keys.is_empty() || new.keys.len() > 100 {
        return Err(invalid("keys", "name 1 to 100 records by their keys"));
    }
    if new.items.len() > 200 {
        return Err(invalid("items", "at most 200 items"));
    }
    for (i, item) in new.items.iter().enumerate() {
        if new.items[..i].contains(item) {
            return Err(invalid(&format!("items[{i}]"), format!("'{item}' is named twice")));
        }
    }
    let description = text("description", &new.description, 2000)?;
    let reasons = objection_reasons(ex).await?;
    let reason = reasons.iter().find(|r| r.code == new.reason && !r.retired).ok_or_else(|| {
        let open: Vec<&str> = reasons.iter().filter(|r| !r.retired).map(|r| r.code.as_str()).collect();
        invalid("reason", format!("'{}' is not one of {}", new.reason, open.join(", ")))
    })?;
    let published = shutong_exchange::published(ex, &new.resource).await?;
    if published.provider == filer {
        return Err(QualityError::Forbidden("the provider corrects its own data; objections come from the departments that use it".into()));
    }
    let located = flags::locate(ex, actor, &new.resource, new.grant, &new.keys, &new.items).await?;
    let filing = Filing {
        resource: &new.resource,
        provider: published.provider,
        filer,
        grant: located.grant_id,
        origin: "consumer",
        reason: &reason.code,
        description: &description,
        items: &new.items,
        records: &located.records,
    };
    create(ex, ctx, settings, filing).await
}

/// An objection as it is written.
struct Filing<'a> {
    resource: &'a ResourceCode,
    provider: DepartmentId,
    filer: DepartmentId,
    grant: Option<i64>,
    /// `consumer` (filed under a grant) or `consistency` (from a 一数一源 conflict).
    origin: &'static str,
    reason: &'a str,
    description: &'a str,
    items: &'a [String],
    records: &'a [flags::LocatedRecord],
}

/// Writes an objection, its records and their flags in one unit of work, then carries the flags to the feed.
async fn create(ex: &Exchange, ctx: &AuditContext, settings: &ObjectionSettings, f: Filing<'_>) -> QualityResult<Objection> {
    let due_on = due(ex, ex.sharing.today(), settings)?;
    let now = ex.sharing.clock.now_ms();
    let code = f.resource.as_str();
    let mut change = Change::begin(&ex.db, ctx).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO objections (resource_code, provider_department_id, filer_department_id, filed_by, grant_id, origin, reason, \
         description, items, state, filed_at, due_on, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $11, $10) \
         RETURNING id",
    )
    .bind(code)
    .bind(f.provider.0)
    .bind(f.filer.0)
    .bind(&ctx.actor)
    .bind(f.grant)
    .bind(f.origin)
    .bind(f.reason)
    .bind(f.description)
    .bind(serde_json::to_string(f.items).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .bind(due_on.to_string())
    .fetch_one(&mut **change.tx())
    .await?;
    for (i, r) in f.records.iter().enumerate() {
        sqlx::query("INSERT INTO objection_records (objection_id, position, stored_key, shown_key, digest) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(i as i64)
            .bind(&r.stored_key)
            .bind(&r.shown_key)
            .bind(&r.digest)
            .execute(&mut **change.tx())
            .await?;
    }
    let stored: Vec<String> = f.records.iter().map(|r| r.stored_key.clone()).collect();
    flags::raise(change.tx(), f.resource, id, &stored, f.items).await?;
    let keys: Vec<&str> = f.records.iter().map(|r| r.shown_key.as_str()).collect();
    change
        .record(NewAuditEvent {
            action: Action::ObjectionFile,
            target_kind: "objection",
            target_id: id.to_string(),
            department_id: Some(f.provider.0),
            detail: json!({"resource": code, "keys": keys, "items": f.items, "reason": f.reason, "due_on": due_on.to_string(),
                "filer_department_id": f.filer.0, "origin": f.origin}),
        })
        .await?;
    change.commit().await?;
    flags_changed(ex, f.resource).await;
    load(ex, ObjectionId(id)).await
}

value_list!(
    /// Which side of a 一数一源 conflict an objection is filed against.
    ConflictSide {
        /// The authoritative dataset (权威来源).
        Authoritative => "authoritative" / "权威来源",
        /// The dataset reconciled with it.
        Resource => "resource" / "比对数据集",
    }
);

/// The sides of a reconciliation's conflicts the viewer may object to (the portal shows those forms only).
pub async fn conflict_sides(
    ex: &Exchange,
    viewer: &Principal,
    run: &crate::consistency::ConsistencyRun,
) -> QualityResult<Vec<ConflictSide>> {
    let Some(d) = viewer.department_id else { return Ok(Vec::new()) };
    let authority = is_authority(ex, viewer).await?;
    let mut out = Vec::new();
    for (side, provider, other) in [
        (ConflictSide::Authoritative, run.authoritative_department_id, run.provider_department_id),
        (ConflictSide::Resource, run.provider_department_id, run.authoritative_department_id),
    ] {
        if (authority || acts_for(viewer, DepartmentId(other))) && d.0 != provider {
            out.push(side);
        }
    }
    Ok(out)
}

/// Turns a 一数一源 conflict into an objection against either side (its provider answers it like any other):
/// the sharing authority, or the people of the other side's provider. The record must still be there; the
/// objection names the conflicting item (the whole record for a missing key), with the reason 与权威来源不一致.
/// Audited `quality.objection_file`.
pub async fn object_to_conflict(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    settings: &ObjectionSettings,
    conflict: crate::consistency::ConflictId,
    side: ConflictSide,
    note: &str,
) -> QualityResult<Objection> {
    let (run, c, stored) = crate::consistency::conflict(ex, actor, conflict).await?;
    let (code, provider, other) = match side {
        ConflictSide::Authoritative => (&run.authoritative_code, run.authoritative_department_id, run.provider_department_id),
        ConflictSide::Resource => (&run.resource_code, run.provider_department_id, run.authoritative_department_id),
    };
    let Some(filer) = actor.department_id else {
        return Err(QualityError::Forbidden("objections are filed by the staff of a department".into()));
    };
    let authority = is_authority(ex, actor).await?;
    if !(authority || acts_for(actor, DepartmentId(other))) || filer.0 == provider {
        return Err(QualityError::Forbidden("a conflict is objected to by the sharing authority or the other side's provider".into()));
    }
    let resource = ResourceCode::parse(code)
        .map_err(|_| QualityError::Store(shutong_store::StoreError::decode("consistency_runs", "resource_code", code)))?;
    let digest = flags::current_record_digest(ex, &resource, &stored).await?.ok_or(QualityError::NotFound { what: "record" })?;
    let item = match (&c.item, side) {
        (Some(i), ConflictSide::Authoritative) => vec![i.clone()],
        (Some(i), ConflictSide::Resource) => run.items.iter().filter(|x| &x.item == i).map(|x| x.resource_item.clone()).collect(),
        (None, _) => Vec::new(),
    };
    let reasons = objection_reasons(ex).await?;
    let reason = if reasons.iter().any(|r| r.code == "authority" && !r.retired) { "authority" } else { "other" };
    let mut description = format!("一数一源比对 {}：{}（{}）", run.id.0, c.kind.label_zh(), c.key);
    if let (Some(a), Some(b)) = (&c.authoritative_value, &c.resource_value) {
        description.push_str(&format!("，权威来源为“{a}”，比对数据集为“{b}”"));
    }
    let note = note.trim();
    if note.chars().count() > 1000 {
        return Err(invalid("note", "must be 1 to 1000 characters"));
    }
    if !note.is_empty() {
        description.push_str(&format!("。{note}"));
    }
    let records = [flags::LocatedRecord { stored_key: stored, shown_key: c.key.clone(), digest }];
    let filing = Filing {
        resource: &resource,
        provider: DepartmentId(provider),
        filer,
        grant: None,
        origin: "consistency",
        reason,
        description: &description,
        items: &item,
        records: &records,
    };
    create(ex, ctx, settings, filing).await
}

fn due(ex: &Exchange, from: NaiveDate, settings: &ObjectionSettings) -> QualityResult<NaiveDate> {
    ex.sharing
        .calendar
        .add_workdays(from, settings.answer_days)
        .map(|(d, _)| d)
        .map_err(|e| QualityError::State(format!("working-day calendar: {e}")))
}

/// Attaches the evidence file (佐证材料) of an objection, replacing an earlier one: the filer's department,
/// until the objection is closed; at most `evidence_max_bytes` (413 beyond). Audited
/// `quality.objection_evidence`.
#[allow(clippy::too_many_arguments)]
pub async fn attach_evidence(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    settings: &ObjectionSettings,
    id: ObjectionId,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> QualityResult<Objection> {
    let o = objection(ex, actor, id).await?;
    if !acts_for(actor, DepartmentId(o.filer_department_id)) {
        return Err(QualityError::Forbidden("the evidence is the filer's to attach".into()));
    }
    if o.state == ObjectionState::Closed {
        return Err(QualityError::State("the objection is closed".into()));
    }
    if bytes.len() > settings.evidence_max_bytes {
        return Err(QualityError::TooLarge(format!("the evidence file is larger than {} bytes", settings.evidence_max_bytes)));
    }
    if bytes.is_empty() {
        return Err(invalid("file", "the evidence file is empty"));
    }
    let file_name = text("file_name", file_name, 200)?;
    if file_name.contains(['/', '\\']) || file_name.chars().any(char::is_control) {
        return Err(invalid("file_name", format!("'{file_name}' must be a plain file name")));
    }
    let content_type = match content_type.trim() {
        "" => "application/octet-stream".to_string(),
        t if t.len() > 100 || t.chars().any(char::is_control) => return Err(invalid("content_type", "must be a media type")),
        t => t.to_string(),
    };
    let sm3 = hex::encode(shutong_crypto::sm3(bytes));
    let now = ex.sharing.clock.now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    sqlx::query("DELETE FROM objection_evidence WHERE objection_id = $1").bind(id.0).execute(&mut **change.tx()).await?;
    sqlx::query(
        "INSERT INTO objection_evidence (objection_id, file_name, content_type, size, sm3, content, uploaded_at, uploaded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id.0)
    .bind(&file_name)
    .bind(&content_type)
    .bind(bytes.len() as i64)
    .bind(&sm3)
    .bind(bytes)
    .bind(now)
    .bind(&ctx.actor)
    .execute(&mut **change.tx())
    .await?;
    change.record(event(&o, Action::ObjectionEvidence, json!({"file_name": file_name, "size": bytes.len(), "sm3": sm3}))).await?;
    change.commit().await?;
    load(ex, id).await
}

/// The provider answers an open objection (核实答复): 已更正 when every objected record changed since it was
/// filed (or is gone), linked to the batch that did it; 确认无误 with an explanation; 不予受理 with a reason.
/// The flag is lowered. Audited `quality.objection_answer`.
pub async fn answer_objection(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    id: ObjectionId,
    answer: ObjectionAnswer,
    note: &str,
) -> QualityResult<Objection> {
    let o = objection(ex, actor, id).await?;
    if !answers_for(actor, DepartmentId(o.provider_department_id)) {
        return Err(QualityError::Forbidden("objections are answered by the provider's administrators, reviewers and data keepers".into()));
    }
    if o.state != ObjectionState::Open {
        return Err(QualityError::State(format!("the objection is {}: only an open one is answered", o.state.label_zh())));
    }
    let note = text("note", note, 2000)?;
    let code = resource_of(&o)?;
    let mut batch = None;
    if answer == ObjectionAnswer::Corrected {
        let records = records_of(&ex.db, id).await?;
        let stored: Vec<String> = records.iter().map(|(k, _, _)| k.clone()).collect();
        let now = flags::current_digests(ex, &code, &stored).await?;
        for ((_, shown, before), after) in records.iter().zip(&now) {
            if after.as_deref() == Some(before.as_str()) {
                return Err(QualityError::State(format!(
                    "record '{shown}' is as it was when the objection was filed: load the corrected data first"
                )));
            }
        }
        batch = shutong_exchange::figures::batch_committed_since(ex, &code, o.filed_at_ms).await?;
    }
    let now = ex.sharing.clock.now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    let updated = sqlx::query(
        "UPDATE objections SET state = 'answered', answer = $1, answer_note = $2, answered_at = $3, answered_by = $4, \
         corrected_batch = $5, updated_at = $3 WHERE id = $6 AND state = 'open'",
    )
    .bind(answer.as_str())
    .bind(&note)
    .bind(now)
    .bind(&ctx.actor)
    .bind(batch)
    .bind(id.0)
    .execute(&mut **change.tx())
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(QualityError::State("the objection changed meanwhile: read it again".into()));
    }
    flags::lower(change.tx(), &code, id.0).await?;
    change
        .record(event(
            &o,
            Action::ObjectionAnswer,
            json!({"answer": answer.as_str(), "note": note, "corrected_batch": batch,
            "late": o.overdue}),
        ))
        .await?;
    change.commit().await?;
    flags_changed(ex, &code).await;
    load(ex, id).await
}

/// The filer accepts the provider's answer (认可): closed. Audited `quality.objection_accept`.
pub async fn accept_answer(ex: &Exchange, actor: &Principal, ctx: &AuditContext, id: ObjectionId) -> QualityResult<Objection> {
    let o = objection(ex, actor, id).await?;
    if !acts_for(actor, DepartmentId(o.filer_department_id)) {
        return Err(QualityError::Forbidden("the answer is the filer's to accept".into()));
    }
    if o.state != ObjectionState::Answered {
        return Err(QualityError::State(format!("the objection is {}: only an answered one is accepted", o.state.label_zh())));
    }
    let now = ex.sharing.clock.now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    sqlx::query("UPDATE objections SET state = 'closed', closed_at = $1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id.0)
        .execute(&mut **change.tx())
        .await?;
    change.record(event(&o, Action::ObjectionAccept, json!({"answer": o.answer.map(|a| a.as_str())}))).await?;
    change.commit().await?;
    load(ex, id).await
}

/// The filer disputes the answer and asks the sharing authority to rule (提请裁定); the records are flagged
/// again meanwhile. Audited `quality.objection_escalate`.
pub async fn escalate_objection(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    id: ObjectionId,
    note: &str,
) -> QualityResult<Objection> {
    let o = objection(ex, actor, id).await?;
    if !acts_for(actor, DepartmentId(o.filer_department_id)) {
        return Err(QualityError::Forbidden("the answer is the filer's to dispute".into()));
    }
    if o.state != ObjectionState::Answered {
        return Err(QualityError::State(format!("the objection is {}: only an answered one is escalated", o.state.label_zh())));
    }
    let note = text("note", note, 2000)?;
    let now = ex.sharing.clock.now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    sqlx::query("UPDATE objections SET state = 'escalated', escalated_at = $1, escalation_note = $2, updated_at = $1 WHERE id = $3")
        .bind(now)
        .bind(&note)
        .bind(id.0)
        .execute(&mut **change.tx())
        .await?;
    let stored: Vec<String> = records_of(&ex.db, id).await?.into_iter().map(|(k, _, _)| k).collect();
    let code = resource_of(&o)?;
    flags::raise(change.tx(), &code, id.0, &stored, &o.items).await?;
    change.record(event(&o, Action::ObjectionEscalate, json!({"note": note}))).await?;
    change.commit().await?;
    flags_changed(ex, &code).await;
    load(ex, id).await
}

/// The sharing authority rules on an escalated objection (裁定): 疑义成立 sends it back to the provider with a
/// new period (the flag stays), 疑义不成立 closes it (the flag is lowered). Audited `quality.objection_rule`.
pub async fn rule_objection(
    ex: &Exchange,
    actor: &Principal,
    ctx: &AuditContext,
    settings: &ObjectionSettings,
    id: ObjectionId,
    ruling: ObjectionRuling,
    note: &str,
) -> QualityResult<Objection> {
    let o = objection(ex, actor, id).await?;
    if !is_authority(ex, actor).await? {
        return Err(QualityError::Forbidden("escalated objections are the sharing authority's to rule on".into()));
    }
    if o.state != ObjectionState::Escalated {
        return Err(QualityError::State(format!("the objection is {}: only an escalated one is ruled on", o.state.label_zh())));
    }
    let note = text("note", note, 2000)?;
    let code = resource_of(&o)?;
    let now = ex.sharing.clock.now_ms();
    let mut change = Change::begin(&ex.db, ctx).await?;
    match ruling {
        ObjectionRuling::Upheld => {
            let due_on = due(ex, ex.sharing.today(), settings)?;
            sqlx::query(
                "UPDATE objections SET state = 'open', ruling = $1, ruling_note = $2, ruled_at = $3, due_on = $4, updated_at = $3 WHERE id = $5",
            )
            .bind(ruling.as_str())
            .bind(&note)
            .bind(now)
            .bind(due_on.to_string())
            .bind(id.0)
            .execute(&mut **change.tx())
            .await?;
        }
        ObjectionRuling::Dismissed => {
            sqlx::query(
                "UPDATE objections SET state = 'closed', ruling = $1, ruling_note = $2, ruled_at = $3, closed_at = $3, updated_at = $3 WHERE id = $4",
            )
            .bind(ruling.as_str())
            .bind(&note)
            .bind(now)
            .bind(id.0)
            .execute(&mut **change.tx())
            .await?;
            flags::lower(change.tx(), &code, id.0).await?;
        }
    }
    change.record(event(&o, Action::ObjectionRule, json!({"ruling": ruling.as_str(), "note": note}))).await?;
    change.commit().await?;
    flags_changed(ex, &code).await;
    load(ex, id).await
}

// ------------------------------------------------------------------ figures

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    let x = if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 };
    Some((x * 10.0).round() / 10.0)
}

/// 疑义处理情况 per provider department: filed, open, overdue, the answers by kind, the median hours to the
/// answer and to closing, and the share of answers that found a real error. The sharing authority sees every
/// department; others their own.
pub async fn objection_figures(ex: &Exchange, viewer: &Principal) -> QualityResult<Vec<ObjectionFigures>> {
    let authority = is_authority(ex, viewer).await?;
    let rows = sqlx::query("SELECT provider_department_id, state, due_on, answer, filed_at, answered_at, closed_at FROM objections")
        .fetch_all(ex.db.pool())
        .await?;
    let today = ex.sharing.today().to_string();
    let mut by: BTreeMap<i64, (ObjectionFigures, Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for r in &rows {
        let dept: i64 = r.try_get("provider_department_id")?;
        if !authority && viewer.department_id != Some(DepartmentId(dept)) {
            continue;
        }
        let (f, to_answer, to_close) =
            by.entry(dept).or_insert_with(|| (ObjectionFigures { department_id: dept, ..Default::default() }, vec![], vec![]));
        let state: String = r.try_get("state")?;
        let due_on: String = r.try_get("due_on")?;
        let filed: i64 = r.try_get("filed_at")?;
        f.filed += 1;
        if state == "open" || state == "escalated" {
            f.open += 1;
        }
        if state == "open" && due_on < today {
            f.overdue += 1;
        }
        match r.try_get::<Option<String>, _>("answer")?.as_deref() {
            Some("corrected") => f.corrected += 1,
            Some("confirmed") => f.confirmed += 1,
            Some("declined") => f.declined += 1,
            _ => {}
        }
        if let Some(at) = r.try_get::<Option<i64>, _>("answered_at")? {
            f.answered += 1;
            to_answer.push((at - filed) as f64 / 3_600_000.0);
        }
        if let Some(at) = r.try_get::<Option<i64>, _>("closed_at")? {
            to_close.push((at - filed) as f64 / 3_600_000.0);
        }
    }
    Ok(by
        .into_values()
        .map(|(mut f, a, c)| {
            f.median_hours_to_answer = median(a);
            f.median_hours_to_close = median(c);
            f.real_error_percent = (f.answered > 0).then(|| ((f.corrected as f64 * 1000.0 / f.answered as f64).round()) / 10.0);
            f
        })
        .collect())
}

/// The items the viewer may name in an objection on this dataset: those its department's grant delivers;
/// none when it may not object (no grant, or the provider itself). The portal shows 数据纠错 when there are.
pub async fn objectable_items(ex: &Exchange, viewer: &Principal, resource: &ResourceCode) -> QualityResult<Vec<String>> {
    let Some(d) = viewer.department_id.filter(|d| acts_for(viewer, *d)) else { return Ok(Vec::new()) };
    let p = shutong_exchange::published(ex, resource).await?;
    if p.provider == d {
        return Ok(Vec::new());
    }
    Ok(flags::objectable_items(ex, viewer, resource).await?)
}

/// What the viewer may do with an objection now (the portal shows these forms and no others).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ObjectionActions {
    pub answer: bool,
    pub accept: bool,
    pub escalate: bool,
    pub rule: bool,
    pub attach: bool,
}

pub async fn objection_actions(ex: &Exchange, viewer: &Principal, o: &Objection) -> QualityResult<ObjectionActions> {
    let filer = acts_for(viewer, DepartmentId(o.filer_department_id));
    Ok(ObjectionActions {
        answer: o.state == ObjectionState::Open && answers_for(viewer, DepartmentId(o.provider_department_id)),
        accept: o.state == ObjectionState::Answered && filer,
        escalate: o.state == ObjectionState::Answered && filer,
        rule: o.state == ObjectionState::Escalated && is_authority(ex, viewer).await?,
        attach: o.state != ObjectionState::Closed && filer,
    })
}

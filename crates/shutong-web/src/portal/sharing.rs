//! 共享申请与授权 in the portal: apply from a resource page, my requests, the provider's queue with due dates,
//! escalation, grants, the inbox.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use chrono::NaiveDate;
use serde::Deserialize;
use shutong_catalog::SharingType;
use shutong_identity::DepartmentId;
use shutong_sharing::{
    self as sharing, AccessMethod, Approval, FilterOp, GrantFilter, GrantView, Purpose, RequestDetail, RequestFilter, RequestView,
    RowCondition, RowFilter, SharingError, Side,
};

use super::pages::{Flash, Layout, fmt_time, layout, render};
use super::{PortalSession, plain_error};
use crate::state::AppState;

fn back_with(to: &str, e: &SharingError) -> Response {
    super::errors::back(to, super::errors::sharing(e))
}

fn done(to: &str, ok: &str) -> Response {
    let q = serde_urlencoded::to_string([("ok", ok)]).unwrap_or_default();
    Redirect::to(&format!("{to}?{q}")).into_response()
}

/// A request in a list.
pub struct RequestRow {
    id: i64,
    resource_code: String,
    resource_name: String,
    kind: &'static str,
    consumer: String,
    provider: String,
    owner: String,
    status: &'static str,
    stage: &'static str,
    submitted_on: String,
    due_on: String,
    overdue: bool,
    open: bool,
}

fn row(r: &RequestView) -> RequestRow {
    RequestRow {
        id: r.id,
        resource_code: r.resource_code.clone(),
        resource_name: r.resource_name.clone(),
        kind: r.kind.label_zh(),
        consumer: r.consumer_name.clone(),
        provider: r.provider_name.clone(),
        owner: r.owner_name.clone(),
        status: r.status.label_zh(),
        stage: r.stage.label_zh(),
        submitted_on: r.submitted_on.to_string(),
        due_on: r.stage_due_on.to_string(),
        overdue: r.overdue,
        open: r.status.is_open(),
    }
}

#[derive(Template)]
#[template(path = "sharing_requests.html")]
struct RequestsPage {
    l: Layout,
    side: String,
    wide: bool,
    overdue_only: bool,
    /// The status chosen (its code; empty: any), and every status to choose from.
    status: String,
    statuses: Vec<(&'static str, &'static str)>,
    rows: Vec<RequestRow>,
    pager: super::pager::Pager,
    /// 答复情况 per provider: all of them for the authority, the caller's own otherwise.
    figures: Vec<sharing::ProviderFigures>,
}

#[derive(Deserialize, Default)]
pub struct ListParams {
    side: Option<String>,
    overdue: Option<String>,
    /// A request's status, or a grant's state (its code).
    status: Option<String>,
    /// Cursor: rows with a smaller number.
    before: Option<i64>,
    ok: Option<String>,
    error: Option<String>,
    /// The form field the error concerns (the service's name for it).
    field: Option<String>,
}

/// 共享申请: tabs 待我办理 / 我申请的 / 向我申请的 / 全部 (the authority), overdue marked.
pub async fn requests(State(state): State<AppState>, s: PortalSession, Query(p): Query<ListParams>) -> Response {
    let sh = state.sharing();
    let wide = s.principal.is_auditor() || shutong_catalog::is_authority(&state.db, &s.principal).await.unwrap_or(false);
    let side_s = p.side.clone().unwrap_or_else(|| if wide { "all".into() } else { "owner".into() });
    let side = Side::parse(&side_s);
    let overdue_only = p.overdue.is_some();
    let status_s = p.status.clone().unwrap_or_default();
    let status = match status_s.as_str() {
        "" => None,
        code => match sharing::RequestStatus::parse(code) {
            Some(st) => Some(st),
            None => {
                let e = SharingError::Validation { field: "status".into(), message: format!("unknown status '{code}'") };
                return back_with("/requests", &e);
            }
        },
    };
    let filter =
        RequestFilter { side, status, overdue: overdue_only, before: p.before, limit: super::pager::PAGE_SIZE, ..Default::default() };
    let list = match sharing::list_requests(&sh, &s.principal, &filter).await {
        Ok(list) => list,
        Err(e) => return back_with("/", &e),
    };
    let filters =
        [("side", side_s.clone()), ("status", status_s.clone()), ("overdue", if overdue_only { "1".to_string() } else { String::new() })];
    let pager = super::pager::Pager::by_key("/requests", &filters, "before", p.before, list.last().map(|r| r.id), list.len());
    let rows = list.iter().map(row).collect();
    let figures = match sharing::stats(&sh, &s.principal).await {
        Ok(st) => st.providers,
        Err(e) => return back_with("/", &e),
    };
    let page = RequestsPage {
        l: layout(&state, &s, "共享申请", "requests", Flash { ok: p.ok, error: p.error, field: p.field }).await,
        figures,
        side: side_s,
        wide,
        overdue_only,
        status: status_s,
        statuses: sharing::RequestStatus::ALL.iter().map(|st| (st.as_str(), st.label_zh())).collect(),
        rows,
        pager,
    };
    render(&page)
}

/// An item of the resource, as the forms show it.
pub struct ItemChoice {
    name: String,
    sharing: &'static str,
    not_shared: bool,
    checked: bool,
}

#[derive(Template)]
#[template(path = "sharing_new.html")]
struct NewPage {
    l: Layout,
    code: String,
    name: String,
    provider: String,
    sharing_label: &'static str,
    unconditional: bool,
    sharing_condition: String,
    permitted_usage: String,
    items: Vec<ItemChoice>,
    purposes: Vec<(&'static str, &'static str)>,
    methods: Vec<(&'static str, &'static str)>,
    today: String,
    default_to: String,
    due_preview: String,
    answer_workdays: i64,
}

#[derive(Deserialize, Default)]
pub struct NewParams {
    resource: String,
    ok: Option<String>,
    error: Option<String>,
    /// The form field the error concerns (the service's name for it).
    field: Option<String>,
}

/// 申请使用: the form, from a resource page.
pub async fn new_form(State(state): State<AppState>, s: PortalSession, Query(p): Query<NewParams>) -> Response {
    let Ok(code) = shutong_catalog::ResourceCode::parse(&p.resource) else {
        return plain_error(StatusCode::NOT_FOUND, "资源代码无效。");
    };
    let r = match shutong_catalog::get_resource(&state.db, &s.principal, &code, None).await {
        Ok(r) if r.published_version.is_some() => r,
        _ => return plain_error(StatusCode::NOT_FOUND, "资源不存在或未发布。"),
    };
    let doc = r.document.clone();
    let sh = state.sharing();
    let today = sh.today();
    let due_preview = state.calendar().add_workdays(today, state.deadlines.answer).map(|(d, _)| d.to_string()).unwrap_or_default();
    let unconditional = doc.sharing_type == SharingType::Unconditional;
    let items = doc
        .items
        .iter()
        .map(|i| {
            let t = sharing::effective_item_sharing(&doc, &i.name).unwrap_or(SharingType::NotShared);
            ItemChoice {
                name: i.name.clone(),
                sharing: t.label_zh(),
                not_shared: t == SharingType::NotShared,
                checked: t != SharingType::NotShared,
            }
        })
        .collect();
    let page = NewPage {
        l: layout(&state, &s, "申请使用", "requests", Flash { ok: p.ok, error: p.error, field: p.field }).await,
        code: r.code.to_string(),
        name: doc.name.clone(),
        provider: r.provider_name.clone(),
        sharing_label: doc.sharing_type.label_zh(),
        unconditional,
        sharing_condition: doc.sharing_condition.clone().unwrap_or_default(),
        permitted_usage: doc.permitted_usage.clone().unwrap_or_default(),
        items,
        purposes: Purpose::ALL.iter().map(|p| (p.as_str(), p.label_zh())).collect(),
        methods: AccessMethod::ALL
            .iter()
            .filter(|m| doc.sharing_methods.is_empty() || doc.sharing_methods.contains(&m.offered_by()))
            .map(|m| (m.as_str(), m.label_zh()))
            .collect(),
        today: today.to_string(),
        default_to: (today + chrono::Days::new(365)).to_string(),
        due_preview,
        answer_workdays: state.deadlines.answer,
    };
    render(&page)
}

#[derive(Deserialize, Default)]
pub struct NewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    resource_code: String,
    #[serde(default)]
    items: Vec<String>,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    purpose_detail: String,
    #[serde(default)]
    basis: String,
    #[serde(default)]
    period_from: String,
    #[serde(default)]
    period_to: String,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    expected_volume: String,
}

/// The access methods a form sent: one that is not a method is refused naming it, never dropped.
fn access_methods(list: &[String]) -> Result<Vec<AccessMethod>, SharingError> {
    list.iter()
        .map(|m| {
            AccessMethod::parse(m).ok_or_else(|| SharingError::Validation {
                field: "access_methods".into(),
                message: format!("「{m}」不是共享方式之一：{}", AccessMethod::expected()),
            })
        })
        .collect()
}

fn date_field(field: &str, v: &str) -> Result<Option<NaiveDate>, SharingError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| SharingError::Validation { field: field.into(), message: format!("'{v}' 不是 YYYY-MM-DD 格式的日期") })
}

/// Submits the form: a subscription for an unconditional resource, otherwise an application.
pub async fn create(State(state): State<AppState>, s: PortalSession, Form(f): Form<NewForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let back = format!("/requests/new?resource={}", f.resource_code);
    let build = || -> Result<sharing::NewRequest, SharingError> {
        Ok(sharing::NewRequest {
            resource_code: f.resource_code.clone(),
            consumer: None,
            items: f.items.clone(),
            purpose: Purpose::parse(&f.purpose),
            purpose_detail: Some(f.purpose_detail.clone()),
            basis: f.basis.clone(),
            period_from: date_field("period_from", &f.period_from)?,
            period_to: date_field("period_to", &f.period_to)?,
            access_methods: access_methods(&f.methods)?,
            expected_volume: Some(f.expected_volume.clone()),
        })
    };
    let new = match build() {
        Ok(n) => n,
        Err(e) => return back_with(&back, &e),
    };
    let sh = state.sharing();
    let unconditional = match shutong_catalog::ResourceCode::parse(&f.resource_code) {
        Ok(code) => shutong_catalog::get_resource(&state.db, &s.principal, &code, None)
            .await
            .map(|r| r.document.sharing_type == SharingType::Unconditional)
            .unwrap_or(false),
        // The service refuses the code, naming the field.
        Err(_) => false,
    };
    let result = if unconditional {
        sharing::subscribe(&sh, &s.principal, &s.ctx(), new).await
    } else {
        sharing::create_request(&sh, &s.principal, &s.ctx(), new).await
    };
    match result {
        Ok(d) => done(&format!("/requests/{}", d.request.id), if unconditional { "subscribed" } else { "applied" }),
        Err(e) => back_with(&back, &e),
    }
}

pub struct StepRow {
    stage: &'static str,
    owner: String,
    opened_on: String,
    reason: String,
    due_on: String,
    overdue: bool,
    closed_on: String,
    outcome: String,
}

pub struct MessageRow {
    at: String,
    author: String,
    department: String,
    stage: &'static str,
    body: String,
}

pub struct GrantBox {
    id: i64,
    state: &'static str,
    items: String,
    row_filter: String,
    valid: String,
    methods: String,
    quota: String,
    clear_text: bool,
    origin: &'static str,
}

fn grant_box(g: &GrantView) -> GrantBox {
    GrantBox {
        id: g.id,
        state: g.state.label_zh(),
        items: g.items.join("、"),
        row_filter: g.row_filter.describe(),
        valid: format!("{} 至 {}", g.valid_from, g.valid_to),
        methods: g.access_methods.iter().map(|m| m.label_zh()).collect::<Vec<_>>().join("、"),
        quota: g.daily_quota.map(|q| format!("每日 {q} 条")).unwrap_or_else(|| "不限".into()),
        clear_text: g.clear_text,
        origin: g.origin.label_zh(),
    }
}

#[derive(Template)]
#[template(path = "sharing_request.html")]
struct RequestPage {
    l: Layout,
    r: RequestView,
    kind: &'static str,
    status: &'static str,
    stage: &'static str,
    purpose: String,
    methods: String,
    submitted_at: String,
    answered: String,
    steps: Vec<StepRow>,
    messages: Vec<MessageRow>,
    grant: Option<GrantBox>,
    next_stage: String,
    resource_items: Vec<ItemChoice>,
    method_choices: Vec<(&'static str, &'static str, bool)>,
    can_answer: bool,
    can_withdraw: bool,
    can_escalate: bool,
    can_write: bool,
    answer_workdays: i64,
}

/// A request: its facts, due date, steps, record and grant, with the actions the caller may take.
pub async fn request(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Query(flash): Query<Flash>) -> Response {
    match request_page(&state, &s, id, flash).await {
        Ok(page) => render(&page),
        Err(r) => r,
    }
}

/// 共享申请表 as a printed document: the request, every step of its handling, the answer and the grant, with
/// places for the departments' seals; no navigation or forms (打印).
#[derive(Template)]
#[template(path = "print_request.html")]
struct PrintRequest {
    p: RequestPage,
    printed_at: String,
}

pub async fn request_print(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>) -> Response {
    match request_page(&state, &s, id, Flash::default()).await {
        Ok(p) => render(&PrintRequest { p, printed_at: fmt_time(shutong_store::now_ms()) }),
        Err(r) => r,
    }
}

async fn request_page(state: &AppState, s: &PortalSession, id: i64, flash: Flash) -> Result<RequestPage, Response> {
    let sh = state.sharing();
    let d: RequestDetail = match sharing::get_request(&sh, &s.principal, sharing::RequestId(id)).await {
        Ok(d) => d,
        Err(SharingError::NotFound { .. }) => return Err(plain_error(StatusCode::NOT_FOUND, "申请不存在或无权查看。")),
        Err(e) => return Err(back_with("/requests", &e)),
    };
    let r = d.request.clone();
    let p = &s.principal;
    let consumer_side = sharing::acts_for(p, DepartmentId(r.consumer_department_id));
    let can_answer = r.status.is_open() && sharing::may_answer(p, &r);
    let resource = match shutong_catalog::ResourceCode::parse(&r.resource_code) {
        Ok(code) => shutong_catalog::get_resource(&state.db, p, &code, None).await.ok(),
        Err(_) => None,
    };
    let resource_items = match resource {
        Some(res) => res
            .document
            .items
            .iter()
            .filter(|i| r.items.contains(&i.name))
            .map(|i| ItemChoice {
                name: i.name.clone(),
                sharing: i.sharing_type.label_zh(),
                not_shared: i.sharing_type == SharingType::NotShared,
                checked: true,
            })
            .collect(),
        None => Vec::new(),
    };
    let page = RequestPage {
        l: layout(state, s, &format!("共享申请 {id}"), "requests", flash).await,
        kind: r.kind.label_zh(),
        status: r.status.label_zh(),
        stage: r.stage.label_zh(),
        purpose: match &r.purpose_detail {
            Some(d) => format!("{}（{d}）", r.purpose.label_zh()),
            None => r.purpose.label_zh().to_string(),
        },
        methods: r.access_methods.iter().map(|m| m.label_zh()).collect::<Vec<_>>().join("、"),
        submitted_at: fmt_time(r.submitted_at_ms),
        answered: match (&r.answered_by, r.answered_at_ms) {
            (Some(by), Some(at)) => format!("{by} {}{}", fmt_time(at), if r.answered_late { "（逾期答复）" } else { "" }),
            _ => "—".into(),
        },
        steps: d
            .escalations
            .iter()
            .map(|e| StepRow {
                stage: e.stage.label_zh(),
                owner: e.owner_name.clone(),
                opened_on: e.opened_on.to_string(),
                reason: e.reason.clone(),
                due_on: e.due_on.to_string(),
                overdue: e.overdue,
                closed_on: e.closed_on.map(|d| d.to_string()).unwrap_or_else(|| "—".into()),
                outcome: match e.outcome.as_deref() {
                    Some("granted") => "同意共享".into(),
                    Some("refused") => format!("不予共享：{}", e.outcome_note.clone().unwrap_or_default()),
                    Some("withdrawn") => "已撤回".into(),
                    Some("escalated") => "未果，已提请上一级".into(),
                    _ => "办理中".into(),
                },
            })
            .collect(),
        messages: d
            .messages
            .iter()
            .map(|m| MessageRow {
                at: fmt_time(m.at_ms),
                author: m.author.clone(),
                department: m.department_name.clone().unwrap_or_default(),
                stage: m.stage.label_zh(),
                body: m.body.clone(),
            })
            .collect(),
        grant: d.grant.as_ref().map(grant_box),
        next_stage: r.next_stage.map(|x| x.label_zh().to_string()).unwrap_or_default(),
        resource_items,
        method_choices: r.access_methods.iter().map(|m| (m.as_str(), m.label_zh(), true)).collect(),
        can_answer,
        can_withdraw: consumer_side && r.status.is_open(),
        can_escalate: consumer_side && r.next_stage.is_some(),
        can_write: r.status.is_open() && (consumer_side || can_answer),
        answer_workdays: state.deadlines.answer,
        r,
    };
    Ok(page)
}

#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    items: Vec<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    valid_to: String,
    #[serde(default)]
    filter_item: String,
    #[serde(default)]
    filter_op: String,
    #[serde(default)]
    filter_values: String,
    #[serde(default)]
    daily_quota: String,
    #[serde(default)]
    clear_text: Option<String>,
    #[serde(default)]
    note: String,
}

/// approve, reject, withdraw, escalate, message.
pub async fn request_action(
    State(state): State<AppState>,
    s: PortalSession,
    Path((id, verb)): Path<(i64, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let sh = state.sharing();
    let ctx = s.ctx();
    let to = format!("/requests/{id}");
    let result = match verb.as_str() {
        "approve" => {
            let approval = (|| -> Result<Approval, SharingError> {
                let filter = if f.filter_item.trim().is_empty() {
                    None
                } else {
                    Some(RowFilter {
                        conditions: vec![RowCondition {
                            item: f.filter_item.trim().to_string(),
                            op: FilterOp::parse(&f.filter_op).unwrap_or(FilterOp::Eq),
                            values: f.filter_values.split([',', '，']).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect(),
                        }],
                    })
                };
                let quota = match f.daily_quota.trim() {
                    "" => None,
                    q => Some(
                        q.parse::<i64>()
                            .map_err(|_| SharingError::Validation {
                                field: "daily_quota".into(), message: format!("'{q}' 不是整数")
                            })?,
                    ),
                };
                Ok(Approval {
                    items: Some(f.items.clone()),
                    row_filter: filter,
                    valid_from: None,
                    valid_to: date_field("valid_to", &f.valid_to)?,
                    access_methods: if f.methods.is_empty() { None } else { Some(access_methods(&f.methods)?) },
                    daily_quota: quota,
                    clear_text: f.clear_text.is_some(),
                    note: Some(f.note.clone()),
                })
            })();
            match approval {
                Ok(a) => sharing::approve(&sh, &s.principal, &ctx, sharing::RequestId(id), a).await.map(|_| "approved_grant"),
                Err(e) => Err(e),
            }
        }
        "reject" => sharing::reject(&sh, &s.principal, &ctx, sharing::RequestId(id), &f.reason).await.map(|_| "rejected_answer"),
        "withdraw" => {
            sharing::withdraw(&sh, &s.principal, &ctx, sharing::RequestId(id), Some(&f.reason)).await.map(|_| "request_withdrawn")
        }
        "escalate" => sharing::escalate(&sh, &s.principal, &ctx, sharing::RequestId(id), &f.reason).await.map(|_| "escalated"),
        "message" => sharing::add_message(&sh, &s.principal, &ctx, sharing::RequestId(id), &f.body).await.map(|_| "message_added"),
        _ => return plain_error(StatusCode::NOT_FOUND, "没有这个操作。"),
    };
    match result {
        Ok(ok) => done(&to, ok),
        Err(e) => back_with(&to, &e),
    }
}

pub struct GrantRow {
    id: i64,
    resource_code: String,
    resource_name: String,
    consumer: String,
    provider: String,
    items: String,
    valid_to: String,
    state: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "sharing_grants.html")]
struct GrantsPage {
    l: Layout,
    side: String,
    /// The state chosen (its code; empty: any), and every state to choose from.
    state: String,
    states: Vec<(&'static str, &'static str)>,
    rows: Vec<GrantRow>,
    pager: super::pager::Pager,
}

/// 我的授权: grants held (consumer) and given (provider).
pub async fn grants(State(state): State<AppState>, s: PortalSession, Query(p): Query<ListParams>) -> Response {
    let side_s = p.side.clone().unwrap_or_else(|| "consumer".into());
    let state_s = p.status.clone().unwrap_or_default();
    let grant_state = match state_s.as_str() {
        "" => None,
        code => match sharing::GrantState::parse(code) {
            Some(st) => Some(st),
            None => {
                let e = SharingError::Validation { field: "status".into(), message: format!("unknown state '{code}'") };
                return back_with("/grants", &e);
            }
        },
    };
    let filter = GrantFilter {
        side: Side::parse(&side_s).filter(|_| side_s != "all"),
        state: grant_state,
        before: p.before,
        limit: super::pager::PAGE_SIZE,
        ..Default::default()
    };
    let list = match sharing::list_grants(&state.sharing(), &s.principal, &filter).await {
        Ok(list) => list,
        Err(e) => return back_with("/", &e),
    };
    let filters = [("side", side_s.clone()), ("status", state_s.clone())];
    let pager = super::pager::Pager::by_key("/grants", &filters, "before", p.before, list.last().map(|g| g.id), list.len());
    let rows = list
        .iter()
        .map(|g| GrantRow {
            id: g.id,
            resource_code: g.resource_code.clone(),
            resource_name: g.resource_name.clone(),
            consumer: g.consumer_name.clone(),
            provider: g.provider_name.clone(),
            items: g.items.join("、"),
            valid_to: g.valid_to.to_string(),
            state: g.state.label_zh(),
            active: g.state == sharing::GrantState::Active,
        })
        .collect();
    let page = GrantsPage {
        l: layout(&state, &s, "授权", "grants", Flash { ok: p.ok, error: p.error, field: p.field }).await,
        side: side_s,
        state: state_s,
        states: sharing::GrantState::ALL.iter().map(|st| (st.as_str(), st.label_zh())).collect(),
        rows,
        pager,
    };
    render(&page)
}

#[derive(Template)]
#[template(path = "sharing_grant.html")]
struct GrantPage {
    l: Layout,
    g: GrantView,
    b: GrantBox,
    purpose: String,
    revoked: String,
    can_manage: bool,
}

pub async fn grant(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Query(flash): Query<Flash>) -> Response {
    match grant_page(&state, &s, id, flash).await {
        Ok(page) => render(&page),
        Err(r) => r,
    }
}

/// 共享授权书 as a printed document: what is granted, to whom, for what, until when; no navigation or forms.
#[derive(Template)]
#[template(path = "print_grant.html")]
struct PrintGrant {
    p: GrantPage,
    printed_at: String,
}

pub async fn grant_print(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>) -> Response {
    match grant_page(&state, &s, id, Flash::default()).await {
        Ok(p) => render(&PrintGrant { p, printed_at: fmt_time(shutong_store::now_ms()) }),
        Err(r) => r,
    }
}

async fn grant_page(state: &AppState, s: &PortalSession, id: i64, flash: Flash) -> Result<GrantPage, Response> {
    let g = match sharing::get_grant(&state.sharing(), &s.principal, sharing::GrantId(id)).await {
        Ok(g) => g,
        Err(SharingError::NotFound { .. }) => return Err(plain_error(StatusCode::NOT_FOUND, "授权不存在或无权查看。")),
        Err(e) => return Err(back_with("/grants", &e)),
    };
    let p = &s.principal;
    let can_manage = g.state != sharing::GrantState::Revoked && sharing::may_manage_grant(&state.sharing(), p, &g).await.unwrap_or(false);
    let page = GrantPage {
        l: layout(state, s, &format!("授权 {id}"), "grants", flash).await,
        b: grant_box(&g),
        purpose: g.purpose.label_zh().to_string(),
        revoked: match (&g.revoked_by, g.revoked_at_ms, &g.revoke_reason) {
            (Some(by), Some(at), Some(reason)) => format!("{by} {}：{reason}", fmt_time(at)),
            _ => String::new(),
        },
        can_manage,
        g,
    };
    Ok(page)
}

pub async fn grant_action(
    State(state): State<AppState>,
    s: PortalSession,
    Path((id, verb)): Path<(i64, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let sh = state.sharing();
    let to = format!("/grants/{id}");
    let result = match verb.as_str() {
        "revoke" => sharing::revoke_grant(&sh, &s.principal, &s.ctx(), sharing::GrantId(id), &f.reason).await.map(|_| "grant_revoked"),
        "renew" => match date_field("valid_to", &f.valid_to) {
            Ok(Some(d)) => {
                sharing::renew_grant(&sh, &s.principal, &s.ctx(), sharing::GrantId(id), d, Some(&f.note)).await.map(|_| "grant_renewed")
            }
            Ok(None) => Err(SharingError::Validation { field: "valid_to".into(), message: "required".into() }),
            Err(e) => Err(e),
        },
        _ => return plain_error(StatusCode::NOT_FOUND, "没有这个操作。"),
    };
    match result {
        Ok(ok) => done(&to, ok),
        Err(e) => back_with(&to, &e),
    }
}

pub struct InboxRow {
    kind: &'static str,
    title: String,
    link: String,
    resource: String,
    counterpart: String,
    due_on: String,
    left: String,
    overdue: bool,
}

pub struct NoticeRow {
    at: String,
    message: String,
    link: String,
    read: bool,
}

#[derive(Template)]
#[template(path = "sharing_inbox.html")]
struct InboxPage {
    l: Layout,
    today: String,
    waiting: Vec<InboxRow>,
    overdue: Vec<InboxRow>,
    notices: Vec<NoticeRow>,
    unread: i64,
    silent_nodes: Vec<SilentNodeRow>,
}

struct SilentNodeRow {
    id: i64,
    name: String,
    department: String,
    last_seen: String,
}

fn inbox_row(i: &sharing::InboxItem) -> InboxRow {
    InboxRow {
        kind: match i.kind.as_str() {
            "answer" => "待答复",
            "negotiation" => "协商",
            "coordination" => "协调",
            "leading_group" => "领导小组",
            "escalate" => "可提请",
            "grant_expiring" => "授权到期",
            _ => "逾期",
        },
        title: i.title.clone(),
        link: match (i.request_id, i.grant_id) {
            (_, Some(g)) => format!("/grants/{g}"),
            (Some(r), _) => format!("/requests/{r}"),
            _ => "/requests".into(),
        },
        resource: format!("{} {}", i.resource_code, i.resource_name),
        counterpart: i.counterpart.clone(),
        due_on: i.due_on.map(|d| d.to_string()).unwrap_or_else(|| "—".into()),
        left: match i.workdays_left {
            Some(n) if n < 0 => format!("逾期 {} 个工作日", -n),
            Some(n) => format!("剩 {n} 个工作日"),
            None => String::new(),
        },
        overdue: i.overdue,
    }
}

/// 待办: what waits for the caller's department, the authority's overdue list, notices.
pub async fn inbox(State(state): State<AppState>, s: PortalSession, Query(flash): Query<Flash>) -> Response {
    let i = match sharing::inbox(&state.sharing(), &s.principal).await {
        Ok(i) => i,
        Err(e) => return back_with("/", &e),
    };
    let page = InboxPage {
        l: layout(&state, &s, "待办", "inbox", flash).await,
        today: i.today.to_string(),
        waiting: i.waiting.iter().map(inbox_row).collect(),
        overdue: i.overdue.iter().map(inbox_row).collect(),
        notices: i
            .notifications
            .iter()
            .map(|n| NoticeRow {
                at: fmt_time(n.created_at_ms),
                message: n.message.clone(),
                link: if n.target_kind == "sharing_grant" {
                    format!("/grants/{}", n.target_id)
                } else {
                    format!("/requests/{}", n.target_id)
                },
                read: n.read,
            })
            .collect(),
        unread: i.unread,
        silent_nodes: shutong_exchange::nodes::silent_nodes(&state.exchange, &s.principal)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|n| SilentNodeRow { id: n.id.0, name: n.name, department: n.department_name, last_seen: fmt_time(n.last_seen_ms) })
            .collect(),
    };
    render(&page)
}

#[derive(Deserialize, Default)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn mark_read(State(state): State<AppState>, s: PortalSession, Form(f): Form<CsrfForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    match sharing::mark_read(&state.sharing(), &s.principal, None).await {
        Ok(_) => done("/inbox", "notices_read"),
        Err(e) => back_with("/inbox", &e),
    }
}

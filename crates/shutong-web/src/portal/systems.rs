//! 系统与项目: the portal pages of the inventory (信息系统台账), zombie verdicts (僵尸系统), the self-inspection
//! report and its lists (自查报告与清单), project filing (项目备案) and the funding queues (资金审核). Every rule
//! is the service's; these pages render what it answers and translate its refusals.

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use shutong_identity::DepartmentId;
use shutong_systems::{
    self as systems, CleanupAction, CleanupProgress, FiledProject, FundingSource, Money, OmStatus, ProjectQueue, ProjectStage, ReportView,
    SystemDocument, SystemFilter, SystemId, SystemNetwork, SystemStatus, SystemSummary, SystemView, SystemsError, UsageFrequency,
    UsageScope, ZombieDecision, ZombieResponse, ZombieVerdict,
};

use super::pages::{Flash, Layout, done, fmt_time, layout, render};
use super::{PortalSession, plain_error};
use crate::state::AppState;

fn back_with(to: &str, e: &SystemsError) -> Response {
    super::errors::back(to, super::errors::systems(e))
}

fn options<T: Copy>(all: &[T], code: fn(T) -> &'static str, label: fn(T) -> &'static str) -> Vec<(&'static str, &'static str)> {
    all.iter().map(|v| (code(*v), label(*v))).collect()
}

/// The closed lists a system's form chooses from: (code, Chinese name).
pub struct Choices {
    scope: Vec<(&'static str, &'static str)>,
    frequency: Vec<(&'static str, &'static str)>,
    funding: Vec<(&'static str, &'static str)>,
    network: Vec<(&'static str, &'static str)>,
    status: Vec<(&'static str, &'static str)>,
    om: Vec<(&'static str, &'static str)>,
}

fn choices() -> Choices {
    Choices {
        scope: options(UsageScope::ALL, UsageScope::as_str, UsageScope::label_zh),
        frequency: options(UsageFrequency::ALL, UsageFrequency::as_str, UsageFrequency::label_zh),
        funding: options(FundingSource::ALL, FundingSource::as_str, FundingSource::label_zh),
        network: options(SystemNetwork::ALL, SystemNetwork::as_str, SystemNetwork::label_zh),
        status: options(SystemStatus::ALL, SystemStatus::as_str, SystemStatus::label_zh),
        om: options(OmStatus::ALL, OmStatus::as_str, OmStatus::label_zh),
    }
}

#[derive(Deserialize, Default)]
pub struct ListParams {
    department_id: Option<i64>,
    status: Option<String>,
    flagged: Option<String>,
    q: Option<String>,
    after: Option<i64>,
    queue: Option<String>,
    ok: Option<String>,
    error: Option<String>,
    field: Option<String>,
}

impl ListParams {
    fn flash(&mut self) -> Flash {
        Flash { ok: self.ok.take(), error: self.error.take(), field: self.field.take() }
    }
}

/// The departments whose inventory the user may pick (all for readers of all, else its own): (id, name).
async fn departments(state: &AppState, s: &PortalSession) -> Vec<(i64, String)> {
    let standing = systems::standing(&state.exchange, &s.principal).await.unwrap_or_default();
    let all = shutong_identity::list_departments(&state.db).await.unwrap_or_default();
    all.into_iter().filter(|d| standing.reads_all || Some(d.id) == s.principal.department_id).map(|d| (d.id.0, d.name)).collect()
}

// ------------------------------------------------------------------ 信息系统台账

#[derive(Template)]
#[template(path = "systems.html")]
struct SystemsPage {
    l: Layout,
    rows: Vec<SystemSummary>,
    pager: super::pager::Pager,
    departments: Vec<(i64, String)>,
    department: i64,
    status: String,
    flagged: String,
    q: String,
    c: Choices,
    statuses: Vec<(&'static str, &'static str)>,
}

/// 信息系统台账: the systems the user may read, filtered, with the register and import forms.
pub async fn systems_list(State(state): State<AppState>, s: PortalSession, Query(mut p): Query<ListParams>) -> Response {
    let status = match p.status.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match SystemStatus::parse(v) {
            Some(st) => Some(st),
            None => {
                return back_with(
                    "/systems",
                    &SystemsError::Validation { field: "status".into(), message: format!("unknown status '{v}'") },
                );
            }
        },
    };
    let flagged = match p.flagged.as_deref() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let filter = SystemFilter {
        department: p.department_id.filter(|d| *d > 0).map(DepartmentId),
        status,
        flagged,
        q: p.q.clone(),
        after: p.after.map(SystemId),
        limit: super::pager::PAGE_SIZE,
    };
    let page = match systems::list_systems(&state.exchange, &s.principal, &filter).await {
        Ok(page) => page,
        Err(e) => return back_with("/", &e),
    };
    let filters = [
        ("department_id", p.department_id.map(|d| d.to_string()).unwrap_or_default()),
        ("status", p.status.clone().unwrap_or_default()),
        ("flagged", p.flagged.clone().unwrap_or_default()),
        ("q", p.q.clone().unwrap_or_default()),
    ];
    let pager = super::pager::Pager::new(
        "/systems",
        &filters,
        "after",
        p.after.map(|a| a.to_string()),
        page.next_cursor.map(|c| c.to_string()),
        page.items.len(),
    );
    let flash = p.flash();
    let t = SystemsPage {
        l: layout(&state, &s, "信息系统台账", "systems", flash).await,
        rows: page.items,
        pager,
        departments: departments(&state, &s).await,
        department: p.department_id.or(s.principal.department_id.map(|d| d.0)).unwrap_or(0),
        status: p.status.unwrap_or_default(),
        flagged: p.flagged.unwrap_or_default(),
        q: p.q.unwrap_or_default(),
        c: choices(),
        statuses: options(SystemStatus::ALL, SystemStatus::as_str, SystemStatus::label_zh),
    };
    render(&t)
}

/// The register and edit form of a system, as typed.
#[derive(Deserialize)]
pub struct SystemForm {
    csrf: String,
    #[serde(default)]
    department_id: i64,
    name: String,
    function: String,
    usage_scope: String,
    usage_frequency: String,
    #[serde(default)]
    approving_department: String,
    #[serde(default)]
    approval_date: String,
    build_cost: String,
    om_cost: String,
    funding_source: String,
    #[serde(default)]
    ip_addresses: String,
    #[serde(default)]
    host_instances: String,
    #[serde(default)]
    access_url: String,
    network: String,
    status: String,
    #[serde(default)]
    unit: String,
    om_status: String,
    #[serde(default)]
    last_update_date: String,
    #[serde(default)]
    shares_across_departments: Option<String>,
    #[serde(default)]
    connected: Option<String>,
    #[serde(default)]
    produces: String,
    #[serde(default)]
    consumes: String,
    #[serde(default)]
    accounts: String,
    #[serde(default)]
    nodes: String,
}

fn field_error(field: &str, message: impl Into<String>) -> SystemsError {
    SystemsError::Validation { field: field.into(), message: message.into() }
}

fn listed<T>(field: &str, v: &str, parse: fn(&str) -> Option<T>, expected: String) -> Result<T, SystemsError> {
    parse(v).ok_or_else(|| field_error(field, format!("'{v}' is not one of {expected}")))
}

fn date_of(field: &str, v: &str) -> Result<Option<chrono::NaiveDate>, SystemsError> {
    match v.trim() {
        "" => Ok(None),
        d => d.parse().map(Some).map_err(|_| field_error(field, format!("'{d}' is not a date (YYYY-MM-DD)"))),
    }
}

fn split(v: &str) -> Vec<String> {
    v.split(['\n', '；', ';', '，', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn document_of(f: &SystemForm) -> Result<SystemDocument, SystemsError> {
    let opt = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    Ok(SystemDocument {
        name: f.name.clone(),
        function: f.function.clone(),
        usage_scope: listed("usage_scope", &f.usage_scope, UsageScope::parse, UsageScope::expected())?,
        usage_frequency: listed("usage_frequency", &f.usage_frequency, UsageFrequency::parse, UsageFrequency::expected())?,
        approving_department: opt(&f.approving_department),
        approval_date: date_of("approval_date", &f.approval_date)?,
        build_cost: Money::parse_typed(&f.build_cost).map_err(|m| field_error("build_cost", m))?,
        om_cost: Money::parse_typed(&f.om_cost).map_err(|m| field_error("om_cost", m))?,
        funding_source: listed("funding_source", &f.funding_source, FundingSource::parse, FundingSource::expected())?,
        ip_addresses: split(&f.ip_addresses),
        host_instances: split(&f.host_instances),
        access_url: opt(&f.access_url),
        network: listed("network", &f.network, SystemNetwork::parse, SystemNetwork::expected())?,
        status: listed("status", &f.status, SystemStatus::parse, SystemStatus::expected())?,
        unit: opt(&f.unit),
        om_status: listed("om_status", &f.om_status, OmStatus::parse, OmStatus::expected())?,
        last_update_date: date_of("last_update_date", &f.last_update_date)?,
        shares_across_departments: f.shares_across_departments.is_some(),
        connected: f.connected.is_some(),
        produces: split(&f.produces),
        consumes: split(&f.consumes),
        accounts: split(&f.accounts),
        nodes: split(&f.nodes),
    })
}

/// 登记信息系统 from the form.
pub async fn create_system(State(state): State<AppState>, s: PortalSession, Form(f): Form<SystemForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let result = match document_of(&f) {
        Ok(doc) => systems::create_system(&state.exchange, &s.principal, &s.ctx(), DepartmentId(f.department_id), doc).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => done(&format!("/systems/{}", v.id), "created"),
        Err(e) => back_with("/systems", &e),
    }
}

/// 导入信息系统台账 from an uploaded workbook.
pub async fn import_systems(State(state): State<AppState>, s: PortalSession, mut form: Multipart) -> Response {
    let (mut csrf, mut bytes) = (String::new(), Vec::new());
    while let Ok(Some(field)) = form.next_field().await {
        match field.name() {
            Some("csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("file") => bytes = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            _ => {}
        }
    }
    if let Some(r) = s.csrf_rejection(&csrf) {
        return r;
    }
    match systems::import_inventory(&state.exchange, &s.principal, &s.ctx(), &bytes).await {
        Ok(r) => done("/systems", if r.created + r.updated == 0 { "import_unchanged" } else { "imported" }),
        Err(e) => back_with("/systems", &e),
    }
}

#[derive(Template)]
#[template(path = "system.html")]
struct SystemPage {
    l: Layout,
    v: SystemView,
    verdict: ZombieVerdict,
    history: Vec<(i64, String, String)>,
    may_keep: bool,
    authority: bool,
    actions: Vec<(&'static str, &'static str)>,
    progresses: Vec<(&'static str, &'static str)>,
    today: String,
}

/// One system: its registration, its zombie verdict with the evidence, its review and cleanup, its history.
pub async fn system(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Query(mut p): Query<ListParams>) -> Response {
    let (ex, who) = (&state.exchange, &s.principal);
    let (v, verdict, history, standing) = match async {
        Ok::<_, SystemsError>((
            systems::get_system(ex, who, SystemId(id)).await?,
            systems::zombie_verdict(ex, who, SystemId(id)).await?,
            systems::system_history(ex, who, SystemId(id)).await?,
            systems::standing(ex, who).await?,
        ))
    }
    .await
    {
        Ok(x) => x,
        Err(SystemsError::NotFound { .. }) => return plain_error(StatusCode::NOT_FOUND, "信息系统不存在，或无权查看。"),
        Err(e) => return back_with("/systems", &e),
    };
    let flash = p.flash();
    let t = SystemPage {
        l: layout(&state, &s, &v.document.name, "systems", flash).await,
        may_keep: standing.may_keep(who, v.department_id),
        authority: standing.authority,
        history: history.iter().map(|h| (h.version, fmt_time(h.changed_at_ms), h.changed_by.clone())).collect(),
        v,
        verdict,
        actions: options(CleanupAction::ALL, CleanupAction::as_str, CleanupAction::label_zh),
        progresses: options(CleanupProgress::ALL, CleanupProgress::as_str, CleanupProgress::label_zh),
        today: state.exchange.sharing.today().to_string(),
    };
    render(&t)
}

#[derive(Deserialize)]
pub struct SystemActionForm {
    csrf: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    due_on: String,
    #[serde(default)]
    into_system_id: String,
}

/// The review and cleanup steps of a system: `response`, `decision`, `cleanup`, `progress`.
pub async fn system_action(
    State(state): State<AppState>,
    s: PortalSession,
    Path((id, verb)): Path<(i64, String)>,
    Form(f): Form<SystemActionForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let (ex, who, ctx, sys) = (&state.exchange, &s.principal, s.ctx(), SystemId(id));
    let reason = Some(f.reason.as_str()).filter(|r| !r.trim().is_empty());
    let result: Result<&str, SystemsError> = match verb.as_str() {
        "response" => match ZombieResponse::parse(&f.value) {
            Some(r) => systems::respond_zombie(ex, who, &ctx, sys, r, reason).await.map(|_| "saved"),
            None => Err(field_error("response", "choose 确认 or 有异议")),
        },
        "decision" => match ZombieDecision::parse(&f.value) {
            Some(d) => systems::decide_zombie(ex, who, &ctx, sys, d, reason).await.map(|_| "saved"),
            None => Err(field_error("decision", "choose a decision")),
        },
        "cleanup" => {
            let plan = (|| {
                Ok::<_, SystemsError>(systems::CleanupPlan {
                    action: listed("action", &f.value, CleanupAction::parse, CleanupAction::expected())?,
                    due_on: date_of("due_on", &f.due_on)?.ok_or_else(|| field_error("due_on", "required"))?,
                    into: match f.into_system_id.trim() {
                        "" => None,
                        v => Some(SystemId(v.parse().map_err(|_| field_error("into_system_id", format!("'{v}' is not a system number")))?)),
                    },
                    note: reason.map(str::to_string),
                })
            })();
            match plan {
                Ok(plan) => systems::plan_cleanup(ex, who, &ctx, sys, plan).await.map(|_| "saved"),
                Err(e) => Err(e),
            }
        }
        "progress" => match CleanupProgress::parse(&f.value) {
            Some(pr) => systems::record_cleanup(ex, who, &ctx, sys, pr, reason).await.map(|_| "saved"),
            None => Err(field_error("progress", "choose the progress")),
        },
        _ => return plain_error(StatusCode::NOT_FOUND, "没有这个操作。"),
    };
    let to = format!("/systems/{id}");
    match result {
        Ok(ok) => done(&to, ok),
        Err(e) => back_with(&to, &e),
    }
}

#[derive(Template)]
#[template(path = "zombies.html")]
struct ZombiesPage {
    l: Layout,
    verdicts: Vec<ZombieVerdict>,
    departments: Vec<(i64, String)>,
    department: i64,
}

/// 僵尸系统: the verdicts of every system the user may read, suspected ones first, with the criteria met.
pub async fn zombies(State(state): State<AppState>, s: PortalSession, Query(mut p): Query<ListParams>) -> Response {
    let department = p.department_id.filter(|d| *d > 0);
    let verdicts = match systems::zombie_verdicts(&state.exchange, &s.principal, department.map(DepartmentId)).await {
        Ok(v) => v,
        Err(e) => return back_with("/", &e),
    };
    let flash = p.flash();
    let t = ZombiesPage {
        l: layout(&state, &s, "僵尸系统", "zombies", flash).await,
        verdicts,
        departments: departments(&state, &s).await,
        department: department.unwrap_or(0),
    };
    render(&t)
}

// ------------------------------------------------------------------ 自查报告与清单

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    l: Layout,
    department: i64,
    departments: Vec<(i64, String)>,
    reports: Vec<ReportView>,
    may_keep: bool,
    authority: bool,
    year: i32,
}

/// 自查报告与清单: a department's versions, the form of a new one, submit and review.
pub async fn reports(State(state): State<AppState>, s: PortalSession, Query(mut p): Query<ListParams>) -> Response {
    let Some(department) = p.department_id.filter(|d| *d > 0).or(s.principal.department_id.map(|d| d.0)) else {
        return plain_error(StatusCode::NOT_FOUND, "请选择部门。");
    };
    let (ex, who) = (&state.exchange, &s.principal);
    let (reports, standing) = match async {
        Ok::<_, SystemsError>((systems::list_reports(ex, who, DepartmentId(department)).await?, systems::standing(ex, who).await?))
    }
    .await
    {
        Ok(x) => x,
        Err(e) => return back_with("/", &e),
    };
    let flash = p.flash();
    let t = ReportsPage {
        l: layout(&state, &s, "自查报告与清单", "reports", flash).await,
        department,
        departments: departments(&state, &s).await,
        may_keep: standing.may_keep(who, DepartmentId(department)),
        authority: standing.authority,
        reports,
        year: chrono::Datelike::year(&state.exchange.sharing.today()),
    };
    render(&t)
}

#[derive(Deserialize)]
pub struct ReportForm {
    csrf: String,
    department_id: i64,
    year: String,
    overview: String,
    problems: String,
    measures: String,
    /// One declared need per line: 资源｜提供部门｜用途.
    #[serde(default)]
    needs: String,
}

/// 编制自查报告: saves a new version.
pub async fn save_report(State(state): State<AppState>, s: PortalSession, Form(f): Form<ReportForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let to = format!("/reports?department_id={}", f.department_id);
    let year = match f.year.trim().parse::<i32>() {
        Ok(y) => y,
        Err(_) => return back_with(&to, &field_error("year", format!("'{}' is not a year", f.year.trim()))),
    };
    let mut needs = Vec::new();
    for (i, line) in f.needs.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
        let parts: Vec<&str> = line.split(['｜', '|']).map(str::trim).collect();
        let [resource, provider, purpose] = parts[..] else {
            return back_with(&to, &field_error("needs", format!("line {}: write 资源｜提供部门｜用途", i + 1)));
        };
        needs.push(systems::DeclaredNeed { resource: resource.into(), provider: provider.into(), purpose: purpose.into() });
    }
    let content = systems::ReportContent { year, overview: f.overview, problems: f.problems, measures: f.measures, needs };
    match systems::save_report(&state.exchange, &s.principal, &s.ctx(), DepartmentId(f.department_id), content).await {
        Ok(_) => done(&to, "saved"),
        Err(e) => back_with(&to, &e),
    }
}

#[derive(Deserialize)]
pub struct ReviewForm {
    csrf: String,
    #[serde(default)]
    note: String,
}

/// Submit (`submit`), accept (`accept`) or return (`return`) one version.
pub async fn report_action(
    State(state): State<AppState>,
    s: PortalSession,
    Path((department, version, verb)): Path<(i64, i64, String)>,
    Form(f): Form<ReviewForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let (ex, who, ctx, d) = (&state.exchange, &s.principal, s.ctx(), DepartmentId(department));
    let note = Some(f.note.as_str()).filter(|n| !n.trim().is_empty());
    let result = match verb.as_str() {
        "submit" => systems::submit_report(ex, who, &ctx, d, version).await.map(|_| "submitted"),
        "accept" => systems::review_report(ex, who, &ctx, d, version, true, note).await.map(|_| "saved"),
        "return" => systems::review_report(ex, who, &ctx, d, version, false, note).await.map(|_| "returned"),
        _ => return plain_error(StatusCode::NOT_FOUND, "没有这个操作。"),
    };
    let to = format!("/reports?department_id={department}");
    match result {
        Ok(ok) => done(&to, ok),
        Err(e) => back_with(&to, &e),
    }
}

#[derive(Template)]
#[template(path = "print_report.html")]
struct ReportPrint {
    p: ReportPrintInner,
    printed_at: String,
}

struct ReportPrintInner {
    l: Layout,
    r: ReportView,
    title: String,
}

/// The report of one version as a printable page (the same content as its PDF).
pub async fn report_print(State(state): State<AppState>, s: PortalSession, Path((department, version)): Path<(i64, i64)>) -> Response {
    let r = match systems::get_report(&state.exchange, &s.principal, DepartmentId(department), version).await {
        Ok(r) => r,
        Err(SystemsError::NotFound { .. }) => return plain_error(StatusCode::NOT_FOUND, "自查报告不存在，或无权查看。"),
        Err(e) => return back_with("/reports", &e),
    };
    let title = format!("{}{}年度政务信息系统整合共享自查报告", r.department_name, r.content.year);
    let t = ReportPrint {
        p: ReportPrintInner { l: layout(&state, &s, &title, "reports", Flash::default()).await, r, title },
        printed_at: fmt_time(shutong_store::now_ms()),
    };
    render(&t)
}

// ------------------------------------------------------------------ 项目备案 and 资金审核

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    l: Layout,
    projects: Vec<FiledProject>,
    queue: String,
    queues: Vec<(&'static str, &'static str)>,
    /// The funding queues' page (资金审核) rather than the filing page.
    review: bool,
    departments: Vec<(i64, String)>,
    funding: Vec<(&'static str, &'static str)>,
    today: String,
}

async fn projects_page(state: &AppState, s: &PortalSession, mut p: ListParams, review: bool) -> Response {
    let queue_s = p.queue.clone().unwrap_or_else(|| if review { "approval".into() } else { "all".into() });
    let Some(queue) = ProjectQueue::parse(&queue_s) else {
        return back_with("/projects", &field_error("queue", format!("unknown queue '{queue_s}'")));
    };
    let page = match systems::list_projects(&state.exchange, &s.principal, queue, None, None, 200).await {
        Ok(page) => page,
        Err(e) => return back_with("/", &e),
    };
    let flash = p.flash();
    let (title, section) = if review { ("资金审核", "funding") } else { ("项目备案", "projects") };
    let t = ProjectsPage {
        l: layout(state, s, title, section, flash).await,
        projects: page.items,
        queue: queue_s,
        queues: vec![("approval", "立项审批"), ("acceptance", "项目验收"), ("funding", "运维经费")],
        review,
        departments: departments(state, s).await,
        funding: options(FundingSource::ALL, FundingSource::as_str, FundingSource::label_zh),
        today: state.exchange.sharing.today().to_string(),
    };
    render(&t)
}

/// 项目备案: the projects the user may read, and the filing form.
pub async fn projects(State(state): State<AppState>, s: PortalSession, Query(p): Query<ListParams>) -> Response {
    projects_page(&state, &s, p, false).await
}

/// 资金审核: the approval, acceptance and O&M funding queues with each project's gates.
pub async fn funding_review(State(state): State<AppState>, s: PortalSession, Query(p): Query<ListParams>) -> Response {
    projects_page(&state, &s, p, true).await
}

#[derive(Deserialize)]
pub struct ProjectForm {
    csrf: String,
    department_id: i64,
    name: String,
    construction_unit: String,
    total_investment: String,
    om_budget: String,
    funding_channel: String,
    content: String,
    #[serde(default)]
    systems: String,
    #[serde(default)]
    protection_filing: String,
    #[serde(default)]
    classified_filing: String,
    filed_on: String,
    application: String,
}

/// 全口径备案 from the form.
pub async fn file_project(State(state): State<AppState>, s: PortalSession, Form(f): Form<ProjectForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let opt = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let doc = (|| {
        Ok::<_, SystemsError>(systems::ProjectDocument {
            name: f.name.clone(),
            construction_unit: f.construction_unit.clone(),
            total_investment: Money::parse_typed(&f.total_investment).map_err(|m| field_error("total_investment", m))?,
            om_budget: Money::parse_typed(&f.om_budget).map_err(|m| field_error("om_budget", m))?,
            funding_channel: listed("funding_channel", &f.funding_channel, FundingSource::parse, FundingSource::expected())?,
            content: f.content.clone(),
            systems: split(&f.systems)
                .iter()
                .map(|v| v.parse().map(SystemId).map_err(|_| field_error("systems", format!("'{v}' is not a system number"))))
                .collect::<Result<_, _>>()?,
            protection_filing: opt(&f.protection_filing),
            classified_filing: opt(&f.classified_filing),
        })
    })();
    let result = match (doc, date_of("filed_on", &f.filed_on)) {
        (Ok(doc), Ok(Some(on))) => {
            systems::file_project(&state.exchange, &s.principal, &s.ctx(), DepartmentId(f.department_id), doc, on, &f.application).await
        }
        (Ok(_), Ok(None)) => Err(field_error("filed_on", "required")),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match result {
        Ok(p) => done(&format!("/projects/{}", p.id), "created"),
        Err(e) => back_with("/projects", &e),
    }
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    l: Layout,
    p: FiledProject,
    today: String,
    next: Option<(&'static str, &'static str)>,
    gate_open: bool,
}

/// One project: its filing, stages, gates with their reasons, and the form of its next stage.
pub async fn project(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Query(mut p): Query<ListParams>) -> Response {
    let project = match systems::get_project(&state.exchange, &s.principal, systems::FiledProjectId(id)).await {
        Ok(pr) => pr,
        Err(SystemsError::NotFound { .. }) => return plain_error(StatusCode::NOT_FOUND, "项目不存在，或无权查看。"),
        Err(e) => return back_with("/projects", &e),
    };
    let next = project.next_stage.map(|n| (n.as_str(), n.label_zh()));
    let gate_open = project.next_stage.and_then(ProjectStage::gate).is_none_or(|g| project.gates.iter().any(|x| x.gate == g && x.open));
    let flash = p.flash();
    let t = ProjectPage {
        l: layout(&state, &s, &project.document.name, "projects", flash).await,
        p: project,
        today: state.exchange.sharing.today().to_string(),
        next,
        gate_open,
    };
    render(&t)
}

#[derive(Deserialize)]
pub struct AdvanceForm {
    csrf: String,
    stage: String,
    entered_on: String,
    document: String,
    #[serde(default)]
    override_reason: String,
}

/// Moves a project to its next stage (the gate decides; an override needs its reason).
pub async fn advance_project(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Form(f): Form<AdvanceForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let to = format!("/projects/{id}");
    let entry = (|| {
        Ok::<_, SystemsError>(systems::StageEntry {
            stage: listed("stage", &f.stage, ProjectStage::parse, ProjectStage::expected())?,
            entered_on: date_of("entered_on", &f.entered_on)?.ok_or_else(|| field_error("entered_on", "required"))?,
            document: f.document.clone(),
            override_reason: Some(f.override_reason.trim().to_string()).filter(|r| !r.is_empty()),
        })
    })();
    let result = match entry {
        Ok(entry) => systems::advance_project(&state.exchange, &s.principal, &s.ctx(), systems::FiledProjectId(id), entry).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => done(&to, "saved"),
        Err(e) => back_with(&to, &e),
    }
}

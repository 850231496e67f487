//! Portal pages and form handlers. Every rule is in the service functions; these only render and
//! translate.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use rand::RngCore;
use serde::Deserialize;
use shutong_audit::{AuditContext, AuditFilter};
use shutong_identity::{
    self as identity, DepartmentId, DepartmentKind, DepartmentLevel, DepartmentPatch, IdentityError, NewDepartment, NewUser, Role,
    RoleAssignmentId, UserId, UserPatch, UserStatus,
};

use super::{LOGIN_CSRF_COOKIE, PortalSession, constant_time_eq, plain_error, session_cookie};
use crate::error::current_request_id;
use crate::extract::{ClientIp, cookie};
use crate::state::AppState;

/// What the base layout shows.
pub struct Layout {
    pub title: String,
    pub section: &'static str,
    /// The bar: the groups of pages this user may use (`nav`).
    pub nav: Vec<super::nav::NavGroup>,
    pub crumbs: Vec<super::nav::Crumb>,
    pub user_name: String,
    pub department_name: String,
    pub csrf: String,
    pub flash_ok: Option<String>,
    pub flash_error: Option<String>,
    /// The field the error concerns: `static/portal.js` shows the error beside it.
    pub flash_field: Option<String>,
    pub node_name: String,
    pub version: &'static str,
    /// Unread notices of the user's department.
    pub unread: i64,
}

#[derive(Deserialize, Default)]
pub struct Flash {
    pub ok: Option<String>,
    pub error: Option<String>,
    /// The form field the error concerns (the service's name for it), shown beside it.
    pub field: Option<String>,
}

pub(super) async fn layout(state: &AppState, s: &PortalSession, title: &str, section: &'static str, flash: Flash) -> Layout {
    let department_name = match s.principal.department_id {
        Some(d) => identity::get_department(&state.db, d).await.map(|d| d.name).unwrap_or_default(),
        None => String::new(),
    };
    let node_name = identity::node_identity(&state.db).await.ok().flatten().map(|n| n.name).unwrap_or_default();
    let access = super::nav::Access::of(&state.db, &s.principal).await;
    let nav = super::nav::groups(&access, section);
    let crumbs = super::nav::crumbs(&nav, section, title);
    let silent = shutong_exchange::nodes::silent_nodes(&state.exchange, &s.principal).await.map_or(0, |n| n.len() as i64);
    let unread = shutong_sharing::inbox_unread(&state.db, &s.principal).await.unwrap_or(0) + silent;
    Layout {
        title: title.to_string(),
        section,
        nav,
        crumbs,
        user_name: s.principal.display_name.clone(),
        department_name,
        csrf: s.csrf.clone(),
        flash_ok: flash.ok.map(|k| ok_text(&k).to_string()),
        flash_error: flash.error,
        flash_field: flash.field.filter(|f| !f.is_empty()),
        node_name,
        version: env!("CARGO_PKG_VERSION"),
        unread,
    }
}

fn ok_text(key: &str) -> &'static str {
    match key {
        "created" => "已创建。",
        "saved" => "已保存。",
        "role_assigned" => "已授予角色。",
        "role_revoked" => "已撤销角色。",
        "password_reset" => "密码已重置，用户下次登录须修改。",
        "password_changed" => "密码已修改。",
        "submitted" => "已提交审核。",
        "published" => "已审核通过并发布。",
        "returned" => "已退回编制部门。",
        "revised" => "已创建新版本草稿。",
        "withdrawn" => "已撤销。",
        "applied" => "申请已提交，等待提供部门答复。",
        "subscribed" => "已订阅，授权已生效。",
        "approved_grant" => "已同意，授权已生成。",
        "rejected_answer" => "已答复不予共享。",
        "request_withdrawn" => "申请已撤回。",
        "escalated" => "已提请下一环节。",
        "message_added" => "已记录。",
        "grant_revoked" => "授权已撤销。",
        "grant_renewed" => "授权已续期。",
        "notices_read" => "提醒已全部标为已读。",
        "imported" => "台账已导入。",
        "import_unchanged" => "已导入：台账没有变化。",
        "checked" => "已完成质量检查。",
        "retired" => "规则已停用。",
        "objection_filed" => "已提出疑义：记录已标记为“校核中”，提供部门将在答复期限内核实。",
        "objection_answered" => "已答复疑义。",
        "objection_accepted" => "已认可答复，疑义办结。",
        "objection_escalated" => "已提请共享主管部门裁定。",
        "objection_ruled" => "已裁定。",
        "evidence_attached" => "已上传佐证材料。",
        "theme_refreshed" => "主题库已更新。",
        "base_compiled" => "已按标准项集编制基础信息资源（草稿）：请补充后提交审核。",
        _ => "操作成功。",
    }
}

pub(super) fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a template");
            plain_error(StatusCode::INTERNAL_SERVER_ERROR, "页面渲染失败。")
        }
    }
}

/// Redirects back to `to` with the error shown once, beside its field where it names one (post, redirect, get).
fn back_with_error(to: &str, e: &IdentityError) -> Response {
    super::errors::back(to, super::errors::identity(e))
}

pub(super) fn done(to: &str, ok: &str) -> Response {
    Redirect::to(&format!("{to}?ok={ok}")).into_response()
}

pub fn fmt_time(ms: i64) -> String {
    (shutong_store::from_ms(ms) + chrono::Duration::hours(8)).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

// ------------------------------------------------------------------ login

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    node_name: String,
    csrf: String,
    error: Option<String>,
    username: String,
}

async fn login_form(state: &AppState, error: Option<String>, username: String, status: StatusCode) -> Response {
    let csrf = random_hex(16);
    let node_name = identity::node_identity(&state.db).await.ok().flatten().map(|n| n.name).unwrap_or_default();
    let mut res = render(&LoginPage { node_name, csrf: csrf.clone(), error, username });
    *res.status_mut() = status;
    if let Ok(v) = format!("{LOGIN_CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=3600").parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

pub async fn login_page(State(state): State<AppState>, session: Option<PortalSessionOpt>) -> Response {
    if session.is_some_and(|s| s.0.is_some()) {
        return Redirect::to("/").into_response();
    }
    login_form(&state, None, String::new(), StatusCode::OK).await
}

/// An optional session for pages that also serve anonymous visitors.
pub struct PortalSessionOpt(pub Option<PortalSession>);

impl axum::extract::OptionalFromRequestParts<AppState> for PortalSessionOpt {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        use axum::extract::FromRequestParts;
        Ok(Some(PortalSessionOpt(PortalSession::from_request_parts(parts, state).await.ok())))
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

pub async fn login_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: axum::http::HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let (mut parts, _) = axum::http::Request::new(()).into_parts();
    parts.headers = headers;
    let expected = cookie(&parts.headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), f.csrf.as_bytes()) {
        return login_form(&state, Some("登录表单已过期，请重新登录。".into()), f.username, StatusCode::FORBIDDEN).await;
    }
    let ctx = AuditContext { actor: f.username.chars().take(64).collect(), request_id: current_request_id(), ip, ..Default::default() };
    let user = match identity::login(&state.db, &state.security, &ctx, &f.username, &f.password).await {
        Ok(u) => u,
        Err(IdentityError::InvalidCredentials) => {
            return login_form(&state, Some("用户名或密码错误。".into()), f.username, StatusCode::UNAUTHORIZED).await;
        }
        Err(IdentityError::Locked { until_ms }) => {
            return login_form(
                &state,
                Some(format!("登录失败次数过多，账户已锁定至 {}。", fmt_time(until_ms))),
                f.username,
                StatusCode::LOCKED,
            )
            .await;
        }
        Err(IdentityError::Store(shutong_store::StoreError::Unavailable(_))) => {
            return plain_error(StatusCode::SERVICE_UNAVAILABLE, "数据库暂时不可用，请稍后再试。");
        }
        Err(e) => {
            tracing::error!(error = %e, "login");
            return plain_error(StatusCode::INTERNAL_SERVER_ERROR, "内部错误。");
        }
    };
    let session = match identity::create_session(&state.db, &state.security, user.id).await {
        Ok(s) => s,
        Err(_) => return plain_error(StatusCode::SERVICE_UNAVAILABLE, "数据库暂时不可用，请稍后再试。"),
    };
    let to = if user.must_change_password { "/account" } else { "/" };
    let mut res = Redirect::to(to).into_response();
    res.headers_mut().append(header::SET_COOKIE, session_cookie(&state, &session.token, state.security.session_ttl_ms / 1000));
    if let Ok(v) = format!("{LOGIN_CSRF_COOKIE}=; Path=/login; Max-Age=0").parse() {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(State(state): State<AppState>, s: PortalSession, Form(f): Form<CsrfForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let _ = identity::end_session(&state.db, &s.ctx(), &s.token).await;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(header::SET_COOKIE, session_cookie(&state, "", 0));
    res
}

// ------------------------------------------------------------------ dashboard

pub struct EventRow {
    pub(super) seq: i64,
    /// Position in the hash chain, or empty while not sealed.
    pub(super) chain: String,
    pub(super) at: String,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) action_zh: &'static str,
    /// The target's kind in Chinese, its ID, and the portal page it has, if any.
    pub(super) target_kind_zh: String,
    pub(super) target_id: String,
    pub(super) target_href: Option<String>,
    /// The detail as labelled fields, and as stored (behind a toggle).
    pub(super) fields: Vec<(String, String)>,
    pub(super) detail: String,
    pub(super) ip: String,
}

/// The portal page of an event's target, where it has one.
pub(super) fn target_href(kind: &str, id: &str) -> Option<String> {
    let numeric = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    match kind {
        "catalog_resource" | "resource" => shutong_catalog::ResourceCode::parse(id).ok().map(|c| format!("/catalog/{c}")),
        "sharing_request" if numeric => Some(format!("/requests/{id}")),
        "sharing_grant" if numeric => Some(format!("/grants/{id}")),
        "department" if numeric => Some(format!("/departments/{id}")),
        "user" if numeric => Some(format!("/users/{id}")),
        _ => None,
    }
}

/// The Chinese name of a stored action code (the audit crate's list), or nothing for a code it does not know.
pub(super) fn action_zh(action: &str) -> &'static str {
    shutong_audit::Action::parse(action).map_or("", shutong_audit::Action::label_zh)
}

pub(super) fn event_row(e: &shutong_audit::AuditEvent) -> EventRow {
    EventRow {
        seq: e.seq,
        chain: e.chain_seq.map(|c| c.to_string()).unwrap_or_default(),
        at: fmt_time(e.at_ms),
        actor: e.actor.clone(),
        action: e.action.clone(),
        action_zh: action_zh(&e.action),
        target_kind_zh: shutong_audit::labels::target_kind_zh(&e.target_kind).map_or_else(|| e.target_kind.clone(), str::to_string),
        target_id: e.target_id.clone(),
        target_href: target_href(&e.target_kind, &e.target_id),
        fields: shutong_audit::labels::detail_fields(&e.detail),
        detail: e.detail.to_string(),
        ip: e.ip.clone().unwrap_or_default(),
    }
}

// ------------------------------------------------------------------ departments

pub struct DeptRow {
    id: i64,
    name: String,
    credit_code: String,
    region_code: String,
    region: String,
    level: &'static str,
    kind: &'static str,
    parent: String,
}

fn dept_rows(list: &[identity::Department], regions: &shutong_reference::RegionTable) -> Vec<DeptRow> {
    let names: std::collections::HashMap<DepartmentId, String> = list.iter().map(|d| (d.id, d.name.clone())).collect();
    list.iter()
        .map(|d| DeptRow {
            id: d.id.0,
            name: d.name.clone(),
            credit_code: d.credit_code.clone(),
            region_code: d.region_code.clone(),
            region: format!("{} {}", d.region_code, regions.lookup(&d.region_code).map(|(_, e)| e.name.clone()).unwrap_or_default()),
            level: d.level.label_zh(),
            kind: d.kind.label_zh(),
            parent: d.parent_id.and_then(|p| names.get(&p).cloned()).unwrap_or_else(|| "—".into()),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "departments.html")]
struct DepartmentsPage {
    l: Layout,
    can_create: bool,
    /// Every department (the form's 上级部门), and this page of them (the table).
    departments: Vec<DeptRow>,
    rows: Vec<DeptRow>,
    pager: super::pager::Pager,
    levels: Vec<(&'static str, &'static str)>,
    kinds: Vec<(&'static str, &'static str)>,
}

/// A page of a list ordered by ID: rows after the cursor, and the cursor parameter in the URL.
#[derive(Deserialize, Default)]
pub struct PagedParams {
    after: Option<i64>,
    department: Option<i64>,
    ok: Option<String>,
    error: Option<String>,
    /// The form field the error concerns (the service's name for it).
    field: Option<String>,
}

pub async fn departments(State(state): State<AppState>, s: PortalSession, Query(p): Query<PagedParams>) -> Response {
    let list = match identity::list_departments(&state.db).await {
        Ok(l) => l,
        Err(e) => return back_with_error("/", &e),
    };
    let regions = state.regions();
    let page_rows: Vec<identity::Department> =
        list.iter().filter(|d| p.after.is_none_or(|a| d.id.0 > a)).take(super::pager::PAGE_SIZE as usize).cloned().collect();
    let pager = super::pager::Pager::by_key("/departments", &[], "after", p.after, page_rows.last().map(|d| d.id.0), page_rows.len());
    let page = DepartmentsPage {
        l: layout(&state, &s, "部门", "departments", Flash { ok: p.ok, error: p.error, field: p.field }).await,
        can_create: s.principal.can_manage_departments(),
        rows: dept_rows(&page_rows, &regions),
        pager,
        departments: dept_rows(&list, &regions),
        levels: DepartmentLevel::ALL.iter().map(|l| (l.as_str(), l.label_zh())).collect(),
        kinds: DepartmentKind::ALL.iter().map(|k| (k.as_str(), k.label_zh())).collect(),
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct DepartmentForm {
    csrf: String,
    name: String,
    credit_code: String,
    region_code: String,
    level: String,
    kind: String,
    #[serde(default)]
    parent_id: String,
}

pub async fn create_department(State(state): State<AppState>, s: PortalSession, Form(f): Form<DepartmentForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let parse = || -> Result<NewDepartment, IdentityError> {
        let bad = |field: &str, m: String| IdentityError::Validation { field: field.into(), message: m };
        Ok(NewDepartment {
            name: f.name.clone(),
            credit_code: f.credit_code.clone(),
            region_code: f.region_code.clone(),
            level: DepartmentLevel::parse(&f.level).ok_or_else(|| bad("level", format!("'{}' is not a level", f.level)))?,
            kind: DepartmentKind::parse(&f.kind).ok_or_else(|| bad("kind", format!("'{}' is not a kind", f.kind)))?,
            parent_id: if f.parent_id.is_empty() {
                None
            } else {
                Some(DepartmentId(f.parent_id.parse().map_err(|_| bad("parent_id", format!("'{}' is not an ID", f.parent_id)))?))
            },
        })
    };
    let new = match parse() {
        Ok(n) => n,
        Err(e) => return back_with_error("/departments", &e),
    };
    match identity::create_department(&state.db, &state.regions(), &s.principal, &s.ctx(), new).await {
        Ok(d) => done(&format!("/departments/{}", d.id), "created"),
        Err(e) => back_with_error("/departments", &e),
    }
}

pub struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    department: String,
    roles: Vec<&'static str>,
    status: &'static str,
    active: bool,
    is_system: bool,
    last_login: String,
    last_signed: String,
    locked_until: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "department.html")]
struct DepartmentPage {
    l: Layout,
    d: DeptRow,
    can_edit: bool,
    can_read_users: bool,
    users: Vec<UserRow>,
}

async fn user_rows(state: &AppState, users: &[identity::User]) -> Vec<UserRow> {
    let depts: std::collections::HashMap<DepartmentId, String> =
        identity::list_departments(&state.db).await.unwrap_or_default().into_iter().map(|d| (d.id, d.name)).collect();
    let mut out = Vec::new();
    for u in users {
        let roles = identity::roles_of(&state.db, u.id).await.unwrap_or_default();
        out.push(UserRow {
            id: u.id.0,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            department: depts.get(&u.department_id).cloned().unwrap_or_default(),
            roles: roles.iter().map(|r| r.role.label_zh()).collect(),
            status: u.status.label_zh(),
            active: u.status == UserStatus::Active,
            is_system: u.is_system,
            last_login: u.last_login_at_ms.map(fmt_time).unwrap_or_else(|| "—".into()),
            last_signed: u.last_signed_at_ms.map(fmt_time).unwrap_or_else(|| "—".into()),
            locked_until: u.locked_until_ms.filter(|t| *t > shutong_store::now_ms()).map(fmt_time).unwrap_or_else(|| "—".into()),
            created_at: fmt_time(u.created_at_ms),
        });
    }
    out
}

pub async fn department(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Query(flash): Query<Flash>) -> Response {
    let list = identity::list_departments(&state.db).await.unwrap_or_default();
    let Some(row) = dept_rows(&list, &state.regions()).into_iter().find(|d| d.id == id) else {
        return plain_error(StatusCode::NOT_FOUND, "部门不存在。");
    };
    let can_read_users = s.principal.can_read_users_of(DepartmentId(id));
    let users = if can_read_users {
        let list = identity::list_users(&state.db, &s.principal, Some(DepartmentId(id))).await.unwrap_or_default();
        user_rows(&state, &list).await
    } else {
        Vec::new()
    };
    let page = DepartmentPage {
        l: layout(&state, &s, &row.name.clone(), "departments", flash).await,
        d: row,
        can_edit: s.principal.can_manage_departments(),
        can_read_users,
        users,
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct DepartmentEditForm {
    csrf: String,
    name: String,
    region_code: String,
}

pub async fn update_department(
    State(state): State<AppState>,
    s: PortalSession,
    Path(id): Path<i64>,
    Form(f): Form<DepartmentEditForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let to = format!("/departments/{id}");
    let patch = DepartmentPatch { name: Some(f.name), region_code: Some(f.region_code), ..Default::default() };
    match identity::update_department(&state.db, &state.regions(), &s.principal, &s.ctx(), DepartmentId(id), patch).await {
        Ok(_) => done(&to, "saved"),
        Err(e) => back_with_error(&to, &e),
    }
}

// ------------------------------------------------------------------ users

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    l: Layout,
    users: Vec<UserRow>,
    pager: super::pager::Pager,
    /// The departments to filter by, the chosen one marked (none: all the user may see).
    departments: Vec<(i64, String, bool)>,
    manageable: Vec<(i64, String)>,
    roles: Vec<(&'static str, &'static str)>,
}

fn assignable_roles(s: &PortalSession) -> Vec<(&'static str, &'static str)> {
    Role::ALL
        .iter()
        .filter(|r| **r != Role::SystemAccount)
        .filter(|r| s.principal.is_platform_admin() || !matches!(r, Role::PlatformAdmin | Role::Auditor))
        .map(|r| (r.as_str(), r.label_zh()))
        .collect()
}

pub async fn users(State(state): State<AppState>, s: PortalSession, Query(p): Query<PagedParams>) -> Response {
    let list = match identity::list_users(&state.db, &s.principal, p.department.map(DepartmentId)).await {
        Ok(l) => l,
        Err(e) => return back_with_error("/", &e),
    };
    let all_departments = identity::list_departments(&state.db).await.unwrap_or_default();
    let manageable = all_departments.iter().filter(|d| s.principal.can_manage_users_of(d.id)).map(|d| (d.id.0, d.name.clone())).collect();
    let page_rows: Vec<identity::User> =
        list.into_iter().filter(|u| p.after.is_none_or(|a| u.id.0 > a)).take(super::pager::PAGE_SIZE as usize).collect();
    let filters = [("department", p.department.map(|d| d.to_string()).unwrap_or_default())];
    let pager = super::pager::Pager::by_key("/users", &filters, "after", p.after, page_rows.last().map(|u| u.id.0), page_rows.len());
    let page = UsersPage {
        l: layout(&state, &s, "用户", "users", Flash { ok: p.ok, error: p.error, field: p.field }).await,
        users: user_rows(&state, &page_rows).await,
        pager,
        departments: all_departments.iter().map(|d| (d.id.0, d.name.clone(), Some(d.id.0) == p.department)).collect(),
        manageable,
        roles: assignable_roles(&s),
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct UserForm {
    csrf: String,
    username: String,
    display_name: String,
    department_id: i64,
    role: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    is_system: Option<String>,
}

pub async fn create_user(State(state): State<AppState>, s: PortalSession, Form(f): Form<UserForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let is_system = f.is_system.is_some();
    let mut roles = Vec::new();
    if let Some(r) = Role::parse(&f.role)
        && !is_system
    {
        roles.push(r);
    }
    let new = NewUser {
        username: f.username,
        display_name: f.display_name,
        department_id: DepartmentId(f.department_id),
        password: if is_system || f.password.is_empty() { None } else { Some(f.password) },
        is_system,
        roles,
    };
    match identity::create_user(&state.db, &state.security, &s.principal, &s.ctx(), new).await {
        Ok(u) => done(&format!("/users/{}", u.id), "created"),
        Err(e) => back_with_error("/users", &e),
    }
}

pub struct RoleRow {
    id: i64,
    label: &'static str,
    code: &'static str,
    department: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    l: Layout,
    u: UserRow,
    roles: Vec<RoleRow>,
    can_manage: bool,
    assignable: Vec<(&'static str, &'static str)>,
}

pub async fn user(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Query(flash): Query<Flash>) -> Response {
    let u = match identity::get_user(&state.db, &s.principal, UserId(id)).await {
        Ok(u) => u,
        Err(IdentityError::NotFound { .. }) => return plain_error(StatusCode::NOT_FOUND, "用户不存在或无权查看。"),
        Err(e) => return back_with_error("/users", &e),
    };
    let can_manage = s.principal.can_manage_users_of(u.department_id);
    let depts: std::collections::HashMap<DepartmentId, String> =
        identity::list_departments(&state.db).await.unwrap_or_default().into_iter().map(|d| (d.id, d.name)).collect();
    let roles = identity::roles_of(&state.db, u.id)
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| RoleRow {
            id: r.id.0,
            label: r.role.label_zh(),
            code: r.role.as_str(),
            department: depts.get(&r.department_id).cloned().unwrap_or_default(),
        })
        .collect();
    let row = user_rows(&state, std::slice::from_ref(&u)).await.remove(0);
    let page = UserPage {
        l: layout(&state, &s, &u.display_name, "users", flash).await,
        u: row,
        roles,
        can_manage,
        assignable: assignable_roles(&s),
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct UserEditForm {
    csrf: String,
    display_name: String,
    status: String,
}

pub async fn update_user(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Form(f): Form<UserEditForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let to = format!("/users/{id}");
    let patch = UserPatch { display_name: Some(f.display_name), status: UserStatus::parse(&f.status) };
    match identity::update_user(&state.db, &s.principal, &s.ctx(), UserId(id), patch).await {
        Ok(_) => done(&to, "saved"),
        Err(e) => back_with_error(&to, &e),
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf: String,
    role: String,
}

pub async fn assign_role(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Form(f): Form<RoleForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let to = format!("/users/{id}");
    let Some(role) = Role::parse(&f.role) else {
        return back_with_error(&to, &IdentityError::Validation { field: "role".into(), message: format!("'{}' is not a role", f.role) });
    };
    match identity::assign_role(&state.db, &s.principal, &s.ctx(), UserId(id), role).await {
        Ok(_) => done(&to, "role_assigned"),
        Err(e) => back_with_error(&to, &e),
    }
}

pub async fn revoke_role(
    State(state): State<AppState>,
    s: PortalSession,
    Path((id, rid)): Path<(i64, i64)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let to = format!("/users/{id}");
    match identity::revoke_role(&state.db, &s.principal, &s.ctx(), UserId(id), RoleAssignmentId(rid)).await {
        Ok(_) => done(&to, "role_revoked"),
        Err(e) => back_with_error(&to, &e),
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    csrf: String,
    new_password: String,
}

pub async fn reset_password(State(state): State<AppState>, s: PortalSession, Path(id): Path<i64>, Form(f): Form<ResetForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let to = format!("/users/{id}");
    if s.principal.user_id == Some(UserId(id)) {
        return Redirect::to("/account").into_response();
    }
    match identity::set_password(&state.db, &state.security, &s.principal, &s.ctx(), UserId(id), &f.new_password, None).await {
        Ok(_) => done(&to, "password_reset"),
        Err(e) => back_with_error(&to, &e),
    }
}

// ------------------------------------------------------------------ account

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    l: Layout,
    username: String,
    roles: Vec<&'static str>,
    must_change: bool,
    min_length: usize,
}

pub async fn account(State(state): State<AppState>, s: PortalSession, Query(flash): Query<Flash>) -> Response {
    let must_change = match s.principal.user_id {
        Some(id) => identity::get_user(&state.db, &s.principal, id).await.map(|u| u.must_change_password).unwrap_or(false),
        None => false,
    };
    let page = AccountPage {
        l: layout(&state, &s, "我的账户", "account", flash).await,
        username: s.principal.username.clone(),
        roles: s.principal.roles.iter().map(|r| r.role.label_zh()).collect(),
        must_change,
        min_length: state.security.password_policy.min_length,
    };
    render(&page)
}

#[derive(Deserialize)]
pub struct ChangePasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

pub async fn change_password(State(state): State<AppState>, s: PortalSession, Form(f): Form<ChangePasswordForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    let Some(id) = s.principal.user_id else { return Redirect::to("/login").into_response() };
    match identity::set_password(&state.db, &state.security, &s.principal, &s.ctx(), id, &f.new_password, Some(&f.current_password)).await {
        // Changing the password ends all sessions, this one included.
        Ok(_) => {
            let mut res = Redirect::to("/login").into_response();
            res.headers_mut().append(header::SET_COOKIE, session_cookie(&state, "", 0));
            res
        }
        Err(e) => back_with_error("/account", &e),
    }
}

// ------------------------------------------------------------------ audit

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    l: Layout,
    verified: Option<VerifyOutcome>,
    events: Vec<EventRow>,
    filter_action: String,
    filter_actor: String,
    filter_target: String,
    filter_subject: String,
    filter_from: String,
    filter_to: String,
    filter_clear: bool,
    departments: Vec<(i64, String, bool)>,
    pager: super::pager::Pager,
    chain: Option<shutong_audit::ChainStatus>,
    last_checkpoint_at: String,
    public_key: String,
    export_link: String,
}

#[derive(Deserialize, Default)]
pub struct AuditParams {
    action: Option<String>,
    actor: Option<String>,
    department_id: Option<String>,
    /// A resource code (or any target identifier).
    target: Option<String>,
    /// A data subject (ID number, credit code or another dataset key): accesses to its records.
    subject: Option<String>,
    /// YYYY-MM-DD, China time, inclusive.
    from: Option<String>,
    to: Option<String>,
    /// `1`: only data accesses that delivered sensitive items in clear text.
    clear: Option<String>,
    before: Option<i64>,
    ok: Option<String>,
    error: Option<String>,
    /// The form field the error concerns (the service's name for it).
    field: Option<String>,
}

pub async fn audit(State(state): State<AppState>, s: PortalSession, Query(p): Query<AuditParams>) -> Response {
    audit_page(&state, &s, p, None).await
}

/// The outcome of a verification run from the portal: passed, and the text to show.
pub struct VerifyOutcome {
    ok: bool,
    text: String,
}

async fn audit_page(state: &AppState, s: &PortalSession, p: AuditParams, verified: Option<VerifyOutcome>) -> Response {
    let non_empty = |o: &Option<String>| o.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let dept = non_empty(&p.department_id).and_then(|d| d.parse::<i64>().ok());
    let date = |o: &Option<String>, field: &str| -> Result<Option<chrono::NaiveDate>, String> {
        match non_empty(o) {
            None => Ok(None),
            Some(v) => {
                chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d").map(Some).map_err(|_| format!("{field}「{v}」不是 YYYY-MM-DD 格式的日期"))
            }
        }
    };
    let (from, to) = match (date(&p.from, "起始日期"), date(&p.to, "截止日期")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            let q = serde_urlencoded::to_string([("error", e)]).unwrap_or_default();
            return Redirect::to(&format!("/audit?{q}")).into_response();
        }
    };
    let target = non_empty(&p.target);
    let subject = non_empty(&p.subject);
    let detail_contains = match subject.as_deref().map(|v| shutong_exchange::sealed::subject_search(&state.exchange, v)) {
        None => None,
        Some(Ok(token)) => Some(token),
        Some(Err(e)) => {
            let q = serde_urlencoded::to_string([("error", format!("数据主体：{e}"))]).unwrap_or_default();
            return Redirect::to(&format!("/audit?{q}")).into_response();
        }
    };
    let filter = AuditFilter {
        action: non_empty(&p.action),
        actor: non_empty(&p.actor),
        department_id: dept,
        target_id: target.clone(),
        from_ms: from.map(shutong_store::china_midnight_ms),
        to_ms: to.and_then(|d| d.succ_opt()).map(shutong_store::china_midnight_ms),
        before_seq: p.before,
        detail_contains,
        clear_text: p.clear.as_deref() == Some("1"),
        limit: super::pager::PAGE_SIZE,
        ..Default::default()
    };
    let events = match shutong_audit::list(&state.db, &s.principal, &filter).await {
        Ok(e) => e,
        Err(shutong_audit::AuditError::Forbidden(_)) => {
            return plain_error(StatusCode::FORBIDDEN, "只有平台管理员和审计人员可以查看审计日志。");
        }
        Err(_) => return plain_error(StatusCode::SERVICE_UNAVAILABLE, "数据库暂时不可用，请稍后再试。"),
    };
    let fmt_date = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    let filters = [
        ("action", filter.action.clone().unwrap_or_default()),
        ("actor", filter.actor.clone().unwrap_or_default()),
        ("department_id", dept.map(|d| d.to_string()).unwrap_or_default()),
        ("target", target.clone().unwrap_or_default()),
        ("subject", subject.clone().unwrap_or_default()),
        ("from", fmt_date(from)),
        ("to", fmt_date(to)),
        ("clear", if filter.clear_text { "1".into() } else { String::new() }),
    ];
    let pager = super::pager::Pager::by_key("/audit", &filters, "before", p.before, events.last().map(|e| e.seq), events.len());
    let departments = identity::list_departments(&state.db)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|d| (d.id.0, d.name, Some(d.id.0) == dept))
        .collect();
    let chain = shutong_audit::status(&state.db, &s.principal).await.ok();
    let page = AuditPage {
        l: layout(state, s, "审计日志", "audit", Flash { ok: p.ok, error: p.error, field: p.field }).await,
        verified,
        events: events.iter().map(event_row).collect(),
        filter_action: filter.action.unwrap_or_default(),
        filter_actor: filter.actor.unwrap_or_default(),
        filter_target: target.unwrap_or_default(),
        filter_subject: subject.unwrap_or_default(),
        filter_from: fmt_date(from),
        filter_to: fmt_date(to),
        filter_clear: filter.clear_text,
        departments,
        pager,
        last_checkpoint_at: chain.as_ref().and_then(|c| c.last_checkpoint.as_ref()).map(|c| fmt_time(c.at_ms)).unwrap_or_default(),
        export_link: chain
            .as_ref()
            .map(|c| format!("/api/v1/audit/export?from={}&to={}", c.archived_through + 1, c.head))
            .unwrap_or_default(),
        chain,
        public_key: state.node_key.public_key_hex(),
    };
    render(&page)
}

/// 核验: re-computes the chain and its signatures, and reports the outcome on the audit page.
pub async fn verify_audit(State(state): State<AppState>, s: PortalSession, Form(f): Form<CsrfForm>) -> Response {
    if let Some(r) = s.csrf_rejection(&f.csrf) {
        return r;
    }
    if !s.principal.can_read_audit() {
        return plain_error(StatusCode::FORBIDDEN, "只有平台管理员和审计人员可以核验审计日志。");
    }
    let outcome = match shutong_audit::verify_recorded(&state.db, &s.principal, &s.ctx(), vec![state.node_key.public_key_hex()]).await {
        Ok(r) if r.ok => VerifyOutcome {
            ok: true,
            text: format!(
                "核验通过：第 {}–{} 号事件（{} 条）哈希链完整，{} 个签名检查点有效，签名覆盖至第 {} 号；用时 {} 毫秒。",
                r.from, r.through, r.events, r.checkpoints, r.signed_through, r.elapsed_ms
            ),
        },
        Ok(r) => VerifyOutcome {
            ok: false,
            text: match r.failure {
                Some(f) => format!(
                    "核验失败：链位置 {}{}：{}",
                    f.chain_seq,
                    f.seq.map(|s| format!("（事件序号 {s}）")).unwrap_or_default(),
                    f.reason_zh
                ),
                None => "核验失败。".into(),
            },
        },
        Err(e) => {
            tracing::error!(error = %e, "portal audit verification failed to run");
            VerifyOutcome {
                ok: false, text: "核验未能完成：数据库暂时不可用或审计链已损坏，请查看服务日志。".into()
            }
        }
    };
    audit_page(&state, &s, AuditParams::default(), Some(outcome)).await
}

//! The portal (政务信息共享网站): server-rendered pages in Simplified Chinese, served by the same binary.
//! Sessions are HttpOnly, SameSite=Strict cookies; every form carries the session's CSRF token (the login
//! form a double-submit token), checked before anything else.

mod catalog;
mod chart;
mod data;
mod errors;
mod home;
mod nav;
mod nodes;
mod objections;
mod pager;
mod pages;
mod quality;
mod search;
mod sharing;
mod systems;
mod zh;
mod zh_table;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use shutong_audit::AuditContext;
use shutong_identity::Principal;

use crate::error::current_request_id;
use crate::extract::{SESSION_COOKIE, client_ip, cookie};
use crate::state::AppState;

pub const LOGIN_CSRF_COOKIE: &str = "shutong_login_csrf";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(stylesheet))
        .route("/static/portal.js", get(script))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route("/", get(home::dashboard))
        .route("/search", get(search::search))
        .route("/departments", get(pages::departments).post(pages::create_department))
        .route("/departments/{id}", get(pages::department).post(pages::update_department))
        .route("/users", get(pages::users).post(pages::create_user))
        .route("/users/{id}", get(pages::user).post(pages::update_user))
        .route("/users/{id}/roles", post(pages::assign_role))
        .route("/users/{id}/roles/{rid}/revoke", post(pages::revoke_role))
        .route("/users/{id}/password", post(pages::reset_password))
        .route("/account", get(pages::account))
        .route("/account/password", post(pages::change_password))
        .route("/audit", get(pages::audit))
        .route("/audit/verify", post(pages::verify_audit))
        .route("/catalog", get(catalog::search))
        .route("/catalog/new", get(catalog::new_form).post(catalog::create))
        .route("/catalog/review", get(catalog::review_queue))
        .route(
            "/catalog/import",
            get(catalog::import_page).post(catalog::import_upload).layer(axum::extract::DefaultBodyLimit::max(64 << 20)),
        )
        .route("/catalog/import/{id}", get(catalog::import_job))
        .route("/catalog/stats", get(catalog::stats))
        .route("/catalog/{class}/{seq}", get(catalog::resource))
        .route("/catalog/{class}/{seq}/data", get(data::dataset))
        .route("/catalog/{class}/{seq}/quality", get(quality::dataset_quality))
        .route("/catalog/{class}/{seq}/quality/check", post(quality::check_now))
        .route("/catalog/{class}/{seq}/quality/retire", post(quality::retire))
        .route("/quality", get(quality::overview))
        .route("/catalog/{class}/{seq}/data/record", get(objections::record))
        .route("/quality/objections", get(objections::list).post(objections::file).layer(axum::extract::DefaultBodyLimit::max(1100 << 20)))
        .route("/quality/objections/{id}", get(objections::detail))
        .route(
            "/quality/objections/{id}/evidence",
            get(objections::evidence).post(objections::attach).layer(axum::extract::DefaultBodyLimit::max(1100 << 20)),
        )
        .route("/quality/objections/{id}/{action}", post(objections::act))
        .route("/quality/consistency", get(objections::consistency))
        .route("/quality/consistency/{id}", get(objections::consistency_run))
        .route("/quality/consistency/conflicts/{id}/objection", post(objections::object_to_conflict))
        .route("/quality/themes", get(objections::themes))
        .route("/quality/themes/{id}", get(objections::theme))
        .route("/quality/themes/{id}/refresh", post(objections::refresh_theme))
        .route("/quality/base-templates/{code}/compile", post(objections::compile_base))
        .route("/catalog/{class}/{seq}/data/batches", post(data::upload).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/catalog/{class}/{seq}/data/batches/{id}", get(data::batch))
        .route("/catalog/{class}/{seq}/data/files", post(data::upload_file).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/catalog/{class}/{seq}/edit", get(catalog::edit_form).post(catalog::update))
        .route("/catalog/{class}/{seq}/{verb}", post(catalog::action))
        .route("/requests", get(sharing::requests).post(sharing::create))
        .route("/requests/new", get(sharing::new_form))
        .route("/requests/{id}", get(sharing::request))
        .route("/requests/{id}/print", get(sharing::request_print))
        .route("/requests/{id}/{verb}", post(sharing::request_action))
        .route("/grants", get(sharing::grants))
        .route("/grants/{id}", get(sharing::grant))
        .route("/grants/{id}/print", get(sharing::grant_print))
        .route("/grants/{id}/{verb}", post(sharing::grant_action))
        .route("/nodes", get(nodes::nodes_list))
        .route("/nodes/{id}", get(nodes::node))
        .route("/inbox", get(sharing::inbox))
        .route("/inbox/read", post(sharing::mark_read))
        .route("/systems", get(systems::systems_list).post(systems::create_system))
        .route("/systems/import", post(systems::import_systems).layer(axum::extract::DefaultBodyLimit::max(32 << 20)))
        .route("/systems/zombies", get(systems::zombies))
        .route("/systems/{id}", get(systems::system))
        .route("/systems/{id}/{verb}", post(systems::system_action))
        .route("/reports", get(systems::reports).post(systems::save_report))
        .route("/reports/{department}/{version}/print", get(systems::report_print))
        .route("/reports/{department}/{version}/{verb}", post(systems::report_action))
        .route("/projects", get(systems::projects).post(systems::file_project))
        .route("/projects/review", get(systems::funding_review))
        .route("/projects/{id}", get(systems::project))
        .route("/projects/{id}/advance", post(systems::advance_project))
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/portal.js"),
    )
        .into_response()
}

/// A logged-in portal user.
pub struct PortalSession {
    pub principal: Principal,
    pub csrf: String,
    pub token: String,
    pub ip: Option<String>,
}

impl PortalSession {
    pub fn ctx(&self) -> AuditContext {
        self.principal.audit_context(current_request_id(), self.ip.clone())
    }

    /// The refusal of a form whose CSRF token is not this session's, if it is not.
    pub fn csrf_rejection(&self, sent: &str) -> Option<Response> {
        (!constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()))
            .then(|| plain_error(StatusCode::FORBIDDEN, "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。"))
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A resource code from its two path segments, parsed once: a malformed one is a 404 page, and the
/// services get it typed.
pub fn resource_code(class: &str, seq: &str) -> Result<shutong_catalog::ResourceCode, Box<Response>> {
    shutong_catalog::ResourceCode::parse(&format!("{class}/{seq}"))
        .map_err(|e| Box::new(plain_error(StatusCode::NOT_FOUND, &format!("资源代码无效：{e}"))))
}

pub fn plain_error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{}</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body><main><div class=\"card\"><h1>{}</h1><p>{}</p><p><a href=\"/\">返回工作台</a></p></div></main></body></html>",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        html_escape(message)
    );
    (status, Html(body)).into_response()
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

impl FromRequestParts<AppState> for PortalSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/login").into_response();
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_string) else {
            return Err(to_login());
        };
        match shutong_identity::resolve_session(&state.db, &token).await {
            Ok(Some((principal, csrf))) => Ok(PortalSession { principal, csrf, token, ip: client_ip(parts) }),
            Ok(None) => Err(to_login()),
            Err(shutong_identity::IdentityError::Store(shutong_store::StoreError::Unavailable(_))) => {
                Err(plain_error(StatusCode::SERVICE_UNAVAILABLE, "数据库暂时不可用，请稍后再试。"))
            }
            Err(e) => {
                tracing::error!(error = %e, "resolving a portal session");
                Err(plain_error(StatusCode::INTERNAL_SERVER_ERROR, "内部错误。"))
            }
        }
    }
}

/// The session cookie: HttpOnly, SameSite=Strict, Secure where configured.
pub fn session_cookie(state: &AppState, token: &str, max_age_seconds: i64) -> HeaderValue {
    let secure = if state.config.security.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

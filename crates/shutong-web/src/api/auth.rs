//! Login, logout and the caller's own identity.

use axum::extract::State;
use axum::http::HeaderMap;
use shutong_api_types::{ErrorEnvelope, LoginRequest, LoginResponse, MeResponse};
use shutong_audit::AuditContext;
use shutong_identity as identity;

use super::views::{department_view, role_view, user_view};
use crate::error::{ApiError, ApiResult, current_request_id};
use crate::extract::{ApiJson, Caller, ClientIp};
use crate::state::AppState;

/// Logs in with username and password and returns a session bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorEnvelope), (status = 423, description = "locked after too many failures", body = ErrorEnvelope)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    let ctx = AuditContext { actor: req.username.chars().take(64).collect(), request_id: current_request_id(), ip, ..Default::default() };
    let user = identity::login(&state.db, &state.security, &ctx, &req.username, &req.password).await?;
    let session = identity::create_session(&state.db, &state.security, user.id).await?;
    let principal = identity::load_principal(&state.db, user.id).await?.ok_or_else(ApiError::unauthenticated)?;
    Ok(axum::Json(LoginResponse {
        token: session.token,
        expires_at: shutong_store::from_ms(session.expires_at_ms),
        must_change_password: user.must_change_password,
        me: me_response(&state, &principal).await?,
    }))
}

/// Ends the session used for this call.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorEnvelope)))]
pub async fn logout(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<axum::http::StatusCode> {
    if let Some(token) = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) {
        identity::end_session(&state.db, &caller.ctx(), token.trim()).await?;
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}

pub async fn me_response(state: &AppState, p: &identity::Principal) -> ApiResult<MeResponse> {
    let user_id = p.user_id.ok_or_else(ApiError::unauthenticated)?;
    let user = identity::get_user(&state.db, p, user_id).await?;
    let department = identity::get_department(&state.db, user.department_id).await.ok();
    let regions = state.regions();
    Ok(MeResponse {
        user: user_view(&user),
        department: department.as_ref().map(|d| department_view(d, &regions)),
        roles: p.roles.iter().map(role_view).collect(),
    })
}

/// The caller: user, department and roles.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorEnvelope)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<MeResponse>> {
    Ok(axum::Json(me_response(&state, &caller.principal).await?))
}

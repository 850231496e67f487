//! Users, roles and passwords.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shutong_api_types::*;
use shutong_identity::{self as identity, DepartmentId, NewUser, Role, RoleAssignmentId, UserId, UserPatch, UserStatus};

use super::views::{role_view, user_view};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

pub fn parse_role(field: &str, s: &str) -> ApiResult<Role> {
    Role::parse(s).ok_or_else(|| ApiError::validation(field, format!("{field}: '{s}' is not one of {}", Role::expected())))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Only users of this department.
    pub department_id: Option<i64>,
}

/// Lists the users the caller may see: all for platform administrators and auditors, those of the
/// administered departments for department administrators, otherwise only the caller.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, body = UserList), (status = 401, body = ErrorEnvelope)))]
pub async fn list_users(State(state): State<AppState>, caller: Caller, Query(q): Query<UserQuery>) -> ApiResult<axum::Json<UserList>> {
    let users = identity::list_users(&state.db, &caller.principal, q.department_id.map(DepartmentId)).await?;
    Ok(axum::Json(UserList { users: users.iter().map(user_view).collect() }))
}

/// Creates a person's account or a system account.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])), request_body = CreateUserRequest,
    responses((status = 201, body = UserDetail), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, axum::Json<UserDetail>)> {
    let roles = req.roles.iter().enumerate().map(|(i, r)| parse_role(&format!("roles[{i}]"), r)).collect::<ApiResult<Vec<_>>>()?;
    let user = identity::create_user(
        &state.db,
        &state.security,
        &caller.principal,
        &caller.ctx(),
        NewUser {
            username: req.username,
            display_name: req.display_name,
            department_id: DepartmentId(req.department_id),
            password: req.password,
            is_system: req.is_system,
            roles,
        },
    )
    .await?;
    let roles = identity::roles_of(&state.db, user.id).await?;
    Ok((StatusCode::CREATED, axum::Json(UserDetail { user: user_view(&user), roles: roles.iter().map(role_view).collect() })))
}

/// One user with its roles.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = UserDetail), (status = 404, body = ErrorEnvelope)))]
pub async fn get_user(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<UserDetail>> {
    let user = identity::get_user(&state.db, &caller.principal, UserId(id)).await?;
    let roles = identity::roles_of(&state.db, user.id).await?;
    Ok(axum::Json(UserDetail { user: user_view(&user), roles: roles.iter().map(role_view).collect() }))
}

/// Changes a user's display name or status.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = i64, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = UserView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> ApiResult<axum::Json<UserView>> {
    let status = req
        .status
        .as_deref()
        .map(|s| {
            UserStatus::parse(s)
                .ok_or_else(|| ApiError::validation("status", format!("status: '{s}' is not one of {}", UserStatus::expected())))
        })
        .transpose()?;
    let user = identity::update_user(
        &state.db,
        &caller.principal,
        &caller.ctx(),
        UserId(id),
        UserPatch { display_name: req.display_name, status },
    )
    .await?;
    Ok(axum::Json(user_view(&user)))
}

/// Registers (or removes) a system account's SM2 public key: the account may then sign its requests
/// instead of sending a bearer token (headers X-Shutong-Account, -Timestamp, -Nonce, -Content-SM3,
/// -Signature; see the README).
#[utoipa::path(put, path = "/api/v1/users/{id}/sm2-key", tag = "users", security(("bearer" = [])), params(("id" = i64, Path)), request_body = Sm2KeyRequest,
    responses((status = 200, body = Sm2KeyView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn set_sm2_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<Sm2KeyRequest>,
) -> ApiResult<axum::Json<Sm2KeyView>> {
    let key = identity::signing::set_sm2_key(&state.db, &caller.principal, &caller.ctx(), UserId(id), req.public_key.as_deref()).await?;
    Ok(axum::Json(Sm2KeyView { user_id: id, public_key: key }))
}

/// Sets a password: one's own (with the current one) or, as administrator, another's.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", security(("bearer" = [])), params(("id" = i64, Path)), request_body = SetPasswordRequest,
    responses((status = 204), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<SetPasswordRequest>,
) -> ApiResult<StatusCode> {
    identity::set_password(
        &state.db,
        &state.security,
        &caller.principal,
        &caller.ctx(),
        UserId(id),
        &req.new_password,
        req.current_password.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives a user a role in its department.
#[utoipa::path(post, path = "/api/v1/users/{id}/roles", tag = "users", security(("bearer" = [])), params(("id" = i64, Path)), request_body = AssignRoleRequest,
    responses((status = 201, body = RoleView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn assign_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<AssignRoleRequest>,
) -> ApiResult<(StatusCode, axum::Json<RoleView>)> {
    let role = parse_role("role", &req.role)?;
    let ra = identity::assign_role(&state.db, &caller.principal, &caller.ctx(), UserId(id), role).await?;
    Ok((StatusCode::CREATED, axum::Json(role_view(&ra))))
}

/// Takes a role assignment away.
#[utoipa::path(delete, path = "/api/v1/users/{id}/roles/{assignment_id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path), ("assignment_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn revoke_role(State(state): State<AppState>, caller: Caller, Path((id, assignment)): Path<(i64, i64)>) -> ApiResult<StatusCode> {
    identity::revoke_role(&state.db, &caller.principal, &caller.ctx(), UserId(id), RoleAssignmentId(assignment)).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Departments (政务部门).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use shutong_api_types::*;
use shutong_identity::{self as identity, DepartmentId, DepartmentKind, DepartmentLevel, DepartmentPatch, NewDepartment};

use super::views::department_view;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

pub fn parse_level(field: &str, s: &str) -> ApiResult<DepartmentLevel> {
    DepartmentLevel::parse(s)
        .ok_or_else(|| ApiError::validation(field, format!("{field}: '{s}' is not one of {}", DepartmentLevel::expected())))
}

pub fn parse_kind(field: &str, s: &str) -> ApiResult<DepartmentKind> {
    DepartmentKind::parse(s)
        .ok_or_else(|| ApiError::validation(field, format!("{field}: '{s}' is not one of {}", DepartmentKind::expected())))
}

/// Lists all departments (the directory is visible to every authenticated caller).
#[utoipa::path(get, path = "/api/v1/departments", tag = "departments", security(("bearer" = [])),
    responses((status = 200, body = DepartmentList), (status = 401, body = ErrorEnvelope)))]
pub async fn list_departments(State(state): State<AppState>, _caller: Caller) -> ApiResult<axum::Json<DepartmentList>> {
    let regions = state.regions();
    let departments = identity::list_departments(&state.db).await?.iter().map(|d| department_view(d, &regions)).collect();
    Ok(axum::Json(DepartmentList { departments }))
}

/// Registers a department (platform administrators).
#[utoipa::path(post, path = "/api/v1/departments", tag = "departments", security(("bearer" = [])), request_body = CreateDepartmentRequest,
    responses((status = 201, body = DepartmentView), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_department(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateDepartmentRequest>,
) -> ApiResult<(StatusCode, axum::Json<DepartmentView>)> {
    let regions = state.regions();
    let d = identity::create_department(
        &state.db,
        &regions,
        &caller.principal,
        &caller.ctx(),
        NewDepartment {
            name: req.name,
            credit_code: req.credit_code,
            region_code: req.region_code,
            level: parse_level("level", &req.level)?,
            kind: parse_kind("kind", &req.kind)?,
            parent_id: req.parent_id.map(DepartmentId),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(department_view(&d, &regions))))
}

/// One department.
#[utoipa::path(get, path = "/api/v1/departments/{id}", tag = "departments", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = DepartmentView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_department(State(state): State<AppState>, _caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<DepartmentView>> {
    let d = identity::get_department(&state.db, DepartmentId(id)).await?;
    Ok(axum::Json(department_view(&d, &state.regions())))
}

/// Changes a department (platform administrators). The credit code cannot change.
#[utoipa::path(patch, path = "/api/v1/departments/{id}", tag = "departments", security(("bearer" = [])), request_body = UpdateDepartmentRequest,
    params(("id" = i64, Path)), responses((status = 200, body = DepartmentView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update_department(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<UpdateDepartmentRequest>,
) -> ApiResult<axum::Json<DepartmentView>> {
    let regions = state.regions();
    let patch = DepartmentPatch {
        name: req.name,
        region_code: req.region_code,
        level: req.level.as_deref().map(|l| parse_level("level", l)).transpose()?,
        kind: req.kind.as_deref().map(|k| parse_kind("kind", k)).transpose()?,
        parent_id: req.parent_id.map(|p| p.map(DepartmentId)),
    };
    let d = identity::update_department(&state.db, &regions, &caller.principal, &caller.ctx(), DepartmentId(id), patch).await?;
    Ok(axum::Json(department_view(&d, &regions)))
}

//! 数据质量 (SPEC C6; 办法 第十七条): the dimensions and their weights, a dataset's rules, its checks and
//! their results, and the scores by dataset and department.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shutong_api_types::ErrorEnvelope;
use shutong_api_types::quality::{
    NewQualityRule, QualityCheck, QualityCheckList, QualityDimension, QualityDimensionList, QualityDimensionView, QualityRuleList,
    QualityRuleView, QualityScores, RetireQualityRule, SetQualityDimension,
};
use shutong_identity::DepartmentId;
use shutong_quality as quality;
use utoipa::IntoParams;

use super::catalog::code_of;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

/// The quality dimensions (GB/T 36344-2018) with the names and weights the sharing authority set.
#[utoipa::path(get, path = "/api/v1/quality/dimensions", tag = "quality", security(("bearer" = [])),
    responses((status = 200, body = QualityDimensionList)))]
pub async fn list_dimensions(State(state): State<AppState>, _caller: Caller) -> ApiResult<axum::Json<QualityDimensionList>> {
    let dimensions = quality::dimensions(&state.exchange).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(QualityDimensionList { dimensions }))
}

/// Sets a dimension's name and weight (0–100): the sharing authority only.
#[utoipa::path(put, path = "/api/v1/quality/dimensions/{dimension}", tag = "quality", security(("bearer" = [])),
    params(("dimension" = QualityDimension, Path)), request_body = SetQualityDimension,
    responses((status = 200, body = QualityDimensionView), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn set_dimension(
    State(state): State<AppState>,
    caller: Caller,
    Path(dimension): Path<String>,
    ApiJson(body): ApiJson<SetQualityDimension>,
) -> ApiResult<axum::Json<QualityDimensionView>> {
    let dimension: QualityDimension = serde_json::from_value(serde_json::Value::String(dimension.clone())).map_err(|_| {
        let expected: Vec<&str> = QualityDimension::ALL.iter().map(|d| d.as_str()).collect();
        ApiError::validation("dimension", format!("dimension: '{dimension}' is not one of {}", expected.join(", ")))
    })?;
    let d = quality::set_dimension(&state.exchange, &caller.principal, &caller.ctx(), dimension.into(), body.name.as_deref(), body.weight)
        .await?;
    Ok(axum::Json(d.into()))
}

/// A dataset's rules: those derived from its catalog entry, then those added; retired ones included, marked.
#[utoipa::path(get, path = "/api/v1/data/{classification}/{sequence}/quality/rules", tag = "quality", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)),
    responses((status = 200, body = QualityRuleList), (status = 404, body = ErrorEnvelope)))]
pub async fn list_rules(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
) -> ApiResult<axum::Json<QualityRuleList>> {
    let code = code_of(&class, &seq)?;
    let rules = quality::rules(&state.exchange, &caller.principal, &code).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(QualityRuleList { rules }))
}

/// Adds a rule to a dataset: the provider's administrators and catalog editors, or the sharing authority.
#[utoipa::path(post, path = "/api/v1/data/{classification}/{sequence}/quality/rules", tag = "quality", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)), request_body = NewQualityRule,
    responses((status = 201, body = QualityRuleView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn add_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    ApiJson(body): ApiJson<NewQualityRule>,
) -> ApiResult<(StatusCode, axum::Json<QualityRuleView>)> {
    let code = code_of(&class, &seq)?;
    let rule = quality::add_rule(&state.exchange, &caller.principal, &caller.ctx(), &code, body.into()).await?;
    Ok((StatusCode::CREATED, axum::Json(rule.into())))
}

/// Retires a rule by its key, with a reason; its results stay.
#[utoipa::path(post, path = "/api/v1/data/{classification}/{sequence}/quality/rules/retire", tag = "quality", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)), request_body = RetireQualityRule,
    responses((status = 200, body = QualityRuleView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn retire_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    ApiJson(body): ApiJson<RetireQualityRule>,
) -> ApiResult<axum::Json<QualityRuleView>> {
    let code = code_of(&class, &seq)?;
    let rule = quality::retire_rule(&state.exchange, &caller.principal, &caller.ctx(), &code, &body.key, &body.reason).await?;
    Ok(axum::Json(rule.into()))
}

/// Checks a dataset now against every rule in force; the results are appended as one check.
#[utoipa::path(post, path = "/api/v1/data/{classification}/{sequence}/quality/checks", tag = "quality", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path)),
    responses((status = 201, body = QualityCheck), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub async fn run_check(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
) -> ApiResult<(StatusCode, axum::Json<QualityCheck>)> {
    let code = code_of(&class, &seq)?;
    let regions = state.regions();
    let run = quality::check(&state.exchange, &caller.principal, &caller.ctx(), &regions, &code, quality::CheckCause::Manual, None).await?;
    Ok((StatusCode::CREATED, axum::Json(run.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckListQuery {
    /// Checks older than this check ID (the `next_before` of the previous page).
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A dataset's checks, newest first: its score over time.
#[utoipa::path(get, path = "/api/v1/data/{classification}/{sequence}/quality/checks", tag = "quality", security(("bearer" = [])),
    params(("classification" = String, Path), ("sequence" = String, Path), CheckListQuery),
    responses((status = 200, body = QualityCheckList), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn list_checks(
    State(state): State<AppState>,
    caller: Caller,
    Path((class, seq)): Path<(String, String)>,
    Query(q): Query<CheckListQuery>,
) -> ApiResult<axum::Json<QualityCheckList>> {
    let code = code_of(&class, &seq)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("limit", "limit: must be between 1 and 500"));
    }
    if q.before.is_some_and(|b| b < 1) {
        return Err(ApiError::validation("before", "before: must be a check ID (1 or more)"));
    }
    let runs = quality::runs(&state.exchange, &caller.principal, &code, q.before, limit + 1).await?;
    let more = runs.len() as i64 > limit;
    let checks: Vec<QualityCheck> = runs.into_iter().take(limit as usize).map(Into::into).collect();
    let next_before = if more { checks.last().map(|c| c.id) } else { None };
    Ok(axum::Json(QualityCheckList { checks, next_before }))
}

/// One check with every rule's result (failing keys masked).
#[utoipa::path(get, path = "/api/v1/quality/checks/{id}", tag = "quality", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = QualityCheck), (status = 404, body = ErrorEnvelope)))]
pub async fn get_check(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<QualityCheck>> {
    Ok(axum::Json(quality::run(&state.exchange, &caller.principal, quality::QualityRunId(id)).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScoreQuery {
    /// Only this department's datasets.
    #[param(minimum = 1)]
    pub department_id: Option<i64>,
}

/// The latest score of every checked dataset, and per department the mean of its datasets' scores.
#[utoipa::path(get, path = "/api/v1/quality/scores", tag = "quality", security(("bearer" = [])), params(ScoreQuery),
    responses((status = 200, body = QualityScores), (status = 422, body = ErrorEnvelope)))]
pub async fn scores(State(state): State<AppState>, _caller: Caller, Query(q): Query<ScoreQuery>) -> ApiResult<axum::Json<QualityScores>> {
    if q.department_id.is_some_and(|d| d < 1) {
        return Err(ApiError::validation("department_id", "department_id: the ID must be a positive number"));
    }
    let (datasets, departments) = quality::scores(&state.exchange, q.department_id.map(DepartmentId)).await?;
    Ok(axum::Json(QualityScores {
        datasets: datasets.into_iter().map(Into::into).collect(),
        departments: departments.into_iter().map(Into::into).collect(),
    }))
}

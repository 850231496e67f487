//! 信息系统与项目: the inventory 信息系统台账, zombie verdicts and their review, cleanup plans, the asset register,
//! project filing 全口径备案 and the funding gates (SPEC C8, C9).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shutong_api_types::ErrorEnvelope;
use shutong_api_types::systems::{
    AdvanceProjectBody, AssetRegister, CleanupPlanBody, CleanupProgressBody, CreateSystemRequest, FileProjectRequest, FiledProject,
    ProjectList, ReportContent, ReportView, ReviewReportBody, SystemDocument, SystemImportReport, SystemList, SystemVersion, SystemView,
    ZombieDecisionBody, ZombieResponseBody, ZombieReviewStep, ZombieVerdict,
};
use shutong_identity::DepartmentId;
use shutong_systems::{self as systems, FieldProblem, FiledProjectId, ProjectQueue, SystemFilter, SystemId, SystemStatus};
use utoipa::IntoParams;

use super::catalog::wire;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

/// Converts a wire document, naming a bad amount's field under `document.`.
fn in_document<W, D>(w: W, prefix: &str) -> ApiResult<D>
where
    D: TryFrom<W, Error = Vec<FieldProblem>>,
{
    D::try_from(w).map_err(|problems| {
        let named: Vec<FieldProblem> =
            problems.into_iter().map(|p| FieldProblem { field: format!("{prefix}{}", p.field), message: p.message }).collect();
        ApiError::invalid_fields(&named)
    })
}

/// Adds `document.` to the fields a service names, for a body whose document is nested.
fn nested(e: systems::SystemsError) -> ApiError {
    use systems::SystemsError as Y;
    match e {
        Y::Validation { field, message }
            if !field.starts_with("department") && !field.starts_with("filed_on") && field != "application" =>
        {
            Y::Validation { field: format!("document.{field}"), message }.into()
        }
        Y::Invalid(problems) => {
            Y::Invalid(problems.into_iter().map(|p| FieldProblem { field: format!("document.{}", p.field), message: p.message }).collect())
                .into()
        }
        Y::Duplicate { field, message } => Y::Duplicate { field: format!("document.{field}"), message }.into(),
        other => other.into(),
    }
}

fn limit_of(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit", "limit: must be between 1 and 1000"));
    }
    Ok(limit)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SystemListQuery {
    pub department_id: Option<i64>,
    /// in_use, suspended or retired.
    pub status: Option<String>,
    /// Only systems flagged for merger (true) or not (false).
    pub flagged: Option<bool>,
    /// A part of the name.
    pub q: Option<String>,
    /// Cursor: the `next_cursor` of the previous page.
    pub after: Option<i64>,
    /// 1–1000, default 100.
    pub limit: Option<i64>,
}

/// Lists the systems the caller may read: its department's, or every department's for the sharing authority,
/// the development and reform and finance departments' reviewers and auditors.
#[utoipa::path(get, path = "/api/v1/systems", tag = "systems", security(("bearer" = [])), params(SystemListQuery),
    responses((status = 200, body = SystemList), (status = 422, body = ErrorEnvelope)))]
pub async fn list_systems(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SystemListQuery>,
) -> ApiResult<axum::Json<SystemList>> {
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            SystemStatus::parse(s)
                .ok_or_else(|| ApiError::validation("status", format!("status: '{s}' is not one of {}", SystemStatus::expected())))
        })
        .transpose()?;
    if q.q.as_ref().is_some_and(|v| v.chars().count() > 100) {
        return Err(ApiError::validation("q", "q: at most 100 characters"));
    }
    let filter = SystemFilter {
        department: q.department_id.map(DepartmentId),
        status,
        flagged: q.flagged,
        q: q.q,
        after: q.after.map(SystemId),
        limit: limit_of(q.limit)?,
    };
    Ok(axum::Json(systems::list_systems(&state.exchange, &caller.principal, &filter).await?.into()))
}

/// 登记信息系统: registers a system of a department (its administrators and catalog editors, or the authority).
/// Every field at fault is named; a duplicate (same name in the department, or same access address) is refused
/// naming the system it repeats; a system run under a 处室 is flagged for merger.
#[utoipa::path(post, path = "/api/v1/systems", tag = "systems", security(("bearer" = [])), request_body = CreateSystemRequest,
    responses((status = 201, body = SystemView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_system(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSystemRequest>,
) -> ApiResult<(StatusCode, axum::Json<SystemView>)> {
    let doc = in_document(body.document, "document.")?;
    let v = systems::create_system(&state.exchange, &caller.principal, &caller.ctx(), DepartmentId(body.department_id), doc)
        .await
        .map_err(nested)?;
    Ok((StatusCode::CREATED, axum::Json(v.into())))
}

/// One system of the inventory.
#[utoipa::path(get, path = "/api/v1/systems/{id}", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = SystemView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_system(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<SystemView>> {
    Ok(axum::Json(systems::get_system(&state.exchange, &caller.principal, SystemId(id)).await?.into()))
}

/// 修改登记: replaces a system's registration with a new version; the former versions stay in its history.
#[utoipa::path(put, path = "/api/v1/systems/{id}", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = SystemDocument,
    responses((status = 200, body = SystemView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update_system(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<SystemDocument>,
) -> ApiResult<axum::Json<SystemView>> {
    let doc = in_document(body, "")?;
    Ok(axum::Json(systems::update_system(&state.exchange, &caller.principal, &caller.ctx(), SystemId(id), doc).await?.into()))
}

/// Every version of a system's registration, newest first.
#[utoipa::path(get, path = "/api/v1/systems/{id}/history", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = [SystemVersion]), (status = 404, body = ErrorEnvelope)))]
pub async fn system_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<SystemVersion>>> {
    Ok(axum::Json(wire(systems::system_history(&state.exchange, &caller.principal, SystemId(id)).await?)))
}

/// 僵尸系统研判 of one system: the five criteria, each computed now from the platform's facts with the evidence it
/// used, and the review as it stands.
#[utoipa::path(get, path = "/api/v1/systems/{id}/zombie", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = ZombieVerdict), (status = 404, body = ErrorEnvelope)))]
pub async fn zombie_verdict(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<ZombieVerdict>> {
    Ok(axum::Json(systems::zombie_verdict(&state.exchange, &caller.principal, SystemId(id)).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ZombieListQuery {
    /// One department's systems; default every system the caller may read.
    pub department_id: Option<i64>,
}

/// The verdicts on every system the caller may read, suspected ones first.
#[utoipa::path(get, path = "/api/v1/systems/zombies", tag = "systems", security(("bearer" = [])), params(ZombieListQuery),
    responses((status = 200, body = [ZombieVerdict])))]
pub async fn zombie_verdicts(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ZombieListQuery>,
) -> ApiResult<axum::Json<Vec<ZombieVerdict>>> {
    Ok(axum::Json(wire(systems::zombie_verdicts(&state.exchange, &caller.principal, q.department_id.map(DepartmentId)).await?)))
}

/// The steps of a system's zombie review, oldest first, each with the criteria as they stood.
#[utoipa::path(get, path = "/api/v1/systems/{id}/zombie/reviews", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = [ZombieReviewStep]), (status = 404, body = ErrorEnvelope)))]
pub async fn zombie_reviews(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<ZombieReviewStep>>> {
    Ok(axum::Json(wire(systems::zombie_reviews(&state.exchange, &caller.principal, SystemId(id)).await?)))
}

/// 部门意见: the department confirms a suspected zombie, or disputes it with a reason.
#[utoipa::path(post, path = "/api/v1/systems/{id}/zombie/response", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = ZombieResponseBody,
    responses((status = 200, body = ZombieVerdict), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn respond_zombie(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ZombieResponseBody>,
) -> ApiResult<axum::Json<ZombieVerdict>> {
    let v = systems::respond_zombie(
        &state.exchange,
        &caller.principal,
        &caller.ctx(),
        SystemId(id),
        body.response.into(),
        body.reason.as_deref(),
    )
    .await?;
    Ok(axum::Json(v.into()))
}

/// 主管部门认定: the sharing authority decides, after the department's answer; deciding against it needs a reason.
#[utoipa::path(post, path = "/api/v1/systems/{id}/zombie/decision", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = ZombieDecisionBody,
    responses((status = 200, body = ZombieVerdict), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn decide_zombie(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ZombieDecisionBody>,
) -> ApiResult<axum::Json<ZombieVerdict>> {
    let v = systems::decide_zombie(
        &state.exchange,
        &caller.principal,
        &caller.ctx(),
        SystemId(id),
        body.decision.into(),
        body.reason.as_deref(),
    )
    .await?;
    Ok(axum::Json(v.into()))
}

/// 清理计划: shut down, integrate (into a named system of the same department) or migrate, by a date.
#[utoipa::path(put, path = "/api/v1/systems/{id}/cleanup", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = CleanupPlanBody,
    responses((status = 200, body = SystemView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn plan_cleanup(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<CleanupPlanBody>,
) -> ApiResult<axum::Json<SystemView>> {
    let plan =
        systems::CleanupPlan { action: body.action.into(), due_on: body.due_on, into: body.into_system_id.map(SystemId), note: body.note };
    let v = systems::plan_cleanup(&state.exchange, &caller.principal, &caller.ctx(), SystemId(id), plan).await?;
    Ok(axum::Json(v.into()))
}

/// 清理进展: under way, or done (a shutdown or integration done retires the system).
#[utoipa::path(post, path = "/api/v1/systems/{id}/cleanup/progress", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = CleanupProgressBody,
    responses((status = 200, body = SystemView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn record_cleanup(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<CleanupProgressBody>,
) -> ApiResult<axum::Json<SystemView>> {
    let v = systems::record_cleanup(
        &state.exchange,
        &caller.principal,
        &caller.ctx(),
        SystemId(id),
        body.progress.into(),
        body.note.as_deref(),
    )
    .await?;
    Ok(axum::Json(v.into()))
}

/// 数据资产登记表 of a department: its systems and their resources, with totals.
#[utoipa::path(get, path = "/api/v1/departments/{id}/asset-register", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = AssetRegister), (status = 404, body = ErrorEnvelope)))]
pub async fn asset_register(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<AssetRegister>> {
    Ok(axum::Json(systems::asset_register(&state.exchange, &caller.principal, DepartmentId(id)).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProjectListQuery {
    /// all (default), approval (立项审批, 审批部门), acceptance (验收, 审批部门) or funding (运维经费, 财政部门).
    pub queue: Option<String>,
    pub department_id: Option<i64>,
    /// Cursor: the `next_cursor` of the previous page.
    pub after: Option<i64>,
    /// 1–1000, default 100.
    pub limit: Option<i64>,
}

/// Filed projects the caller may read, or one queue of them, each with its gates computed now.
#[utoipa::path(get, path = "/api/v1/projects", tag = "systems", security(("bearer" = [])), params(ProjectListQuery),
    responses((status = 200, body = ProjectList), (status = 422, body = ErrorEnvelope)))]
pub async fn list_projects(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ProjectListQuery>,
) -> ApiResult<axum::Json<ProjectList>> {
    let queue = match q.queue.as_deref().filter(|v| !v.is_empty()) {
        None => ProjectQueue::All,
        Some(v) => ProjectQueue::parse(v)
            .ok_or_else(|| ApiError::validation("queue", format!("queue: '{v}' is not one of {}", ProjectQueue::ALL.join(", "))))?,
    };
    let page = systems::list_projects(
        &state.exchange,
        &caller.principal,
        queue,
        q.department_id.map(DepartmentId),
        q.after.map(FiledProjectId),
        limit_of(q.limit)?,
    )
    .await?;
    Ok(axum::Json(page.into()))
}

/// 全口径备案: files a project with its 立项申请; its project catalog (R-CAT-8) opens with it.
#[utoipa::path(post, path = "/api/v1/projects", tag = "systems", security(("bearer" = [])), request_body = FileProjectRequest,
    responses((status = 201, body = FiledProject), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn file_project(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<FileProjectRequest>,
) -> ApiResult<(StatusCode, axum::Json<FiledProject>)> {
    let doc = in_document(body.document, "document.")?;
    let p = systems::file_project(
        &state.exchange,
        &caller.principal,
        &caller.ctx(),
        DepartmentId(body.department_id),
        doc,
        body.filed_on,
        &body.application,
    )
    .await
    .map_err(nested)?;
    Ok((StatusCode::CREATED, axum::Json(p.into())))
}

/// One filed project, its stages and its gates computed now.
#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = FiledProject), (status = 404, body = ErrorEnvelope)))]
pub async fn get_project(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<FiledProject>> {
    Ok(axum::Json(systems::get_project(&state.exchange, &caller.principal, FiledProjectId(id)).await?.into()))
}

/// Moves a project to its next stage. Entering 审批, 验收 or 运维 passes that stage's gate; a closed gate refuses
/// with its reasons (409 `gate_closed`) unless `override_reason` is given, which is kept and audited.
#[utoipa::path(post, path = "/api/v1/projects/{id}/advance", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = AdvanceProjectBody,
    responses((status = 200, body = FiledProject), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn advance_project(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<AdvanceProjectBody>,
) -> ApiResult<axum::Json<FiledProject>> {
    let entry = systems::StageEntry {
        stage: body.stage.into(),
        entered_on: body.entered_on,
        document: body.document,
        override_reason: body.override_reason,
    };
    let p = systems::advance_project(&state.exchange, &caller.principal, &caller.ctx(), FiledProjectId(id), entry).await?;
    Ok(axum::Json(p.into()))
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

fn workbook(bytes: Vec<u8>, name: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (axum::http::header::CONTENT_TYPE, XLSX.to_string()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response()
}

/// The inventory template (信息系统台账.xlsx): the columns, with drop-down lists for every closed list.
#[utoipa::path(get, path = "/api/v1/systems/template", tag = "systems", security(("bearer" = [])),
    responses((status = 200, description = "the workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))]
pub async fn inventory_template(_caller: Caller) -> ApiResult<axum::response::Response> {
    let bytes = tokio::task::spawn_blocking(systems::inventory_template).await.map_err(|e| ApiError::internal(&e))??;
    Ok(workbook(bytes, "inventory-template.xlsx"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InventoryExportQuery {
    /// One department's systems; default every system the caller may read.
    pub department_id: Option<i64>,
}

/// The inventory as the workbook the import reads: importing it again changes nothing.
#[utoipa::path(get, path = "/api/v1/systems/export", tag = "systems", security(("bearer" = [])), params(InventoryExportQuery),
    responses((status = 200, description = "the workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))]
pub async fn export_inventory(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<InventoryExportQuery>,
) -> ApiResult<axum::response::Response> {
    let bytes = systems::export_inventory(&state.exchange, &caller.principal, q.department_id.map(DepartmentId)).await?;
    Ok(workbook(bytes, "inventory.xlsx"))
}

/// The largest inventory workbook accepted, bytes.
pub const INVENTORY_LIMIT: usize = systems::spreadsheet::MAX_FILE_BYTES;

/// 导入信息系统台账 (the body: the XLSX workbook). Every row is checked; on any problem nothing is imported and
/// the 422 error lists each problem (sheet, row, column, reason) in `violations`. A row with a 系统编号 updates
/// that system; a row without one registers a new system.
#[utoipa::path(post, path = "/api/v1/systems/import", tag = "systems", security(("bearer" = [])),
    request_body(content = Vec<u8>, description = "the workbook", content_type = "application/octet-stream"),
    responses((status = 200, body = SystemImportReport), (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn import_inventory(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> ApiResult<axum::Json<SystemImportReport>> {
    let too_large = || {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the file is larger than {} MB", INVENTORY_LIMIT >> 20))
    };
    let declared = headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > INVENTORY_LIMIT as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, INVENTORY_LIMIT).await.map_err(|_| too_large())?;
    Ok(axum::Json(systems::import_inventory(&state.exchange, &caller.principal, &caller.ctx(), &body).await?.into()))
}

/// Every version of a department's self-inspection report (自查报告) with its three lists, newest first.
#[utoipa::path(get, path = "/api/v1/departments/{id}/self-inspection", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = [ReportView]), (status = 404, body = ErrorEnvelope)))]
pub async fn list_reports(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<Vec<ReportView>>> {
    Ok(axum::Json(wire(systems::list_reports(&state.exchange, &caller.principal, DepartmentId(id)).await?)))
}

/// 编制自查报告: saves a new version (草稿); its three lists are generated now from the department's inventory,
/// catalog and requests, and kept with the version.
#[utoipa::path(post, path = "/api/v1/departments/{id}/self-inspection", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = ReportContent,
    responses((status = 201, body = ReportView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn save_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ReportContent>,
) -> ApiResult<(StatusCode, axum::Json<ReportView>)> {
    let r = systems::save_report(&state.exchange, &caller.principal, &caller.ctx(), DepartmentId(id), body.into()).await?;
    Ok((StatusCode::CREATED, axum::Json(r.into())))
}

/// One version of a department's report.
#[utoipa::path(get, path = "/api/v1/departments/{id}/self-inspection/{version}", tag = "systems", security(("bearer" = [])),
    params(("id" = i64, Path), ("version" = i64, Path)),
    responses((status = 200, body = ReportView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_report(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<ReportView>> {
    Ok(axum::Json(systems::get_report(&state.exchange, &caller.principal, DepartmentId(id), version).await?.into()))
}

/// 报送: the department submits a draft version.
#[utoipa::path(post, path = "/api/v1/departments/{id}/self-inspection/{version}/submit", tag = "systems", security(("bearer" = [])),
    params(("id" = i64, Path), ("version" = i64, Path)),
    responses((status = 200, body = ReportView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn submit_report(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<ReportView>> {
    Ok(axum::Json(systems::submit_report(&state.exchange, &caller.principal, &caller.ctx(), DepartmentId(id), version).await?.into()))
}

/// 审核: the sharing authority accepts a submitted version, or returns it with a note.
#[utoipa::path(post, path = "/api/v1/departments/{id}/self-inspection/{version}/review", tag = "systems", security(("bearer" = [])),
    params(("id" = i64, Path), ("version" = i64, Path)), request_body = ReviewReportBody,
    responses((status = 200, body = ReportView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn review_report(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(i64, i64)>,
    ApiJson(body): ApiJson<ReviewReportBody>,
) -> ApiResult<axum::Json<ReportView>> {
    let accept = match body.decision.as_str() {
        "accept" => true,
        "return" => false,
        other => return Err(ApiError::validation("decision", format!("decision: '{other}' is not accept or return"))),
    };
    let r =
        systems::review_report(&state.exchange, &caller.principal, &caller.ctx(), DepartmentId(id), version, accept, body.note.as_deref())
            .await?;
    Ok(axum::Json(r.into()))
}

/// The report of one version as a PDF document.
#[utoipa::path(get, path = "/api/v1/departments/{id}/self-inspection/{version}/report.pdf", tag = "systems", security(("bearer" = [])),
    params(("id" = i64, Path), ("version" = i64, Path)),
    responses((status = 200, description = "the report", content_type = "application/pdf"), (status = 404, body = ErrorEnvelope)))]
pub async fn report_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(i64, i64)>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let r = systems::get_report(&state.exchange, &caller.principal, DepartmentId(id), version).await?;
    let fonts = state.fonts().await?;
    let pdf = tokio::task::spawn_blocking(move || systems::report_pdf(&fonts, &r)).await.map_err(|e| ApiError::internal(&e))??;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/pdf".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"self-inspection-{id}-v{version}.pdf\"")),
        ],
        pdf,
    )
        .into_response())
}

/// The three lists of one version as a workbook: 整合清理清单, 接入清单, 需求清单.
#[utoipa::path(get, path = "/api/v1/departments/{id}/self-inspection/{version}/lists.xlsx", tag = "systems", security(("bearer" = [])),
    params(("id" = i64, Path), ("version" = i64, Path)),
    responses((status = 200, description = "the workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 404, body = ErrorEnvelope)))]
pub async fn report_lists(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(i64, i64)>,
) -> ApiResult<axum::response::Response> {
    let r = systems::get_report(&state.exchange, &caller.principal, DepartmentId(id), version).await?;
    let bytes = tokio::task::spawn_blocking(move || systems::report_lists_xlsx(&r)).await.map_err(|e| ApiError::internal(&e))??;
    Ok(workbook(bytes, &format!("lists-{id}-v{version}.xlsx")))
}

/// 数据资产登记表 of a department as a workbook.
#[utoipa::path(get, path = "/api/v1/departments/{id}/asset-register/export", tag = "systems", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "the workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 404, body = ErrorEnvelope)))]
pub async fn export_asset_register(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<axum::response::Response> {
    let r = systems::asset_register(&state.exchange, &caller.principal, DepartmentId(id)).await?;
    let bytes = tokio::task::spawn_blocking(move || systems::asset_register_xlsx(&r)).await.map_err(|e| ApiError::internal(&e))??;
    Ok(workbook(bytes, &format!("asset-register-{id}.xlsx")))
}

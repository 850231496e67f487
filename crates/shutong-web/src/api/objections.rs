//! 疑义校核 (办法 第十八条; R-Q-1): objections on records, the provider's answers, the filer's acceptance or
//! escalation, the sharing authority's rulings, evidence files, the reasons and the figures per department;
//! 一数一源 (办法 第四条(三); R-Q-2): base data elements, their reconciliations and conflicts.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shutong_api_types::ErrorEnvelope;
use shutong_api_types::quality::{
    AnswerObjection, BaseElementList, BaseElementView, BaseTemplateList, CompileBaseResource, ConsistencyRunList, ConsistencyRunView,
    ElementMapping, EscalateObjection, NewBaseElement, NewObjection, NewTheme, ObjectToConflict, ObjectionFiguresList, ObjectionList,
    ObjectionReasonList, ObjectionReasonView, ObjectionScope, ObjectionState, ObjectionView, ReconcileBody, RuleObjection,
    SetObjectionReason, ThemeList, ThemeRefreshView, ThemeView,
};
use shutong_quality as quality;
use shutong_quality::ObjectionId;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::{AppState, objection_settings};

/// The reasons an objection may give (retired ones marked).
#[utoipa::path(get, path = "/api/v1/quality/objection-reasons", tag = "quality", security(("bearer" = [])),
    responses((status = 200, body = ObjectionReasonList)))]
pub async fn list_reasons(State(state): State<AppState>, _caller: Caller) -> ApiResult<axum::Json<ObjectionReasonList>> {
    let reasons = quality::objection_reasons(&state.exchange).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(ObjectionReasonList { reasons }))
}

/// Adds, renames, retires or restores a reason: the sharing authority only.
#[utoipa::path(put, path = "/api/v1/quality/objection-reasons/{code}", tag = "quality", security(("bearer" = [])),
    params(("code" = String, Path, description = "1–32 lower-case letters, digits or underscores")), request_body = SetObjectionReason,
    responses((status = 200, body = ObjectionReasonView), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn set_reason(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<SetObjectionReason>,
) -> ApiResult<axum::Json<ObjectionReasonView>> {
    let r = quality::set_objection_reason(&state.exchange, &caller.principal, &caller.ctx(), &code, &body.name, body.retired).await?;
    Ok(axum::Json(r.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ObjectionListQuery {
    /// `filed`: by the caller's department; `received`: on its data, ranked by impact. Default: all the caller sees.
    pub scope: Option<ObjectionScope>,
    pub state: Option<ObjectionState>,
    /// Only open objections past their answer date.
    pub overdue: Option<bool>,
    /// One dataset's, by resource code.
    pub resource_code: Option<String>,
}

/// The objections the caller sees (its department's, filed or received; every one for the sharing
/// authority), newest first; `scope=received` is the provider's queue, waiting and overdue first, then by
/// the dataset's use.
#[utoipa::path(get, path = "/api/v1/quality/objections", tag = "quality", security(("bearer" = [])), params(ObjectionListQuery),
    responses((status = 200, body = ObjectionList), (status = 422, body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ObjectionListQuery>,
) -> ApiResult<axum::Json<ObjectionList>> {
    let resource = match q.resource_code.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(
            shutong_catalog::ResourceCode::parse(c).map_err(|e| ApiError::validation("resource_code", format!("resource_code: {e}")))?,
        ),
        None => None,
    };
    let filter = quality::ObjectionFilter {
        scope: q.scope.map(Into::into),
        state: q.state.map(Into::into),
        overdue: q.overdue.unwrap_or(false),
        resource,
    };
    let objections = quality::objections(&state.exchange, &caller.principal, &filter).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(ObjectionList { objections }))
}

/// Files an objection on records of a dataset the caller's department holds a grant for: from then on the
/// records carry `_校核中` in every read, for every consumer, until the provider answers.
#[utoipa::path(post, path = "/api/v1/quality/objections", tag = "quality", security(("bearer" = [])), request_body = NewObjection,
    responses((status = 201, body = ObjectionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn file(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewObjection>,
) -> ApiResult<(StatusCode, axum::Json<ObjectionView>)> {
    let resource = shutong_catalog::ResourceCode::parse(&body.resource_code)
        .map_err(|e| ApiError::validation("resource_code", format!("resource_code: {e}")))?;
    let new = quality::NewObjection {
        resource,
        grant: body.grant_id.map(shutong_sharing::GrantId),
        keys: body.keys,
        items: body.items,
        reason: body.reason,
        description: body.description,
    };
    let o = quality::file_objection(&state.exchange, &caller.principal, &caller.ctx(), &objection_settings(&state.config), &new).await?;
    Ok((StatusCode::CREATED, axum::Json(o.into())))
}

/// One objection (its filer's and provider's people, the sharing authority).
#[utoipa::path(get, path = "/api/v1/quality/objections/{id}", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = ObjectionView), (status = 404, body = ErrorEnvelope)))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<ObjectionView>> {
    Ok(axum::Json(quality::objection(&state.exchange, &caller.principal, ObjectionId(id)).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    /// The file's name (1–200 characters, no path).
    pub file_name: String,
}

/// Attaches the evidence file (佐证材料), the request body as it is, replacing an earlier one: the filer,
/// until the objection is closed; at most `quality.objection_evidence_max_mb` (413 beyond).
#[utoipa::path(put, path = "/api/v1/quality/objections/{id}/evidence", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path), EvidenceQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = ObjectionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn put_evidence(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(q): Query<EvidenceQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let settings = objection_settings(&state.config);
    // Refused before the body is read (or as soon as it passes the limit): the connection is closed after the
    // answer, so that a client still sending does not reuse it.
    let too_large = || {
        let e = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the evidence file is larger than {} bytes", settings.evidence_max_bytes),
        );
        let mut r = e.into_response();
        r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        r
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > settings.evidence_max_bytes) {
        return Ok(too_large());
    }
    let Ok(bytes) = axum::body::to_bytes(body, settings.evidence_max_bytes + 1).await else { return Ok(too_large()) };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let o = quality::attach_evidence(
        &state.exchange,
        &caller.principal,
        &caller.ctx(),
        &settings,
        ObjectionId(id),
        &q.file_name,
        content_type,
        &bytes,
    )
    .await?;
    Ok(axum::Json(ObjectionView::from(o)).into_response())
}

/// The evidence file, as it was uploaded.
#[utoipa::path(get, path = "/api/v1/quality/objections/{id}/evidence", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = ErrorEnvelope)))]
pub async fn get_evidence(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<Response> {
    let (e, bytes) = quality::evidence(&state.exchange, &caller.principal, ObjectionId(id)).await?;
    Ok(evidence_response(&e, bytes))
}

/// An evidence file as a download (never shown inline: it is the filer's upload).
pub fn evidence_response(e: &quality::Evidence, bytes: Vec<u8>) -> Response {
    let disposition = crate::api::data::attachment(&e.file_name);
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::HeaderName::from_static("x-shutong-sm3"), e.sm3.clone()),
        ],
        bytes,
    )
        .into_response()
}

/// The provider answers an open objection: `corrected` once a batch changed every record (409 before),
/// `confirmed` or `declined` with the explanation.
#[utoipa::path(post, path = "/api/v1/quality/objections/{id}/answer", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = AnswerObjection,
    responses((status = 200, body = ObjectionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn answer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<AnswerObjection>,
) -> ApiResult<axum::Json<ObjectionView>> {
    let o = quality::answer_objection(&state.exchange, &caller.principal, &caller.ctx(), ObjectionId(id), body.answer.into(), &body.note)
        .await?;
    Ok(axum::Json(o.into()))
}

/// The filer accepts the answer: closed.
#[utoipa::path(post, path = "/api/v1/quality/objections/{id}/accept", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = ObjectionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub async fn accept(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<ObjectionView>> {
    Ok(axum::Json(quality::accept_answer(&state.exchange, &caller.principal, &caller.ctx(), ObjectionId(id)).await?.into()))
}

/// The filer disputes the answer: the sharing authority rules.
#[utoipa::path(post, path = "/api/v1/quality/objections/{id}/escalate", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = EscalateObjection,
    responses((status = 200, body = ObjectionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn escalate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<EscalateObjection>,
) -> ApiResult<axum::Json<ObjectionView>> {
    Ok(axum::Json(
        quality::escalate_objection(&state.exchange, &caller.principal, &caller.ctx(), ObjectionId(id), &body.note).await?.into(),
    ))
}

/// The sharing authority rules on an escalated objection.
#[utoipa::path(post, path = "/api/v1/quality/objections/{id}/rule", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = RuleObjection,
    responses((status = 200, body = ObjectionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<RuleObjection>,
) -> ApiResult<axum::Json<ObjectionView>> {
    let settings = objection_settings(&state.config);
    let o = quality::rule_objection(
        &state.exchange,
        &caller.principal,
        &caller.ctx(),
        &settings,
        ObjectionId(id),
        body.ruling.into(),
        &body.note,
    )
    .await?;
    Ok(axum::Json(o.into()))
}

/// 疑义处理情况 per provider department (every department for the sharing authority, else the caller's).
#[utoipa::path(get, path = "/api/v1/quality/objection-figures", tag = "quality", security(("bearer" = [])),
    responses((status = 200, body = ObjectionFiguresList)))]
pub async fn figures(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<ObjectionFiguresList>> {
    let departments = quality::objection_figures(&state.exchange, &caller.principal).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(ObjectionFiguresList { departments }))
}

// ------------------------------------------------------------------ 一数一源 (办法 第四条(三))

/// The base data elements, each with its authoritative resource and the datasets carrying it.
#[utoipa::path(get, path = "/api/v1/quality/elements", tag = "quality", security(("bearer" = [])),
    responses((status = 200, body = BaseElementList)))]
pub async fn list_elements(State(state): State<AppState>, _caller: Caller) -> ApiResult<axum::Json<BaseElementList>> {
    let elements = quality::elements(&state.exchange).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(BaseElementList { elements }))
}

/// Declares a base element (the sharing authority): its key item, its authoritative resource (a pooled dataset
/// keyed by that item) and items; the same name redeclares it.
#[utoipa::path(post, path = "/api/v1/quality/elements", tag = "quality", security(("bearer" = [])), request_body = NewBaseElement,
    responses((status = 201, body = BaseElementView), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn declare_element(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewBaseElement>,
) -> ApiResult<(StatusCode, axum::Json<BaseElementView>)> {
    let resource = shutong_catalog::ResourceCode::parse(&body.resource_code)
        .map_err(|e| ApiError::validation("resource_code", format!("resource_code: {e}")))?;
    let new = quality::NewElement { name: body.name, key_item: body.key_item, resource, items: body.items };
    let e = quality::declare_element(&state.exchange, &caller.principal, &caller.ctx(), &new).await?;
    Ok((StatusCode::CREATED, axum::Json(e.into())))
}

/// Maps a dataset's items onto an element's (the sharing authority); an empty map goes back to matching by name.
#[utoipa::path(put, path = "/api/v1/quality/elements/{id}/mappings/{classification}/{sequence}", tag = "quality",
    security(("bearer" = [])), params(("id" = i64, Path), ("classification" = String, Path), ("sequence" = String, Path)),
    request_body = ElementMapping,
    responses((status = 200, body = BaseElementView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn map_element(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, class, seq)): Path<(i64, String, String)>,
    ApiJson(body): ApiJson<ElementMapping>,
) -> ApiResult<axum::Json<BaseElementView>> {
    let code = super::catalog::code_of(&class, &seq)?;
    let e = quality::map_element(&state.exchange, &caller.principal, &caller.ctx(), quality::ElementId(id), &code, &body.items).await?;
    Ok(axum::Json(e.into()))
}

/// Reconciles an element's carriers (or the one named) with its authoritative dataset now: one run each,
/// appended with its conflicts and reported to both providers.
#[utoipa::path(post, path = "/api/v1/quality/elements/{id}/reconcile", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = ReconcileBody,
    responses((status = 201, body = ConsistencyRunList), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn reconcile(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ReconcileBody>,
) -> ApiResult<(StatusCode, axum::Json<ConsistencyRunList>)> {
    let only = match body.resource_code.as_deref() {
        Some(c) => Some(
            shutong_catalog::ResourceCode::parse(c).map_err(|e| ApiError::validation("resource_code", format!("resource_code: {e}")))?,
        ),
        None => None,
    };
    let runs = quality::reconcile(
        &state.exchange,
        &caller.principal,
        &caller.ctx(),
        quality::ElementId(id),
        only.as_ref(),
        quality::ReconcileCause::Manual,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(ConsistencyRunList { runs: runs.into_iter().map(Into::into).collect() })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunListQuery {
    /// One element's.
    #[param(minimum = 1)]
    pub element_id: Option<i64>,
    /// 1–500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// The reconciliations the caller reads (the authority every one, providers their datasets'), newest first.
#[utoipa::path(get, path = "/api/v1/quality/reconciliations", tag = "quality", security(("bearer" = [])), params(RunListQuery),
    responses((status = 200, body = ConsistencyRunList), (status = 422, body = ErrorEnvelope)))]
pub async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RunListQuery>,
) -> ApiResult<axum::Json<ConsistencyRunList>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation("limit", "limit: must be between 1 and 500"));
    }
    if q.element_id.is_some_and(|e| e < 1) {
        return Err(ApiError::validation("element_id", "element_id: must be an element's ID (1 or more)"));
    }
    let runs = quality::consistency_runs(&state.exchange, &caller.principal, q.element_id.map(quality::ElementId), limit).await?;
    Ok(axum::Json(ConsistencyRunList { runs: runs.into_iter().map(Into::into).collect() }))
}

/// One reconciliation with its conflicts per key.
#[utoipa::path(get, path = "/api/v1/quality/reconciliations/{id}", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = ConsistencyRunView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_run(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<ConsistencyRunView>> {
    Ok(axum::Json(quality::consistency_run(&state.exchange, &caller.principal, quality::ConsistencyRunId(id)).await?.into()))
}

/// Turns a conflict into an objection against either side (the authority, or the other side's provider).
#[utoipa::path(post, path = "/api/v1/quality/conflicts/{id}/objection", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = ObjectToConflict,
    responses((status = 201, body = ObjectionView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn object_to_conflict(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ObjectToConflict>,
) -> ApiResult<(StatusCode, axum::Json<ObjectionView>)> {
    let o = quality::object_to_conflict(
        &state.exchange,
        &caller.principal,
        &caller.ctx(),
        &objection_settings(&state.config),
        quality::ConflictId(id),
        body.side.into(),
        body.note.as_deref().unwrap_or(""),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(o.into())))
}

// ------------------------------------------------------------------ 基础库与主题库 (SPEC C7)

/// The standard item sets of the six base databases (人口, 法人单位, 自然资源和空间地理, 社会信用, 电子证照, 宏观经济).
#[utoipa::path(get, path = "/api/v1/quality/base-templates", tag = "quality", security(("bearer" = [])),
    responses((status = 200, body = BaseTemplateList)))]
pub async fn list_base_templates(_caller: Caller) -> ApiResult<axum::Json<BaseTemplateList>> {
    Ok(axum::Json(BaseTemplateList { templates: quality::base_templates().into_iter().map(Into::into).collect() }))
}

/// Compiles a base resource from a template as a catalog draft of the lead department: base items,
/// 无条件共享 (R-CAT-2); it is then submitted and published like any entry.
#[utoipa::path(post, path = "/api/v1/quality/base-templates/{code}/compile", tag = "quality", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = CompileBaseResource,
    responses((status = 201, body = shutong_api_types::catalog::ResourceView), (status = 403, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope)))]
pub async fn compile_base(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<CompileBaseResource>,
) -> ApiResult<(StatusCode, axum::Json<shutong_api_types::catalog::ResourceView>)> {
    let provider = body.provider_department_id.map(shutong_identity::DepartmentId);
    let view = quality::compile_base_resource(&state.exchange, &caller.principal, &caller.ctx(), &code, provider).await?;
    Ok((StatusCode::CREATED, axum::Json(view.into())))
}

/// The theme databases, with their members and the lineage of their last refresh.
#[utoipa::path(get, path = "/api/v1/quality/themes", tag = "quality", security(("bearer" = [])), responses((status = 200, body = ThemeList)))]
pub async fn list_themes(State(state): State<AppState>, _caller: Caller) -> ApiResult<axum::Json<ThemeList>> {
    Ok(axum::Json(ThemeList { themes: quality::themes(&state.exchange).await?.into_iter().map(Into::into).collect() }))
}

/// Creates a theme database as the caller's department (its catalog editors): a catalog draft keyed by
/// `key_item`, its items drawn from at least two pooled member datasets.
#[utoipa::path(post, path = "/api/v1/quality/themes", tag = "quality", security(("bearer" = [])), request_body = NewTheme,
    responses((status = 201, body = ThemeView), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_theme(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewTheme>,
) -> ApiResult<(StatusCode, axum::Json<ThemeView>)> {
    let new = quality::NewTheme {
        name: body.name,
        summary: body.summary.unwrap_or_default(),
        classification_code: body.classification_code,
        key_item: body.key_item,
        items: body.items.into_iter().map(Into::into).collect(),
    };
    let t = quality::create_theme(&state.exchange, &caller.principal, &caller.ctx(), &new).await?;
    Ok((StatusCode::CREATED, axum::Json(t.into())))
}

/// One theme database.
#[utoipa::path(get, path = "/api/v1/quality/themes/{id}", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = ThemeView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_theme(State(state): State<AppState>, _caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<ThemeView>> {
    Ok(axum::Json(quality::theme(&state.exchange, quality::ThemeId(id)).await?.into()))
}

/// Refreshes a theme database now (its lead department or the authority; the server does after every member
/// batch): in full the first time, then the keys its members changed.
#[utoipa::path(post, path = "/api/v1/quality/themes/{id}/refresh", tag = "quality", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = ThemeRefreshView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub async fn refresh_theme(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<ThemeRefreshView>> {
    Ok(axum::Json(quality::refresh_theme(&state.exchange, &caller.principal, &caller.ctx(), quality::ThemeId(id)).await?.into()))
}

//! 共享申请与授权: subscriptions, requests and their answers and escalation, grants, the inbox.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shutong_api_types::sharing::{
    ApproveBody, CreateRequestBody, GrantList, GrantView, Inbox, MarkReadBody, MarkReadResult, MessageBody, ReasonBody, RenewBody,
    RequestDetail, RequestList, SharingStats, SweepReport,
};
use shutong_identity::DepartmentId;
use shutong_sharing::{
    self as sharing, Approval, GrantFilter, GrantState, NewRequest, RequestFilter, RequestKind, RequestStatus, Side, Stage,
};
use utoipa::IntoParams;

use super::catalog::wire;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;
use shutong_api_types::ErrorEnvelope;

fn parse_param<T>(field: &str, value: Option<&str>, parse: fn(&str) -> Option<T>, expected: String) -> ApiResult<Option<T>> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| parse(v).ok_or_else(|| ApiError::validation(field, format!("{field}: '{v}' is not one of {expected}"))))
        .transpose()
}

/// A resource code filter: parsed, so that a malformed code is refused naming the parameter instead of
/// matching nothing.
fn resource_code_param(code: Option<String>) -> ApiResult<Option<String>> {
    code.filter(|c| !c.trim().is_empty())
        .map(|c| {
            shutong_catalog::ResourceCode::parse(&c)
                .map(|c| c.as_str().to_string())
                .map_err(|e| ApiError::validation("resource_code", format!("resource_code: {e}")))
        })
        .transpose()
}

fn limit_of(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit", "limit: must be between 1 and 1000"));
    }
    Ok(limit)
}

fn new_request(b: CreateRequestBody) -> NewRequest {
    NewRequest {
        resource_code: b.resource_code,
        consumer: b.consumer_department_id.map(DepartmentId),
        items: b.items,
        purpose: Some(b.purpose.into()),
        purpose_detail: b.purpose_detail,
        basis: b.basis,
        period_from: b.period_from,
        period_to: b.period_to,
        access_methods: wire(b.access_methods),
        expected_volume: b.expected_volume,
    }
}

/// 直接获取 (无条件共享, R-REQ-1): the grant is created at once.
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "sharing", security(("bearer" = [])), request_body = CreateRequestBody,
    responses((status = 201, body = RequestDetail), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRequestBody>,
) -> ApiResult<(StatusCode, axum::Json<RequestDetail>)> {
    let d = sharing::subscribe(&state.sharing(), &caller.principal, &caller.ctx(), new_request(body)).await?;
    Ok((StatusCode::CREATED, axum::Json(d.into())))
}

/// 共享申请 (有条件共享, R-REQ-2): due on the 10th working day after today by the official calendar. A request
/// for 不予共享 data opens a negotiation (协商) at once (R-REQ-4).
#[utoipa::path(post, path = "/api/v1/requests", tag = "sharing", security(("bearer" = [])), request_body = CreateRequestBody,
    responses((status = 201, body = RequestDetail), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRequestBody>,
) -> ApiResult<(StatusCode, axum::Json<RequestDetail>)> {
    let d = sharing::create_request(&state.sharing(), &caller.principal, &caller.ctx(), new_request(body)).await?;
    Ok((StatusCode::CREATED, axum::Json(d.into())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    /// consumer (我申请的), provider (向我申请的), owner (待我办理); default all the caller may see.
    pub side: Option<String>,
    /// pending, approved, rejected, withdrawn, negotiating, coordinating, leading_group.
    pub status: Option<String>,
    /// answer, negotiation, coordination, leading_group.
    pub stage: Option<String>,
    /// subscription, application, negotiation.
    pub kind: Option<String>,
    pub resource_code: Option<String>,
    /// Only open requests past their stage's due date.
    #[serde(default)]
    pub overdue: bool,
    /// Only requests with this department as a party.
    pub department_id: Option<i64>,
    /// Cursor: the `next_before` of the previous page.
    pub before: Option<i64>,
    /// 1–1000, default 100.
    pub limit: Option<i64>,
}

/// Requests by side, status, stage and kind, newest first: a department sees those it is a party to or owns
/// a stage of; the authority and auditors see all.
#[utoipa::path(get, path = "/api/v1/requests", tag = "sharing", security(("bearer" = [])), params(RequestQuery),
    responses((status = 200, body = RequestList), (status = 422, body = ErrorEnvelope)))]
pub async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RequestQuery>,
) -> ApiResult<axum::Json<RequestList>> {
    let limit = limit_of(q.limit)?;
    let filter = RequestFilter {
        side: parse_param("side", q.side.as_deref(), Side::parse, Side::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))?,
        status: parse_param(
            "status",
            q.status.as_deref(),
            RequestStatus::parse,
            RequestStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        )?,
        stage: parse_param(
            "stage",
            q.stage.as_deref(),
            Stage::parse,
            Stage::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        )?,
        kind: parse_param(
            "kind",
            q.kind.as_deref(),
            RequestKind::parse,
            RequestKind::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        )?,
        resource_code: resource_code_param(q.resource_code)?,
        overdue: q.overdue,
        department: q.department_id.map(DepartmentId),
        before: q.before,
        limit,
    };
    let requests = sharing::list_requests(&state.sharing(), &caller.principal, &filter).await?;
    let next_before = (requests.len() as i64 == limit).then(|| requests.last().map(|r| r.id)).flatten();
    Ok(axum::Json(RequestList { requests: wire(requests), next_before }))
}

/// A request with its escalation steps, the record of the exchange and its grant.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "sharing", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = RequestDetail), (status = 404, body = ErrorEnvelope)))]
pub async fn get_request(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<RequestDetail>> {
    Ok(axum::Json(sharing::get_request(&state.sharing(), &caller.principal, sharing::RequestId(id)).await?.into()))
}

/// 同意: the provider (or, in escalation, the owner of the stage) approves; the grant has exactly the scope given.
#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", tag = "sharing", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = ApproveBody,
    responses((status = 200, body = RequestDetail), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ApproveBody>,
) -> ApiResult<axum::Json<RequestDetail>> {
    let a = Approval {
        items: b.items,
        row_filter: b.row_filter.map(Into::into),
        valid_from: b.valid_from,
        valid_to: b.valid_to,
        access_methods: b.access_methods.map(wire),
        daily_quota: b.daily_quota,
        clear_text: b.clear_text,
        note: b.note,
    };
    let out = sharing::approve(&state.sharing(), &caller.principal, &caller.ctx(), sharing::RequestId(id), a).await?;
    Ok(axum::Json(out.into()))
}

/// 不予共享: refuses; the reason is mandatory (第十六条).
#[utoipa::path(post, path = "/api/v1/requests/{id}/reject", tag = "sharing", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = ReasonBody,
    responses((status = 200, body = RequestDetail), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> ApiResult<axum::Json<RequestDetail>> {
    Ok(axum::Json(sharing::reject(&state.sharing(), &caller.principal, &caller.ctx(), sharing::RequestId(id), &b.reason).await?.into()))
}

/// 撤回: the consumer withdraws an open request.
#[utoipa::path(post, path = "/api/v1/requests/{id}/withdraw", tag = "sharing", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = ReasonBody,
    responses((status = 200, body = RequestDetail), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> ApiResult<axum::Json<RequestDetail>> {
    let reason = Some(b.reason.as_str()).filter(|r| !r.trim().is_empty());
    Ok(axum::Json(sharing::withdraw(&state.sharing(), &caller.principal, &caller.ctx(), sharing::RequestId(id), reason).await?.into()))
}

/// 协商 → 协调 → 领导小组: the consumer takes a refusal (or a failed negotiation) to the next stage.
#[utoipa::path(post, path = "/api/v1/requests/{id}/escalate", tag = "sharing", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = ReasonBody,
    responses((status = 200, body = RequestDetail), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn escalate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> ApiResult<axum::Json<RequestDetail>> {
    let out = sharing::escalate(&state.sharing(), &caller.principal, &caller.ctx(), sharing::RequestId(id), &b.reason).await?;
    Ok(axum::Json(out.into()))
}

/// Adds to the record of the exchange (the parties and the owner of the stage).
#[utoipa::path(post, path = "/api/v1/requests/{id}/messages", tag = "sharing", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = MessageBody,
    responses((status = 200, body = RequestDetail), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn add_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<MessageBody>,
) -> ApiResult<axum::Json<RequestDetail>> {
    Ok(axum::Json(sharing::add_message(&state.sharing(), &caller.principal, &caller.ctx(), sharing::RequestId(id), &b.body).await?.into()))
}

/// Answering figures per provider: received, on time, late, overdue now (第二十五条(三)).
#[utoipa::path(get, path = "/api/v1/requests/stats", tag = "sharing", security(("bearer" = [])),
    responses((status = 200, body = SharingStats)))]
pub async fn stats(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<SharingStats>> {
    Ok(axum::Json(sharing::stats(&state.sharing(), &caller.principal).await?.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    /// consumer or provider; default both.
    pub side: Option<String>,
    pub resource_code: Option<String>,
    /// active, not_yet_valid, expired, revoked.
    pub state: Option<String>,
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

/// Grants of the caller's department (all for the authority and auditors), newest first.
#[utoipa::path(get, path = "/api/v1/grants", tag = "sharing", security(("bearer" = [])), params(GrantQuery),
    responses((status = 200, body = GrantList), (status = 422, body = ErrorEnvelope)))]
pub async fn list_grants(State(state): State<AppState>, caller: Caller, Query(q): Query<GrantQuery>) -> ApiResult<axum::Json<GrantList>> {
    let limit = limit_of(q.limit)?;
    let filter = GrantFilter {
        side: parse_param("side", q.side.as_deref(), Side::parse, "consumer, provider".into())?,
        resource_code: resource_code_param(q.resource_code)?,
        state: parse_param(
            "state",
            q.state.as_deref(),
            GrantState::parse,
            GrantState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        )?,
        before: q.before,
        limit,
    };
    let grants = sharing::list_grants(&state.sharing(), &caller.principal, &filter).await?;
    let next_before = (grants.len() as i64 == limit).then(|| grants.last().map(|g| g.id)).flatten();
    Ok(axum::Json(GrantList { grants: wire(grants), next_before }))
}

/// A grant: consumer, resource, items, row filter, purpose, validity, access methods, quota, state today.
#[utoipa::path(get, path = "/api/v1/grants/{id}", tag = "sharing", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = GrantView), (status = 404, body = ErrorEnvelope)))]
pub async fn get_grant(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<GrantView>> {
    Ok(axum::Json(sharing::get_grant(&state.sharing(), &caller.principal, sharing::GrantId(id)).await?.into()))
}

/// 撤销: the provider or the authority revokes, with a reason; data access stops at once.
#[utoipa::path(post, path = "/api/v1/grants/{id}/revoke", tag = "sharing", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = ReasonBody,
    responses((status = 200, body = GrantView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> ApiResult<axum::Json<GrantView>> {
    let out = sharing::revoke_grant(&state.sharing(), &caller.principal, &caller.ctx(), sharing::GrantId(id), &b.reason).await?;
    Ok(axum::Json(out.into()))
}

/// 续期: the provider or the authority extends a grant.
#[utoipa::path(post, path = "/api/v1/grants/{id}/renew", tag = "sharing", security(("bearer" = [])), params(("id" = i64, Path)),
    request_body = RenewBody,
    responses((status = 200, body = GrantView), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn renew_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<RenewBody>,
) -> ApiResult<axum::Json<GrantView>> {
    let out = sharing::renew_grant(&state.sharing(), &caller.principal, &caller.ctx(), sharing::GrantId(id), b.valid_to, b.note.as_deref())
        .await?;
    Ok(axum::Json(out.into()))
}

/// What waits for the caller's department, with due dates; the authority's overdue list; notices.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "sharing", security(("bearer" = [])), responses((status = 200, body = Inbox)))]
pub async fn inbox(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<Inbox>> {
    let mut inbox: Inbox = sharing::inbox(&state.sharing(), &caller.principal).await?.into();
    inbox.silent_nodes =
        shutong_exchange::nodes::silent_nodes(&state.exchange, &caller.principal).await?.into_iter().map(Into::into).collect();
    Ok(axum::Json(inbox))
}

/// Marks the department's notices read.
#[utoipa::path(post, path = "/api/v1/inbox/read", tag = "sharing", security(("bearer" = [])), request_body = MarkReadBody,
    responses((status = 200, body = MarkReadResult)))]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(b): ApiJson<MarkReadBody>,
) -> ApiResult<axum::Json<MarkReadResult>> {
    let marked = sharing::mark_read(&state.sharing(), &caller.principal, b.up_to.map(sharing::NotificationId)).await?;
    Ok(axum::Json(MarkReadResult { marked }))
}

/// Runs the deadline sweep now (overdue, reminders, expiries); the server also runs it every
/// `[sharing] sweep_seconds`. Platform administrators only.
#[utoipa::path(post, path = "/api/v1/sharing/sweep", tag = "sharing", security(("bearer" = [])),
    responses((status = 200, body = SweepReport), (status = 403, body = ErrorEnvelope)))]
pub async fn sweep(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<SweepReport>> {
    Ok(axum::Json(sharing::sweep(&state.sharing(), &caller.principal).await?.into()))
}

//! 前置机: exchange nodes' heartbeats (which register them), and the platform's list of nodes with their state.

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use shutong_api_types::ErrorEnvelope;
use shutong_api_types::exchange::{ExchangeNode, ExchangeNodeList, Heartbeat};
use shutong_exchange::nodes;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Caller};
use crate::state::AppState;

/// 前置机心跳: registers the calling system account's node on its first heartbeat, then records its
/// version, its flows' lag, its outbox and its last error. Sent by `shutong node run`, signed with the
/// account's SM2 key.
#[utoipa::path(post, path = "/api/v1/nodes/heartbeat", tag = "data", security(("bearer" = [])), request_body = Heartbeat,
    responses((status = 200, body = ExchangeNode), (status = 403, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(hb): ApiJson<Heartbeat>,
) -> ApiResult<axum::Json<ExchangeNode>> {
    let node = nodes::heartbeat(&state.exchange, &caller.principal, &caller.ctx(), &hb.into()).await?;
    Ok(axum::Json(node.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NodeQuery {
    /// Only this department's nodes.
    #[param(minimum = 1)]
    pub department_id: Option<i64>,
    /// Only the nodes silent longer than `exchange.node_silence_seconds`.
    pub silent: Option<bool>,
}

/// 前置机: the nodes the caller may see (its department's; every department's for the sharing authority,
/// platform administrators and auditors), with their state.
#[utoipa::path(get, path = "/api/v1/nodes", tag = "data", security(("bearer" = [])), params(NodeQuery),
    responses((status = 200, body = ExchangeNodeList)))]
pub async fn list_nodes(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<NodeQuery>,
) -> ApiResult<axum::Json<ExchangeNodeList>> {
    if let Some(d) = q.department_id
        && d < 1
    {
        return Err(ApiError::validation("department_id", "department_id: the ID must be a positive number"));
    }
    let list = nodes::list_nodes(&state.exchange, &caller.principal, q.department_id.map(shutong_identity::DepartmentId)).await?;
    let nodes = list.into_iter().filter(|n| q.silent.is_none_or(|s| n.silent == s)).map(Into::into).collect();
    Ok(axum::Json(ExchangeNodeList { nodes }))
}

/// One node.
#[utoipa::path(get, path = "/api/v1/nodes/{id}", tag = "data", security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = ExchangeNode), (status = 404, body = ErrorEnvelope)))]
pub async fn get_node(State(state): State<AppState>, caller: Caller, Path(id): Path<i64>) -> ApiResult<axum::Json<ExchangeNode>> {
    Ok(axum::Json(nodes::get_node(&state.exchange, &caller.principal, nodes::NodeId(id)).await?.into()))
}

//! Health, readiness, metrics, the node's identity and the audit trail.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use shutong_api_types::*;
use shutong_audit::AuditFilter;

use super::views::audit_view;
use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = HealthView)))]
pub async fn healthz() -> axum::Json<HealthView> {
    axum::Json(HealthView { status: "ok".into(), database: None })
}

/// Readiness: the database answers (503 if not).
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, body = HealthView), (status = 503, body = HealthView)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let backend = state.db.backend().as_str().to_string();
    let ping = tokio::time::timeout(std::time::Duration::from_secs(5), state.db.ping()).await;
    match ping {
        Ok(Ok(())) => (StatusCode::OK, axum::Json(HealthView { status: "ready".into(), database: Some(backend) })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(HealthView { status: "database_unavailable".into(), database: Some(backend) }))
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(HealthView { status: "database_timeout".into(), database: Some(backend) })),
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// This node: name, level, network zone, region.
#[utoipa::path(get, path = "/api/v1/node", tag = "system", responses((status = 200, body = NodeView)))]
pub async fn node(State(state): State<AppState>) -> ApiResult<axum::Json<NodeView>> {
    let n = shutong_identity::node_identity(&state.db).await?.ok_or_else(|| ApiError::not_found("node identity"))?;
    Ok(axum::Json(NodeView {
        name: n.name,
        level: n.level.as_str().into(),
        zone: n.zone.as_str().into(),
        region_code: n.region_code,
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub department_id: Option<i64>,
    /// e.g. `department.create`, `auth.login_failed`.
    pub action: Option<String>,
    /// The actor's label (username).
    pub actor: Option<String>,
    /// From this time (RFC 3339), inclusive.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Up to this time (RFC 3339), exclusive.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Cursor: only events with a smaller sequence number.
    pub before: Option<i64>,
    /// Page size, 1–1000, default 100.
    pub limit: Option<i64>,
}

/// The audit trail, newest first (platform administrators and auditors).
#[utoipa::path(get, path = "/api/v1/audit/events", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditEventList), (status = 403, body = ErrorEnvelope)))]
pub async fn list_audit_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<AuditEventList>> {
    if !caller.principal.can_read_audit() {
        return Err(ApiError::forbidden("only platform administrators and auditors read the audit trail"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit", "limit: must be between 1 and 1000"));
    }
    let events = shutong_audit::list(
        &state.db,
        &AuditFilter {
            department_id: q.department_id,
            action: q.action,
            actor: q.actor,
            from_ms: q.from.map(|t| t.timestamp_millis()),
            to_ms: q.to.map(|t| t.timestamp_millis()),
            before_seq: q.before,
            limit,
        },
    )
    .await?;
    let next_before = if events.len() as i64 == limit { events.last().map(|e| e.seq) } else { None };
    Ok(axum::Json(AuditEventList { events: events.iter().map(audit_view).collect(), next_before }))
}

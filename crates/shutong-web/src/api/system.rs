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
        public_key: state.node_key.public_key_hex(),
        public_key_pem: state.node_key.public_key_pem(),
        sm2_id: shutong_crypto::DEFAULT_SM2_ID.into(),
        data_key_active: state.exchange.keys().map(|k| k.active()),
        data_keys: state.exchange.keys().map(|k| k.ids()),
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
    /// What the events are about: `catalog_resource`, `data`, `grant`, `department` …
    pub target_kind: Option<String>,
    /// The target's identifier, e.g. a resource code.
    pub target_id: Option<String>,
    /// From this time (RFC 3339), inclusive.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Up to this time (RFC 3339), exclusive.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Cursor: only events with a smaller sequence number.
    pub before: Option<i64>,
    /// A data subject (公民身份号码, 统一社会信用代码 or another dataset key): only access-log events about it
    /// (lookups by that key, queries with it as a condition value). The trail records such values of
    /// sensitive items masked with an audit token, never in clear; the server turns the subject into its
    /// token.
    pub subject: Option<String>,
    /// Only data accesses that delivered sensitive items in clear text (明文访问敏感数据).
    pub clear_text: Option<bool>,
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
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation("limit", "limit: must be between 1 and 1000"));
    }
    let detail_contains = match q.subject.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => Some(shutong_exchange::sealed::subject_search(&state.exchange, s)?),
        None => None,
    };
    let events = shutong_audit::list(
        &state.db,
        &caller.principal,
        &AuditFilter {
            department_id: q.department_id,
            action: q.action,
            actor: q.actor,
            target_kind: q.target_kind.filter(|s| !s.is_empty()),
            target_id: q.target_id.filter(|s| !s.is_empty()),
            from_ms: q.from.map(|t| t.timestamp_millis()),
            to_ms: q.to.map(|t| t.timestamp_millis()),
            before_seq: q.before,
            detail_contains,
            clear_text: q.clear_text.unwrap_or(false),
            limit,
        },
    )
    .await?;
    let next_before = if events.len() as i64 == limit { events.last().map(|e| e.seq) } else { None };
    Ok(axum::Json(AuditEventList { events: events.iter().map(audit_view).collect(), next_before }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditFiguresQuery {
    /// China days counted, ending today: 1–366, default 30.
    pub days: Option<u32>,
}

/// 审计统计: events per day and action (data accesses per day by method among them) and the resources read
/// most, over the last `days` China days. Administrators and auditors count the whole trail, a
/// department's staff their own department's events.
#[utoipa::path(get, path = "/api/v1/audit/figures", tag = "audit", security(("bearer" = [])), params(AuditFiguresQuery),
    responses((status = 200, body = AuditFigures), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn audit_figures(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditFiguresQuery>,
) -> ApiResult<axum::Json<AuditFigures>> {
    let days = q.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::validation("days", "days: must be between 1 and 366"));
    }
    let last_day = state.clock.today();
    let first_day = last_day - chrono::Days::new(u64::from(days - 1));
    let counts = shutong_audit::figures::events_per_day(&state.db, &caller.principal, last_day, days).await?;
    let top = shutong_exchange::figures::top_consumed(&state.exchange, &caller.principal, last_day, days, 10).await?;
    Ok(axum::Json(AuditFigures {
        first_day,
        last_day,
        days: counts
            .into_iter()
            .map(|c| AuditDayCount { day: c.day, action: c.action.code().into(), action_zh: c.action.label_zh().into(), events: c.events })
            .collect(),
        top_resources: top
            .into_iter()
            .map(|t| ResourceAccessCount { resource_code: t.resource_code, resource_name: t.resource_name, accesses: t.accesses })
            .collect(),
    }))
}

fn require_auditor(caller: &Caller) -> ApiResult<()> {
    if caller.principal.can_read_audit() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only platform administrators and auditors read the audit trail"))
    }
}

pub fn chain_view(s: &shutong_audit::ChainStatus) -> AuditChainView {
    AuditChainView {
        head: s.head,
        head_hash: s.head_hash.clone(),
        archived_through: s.archived_through,
        unsealed: s.unsealed,
        checkpoints: s.checkpoints,
        last_checkpoint: s.last_checkpoint.as_ref().map(|c| AuditCheckpointView {
            chain_seq: c.chain_seq,
            hash: c.hash.clone(),
            at: shutong_store::from_ms(c.at_ms),
            public_key: c.public_key.clone(),
            signature: c.signature.clone(),
        }),
    }
}

pub fn verify_view(r: &shutong_audit::VerifyReport) -> AuditVerifyView {
    AuditVerifyView {
        ok: r.ok,
        from: r.from,
        through: r.through,
        events: r.events,
        checkpoints: r.checkpoints,
        signed_through: r.signed_through,
        unsealed: r.unsealed,
        failure: r.failure.as_ref().map(|f| AuditFailureView { chain_seq: f.chain_seq, seq: f.seq, reason: f.reason.clone() }),
        elapsed_ms: r.elapsed_ms,
    }
}

/// The audit chain: its end, the last signed checkpoint, what is not sealed yet.
#[utoipa::path(get, path = "/api/v1/audit/chain", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditChainView), (status = 403, body = ErrorEnvelope)))]
pub async fn audit_chain(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<AuditChainView>> {
    Ok(axum::Json(chain_view(&shutong_audit::status(&state.db, &caller.principal).await?)))
}

/// Re-computes the whole chain (SM3) and every checkpoint's SM2 signature against this node's key, and
/// names the first place that does not match.
#[utoipa::path(post, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditVerifyView), (status = 403, body = ErrorEnvelope)))]
pub async fn audit_verify(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<AuditVerifyView>> {
    let report = shutong_audit::verify_recorded(&state.db, &caller.principal, &caller.ctx(), vec![state.node_key.public_key_hex()]).await?;
    Ok(axum::Json(verify_view(&report)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditExportQuery {
    /// First chain position (default: the first still in the database).
    pub from: Option<i64>,
    /// Last chain position (default: the chain's end).
    pub to: Option<i64>,
}

/// A segment of the chain as NDJSON that verifies with any SM3/SM2 implementation (docs/AUDIT-FORMAT.md).
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", security(("bearer" = [])), params(AuditExportQuery),
    responses((status = 200, description = "NDJSON", content_type = "application/x-ndjson"), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn audit_export(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditExportQuery>,
) -> ApiResult<axum::response::Response> {
    require_auditor(&caller)?;
    let (from, to) = shutong_audit::resolve_range(&state.db, q.from, q.to).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(8);
    let st = state.clone();
    tokio::spawn(async move {
        let name = shutong_identity::node_identity(&st.db).await.ok().flatten().map(|n| n.name).unwrap_or_default();
        let (hex_key, pem) = (st.node_key.public_key_hex(), st.node_key.public_key_pem());
        let signer = shutong_audit::ExportSigner { node_name: &name, public_key_hex: &hex_key, public_key_pem: &pem };
        let sink = |chunk: Vec<u8>| {
            let tx = tx.clone();
            async move { tx.send(Ok(chunk.into())).await.map_err(|_| std::io::Error::other("client went away")) }
        };
        if let Err(e) = shutong_audit::export(&st.db, from, to, &signer, sink).await {
            tracing::warn!(error = %e, "audit export failed mid-stream");
            let _ = tx.send(Err(std::io::Error::other("export failed"))).await;
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    axum::response::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"audit-{from}-{to}.ndjson\""))
        .body(axum::body::Body::from_stream(stream))
        .map_err(|e| ApiError::internal(&e))
}

/// Archived segments of the chain (retention).
#[utoipa::path(get, path = "/api/v1/audit/archives", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = Vec<AuditArchiveView>), (status = 403, body = ErrorEnvelope)))]
pub async fn audit_archives(State(state): State<AppState>, caller: Caller) -> ApiResult<axum::Json<Vec<AuditArchiveView>>> {
    require_auditor(&caller)?;
    let list = shutong_audit::list_archives(&state.db).await?;
    Ok(axum::Json(
        list.into_iter()
            .map(|a| AuditArchiveView {
                from: a.from,
                to: a.to,
                last_hash: a.last_hash,
                events: a.events,
                file: a.file,
                file_sm3: a.file_sm3,
                archived_at: shutong_store::from_ms(a.archived_at_ms),
                archived_by: a.archived_by,
            })
            .collect(),
    ))
}

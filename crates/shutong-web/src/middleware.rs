//! Cross-cutting layers: request IDs, metrics, security headers, and the error envelope for errors
//! produced outside handlers (unknown routes, bad path or query values, body limits).

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

use crate::error::{ApiError, REQUEST_ID};

fn valid_request_id(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Assigns the request ID (a valid incoming `x-request-id`, or a new UUID), makes it visible to error
/// envelopes and logs, and echoes it in the response.
pub async fn request_context(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut res = REQUEST_ID
        .scope(id.clone(), async move {
            let res = next.run(req).await;
            tracing::debug!(request_id = %id_for_log(), %method, %path, status = res.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
            res
        })
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

fn id_for_log() -> String {
    crate::error::current_request_id().unwrap_or_default()
}

/// Records request count and latency per matched route (a route layer, so the route is known).
pub async fn record_metrics(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("shutong_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("shutong_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}

/// Wraps plain-text error responses of `/api/` paths (from axum's extractors and the router) in the
/// JSON error envelope, so that clients see one error shape.
pub async fn envelope_plain_errors(req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let id = req.headers().get("x-request-id").cloned();
    let res = next.run(req).await;
    let status = res.status();
    if !is_api || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
    if is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed on this endpoint".to_string()),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is larger than the limit".to_string()),
        s if s.is_server_error() => ("internal_error", "internal error; quote the request ID when reporting it".to_string()),
        _ => ("bad_request", if text.is_empty() { status.canonical_reason().unwrap_or("bad request").to_string() } else { text.clone() }),
    };
    let mut err = ApiError::new(status, code, message);
    // Query and path errors name the parameter before a colon: "Failed to deserialize query string: n: …".
    if let Some(rest) = text.strip_prefix("Failed to deserialize query string: ") {
        if let Some((field, _)) = rest.split_once(':') {
            if field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                err.field = Some(field.to_string());
            }
        } else if let Some(f) = rest.split('`').nth(1) {
            err.field = Some(f.to_string());
        }
    }
    let mut out = err.into_response();
    *out.status_mut() = parts.status;
    if let Some(id) = id {
        out.headers_mut().insert("x-request-id", id);
    }
    out
}

/// Security headers on every response; a strict content security policy on portal pages.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let is_docs = req.uri().path().starts_with("/api/v1/docs");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(), geolocation=()"));
    if !is_docs {
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Turns a panic in a handler into an opaque 500 (the service must never die on input).
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    let msg = err.downcast_ref::<String>().cloned().or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
    ApiError::internal(&format!("handler panicked: {msg}")).into_response()
}

/// 限流: requests per second per client address and per credential (bearer token or session), each with a
/// burst of twice the rate. Beyond it: 429 with `Retry-After`. Health and metrics endpoints are exempt.
pub struct RateLimits {
    per_ip: Option<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    per_token: Option<governor::DefaultKeyedRateLimiter<u64>>,
    hasher: std::collections::hash_map::RandomState,
}

impl RateLimits {
    /// 0 turns a limit off.
    pub fn new(per_ip: u32, per_token: u32) -> Self {
        let quota = |n: u32| {
            std::num::NonZeroU32::new(n)
                .map(|rate| governor::Quota::per_second(rate).allow_burst(std::num::NonZeroU32::new(n.saturating_mul(2)).unwrap_or(rate)))
        };
        RateLimits {
            per_ip: quota(per_ip).map(governor::RateLimiter::keyed),
            per_token: quota(per_token).map(governor::RateLimiter::keyed),
            hasher: Default::default(),
        }
    }

    /// `Err(wait)` when the request is over a limit.
    fn check(&self, ip: Option<std::net::IpAddr>, credential: Option<&str>) -> Result<(), (std::time::Duration, &'static str)> {
        use governor::clock::Clock;
        use std::hash::BuildHasher;
        if let (Some(lim), Some(ip)) = (&self.per_ip, ip) {
            if lim.len() > 100_000 {
                lim.retain_recent();
            }
            lim.check_key(&ip).map_err(|n| (n.wait_time_from(lim.clock().now()), "this address"))?;
        }
        if let (Some(lim), Some(cred)) = (&self.per_token, credential) {
            if lim.len() > 100_000 {
                lim.retain_recent();
            }
            // Keyed by a hash: credentials are not kept in memory longer than the request.
            lim.check_key(&self.hasher.hash_one(cred)).map_err(|n| (n.wait_time_from(lim.clock().now()), "this credential"))?;
        }
        Ok(())
    }
}

impl RateLimits {
    fn is_off(&self) -> bool {
        self.per_ip.is_none() && self.per_token.is_none()
    }
}

/// One layer for the checks every request passes before routing (one layer, not two: each layer costs
/// every request): the rate limits, and the body check of SM2-signed requests.
pub async fn request_guard(state: axum::extract::State<crate::AppState>, req: Request, next: Next) -> Response {
    if let Some(refused) = rate_limited(&state, &req) {
        return refused;
    }
    if req.headers().contains_key(shutong_identity::signing::HEADER_SIGNATURE) {
        return check_signed_body(req, next).await;
    }
    next.run(req).await
}

fn rate_limited(state: &crate::AppState, req: &Request) -> Option<Response> {
    if state.rate_limits.is_off() {
        return None;
    }
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return None;
    }
    let ip = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let credential = bearer.or_else(|| crate::extract::cookie(req.headers(), crate::extract::SESSION_COOKIE));
    let (wait, whom) = state.rate_limits.check(ip, credential).err()?;
    let secs = wait.as_secs() + 1;
    let mut res = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests from {whom}; retry after {} ms", wait.as_millis().max(1)),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(res)
}

/// A signed request's body must hash (SM3) to its `X-Shutong-Content-SM3` header: checked as the handler
/// reads it, so a streamed upload is not buffered; a mismatch fails the read at the end (and with it the
/// request, before anything commits).
async fn check_signed_body(req: Request, next: Next) -> Response {
    use shutong_identity::signing::HEADER_CONTENT_SM3;
    let mut expected = [0u8; 32];
    let declared = req.headers().get(HEADER_CONTENT_SM3).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if hex::decode_to_slice(declared, &mut expected).is_err() {
        return ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", "X-Shutong-Content-SM3: 64 hex digits (SM3 of the body)")
            .into_response();
    }
    let (parts, body) = req.into_parts();
    let checked = Sm3Checked { inner: body.into_data_stream(), hasher: Some(Default::default()), expected };
    next.run(Request::from_parts(parts, Body::from_stream(checked))).await
}

struct Sm3Checked {
    inner: axum::body::BodyDataStream,
    hasher: Option<shutong_crypto::Sm3Hasher>,
    expected: [u8; 32],
}

impl futures_util::Stream for Sm3Checked {
    type Item = Result<axum::body::Bytes, axum::Error>;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        use futures_util::StreamExt;
        match self.inner.poll_next_unpin(cx) {
            std::task::Poll::Ready(Some(Ok(chunk))) => {
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&chunk);
                }
                std::task::Poll::Ready(Some(Ok(chunk)))
            }
            std::task::Poll::Ready(None) => {
                let digest = self.hasher.take().map(|h| h.finalize());
                if digest.is_some_and(|d| d != self.expected) {
                    return std::task::Poll::Ready(Some(Err(axum::Error::new(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the body does not match X-Shutong-Content-SM3",
                    )))));
                }
                std::task::Poll::Ready(None)
            }
            other => other,
        }
    }
}

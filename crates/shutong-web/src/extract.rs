//! Extractors: JSON bodies that name the field at fault, and the authenticated caller.

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use shutong_audit::AuditContext;
use shutong_identity::Principal;
use std::net::SocketAddr;

use crate::error::{ApiError, current_request_id};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "shutong_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A JSON body, deserialised with the path of the failing field in the error.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is larger than the limit")
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Deserialises JSON, naming the field (as a JSON path) at fault.
///
/// A number written with a fraction of zero (`3.0`) is taken as the integer it equals, as JSON Schema's
/// `integer` type does: clients written against the OpenAPI document may send one for an integer field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    // Every body is a JSON object: serde would also read a struct from an array of its fields in order.
    if !value.is_object() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "invalid request body: expected a JSON object"));
    }
    whole_numbers_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // serde names an unknown field in the path, a missing one only in the message.
        let field = if inner.is_syntax() || inner.is_eof() {
            None
        } else if msg.starts_with("missing field") {
            extract_backticked(&msg).map(|f| if path == "." { f } else { format!("{path}.{f}") })
        } else {
            (path != "." && path != "?").then_some(path)
        };
        let mut err = if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("malformed JSON: {msg}"))
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", format!("invalid request body: {msg}"))
        };
        err.field = field;
        err
    })
}

/// Rewrites every number that is a whole float of at most 2^53 (`3.0`, `-1e3`) as that integer.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Number(n) if n.is_f64() => {
                if let Some(f) = n.as_f64() {
                    // Only where a float holds every integer exactly (|f| ≤ 2^53): a larger one may stand for
                    // a number out of i64's range, which must stay an error.
                    if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
                        *v = Value::from(f as i64);
                    }
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(fields) => stack.extend(fields.values_mut()),
            _ => {}
        }
    }
}

fn extract_backticked(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = start + msg[start..].find('`')?;
    Some(msg[start..end].to_string())
}

/// The authenticated caller of an API endpoint, with what its audit events need.
pub struct Caller {
    pub principal: Principal,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

impl Caller {
    pub fn ctx(&self) -> AuditContext {
        self.principal.audit_context(self.request_id.clone(), self.ip.clone())
    }
}

pub fn client_ip(parts: &Parts) -> Option<String> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())
}

pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let db = &state.db;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let principal = if parts.headers.contains_key(shutong_identity::signing::HEADER_SIGNATURE) {
            Some(signed_principal(parts, db, state.clock.now_ms()).await?)
        } else if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let value = auth.to_str().map_err(|_| ApiError::unauthenticated())?;
            let token = value.strip_prefix("Bearer ").ok_or_else(ApiError::unauthenticated)?.trim();
            if token.len() > 200 {
                return Err(ApiError::unauthenticated());
            }
            match state.principals.get(token) {
                Some(p) => Some(p),
                None => {
                    let p = if token.starts_with("st_") {
                        shutong_identity::resolve_token_until(db, token).await?
                    } else if token.starts_with("ss_") {
                        shutong_identity::resolve_session_until(db, token).await?.map(|(p, _, until)| (p, until))
                    } else {
                        None
                    };
                    p.map(|(p, until)| {
                        state.principals.put(token, p.clone(), until);
                        p
                    })
                }
            }
        } else if let Some(session) = cookie(&parts.headers, SESSION_COOKIE) {
            // A browser session: state-changing calls must carry the session's CSRF token in a header.
            match shutong_identity::resolve_session(db, session).await? {
                Some((p, csrf)) => {
                    let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                    if !safe && sent != Some(csrf.as_str()) {
                        return Err(ApiError::forbidden("missing or wrong x-csrf-token header for a cookie-authenticated request"));
                    }
                    Some(p)
                }
                None => None,
            }
        } else {
            None
        };
        let principal = principal.ok_or_else(ApiError::unauthenticated)?;
        Ok(Caller { principal, request_id: current_request_id(), ip: client_ip(parts) })
    }
}

/// A system account's SM2-signed request (`shutong_identity::signing`): verified on every call, never cached.
/// The body's SM3 is checked as it is read (`middleware::check_signed_body`).
/// `now` is the platform's clock (the business clock, which tests move), against which the request's
/// timestamp must lie within five minutes.
async fn signed_principal(parts: &Parts, db: &shutong_store::Db, now: i64) -> Result<shutong_identity::Principal, ApiError> {
    use shutong_identity::signing::*;
    let h =
        |name: &'static str| -> Result<&str, ApiError> {
            parts.headers.get(name).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", format!("a signed request needs the {name} header"))
            })
        };
    let req = SignedRequest {
        account: h(HEADER_ACCOUNT)?,
        timestamp: h(HEADER_TIMESTAMP)?,
        nonce: h(HEADER_NONCE)?,
        content_sm3: h(HEADER_CONTENT_SM3)?,
        signature: h(HEADER_SIGNATURE)?,
        method: parts.method.as_str(),
        path_and_query: parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
    };
    match authenticate_signed(db, &req, now).await? {
        Ok(p) => Ok(p),
        Err(refusal) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", refusal.to_string())),
    }
}

/// The peer address of the connection, for audit events of unauthenticated calls (login).
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

/// Bearer credentials resolved recently: an API call then costs no identity queries. An entry lives for
/// `ttl` and never past the credential's own expiry. Keys are the credentials' SHA-256, never the secrets.
/// Every identity change made through this process empties it, so revocations, role changes and logouts
/// apply at once here; a change made on another replica (or in the database directly) within `ttl`.
pub struct PrincipalCache {
    ttl: std::time::Duration,
    map: std::sync::Mutex<std::collections::HashMap<[u8; 32], (std::time::Instant, i64, Principal)>>,
}

impl PrincipalCache {
    pub fn new(ttl_ms: u64) -> Self {
        PrincipalCache { ttl: std::time::Duration::from_millis(ttl_ms), map: Default::default() }
    }

    fn key(token: &str) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes()).into()
    }

    pub fn get(&self, token: &str) -> Option<Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.lock().ok()?;
        let now = shutong_store::now_ms();
        map.get(&Self::key(token)).filter(|(at, until, _)| at.elapsed() < self.ttl && now < *until).map(|(_, _, p)| p.clone())
    }

    /// Remembers a resolved credential valid until `until_ms` (epoch ms).
    pub fn put(&self, token: &str, p: Principal, until_ms: i64) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.map.lock() {
            if map.len() > 50_000 {
                map.retain(|_, (at, _, _)| at.elapsed() < self.ttl);
            }
            map.insert(Self::key(token), (std::time::Instant::now(), until_ms, p));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }
}

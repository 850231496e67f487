//! The one error envelope of the API: 4xx name what is wrong; 5xx are opaque to the client, logged in
//! full, and carry the request ID to quote.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shutong_api_types::{ErrorBody, ErrorEnvelope};
use shutong_identity::IdentityError;
use shutong_refdata::RefDataError;
use shutong_store::StoreError;

tokio::task_local! {
    /// The current request's ID, set by the request-context middleware.
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub violations: Option<Box<serde_json::Value>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, violations: None }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message).with_field(field)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", "authentication required: a bearer token or a session")
    }

    pub fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable", "the database is unavailable; try again shortly")
    }

    /// An unexpected failure: logged in full here, opaque to the client.
    pub fn internal(err: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id = current_request_id().unwrap_or_default(), error = %err, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error; quote the request ID when reporting it")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorEnvelope {
            error: ErrorBody {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
                request_id: current_request_id(),
                violations: self.violations.map(|v| *v),
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(inner) => {
                tracing::warn!(error = %inner, "database unavailable");
                ApiError::unavailable()
            }
            StoreError::Conflict { constraint } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", format!("a unique value is already taken ({constraint})"))
            }
            StoreError::BadText => ApiError::bad_request("a text value contains the NUL character (U+0000), which is not accepted"),
            other => ApiError::internal(&other),
        }
    }
}

impl From<shutong_audit::AuditError> for ApiError {
    fn from(e: shutong_audit::AuditError) -> Self {
        match e {
            shutong_audit::AuditError::Store(s) => s.into(),
            shutong_audit::AuditError::Range { field, message } => ApiError::validation(field, message),
            shutong_audit::AuditError::Forbidden(m) => ApiError::forbidden(m),
            other => ApiError::internal(&other),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Validation { field, message } => ApiError::validation(&field, format!("{field}: {message}")),
            IdentityError::NotFound { what } => ApiError::not_found(what),
            IdentityError::Forbidden(m) => ApiError::forbidden(m),
            IdentityError::Conflict { field, message } => ApiError::new(StatusCode::CONFLICT, "conflict", message).with_field(field),
            IdentityError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "invalid username or password")
            }
            IdentityError::Locked { until_ms } => ApiError::new(
                StatusCode::LOCKED,
                "account_locked",
                format!("too many failed logins; the account is locked until {}", shutong_store::from_ms(until_ms).to_rfc3339()),
            ),
            IdentityError::Store(s) => s.into(),
        }
    }
}

impl From<RefDataError> for ApiError {
    fn from(e: RefDataError) -> Self {
        match e {
            RefDataError::Validation { field, message } => ApiError::validation(&field, format!("{field}: {message}")),
            RefDataError::Forbidden(m) => ApiError::forbidden(m),
            RefDataError::Store(s) => s.into(),
        }
    }
}

impl From<shutong_catalog::CatalogError> for ApiError {
    fn from(e: shutong_catalog::CatalogError) -> Self {
        use shutong_catalog::CatalogError as C;
        match e {
            C::Validation { field, message } => ApiError::validation(&field, format!("{field}: {message}")),
            C::Rules(violations) => {
                let message = e_rules_message(&violations);
                let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rule_violation", message);
                err.field = violations.first().map(|v| v.field.clone());
                err.violations = serde_json::to_value(&violations).ok().map(Box::new);
                err
            }
            C::NotFound { what } => ApiError::not_found(what),
            C::Forbidden(m) => ApiError::forbidden(m),
            C::State(m) => ApiError::new(StatusCode::CONFLICT, "invalid_state", m),
            C::Store(s) => s.into(),
        }
    }
}

impl From<shutong_sharing::SharingError> for ApiError {
    fn from(e: shutong_sharing::SharingError) -> Self {
        use shutong_sharing::SharingError as S;
        match e {
            S::Validation { field, message } => ApiError::validation(&field, format!("{field}: {message}")),
            S::NotFound { what } => ApiError::not_found(what),
            S::Forbidden(m) => ApiError::forbidden(m),
            S::State(m) => ApiError::new(StatusCode::CONFLICT, "invalid_state", m),
            S::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            S::Store(s) => s.into(),
        }
    }
}

impl From<shutong_exchange::ExchangeError> for ApiError {
    fn from(e: shutong_exchange::ExchangeError) -> Self {
        use shutong_exchange::ExchangeError as X;
        match e {
            X::Validation { field, message } => ApiError::validation(&field, format!("{field}: {message}")),
            X::NotFound { what } => ApiError::not_found(what),
            X::Forbidden(m) => ApiError::forbidden(m),
            X::NoGrant(m) => ApiError::new(StatusCode::FORBIDDEN, "no_grant", m),
            X::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            X::PartsLost(m) => ApiError::new(StatusCode::CONFLICT, "batch_parts_lost", m),
            X::Limited(m) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, "limited", m),
            X::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m),
            X::BatchRejected { message, report } => {
                let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "batch_rejected", message);
                err.violations = serde_json::to_value(&*report).ok().map(Box::new);
                err
            }
            X::Upstream(m) => ApiError::new(StatusCode::BAD_GATEWAY, "upstream_failed", m),
            e @ X::Sealed(_) => ApiError::internal(&e),
            X::Store(s) => s.into(),
        }
    }
}

fn e_rules_message(v: &[shutong_catalog::rules::Violation]) -> String {
    v.iter().map(|v| format!("{} {}: {}", v.rule, v.field, v.message)).collect::<Vec<_>>().join("; ")
}

impl ApiError {
    /// 422 naming every field at fault: the first as `field`, all of them as `violations` (`[{field, message}]`).
    pub fn invalid_fields(problems: &[shutong_systems::FieldProblem]) -> ApiError {
        let message = problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; ");
        let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message);
        err.field = problems.first().map(|p| p.field.clone());
        err.violations = serde_json::to_value(problems).ok().map(Box::new);
        err
    }
}

impl From<shutong_systems::SystemsError> for ApiError {
    fn from(e: shutong_systems::SystemsError) -> Self {
        use shutong_systems::SystemsError as Y;
        match e {
            Y::Validation { field, message } => ApiError::validation(&field, format!("{field}: {message}")),
            Y::Invalid(problems) => ApiError::invalid_fields(&problems),
            Y::NotFound { what } => ApiError::not_found(what),
            Y::Forbidden(m) => ApiError::forbidden(m),
            Y::State(m) => ApiError::new(StatusCode::CONFLICT, "invalid_state", m),
            Y::Duplicate { field, message } => {
                ApiError::new(StatusCode::CONFLICT, "duplicate", format!("{field}: {message}")).with_field(field)
            }
            Y::GateClosed { gate, reasons } => {
                let message = format!("the {gate} gate is closed: {}", reasons.join("; "));
                let mut err = ApiError::new(StatusCode::CONFLICT, "gate_closed", message);
                err.field = Some(gate.as_str().to_string());
                err.violations = Some(Box::new(serde_json::json!(reasons)));
                err
            }
            Y::Document(shutong_documents::DocumentError::NoCjkFont { searched }) => document_unavailable(searched),
            Y::Document(other) => ApiError::internal(&other),
            Y::ImportRejected(issues) => {
                let mut e = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "import_rejected",
                    format!("nothing imported: {} issue(s); see violations", issues.len()),
                );
                e.field = issues.first().map(|i| format!("{}!{}{}", i.sheet, i.column, i.row));
                e.violations = serde_json::to_value(&issues).ok().map(Box::new);
                e
            }
            Y::Store(s) => s.into(),
        }
    }
}

impl From<shutong_quality::QualityError> for ApiError {
    fn from(e: shutong_quality::QualityError) -> Self {
        use shutong_quality::QualityError as Q;
        match e {
            Q::Validation { field, message } => ApiError::validation(&field, format!("{field}: {message}")),
            Q::NotFound { what } => ApiError::not_found(what),
            Q::Forbidden(m) => ApiError::forbidden(m),
            Q::State(m) => ApiError::new(StatusCode::CONFLICT, "invalid_state", m),
            Q::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m),
            Q::Exchange(x) => x.into(),
            Q::Store(s) => s.into(),
        }
    }
}

/// Printing needs a font with Chinese glyphs; without one the platform still serves everything else.
pub fn document_unavailable(searched: Vec<std::path::PathBuf>) -> ApiError {
    let e = shutong_documents::DocumentError::NoCjkFont { searched };
    tracing::warn!(error = %e, "a document was asked for on a machine without a CJK font");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "documents_unavailable", e.to_string())
}

impl From<shutong_documents::DocumentError> for ApiError {
    fn from(e: shutong_documents::DocumentError) -> Self {
        match e {
            shutong_documents::DocumentError::NoCjkFont { searched } => document_unavailable(searched),
            other => ApiError::internal(&other),
        }
    }
}

//! Service functions of organisation and identity: one per state change, each checking the principal,
//! writing in one transaction and recording its audit event there.

use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use shutong_audit::{AuditContext, Change, NewAuditEvent};
use shutong_reference::{CreditCode, RegionTable};
use shutong_store::effects::Notice;
use shutong_store::{AnyRow, Db, Row, StoreError, Tx, now_ms};

use crate::model::*;
use crate::password::{PasswordPolicy, burn_verification, hash_password, verify_password};
use crate::principal::{Principal, RoleAssignment};

mod departments;
mod figures;
mod node;
mod sessions;
mod tokens;
mod users;

pub use departments::*;
pub use figures::*;
pub use node::*;
pub use sessions::*;
pub use tokens::*;
pub use users::*;

/// Errors of identity services, each mapping to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A field is invalid (400/422).
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// The thing does not exist, or the principal may not know it does (404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The principal may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A unique value is taken (409).
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// Wrong username or password (401); deliberately says no more.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failed logins (423 / 429).
    #[error("account locked until {until_ms}")]
    Locked { until_ms: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for IdentityError {
    fn from(e: sqlx::Error) -> Self {
        IdentityError::Store(e.into())
    }
}

pub type IdentityResult<T> = Result<T, IdentityError>;

fn invalid(field: &str, message: impl Into<String>) -> IdentityError {
    IdentityError::Validation { field: field.to_string(), message: message.into() }
}

fn forbidden(message: &str) -> IdentityError {
    IdentityError::Forbidden(message.to_string())
}

/// The refusal of an action on something the principal may not change: 403 if it may see it, otherwise
/// 404, so that IDs do not reveal what exists in other departments.
fn refusal(visible: bool, message: &str, what: &'static str) -> IdentityError {
    if visible { forbidden(message) } else { IdentityError::NotFound { what } }
}

/// Security settings that the services enforce.
#[derive(Clone, Debug)]
pub struct SecuritySettings {
    pub password_policy: PasswordPolicy,
    pub max_failed_logins: i64,
    pub lockout_ms: i64,
    pub session_ttl_ms: i64,
    pub max_token_ttl_days: i64,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            password_policy: PasswordPolicy::default(),
            max_failed_logins: 5,
            lockout_ms: 15 * 60 * 1000,
            session_ttl_ms: 8 * 3600 * 1000,
            max_token_ttl_days: 366,
        }
    }
}

/// SHA-256 of a secret, hex: how token and session secrets are stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn trimmed_name(field: &str, value: &str, max: usize) -> IdentityResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(v.to_string())
}

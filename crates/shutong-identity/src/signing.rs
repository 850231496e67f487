//! 签名请求: system accounts (系统账户, a department's 前置机 or business system) may sign each request with
//! their SM2 key instead of sending a bearer token (办法 第二十一条: 身份认证). The platform keeps only the
//! public key; a captured request cannot be replayed (timestamp within ±5 minutes, nonce used once).
//!
//! The signed string and its headers are the wire's, in [`shutong_crypto::request_signing`].

use serde_json::json;
use shutong_audit::{AuditContext, Change, NewAuditEvent};
use shutong_store::effects::Notice;
use shutong_store::{Db, Row, StoreError};

use crate::{IdentityError, IdentityResult, Principal, UserId, load_principal};

pub use shutong_crypto::request_signing::{
    HEADER_ACCOUNT, HEADER_CONTENT_SM3, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, SCHEME, signing_string,
};
/// How far a request's timestamp may be from the platform's clock.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// A signed request's credentials, as received.
#[derive(Clone, Debug)]
pub struct SignedRequest<'a> {
    pub account: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub content_sm3: &'a str,
    /// base64 of the DER signature.
    pub signature: &'a str,
    pub method: &'a str,
    pub path_and_query: &'a str,
}

/// Why a signed request is refused (401); the message names the header at fault.
#[derive(Debug, thiserror::Error)]
pub enum SignatureRefusal {
    #[error("{0}")]
    Malformed(String),
    #[error("X-Shutong-Timestamp is more than 5 minutes from the platform's clock")]
    Stale,
    #[error("this nonce was already used: a request is accepted once")]
    Replayed,
    #[error("unknown account, not an active system account, or no SM2 key registered for it")]
    UnknownAccount,
    #[error("X-Shutong-Signature does not verify")]
    BadSignature,
}

/// Checks a signed request against the platform's clock `now` (Unix ms); on success the nonce is spent and
/// the account's principal returned.
pub async fn authenticate_signed(db: &Db, req: &SignedRequest<'_>, now: i64) -> IdentityResult<Result<Principal, SignatureRefusal>> {
    use base64::Engine;
    let Ok(timestamp) = req.timestamp.trim().parse::<i64>() else {
        return Ok(Err(SignatureRefusal::Malformed("X-Shutong-Timestamp: not Unix milliseconds".into())));
    };
    if !(16..=64).contains(&req.nonce.len()) || !req.nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Ok(Err(SignatureRefusal::Malformed("X-Shutong-Nonce: 16–64 characters of A–Z a–z 0–9 - _".into())));
    }
    if req.content_sm3.len() != 64 || !req.content_sm3.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Err(SignatureRefusal::Malformed("X-Shutong-Content-SM3: 64 hex digits (SM3 of the body)".into())));
    }
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(req.signature.trim()) else {
        return Ok(Err(SignatureRefusal::Malformed("X-Shutong-Signature: not base64".into())));
    };
    if (now - timestamp).abs() > MAX_SKEW_MS {
        return Ok(Err(SignatureRefusal::Stale));
    }
    let row = sqlx::query("SELECT id, sm2_public_key, is_system, status, last_signed_at FROM users WHERE username = $1")
        .bind(req.account.trim().to_ascii_lowercase())
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(Err(SignatureRefusal::UnknownAccount)) };
    let user_id = UserId(row.try_get("id")?);
    let key: Option<String> = row.try_get("sm2_public_key")?;
    let (Some(key), true) = (key, row.try_get::<i64, _>("is_system")? != 0) else {
        return Ok(Err(SignatureRefusal::UnknownAccount));
    };
    let Ok(key) = shutong_crypto::PublicKey::from_hex(&key) else { return Ok(Err(SignatureRefusal::UnknownAccount)) };
    let message = signing_string(req.method, req.path_and_query, timestamp, req.nonce, req.content_sm3);
    if key.verify(message.as_bytes(), &signature).is_err() {
        return Ok(Err(SignatureRefusal::BadSignature));
    }
    // Spend the nonce (only after the signature verified: others cannot burn an account's nonces).
    sqlx::query("DELETE FROM request_nonces WHERE expires_at < $1").bind(now).execute(db.pool()).await?;
    let spent = sqlx::query("INSERT INTO request_nonces (user_id, nonce, expires_at) VALUES ($1, $2, $3)")
        .bind(user_id.0)
        .bind(req.nonce)
        .bind(timestamp + MAX_SKEW_MS + 1000)
        .execute(db.pool())
        .await;
    match spent {
        Ok(_) => {}
        Err(e) => {
            return match StoreError::from(e) {
                StoreError::Conflict { .. } => Ok(Err(SignatureRefusal::Replayed)),
                other => Err(other.into()),
            };
        }
    }
    // The account's platform use, recorded at most once a minute (the zombie verdict reads it), on the
    // platform's clock as the timestamp was checked.
    let last: Option<i64> = row.try_get("last_signed_at")?;
    if last.is_none_or(|l| now - l > 60_000) {
        sqlx::query("UPDATE users SET last_signed_at = $1 WHERE id = $2").bind(now).bind(user_id.0).execute(db.pool()).await?;
    }
    Ok(load_principal(db, user_id).await?.ok_or(SignatureRefusal::UnknownAccount))
}

/// Registers (or with `None` removes) a system account's SM2 public key (hex SEC1 point or SPKI PEM).
/// Returns the key as stored (hex).
pub async fn set_sm2_key(
    db: &Db,
    actor: &Principal,
    ctx: &AuditContext,
    user_id: UserId,
    key: Option<&str>,
) -> IdentityResult<Option<String>> {
    let parsed = match key.map(str::trim).filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => {
            let pk =
                if k.starts_with("-----BEGIN") { shutong_crypto::PublicKey::from_pem(k) } else { shutong_crypto::PublicKey::from_hex(k) };
            Some(
                pk.map_err(|e| IdentityError::Validation { field: "public_key".into(), message: format!("not an SM2 public key: {e}") })?
                    .to_hex(),
            )
        }
    };
    let mut change = Change::begin(db, ctx).await?;
    let row = sqlx::query("SELECT department_id, is_system FROM users WHERE id = $1")
        .bind(user_id.0)
        .fetch_optional(&mut **change.tx())
        .await?
        .ok_or(IdentityError::NotFound { what: "user" })?;
    let department = crate::DepartmentId(row.try_get("department_id")?);
    if !actor.may_manage_credentials_of(user_id, department) {
        return Err(if actor.can_read_users_of(department) {
            IdentityError::Forbidden("you may not manage this user's credentials".into())
        } else {
            IdentityError::NotFound { what: "user" }
        });
    }
    if row.try_get::<i64, _>("is_system")? == 0 {
        return Err(IdentityError::Validation {
            field: "user_id".into(),
            message: "only system accounts (系统账户) sign requests; people log in".into(),
        });
    }
    sqlx::query("UPDATE users SET sm2_public_key = $1 WHERE id = $2")
        .bind(parsed.as_deref())
        .bind(user_id.0)
        .execute(&mut **change.tx())
        .await?;
    change
        .record(NewAuditEvent {
            action: if parsed.is_some() { shutong_audit::Action::UserSm2KeySet } else { shutong_audit::Action::UserSm2KeyRemoved },
            target_kind: "user",
            target_id: user_id.0.to_string(),
            department_id: Some(department.0),
            detail: json!({ "public_key": parsed }),
        })
        .await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok(parsed)
}

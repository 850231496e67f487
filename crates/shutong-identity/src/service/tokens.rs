//! 系统 API 令牌: created, revoked, resolved.

use super::*;

const TOKEN_COLUMNS: &str = "id, user_id, name, token_prefix, created_at, expires_at, revoked_at, last_used_at";

fn token_from_row(r: &AnyRow) -> IdentityResult<ApiToken> {
    Ok(ApiToken {
        id: TokenId(r.try_get("id")?),
        user_id: UserId(r.try_get("user_id")?),
        name: r.try_get("name")?,
        prefix: r.try_get("token_prefix")?,
        created_at_ms: r.try_get("created_at")?,
        expires_at_ms: r.try_get("expires_at")?,
        revoked_at_ms: r.try_get("revoked_at")?,
        last_used_at_ms: r.try_get("last_used_at")?,
    })
}

/// Issues an API token for a user (itself, or a user the principal administers). The secret is in the
/// return value only: it is stored hashed and can never be shown again.
pub async fn create_token(
    db: &Db,
    settings: &SecuritySettings,
    actor: &Principal,
    ctx: &AuditContext,
    user_id: UserId,
    name: &str,
    ttl_days: i64,
) -> IdentityResult<(ApiToken, String)> {
    let name = trimmed_name("name", name, 100)?;
    if !(1..=settings.max_token_ttl_days).contains(&ttl_days) {
        return Err(invalid("ttl_days", format!("must be between 1 and {}", settings.max_token_ttl_days)));
    }
    let mut change = Change::begin(db, ctx).await?;
    let user = fetch_user_tx(change.tx(), user_id).await?;
    if !actor.may_manage_credentials_of(user_id, user.department_id) {
        return Err(refusal(actor.can_read_users_of(user.department_id), "you may not issue tokens for this user", "user"));
    }
    let secret = format!("st_{}", random_hex(32));
    let now = now_ms();
    let row = sqlx::query(&format!(
        "INSERT INTO api_tokens (user_id, name, token_hash, token_prefix, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
    ))
    .bind(user_id.0)
    .bind(&name)
    .bind(hash_secret(&secret))
    .bind(&secret[..10])
    .bind(now)
    .bind(now + ttl_days * 86_400_000)
    .fetch_one(&mut **change.tx())
    .await?;
    let token = token_from_row(&row)?;
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::TokenCreate,
            target_kind: "token",
            target_id: token.id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({"user_id": user_id, "name": name, "prefix": token.prefix, "expires_at_ms": token.expires_at_ms}),
        })
        .await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok((token, secret))
}

/// Revokes a token; it stops working at once.
pub async fn revoke_token(db: &Db, actor: &Principal, ctx: &AuditContext, id: TokenId) -> IdentityResult<ApiToken> {
    let mut change = Change::begin(db, ctx).await?;
    let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(&mut **change.tx())
        .await?
        .ok_or(IdentityError::NotFound { what: "token" })?;
    let mut token = token_from_row(&row)?;
    let owner = fetch_user_tx(change.tx(), token.user_id).await?;
    if !actor.may_manage_credentials_of(token.user_id, owner.department_id) {
        return Err(refusal(actor.can_read_users_of(owner.department_id), "you may not revoke this token", "token"));
    }
    if token.revoked_at_ms.is_none() {
        let now = now_ms();
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2").bind(now).bind(id.0).execute(&mut **change.tx()).await?;
        token.revoked_at_ms = Some(now);
        change
            .record(NewAuditEvent {
                action: shutong_audit::Action::TokenRevoke,
                target_kind: "token",
                target_id: id.to_string(),
                department_id: Some(owner.department_id.0),
                detail: json!({"user_id": token.user_id, "prefix": token.prefix}),
            })
            .await?;
    }
    change.notify(Notice::IdentityChanged);
    change.commit_if_recorded().await?;
    Ok(token)
}

/// The tokens the principal may see: its own, and those of users it administers or audits.
pub async fn list_tokens(db: &Db, actor: &Principal, user: Option<UserId>) -> IdentityResult<Vec<ApiToken>> {
    let rows = sqlx::query(&format!(
        "SELECT t.{}, u.department_id AS owner_department FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE ($1 IS NULL OR t.user_id = $1) ORDER BY t.id",
        TOKEN_COLUMNS.replace(", ", ", t.")
    ))
    .bind(user.map(|u| u.0))
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let t = token_from_row(r)?;
        let dept = DepartmentId(r.try_get("owner_department")?);
        if actor.user_id == Some(t.user_id) || actor.can_read_users_of(dept) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Resolves a bearer token: known, not revoked, not expired, owner active.
pub async fn resolve_token(db: &Db, secret: &str) -> IdentityResult<Option<Principal>> {
    Ok(resolve_token_until(db, secret).await?.map(|(p, _)| p))
}

/// As [`resolve_token`], with the token's expiry (epoch ms).
pub async fn resolve_token_until(db: &Db, secret: &str) -> IdentityResult<Option<(Principal, i64)>> {
    let row = sqlx::query("SELECT id, user_id, expires_at, revoked_at, last_used_at FROM api_tokens WHERE token_hash = $1")
        .bind(hash_secret(secret))
        .fetch_optional(db.pool())
        .await?;
    let Some(r) = row else { return Ok(None) };
    let now = now_ms();
    let expires: i64 = r.try_get("expires_at")?;
    if r.try_get::<Option<i64>, _>("revoked_at")?.is_some() || expires < now {
        return Ok(None);
    }
    // Last use is recorded at most once a minute, to keep reads cheap.
    let last: Option<i64> = r.try_get("last_used_at")?;
    if last.is_none_or(|l| now - l > 60_000) {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(r.try_get::<i64, _>("id")?)
            .execute(db.pool())
            .await?;
    }
    Ok(load_principal(db, UserId(r.try_get("user_id")?)).await?.map(|p| (p, expires)))
}

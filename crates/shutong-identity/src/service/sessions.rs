//! 身份鉴别: principals, login with lockout, sessions.

use super::*;

/// Loads the principal of an active user.
pub async fn load_principal(db: &Db, user_id: UserId) -> IdentityResult<Option<Principal>> {
    let row = sqlx::query("SELECT id, username, display_name, department_id, is_system, status FROM users WHERE id = $1")
        .bind(user_id.0)
        .fetch_optional(db.pool())
        .await?;
    let Some(r) = row else { return Ok(None) };
    if r.try_get::<String, _>("status")? != UserStatus::Active.as_str() {
        return Ok(None);
    }
    Ok(Some(Principal {
        user_id: Some(user_id),
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        department_id: Some(DepartmentId(r.try_get("department_id")?)),
        roles: roles_of(db, user_id).await?,
        is_system: r.try_get::<i64, _>("is_system")? != 0,
        operator: false,
    }))
}

/// 身份鉴别: checks a username and password, counting failures and locking the account after too many.
/// Every attempt, good or bad, is audited.
pub async fn login(db: &Db, settings: &SecuritySettings, ctx: &AuditContext, username: &str, password: &str) -> IdentityResult<User> {
    let username = username.trim().to_ascii_lowercase();
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS}, password_hash, failed_logins FROM users WHERE username = $1"))
        .bind(&username)
        .fetch_optional(db.pool())
        .await?;
    let now = now_ms();
    let Some(row) = row else {
        burn_verification(password);
        let mut change = Change::begin(db, ctx).await?;
        change
            .record(NewAuditEvent {
                action: shutong_audit::Action::AuthLoginFailed,
                target_kind: "user",
                target_id: username.clone(),
                department_id: None,
                detail: json!({"reason": "unknown user"}),
            })
            .await?;
        change.notify(Notice::IdentityChanged);
        change.commit().await?;
        return Err(IdentityError::InvalidCredentials);
    };
    let user = user_from_row(&row)?;
    let hash: Option<String> = row.try_get("password_hash")?;
    if let Some(until) = user.locked_until_ms.filter(|u| *u > now) {
        return Err(IdentityError::Locked { until_ms: until });
    }
    let ok = user.status == UserStatus::Active && hash.as_deref().is_some_and(|h| verify_password(password, h));
    let mut change = Change::begin(db, ctx).await?;
    if !ok {
        let failed: i64 = sqlx::query("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
            .bind(user.id.0)
            .fetch_one(&mut **change.tx())
            .await?
            .try_get(0)?;
        let locked = failed >= settings.max_failed_logins;
        if locked {
            sqlx::query("UPDATE users SET locked_until = $1, failed_logins = 0 WHERE id = $2")
                .bind(now + settings.lockout_ms)
                .bind(user.id.0)
                .execute(&mut **change.tx())
                .await?;
        }
        change
            .record_as(
                &AuditContext { actor_user_id: Some(user.id.0), ..ctx.clone() },
                NewAuditEvent {
                    action: if locked { shutong_audit::Action::AuthLocked } else { shutong_audit::Action::AuthLoginFailed },
                    target_kind: "user",
                    target_id: user.id.to_string(),
                    department_id: Some(user.department_id.0),
                    detail: json!({"failed_logins": failed, "status": user.status}),
                },
            )
            .await?;
        change.notify(Notice::IdentityChanged);
        change.commit().await?;
        return Err(IdentityError::InvalidCredentials);
    }
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $1 WHERE id = $2")
        .bind(now)
        .bind(user.id.0)
        .execute(&mut **change.tx())
        .await?;
    change
        .record_as(
            &AuditContext { actor_user_id: Some(user.id.0), actor: user.username.clone(), ..ctx.clone() },
            NewAuditEvent {
                action: shutong_audit::Action::AuthLogin,
                target_kind: "user",
                target_id: user.id.to_string(),
                department_id: Some(user.department_id.0),
                detail: json!({}),
            },
        )
        .await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok(user)
}

/// A new session: the secret for the cookie (or bearer header) and the CSRF token of its forms.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub expires_at_ms: i64,
}

/// Opens a session for a user who has just logged in.
pub async fn create_session(db: &Db, settings: &SecuritySettings, user: UserId) -> IdentityResult<NewSession> {
    let token = format!("ss_{}", random_hex(32));
    let csrf_token = random_hex(24);
    let now = now_ms();
    let expires = now + settings.session_ttl_ms;
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $4)",
    )
    .bind(hash_secret(&token))
    .bind(user.0)
    .bind(&csrf_token)
    .bind(now)
    .bind(expires)
    .execute(db.pool())
    .await?;
    // Expired sessions are swept as new ones open.
    sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now).execute(db.pool()).await?;
    Ok(NewSession { token, csrf_token, expires_at_ms: expires })
}

/// Resolves a session secret to its principal and CSRF token; expired or unknown sessions give `None`.
pub async fn resolve_session(db: &Db, token: &str) -> IdentityResult<Option<(Principal, String)>> {
    Ok(resolve_session_until(db, token).await?.map(|(p, csrf, _)| (p, csrf)))
}

/// As [`resolve_session`], with the session's expiry (epoch ms).
pub async fn resolve_session_until(db: &Db, token: &str) -> IdentityResult<Option<(Principal, String, i64)>> {
    let row = sqlx::query("SELECT user_id, csrf_token, expires_at FROM sessions WHERE token_hash = $1")
        .bind(hash_secret(token))
        .fetch_optional(db.pool())
        .await?;
    let Some(r) = row else { return Ok(None) };
    let expires: i64 = r.try_get("expires_at")?;
    if expires < now_ms() {
        return Ok(None);
    }
    let csrf: String = r.try_get("csrf_token")?;
    Ok(load_principal(db, UserId(r.try_get("user_id")?)).await?.map(|p| (p, csrf, expires)))
}

/// Ends a session (logout).
pub async fn end_session(db: &Db, ctx: &AuditContext, token: &str) -> IdentityResult<()> {
    let mut change = Change::begin(db, ctx).await?;
    let n = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(hash_secret(token))
        .execute(&mut **change.tx())
        .await?
        .rows_affected();
    if n == 0 {
        // No such session: nothing changed (the change rolls back unrecorded).
        return Ok(());
    }
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::AuthLogout,
            target_kind: "user",
            target_id: ctx.actor_user_id.map(|u| u.to_string()).unwrap_or_default(),
            department_id: None,
            detail: json!({}),
        })
        .await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok(())
}

//! Figures of the identity tables, and look-ups for the demo seed and scripts.

use super::*;

/// Figures for the dashboard.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct IdentityFigures {
    pub departments: i64,
    pub users: i64,
    pub system_accounts: i64,
    pub active_tokens: i64,
    pub locked_users: i64,
}

pub async fn figures(db: &Db) -> IdentityResult<IdentityFigures> {
    let now = now_ms();
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM departments) AS departments, \
                (SELECT COUNT(*) FROM users WHERE is_system = 0) AS users, \
                (SELECT COUNT(*) FROM users WHERE is_system = 1) AS system_accounts, \
                (SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL AND expires_at > $1) AS active_tokens, \
                (SELECT COUNT(*) FROM users WHERE locked_until > $1) AS locked_users",
    )
    .bind(now)
    .fetch_one(db.pool())
    .await?;
    Ok(IdentityFigures {
        departments: row.try_get("departments")?,
        users: row.try_get("users")?,
        system_accounts: row.try_get("system_accounts")?,
        active_tokens: row.try_get("active_tokens")?,
        locked_users: row.try_get("locked_users")?,
    })
}

/// The user with this username (compared as stored: lower case), for the operator's CLI and the demo seed.
pub async fn user_id_by_username(db: &Db, username: &str) -> IdentityResult<Option<UserId>> {
    let row = sqlx::query("SELECT id FROM users WHERE username = $1")
        .bind(username.trim().to_ascii_lowercase())
        .fetch_optional(db.pool())
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?.map(UserId))
}

//! 用户与角色: accounts, passwords, role assignments (R-ID-*).

use super::*;

/// Input of [`create_user`].
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub department_id: DepartmentId,
    /// Required for people; system accounts authenticate by token and have none.
    pub password: Option<String>,
    pub is_system: bool,
    pub roles: Vec<Role>,
}

/// Input of [`update_user`].
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub status: Option<UserStatus>,
}

pub(super) const USER_COLUMNS: &str = "id, username, display_name, department_id, is_system, status, locked_until, must_change_password, last_login_at, last_signed_at, created_at";

pub(super) fn user_from_row(r: &AnyRow) -> IdentityResult<User> {
    Ok(User {
        id: UserId(r.try_get("id")?),
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        department_id: DepartmentId(r.try_get("department_id")?),
        is_system: r.try_get::<i64, _>("is_system")? != 0,
        status: shutong_store::parse_column(r, "users", "status", UserStatus::parse)?,
        locked_until_ms: r.try_get("locked_until")?,
        must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
        last_login_at_ms: r.try_get("last_login_at")?,
        last_signed_at_ms: r.try_get("last_signed_at")?,
        created_at_ms: r.try_get("created_at")?,
    })
}

fn check_username(u: &str) -> IdentityResult<String> {
    let u = u.trim();
    if u.len() < 3 || u.len() > 64 {
        return Err(invalid("username", "must be 3 to 64 characters"));
    }
    if !u.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(invalid("username", "may contain only ASCII letters, digits, '.', '_' and '-'"));
    }
    if !u.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(invalid("username", "must start with a letter or digit"));
    }
    Ok(u.to_ascii_lowercase())
}

pub(super) async fn insert_user(change: &mut Change<'_>, settings: &SecuritySettings, u: NewUser) -> IdentityResult<User> {
    let username = check_username(&u.username)?;
    let display_name = trimmed_name("display_name", &u.display_name, 100)?;
    fetch_department_tx(change.tx(), u.department_id)
        .await
        .map_err(|_| invalid("department_id", format!("department {} does not exist", u.department_id)))?;
    let password_hash = match (&u.password, u.is_system) {
        (Some(_), true) => return Err(invalid("password", "system accounts authenticate with tokens and have no password")),
        (None, false) => return Err(invalid("password", "required for a person's account")),
        (Some(p), false) => {
            settings.password_policy.check(p, &username).map_err(|m| invalid("password", m))?;
            Some(hash_password(p))
        }
        (None, true) => None,
    };
    for role in &u.roles {
        if (*role == Role::SystemAccount) != u.is_system {
            return Err(invalid("roles", "the system_account role goes with system accounts, and only with them"));
        }
    }
    let taken = sqlx::query("SELECT id FROM users WHERE username = $1").bind(&username).fetch_optional(&mut **change.tx()).await?;
    if taken.is_some() {
        return Err(IdentityError::Conflict { field: "username".into(), message: format!("username '{username}' is taken") });
    }
    let now = now_ms();
    let row = sqlx::query(&format!(
        "INSERT INTO users (username, display_name, department_id, password_hash, is_system, status, password_changed_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'active', $6, $6, $6) RETURNING {USER_COLUMNS}"
    ))
    .bind(&username)
    .bind(&display_name)
    .bind(u.department_id.0)
    .bind(password_hash)
    .bind(u.is_system as i64)
    .bind(now)
    .fetch_one(&mut **change.tx())
    .await?;
    let user = user_from_row(&row)?;
    let mut roles = u.roles.clone();
    if u.is_system && !roles.contains(&Role::SystemAccount) {
        roles.push(Role::SystemAccount);
    }
    roles.dedup();
    for role in &roles {
        sqlx::query("INSERT INTO role_assignments (user_id, role, department_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(user.id.0)
            .bind(role.as_str())
            .bind(u.department_id.0)
            .bind(now)
            .execute(&mut **change.tx())
            .await?;
    }
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::UserCreate,
            target_kind: "user",
            target_id: user.id.to_string(),
            department_id: Some(u.department_id.0),
            detail: json!({"username": user.username, "display_name": user.display_name, "is_system": user.is_system, "roles": roles}),
        })
        .await?;
    Ok(user)
}

/// Roles a department administrator may not hand out: they reach beyond one department.
fn role_needs_platform_admin(role: Role) -> bool {
    matches!(role, Role::PlatformAdmin | Role::Auditor)
}

/// 用户开户: creates a person's account or a system account in a department.
pub async fn create_user(db: &Db, settings: &SecuritySettings, actor: &Principal, ctx: &AuditContext, u: NewUser) -> IdentityResult<User> {
    if !actor.can_manage_users_of(u.department_id) {
        return Err(forbidden("you may create users only in departments you administer"));
    }
    if !actor.is_platform_admin() && u.roles.iter().any(|r| role_needs_platform_admin(*r)) {
        return Err(forbidden("only a platform administrator may grant platform_admin or auditor"));
    }
    let mut change = Change::begin(db, ctx).await?;
    let user = insert_user(&mut change, settings, u).await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok(user)
}

pub(super) async fn fetch_user_tx(tx: &mut Tx, id: UserId) -> IdentityResult<User> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(IdentityError::NotFound { what: "user" })?;
    user_from_row(&row)
}

/// A user, if the principal may see it (itself, or as admin or auditor of its department). Users the
/// principal may not see are reported as not found, so that IDs do not leak existence.
pub async fn get_user(db: &Db, actor: &Principal, id: UserId) -> IdentityResult<User> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(db.pool())
        .await?
        .ok_or(IdentityError::NotFound { what: "user" })?;
    let user = user_from_row(&row)?;
    if actor.user_id == Some(user.id) || actor.can_read_users_of(user.department_id) {
        Ok(user)
    } else {
        Err(IdentityError::NotFound { what: "user" })
    }
}

/// Lists the users the principal may see, optionally of one department.
pub async fn list_users(db: &Db, actor: &Principal, department: Option<DepartmentId>) -> IdentityResult<Vec<User>> {
    let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE ($1 IS NULL OR department_id = $1) ORDER BY id"))
        .bind(department.map(|d| d.0))
        .fetch_all(db.pool())
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        let u = user_from_row(r)?;
        if actor.user_id == Some(u.id) || actor.can_read_users_of(u.department_id) {
            out.push(u);
        }
    }
    Ok(out)
}

/// Changes a user's display name or status (disabling also ends its sessions).
pub async fn update_user(db: &Db, actor: &Principal, ctx: &AuditContext, id: UserId, patch: UserPatch) -> IdentityResult<User> {
    let mut change = Change::begin(db, ctx).await?;
    let mut user = fetch_user_tx(change.tx(), id).await?;
    let is_self = actor.user_id == Some(id);
    if !actor.may_update_user(id, user.department_id, patch.status.is_some()) {
        return Err(refusal(actor.can_read_users_of(user.department_id) || is_self, "you may not change this user", "user"));
    }
    if let Some(name) = &patch.display_name {
        user.display_name = trimmed_name("display_name", name, 100)?;
    }
    if let Some(status) = patch.status {
        if is_self && status == UserStatus::Disabled {
            return Err(invalid("status", "you cannot disable your own account"));
        }
        user.status = status;
    }
    sqlx::query("UPDATE users SET display_name = $1, status = $2, updated_at = $3 WHERE id = $4")
        .bind(&user.display_name)
        .bind(user.status.as_str())
        .bind(now_ms())
        .bind(id.0)
        .execute(&mut **change.tx())
        .await?;
    if user.status == UserStatus::Disabled {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id.0).execute(&mut **change.tx()).await?;
    }
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::UserUpdate,
            target_kind: "user",
            target_id: id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({"display_name": user.display_name, "status": user.status}),
        })
        .await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok(user)
}

/// Sets a password. A user changing its own password gives the current one; an administrator resetting
/// another's sets a temporary one that must be changed at next login. Unlocks the account.
pub async fn set_password(
    db: &Db,
    settings: &SecuritySettings,
    actor: &Principal,
    ctx: &AuditContext,
    id: UserId,
    new_password: &str,
    current_password: Option<&str>,
) -> IdentityResult<()> {
    let mut change = Change::begin(db, ctx).await?;
    let user = fetch_user_tx(change.tx(), id).await?;
    let is_self = actor.user_id == Some(id);
    if !is_self && !actor.can_manage_users_of(user.department_id) {
        return Err(refusal(actor.can_read_users_of(user.department_id), "you may not change this user", "user"));
    }
    if user.is_system {
        return Err(invalid("password", "system accounts authenticate with tokens and have no password"));
    }
    if is_self {
        let hash: Option<String> =
            sqlx::query("SELECT password_hash FROM users WHERE id = $1").bind(id.0).fetch_one(&mut **change.tx()).await?.try_get(0)?;
        let ok = match (current_password, hash) {
            (Some(c), Some(h)) => verify_password(c, &h),
            _ => false,
        };
        if !ok {
            return Err(invalid("current_password", "is wrong"));
        }
    }
    settings.password_policy.check(new_password, &user.username).map_err(|m| invalid("password", m))?;
    let now = now_ms();
    sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2, must_change_password = $3, failed_logins = 0, locked_until = NULL, updated_at = $2 WHERE id = $4")
        .bind(hash_password(new_password))
        .bind(now)
        .bind((!is_self) as i64)
        .bind(id.0)
        .execute(&mut **change.tx())
        .await?;
    // Other sessions of the user end with the old password.
    sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id.0).execute(&mut **change.tx()).await?;
    change
        .record(NewAuditEvent {
            action: if is_self { shutong_audit::Action::UserChangePassword } else { shutong_audit::Action::UserResetPassword },
            target_kind: "user",
            target_id: id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({}),
        })
        .await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok(())
}

/// The role assignments of a user.
pub async fn roles_of(db: &Db, user: UserId) -> IdentityResult<Vec<RoleAssignment>> {
    let rows = sqlx::query("SELECT id, role, department_id FROM role_assignments WHERE user_id = $1 ORDER BY id")
        .bind(user.0)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(role_from_row).collect()
}

fn role_from_row(r: &AnyRow) -> IdentityResult<RoleAssignment> {
    let role: String = r.try_get("role")?;
    Ok(RoleAssignment {
        id: RoleAssignmentId(r.try_get("id")?),
        role: Role::parse(&role).ok_or_else(|| invalid("role", format!("unknown stored role '{role}'")))?,
        department_id: DepartmentId(r.try_get("department_id")?),
    })
}

/// 授权: gives a user a role in its department.
pub async fn assign_role(db: &Db, actor: &Principal, ctx: &AuditContext, user_id: UserId, role: Role) -> IdentityResult<RoleAssignment> {
    let mut change = Change::begin(db, ctx).await?;
    let user = fetch_user_tx(change.tx(), user_id).await?;
    if !actor.can_manage_users_of(user.department_id) {
        return Err(refusal(actor.can_read_users_of(user.department_id), "you may not change this user", "user"));
    }
    if role_needs_platform_admin(role) && !actor.is_platform_admin() {
        return Err(forbidden("only a platform administrator may grant platform_admin or auditor"));
    }
    if (role == Role::SystemAccount) != user.is_system {
        return Err(invalid("role", "the system_account role goes with system accounts, and only with them"));
    }
    let exists = sqlx::query("SELECT id FROM role_assignments WHERE user_id = $1 AND role = $2 AND department_id = $3")
        .bind(user_id.0)
        .bind(role.as_str())
        .bind(user.department_id.0)
        .fetch_optional(&mut **change.tx())
        .await?;
    if exists.is_some() {
        return Err(IdentityError::Conflict { field: "role".into(), message: format!("the user already holds {role}") });
    }
    let row = sqlx::query(
        "INSERT INTO role_assignments (user_id, role, department_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id, role, department_id",
    )
    .bind(user_id.0)
    .bind(role.as_str())
    .bind(user.department_id.0)
    .bind(now_ms())
    .fetch_one(&mut **change.tx())
    .await?;
    let assignment = role_from_row(&row)?;
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::RoleAssign,
            target_kind: "user",
            target_id: user_id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({"role": role, "assignment_id": assignment.id}),
        })
        .await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok(assignment)
}

/// Takes a role assignment away. The last platform administrator cannot be removed.
pub async fn revoke_role(
    db: &Db,
    actor: &Principal,
    ctx: &AuditContext,
    user_id: UserId,
    assignment: RoleAssignmentId,
) -> IdentityResult<()> {
    let mut change = Change::begin(db, ctx).await?;
    let user = fetch_user_tx(change.tx(), user_id).await?;
    if !actor.can_manage_users_of(user.department_id) {
        return Err(refusal(actor.can_read_users_of(user.department_id), "you may not change this user", "user"));
    }
    let row = sqlx::query("SELECT id, role, department_id FROM role_assignments WHERE id = $1 AND user_id = $2")
        .bind(assignment.0)
        .bind(user_id.0)
        .fetch_optional(&mut **change.tx())
        .await?
        .ok_or(IdentityError::NotFound { what: "role assignment" })?;
    let ra = role_from_row(&row)?;
    if role_needs_platform_admin(ra.role) && !actor.is_platform_admin() {
        return Err(forbidden("only a platform administrator may revoke platform_admin or auditor"));
    }
    if ra.role == Role::PlatformAdmin {
        let admins: i64 = sqlx::query("SELECT COUNT(*) FROM role_assignments WHERE role = 'platform_admin'")
            .fetch_one(&mut **change.tx())
            .await?
            .try_get(0)?;
        if admins <= 1 {
            return Err(invalid("role", "the last platform administrator cannot be removed"));
        }
    }
    sqlx::query("DELETE FROM role_assignments WHERE id = $1").bind(assignment.0).execute(&mut **change.tx()).await?;
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::RoleRevoke,
            target_kind: "user",
            target_id: user_id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({"role": ra.role, "assignment_id": ra.id}),
        })
        .await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok(())
}

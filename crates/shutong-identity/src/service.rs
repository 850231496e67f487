//! Service functions of organisation and identity: one per state change, each checking the principal,
//! writing in one transaction and recording its audit event there.

use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use shutong_audit::{AuditContext, NewAuditEvent, record};
use shutong_reference::{CreditCode, RegionTable};
use shutong_store::{AnyRow, Db, Row, StoreError, Tx, now_ms};

use crate::model::*;
use crate::password::{PasswordPolicy, burn_verification, hash_password, verify_password};
use crate::principal::{Principal, RoleAssignment};

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

// ---------------------------------------------------------------- node identity

/// What the platform needs on first start.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub node: NodeIdentity,
    /// The department that runs the platform (the sharing authority of the node's level).
    pub authority_name: String,
    pub authority_credit_code: String,
    pub admin_username: String,
    /// The first admin's password; generated (and returned, to print once) if absent.
    pub admin_password: Option<String>,
}

/// The outcome of bootstrapping: the generated admin password, if one was generated.
#[derive(Debug)]
pub struct BootstrapOutcome {
    pub created: bool,
    pub generated_password: Option<String>,
}

/// On first start (no users yet): records the node identity, creates the authority department and the
/// platform administrator. Does nothing on later starts.
pub async fn bootstrap(db: &Db, regions: &RegionTable, settings: &SecuritySettings, b: &Bootstrap) -> IdentityResult<BootstrapOutcome> {
    let mut tx = db.begin().await?;
    let users: i64 = sqlx::query("SELECT COUNT(*) FROM users").fetch_one(&mut *tx).await?.try_get(0)?;
    if users > 0 {
        // Configuration is the source of the node's identity: a changed configuration is recorded (and
        // audited) at the next start.
        let stored = sqlx::query("SELECT name, level, zone, region_code FROM node_identity WHERE id = 1").fetch_optional(&mut *tx).await?;
        let same = match &stored {
            Some(r) => {
                r.try_get::<String, _>("name")? == b.node.name.trim()
                    && r.try_get::<String, _>("level")? == b.node.level.as_str()
                    && r.try_get::<String, _>("zone")? == b.node.zone.as_str()
                    && r.try_get::<String, _>("region_code")? == b.node.region_code
            }
            None => false,
        };
        if !same {
            set_node_identity_tx(&mut tx, regions, &AuditContext::system("system:config"), &b.node).await?;
            tx.commit().await?;
        }
        return Ok(BootstrapOutcome { created: false, generated_password: None });
    }
    let ctx = AuditContext::system("system:bootstrap");
    set_node_identity_tx(&mut tx, regions, &ctx, &b.node).await?;
    let dept = insert_department(
        &mut tx,
        regions,
        &ctx,
        NewDepartment {
            name: b.authority_name.clone(),
            credit_code: b.authority_credit_code.clone(),
            region_code: b.node.region_code.clone(),
            level: b.node.level,
            kind: DepartmentKind::SharingAuthority,
            parent_id: None,
        },
    )
    .await?;
    let (password, generated) = match &b.admin_password {
        Some(p) => (p.clone(), None),
        None => {
            let p = format!("St-{}", random_hex(9));
            (p.clone(), Some(p))
        }
    };
    let user = insert_user(
        &mut tx,
        settings,
        &ctx,
        NewUser {
            username: b.admin_username.clone(),
            display_name: "平台管理员".into(),
            department_id: dept.id,
            password: Some(password),
            is_system: false,
            roles: vec![Role::PlatformAdmin],
        },
    )
    .await?;
    sqlx::query("UPDATE users SET must_change_password = $1 WHERE id = $2")
        .bind(generated.is_some() as i64)
        .bind(user.id.0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(BootstrapOutcome { created: true, generated_password: generated })
}

pub async fn node_identity(db: &Db) -> IdentityResult<Option<NodeIdentity>> {
    let row = sqlx::query("SELECT name, level, zone, region_code FROM node_identity WHERE id = 1").fetch_optional(db.pool()).await?;
    Ok(match row {
        None => None,
        Some(r) => Some(NodeIdentity {
            name: r.try_get("name")?,
            level: shutong_store::parse_column(&r, "node_identity", "level", DepartmentLevel::parse)?,
            zone: shutong_store::parse_column(&r, "node_identity", "zone", Zone::parse)?,
            region_code: r.try_get("region_code")?,
        }),
    })
}

async fn set_node_identity_tx(tx: &mut Tx, regions: &RegionTable, ctx: &AuditContext, node: &NodeIdentity) -> IdentityResult<()> {
    let name = trimmed_name("node.name", &node.name, 100)?;
    regions.lookup(&node.region_code).map_err(|e| invalid("node.region_code", e.to_string()))?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO node_identity (id, name, level, zone, region_code, created_at, updated_at) VALUES (1, $1, $2, $3, $4, $5, $5) \
         ON CONFLICT (id) DO UPDATE SET name = $1, level = $2, zone = $3, region_code = $4, updated_at = $5",
    )
    .bind(&name)
    .bind(node.level.as_str())
    .bind(node.zone.as_str())
    .bind(&node.region_code)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    record(
        &mut *tx,
        ctx,
        NewAuditEvent {
            action: "node.set_identity",
            target_kind: "node",
            target_id: "1".into(),
            department_id: None,
            detail: json!({"name": name, "level": node.level, "zone": node.zone, "region_code": node.region_code}),
        },
    )
    .await?;
    Ok(())
}

/// Changes this node's identity (platform administrators only).
pub async fn set_node_identity(
    db: &Db,
    regions: &RegionTable,
    actor: &Principal,
    ctx: &AuditContext,
    node: &NodeIdentity,
) -> IdentityResult<()> {
    if !actor.is_platform_admin() {
        return Err(forbidden("only a platform administrator may change the node identity"));
    }
    let mut tx = db.begin().await?;
    set_node_identity_tx(&mut tx, regions, ctx, node).await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------- departments

/// Input of [`create_department`].
#[derive(Clone, Debug)]
pub struct NewDepartment {
    pub name: String,
    pub credit_code: String,
    pub region_code: String,
    pub level: DepartmentLevel,
    pub kind: DepartmentKind,
    pub parent_id: Option<DepartmentId>,
}

/// Input of [`update_department`]: fields left `None` stay as they are.
#[derive(Clone, Debug, Default)]
pub struct DepartmentPatch {
    pub name: Option<String>,
    pub region_code: Option<String>,
    pub level: Option<DepartmentLevel>,
    pub kind: Option<DepartmentKind>,
    /// `Some(None)` clears the parent.
    pub parent_id: Option<Option<DepartmentId>>,
}

const DEPARTMENT_COLUMNS: &str = "id, name, credit_code, region_code, level, kind, parent_id, created_at, updated_at";

fn department_from_row(r: &AnyRow) -> IdentityResult<Department> {
    Ok(Department {
        id: DepartmentId(r.try_get("id")?),
        name: r.try_get("name")?,
        credit_code: r.try_get("credit_code")?,
        region_code: r.try_get("region_code")?,
        level: shutong_store::parse_column(r, "departments", "level", DepartmentLevel::parse)?,
        kind: shutong_store::parse_column(r, "departments", "kind", DepartmentKind::parse)?,
        parent_id: r.try_get::<Option<i64>, _>("parent_id")?.map(DepartmentId),
        created_at_ms: r.try_get("created_at")?,
        updated_at_ms: r.try_get("updated_at")?,
    })
}

async fn insert_department(tx: &mut Tx, regions: &RegionTable, ctx: &AuditContext, d: NewDepartment) -> IdentityResult<Department> {
    let name = trimmed_name("name", &d.name, 200)?;
    let credit_code = CreditCode::parse(&d.credit_code).map_err(|e| invalid("credit_code", e.to_string()))?;
    let (region, _) = regions.lookup(&d.region_code).map_err(|e| invalid("region_code", e.to_string()))?;
    if let Some(parent) = d.parent_id {
        fetch_department_tx(tx, parent).await.map_err(|_| invalid("parent_id", format!("department {parent} does not exist")))?;
    }
    let exists =
        sqlx::query("SELECT id FROM departments WHERE credit_code = $1").bind(credit_code.as_str()).fetch_optional(&mut **tx).await?;
    if exists.is_some() {
        return Err(IdentityError::Conflict {
            field: "credit_code".into(),
            message: format!("a department with credit code {credit_code} already exists"),
        });
    }
    let now = now_ms();
    let row = sqlx::query(&format!(
        "INSERT INTO departments (name, credit_code, region_code, level, kind, parent_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {DEPARTMENT_COLUMNS}"
    ))
    .bind(&name)
    .bind(credit_code.as_str())
    .bind(region.as_str())
    .bind(d.level.as_str())
    .bind(d.kind.as_str())
    .bind(d.parent_id.map(|p| p.0))
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let dept = department_from_row(&row)?;
    record(&mut *tx, ctx, NewAuditEvent {
        action: "department.create",
        target_kind: "department",
        target_id: dept.id.to_string(),
        department_id: Some(dept.id.0),
        detail: json!({"name": dept.name, "credit_code": dept.credit_code, "region_code": dept.region_code, "level": dept.level, "kind": dept.kind}),
    })
    .await?;
    Ok(dept)
}

/// 部门注册: creates a department (platform administrators only).
pub async fn create_department(
    db: &Db,
    regions: &RegionTable,
    actor: &Principal,
    ctx: &AuditContext,
    d: NewDepartment,
) -> IdentityResult<Department> {
    if !actor.can_manage_departments() {
        return Err(forbidden("only a platform administrator may create departments"));
    }
    let mut tx = db.begin().await?;
    let dept = insert_department(&mut tx, regions, ctx, d).await?;
    tx.commit().await?;
    Ok(dept)
}

/// Changes a department (platform administrators only). The credit code is the department's legal
/// identity and does not change.
pub async fn update_department(
    db: &Db,
    regions: &RegionTable,
    actor: &Principal,
    ctx: &AuditContext,
    id: DepartmentId,
    patch: DepartmentPatch,
) -> IdentityResult<Department> {
    if !actor.can_manage_departments() {
        return Err(forbidden("only a platform administrator may change departments"));
    }
    let mut tx = db.begin().await?;
    let mut dept = fetch_department_tx(&mut tx, id).await?;
    if let Some(name) = &patch.name {
        dept.name = trimmed_name("name", name, 200)?;
    }
    if let Some(region) = &patch.region_code {
        dept.region_code = regions.lookup(region).map_err(|e| invalid("region_code", e.to_string()))?.0.to_string();
    }
    if let Some(level) = patch.level {
        dept.level = level;
    }
    if let Some(kind) = patch.kind {
        dept.kind = kind;
    }
    if let Some(parent) = patch.parent_id {
        if let Some(p) = parent {
            if p == id {
                return Err(invalid("parent_id", "a department cannot be its own parent"));
            }
            // Walk up from the new parent: the department must not be among its ancestors.
            let mut cursor = Some(p);
            let mut depth = 0;
            while let Some(c) = cursor {
                let anc =
                    fetch_department_tx(&mut tx, c).await.map_err(|_| invalid("parent_id", format!("department {p} does not exist")))?;
                if anc.parent_id == Some(id) {
                    return Err(invalid("parent_id", "would create a cycle"));
                }
                cursor = anc.parent_id;
                depth += 1;
                if depth > 64 {
                    return Err(invalid("parent_id", "hierarchy too deep"));
                }
            }
        }
        dept.parent_id = parent;
    }
    dept.updated_at_ms = now_ms();
    sqlx::query("UPDATE departments SET name = $1, region_code = $2, level = $3, kind = $4, parent_id = $5, updated_at = $6 WHERE id = $7")
        .bind(&dept.name)
        .bind(&dept.region_code)
        .bind(dept.level.as_str())
        .bind(dept.kind.as_str())
        .bind(dept.parent_id.map(|p| p.0))
        .bind(dept.updated_at_ms)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
    record(&mut tx, ctx, NewAuditEvent {
        action: "department.update",
        target_kind: "department",
        target_id: id.to_string(),
        department_id: Some(id.0),
        detail: json!({"name": dept.name, "region_code": dept.region_code, "level": dept.level, "kind": dept.kind, "parent_id": dept.parent_id}),
    })
    .await?;
    tx.commit().await?;
    Ok(dept)
}

async fn fetch_department_tx(tx: &mut Tx, id: DepartmentId) -> IdentityResult<Department> {
    let row = sqlx::query(&format!("SELECT {DEPARTMENT_COLUMNS} FROM departments WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(IdentityError::NotFound { what: "department" })?;
    department_from_row(&row)
}

/// The department directory is readable by every authenticated principal.
pub async fn get_department(db: &Db, id: DepartmentId) -> IdentityResult<Department> {
    let row = sqlx::query(&format!("SELECT {DEPARTMENT_COLUMNS} FROM departments WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(db.pool())
        .await?
        .ok_or(IdentityError::NotFound { what: "department" })?;
    department_from_row(&row)
}

pub async fn find_department_by_credit_code(db: &Db, code: &str) -> IdentityResult<Department> {
    let code = code.trim().to_ascii_uppercase();
    let row = sqlx::query(&format!("SELECT {DEPARTMENT_COLUMNS} FROM departments WHERE credit_code = $1"))
        .bind(&code)
        .fetch_optional(db.pool())
        .await?
        .ok_or(IdentityError::NotFound { what: "department" })?;
    department_from_row(&row)
}

pub async fn list_departments(db: &Db) -> IdentityResult<Vec<Department>> {
    let rows = sqlx::query(&format!("SELECT {DEPARTMENT_COLUMNS} FROM departments ORDER BY id")).fetch_all(db.pool()).await?;
    rows.iter().map(department_from_row).collect()
}

// ---------------------------------------------------------------- users and roles

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

const USER_COLUMNS: &str =
    "id, username, display_name, department_id, is_system, status, locked_until, must_change_password, last_login_at, created_at";

fn user_from_row(r: &AnyRow) -> IdentityResult<User> {
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

async fn insert_user(tx: &mut Tx, settings: &SecuritySettings, ctx: &AuditContext, u: NewUser) -> IdentityResult<User> {
    let username = check_username(&u.username)?;
    let display_name = trimmed_name("display_name", &u.display_name, 100)?;
    fetch_department_tx(tx, u.department_id)
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
    let taken = sqlx::query("SELECT id FROM users WHERE username = $1").bind(&username).fetch_optional(&mut **tx).await?;
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
    .fetch_one(&mut **tx)
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
            .execute(&mut **tx)
            .await?;
    }
    record(
        &mut *tx,
        ctx,
        NewAuditEvent {
            action: "user.create",
            target_kind: "user",
            target_id: user.id.to_string(),
            department_id: Some(u.department_id.0),
            detail: json!({"username": user.username, "display_name": user.display_name, "is_system": user.is_system, "roles": roles}),
        },
    )
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
    let mut tx = db.begin().await?;
    let user = insert_user(&mut tx, settings, ctx, u).await?;
    tx.commit().await?;
    Ok(user)
}

async fn fetch_user_tx(tx: &mut Tx, id: UserId) -> IdentityResult<User> {
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
    let mut tx = db.begin().await?;
    let mut user = fetch_user_tx(&mut tx, id).await?;
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
        .execute(&mut *tx)
        .await?;
    if user.status == UserStatus::Disabled {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id.0).execute(&mut *tx).await?;
    }
    record(
        &mut tx,
        ctx,
        NewAuditEvent {
            action: "user.update",
            target_kind: "user",
            target_id: id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({"display_name": user.display_name, "status": user.status}),
        },
    )
    .await?;
    tx.commit().await?;
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
    let mut tx = db.begin().await?;
    let user = fetch_user_tx(&mut tx, id).await?;
    let is_self = actor.user_id == Some(id);
    if !is_self && !actor.can_manage_users_of(user.department_id) {
        return Err(refusal(actor.can_read_users_of(user.department_id), "you may not change this user", "user"));
    }
    if user.is_system {
        return Err(invalid("password", "system accounts authenticate with tokens and have no password"));
    }
    if is_self {
        let hash: Option<String> =
            sqlx::query("SELECT password_hash FROM users WHERE id = $1").bind(id.0).fetch_one(&mut *tx).await?.try_get(0)?;
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
        .execute(&mut *tx)
        .await?;
    // Other sessions of the user end with the old password.
    sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id.0).execute(&mut *tx).await?;
    record(
        &mut tx,
        ctx,
        NewAuditEvent {
            action: if is_self { "user.change_password" } else { "user.reset_password" },
            target_kind: "user",
            target_id: id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
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
    let mut tx = db.begin().await?;
    let user = fetch_user_tx(&mut tx, user_id).await?;
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
        .fetch_optional(&mut *tx)
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
    .fetch_one(&mut *tx)
    .await?;
    let assignment = role_from_row(&row)?;
    record(
        &mut tx,
        ctx,
        NewAuditEvent {
            action: "role.assign",
            target_kind: "user",
            target_id: user_id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({"role": role, "assignment_id": assignment.id}),
        },
    )
    .await?;
    tx.commit().await?;
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
    let mut tx = db.begin().await?;
    let user = fetch_user_tx(&mut tx, user_id).await?;
    if !actor.can_manage_users_of(user.department_id) {
        return Err(refusal(actor.can_read_users_of(user.department_id), "you may not change this user", "user"));
    }
    let row = sqlx::query("SELECT id, role, department_id FROM role_assignments WHERE id = $1 AND user_id = $2")
        .bind(assignment.0)
        .bind(user_id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(IdentityError::NotFound { what: "role assignment" })?;
    let ra = role_from_row(&row)?;
    if role_needs_platform_admin(ra.role) && !actor.is_platform_admin() {
        return Err(forbidden("only a platform administrator may revoke platform_admin or auditor"));
    }
    if ra.role == Role::PlatformAdmin {
        let admins: i64 =
            sqlx::query("SELECT COUNT(*) FROM role_assignments WHERE role = 'platform_admin'").fetch_one(&mut *tx).await?.try_get(0)?;
        if admins <= 1 {
            return Err(invalid("role", "the last platform administrator cannot be removed"));
        }
    }
    sqlx::query("DELETE FROM role_assignments WHERE id = $1").bind(assignment.0).execute(&mut *tx).await?;
    record(
        &mut tx,
        ctx,
        NewAuditEvent {
            action: "role.revoke",
            target_kind: "user",
            target_id: user_id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({"role": ra.role, "assignment_id": ra.id}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------- authentication

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
        let mut tx = db.begin().await?;
        record(
            &mut tx,
            ctx,
            NewAuditEvent {
                action: "auth.login_failed",
                target_kind: "user",
                target_id: username.clone(),
                department_id: None,
                detail: json!({"reason": "unknown user"}),
            },
        )
        .await?;
        tx.commit().await?;
        return Err(IdentityError::InvalidCredentials);
    };
    let user = user_from_row(&row)?;
    let hash: Option<String> = row.try_get("password_hash")?;
    if let Some(until) = user.locked_until_ms.filter(|u| *u > now) {
        return Err(IdentityError::Locked { until_ms: until });
    }
    let ok = user.status == UserStatus::Active && hash.as_deref().is_some_and(|h| verify_password(password, h));
    let mut tx = db.begin().await?;
    if !ok {
        let failed: i64 = sqlx::query("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
            .bind(user.id.0)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let locked = failed >= settings.max_failed_logins;
        if locked {
            sqlx::query("UPDATE users SET locked_until = $1, failed_logins = 0 WHERE id = $2")
                .bind(now + settings.lockout_ms)
                .bind(user.id.0)
                .execute(&mut *tx)
                .await?;
        }
        record(
            &mut tx,
            &AuditContext { actor_user_id: Some(user.id.0), ..ctx.clone() },
            NewAuditEvent {
                action: if locked { "auth.locked" } else { "auth.login_failed" },
                target_kind: "user",
                target_id: user.id.to_string(),
                department_id: Some(user.department_id.0),
                detail: json!({"failed_logins": failed, "status": user.status}),
            },
        )
        .await?;
        tx.commit().await?;
        return Err(IdentityError::InvalidCredentials);
    }
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $1 WHERE id = $2")
        .bind(now)
        .bind(user.id.0)
        .execute(&mut *tx)
        .await?;
    record(
        &mut tx,
        &AuditContext { actor_user_id: Some(user.id.0), actor: user.username.clone(), ..ctx.clone() },
        NewAuditEvent {
            action: "auth.login",
            target_kind: "user",
            target_id: user.id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
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
    let mut tx = db.begin().await?;
    let n = sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(hash_secret(token)).execute(&mut *tx).await?.rows_affected();
    if n > 0 {
        record(
            &mut tx,
            ctx,
            NewAuditEvent {
                action: "auth.logout",
                target_kind: "user",
                target_id: ctx.actor_user_id.map(|u| u.to_string()).unwrap_or_default(),
                department_id: None,
                detail: json!({}),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------- API tokens

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
    let mut tx = db.begin().await?;
    let user = fetch_user_tx(&mut tx, user_id).await?;
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
    .fetch_one(&mut *tx)
    .await?;
    let token = token_from_row(&row)?;
    record(
        &mut tx,
        ctx,
        NewAuditEvent {
            action: "token.create",
            target_kind: "token",
            target_id: token.id.to_string(),
            department_id: Some(user.department_id.0),
            detail: json!({"user_id": user_id, "name": name, "prefix": token.prefix, "expires_at_ms": token.expires_at_ms}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((token, secret))
}

/// Revokes a token; it stops working at once.
pub async fn revoke_token(db: &Db, actor: &Principal, ctx: &AuditContext, id: TokenId) -> IdentityResult<ApiToken> {
    let mut tx = db.begin().await?;
    let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(IdentityError::NotFound { what: "token" })?;
    let mut token = token_from_row(&row)?;
    let owner = fetch_user_tx(&mut tx, token.user_id).await?;
    if !actor.may_manage_credentials_of(token.user_id, owner.department_id) {
        return Err(refusal(actor.can_read_users_of(owner.department_id), "you may not revoke this token", "token"));
    }
    if token.revoked_at_ms.is_none() {
        let now = now_ms();
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2").bind(now).bind(id.0).execute(&mut *tx).await?;
        token.revoked_at_ms = Some(now);
        record(
            &mut tx,
            ctx,
            NewAuditEvent {
                action: "token.revoke",
                target_kind: "token",
                target_id: id.to_string(),
                department_id: Some(owner.department_id.0),
                detail: json!({"user_id": token.user_id, "prefix": token.prefix}),
            },
        )
        .await?;
    }
    tx.commit().await?;
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

// ---------------------------------------------------------------- figures

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

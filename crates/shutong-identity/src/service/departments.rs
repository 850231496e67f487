//! 政务部门: create, change, read.

use super::*;

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

pub(super) async fn insert_department(change: &mut Change<'_>, regions: &RegionTable, d: NewDepartment) -> IdentityResult<Department> {
    let name = trimmed_name("name", &d.name, 200)?;
    let credit_code = CreditCode::parse(&d.credit_code).map_err(|e| invalid("credit_code", e.to_string()))?;
    let (region, _) = regions.lookup(&d.region_code).map_err(|e| invalid("region_code", e.to_string()))?;
    if let Some(parent) = d.parent_id {
        fetch_department_tx(change.tx(), parent).await.map_err(|_| invalid("parent_id", format!("department {parent} does not exist")))?;
    }
    let exists = sqlx::query("SELECT id FROM departments WHERE credit_code = $1")
        .bind(credit_code.as_str())
        .fetch_optional(&mut **change.tx())
        .await?;
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
    .fetch_one(&mut **change.tx())
    .await?;
    let dept = department_from_row(&row)?;
    change.record(NewAuditEvent {
        action: shutong_audit::Action::DepartmentCreate,
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
    let mut change = Change::begin(db, ctx).await?;
    let dept = insert_department(&mut change, regions, d).await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
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
    let mut change = Change::begin(db, ctx).await?;
    let mut dept = fetch_department_tx(change.tx(), id).await?;
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
                let anc = fetch_department_tx(change.tx(), c)
                    .await
                    .map_err(|_| invalid("parent_id", format!("department {p} does not exist")))?;
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
        .execute(&mut **change.tx())
        .await?;
    change.record(NewAuditEvent {
        action: shutong_audit::Action::DepartmentUpdate,
        target_kind: "department",
        target_id: id.to_string(),
        department_id: Some(id.0),
        detail: json!({"name": dept.name, "region_code": dept.region_code, "level": dept.level, "kind": dept.kind, "parent_id": dept.parent_id}),
    })
    .await?;
    change.notify(Notice::IdentityChanged);
    change.commit().await?;
    Ok(dept)
}

pub(super) async fn fetch_department_tx(tx: &mut Tx, id: DepartmentId) -> IdentityResult<Department> {
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

pub async fn find_department_by_credit_code(db: &Db, code: &CreditCode) -> IdentityResult<Department> {
    let row = sqlx::query(&format!("SELECT {DEPARTMENT_COLUMNS} FROM departments WHERE credit_code = $1"))
        .bind(code.as_str())
        .fetch_optional(db.pool())
        .await?
        .ok_or(IdentityError::NotFound { what: "department" })?;
    department_from_row(&row)
}

/// Departments whose name contains `q`, or whose 统一社会信用代码 or region code is `q` (the portal's search
/// box), at most `limit`, by name. `%`, `_` and `\\` in `q` match themselves.
pub async fn find_departments(db: &Db, q: &str, limit: i64) -> IdentityResult<Vec<Department>> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let escaped: String = q.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
    let rows = sqlx::query(&format!(
        "SELECT {DEPARTMENT_COLUMNS} FROM departments WHERE name LIKE $1 ESCAPE '\\' OR credit_code = $2 OR region_code = $3 \
         ORDER BY name LIMIT $4"
    ))
    .bind(format!("%{escaped}%"))
    .bind(q.to_ascii_uppercase())
    .bind(q)
    .bind(limit.clamp(1, 100))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(department_from_row).collect()
}

pub async fn list_departments(db: &Db) -> IdentityResult<Vec<Department>> {
    let rows = sqlx::query(&format!("SELECT {DEPARTMENT_COLUMNS} FROM departments ORDER BY id")).fetch_all(db.pool()).await?;
    rows.iter().map(department_from_row).collect()
}

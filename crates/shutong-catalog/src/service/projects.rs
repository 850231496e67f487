//! Project catalogs (R-CAT-8, 办法 第二十二条): compiled ahead, merged at acceptance.

use super::*;

/// 政务信息化项目目录: a project whose catalog is compiled before approval and merged at acceptance.
#[derive(Clone, Debug, Serialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub department_id: i64,
    /// `compiled` (目录已编制, awaiting acceptance) or `accepted` (验收, merged into the catalog).
    pub status: String,
    pub resources: i64,
    pub created_at_ms: i64,
    pub accepted_at_ms: Option<i64>,
}

/// Registers a project whose catalog the department compiles ahead of approval.
pub async fn create_project(
    db: &Db,
    actor: &Principal,
    ctx: &AuditContext,
    department: DepartmentId,
    name: &str,
) -> CatalogResult<Project> {
    let authority = is_authority(db, actor).await?;
    if !may_edit(actor, department, authority) {
        return Err(CatalogError::Forbidden("a project's catalog is compiled by its department's catalog editors".into()));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "must be 1 to 200 characters"));
    }
    let mut change = Change::begin(db, ctx).await?;
    if sqlx::query("SELECT id FROM departments WHERE id = $1").bind(department.0).fetch_optional(&mut **change.tx()).await?.is_none() {
        return Err(invalid("department_id", format!("department {department} does not exist")));
    }
    let now = now_ms();
    let id: i64 = sqlx::query("INSERT INTO catalog_projects (name, department_id, status, created_at, created_by) VALUES ($1, $2, 'compiled', $3, $4) RETURNING id")
        .bind(name)
        .bind(department.0)
        .bind(now)
        .bind(&ctx.actor)
        .fetch_one(&mut **change.tx())
        .await?
        .try_get(0)?;
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::CatalogProjectCreate,
            target_kind: "catalog_project",
            target_id: id.to_string(),
            department_id: Some(department.0),
            detail: json!({"name": name}),
        })
        .await?;
    change.commit().await?;
    Ok(Project {
        id,
        name: name.into(),
        department_id: department.0,
        status: "compiled".into(),
        resources: 0,
        created_at_ms: now,
        accepted_at_ms: None,
    })
}

pub async fn list_projects(db: &Db) -> CatalogResult<Vec<Project>> {
    let rows = sqlx::query(
        "SELECT p.id, p.name, p.department_id, p.status, p.created_at, p.accepted_at, (SELECT COUNT(*) FROM catalog_resources r WHERE r.project_id = p.id) AS resources \
         FROM catalog_projects p ORDER BY p.id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Project {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                department_id: r.try_get("department_id")?,
                status: r.try_get("status")?,
                resources: r.try_get("resources")?,
                created_at_ms: r.try_get("created_at")?,
                accepted_at_ms: r.try_get("accepted_at")?,
            })
        })
        .collect()
}

/// 验收合并: the authority accepts a project and its catalog is merged (published) into the platform
/// catalog, all entries or none: every entry must satisfy every rule, and a project without a catalog
/// cannot be accepted.
pub async fn accept_project(db: &Db, actor: &Principal, ctx: &AuditContext, project: ProjectId) -> CatalogResult<Project> {
    let project = project.0;
    if !is_authority(db, actor).await? {
        return Err(CatalogError::Forbidden("only the sharing authority accepts projects".into()));
    }
    let mut change = Change::begin(db, ctx).await?;
    let status: String = sqlx::query("SELECT status FROM catalog_projects WHERE id = $1")
        .bind(project)
        .fetch_optional(&mut **change.tx())
        .await?
        .map(|r| r.get(0))
        .ok_or(CatalogError::NotFound { what: "project" })?;
    if status != "compiled" {
        return Err(CatalogError::State(format!("project {project} was accepted already")));
    }
    let rows = sqlx::query(
        "SELECT r.code, r.classification_code, r.provider_department_id, r.latest_version, v.document FROM catalog_resources r \
         JOIN catalog_versions v ON v.code = r.code AND v.version = r.latest_version WHERE r.project_id = $1 ORDER BY r.code",
    )
    .bind(project)
    .fetch_all(&mut **change.tx())
    .await?;
    if rows.is_empty() {
        return Err(CatalogError::State("a project without a catalog cannot be accepted (第二十二条)".into()));
    }
    let mut violations = Vec::new();
    let mut entries = Vec::new();
    for r in &rows {
        let code: String = r.try_get("code")?;
        let class: String = r.try_get("classification_code")?;
        let doc: ResourceDocument = serde_json::from_str(&r.try_get::<String, _>("document")?)
            .map_err(|e| CatalogError::State(format!("stored document unreadable: {e}")))?;
        for v in rules::check(&doc, class.starts_with('1')) {
            violations.push(Violation { field: format!("{code}: {}", v.field), ..v });
        }
        entries.push((code, DepartmentId(r.try_get("provider_department_id")?), r.try_get::<i64, _>("latest_version")?, doc));
    }
    if !violations.is_empty() {
        return Err(CatalogError::Rules(violations));
    }
    let now = now_ms();
    for (code, provider, version, doc) in &entries {
        sqlx::query("UPDATE catalog_versions SET status = 'published', submitted_at = $1, reviewed_at = $1, reviewed_by = $2, published_at = $1 WHERE code = $3 AND version = $4")
            .bind(now)
            .bind(&ctx.actor)
            .bind(code)
            .bind(version)
            .execute(&mut **change.tx())
            .await?;
        sqlx::query("UPDATE catalog_resources SET published_version = $1 WHERE code = $2")
            .bind(version)
            .bind(code)
            .execute(&mut **change.tx())
            .await?;
        sync_columns(change.tx(), code, doc, VersionStatus::Published).await?;
        audit(&mut change, shutong_audit::Action::CatalogMerge, code, *provider, json!({"version": version, "project": project})).await?;
    }
    sqlx::query("UPDATE catalog_projects SET status = 'accepted', accepted_at = $1, accepted_by = $2 WHERE id = $3")
        .bind(now)
        .bind(&ctx.actor)
        .bind(project)
        .execute(&mut **change.tx())
        .await?;
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::CatalogProjectAccept,
            target_kind: "catalog_project",
            target_id: project.to_string(),
            department_id: entries.first().map(|e| e.1.0),
            detail: json!({"resources": entries.len()}),
        })
        .await?;
    change.commit().await?;
    list_projects(db).await?.into_iter().find(|p| p.id == project).ok_or(CatalogError::NotFound { what: "project" })
}

/// The code of the resource named `name` (信息资源名称), for the demo seed and scripts; the first by code
/// when names repeat.
pub async fn code_by_name(db: &Db, name: &str) -> CatalogResult<Option<ResourceCode>> {
    let row = sqlx::query("SELECT code FROM catalog_resources WHERE name = $1 ORDER BY code LIMIT 1")
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some(ResourceCode::from_stored("catalog_resources", "code", &r.try_get::<String, _>(0)?)?)),
    }
}

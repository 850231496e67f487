//! The classification tree (类/项/目/细目).

use super::*;

/// 信息资源分类 node.
#[derive(Clone, Debug, Serialize)]
pub struct Classification {
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
    /// 1 类, 2 项, 3 目, 4 细目.
    pub level: i64,
}

pub async fn list_classifications(db: &Db) -> CatalogResult<Vec<Classification>> {
    let rows = sqlx::query("SELECT code, name, parent_code, level FROM catalog_classifications ORDER BY code").fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(Classification {
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                parent_code: r.try_get("parent_code")?,
                level: r.try_get("level")?,
            })
        })
        .collect()
}

/// Adds a node to the classification tree (the authority): a 项 under a 类, a 目 under a 项, a 细目
/// under a 目.
pub async fn create_classification(
    db: &Db,
    actor: &Principal,
    ctx: &AuditContext,
    code: &str,
    name: &str,
) -> CatalogResult<Classification> {
    if !is_authority(db, actor).await? {
        return Err(CatalogError::Forbidden("only the sharing authority manages the classification".into()));
    }
    let code = code.trim();
    if !is_classification_code(code) || code.len() == 1 {
        return Err(invalid("code", format!("'{code}' is not a 项 (3 digits), 目 (6 digits) or 细目 code under 1, 2 or 3")));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1 to 100 characters"));
    }
    let parent = classification_parent(code).unwrap_or("").to_string();
    let mut change = Change::begin(db, ctx).await?;
    let parent_exists = sqlx::query("SELECT code FROM catalog_classifications WHERE code = $1")
        .bind(&parent)
        .fetch_optional(&mut **change.tx())
        .await?
        .is_some();
    if !parent_exists {
        return Err(invalid("code", format!("its parent '{parent}' does not exist")));
    }
    if sqlx::query("SELECT code FROM catalog_classifications WHERE code = $1")
        .bind(code)
        .fetch_optional(&mut **change.tx())
        .await?
        .is_some()
    {
        return Err(CatalogError::State(format!("classification {code} exists already")));
    }
    let level = classification_level(code);
    sqlx::query("INSERT INTO catalog_classifications (code, name, parent_code, level, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(code)
        .bind(name)
        .bind(&parent)
        .bind(level)
        .bind(now_ms())
        .execute(&mut **change.tx())
        .await?;
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::CatalogClassificationCreate,
            target_kind: "catalog_classification",
            target_id: code.to_string(),
            department_id: None,
            detail: json!({"name": name, "parent": parent}),
        })
        .await?;
    change.commit().await?;
    Ok(Classification { code: code.to_string(), name: name.to_string(), parent_code: Some(parent), level })
}

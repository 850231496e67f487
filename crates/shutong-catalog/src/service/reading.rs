//! Reading resources, their versions and lists, as the viewer may see them.

use super::*;

/// A resource at a version (default: the latest the viewer may see). Unpublished versions are visible
/// only to the provider's users, the authority and auditors; to others the resource does not exist
/// until it is published.
pub async fn get_resource(
    db: &Db,
    viewer: &Principal,
    resource: &crate::ResourceCode,
    version: Option<i64>,
) -> CatalogResult<ResourceView> {
    let code = resource.as_str();
    let mut conn = db.pool().acquire().await.map_err(StoreError::from)?;
    let head =
        sqlx::query("SELECT provider_department_id, latest_version, published_version, status FROM catalog_resources WHERE code = $1")
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(CatalogError::NotFound { what: "resource" })?;
    let provider = DepartmentId(head.try_get("provider_department_id")?);
    let latest: i64 = head.try_get("latest_version")?;
    let published: Option<i64> = head.try_get("published_version")?;
    let privileged = may_read_drafts(viewer, provider, is_authority(db, viewer).await?);
    let v = match (version, privileged) {
        (Some(v), _) => v,
        (None, true) => latest,
        (None, false) => published.ok_or(CatalogError::NotFound { what: "resource" })?,
    };
    let view = load_version(&mut conn, code, v).await?;
    let ever_published = matches!(view.status, VersionStatus::Published | VersionStatus::Superseded | VersionStatus::Withdrawn);
    if !privileged && !ever_published {
        return Err(CatalogError::NotFound { what: "resource version" });
    }
    Ok(view)
}

/// The version history of a resource (for the viewer: all versions if privileged, else published ones).
pub async fn list_versions(db: &Db, viewer: &Principal, resource: &crate::ResourceCode) -> CatalogResult<Vec<VersionSummary>> {
    let code = resource.as_str();
    let head = get_resource(db, viewer, resource, None).await?;
    let privileged = may_read_drafts(viewer, DepartmentId(head.provider_department_id), is_authority(db, viewer).await?);
    let rows = sqlx::query(
        "SELECT version, status, document, created_at, created_by, submitted_at, reviewed_at, reviewed_by, return_reason, published_at \
         FROM catalog_versions WHERE code = $1 ORDER BY version DESC",
    )
    .bind(code)
    .fetch_all(db.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let status = status_of(&r, "status")?;
        if !privileged && !matches!(status, VersionStatus::Published | VersionStatus::Superseded | VersionStatus::Withdrawn) {
            continue;
        }
        let doc: String = r.try_get("document")?;
        let name = serde_json::from_str::<ResourceDocument>(&doc).map(|d| d.name).unwrap_or_default();
        out.push(VersionSummary {
            version: r.try_get("version")?,
            status,
            name,
            created_at_ms: r.try_get("created_at")?,
            created_by: r.try_get("created_by")?,
            submitted_at_ms: r.try_get("submitted_at")?,
            reviewed_at_ms: r.try_get("reviewed_at")?,
            reviewed_by: r.try_get("reviewed_by")?,
            return_reason: r.try_get("return_reason")?,
            published_at_ms: r.try_get("published_at")?,
        });
    }
    Ok(out)
}

/// A filter for [`list_resources`].
#[derive(Clone, Debug, Default)]
pub struct ResourceFilter {
    pub provider: Option<DepartmentId>,
    /// The resource status (draft, submitted, returned, published, withdrawn).
    pub status: Option<VersionStatus>,
    /// A classification code and everything under it.
    pub classification_prefix: Option<String>,
    /// Only resources whose latest version waits for review.
    pub awaiting_review: bool,
    /// Cursor: resources after this code.
    pub after: Option<String>,
    pub limit: i64,
}

/// Lists resources the viewer may see: published ones for everyone; the others for the provider's
/// users, the authority and auditors.
pub async fn list_resources(db: &Db, viewer: &Principal, f: &ResourceFilter) -> CatalogResult<Vec<ResourceSummary>> {
    let authority = is_authority(db, viewer).await?;
    let all = authority || viewer.is_auditor();
    let rows = sqlx::query(
        "SELECT r.code, r.name, r.status, r.latest_version, r.published_version, r.classification_code, r.provider_department_id, d.name AS provider_name, \
                r.sharing_type, r.is_open, r.format, r.update_cycle, r.updated_at, v.status AS latest_status \
         FROM catalog_resources r JOIN departments d ON d.id = r.provider_department_id \
         JOIN catalog_versions v ON v.code = r.code AND v.version = r.latest_version \
         WHERE ($1 IS NULL OR r.provider_department_id = $1) AND ($2 IS NULL OR r.status = $2) \
           AND ($3 IS NULL OR r.classification_code LIKE $3) AND ($4 = 0 OR v.status = 'submitted') AND ($5 IS NULL OR r.code > $5) \
           AND ($6 = 1 OR r.published_version IS NOT NULL OR r.provider_department_id = $7) \
         ORDER BY r.code LIMIT $8",
    )
    .bind(f.provider.map(|p| p.0))
    .bind(f.status.map(|s| s.as_str()))
    .bind(f.classification_prefix.as_ref().map(|c| format!("{c}%")))
    .bind(f.awaiting_review as i64)
    .bind(f.after.as_deref())
    .bind(all as i64)
    .bind(viewer.department_id.map(|d| d.0).unwrap_or(-1))
    .bind(f.limit.clamp(1, 1000))
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ResourceSummary {
                code: shutong_store::parse_column(r, "catalog_resources", "code", |c| ResourceCode::parse(c).ok())?,
                name: r.try_get("name")?,
                status: status_of(r, "status")?,
                latest_version: r.try_get("latest_version")?,
                published_version: r.try_get("published_version")?,
                classification_code: r.try_get("classification_code")?,
                provider_department_id: r.try_get("provider_department_id")?,
                provider_name: r.try_get("provider_name")?,
                sharing_type: shutong_store::parse_column(r, "catalog_resources", "sharing_type", SharingType::parse)?,
                open_to_public: r.try_get::<i64, _>("is_open")? != 0,
                format: shutong_store::parse_column(r, "catalog_resources", "format", ResourceFormat::parse)?,
                update_cycle: shutong_store::parse_column(r, "catalog_resources", "update_cycle", UpdateCycle::parse)?,
                updated_at_ms: r.try_get("updated_at")?,
            })
        })
        .collect()
}

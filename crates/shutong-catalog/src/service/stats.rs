//! 目录统计 over published resources.

use super::*;

/// A count under a key.
#[derive(Clone, Debug, Serialize)]
pub struct Count {
    pub key: String,
    pub label: String,
    pub count: i64,
}

/// 目录统计 over published resources (withdrawn ones excluded).
#[derive(Clone, Debug, Serialize)]
pub struct CatalogStats {
    pub published: i64,
    pub drafts_and_pending: i64,
    pub by_class: Vec<Count>,
    pub by_department: Vec<Count>,
    pub by_sharing_type: Vec<Count>,
    /// Share of published resources that are shareable (无条件 or 有条件), 0–1 (Guizhou's target: 0.5).
    pub shareable_share: f64,
    /// Share of published resources open to the public, 0–1.
    pub open_share: f64,
    /// Change events past their 15-working-day deadline and not answered.
    pub overdue_change_events: i64,
}

pub async fn stats(db: &Db, clock: &Clock) -> CatalogResult<CatalogStats> {
    let count = |sql: &'static str| async move { sqlx::query(sql).fetch_one(db.pool()).await.map(|r| r.get::<i64, _>(0)) };
    let published = count("SELECT COUNT(*) FROM catalog_resources WHERE status = 'published'").await?;
    let pending = count("SELECT COUNT(*) FROM catalog_resources WHERE status IN ('draft', 'submitted', 'returned')").await?;
    let shareable = count("SELECT COUNT(*) FROM catalog_resources WHERE status = 'published' AND sharing_type <> 'not_shared'").await?;
    let open = count("SELECT COUNT(*) FROM catalog_resources WHERE status = 'published' AND is_open = 1").await?;
    let grouped = |sql: &'static str| async move {
        let rows = sqlx::query(sql).fetch_all(db.pool()).await?;
        rows.iter()
            .map(|r| Ok::<_, CatalogError>((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?, r.try_get::<i64, _>(2)?)))
            .collect::<CatalogResult<Vec<_>>>()
    };
    let by_class = grouped(
        "SELECT c.code, c.name, COUNT(r.code) FROM catalog_classifications c LEFT JOIN catalog_resources r \
         ON r.status = 'published' AND r.classification_code LIKE c.code || '%' WHERE c.level <= 2 GROUP BY c.code, c.name ORDER BY c.code",
    )
    .await?;
    let by_department = grouped(
        "SELECT CAST(d.id AS TEXT), d.name, COUNT(*) FROM catalog_resources r JOIN departments d ON d.id = r.provider_department_id \
         WHERE r.status = 'published' GROUP BY d.id, d.name ORDER BY COUNT(*) DESC, d.name",
    )
    .await?;
    let by_type = grouped("SELECT sharing_type, sharing_type, COUNT(*) FROM catalog_resources WHERE status = 'published' GROUP BY sharing_type ORDER BY sharing_type").await?;
    let overdue = list_change_events(db, clock, None, true).await?.len() as i64;
    let ratio = |n: i64| if published == 0 { 0.0 } else { n as f64 / published as f64 };
    Ok(CatalogStats {
        published,
        drafts_and_pending: pending,
        by_class: by_class.into_iter().map(|(key, label, count)| Count { key, label, count }).collect(),
        by_department: by_department.into_iter().map(|(key, label, count)| Count { key, label, count }).collect(),
        by_sharing_type: by_type
            .into_iter()
            .map(|(key, _, count)| Count { label: SharingType::parse(&key).map(|t| t.label_zh()).unwrap_or("").to_string(), key, count })
            .collect(),
        shareable_share: ratio(shareable),
        open_share: ratio(open),
        overdue_change_events: overdue,
    })
}

//! The lifecycle of a resource (R-CAT-5, R-CAT-6): create, edit the draft, submit, review, revise, withdraw.

use super::*;

/// Input of [`create_resource`].
#[derive(Clone, Debug)]
pub struct NewResource {
    pub classification_code: String,
    /// Defaults to the principal's department.
    pub provider: Option<DepartmentId>,
    pub document: ResourceDocument,
    /// A project's catalog entry (R-CAT-8): merged into the catalog when the project is accepted.
    pub project: Option<ProjectId>,
}

/// 编制: creates a resource as a draft (version 1) and gives it its code.
pub async fn create_resource(db: &Db, actor: &Principal, ctx: &AuditContext, new: NewResource) -> CatalogResult<ResourceView> {
    let authority = is_authority(db, actor).await?;
    let provider = new.provider.or(actor.department_id).ok_or_else(|| invalid("provider_department_id", "required"))?;
    if !may_edit(actor, provider, authority) {
        return Err(CatalogError::Forbidden(
            "only the providing department's catalog editors (and the sharing authority) compile its catalog".into(),
        ));
    }
    let doc = normalise(new.document);
    field_violations(&doc)?;
    let mut change = Change::begin(db, ctx).await?;
    if let Some(project) = new.project {
        let row = sqlx::query("SELECT department_id, status FROM catalog_projects WHERE id = $1")
            .bind(project.0)
            .fetch_optional(&mut **change.tx())
            .await?
            .ok_or_else(|| invalid("project_id", format!("project {project} does not exist")))?;
        if row.try_get::<i64, _>("department_id")? != provider.0 {
            return Err(invalid("project_id", "the project belongs to another department"));
        }
        if row.try_get::<String, _>("status")? != "compiled" {
            return Err(CatalogError::State("the project was accepted; its catalog is closed".into()));
        }
    }
    check_target(change.tx(), &new.classification_code, provider).await?;
    let rows = [(new.classification_code.clone(), provider, doc)];
    let code = create_many_in_tx(&mut change, &rows, false).await?.remove(0);
    if let Some(project) = new.project {
        sqlx::query("UPDATE catalog_resources SET project_id = $1 WHERE code = $2")
            .bind(project.0)
            .bind(code.as_str())
            .execute(&mut **change.tx())
            .await?;
    }
    let view = load_version(change.tx(), code.as_str(), 1).await?;
    change.notify(Notice::CatalogChanged { code: code.to_string() });
    change.commit().await?;
    Ok(view)
}

/// Checks that a resource may be filed under `classification` (a 项 or deeper that exists) for an
/// existing `provider`: what [`create_many_in_tx`] expects its caller to have checked.
async fn check_target(tx: &mut Tx, classification: &str, provider: DepartmentId) -> CatalogResult<()> {
    let class_level: Option<i64> = sqlx::query("SELECT level FROM catalog_classifications WHERE code = $1")
        .bind(classification)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.get(0));
    match class_level {
        None => return Err(invalid("classification_code", format!("classification '{classification}' does not exist"))),
        Some(1) => return Err(invalid("classification_code", "a resource belongs under a 项 or deeper, not directly under a 类")),
        Some(_) => {}
    }
    let dept = sqlx::query("SELECT id FROM departments WHERE id = $1").bind(provider.0).fetch_optional(&mut **tx).await?;
    if dept.is_none() {
        return Err(invalid("provider_department_id", format!("department {provider} does not exist")));
    }
    Ok(())
}

/// Creates resources in the caller's transaction: the one insert path, for a single new entry and for an
/// import alike. Classifications and providers must have been checked by the caller. Codes are taken per classification in one step, rows are written in
/// multi-row statements, and every resource still gets its own audit event. With `submit`, each is
/// submitted for review at once.
pub(crate) async fn create_many_in_tx(
    change: &mut Change<'_>,
    rows: &[(String, DepartmentId, ResourceDocument)],
    submit: bool,
) -> CatalogResult<Vec<ResourceCode>> {
    use std::collections::BTreeMap;
    check_zone(change.tx(), &rows.iter().enumerate().map(|(i, (_, _, d))| (i, d)).collect::<Vec<_>>()).await?;
    let mut per_class: BTreeMap<&str, i64> = BTreeMap::new();
    for (class, _, _) in rows {
        *per_class.entry(class.as_str()).or_default() += 1;
    }
    // The next free sequence per classification, reserved for the whole batch.
    let mut next: BTreeMap<&str, i64> = BTreeMap::new();
    for (class, count) in &per_class {
        let last: i64 = sqlx::query(
            "INSERT INTO catalog_sequences (classification_code, last_seq) VALUES ($1, $2) \
             ON CONFLICT (classification_code) DO UPDATE SET last_seq = catalog_sequences.last_seq + $2 RETURNING last_seq",
        )
        .bind(*class)
        .bind(*count)
        .fetch_one(&mut **change.tx())
        .await?
        .try_get(0)?;
        if last > 999_999 {
            return Err(invalid("classification_code", format!("classification {class} would exceed 999999 sequence codes")));
        }
        next.insert(class, last - count + 1);
    }
    let now = now_ms();
    let status = if submit { "submitted" } else { "draft" };
    let submitted_at = submit.then_some(now);
    let mut codes = Vec::with_capacity(rows.len());
    for (class, _, _) in rows {
        let seq = next.get_mut(class.as_str()).ok_or_else(|| CatalogError::State("sequence".into()))?;
        codes.push(ResourceCode::new(class, *seq));
        *seq += 1;
    }
    const CHUNK: usize = 300;
    for (chunk_i, chunk) in rows.chunks(CHUNK).enumerate() {
        let codes = &codes[chunk_i * CHUNK..chunk_i * CHUNK + chunk.len()];
        let mut res_sql = String::from(
            "INSERT INTO catalog_resources (code, classification_code, provider_department_id, status, latest_version, published_version, name, sharing_type, is_open, format, update_cycle, created_at, updated_at) VALUES ",
        );
        let mut ver_sql =
            String::from("INSERT INTO catalog_versions (code, version, status, document, created_at, created_by, submitted_at) VALUES ");
        for i in 0..chunk.len() {
            let (r, v) = (i * 11, i * 6);
            if i > 0 {
                res_sql.push(',');
                ver_sql.push(',');
            }
            res_sql.push_str(&format!(
                "(${},${},${},${},1,NULL,${},${},${},${},${},${},${})",
                r + 1,
                r + 2,
                r + 3,
                r + 4,
                r + 5,
                r + 6,
                r + 7,
                r + 8,
                r + 9,
                r + 10,
                r + 11
            ));
            ver_sql.push_str(&format!("(${},1,${},${},${},${},${})", v + 1, v + 2, v + 3, v + 4, v + 5, v + 6));
        }
        let mut rq = sqlx::query(&res_sql);
        let mut vq = sqlx::query(&ver_sql);
        for ((class, provider, doc), code) in chunk.iter().zip(codes) {
            rq = rq
                .bind(code.as_str())
                .bind(class.as_str())
                .bind(provider.0)
                .bind(status)
                .bind(&doc.name)
                .bind(doc.sharing_type.as_str())
                .bind(doc.open_to_public as i64)
                .bind(doc.format.as_str())
                .bind(doc.update_cycle.as_str())
                .bind(now)
                .bind(now);
            vq = vq
                .bind(code.as_str())
                .bind(status)
                .bind(serde_json::to_string(doc).unwrap_or_default())
                .bind(now)
                .bind(&change.ctx().actor)
                .bind(submitted_at);
        }
        rq.execute(&mut **change.tx()).await?;
        vq.execute(&mut **change.tx()).await?;
        let events: Vec<NewAuditEvent> = chunk
            .iter()
            .zip(codes)
            .map(|((class, provider, doc), code)| NewAuditEvent {
                action: shutong_audit::Action::CatalogCreate,
                target_kind: "catalog_resource",
                target_id: code.to_string(),
                department_id: Some(provider.0),
                detail: json!({"name": doc.name, "classification": class, "version": 1, "submitted": submit}),
            })
            .collect();
        change.record_many(&events).await?;
    }
    Ok(codes)
}

/// Replaces the document of the latest version while it is a draft (or was returned).
pub async fn update_draft(
    db: &Db,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &crate::ResourceCode,
    document: ResourceDocument,
) -> CatalogResult<ResourceView> {
    let code = resource.as_str();
    let authority = is_authority(db, actor).await?;
    let doc = normalise(document);
    field_violations(&doc)?;
    let mut change = Change::begin(db, ctx).await?;
    check_zone(change.tx(), &[(0, &doc)]).await?;
    let r = resource_row(change.tx(), code).await?;
    if !may_edit(actor, r.provider, authority) {
        return Err(refusal(
            actor,
            &r,
            authority,
            "only the providing department's catalog editors (and the authority) change its entries",
        ));
    }
    let status = latest_status(change.tx(), code, r.latest_version).await?;
    if !matches!(status, VersionStatus::Draft | VersionStatus::Returned) {
        return Err(CatalogError::State(format!(
            "version {} is {}; only a draft can be edited (revise a published resource first)",
            r.latest_version,
            status.label_zh()
        )));
    }
    sqlx::query("UPDATE catalog_versions SET document = $1, status = 'draft' WHERE code = $2 AND version = $3")
        .bind(serde_json::to_string(&doc).unwrap_or_default())
        .bind(code)
        .bind(r.latest_version)
        .execute(&mut **change.tx())
        .await?;
    let resource_status = if r.published_version.is_some() { VersionStatus::Published } else { VersionStatus::Draft };
    if r.published_version.is_none() {
        sync_columns(change.tx(), code, &doc, resource_status).await?;
    }
    audit(&mut change, shutong_audit::Action::CatalogUpdateDraft, code, r.provider, json!({"version": r.latest_version, "name": doc.name}))
        .await?;
    let view = load_version(change.tx(), code, r.latest_version).await?;
    change.commit().await?;
    Ok(view)
}

/// The refusal of a change: 403 if the principal may see the resource (it is published, or the principal
/// may read its drafts), otherwise 404, so that drafts of other departments do not reveal themselves.
fn refusal(actor: &Principal, r: &ResourceRow, authority: bool, message: &str) -> CatalogError {
    if r.published_version.is_some() || may_read_drafts(actor, r.provider, authority) {
        CatalogError::Forbidden(message.into())
    } else {
        CatalogError::NotFound { what: "resource" }
    }
}

async fn latest_status(tx: &mut Tx, code: &str, version: i64) -> CatalogResult<VersionStatus> {
    let row = sqlx::query("SELECT status FROM catalog_versions WHERE code = $1 AND version = $2")
        .bind(code)
        .bind(version)
        .fetch_one(&mut **tx)
        .await?;
    Ok(status_of(&row, "status")?)
}

/// 提交审核: submits the latest draft for the authority's review; every rule must hold.
pub async fn submit(db: &Db, actor: &Principal, ctx: &AuditContext, resource: &crate::ResourceCode) -> CatalogResult<ResourceView> {
    let code = resource.as_str();
    let authority = is_authority(db, actor).await?;
    let mut change = Change::begin(db, ctx).await?;
    let r = resource_row(change.tx(), code).await?;
    if !may_edit(actor, r.provider, authority) {
        return Err(refusal(actor, &r, authority, "only the providing department's catalog editors submit its entries"));
    }
    let status = latest_status(change.tx(), code, r.latest_version).await?;
    if !matches!(status, VersionStatus::Draft | VersionStatus::Returned) {
        return Err(CatalogError::State(format!("version {} is {}; only a draft can be submitted", r.latest_version, status.label_zh())));
    }
    let in_open_project: Option<i64> = sqlx::query(
        "SELECT p.id FROM catalog_resources r JOIN catalog_projects p ON p.id = r.project_id WHERE r.code = $1 AND p.status = 'compiled'",
    )
    .bind(code)
    .fetch_optional(&mut **change.tx())
    .await?
    .map(|r| r.get(0));
    if let Some(p) = in_open_project {
        return Err(CatalogError::State(format!(
            "this entry belongs to project {p}'s catalog, which is merged when the project is accepted (第二十二条)"
        )));
    }
    let doc = latest_document(change.tx(), code, r.latest_version).await?;
    all_rules(&doc, &r.classification)?;
    sqlx::query(
        "UPDATE catalog_versions SET status = 'submitted', submitted_at = $1, return_reason = NULL WHERE code = $2 AND version = $3",
    )
    .bind(now_ms())
    .bind(code)
    .bind(r.latest_version)
    .execute(&mut **change.tx())
    .await?;
    if r.published_version.is_none() {
        sqlx::query("UPDATE catalog_resources SET status = 'submitted', updated_at = $1 WHERE code = $2")
            .bind(now_ms())
            .bind(code)
            .execute(&mut **change.tx())
            .await?;
    }
    audit(&mut change, shutong_audit::Action::CatalogSubmit, code, r.provider, json!({"version": r.latest_version})).await?;
    let view = load_version(change.tx(), code, r.latest_version).await?;
    change.commit().await?;
    Ok(view)
}

/// The authority's decision on a submission.
#[derive(Clone, Debug)]
pub enum ReviewDecision {
    /// 审核通过: publish.
    Approve,
    /// 退回: back to the provider, with the reason (required).
    Return { reason: String },
}

/// 审核: the sharing authority approves (publishes) or returns a submitted version.
pub async fn review(
    db: &Db,
    clock: &Clock,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &crate::ResourceCode,
    decision: ReviewDecision,
) -> CatalogResult<ResourceView> {
    let code = resource.as_str();
    if !is_authority(db, actor).await? {
        return Err(CatalogError::Forbidden("only the sharing authority reviews catalog entries".into()));
    }
    let mut change = Change::begin(db, ctx).await?;
    let r = resource_row(change.tx(), code).await?;
    let v = r.latest_version;
    let status = latest_status(change.tx(), code, v).await?;
    if status != VersionStatus::Submitted {
        return Err(CatalogError::State(format!("version {v} is {}; only a submitted version can be reviewed", status.label_zh())));
    }
    let now = now_ms();
    match decision {
        ReviewDecision::Return { reason } => {
            let reason = reason.trim().to_string();
            if reason.is_empty() || reason.chars().count() > 2000 {
                return Err(invalid("reason", "a return needs its reason (1 to 2000 characters)"));
            }
            sqlx::query("UPDATE catalog_versions SET status = 'returned', reviewed_at = $1, reviewed_by = $2, return_reason = $3 WHERE code = $4 AND version = $5")
                .bind(now)
                .bind(&ctx.actor)
                .bind(&reason)
                .bind(code)
                .bind(v)
                .execute(&mut **change.tx())
                .await?;
            if r.published_version.is_none() {
                sqlx::query("UPDATE catalog_resources SET status = 'returned', updated_at = $1 WHERE code = $2")
                    .bind(now)
                    .bind(code)
                    .execute(&mut **change.tx())
                    .await?;
            }
            audit(&mut change, shutong_audit::Action::CatalogReturn, code, r.provider, json!({"version": v, "reason": reason})).await?;
        }
        ReviewDecision::Approve => {
            let doc = latest_document(change.tx(), code, v).await?;
            all_rules(&doc, &r.classification)?;
            if let Some(old) = r.published_version {
                sqlx::query("UPDATE catalog_versions SET status = 'superseded' WHERE code = $1 AND version = $2")
                    .bind(code)
                    .bind(old)
                    .execute(&mut **change.tx())
                    .await?;
            }
            sqlx::query("UPDATE catalog_versions SET status = 'published', reviewed_at = $1, reviewed_by = $2, published_at = $1 WHERE code = $3 AND version = $4")
                .bind(now)
                .bind(&ctx.actor)
                .bind(code)
                .bind(v)
                .execute(&mut **change.tx())
                .await?;
            sqlx::query("UPDATE catalog_resources SET published_version = $1 WHERE code = $2")
                .bind(v)
                .bind(code)
                .execute(&mut **change.tx())
                .await?;
            sync_columns(change.tx(), code, &doc, VersionStatus::Published).await?;
            // A publication answers the department's open change events (R-CAT-7).
            let today = clock.today().to_string();
            let resolved = sqlx::query(
                "UPDATE catalog_change_events SET resolved_at = $1, resolved_by = $2, resolution = $3 WHERE department_id = $4 AND resolved_at IS NULL AND occurred_on <= $5",
            )
            .bind(now)
            .bind(&ctx.actor)
            .bind(format!("目录已更新：{code} 第 {v} 版发布"))
            .bind(r.provider.0)
            .bind(&today)
            .execute(&mut **change.tx())
            .await?
            .rows_affected();
            audit(
                &mut change,
                shutong_audit::Action::CatalogPublish,
                code,
                r.provider,
                json!({"version": v, "previous": r.published_version, "change_events_resolved": resolved}),
            )
            .await?;
        }
    }
    let view = load_version(change.tx(), code, v).await?;
    change.commit().await?;
    Ok(view)
}

/// 修订: opens a new version (a draft copied from the published one); the published version stays in
/// force, and readable afterwards, until the new one is published.
pub async fn revise(db: &Db, actor: &Principal, ctx: &AuditContext, resource: &crate::ResourceCode) -> CatalogResult<ResourceView> {
    let code = resource.as_str();
    let authority = is_authority(db, actor).await?;
    let mut change = Change::begin(db, ctx).await?;
    let r = resource_row(change.tx(), code).await?;
    if !may_edit(actor, r.provider, authority) {
        return Err(refusal(actor, &r, authority, "only the providing department's catalog editors revise its entries"));
    }
    let status = latest_status(change.tx(), code, r.latest_version).await?;
    if status != VersionStatus::Published {
        return Err(CatalogError::State(format!(
            "version {} is {}; only the published version can be revised",
            r.latest_version,
            status.label_zh()
        )));
    }
    let doc = latest_document(change.tx(), code, r.latest_version).await?;
    let next = r.latest_version + 1;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO catalog_versions (code, version, status, document, created_at, created_by) VALUES ($1, $2, 'draft', $3, $4, $5)",
    )
    .bind(code)
    .bind(next)
    .bind(serde_json::to_string(&doc).unwrap_or_default())
    .bind(now)
    .bind(&ctx.actor)
    .execute(&mut **change.tx())
    .await?;
    sqlx::query("UPDATE catalog_resources SET latest_version = $1, updated_at = $2 WHERE code = $3")
        .bind(next)
        .bind(now)
        .bind(code)
        .execute(&mut **change.tx())
        .await?;
    audit(&mut change, shutong_audit::Action::CatalogRevise, code, r.provider, json!({"version": next, "from": r.latest_version})).await?;
    let view = load_version(change.tx(), code, next).await?;
    change.commit().await?;
    Ok(view)
}

/// 撤销: withdraws a published resource (its versions stay readable). A reason is required.
pub async fn withdraw(
    db: &Db,
    actor: &Principal,
    ctx: &AuditContext,
    resource: &crate::ResourceCode,
    reason: &str,
) -> CatalogResult<ResourceView> {
    let code = resource.as_str();
    let authority = is_authority(db, actor).await?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(invalid("reason", "a withdrawal needs its reason (1 to 2000 characters)"));
    }
    let mut change = Change::begin(db, ctx).await?;
    let r = resource_row(change.tx(), code).await?;
    if !may_edit(actor, r.provider, authority) {
        return Err(refusal(
            actor,
            &r,
            authority,
            "only the providing department's catalog editors (and the authority) withdraw its entries",
        ));
    }
    let Some(published) = r.published_version.filter(|_| r.status != VersionStatus::Withdrawn) else {
        return Err(CatalogError::State("only a published resource can be withdrawn".into()));
    };
    let now = now_ms();
    sqlx::query(
        "UPDATE catalog_versions SET status = 'withdrawn', withdrawn_at = $1, withdraw_reason = $2 WHERE code = $3 AND version = $4",
    )
    .bind(now)
    .bind(reason)
    .bind(code)
    .bind(published)
    .execute(&mut **change.tx())
    .await?;
    sqlx::query("UPDATE catalog_resources SET status = 'withdrawn', updated_at = $1 WHERE code = $2")
        .bind(now)
        .bind(code)
        .execute(&mut **change.tx())
        .await?;
    audit(&mut change, shutong_audit::Action::CatalogWithdraw, code, r.provider, json!({"version": published, "reason": reason})).await?;
    let view = load_version(change.tx(), code, published).await?;
    change.commit().await?;
    Ok(view)
}

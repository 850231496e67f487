//! Grants (授权): reading, revocation, renewal, and `grants_in_force`, the check every data access uses.

use super::*;

/// Filter of [`list_grants`].
#[derive(Clone, Debug, Default)]
pub struct GrantFilter {
    /// The caller's department as consumer (`consumer`) or provider (`provider`); default both.
    pub side: Option<Side>,
    pub resource_code: Option<String>,
    pub state: Option<GrantState>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// Grants the principal may see, newest first: those of its department (as consumer or provider); all of
/// them for the authority and auditors.
pub async fn list_grants(s: &Sharing, actor: &Principal, f: &GrantFilter) -> SharingResult<Vec<GrantView>> {
    let wide = sees_all(s, actor).await?;
    let Some(list) = departments_sql(actor).or_else(|| wide.then(|| "NULL".to_string())) else {
        // Neither wide nor in any department: nothing to see.
        return Ok(Vec::new());
    };
    let mut sql = format!("{GRANT_SQL} WHERE 1 = 1");
    match f.side {
        Some(Side::Consumer) => sql.push_str(&format!(" AND g.consumer_department_id IN ({list})")),
        Some(Side::Provider | Side::Owner) => sql.push_str(&format!(" AND g.provider_department_id IN ({list})")),
        None if !wide => sql.push_str(&format!(" AND (g.consumer_department_id IN ({list}) OR g.provider_department_id IN ({list}))")),
        None => {}
    }
    let today = s.today().to_string();
    let mut binds: Vec<String> = Vec::new();
    if let Some(c) = &f.resource_code {
        binds.push(c.clone());
        sql.push_str(&format!(" AND g.resource_code = ${}", binds.len()));
    }
    match f.state {
        Some(GrantState::Revoked) => sql.push_str(" AND g.status = 'revoked'"),
        Some(st) => {
            binds.push(today.clone());
            let n = binds.len();
            sql.push_str(&match st {
                GrantState::Active => format!(" AND g.status = 'active' AND g.valid_from <= ${n} AND g.valid_to >= ${n}"),
                GrantState::Expired => format!(" AND g.status = 'active' AND g.valid_to < ${n}"),
                _ => format!(" AND g.status = 'active' AND g.valid_from > ${n}"),
            });
        }
        None => {}
    }
    if let Some(b) = f.before {
        sql.push_str(&format!(" AND g.id < {b}"));
    }
    sql.push_str(&format!(" ORDER BY g.id DESC LIMIT {}", f.limit.clamp(1, 1000)));
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(s.db.pool()).await?;
    let today = s.today();
    rows.iter().map(|r| grant_from_row(r, today)).collect()
}

/// A grant, for its parties, the authority and auditors.
pub async fn get_grant(s: &Sharing, actor: &Principal, id: GrantId) -> SharingResult<GrantView> {
    let GrantId(id) = id;
    let mut conn = s.db.pool().acquire().await.map_err(StoreError::from)?;
    let g = grant_in(s, &mut conn, id).await?;
    if !may_see_grant(s, actor, &g).await? {
        return Err(SharingError::NotFound { what: "grant" });
    }
    Ok(g)
}

/// Who may revoke or renew a grant: the provider's reviewers and administrators, and the authority.
pub async fn may_manage_grant(s: &Sharing, actor: &Principal, g: &GrantView) -> SharingResult<bool> {
    Ok(answers_for(actor, DepartmentId(g.provider_department_id)) || shutong_catalog::is_authority(&s.db, actor).await?)
}

/// 撤销授权: the provider or the authority revokes a grant, with a reason; it stops working at once.
pub async fn revoke_grant(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: GrantId, reason: &str) -> SharingResult<GrantView> {
    let GrantId(id) = id;
    let reason = text("reason", reason, true, MAX_TEXT)?.unwrap_or_default();
    let mut change = Change::begin(&s.db, ctx).await?;
    let g = grant_in(s, change.tx(), id).await?;
    if !may_see_grant(s, actor, &g).await? {
        return Err(SharingError::NotFound { what: "grant" });
    }
    if !may_manage_grant(s, actor, &g).await? {
        return Err(SharingError::Forbidden("only the provider's reviewers and the sharing authority revoke a grant".into()));
    }
    if g.state == GrantState::Revoked {
        return Err(SharingError::State(format!("grant {id} is already revoked")));
    }
    let now = s.clock.now_ms();
    sqlx::query("UPDATE sharing_grants SET status = 'revoked', revoked_at = $1, revoked_by = $2, revoke_reason = $3 WHERE id = $4")
        .bind(now)
        .bind(&ctx.actor)
        .bind(&reason)
        .bind(id)
        .execute(&mut **change.tx())
        .await?;
    audit(
        &mut change,
        shutong_audit::Action::GrantRevoke,
        "sharing_grant",
        id,
        g.provider_department_id,
        json!({"reason": reason, "consumer": g.consumer_department_id}),
    )
    .await?;
    let msg = format!("{} 的授权 {id} 已撤销：{reason}", g.resource_name);
    notify(change.tx(), g.consumer_department_id, "grant_revoked", "sharing_grant", id, &msg, None, &format!("revoked:{id}"), now).await?;
    let view = grant_in(s, change.tx(), id).await?;
    change.notify(Notice::GrantsChanged);
    change.commit().await?;
    Ok(view)
}

/// 续期: the provider or the authority extends a grant's validity.
pub async fn renew_grant(
    s: &Sharing,
    actor: &Principal,
    ctx: &AuditContext,
    id: GrantId,
    valid_to: NaiveDate,
    note: Option<&str>,
) -> SharingResult<GrantView> {
    let GrantId(id) = id;
    let note = text("note", note.unwrap_or(""), false, MAX_TEXT)?;
    let mut change = Change::begin(&s.db, ctx).await?;
    let g = grant_in(s, change.tx(), id).await?;
    if !may_see_grant(s, actor, &g).await? {
        return Err(SharingError::NotFound { what: "grant" });
    }
    if !may_manage_grant(s, actor, &g).await? {
        return Err(SharingError::Forbidden("only the provider's reviewers and the sharing authority renew a grant".into()));
    }
    if g.state == GrantState::Revoked {
        return Err(SharingError::State(format!("grant {id} is revoked; a revoked grant is not renewed (apply again)")));
    }
    if valid_to <= g.valid_to {
        return Err(invalid("valid_to", format!("{valid_to} does not extend the grant (valid to {})", g.valid_to)));
    }
    let today = s.today();
    if (valid_to - today.max(g.valid_from)).num_days() > MAX_PERIOD_DAYS {
        return Err(invalid("valid_to", "a grant runs at most 5 years ahead"));
    }
    // The resource must still be published: a withdrawn resource is not renewed.
    published(change.tx(), &g.resource_code).await?;
    let now = s.clock.now_ms();
    sqlx::query("UPDATE sharing_grants SET valid_to = $1, renewed_at = $2, renewed_by = $3 WHERE id = $4")
        .bind(valid_to.to_string())
        .bind(now)
        .bind(&ctx.actor)
        .bind(id)
        .execute(&mut **change.tx())
        .await?;
    audit(
        &mut change,
        shutong_audit::Action::GrantRenew,
        "sharing_grant",
        id,
        g.provider_department_id,
        json!({"previous_valid_to": g.valid_to, "valid_to": valid_to, "note": note}),
    )
    .await?;
    let msg = format!("{} 的授权 {id} 已续期至 {valid_to}", g.resource_name);
    notify(
        change.tx(),
        g.consumer_department_id,
        "grant_renewed",
        "sharing_grant",
        id,
        &msg,
        None,
        &format!("renewed:{id}:{valid_to}"),
        now,
    )
    .await?;
    let view = grant_in(s, change.tx(), id).await?;
    change.notify(Notice::GrantsChanged);
    change.commit().await?;
    Ok(view)
}

/// The grants in force today for a consumer and a resource: what every data access is checked against
/// (R-REQ-5, R-EX-1). Revoked, expired and not yet valid grants are not returned.
pub async fn grants_in_force(
    s: &Sharing,
    consumer: DepartmentId,
    resource: &shutong_catalog::ResourceCode,
) -> SharingResult<Vec<GrantView>> {
    let resource_code = resource.as_str();
    let today = s.today().to_string();
    let rows = sqlx::query(&format!(
        "{GRANT_SQL} WHERE g.consumer_department_id = $1 AND g.resource_code = $2 AND g.status = 'active' AND g.valid_from <= $3 AND g.valid_to >= $3 ORDER BY g.id"
    ))
    .bind(consumer.0)
    .bind(resource_code)
    .bind(&today)
    .fetch_all(s.db.pool())
    .await?;
    let today = s.today();
    rows.iter().map(|r| grant_from_row(r, today)).collect()
}

//! Subscriptions (订阅, unconditional resources) and applications (申请, conditional ones): 办法 第十四条–第十六条.

use super::*;

/// 直接获取 (R-REQ-1): a consumer subscribes to an unconditional resource and holds a grant at once, with
/// purpose, items and access methods recorded.
pub async fn subscribe(s: &Sharing, actor: &Principal, ctx: &AuditContext, new: NewRequest) -> SharingResult<RequestDetail> {
    let mut change = Change::begin(&s.db, ctx).await?;
    let c = check_new(s, change.tx(), actor, &new, true).await?;
    let doc = &c.resource.document;
    if doc.sharing_type != SharingType::Unconditional {
        return Err(invalid(
            "resource_code",
            format!("the resource is {}; apply through /api/v1/requests (R-REQ-2, R-REQ-4)", doc.sharing_type.label_zh()),
        ));
    }
    if c.items.is_empty() {
        return Err(invalid("items", "the resource has no unconditional items"));
    }
    for (i, item) in c.items.iter().enumerate() {
        let t = effective_item_sharing(doc, item).unwrap_or(SharingType::NotShared);
        if t != SharingType::Unconditional {
            return Err(invalid(&format!("items[{i}]"), format!("'{item}' is {}; apply for it through /api/v1/requests", t.label_zh())));
        }
    }
    let existing: Option<i64> = sqlx::query(
        "SELECT id FROM sharing_grants WHERE consumer_department_id = $1 AND resource_code = $2 AND purpose = $3 AND origin = 'subscription' \
         AND status = 'active' AND valid_to >= $4",
    )
    .bind(c.consumer.id.0)
    .bind(&c.resource.code)
    .bind(c.purpose.as_str())
    .bind(s.today().to_string())
    .fetch_optional(&mut **change.tx())
    .await?
    .map(|r| r.get(0));
    if let Some(g) = existing {
        return Err(SharingError::Conflict(format!("grant {g} already covers this resource for this purpose; renew it instead")));
    }
    let today = s.today();
    let id = insert_request(
        s,
        change.tx(),
        ctx,
        &c,
        RequestKind::Subscription,
        RequestStatus::Approved,
        Stage::Answer,
        c.provider.id.0,
        today,
        today,
    )
    .await?;
    let grant = insert_grant(
        s,
        &mut change,
        NewGrant {
            resource_code: &c.resource.code,
            consumer: c.consumer.id.0,
            provider: c.provider.id.0,
            request: Some(id),
            origin: GrantOrigin::Subscription,
            items: &c.items,
            row_filter: &RowFilter::default(),
            purpose: c.purpose,
            purpose_detail: c.purpose_detail.as_deref(),
            valid_from: c.period_from,
            valid_to: c.period_to,
            methods: &c.methods,
            daily_quota: None,
            clear_text: false,
        },
    )
    .await?;
    sqlx::query("UPDATE sharing_requests SET grant_id = $1, answered_at = $2, answered_on = $3, answered_by = 'platform' WHERE id = $4")
        .bind(grant)
        .bind(s.clock.now_ms())
        .bind(today.to_string())
        .bind(id)
        .execute(&mut **change.tx())
        .await?;
    audit(
        &mut change,
        shutong_audit::Action::RequestSubscribe,
        "sharing_request",
        id,
        c.consumer.id.0,
        json!({"resource": c.resource.code, "provider": c.provider.id.0, "items": c.items, "purpose": c.purpose, "grant": grant}),
    )
    .await?;
    let msg = format!("{} 订阅了无条件共享资源 {}（授权 {grant}）", c.consumer.name, c.resource.document.name);
    notify(change.tx(), c.provider.id.0, "subscribed", "sharing_request", id, &msg, None, &format!("subscribed:{id}"), s.clock.now_ms())
        .await?;
    let detail = detail_in(s, change.tx(), id).await?;
    change.notify(Notice::GrantsChanged);
    change.commit().await?;
    Ok(detail)
}

/// 共享申请 (R-REQ-2): applies for a conditional resource; due on the N-th working day after today. A
/// request for 不予共享 data opens a negotiation (协商) with the provider at once (R-REQ-4).
pub async fn create_request(s: &Sharing, actor: &Principal, ctx: &AuditContext, new: NewRequest) -> SharingResult<RequestDetail> {
    let mut change = Change::begin(&s.db, ctx).await?;
    let c = check_new(s, change.tx(), actor, &new, false).await?;
    let doc = &c.resource.document;
    let types: Vec<SharingType> = c.items.iter().map(|i| effective_item_sharing(doc, i).unwrap_or(SharingType::NotShared)).collect();
    let kind = if types.contains(&SharingType::NotShared) {
        RequestKind::Negotiation
    } else if types.contains(&SharingType::Conditional) {
        RequestKind::Application
    } else {
        return Err(invalid(
            "items",
            "every item asked for is 无条件共享: subscribe through /api/v1/subscriptions and the grant is given at once (R-REQ-1)",
        ));
    };
    let open: Option<i64> = sqlx::query(
        "SELECT id FROM sharing_requests WHERE consumer_department_id = $1 AND resource_code = $2 AND purpose = $3 \
         AND status IN ('pending', 'negotiating', 'coordinating', 'leading_group')",
    )
    .bind(c.consumer.id.0)
    .bind(&c.resource.code)
    .bind(c.purpose.as_str())
    .fetch_optional(&mut **change.tx())
    .await?
    .map(|r| r.get(0));
    if let Some(other) = open {
        return Err(SharingError::Conflict(format!(
            "request {other} for this resource and purpose is still open; withdraw it or wait for its answer"
        )));
    }
    let today = s.today();
    let stage = if kind == RequestKind::Negotiation { Stage::Negotiation } else { Stage::Answer };
    let due = s.due(today, stage)?;
    let id = insert_request(s, change.tx(), ctx, &c, kind, stage.open_status(), stage, c.provider.id.0, due, due).await?;
    if stage == Stage::Negotiation {
        open_step(s, change.tx(), ctx, id, Stage::Negotiation, c.provider.id.0, &c.basis, due).await?;
    }
    audit(
        &mut change,
        shutong_audit::Action::RequestCreate,
        "sharing_request",
        id,
        c.consumer.id.0,
        json!({"resource": c.resource.code, "provider": c.provider.id.0, "kind": kind, "items": c.items, "purpose": c.purpose,
               "period_from": c.period_from, "period_to": c.period_to, "access_methods": c.methods, "due_on": due}),
    )
    .await?;
    let msg = match kind {
        RequestKind::Negotiation => format!("{} 就不予共享资源 {} 申请协商，请在 {due} 前答复", c.consumer.name, doc.name),
        _ => format!("{} 申请共享 {}，请在 {due} 前答复（第十六条）", c.consumer.name, doc.name),
    };
    notify(change.tx(), c.provider.id.0, "request", "sharing_request", id, &msg, Some(due), &format!("request:{id}"), s.clock.now_ms())
        .await?;
    let detail = detail_in(s, change.tx(), id).await?;
    change.commit().await?;
    Ok(detail)
}

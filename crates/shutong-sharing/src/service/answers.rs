//! The provider's answer — approval with narrowing, refusal with its reason —, withdrawal, escalation (协商 → 协调 → 领导小组) and messages.

use super::*;

/// Who answers at a stage: the provider's reviewers for 答复 and 协商; the owning authority's reviewers (and
/// platform administrators) for 协调 and 领导小组.
pub fn may_answer(actor: &Principal, r: &RequestView) -> bool {
    match r.stage {
        Stage::Answer | Stage::Negotiation => answers_for(actor, DepartmentId(r.provider_department_id)),
        Stage::Coordination | Stage::LeadingGroup => actor.is_platform_admin() || answers_for(actor, DepartmentId(r.owner_department_id)),
    }
}

/// An approval: the grant, narrowed from the request where the answerer chooses.
#[derive(Clone, Debug, Default)]
pub struct Approval {
    /// A subset of the requested items; default all of them.
    pub items: Option<Vec<String>>,
    pub row_filter: Option<RowFilter>,
    /// Within the requested period; default the requested period.
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    /// A subset of the requested access methods; default all of them.
    pub access_methods: Option<Vec<AccessMethod>>,
    pub daily_quota: Option<i64>,
    /// Deliver sensitive items in clear text.
    pub clear_text: bool,
    pub note: Option<String>,
}

/// 同意: the answerer approves, possibly narrowing items, rows, period and access methods; a grant is created
/// with exactly that scope.
pub async fn approve(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: RequestId, a: Approval) -> SharingResult<RequestDetail> {
    let RequestId(id) = id;
    let mut change = Change::begin(&s.db, ctx).await?;
    let r = request_for_change(s, change.tx(), actor, id).await?;
    if !may_answer(actor, &r) {
        return Err(SharingError::Forbidden(format!("at the {} stage only {} answers", r.stage.label_zh(), r.owner_name)));
    }
    if !r.status.is_open() {
        return Err(SharingError::State(format!("request {id} is {}; only an open request is answered", r.status.label_zh())));
    }
    let resource = published(change.tx(), &r.resource_code).await?;
    let doc = &resource.document;
    let items = match &a.items {
        Some(list) => {
            let list = check_items(doc, list, "items")?;
            for (i, it) in list.iter().enumerate() {
                if !r.items.contains(it) {
                    return Err(invalid(
                        &format!("items[{i}]"),
                        format!("'{it}' was not requested; an approval can only narrow the items"),
                    ));
                }
            }
            list
        }
        None => r.items.clone(),
    };
    for (i, it) in items.iter().enumerate() {
        if effective_item_sharing(doc, it) == Some(SharingType::NotShared) {
            return Err(invalid(
                &format!("items[{i}]"),
                format!(
                    "'{it}' is 不予共享 in the published catalog (version {}); the provider revises the entry before it can be granted (R-CAT-1)",
                    resource.version
                ),
            ));
        }
    }
    let filter = a.row_filter.clone().unwrap_or_default();
    check_filter(doc, &filter)?;
    let today = s.today();
    let valid_from = a.valid_from.unwrap_or(r.period_from).max(today);
    let valid_to = a.valid_to.unwrap_or(r.period_to);
    if valid_from < r.period_from {
        return Err(invalid("valid_from", format!("{valid_from} is before the requested period ({})", r.period_from)));
    }
    if valid_to > r.period_to {
        return Err(invalid(
            "valid_to",
            format!("{valid_to} is after the requested period ({}); an approval can only narrow", r.period_to),
        ));
    }
    check_period(today, valid_from, valid_to, "valid_from", "valid_to")?;
    let methods = match &a.access_methods {
        Some(m) => {
            let m = check_methods(doc, m, "access_methods")?;
            for (i, x) in m.iter().enumerate() {
                if !r.access_methods.contains(x) {
                    return Err(invalid(&format!("access_methods[{i}]"), format!("{} was not requested", x.label_zh())));
                }
            }
            m
        }
        None => r.access_methods.clone(),
    };
    if let Some(q) = a.daily_quota
        && !(1..=1_000_000_000).contains(&q)
    {
        return Err(invalid("daily_quota", "between 1 and 1000000000 records per day"));
    }
    let note = text("note", a.note.as_deref().unwrap_or(""), false, MAX_TEXT)?;
    let grant = insert_grant(
        s,
        &mut change,
        NewGrant {
            resource_code: &r.resource_code,
            consumer: r.consumer_department_id,
            provider: r.provider_department_id,
            request: Some(id),
            origin: r.stage.grant_origin(),
            items: &items,
            row_filter: &filter,
            purpose: r.purpose,
            purpose_detail: r.purpose_detail.as_deref(),
            valid_from,
            valid_to,
            methods: &methods,
            daily_quota: a.daily_quota,
            clear_text: a.clear_text,
        },
    )
    .await?;
    let now = s.clock.now_ms();
    sqlx::query(
        "UPDATE sharing_requests SET status = 'approved', grant_id = $1, answered_at = $2, answered_on = $3, answered_by = $4, answer_reason = $5, \
         closed_at = $2, updated_at = $2 WHERE id = $6",
    )
    .bind(grant)
    .bind(now)
    .bind(today.to_string())
    .bind(&ctx.actor)
    .bind(&note)
    .bind(id)
    .execute(&mut **change.tx())
    .await?;
    if r.stage != Stage::Answer {
        close_step(s, change.tx(), ctx, id, "granted", note.as_deref()).await?;
    }
    let narrowed = items.len() < r.items.len() || !filter.is_empty() || valid_to < r.period_to || methods.len() < r.access_methods.len();
    audit(&mut change, shutong_audit::Action::RequestApprove,
        "sharing_request",
        id,
        r.provider_department_id,
        json!({"stage": r.stage, "grant": grant, "items": items, "narrowed": narrowed, "due_on": r.stage_due_on, "late": today > r.stage_due_on}),
    )
    .await?;
    let msg = format!("{} 的共享申请已同意（{}），授权 {grant}", r.resource_name, r.stage.label_zh());
    notify(change.tx(), r.consumer_department_id, "approved", "sharing_request", id, &msg, None, &format!("approved:{id}"), now).await?;
    let detail = detail_in(s, change.tx(), id).await?;
    change.notify(Notice::GrantsChanged);
    change.commit().await?;
    Ok(detail)
}

/// 不予共享 / 拒绝: the answerer refuses; the reason is mandatory (第十六条: 应说明理由).
pub async fn reject(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: RequestId, reason: &str) -> SharingResult<RequestDetail> {
    let RequestId(id) = id;
    let reason = text("reason", reason, true, MAX_TEXT)?.unwrap_or_default();
    let mut change = Change::begin(&s.db, ctx).await?;
    let r = request_for_change(s, change.tx(), actor, id).await?;
    if !may_answer(actor, &r) {
        return Err(SharingError::Forbidden(format!("at the {} stage only {} answers", r.stage.label_zh(), r.owner_name)));
    }
    if !r.status.is_open() {
        return Err(SharingError::State(format!("request {id} is {}; only an open request is answered", r.status.label_zh())));
    }
    let now = s.clock.now_ms();
    let today = s.today();
    // The provider's answer (答复) is recorded once; later refusals close their escalation step.
    sqlx::query(
        "UPDATE sharing_requests SET status = 'rejected', answered_at = COALESCE(answered_at, $1), answered_on = COALESCE(answered_on, $2), \
         answered_by = COALESCE(answered_by, $3), answer_reason = $4, closed_at = $1, updated_at = $1 WHERE id = $5",
    )
    .bind(now)
    .bind(today.to_string())
    .bind(&ctx.actor)
    .bind(&reason)
    .bind(id)
    .execute(&mut **change.tx())
    .await?;
    if r.stage != Stage::Answer {
        close_step(s, change.tx(), ctx, id, "refused", Some(&reason)).await?;
    }
    audit(
        &mut change,
        shutong_audit::Action::RequestReject,
        "sharing_request",
        id,
        r.provider_department_id,
        json!({"stage": r.stage, "reason": reason, "due_on": r.stage_due_on, "late": today > r.stage_due_on}),
    )
    .await?;
    let msg = format!("{} 的共享申请未获同意（{}）：{reason}", r.resource_name, r.stage.label_zh());
    notify(
        change.tx(),
        r.consumer_department_id,
        "rejected",
        "sharing_request",
        id,
        &msg,
        None,
        &format!("rejected:{id}:{}", r.stage),
        now,
    )
    .await?;
    let detail = detail_in(s, change.tx(), id).await?;
    change.commit().await?;
    Ok(detail)
}

/// 撤回: the consumer withdraws an open request.
pub async fn withdraw(
    s: &Sharing,
    actor: &Principal,
    ctx: &AuditContext,
    id: RequestId,
    reason: Option<&str>,
) -> SharingResult<RequestDetail> {
    let RequestId(id) = id;
    let reason = text("reason", reason.unwrap_or(""), false, MAX_TEXT)?;
    let mut change = Change::begin(&s.db, ctx).await?;
    let r = request_for_change(s, change.tx(), actor, id).await?;
    if !acts_for(actor, DepartmentId(r.consumer_department_id)) {
        return Err(SharingError::Forbidden("only the consumer department withdraws its request".into()));
    }
    if !r.status.is_open() {
        return Err(SharingError::State(format!("request {id} is {}; only an open request can be withdrawn", r.status.label_zh())));
    }
    let now = s.clock.now_ms();
    sqlx::query("UPDATE sharing_requests SET status = 'withdrawn', closed_at = $1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut **change.tx())
        .await?;
    if r.stage != Stage::Answer {
        close_step(s, change.tx(), ctx, id, "withdrawn", reason.as_deref()).await?;
    }
    audit(
        &mut change,
        shutong_audit::Action::RequestWithdraw,
        "sharing_request",
        id,
        r.consumer_department_id,
        json!({"stage": r.stage, "reason": reason}),
    )
    .await?;
    let msg = format!("{} 撤回了对 {} 的申请", r.consumer_name, r.resource_name);
    notify(change.tx(), r.owner_department_id, "withdrawn", "sharing_request", id, &msg, None, &format!("withdrawn:{id}"), now).await?;
    let detail = detail_in(s, change.tx(), id).await?;
    change.commit().await?;
    Ok(detail)
}

/// 协商 → 协调 → 领导小组 (R-REQ-4): the consumer takes a refused request (or a negotiation that failed) to the
/// next stage, stating why. Each stage has its owner and its deadline.
pub async fn escalate(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: RequestId, reason: &str) -> SharingResult<RequestDetail> {
    let RequestId(id) = id;
    let reason = text("reason", reason, true, MAX_TEXT)?.unwrap_or_default();
    let mut change = Change::begin(&s.db, ctx).await?;
    let r = request_for_change(s, change.tx(), actor, id).await?;
    if !acts_for(actor, DepartmentId(r.consumer_department_id)) {
        return Err(SharingError::Forbidden("only the consumer department escalates its request".into()));
    }
    let next = r.next_stage.ok_or_else(|| {
        SharingError::State(match (r.status, r.stage) {
            (RequestStatus::Rejected, Stage::Coordination) => {
                "the coordination's decision is final: no provincial department is involved (第十六条)".to_string()
            }
            (RequestStatus::Rejected, Stage::LeadingGroup) => "the leading group's decision is final".to_string(),
            _ => format!("request {id} is {}; only a refused request or a failed negotiation is escalated", r.status.label_zh()),
        })
    })?;
    let consumer = dept(change.tx(), r.consumer_department_id, "consumer_department_id").await?;
    let provider = dept(change.tx(), r.provider_department_id, "provider_department_id").await?;
    let owner = match next {
        Stage::Negotiation => provider.id,
        Stage::Coordination => coordination_owner(change.tx(), &consumer, &provider).await?,
        Stage::LeadingGroup => leading_group_owner(change.tx(), &consumer).await?,
        Stage::Answer => return Err(SharingError::State("no escalation back to the answer".into())),
    };
    if r.status.is_open() {
        // 协商未果: the consumer ends a negotiation that goes nowhere.
        close_step(s, change.tx(), ctx, id, "escalated", Some(&reason)).await?;
    }
    let due = s.due(s.today(), next)?;
    open_step(s, change.tx(), ctx, id, next, owner.0, &reason, due).await?;
    let now = s.clock.now_ms();
    sqlx::query(
        "UPDATE sharing_requests SET status = $1, stage = $2, owner_department_id = $3, stage_due_on = $4, closed_at = NULL, updated_at = $5 WHERE id = $6",
    )
    .bind(next.open_status().as_str())
    .bind(next.as_str())
    .bind(owner.0)
    .bind(due.to_string())
    .bind(now)
    .bind(id)
    .execute(&mut **change.tx())
    .await?;
    add_message_in(s, change.tx(), ctx, id, next, actor.department_id.map(|d| d.0), &reason).await?;
    audit(
        &mut change,
        shutong_audit::Action::RequestEscalate,
        "sharing_request",
        id,
        r.consumer_department_id,
        json!({"from": r.stage, "to": next, "owner": owner.0, "due_on": due, "reason": reason}),
    )
    .await?;
    let msg = format!("{} 就 {} 提请{}，请在 {due} 前办理", consumer.name, r.resource_name, next.label_zh());
    notify(change.tx(), owner.0, "escalation", "sharing_request", id, &msg, Some(due), &format!("escalation:{id}:{next}"), now).await?;
    let detail = detail_in(s, change.tx(), id).await?;
    change.notify(Notice::GrantsChanged);
    change.commit().await?;
    Ok(detail)
}

/// Adds to the record of the exchange: the parties and the owner of the current stage write while the
/// request is open.
pub async fn add_message(s: &Sharing, actor: &Principal, ctx: &AuditContext, id: RequestId, body: &str) -> SharingResult<RequestDetail> {
    let RequestId(id) = id;
    let body = text("body", body, true, 4000)?.unwrap_or_default();
    let mut change = Change::begin(&s.db, ctx).await?;
    let r = request_for_change(s, change.tx(), actor, id).await?;
    let party = acts_for(actor, DepartmentId(r.consumer_department_id))
        || answers_for(actor, DepartmentId(r.provider_department_id))
        || answers_for(actor, DepartmentId(r.owner_department_id))
        || (actor.is_platform_admin() && matches!(r.stage, Stage::Coordination | Stage::LeadingGroup));
    if !party {
        return Err(SharingError::Forbidden("only the parties and the owner of the stage write in a request's record".into()));
    }
    if !r.status.is_open() {
        return Err(SharingError::State(format!("request {id} is {}; its record is closed", r.status.label_zh())));
    }
    let dept = actor.department_id.map(|d| d.0);
    let mid = add_message_in(s, change.tx(), ctx, id, r.stage, dept, &body).await?;
    audit(
        &mut change,
        shutong_audit::Action::RequestMessage,
        "sharing_request",
        id,
        dept.unwrap_or(r.provider_department_id),
        json!({"stage": r.stage, "message": mid}),
    )
    .await?;
    let to = if dept == Some(r.consumer_department_id) { r.owner_department_id } else { r.consumer_department_id };
    let msg = format!("{} 的申请有新的{}记录", r.resource_name, r.stage.label_zh());
    notify(change.tx(), to, "message", "sharing_request", id, &msg, None, &format!("message:{mid}:{to}"), s.clock.now_ms()).await?;
    let detail = detail_in(s, change.tx(), id).await?;
    change.commit().await?;
    Ok(detail)
}

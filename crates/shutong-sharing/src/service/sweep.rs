//! The deadline sweep (R-REQ-3): overdue steps, reminders, grant expiries; run as a job.

use super::*;

/// What one deadline sweep did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SweepReport {
    pub today: NaiveDate,
    /// Stages that became overdue (each is recorded once in the audit trail).
    pub overdue: usize,
    pub reminders: usize,
    pub grants_expiring: usize,
    pub grants_expired: usize,
}

/// 逾期与提醒 (R-REQ-3): finds open stages past their due date (told to the owner, the consumer and the
/// authority, and recorded once), reminds owners of deadlines within `reminder` working days, and tells
/// grant holders of expiries. Idempotent: each notice is written once. Platform administrators (and the
/// server's own schedule, as an operator) only.
pub async fn sweep(s: &Sharing, actor: &Principal) -> SharingResult<SweepReport> {
    if !actor.is_platform_admin() {
        return Err(SharingError::Forbidden("only platform administrators run the deadline sweep".into()));
    }
    let today = s.today();
    let now = s.clock.now_ms();
    let mut report = SweepReport { today, ..Default::default() };
    let open =
        sqlx::query(&format!("{REQUEST_SQL} WHERE q.status IN ('pending', 'negotiating', 'coordinating', 'leading_group') ORDER BY q.id"))
            .fetch_all(s.db.pool())
            .await?;
    let authorities: Vec<i64> = sqlx::query("SELECT id FROM departments WHERE kind = $1 ORDER BY id")
        .bind(DepartmentKind::SharingAuthority.as_str())
        .fetch_all(s.db.pool())
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ctx = AuditContext::system("deadline-sweep");
    for row in &open {
        let r = request_from_row(row, today)?;
        let stage = r.stage;
        if r.overdue {
            // Each overdue stage is its own change, recorded the first time only: a later sweep that finds
            // it again changes nothing and leaves no trace.
            let mut change = Change::begin(&s.db, &ctx).await?;
            let msg = format!("{} 对 {} 的{}已逾期（应于 {} 前办理）", r.owner_name, r.resource_name, stage.label_zh(), r.stage_due_on);
            let first = notify(
                change.tx(),
                r.owner_department_id,
                "overdue",
                "sharing_request",
                r.id,
                &msg,
                Some(r.stage_due_on),
                &format!("overdue:{}:{stage}:owner", r.id),
                now,
            )
            .await?;
            if first {
                notify(
                    change.tx(),
                    r.consumer_department_id,
                    "overdue",
                    "sharing_request",
                    r.id,
                    &msg,
                    Some(r.stage_due_on),
                    &format!("overdue:{}:{stage}:consumer", r.id),
                    now,
                )
                .await?;
                for a in &authorities {
                    if *a != r.owner_department_id {
                        notify(
                            change.tx(),
                            *a,
                            "overdue",
                            "sharing_request",
                            r.id,
                            &msg,
                            Some(r.stage_due_on),
                            &format!("overdue:{}:{stage}:authority:{a}", r.id),
                            now,
                        )
                        .await?;
                    }
                }
                audit(
                    &mut change,
                    shutong_audit::Action::RequestOverdue,
                    "sharing_request",
                    r.id,
                    r.owner_department_id,
                    json!({"stage": stage, "due_on": r.stage_due_on, "today": today}),
                )
                .await?;
                report.overdue += 1;
            }
            change.commit_if_recorded().await?;
        } else if s.deadlines.reminder > 0 && workdays_left(s, today, r.stage_due_on).is_some_and(|n| n <= s.deadlines.reminder) {
            let msg = format!("{} 的{}将于 {} 到期，请及时办理", r.resource_name, stage.label_zh(), r.stage_due_on);
            let mut conn = s.db.pool().acquire().await.map_err(StoreError::from)?;
            if notify(
                &mut conn,
                r.owner_department_id,
                "reminder",
                "sharing_request",
                r.id,
                &msg,
                Some(r.stage_due_on),
                &format!("reminder:{}:{stage}", r.id),
                now,
            )
            .await?
            {
                report.reminders += 1;
            }
        }
    }
    let horizon = today.checked_add_days(chrono::Days::new(s.deadlines.expiry_notice_days as u64)).unwrap_or(today);
    let grants = sqlx::query(&format!("{GRANT_SQL} WHERE g.status = 'active' AND g.valid_to <= $1 ORDER BY g.id"))
        .bind(horizon.to_string())
        .fetch_all(s.db.pool())
        .await?;
    let mut conn = s.db.pool().acquire().await.map_err(StoreError::from)?;
    for row in &grants {
        let g = grant_from_row(row, today)?;
        if g.state == GrantState::Expired {
            let msg = format!("{} 的授权 {} 已于 {} 到期，访问已停止", g.resource_name, g.id, g.valid_to);
            if notify(
                &mut conn,
                g.consumer_department_id,
                "grant_expired",
                "sharing_grant",
                g.id,
                &msg,
                Some(g.valid_to),
                &format!("expired:{}:{}", g.id, g.valid_to),
                now,
            )
            .await?
            {
                report.grants_expired += 1;
            }
        } else {
            let msg = format!("{} 的授权 {} 将于 {} 到期，如需继续使用请联系提供部门续期", g.resource_name, g.id, g.valid_to);
            if notify(
                &mut conn,
                g.consumer_department_id,
                "grant_expiring",
                "sharing_grant",
                g.id,
                &msg,
                Some(g.valid_to),
                &format!("expiring:{}:{}", g.id, g.valid_to),
                now,
            )
            .await?
            {
                notify(
                    &mut conn,
                    g.provider_department_id,
                    "grant_expiring",
                    "sharing_grant",
                    g.id,
                    &msg,
                    Some(g.valid_to),
                    &format!("expiring:{}:{}:provider", g.id, g.valid_to),
                    now,
                )
                .await?;
                report.grants_expiring += 1;
            }
        }
    }
    Ok(report)
}

//! The inbox (待办) and notices of a department's staff.

use super::*;

/// One thing waiting for the caller's department.
#[derive(Clone, Debug, Serialize)]
pub struct InboxItem {
    /// `answer` (待答复), `negotiation`, `coordination`, `leading_group` (待办理), `escalate` (refused: the
    /// consumer may escalate), `grant_expiring`, `overdue` (the authority's list).
    pub kind: String,
    pub title: String,
    pub request_id: Option<i64>,
    pub grant_id: Option<i64>,
    pub resource_code: String,
    pub resource_name: String,
    /// The other party.
    pub counterpart: String,
    pub due_on: Option<NaiveDate>,
    pub overdue: bool,
    /// Working days left until the due date (negative when overdue).
    pub workdays_left: Option<i64>,
}

/// 提醒: a notice to a department.
#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    pub id: i64,
    pub department_id: i64,
    /// request, subscribed, approved, rejected, withdrawn, escalation, message, reminder, overdue,
    /// grant_revoked, grant_renewed, grant_expiring, grant_expired.
    pub kind: String,
    pub target_kind: String,
    pub target_id: String,
    pub message: String,
    pub due_on: Option<NaiveDate>,
    pub created_at_ms: i64,
    pub read: bool,
}

/// What waits for the caller: its department's work with due dates, the authority's overdue list, and
/// unread notices.
#[derive(Clone, Debug, Serialize)]
pub struct Inbox {
    pub today: NaiveDate,
    pub waiting: Vec<InboxItem>,
    /// Every overdue open request (the authority and auditors only; empty for others).
    pub overdue: Vec<InboxItem>,
    pub notifications: Vec<Notification>,
    pub unread: i64,
}

/// The caller's inbox.
pub async fn inbox(s: &Sharing, actor: &Principal) -> SharingResult<Inbox> {
    let today = s.today();
    let mut waiting = Vec::new();
    let owned = list_requests(s, actor, &RequestFilter { side: Some(Side::Owner), limit: 1000, ..Default::default() }).await?;
    for r in owned.iter().rev() {
        if !p_in(actor, r.owner_department_id) {
            continue;
        }
        let kind = match r.stage {
            Stage::Answer => "answer",
            Stage::Negotiation => "negotiation",
            Stage::Coordination => "coordination",
            Stage::LeadingGroup => "leading_group",
        };
        let counterpart = if r.stage == Stage::Answer || r.stage == Stage::Negotiation { &r.consumer_name } else { &r.provider_name };
        waiting.push(inbox_item(s, today, kind, r, counterpart));
    }
    let refused = list_requests(
        s,
        actor,
        &RequestFilter { side: Some(Side::Consumer), status: Some(RequestStatus::Rejected), limit: 200, ..Default::default() },
    )
    .await?;
    for r in refused.iter().filter(|r| r.next_stage.is_some()) {
        waiting.push(inbox_item(s, today, "escalate", r, &r.provider_name));
    }
    let horizon = today.checked_add_days(chrono::Days::new(s.deadlines.expiry_notice_days as u64)).unwrap_or(today);
    let grants = list_grants(
        s,
        actor,
        &GrantFilter { side: Some(Side::Consumer), state: Some(GrantState::Active), limit: 1000, ..Default::default() },
    )
    .await?;
    for g in grants.iter().filter(|g| g.valid_to <= horizon && p_in(actor, g.consumer_department_id)) {
        waiting.push(InboxItem {
            kind: "grant_expiring".into(),
            title: format!("授权 {} 将于 {} 到期", g.id, g.valid_to),
            request_id: g.request_id,
            grant_id: Some(g.id),
            resource_code: g.resource_code.clone(),
            resource_name: g.resource_name.clone(),
            counterpart: g.provider_name.clone(),
            due_on: Some(g.valid_to),
            overdue: false,
            workdays_left: workdays_left(s, today, g.valid_to),
        });
    }
    waiting.sort_by_key(|i| (!i.overdue, i.due_on));
    let wide = sees_all(s, actor).await?;
    let overdue = if wide {
        list_requests(s, actor, &RequestFilter { overdue: true, limit: 1000, ..Default::default() })
            .await?
            .iter()
            .rev()
            .map(|r| inbox_item(s, today, "overdue", r, &r.consumer_name))
            .collect()
    } else {
        Vec::new()
    };
    let notifications = notifications(s, actor, 50).await?;
    let unread = inbox_unread(&s.db, actor).await?;
    Ok(Inbox { today, waiting, overdue, notifications, unread })
}

/// How many notices of the caller's department are unread.
pub async fn inbox_unread(db: &Db, actor: &Principal) -> SharingResult<i64> {
    let Some(d) = actor.department_id else { return Ok(0) };
    Ok(sqlx::query("SELECT COUNT(*) FROM notifications WHERE department_id = $1 AND read_at IS NULL")
        .bind(d.0)
        .fetch_one(db.pool())
        .await?
        .try_get(0)?)
}

/// The latest notices of the caller's department.
pub async fn notifications(s: &Sharing, actor: &Principal, limit: i64) -> SharingResult<Vec<Notification>> {
    let Some(d) = actor.department_id else { return Ok(Vec::new()) };
    let rows = sqlx::query(&format!(
        "SELECT id, department_id, kind, target_kind, target_id, message, due_on, created_at, read_at FROM notifications \
         WHERE department_id = $1 ORDER BY id DESC LIMIT {}",
        limit.clamp(1, 500)
    ))
    .bind(d.0)
    .fetch_all(s.db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Notification {
                id: r.try_get("id")?,
                department_id: r.try_get("department_id")?,
                kind: r.try_get("kind")?,
                target_kind: r.try_get("target_kind")?,
                target_id: r.try_get("target_id")?,
                message: r.try_get("message")?,
                due_on: shutong_store::parse_optional_date_column(r, "notifications", "due_on")?,
                created_at_ms: r.try_get("created_at")?,
                read: r.try_get::<Option<i64>, _>("read_at")?.is_some(),
            })
        })
        .collect()
}

/// Marks the caller's department's notices read (all, or those up to an ID). Returns how many.
pub async fn mark_read(s: &Sharing, actor: &Principal, up_to: Option<NotificationId>) -> SharingResult<u64> {
    let Some(d) = actor.department_id else { return Ok(0) };
    let done = sqlx::query("UPDATE notifications SET read_at = $1 WHERE department_id = $2 AND read_at IS NULL AND id <= $3")
        .bind(s.clock.now_ms())
        .bind(d.0)
        .bind(up_to.map_or(i64::MAX, |n| n.0))
        .execute(s.db.pool())
        .await?;
    Ok(done.rows_affected())
}

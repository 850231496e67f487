//! Change events (R-CAT-7, 办法 第九条): a catalog update due within 15 working days.

use super::*;

/// 目录更新事件: a change that obliges a department to update its catalog within 15 working days.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeEvent {
    pub id: i64,
    pub department_id: i64,
    pub department_name: String,
    /// `law_revised` (法律法规修订) or `functions_changed` (行政管理职能变化).
    pub kind: String,
    pub description: String,
    pub occurred_on: NaiveDate,
    /// The 15th working day after the change.
    pub due_on: NaiveDate,
    pub overdue: bool,
    pub resolved_at_ms: Option<i64>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

/// The working days a department has to update its catalog after a change (办法 第九条).
pub const UPDATE_DEADLINE_WORKDAYS: i64 = 15;

/// Input of [`record_change_event`].
#[derive(Clone, Copy, Debug)]
pub struct NewChangeEvent<'a> {
    pub department: DepartmentId,
    /// `law_revised` or `functions_changed`.
    pub kind: &'a str,
    pub description: &'a str,
    pub occurred_on: NaiveDate,
}

/// Records a change event for a department; the deadline is 15 working days by the official calendar.
pub async fn record_change_event(
    db: &Db,
    clock: &Clock,
    calendar: &WorkCalendar,
    actor: &Principal,
    ctx: &AuditContext,
    new: NewChangeEvent<'_>,
) -> CatalogResult<ChangeEvent> {
    let NewChangeEvent { department, kind, description, occurred_on } = new;
    let authority = is_authority(db, actor).await?;
    if !may_edit(actor, department, authority) && !actor.has_role_in(Role::DepartmentAdmin, department) {
        return Err(CatalogError::Forbidden("change events are recorded by the department itself or the authority".into()));
    }
    if !matches!(kind, "law_revised" | "functions_changed") {
        return Err(invalid("kind", format!("'{kind}' is not law_revised or functions_changed")));
    }
    let description = description.trim();
    if description.is_empty() || description.chars().count() > 2000 {
        return Err(invalid("description", "must be 1 to 2000 characters"));
    }
    let today = clock.today();
    if occurred_on > today {
        return Err(invalid("occurred_on", format!("{occurred_on} is in the future")));
    }
    let (due, _) = calendar.add_workdays(occurred_on, UPDATE_DEADLINE_WORKDAYS).map_err(|e| invalid("occurred_on", e.to_string()))?;
    let mut change = Change::begin(db, ctx).await?;
    let dept_name: String = sqlx::query("SELECT name FROM departments WHERE id = $1")
        .bind(department.0)
        .fetch_optional(&mut **change.tx())
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| invalid("department_id", format!("department {department} does not exist")))?;
    let id: i64 = sqlx::query(
        "INSERT INTO catalog_change_events (department_id, kind, description, occurred_on, due_on, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(department.0)
    .bind(kind)
    .bind(description)
    .bind(occurred_on.to_string())
    .bind(due.to_string())
    .bind(now_ms())
    .bind(&ctx.actor)
    .fetch_one(&mut **change.tx())
    .await?
    .try_get(0)?;
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::CatalogChangeEvent,
            target_kind: "catalog_change_event",
            target_id: id.to_string(),
            department_id: Some(department.0),
            detail: json!({"kind": kind, "occurred_on": occurred_on, "due_on": due}),
        })
        .await?;
    change.commit().await?;
    Ok(ChangeEvent {
        id,
        department_id: department.0,
        department_name: dept_name,
        kind: kind.into(),
        description: description.into(),
        occurred_on,
        due_on: due,
        overdue: due < today,
        resolved_at_ms: None,
        resolved_by: None,
        resolution: None,
    })
}

/// Change events, optionally only the open ones past their deadline (the overdue list).
pub async fn list_change_events(
    db: &Db,
    clock: &Clock,
    department: Option<DepartmentId>,
    overdue_only: bool,
) -> CatalogResult<Vec<ChangeEvent>> {
    let today = clock.today();
    let rows = sqlx::query(
        "SELECT e.id, e.department_id, d.name AS department_name, e.kind, e.description, e.occurred_on, e.due_on, e.resolved_at, e.resolved_by, e.resolution \
         FROM catalog_change_events e JOIN departments d ON d.id = e.department_id \
         WHERE ($1 IS NULL OR e.department_id = $1) AND ($2 = 0 OR (e.resolved_at IS NULL AND e.due_on < $3)) ORDER BY e.due_on, e.id",
    )
    .bind(department.map(|d| d.0))
    .bind(overdue_only as i64)
    .bind(today.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let date = |c: &str| -> CatalogResult<NaiveDate> {
                let s: String = r.try_get(c)?;
                NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| CatalogError::State(format!("stored date unreadable: {e}")))
            };
            let resolved_at_ms: Option<i64> = r.try_get("resolved_at")?;
            let due_on = date("due_on")?;
            Ok(ChangeEvent {
                id: r.try_get("id")?,
                department_id: r.try_get("department_id")?,
                department_name: r.try_get("department_name")?,
                kind: r.try_get("kind")?,
                description: r.try_get("description")?,
                occurred_on: date("occurred_on")?,
                due_on,
                overdue: resolved_at_ms.is_none() && due_on < today,
                resolved_at_ms,
                resolved_by: r.try_get("resolved_by")?,
                resolution: r.try_get("resolution")?,
            })
        })
        .collect()
}

#![doc = include_str!("../README.md")]

use serde_json::json;
use shutong_audit::{AuditContext, Change, NewAuditEvent};
use shutong_identity::Principal;
use shutong_reference::calendar::YearSchedule;
use shutong_reference::{RegionCode, RegionEntry, RegionTable, WorkCalendar};
use shutong_store::effects::Notice;
use shutong_store::{Db, Row, StoreError, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum RefDataError {
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RefDataError {
    fn from(e: sqlx::Error) -> Self {
        RefDataError::Store(e.into())
    }
}

/// The shipped calendar with every imported year applied.
pub async fn load_calendar(db: &Db) -> Result<WorkCalendar, RefDataError> {
    let mut cal = WorkCalendar::builtin();
    let rows = sqlx::query("SELECT year, schedule FROM calendar_years ORDER BY year").fetch_all(db.pool()).await?;
    for r in rows {
        let text: String = r.try_get("schedule")?;
        // Stored schedules were validated on import; a row that no longer parses is skipped, not fatal.
        if let Ok(s) = YearSchedule::from_json(&text) {
            cal.import_year(&s);
        }
    }
    Ok(cal)
}

/// 导入节假日安排: stores one year's official schedule (holiday-cn JSON) and returns it parsed.
pub async fn import_calendar_year(db: &Db, actor: &Principal, ctx: &AuditContext, json_text: &str) -> Result<YearSchedule, RefDataError> {
    if !actor.is_platform_admin() {
        return Err(RefDataError::Forbidden("only a platform administrator may import a working-day schedule"));
    }
    let schedule =
        YearSchedule::from_json(json_text).map_err(|e| RefDataError::Validation { field: "schedule".into(), message: e.to_string() })?;
    let canonical =
        serde_json::to_string(&schedule).map_err(|e| RefDataError::Validation { field: "schedule".into(), message: e.to_string() })?;
    let mut change = Change::begin(db, ctx).await?;
    sqlx::query(
        "INSERT INTO calendar_years (year, schedule, imported_at, imported_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (year) DO UPDATE SET schedule = $2, imported_at = $3, imported_by = $4",
    )
    .bind(schedule.year as i64)
    .bind(&canonical)
    .bind(now_ms())
    .bind(&ctx.actor)
    .execute(&mut **change.tx())
    .await?;
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::CalendarImportYear,
            target_kind: "calendar_year",
            target_id: schedule.year.to_string(),
            department_id: None,
            detail: json!({"year": schedule.year, "days": schedule.days.len(), "papers": schedule.papers}),
        })
        .await?;
    change.notify(Notice::ReferenceDataChanged);
    change.commit().await?;
    Ok(schedule)
}

/// The shipped region table with administrators' updates applied.
pub async fn load_regions(db: &Db) -> Result<RegionTable, RefDataError> {
    let mut table = RegionTable::builtin();
    let rows = sqlx::query("SELECT entry FROM region_overrides ORDER BY code").fetch_all(db.pool()).await?;
    for r in rows {
        let text: String = r.try_get("entry")?;
        if let Ok(e) = serde_json::from_str::<RegionEntry>(&text) {
            table.upsert(e);
        }
    }
    Ok(table)
}

/// 行政区划代码调整: adds or changes one GB/T 2260 entry (the yearly revision).
pub async fn upsert_region(db: &Db, actor: &Principal, ctx: &AuditContext, mut entry: RegionEntry) -> Result<RegionEntry, RefDataError> {
    if !actor.is_platform_admin() {
        return Err(RefDataError::Forbidden("only a platform administrator may change the region table"));
    }
    let invalid = |field: &str, message: String| RefDataError::Validation { field: field.into(), message };
    let code = RegionCode::parse(&entry.code).map_err(|e| invalid("code", e.to_string()))?;
    entry.code = code.to_string();
    entry.level = code.level();
    entry.name = entry.name.trim().to_string();
    if entry.name.is_empty() || entry.name.chars().count() > 100 {
        return Err(invalid("name", "must be 1 to 100 characters".into()));
    }
    if let Some(p) = &entry.parent {
        let parent = RegionCode::parse(p).map_err(|e| invalid("parent", e.to_string()))?;
        if parent.as_str()[..2] != code.as_str()[..2] || parent == code {
            return Err(invalid("parent", format!("{parent} cannot be the parent of {code}")));
        }
    }
    if let (Some(f), Some(t)) = (entry.valid_from, entry.valid_to)
        && t < f
    {
        return Err(invalid("valid_to", format!("{t} is before valid_from {f}")));
    }
    let text = serde_json::to_string(&entry).map_err(|e| invalid("entry", e.to_string()))?;
    let mut change = Change::begin(db, ctx).await?;
    sqlx::query("INSERT INTO region_overrides (code, entry, updated_at) VALUES ($1, $2, $3) ON CONFLICT (code) DO UPDATE SET entry = $2, updated_at = $3")
        .bind(&entry.code)
        .bind(&text)
        .bind(now_ms())
        .execute(&mut **change.tx())
        .await?;
    change
        .record(NewAuditEvent {
            action: shutong_audit::Action::RegionUpsert,
            target_kind: "region",
            target_id: entry.code.clone(),
            department_id: None,
            detail: serde_json::to_value(&entry).unwrap_or_default(),
        })
        .await?;
    change.notify(Notice::ReferenceDataChanged);
    change.commit().await?;
    Ok(entry)
}

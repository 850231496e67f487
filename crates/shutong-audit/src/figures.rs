//! 审计统计 (办法 第二十一条, 全程留痕; 江苏方案 三(二)3 的统计): events per day and action, for the portal's
//! charts (audit events per day, data accesses per day by method). Read under the same rule as the trail:
//! platform administrators and auditors count the whole trail, anyone else their own department's events.

use crate::{Action, AuditError, AuditReader, AuditResult};
use chrono::NaiveDate;
use shutong_store::{Db, Row};

/// Events of one action on one China day (UTC+8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayCount {
    pub day: NaiveDate,
    pub action: Action,
    pub events: i64,
}

const DAY_MS: i64 = 86_400_000;
const CHINA_OFFSET_MS: i64 = 8 * 3_600_000;

fn epoch_day(d: NaiveDate) -> i64 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days()
}

/// The department whose events `reader` counts: none for those who read the whole trail.
fn scope(reader: &dyn AuditReader) -> AuditResult<Option<i64>> {
    if reader.reads_whole_trail() {
        return Ok(None);
    }
    reader
        .own_department()
        .map(Some)
        .ok_or_else(|| AuditError::Forbidden("only platform administrators, auditors and a department's staff count audit events".into()))
}

/// The times (ms) from the start of the first to the end of the last of `days` China days ending with `last_day`.
fn window(last_day: NaiveDate, days: u32) -> (i64, i64) {
    let days = i64::from(days.clamp(1, 366));
    let end = (epoch_day(last_day) + 1) * DAY_MS - CHINA_OFFSET_MS;
    (end - days * DAY_MS, end)
}

/// The events on the `days` China days ending with `last_day`, per day and action; days and actions without
/// events are left out. Codes the release does not know are skipped.
pub async fn events_per_day(db: &Db, reader: &dyn AuditReader, last_day: NaiveDate, days: u32) -> AuditResult<Vec<DayCount>> {
    let department = scope(reader)?;
    let (start, end) = window(last_day, days);
    let sql = format!(
        "SELECT (at + {CHINA_OFFSET_MS}) / {DAY_MS} AS d, action, COUNT(*) AS n FROM audit_events \
         WHERE at >= $1 AND at < $2 AND ($3 IS NULL OR department_id = $3) GROUP BY (at + {CHINA_OFFSET_MS}) / {DAY_MS}, action \
         ORDER BY d, action"
    );
    let rows = sqlx::query(&sql).bind(start).bind(end).bind(department).fetch_all(db.pool()).await.map_err(AuditError::db)?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let mut out = Vec::new();
    for r in rows {
        let d: i64 = r.try_get("d").map_err(AuditError::db)?;
        let code: String = r.try_get("action").map_err(AuditError::db)?;
        let events: i64 = r.try_get("n").map_err(AuditError::db)?;
        let (Some(action), Some(day)) = (Action::parse(&code), epoch.checked_add_days(chrono::Days::new(d.max(0) as u64))) else {
            continue;
        };
        out.push(DayCount { day, action, events });
    }
    Ok(out)
}

/// The data plane's reads (共享方式 as used): lookups, queries, exports, change feeds, service calls, files.
pub const DATA_ACCESSES: [Action; 6] =
    [Action::DataLookup, Action::DataQuery, Action::DataExport, Action::DataChanges, Action::DataProxy, Action::DataFileDownload];

/// How often one resource's data was read in a period (消费最多的资源).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceCount {
    pub resource_code: String,
    pub accesses: i64,
}

/// The `limit` resources whose data was read most on the `days` China days ending with `last_day`, under the
/// trail's reading rule (a department's staff count their own department's reads).
pub async fn top_resources(
    db: &Db,
    reader: &dyn AuditReader,
    last_day: NaiveDate,
    days: u32,
    limit: i64,
) -> AuditResult<Vec<ResourceCount>> {
    let department = scope(reader)?;
    let (start, end) = window(last_day, days);
    let actions = DATA_ACCESSES.iter().map(|a| format!("'{}'", a.code())).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT target_id, COUNT(*) AS n FROM audit_events WHERE at >= $1 AND at < $2 AND ($3 IS NULL OR department_id = $3) \
         AND target_kind = 'resource' AND action IN ({actions}) GROUP BY target_id ORDER BY COUNT(*) DESC, target_id LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(start)
        .bind(end)
        .bind(department)
        .bind(limit.clamp(1, 100))
        .fetch_all(db.pool())
        .await
        .map_err(AuditError::db)?;
    rows.iter()
        .map(|r| {
            Ok(ResourceCount {
                resource_code: r.try_get("target_id").map_err(AuditError::db)?,
                accesses: r.try_get("n").map_err(AuditError::db)?,
            })
        })
        .collect()
}

//! The working-day calendar (工作日历).

use axum::extract::{Path, Query, State};
use bytes::Bytes;
use chrono::NaiveDate;
use serde::Deserialize;
use shutong_api_types::*;
use shutong_reference::{DayKind, DaySource};

use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;
use crate::state::AppState;

fn source(s: DaySource) -> String {
    match s {
        DaySource::Official => "official".into(),
        DaySource::WeekdayFallback => "weekday_fallback".into(),
    }
}

fn parse_date(field: &str, s: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|e| ApiError::validation(field, format!("{field}: '{s}' is not a date YYYY-MM-DD ({e})")))
}

/// Is a date a working day (statutory holidays and adjusted working days applied)?
#[utoipa::path(get, path = "/api/v1/calendar/workdays/{date}", tag = "calendar", params(("date" = String, Path, description = "YYYY-MM-DD")),
    responses((status = 200, body = WorkdayView), (status = 422, body = ErrorEnvelope)))]
pub async fn is_workday(State(state): State<AppState>, Path(date): Path<String>) -> ApiResult<axum::Json<WorkdayView>> {
    let date = parse_date("date", &date)?;
    let cal = state.calendar();
    let (workday, src) = cal.is_workday(date);
    let listed = cal.day_name(date);
    Ok(axum::Json(WorkdayView {
        date,
        workday,
        source: source(src),
        name: listed.map(|(_, n)| n.to_string()),
        kind: listed.map(|(k, _)| if *k == DayKind::Off { "off".into() } else { "work".into() }),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AddQuery {
    /// YYYY-MM-DD.
    pub from: String,
    /// How many working days, 0–100000.
    pub n: i64,
}

/// The N-th working day after a date ("within N working days of D"; counting starts the day after D).
#[utoipa::path(get, path = "/api/v1/calendar/add-workdays", tag = "calendar", params(AddQuery),
    responses((status = 200, body = AddWorkdaysView), (status = 422, body = ErrorEnvelope)))]
pub async fn add_workdays(State(state): State<AppState>, Query(q): Query<AddQuery>) -> ApiResult<axum::Json<AddWorkdaysView>> {
    let from = parse_date("from", &q.from)?;
    let (date, src) = state.calendar().add_workdays(from, q.n).map_err(|e| ApiError::validation("n", format!("n: {e}")))?;
    Ok(axum::Json(AddWorkdaysView { from, workdays: q.n, date, source: source(src) }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BetweenQuery {
    pub from: String,
    pub to: String,
}

/// Working days d with from < d ≤ to.
#[utoipa::path(get, path = "/api/v1/calendar/between", tag = "calendar", params(BetweenQuery),
    responses((status = 200, body = BetweenView), (status = 422, body = ErrorEnvelope)))]
pub async fn between(State(state): State<AppState>, Query(q): Query<BetweenQuery>) -> ApiResult<axum::Json<BetweenView>> {
    let from = parse_date("from", &q.from)?;
    let to = parse_date("to", &q.to)?;
    let (workdays, src) = state.calendar().workdays_between(from, to).map_err(|e| ApiError::validation("to", format!("to: {e}")))?;
    Ok(axum::Json(BetweenView { from, to, workdays, source: source(src) }))
}

/// The years whose official schedule the platform knows.
#[utoipa::path(get, path = "/api/v1/calendar/years", tag = "calendar", responses((status = 200, body = CalendarYears)))]
pub async fn list_years(State(state): State<AppState>) -> axum::Json<CalendarYears> {
    axum::Json(CalendarYears { years: state.calendar().known_years().collect() })
}

/// The listed days (holidays and adjusted working days) of one year.
#[utoipa::path(get, path = "/api/v1/calendar/years/{year}", tag = "calendar", params(("year" = i32, Path)),
    responses((status = 200, body = CalendarYearView)))]
pub async fn get_year(State(state): State<AppState>, Path(year): Path<i32>) -> axum::Json<CalendarYearView> {
    let cal = state.calendar();
    let days = cal
        .listed_days(year)
        .into_iter()
        .map(|d| ListedDayView { date: d.date, kind: if d.kind == DayKind::Off { "off".into() } else { "work".into() }, name: d.name })
        .collect();
    axum::Json(CalendarYearView { year, known: cal.is_known_year(year), days })
}

/// Imports (or replaces) a year's official schedule, in holiday-cn's JSON form
/// (`{"year": 2027, "papers": [...], "days": [{"name": "元旦", "date": "2027-01-01", "isOffDay": true}]}`).
#[utoipa::path(put, path = "/api/v1/calendar/years/{year}", tag = "calendar", security(("bearer" = [])), params(("year" = i32, Path)),
    request_body(content = String, content_type = "application/json", description = "holiday-cn JSON of one year"),
    responses((status = 200, body = CalendarYearView), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn import_year(
    State(state): State<AppState>,
    caller: Caller,
    Path(year): Path<i32>,
    body: Bytes,
) -> ApiResult<axum::Json<CalendarYearView>> {
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the schedule must be UTF-8 JSON"))?;
    // The path and the document must agree before anything is stored.
    if let Ok(doc) = shutong_reference::YearSchedule::from_json(text)
        && doc.year != year
    {
        return Err(ApiError::validation("year", format!("year: the document is for {}, the path says {year}", doc.year)));
    }
    shutong_refdata::import_calendar_year(&state.db, &caller.principal, &caller.ctx(), text).await?;
    Ok(get_year(State(state), Path(year)).await)
}

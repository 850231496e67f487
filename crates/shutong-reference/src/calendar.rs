//! 工作日历: the PRC working-day calendar. Statutory holidays (法定节假日) and adjusted working days
//! (调休上班) come from data (`data/holidays-cn.tsv`, 2007–2026) and can be extended at run time with
//! a year's schedule in holiday-cn's JSON form. Every deadline of the regulations counts these days:
//! 答复 within 10 working days (办法 第十六条), catalog updates within 15 (第九条).

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The schedule shipped with shutong.
pub const BUILTIN_HOLIDAYS_TSV: &str = include_str!("../../../data/holidays-cn.tsv");

/// What the official schedule says of a listed day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// 法定节假日: a statutory holiday (a rest day even on a weekday).
    Off,
    /// 调休上班: an adjusted working day (a working day even on a weekend).
    Work,
}

/// Where an answer came from: the official schedule of that year, or the Monday–Friday fallback for a
/// year whose schedule the platform does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaySource {
    Official,
    WeekdayFallback,
}

/// A day listed in a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedDay {
    pub date: NaiveDate,
    pub kind: DayKind,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("invalid schedule JSON: {0}")]
    Json(String),
    #[error("field '{field}': {reason}")]
    Field { field: String, reason: String },
    #[error("the count of working days must be between 0 and 100000, got {0}")]
    Count(i64),
    #[error("date out of range")]
    Range,
}

/// 工作日历: working days by the official schedule of each known year, Monday–Friday otherwise.
#[derive(Clone, Debug, Default)]
pub struct WorkCalendar {
    days: BTreeMap<NaiveDate, (DayKind, String)>,
    years: BTreeSet<i32>,
}

/// One year's schedule in holiday-cn's JSON form (`{year, papers, days: [{name, date, isOffDay}]}`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct YearSchedule {
    pub year: i32,
    #[serde(default)]
    pub papers: Vec<String>,
    pub days: Vec<ScheduleDay>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ScheduleDay {
    pub name: String,
    pub date: NaiveDate,
    #[serde(rename = "isOffDay")]
    pub is_off_day: bool,
}

impl YearSchedule {
    /// Parses and checks a schedule: every date within the year or the neighbouring December/January.
    pub fn from_json(text: &str) -> Result<Self, CalendarError> {
        let s: YearSchedule = serde_json::from_str(text).map_err(|e| CalendarError::Json(e.to_string()))?;
        if !(1949..=2200).contains(&s.year) {
            return Err(CalendarError::Field { field: "year".into(), reason: format!("{} is out of range", s.year) });
        }
        for (i, d) in s.days.iter().enumerate() {
            if (d.date.year() - s.year).abs() > 1 {
                return Err(CalendarError::Field {
                    field: format!("days[{i}].date"),
                    reason: format!("{} is not in or next to {}", d.date, s.year),
                });
            }
        }
        Ok(s)
    }
}

impl WorkCalendar {
    /// The calendar shipped with shutong (2007–2026).
    pub fn builtin() -> Self {
        Self::from_tsv(BUILTIN_HOLIDAYS_TSV).unwrap_or_default()
    }

    /// Reads the project's TSV form: `#year<TAB>YYYY` rows and `YYYY-MM-DD<TAB>off|work<TAB>name` rows.
    pub fn from_tsv(text: &str) -> Result<Self, CalendarError> {
        let mut cal = WorkCalendar::default();
        for (i, line) in text.lines().enumerate() {
            let err = |reason: String| CalendarError::Line { line: i + 1, reason };
            let cols: Vec<&str> = line.split('\t').collect();
            if cols[0] == "#year" {
                let y = cols.get(1).and_then(|y| y.parse().ok()).ok_or_else(|| err("bad #year row".into()))?;
                cal.years.insert(y);
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if cols.len() < 3 {
                return Err(err(format!("expected 3 columns, found {}", cols.len())));
            }
            let date = NaiveDate::parse_from_str(cols[0], "%Y-%m-%d").map_err(|e| err(format!("date '{}': {e}", cols[0])))?;
            let kind = match cols[1] {
                "off" => DayKind::Off,
                "work" => DayKind::Work,
                other => return Err(err(format!("kind '{other}' is not off or work"))),
            };
            cal.days.insert(date, (kind, cols[2].to_string()));
        }
        Ok(cal)
    }

    /// Adds (or replaces) one year's official schedule. Days of that year listed before are dropped first,
    /// so a corrected schedule replaces the old one.
    pub fn import_year(&mut self, schedule: &YearSchedule) {
        let year = schedule.year;
        self.days.retain(|d, _| d.year() != year);
        for d in &schedule.days {
            let kind = if d.is_off_day { DayKind::Off } else { DayKind::Work };
            self.days.insert(d.date, (kind, d.name.clone()));
        }
        self.years.insert(year);
    }

    /// The years whose official schedule is known.
    pub fn known_years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.iter().copied()
    }

    pub fn is_known_year(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// Is `date` a working day, and by which source.
    pub fn is_workday(&self, date: NaiveDate) -> (bool, DaySource) {
        let weekday = !matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        if !self.years.contains(&date.year()) {
            return (weekday, DaySource::WeekdayFallback);
        }
        let work = match self.days.get(&date) {
            Some((DayKind::Off, _)) => false,
            Some((DayKind::Work, _)) => true,
            None => weekday,
        };
        (work, DaySource::Official)
    }

    /// The holiday or adjusted-day name of a listed day.
    pub fn day_name(&self, date: NaiveDate) -> Option<(&DayKind, &str)> {
        self.days.get(&date).map(|(k, n)| (k, n.as_str()))
    }

    /// "Within N working days of D": the N-th working day after D, counting from the day after D.
    /// N = 0 gives D itself. The source is `WeekdayFallback` if any day counted lay in an unknown year.
    pub fn add_workdays(&self, from: NaiveDate, n: i64) -> Result<(NaiveDate, DaySource), CalendarError> {
        if !(0..=100_000).contains(&n) {
            return Err(CalendarError::Count(n));
        }
        let mut source = DaySource::Official;
        let mut date = from;
        let mut left = n;
        while left > 0 {
            date = date.checked_add_signed(Duration::days(1)).ok_or(CalendarError::Range)?;
            let (work, s) = self.is_workday(date);
            if s == DaySource::WeekdayFallback {
                source = s;
            }
            if work {
                left -= 1;
            }
        }
        Ok((date, source))
    }

    /// Working days d with `from < d <= to` (so that `between(d, add_workdays(d, n)) == n`); negative if
    /// `to` is before `from`.
    pub fn workdays_between(&self, from: NaiveDate, to: NaiveDate) -> Result<(i64, DaySource), CalendarError> {
        if (to - from).num_days().abs() > 400_000 {
            return Err(CalendarError::Range);
        }
        let (lo, hi, sign) = if from <= to { (from, to, 1) } else { (to, from, -1) };
        let mut source = DaySource::Official;
        let mut count = 0;
        let mut d = lo;
        while d < hi {
            d = d.succ_opt().ok_or(CalendarError::Range)?;
            let (work, s) = self.is_workday(d);
            if s == DaySource::WeekdayFallback {
                source = s;
            }
            count += work as i64;
        }
        Ok((sign * count, source))
    }

    /// The listed days of one year.
    pub fn listed_days(&self, year: i32) -> Vec<ListedDay> {
        self.days.iter().filter(|(d, _)| d.year() == year).map(|(d, (k, n))| ListedDay { date: *d, kind: *k, name: n.clone() }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn builtin_covers_2007_to_2026() {
        let c = WorkCalendar::builtin();
        assert_eq!(c.known_years().collect::<Vec<_>>(), (2007..=2026).collect::<Vec<_>>());
    }

    #[test]
    fn national_day_2026() {
        let c = WorkCalendar::builtin();
        assert_eq!(c.is_workday(d("2026-10-01")), (false, DaySource::Official));
        assert_eq!(c.is_workday(d("2026-10-10")), (true, DaySource::Official)); // Saturday, 调休上班
        assert_eq!(c.is_workday(d("2026-09-25")), (false, DaySource::Official)); // 中秋, a Friday
        // A request submitted on 2026-09-28 must be answered by the 10th working day after it:
        // 9-29, 9-30, 10-8, 10-9, 10-10 (Sat, adjusted), 10-12, 10-13, 10-14, 10-15, 10-16.
        assert_eq!(c.add_workdays(d("2026-09-28"), 10).unwrap(), (d("2026-10-16"), DaySource::Official));
        assert_eq!(c.workdays_between(d("2026-09-28"), d("2026-10-16")).unwrap(), (10, DaySource::Official));
    }

    #[test]
    fn spring_festival_2025_and_fallback() {
        let c = WorkCalendar::builtin();
        assert!(!c.is_workday(d("2025-01-29")).0);
        assert!(c.is_workday(d("2025-01-26")).0); // Sunday, adjusted working day
        assert_eq!(c.is_workday(d("2030-10-01")), (true, DaySource::WeekdayFallback));
        assert_eq!(c.add_workdays(d("2026-12-30"), 3).unwrap().1, DaySource::WeekdayFallback);
    }

    #[test]
    fn import_a_year() {
        let mut c = WorkCalendar::builtin();
        let s =
            YearSchedule::from_json(r#"{"year":2027,"papers":[],"days":[{"name":"元旦","date":"2027-01-01","isOffDay":true}]}"#).unwrap();
        c.import_year(&s);
        assert_eq!(c.is_workday(d("2027-01-01")), (false, DaySource::Official));
        assert!(YearSchedule::from_json(r#"{"year":2027,"days":[{"name":"x","date":"2030-01-01","isOffDay":true}]}"#).is_err());
        assert!(YearSchedule::from_json("{").is_err());
    }

    proptest! {
        #[test]
        fn between_inverts_add(days in 0i64..7000, n in 0i64..60) {
            let c = WorkCalendar::builtin();
            let from = d("2007-01-01") + Duration::days(days);
            let (to, _) = c.add_workdays(from, n).unwrap();
            prop_assert_eq!(c.workdays_between(from, to).unwrap().0, n);
            prop_assert!(n == 0 || c.is_workday(to).0);
        }
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn schedule_parsing_never_panics(s in "\\PC{0,80}") {
            let _ = YearSchedule::from_json(&s);
            let _ = WorkCalendar::from_tsv(&s);
        }

        #[test]
        fn arithmetic_never_panics(days in -800_000i64..800_000, n in prop_oneof![-10i64..3000, 100_001i64..200_000]) {
            let c = WorkCalendar::builtin();
            let from = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + Duration::days(days % 100_000);
            let _ = c.add_workdays(from, n);
            let _ = c.workdays_between(from, from + Duration::days(days % 1000));
        }
    }
}

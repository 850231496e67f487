//! Per-provider figures: answers on time, late, refused (办法 第二十三条's evaluation reads them).

use super::*;

/// A provider's answering record (第二十五条(三): counted against the provider).
#[derive(Clone, Debug, Serialize)]
pub struct ProviderFigures {
    pub department_id: i64,
    pub department_name: String,
    /// Applications received (subscriptions excluded).
    pub received: i64,
    pub approved: i64,
    pub rejected: i64,
    pub withdrawn: i64,
    /// Still waiting for the provider's answer.
    pub pending: i64,
    /// Waiting past the due date now.
    pub overdue_now: i64,
    pub answered_on_time: i64,
    pub answered_late: i64,
    /// Subscriptions (无条件共享) served.
    pub subscriptions: i64,
    /// Requests in escalation (协商, 协调, 领导小组) now.
    pub in_escalation: i64,
    /// Grants in force today.
    pub grants_in_force: i64,
}

/// Sharing figures for the whole platform (or one department), per provider.
#[derive(Clone, Debug, Serialize)]
pub struct SharingStats {
    pub today: NaiveDate,
    pub providers: Vec<ProviderFigures>,
    pub totals: ProviderFigures,
    /// The on-time record month by month (the twelve months ending with this one), by due month.
    pub months: Vec<MonthFigures>,
}

/// 按时答复 over time: the applications due in one month, answered on time or late (late includes those
/// still unanswered past their due date).
#[derive(Clone, Debug, Serialize)]
pub struct MonthFigures {
    /// `YYYY-MM`.
    pub month: String,
    pub answered_on_time: i64,
    pub answered_late: i64,
}

/// The twelve `YYYY-MM` months ending with `today`'s.
fn last_months(today: NaiveDate) -> Vec<String> {
    use chrono::Datelike;
    let (mut y, mut m) = (today.year(), today.month());
    let mut out = Vec::with_capacity(12);
    for _ in 0..12 {
        out.push(format!("{y:04}-{m:02}"));
        if m == 1 {
            (y, m) = (y - 1, 12);
        } else {
            m -= 1;
        }
    }
    out.reverse();
    out
}

/// Per-provider figures. The authority and auditors see every provider; others their own department.
pub async fn stats(s: &Sharing, actor: &Principal) -> SharingResult<SharingStats> {
    let wide = sees_all(s, actor).await?;
    let today = s.today().to_string();
    let rows = sqlx::query(
        "SELECT q.provider_department_id AS d, \
           SUM(CASE WHEN q.kind <> 'subscription' THEN 1 ELSE 0 END) AS received, \
           SUM(CASE WHEN q.kind <> 'subscription' AND q.status = 'approved' THEN 1 ELSE 0 END) AS approved, \
           SUM(CASE WHEN q.status = 'rejected' THEN 1 ELSE 0 END) AS rejected, \
           SUM(CASE WHEN q.status = 'withdrawn' THEN 1 ELSE 0 END) AS withdrawn, \
           SUM(CASE WHEN q.status = 'pending' THEN 1 ELSE 0 END) AS pending, \
           SUM(CASE WHEN q.status = 'pending' AND q.stage_due_on < $1 THEN 1 ELSE 0 END) AS overdue_now, \
           SUM(CASE WHEN q.kind = 'application' AND q.answered_on IS NOT NULL AND q.answered_on <= q.due_on THEN 1 ELSE 0 END) AS on_time, \
           SUM(CASE WHEN q.kind = 'application' AND ((q.answered_on IS NOT NULL AND q.answered_on > q.due_on) OR (q.answered_on IS NULL AND q.status <> 'withdrawn' AND q.due_on < $1)) THEN 1 ELSE 0 END) AS late, \
           SUM(CASE WHEN q.kind = 'subscription' THEN 1 ELSE 0 END) AS subscriptions, \
           SUM(CASE WHEN q.status IN ('negotiating', 'coordinating', 'leading_group') THEN 1 ELSE 0 END) AS escalation \
         FROM sharing_requests q GROUP BY q.provider_department_id",
    )
    .bind(&today)
    .fetch_all(s.db.pool())
    .await?;
    let grants = sqlx::query(
        "SELECT provider_department_id AS d, COUNT(*) AS n FROM sharing_grants WHERE status = 'active' AND valid_from <= $1 AND valid_to >= $1 GROUP BY provider_department_id",
    )
    .bind(&today)
    .fetch_all(s.db.pool())
    .await?;
    let names = sqlx::query("SELECT id, name FROM departments").fetch_all(s.db.pool()).await?;
    let name_of = |d: i64| names.iter().find(|r| r.get::<i64, _>(0) == d).map(|r| r.get::<String, _>(1)).unwrap_or_default();
    let n = |r: &AnyRow, c: &str| -> i64 { r.try_get::<Option<i64>, _>(c).ok().flatten().unwrap_or(0) };
    let blank = |d: i64, name: String| ProviderFigures {
        department_id: d,
        department_name: name,
        received: 0,
        approved: 0,
        rejected: 0,
        withdrawn: 0,
        pending: 0,
        overdue_now: 0,
        answered_on_time: 0,
        answered_late: 0,
        subscriptions: 0,
        in_escalation: 0,
        grants_in_force: 0,
    };
    let mut providers: Vec<ProviderFigures> = Vec::new();
    for r in &rows {
        let d: i64 = r.try_get("d")?;
        let mut f = blank(d, name_of(d));
        f.received = n(r, "received");
        f.approved = n(r, "approved");
        f.rejected = n(r, "rejected");
        f.withdrawn = n(r, "withdrawn");
        f.pending = n(r, "pending");
        f.overdue_now = n(r, "overdue_now");
        f.answered_on_time = n(r, "on_time");
        f.answered_late = n(r, "late");
        f.subscriptions = n(r, "subscriptions");
        f.in_escalation = n(r, "escalation");
        providers.push(f);
    }
    for r in &grants {
        let d: i64 = r.try_get("d")?;
        let count = n(r, "n");
        match providers.iter_mut().find(|f| f.department_id == d) {
            Some(f) => f.grants_in_force = count,
            None => {
                let mut f = blank(d, name_of(d));
                f.grants_in_force = count;
                providers.push(f);
            }
        }
    }
    if !wide {
        providers.retain(|f| p_in(actor, f.department_id));
    }
    providers.sort_by(|a, b| {
        b.overdue_now.cmp(&a.overdue_now).then(b.answered_late.cmp(&a.answered_late)).then(a.department_id.cmp(&b.department_id))
    });
    let mut totals = blank(0, "合计".into());
    for f in &providers {
        totals.received += f.received;
        totals.approved += f.approved;
        totals.rejected += f.rejected;
        totals.withdrawn += f.withdrawn;
        totals.pending += f.pending;
        totals.overdue_now += f.overdue_now;
        totals.answered_on_time += f.answered_on_time;
        totals.answered_late += f.answered_late;
        totals.subscriptions += f.subscriptions;
        totals.in_escalation += f.in_escalation;
        totals.grants_in_force += f.grants_in_force;
    }
    let months = months(s, actor, wide).await?;
    Ok(SharingStats { today: s.today(), providers, totals, months })
}

/// The on-time record per due month over the last twelve months, for the providers the actor may see.
async fn months(s: &Sharing, actor: &Principal, wide: bool) -> SharingResult<Vec<MonthFigures>> {
    let list = match (wide, departments_sql(actor)) {
        (true, _) => "NULL".to_string(),
        (false, Some(l)) => l,
        (false, None) => return Ok(Vec::new()),
    };
    let day = s.today();
    let today = day.to_string();
    let wanted = last_months(day);
    let first = format!("{}-01", wanted[0]);
    let provider = if list == "NULL" { String::new() } else { format!(" AND q.provider_department_id IN ({list})") };
    let sql = format!(
        "SELECT SUBSTR(q.due_on, 1, 7) AS m, \
           SUM(CASE WHEN q.answered_on IS NOT NULL AND q.answered_on <= q.due_on THEN 1 ELSE 0 END) AS on_time, \
           SUM(CASE WHEN (q.answered_on IS NOT NULL AND q.answered_on > q.due_on) OR (q.answered_on IS NULL AND q.status <> 'withdrawn' AND q.due_on < $1) THEN 1 ELSE 0 END) AS late \
         FROM sharing_requests q WHERE q.kind = 'application' AND q.due_on >= $2 AND q.due_on <= $1{provider} GROUP BY SUBSTR(q.due_on, 1, 7)"
    );
    let rows = sqlx::query(&sql).bind(&today).bind(&first).fetch_all(s.db.pool()).await?;
    let n = |r: &AnyRow, c: &str| -> i64 { r.try_get::<Option<i64>, _>(c).ok().flatten().unwrap_or(0) };
    let mut out: Vec<MonthFigures> =
        wanted.into_iter().map(|month| MonthFigures { month, answered_on_time: 0, answered_late: 0 }).collect();
    for r in &rows {
        let m: String = r.try_get("m")?;
        if let Some(f) = out.iter_mut().find(|f| f.month == m) {
            f.answered_on_time = n(r, "on_time");
            f.answered_late = n(r, "late");
        }
    }
    Ok(out)
}

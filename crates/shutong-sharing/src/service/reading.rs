//! Reading requests: one with its steps and messages, and lists by side, status, stage and deadline.

use super::*;

/// A request with its steps, messages and grant, for its parties, the owner of its stage, the authority
/// and auditors (404 for anyone else).
pub async fn get_request(s: &Sharing, actor: &Principal, id: RequestId) -> SharingResult<RequestDetail> {
    let RequestId(id) = id;
    let mut tx = s.db.pool().begin().await?;
    request_for_change(s, &mut tx, actor, id).await?;
    let d = detail_in(s, &mut tx, id).await?;
    tx.rollback().await?;
    Ok(d)
}

/// Filter of [`list_requests`].
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    /// Whose side: the caller's department as consumer, as provider, as the owner of the stage, or all the
    /// caller may see.
    pub side: Option<Side>,
    pub status: Option<RequestStatus>,
    pub stage: Option<Stage>,
    pub kind: Option<RequestKind>,
    pub resource_code: Option<String>,
    /// Only open requests past their stage's due date.
    pub overdue: bool,
    /// Only requests with this department as a party.
    pub department: Option<DepartmentId>,
    /// Requests with an ID below this (pages run newest first).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Requests the principal may see, newest first: its department's as consumer, provider or owner of a stage;
/// every request for the authority and auditors.
pub async fn list_requests(s: &Sharing, actor: &Principal, f: &RequestFilter) -> SharingResult<Vec<RequestView>> {
    let wide = sees_all(s, actor).await?;
    let Some(list) = departments_sql(actor).or_else(|| wide.then(|| "NULL".to_string())) else {
        // Neither wide nor in any department: nothing to see.
        return Ok(Vec::new());
    };
    let mut sql = format!("{REQUEST_SQL} WHERE 1 = 1");
    let mut binds: Vec<String> = Vec::new();
    let side_sql = |col: &str| format!(" AND q.{col} IN ({list})");
    match f.side {
        Some(Side::Consumer) => sql.push_str(&side_sql("consumer_department_id")),
        Some(Side::Provider) => sql.push_str(&side_sql("provider_department_id")),
        Some(Side::Owner) => sql.push_str(&format!(
            "{} AND q.status IN ('pending', 'negotiating', 'coordinating', 'leading_group')",
            side_sql("owner_department_id")
        )),
        None if !wide => sql.push_str(&format!(
            " AND (q.consumer_department_id IN ({list}) OR q.provider_department_id IN ({list}) OR q.owner_department_id IN ({list}))"
        )),
        None => {}
    }
    let mut n = 0;
    let mut push = |sql: &mut String, clause: &str, v: String| {
        n += 1;
        sql.push_str(&clause.replace("?", &format!("${n}")));
        binds.push(v);
    };
    if let Some(st) = f.status {
        push(&mut sql, " AND q.status = ?", st.as_str().into());
    }
    if let Some(st) = f.stage {
        push(&mut sql, " AND q.stage = ?", st.as_str().into());
    }
    if let Some(k) = f.kind {
        push(&mut sql, " AND q.kind = ?", k.as_str().into());
    }
    if let Some(c) = &f.resource_code {
        push(&mut sql, " AND q.resource_code = ?", c.clone());
    }
    if f.overdue {
        push(
            &mut sql,
            " AND q.status IN ('pending', 'negotiating', 'coordinating', 'leading_group') AND q.stage_due_on < ?",
            s.today().to_string(),
        );
    }
    if let Some(d) = f.department {
        sql.push_str(&format!(" AND (q.consumer_department_id = {0} OR q.provider_department_id = {0})", d.0));
    }
    if let Some(b) = f.before {
        sql.push_str(&format!(" AND q.id < {b}"));
    }
    sql.push_str(&format!(" ORDER BY q.id DESC LIMIT {}", f.limit.clamp(1, 1000)));
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(s.db.pool()).await?;
    let today = s.today();
    rows.iter().map(|r| request_from_row(r, today)).collect()
}

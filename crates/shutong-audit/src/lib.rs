#![doc = include_str!("../README.md")]

use serde::Serialize;
use shutong_store::{AnyConnection, Db, Row, StoreResult, now_ms};

/// Who caused a state change, and through which request: copied onto every audit event.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditContext {
    /// The acting user, if the actor is a user (not the platform itself or a CLI operator).
    pub actor_user_id: Option<i64>,
    /// A readable label: the username, `cli:<os-user>`, or `system`.
    pub actor: String,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

impl AuditContext {
    /// The platform acting on its own (start-up, bootstrap, demo seeding).
    pub fn system(label: &str) -> Self {
        AuditContext { actor: label.to_string(), ..Default::default() }
    }
}

/// 审计事件: one event to record.
#[derive(Clone, Debug)]
pub struct NewAuditEvent<'a> {
    pub action: &'a str,
    pub target_kind: &'a str,
    pub target_id: String,
    pub department_id: Option<i64>,
    pub detail: serde_json::Value,
}

/// 审计事件: a recorded event.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at_ms: i64,
    pub actor_user_id: Option<i64>,
    pub actor: String,
    pub department_id: Option<i64>,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub detail: serde_json::Value,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

/// Writes one event inside the caller's transaction and returns its sequence number.
pub async fn record(conn: &mut AnyConnection, ctx: &AuditContext, event: NewAuditEvent<'_>) -> StoreResult<i64> {
    let row = sqlx::query(
        "INSERT INTO audit_events (at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq",
    )
    .bind(now_ms())
    .bind(ctx.actor_user_id)
    .bind(&ctx.actor)
    .bind(event.department_id)
    .bind(event.action)
    .bind(event.target_kind)
    .bind(&event.target_id)
    .bind(event.detail.to_string())
    .bind(&ctx.request_id)
    .bind(&ctx.ip)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<i64, _>(0)?)
}

/// Writes many events inside the caller's transaction (a bulk operation records one event per thing it
/// changes), in multi-row statements.
pub async fn record_many(conn: &mut AnyConnection, ctx: &AuditContext, events: &[NewAuditEvent<'_>]) -> StoreResult<()> {
    let at_ms = now_ms();
    let stamped: Vec<StampedEvent<'_>> = events.iter().map(|event| StampedEvent { at_ms, ctx, event: event.clone() }).collect();
    record_stamped(conn, &stamped).await
}

/// An event with its own time and actor: events gathered from many requests and written together (the
/// data plane's access log).
#[derive(Clone, Debug)]
pub struct StampedEvent<'a> {
    pub at_ms: i64,
    pub ctx: &'a AuditContext,
    pub event: NewAuditEvent<'a>,
}

/// Writes events, each with its own time and actor, inside the caller's transaction, in multi-row
/// statements. Small statements: SQLite binds parameters in time that grows faster than their number.
pub async fn record_stamped(conn: &mut AnyConnection, events: &[StampedEvent<'_>]) -> StoreResult<()> {
    const ROWS: usize = 64;
    for chunk in events.chunks(ROWS) {
        let mut sql = String::from(
            "INSERT INTO audit_events (at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let b = i * 10;
            sql.push('(');
            sql.push_str(&(1..=10).map(|k| format!("${}", b + k)).collect::<Vec<_>>().join(","));
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for StampedEvent { at_ms, ctx, event: e } in chunk {
            q = q
                .bind(*at_ms)
                .bind(ctx.actor_user_id)
                .bind(&ctx.actor)
                .bind(e.department_id)
                .bind(e.action)
                .bind(e.target_kind)
                .bind(&e.target_id)
                .bind(e.detail.to_string())
                .bind(&ctx.request_id)
                .bind(&ctx.ip);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A filter over the trail; all fields optional.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub department_id: Option<i64>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only events with a sequence number below this (cursor for the next page).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// Lists events, newest first.
pub async fn list(db: &Db, f: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
    let rows = sqlx::query(
        "SELECT seq, at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip \
         FROM audit_events \
         WHERE ($1 IS NULL OR department_id = $1) AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR actor = $3) \
           AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5) AND ($6 IS NULL OR seq < $6) \
         ORDER BY seq DESC LIMIT $7",
    )
    .bind(f.department_id)
    .bind(f.action.as_deref())
    .bind(f.actor.as_deref())
    .bind(f.from_ms)
    .bind(f.to_ms)
    .bind(f.before_seq)
    .bind(f.limit.clamp(1, 1000))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Every event about one target, oldest first (a resource's history).
pub async fn list_for_target(db: &Db, target_kind: &str, target_id: &str) -> StoreResult<Vec<AuditEvent>> {
    let rows = sqlx::query(
        "SELECT seq, at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip \
         FROM audit_events WHERE target_kind = $1 AND target_id = $2 ORDER BY seq LIMIT 10000",
    )
    .bind(target_kind)
    .bind(target_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Counts all events.
pub async fn count(db: &Db) -> StoreResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) FROM audit_events").fetch_one(db.pool()).await?;
    Ok(row.try_get::<i64, _>(0)?)
}

fn from_row(r: &shutong_store::AnyRowRef) -> StoreResult<AuditEvent> {
    let detail: String = r.try_get("detail")?;
    Ok(AuditEvent {
        seq: r.try_get("seq")?,
        at_ms: r.try_get("at")?,
        actor_user_id: r.try_get("actor_user_id")?,
        actor: r.try_get("actor")?,
        department_id: r.try_get("department_id")?,
        action: r.try_get("action")?,
        target_kind: r.try_get("target_kind")?,
        target_id: r.try_get("target_id")?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        request_id: r.try_get("request_id")?,
        ip: r.try_get("ip")?,
    })
}

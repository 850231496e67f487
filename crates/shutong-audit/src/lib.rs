#![doc = include_str!("../README.md")]

pub mod action;
pub use action::Action;

use serde::Serialize;
use shutong_store::{AnyConnection, Db, Row, StoreError, StoreResult, now_ms};

pub mod archive;
pub mod batch;
pub mod chain;
pub mod change;
pub mod export;
pub mod figures;
pub mod labels;
pub mod outbox;
mod read;
pub mod seal;
pub mod verify;

pub use archive::{ArchiveRecord, Archived, archive, list_archives};
pub use batch::{BatchWriter, GROUP_COMMIT_EVENTS, PreparedEvents};
pub use change::Change;
pub use export::{ExportSigner, ExportSummary, export, export_to, resolve_range};
pub use seal::{ChainStatus, Checkpoint, SealOptions, SealReport, seal, status};
pub use shutong_store::effects::Notice;
pub use verify::{Failure, VerifyReport, verify_db, verify_file, verify_recorded};

/// Errors of the chain's sealing, verification, export and archiving.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored chain itself is damaged where it cannot be read (not a verification failure).
    #[error("audit chain damaged: {0}")]
    Corrupt(String),
    /// A range outside the chain; `field` is the parameter at fault.
    #[error("{message}")]
    Range { field: &'static str, message: String },
    /// Bad input: a file.
    #[error("{0}")]
    Invalid(String),
    /// The reader may not read these events (403).
    #[error("{0}")]
    Forbidden(String),
    #[error("i/o: {0}")]
    Io(#[source] std::io::Error),
}

impl AuditError {
    pub(crate) fn db(e: sqlx::Error) -> Self {
        AuditError::Store(StoreError::from(e))
    }
}

pub type AuditResult<T> = Result<T, AuditError>;

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
    pub action: Action,
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
    /// Position in the hash chain, once sealed.
    pub chain_seq: Option<i64>,
    pub chain_hash: Option<String>,
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
    .bind(event.action.code())
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

/// Writes events, each with its own time and actor, inside the caller's transaction. A few go in
/// multi-row statements; many go as one JSON array per statement, unpacked by the database
/// (`json_to_recordset`, `json_each`): one parameter instead of ten per event (the data plane's access log
/// writes thousands at a time).
pub async fn record_stamped(conn: &mut AnyConnection, events: &[StampedEvent<'_>]) -> StoreResult<()> {
    if events.len() > 32 {
        return record_as_json(conn, events).await;
    }
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
                .bind(e.action.code())
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

#[derive(Serialize)]
struct JsonRow<'a> {
    at: i64,
    actor_user_id: Option<i64>,
    actor: &'a str,
    department_id: Option<i64>,
    action: &'a str,
    target_kind: &'a str,
    target_id: &'a str,
    detail: String,
    request_id: Option<&'a str>,
    ip: Option<&'a str>,
}

async fn record_as_json(conn: &mut AnyConnection, events: &[StampedEvent<'_>]) -> StoreResult<()> {
    let postgres = conn.backend_name().eq_ignore_ascii_case("postgresql");
    let sql = if postgres {
        "INSERT INTO audit_events (at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip) \
         SELECT x.at, x.actor_user_id, x.actor, x.department_id, x.action, x.target_kind, x.target_id, x.detail, x.request_id, x.ip \
         FROM json_to_recordset($1::json) AS x(at bigint, actor_user_id bigint, actor text, department_id bigint, action text, \
              target_kind text, target_id text, detail text, request_id text, ip text)"
    } else {
        "INSERT INTO audit_events (at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip) \
         SELECT value ->> 'at', value ->> 'actor_user_id', value ->> 'actor', value ->> 'department_id', value ->> 'action', \
                value ->> 'target_kind', value ->> 'target_id', value ->> 'detail', value ->> 'request_id', value ->> 'ip' \
         FROM json_each($1) ORDER BY key"
    };
    for chunk in events.chunks(4096) {
        let rows: Vec<JsonRow<'_>> = chunk
            .iter()
            .map(|StampedEvent { at_ms, ctx, event: e }| JsonRow {
                at: *at_ms,
                actor_user_id: ctx.actor_user_id,
                actor: &ctx.actor,
                department_id: e.department_id,
                action: e.action.code(),
                target_kind: e.target_kind,
                target_id: &e.target_id,
                detail: e.detail.to_string(),
                request_id: ctx.request_id.as_deref(),
                ip: ctx.ip.as_deref(),
            })
            .collect();
        let json = serde_json::to_string(&rows).map_err(|e| StoreError::Other(sqlx::Error::Encode(Box::new(e))))?;
        sqlx::query(sql).bind(json).execute(&mut *conn).await?;
    }
    Ok(())
}

/// A filter over the trail; all fields optional.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub department_id: Option<i64>,
    pub action: Option<String>,
    pub actor: Option<String>,
    /// What the event is about, e.g. `catalog_resource` / `data` and a resource code.
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only events with a sequence number below this (cursor for the next page).
    pub before_seq: Option<i64>,
    /// Only events whose detail contains this text (an access-log subject's audit token). Matched with
    /// LIKE: callers pass text without `%`, `_`, a backslash or a double quote.
    pub detail_contains: Option<String>,
    /// Only data accesses that delivered sensitive items in clear text (明文访问敏感数据: the access log's
    /// `clear` list, written only when it is not empty).
    pub clear_text: bool,
    pub limit: i64,
}

/// 审计日志的读者: who asks to read the trail (the identity crate's `Principal` is one).
pub trait AuditReader: Send + Sync {
    /// Reads the whole trail: platform administrators and auditors (审计机关, 办法 第二十一条).
    fn reads_whole_trail(&self) -> bool;
    /// The department whose own events the reader may read otherwise (a department's staff).
    fn own_department(&self) -> Option<i64>;
}

/// The events `f` selects, newest first, for `reader`: platform administrators and auditors read the whole
/// trail; anyone else only the events of their own department (`f.department_id` set to it).
pub async fn list(db: &Db, reader: &dyn AuditReader, f: &AuditFilter) -> AuditResult<Vec<AuditEvent>> {
    let own = reader.own_department().is_some() && reader.own_department() == f.department_id;
    if !reader.reads_whole_trail() && !own {
        return Err(AuditError::Forbidden(
            "only platform administrators and auditors read the audit trail; others read their own department's events".into(),
        ));
    }
    Ok(select_events(db, f).await?)
}

/// Lists events, newest first.
async fn select_events(db: &Db, f: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
    let rows = sqlx::query(
        "SELECT seq, at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip, chain_seq, chain_hash \
         FROM audit_events \
         WHERE ($1 IS NULL OR department_id = $1) AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR actor = $3) \
           AND ($4 IS NULL OR at >= $4) AND ($5 IS NULL OR at < $5) AND ($6 IS NULL OR seq < $6) \
           AND ($8 IS NULL OR target_kind = $8) AND ($9 IS NULL OR target_id = $9) \
           AND ($10 IS NULL OR detail LIKE $10) AND ($11 = 0 OR detail LIKE '%\"clear\":[\"%') \
         ORDER BY seq DESC LIMIT $7",
    )
    .bind(f.department_id)
    .bind(f.action.as_deref())
    .bind(f.actor.as_deref())
    .bind(f.from_ms)
    .bind(f.to_ms)
    .bind(f.before_seq)
    .bind(f.limit.clamp(1, 1000))
    .bind(f.target_kind.as_deref())
    .bind(f.target_id.as_deref())
    .bind(f.detail_contains.as_deref().map(|t| format!("%{t}%")))
    .bind(i64::from(f.clear_text))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Every event about one target, oldest first (a resource's history).
pub async fn list_for_target(db: &Db, target_kind: &str, target_id: &str) -> StoreResult<Vec<AuditEvent>> {
    let rows = sqlx::query(
        "SELECT seq, at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip, chain_seq, chain_hash \
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
        chain_seq: r.try_get("chain_seq")?,
        chain_hash: r.try_get("chain_hash")?,
    })
}

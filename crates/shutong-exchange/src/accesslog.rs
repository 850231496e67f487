//! The access log: every data access becomes an audit event (consumer, grant, purpose, items, record count),
//! written in batches by one background writer so that auditing does not cap throughput. Nothing is
//! dropped: callers wait when the queue is full, and a failed write is retried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shutong_audit::{AuditContext, NewAuditEvent, StampedEvent};
use shutong_store::Db;
use tokio::sync::{mpsc, oneshot};

/// One data access.
#[derive(Clone, Debug)]
pub struct AccessEvent {
    pub at_ms: i64,
    /// Who accessed, through which request.
    pub ctx: AuditContext,
    pub department_id: i64,
    /// `data.lookup`, `data.query`, `data.export`, `data.changes`, `data.proxy`, `data.exemption`, `data.file`.
    pub action: shutong_audit::Action,
    pub resource_code: String,
    pub grant_id: Option<i64>,
    pub purpose: String,
    pub items: Arc<Vec<String>>,
    /// The sensitive items among `items` delivered in clear text (see `Access::clear_sensitive`).
    pub clear: Vec<String>,
    pub records: i64,
    /// What else identifies the access: the key looked up, the conditions, the format.
    pub extra: serde_json::Value,
    /// Counted towards the grant's daily quota on this day.
    pub quota_day: Option<String>,
}

enum Msg {
    Event(Box<AccessEvent>),
    Flush(oneshot::Sender<()>),
}

/// The handle callers record accesses through.
#[derive(Clone)]
pub struct AccessLog {
    tx: mpsc::Sender<Msg>,
}

impl AccessLog {
    /// Starts the writer: events go to `audit_events` in `db`; quota usage to `exchange_usage` in `pool`.
    pub fn start(db: Db, pool: Db) -> AccessLog {
        let (tx, rx) = mpsc::channel(65_536);
        tokio::spawn(writer(db, pool, rx));
        AccessLog { tx }
    }

    pub async fn record(&self, e: AccessEvent) {
        if self.tx.send(Msg::Event(Box::new(e))).await.is_err() {
            tracing::error!("the access log writer has stopped");
        }
    }

    /// Waits until everything recorded so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// A group of accesses on its way to the database: the events prepared, the quota usage they add up to,
/// and the callers waiting for everything up to here to be written.
struct Group {
    events: shutong_audit::PreparedEvents,
    usage: Vec<((i64, String), (i64, i64))>,
    waiters: Vec<oneshot::Sender<()>>,
}

/// The shortest time between two groups. Each group is a transaction of its own (on PostgreSQL: the chain
/// head locked and read, positions reserved, a COPY, a commit waiting for its WAL to reach the disk), whatever
/// its size. Cut as soon as the previous group was handed on, groups under a lookup load held about 50
/// events, 265 commits a second, and the database's work for them took a sixth of both cores
/// (`shutong-bench exchange`, PostgreSQL, N = 1M, 13k lookups/s). Accesses are answered before they are
/// written either way; this only bounds how often the log commits.
const GROUP_PERIOD: Duration = Duration::from_millis(20);

/// Two stages, so that preparing a group (its details' JSON text) runs while the group before it is
/// written: the collector gathers up to [`shutong_audit::GROUP_COMMIT_EVENTS`] events and prepares them;
/// the writer writes each group in order, retrying until it is written, then its quota usage, then
/// wakes the group's waiters.
async fn writer(db: Db, pool: Db, mut rx: mpsc::Receiver<Msg>) {
    let (groups_tx, groups_rx) = mpsc::channel::<Group>(1);
    let write_stage = tokio::spawn(write_groups(db, pool, groups_rx));
    let mut events: Vec<AccessEvent> = Vec::with_capacity(1024);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut last_cut: Option<tokio::time::Instant> = None;
    while let Some(first) = rx.recv().await {
        let mut push = |m: Msg, events: &mut Vec<AccessEvent>| match m {
            Msg::Event(e) => events.push(*e),
            Msg::Flush(w) => waiters.push(w),
        };
        push(first, &mut events);
        // Under load, a group gathers at least GROUP_PERIOD of traffic; an access after a quiet spell is
        // written at once.
        if let Some(at) = last_cut
            && at.elapsed() < GROUP_PERIOD
        {
            tokio::time::sleep_until(at + GROUP_PERIOD).await;
        }
        last_cut = Some(tokio::time::Instant::now());
        while events.len() < shutong_audit::GROUP_COMMIT_EVENTS {
            match rx.try_recv() {
                Ok(m) => push(m, &mut events),
                Err(_) => break,
            }
        }
        let group = Group { events: prepare(&events), usage: usage(&events), waiters: std::mem::take(&mut waiters) };
        events.clear();
        if groups_tx.send(group).await.is_err() {
            tracing::error!("the access log's write stage has stopped");
            return;
        }
    }
    drop(groups_tx);
    let _ = write_stage.await;
}

async fn write_groups(db: Db, pool: Db, mut groups: mpsc::Receiver<Group>) {
    let mut audit = shutong_audit::BatchWriter::new(db);
    while let Some(group) = groups.recv().await {
        let mut delay = RETRY_FIRST;
        while let Err(e) = audit.write_prepared(&group.events).await {
            tracing::warn!(error = %e, pending = group.events.len(), "writing the access log failed; retrying");
            delay = back_off(delay).await;
        }
        for ((grant, day), (records, calls)) in &group.usage {
            let mut delay = RETRY_FIRST;
            while let Err(e) = add_usage(&pool, *grant, day, *records, *calls).await {
                tracing::warn!(error = %e, grant, "counting quota usage failed; retrying");
                delay = back_off(delay).await;
            }
        }
        for w in group.waiters {
            let _ = w.send(());
        }
    }
}

/// Failed writes are retried, waiting longer after each failure (up to 5 s): accepted accesses are never
/// dropped.
const RETRY_FIRST: Duration = Duration::from_millis(100);

async fn back_off(delay: Duration) -> Duration {
    tokio::time::sleep(delay).await;
    (delay * 2).min(Duration::from_secs(5))
}

fn prepare(events: &[AccessEvent]) -> shutong_audit::PreparedEvents {
    let stamped: Vec<StampedEvent<'_>> = events
        .iter()
        .map(|e| StampedEvent {
            at_ms: e.at_ms,
            ctx: &e.ctx,
            event: NewAuditEvent {
                action: e.action,
                target_kind: "resource",
                target_id: e.resource_code.clone(),
                department_id: Some(e.department_id),
                detail: if e.clear.is_empty() {
                    json!({"grant": e.grant_id, "purpose": e.purpose, "items": *e.items, "records": e.records, "access": e.extra})
                } else {
                    json!({
                        "grant": e.grant_id, "purpose": e.purpose, "items": *e.items, "clear": e.clear, "records": e.records,
                        "access": e.extra,
                    })
                },
            },
        })
        .collect();
    shutong_audit::PreparedEvents::new(&stamped)
}

/// Records and calls per grant and day.
fn usage(events: &[AccessEvent]) -> Vec<((i64, String), (i64, i64))> {
    let mut usage: HashMap<(i64, &str), (i64, i64)> = HashMap::new();
    for e in events {
        if let (Some(g), Some(day)) = (e.grant_id, e.quota_day.as_deref()) {
            let u = usage.entry((g, day)).or_default();
            u.0 += e.records;
            u.1 += 1;
        }
    }
    usage.into_iter().map(|((g, day), v)| ((g, day.to_string()), v)).collect()
}

async fn add_usage(pool: &Db, grant: i64, day: &str, records: i64, calls: i64) -> Result<(), shutong_store::StoreError> {
    sqlx::query(
        "INSERT INTO exchange_usage (grant_id, day, records, calls) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (grant_id, day) DO UPDATE SET records = exchange_usage.records + excluded.records, calls = exchange_usage.calls + excluded.calls",
    )
    .bind(grant)
    .bind(day)
    .bind(records)
    .bind(calls)
    .execute(pool.pool())
    .await?;
    Ok(())
}

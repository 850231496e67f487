//! Reading the sealed chain fast, in chain order, in batches: through each backend's native driver (a
//! read-only rusqlite connection on a blocking thread; a PostgreSQL connection of its own), because
//! verification must keep up with millions of events.

use shutong_store::{Db, Row};
use tokio::sync::mpsc;

use crate::chain::{EventRef, Links, parse_hash};
use crate::{AuditError, AuditResult};

pub type Batch = Links;

const BATCH: usize = 16_384;

const SELECT: &str = "SELECT chain_seq, seq, at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip, chain_hash \
     FROM audit_events WHERE chain_seq > $1 AND chain_seq <= $2 ORDER BY chain_seq";

/// A stored hash that is missing or not hex reads as all zeros: it cannot equal an SM3 output, so the
/// verifier names that event as not matching (a damaged hash is tampering like any other).
const UNREADABLE: [u8; 32] = [0u8; 32];

/// Sealed events at positions `after + 1 ..= through`, in chain order, in batches.
pub async fn sealed_batches(db: &Db, after: i64, through: i64) -> AuditResult<mpsc::Receiver<AuditResult<Batch>>> {
    let (tx, rx) = mpsc::channel(4);
    if let Some(path) = db.sqlite_path() {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = read_sqlite(&path, after, through, &tx) {
                let _ = tx.blocking_send(Err(AuditError::Corrupt(format!("reading the audit trail: {e}"))));
            }
        });
    } else if let Some(mut conn) = db.pg_connection().await? {
        tokio::spawn(async move {
            let rows = sqlx::query(SELECT).bind(after).bind(through).fetch(&mut conn);
            forward(rows, pg_event, &tx).await;
        });
    } else {
        // An in-memory SQLite database: through the pool.
        let db = db.clone();
        tokio::spawn(async move {
            let rows = sqlx::query(SELECT).bind(after).bind(through).fetch(db.pool());
            let map = |r: &shutong_store::AnyRow, links: &mut Links| {
                crate::verify::event_from_row(r).map(|(ev, h)| links.push(ev.as_ref(), parse_hash(&h).unwrap_or(UNREADABLE)))
            };
            forward(rows, map, &tx).await;
        });
    }
    Ok(rx)
}

/// Batches a stream of rows into `tx`; stops at the first error (sent on) or when the receiver goes away.
async fn forward<R, S, F>(mut rows: S, map: F, tx: &mpsc::Sender<AuditResult<Batch>>)
where
    S: futures_util::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    F: Fn(&R, &mut Links) -> AuditResult<()>,
{
    use futures_util::TryStreamExt;
    let mut batch = Links::with_capacity(BATCH);
    loop {
        let item = match rows.try_next().await {
            Ok(Some(r)) => map(&r, &mut batch),
            Ok(None) => break,
            Err(e) => Err(AuditError::db(e)),
        };
        if let Err(e) = item {
            let _ = tx.send(Err(e)).await;
            return;
        }
        if batch.len() == BATCH && tx.send(Ok(std::mem::replace(&mut batch, Links::with_capacity(BATCH)))).await.is_err() {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(Ok(batch)).await;
    }
}

fn pg_event(r: &sqlx::postgres::PgRow, links: &mut Links) -> AuditResult<()> {
    let g = |e: sqlx::Error| AuditError::db(e);
    let ev = EventRef {
        chain_seq: r.try_get(0).map_err(g)?,
        seq: r.try_get(1).map_err(g)?,
        at_ms: r.try_get(2).map_err(g)?,
        actor_user_id: r.try_get(3).map_err(g)?,
        actor: r.try_get(4).map_err(g)?,
        department_id: r.try_get(5).map_err(g)?,
        action: r.try_get(6).map_err(g)?,
        target_kind: r.try_get(7).map_err(g)?,
        target_id: r.try_get(8).map_err(g)?,
        detail: r.try_get(9).map_err(g)?,
        request_id: r.try_get(10).map_err(g)?,
        ip: r.try_get(11).map_err(g)?,
    };
    let h: Option<&str> = r.try_get(12).map_err(g)?;
    links.push(ev, h.and_then(parse_hash).unwrap_or(UNREADABLE));
    Ok(())
}

fn read_sqlite(path: &std::path::Path, after: i64, through: i64, tx: &mpsc::Sender<AuditResult<Batch>>) -> rusqlite::Result<()> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut stmt = conn.prepare(&SELECT.replace("$1", "?1").replace("$2", "?2"))?;
    let mut rows = stmt.query([after, through])?;
    let mut batch = Links::with_capacity(BATCH);
    while let Some(r) = rows.next()? {
        let text = |i: usize| -> rusqlite::Result<&str> {
            r.get_ref(i)?.as_str().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
        };
        let opt_text = |i: usize| -> rusqlite::Result<Option<&str>> {
            r.get_ref(i)?
                .as_str_or_null()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
        };
        let ev = EventRef {
            chain_seq: r.get(0)?,
            seq: r.get(1)?,
            at_ms: r.get(2)?,
            actor_user_id: r.get(3)?,
            actor: text(4)?,
            department_id: r.get(5)?,
            action: text(6)?,
            target_kind: text(7)?,
            target_id: text(8)?,
            detail: text(9)?,
            request_id: opt_text(10)?,
            ip: opt_text(11)?,
        };
        let h = opt_text(12).ok().flatten().and_then(parse_hash).unwrap_or(UNREADABLE);
        batch.push(ev, h);
        if batch.len() == BATCH && tx.blocking_send(Ok(std::mem::replace(&mut batch, Links::with_capacity(BATCH)))).is_err() {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
    Ok(())
}

//! Reading the sealed chain fast, in chain order, in batches: through each backend's native driver (a
//! read-only rusqlite connection on a blocking thread; a PostgreSQL connection of its own), because
//! verification must keep up with millions of events.

use shutong_store::Db;
use tokio::sync::mpsc;

use crate::chain::{Links, RawEventRef, parse_hash, parse_hash_bytes};
use crate::{AuditError, AuditResult};

pub type Batch = Links;

const BATCH: usize = 16_384;

const SELECT: &str = "SELECT chain_seq, seq, at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip, chain_hash \
     FROM audit_events WHERE chain_seq > $1 AND chain_seq <= $2 ORDER BY chain_seq";

/// A stored hash that is missing or not hex reads as all zeros: it cannot equal an SM3 output, so the
/// verifier names that event as not matching (a damaged hash is tampering like any other).
const UNREADABLE: [u8; 32] = [0u8; 32];

/// Positions per segment: each reader query covers one segment, and each segment is one batch.
const SEGMENT: i64 = BATCH as i64;

/// Readers working at once, each on every `READERS`-th segment with a connection of its own: the database
/// produces rows on one core per reader (PostgreSQL: one backend each), and the segments are handed on
/// in chain order.
const READERS: usize = 2;

/// Sealed events at positions `after + 1 ..= through`, in chain order, in batches.
pub async fn sealed_batches(db: &Db, after: i64, through: i64) -> AuditResult<mpsc::Receiver<AuditResult<Batch>>> {
    let (tx, rx) = mpsc::channel(4);
    let segments = if through > after { (through - after + SEGMENT - 1) / SEGMENT } else { 0 };
    let segment = move |i: i64| (after + i * SEGMENT, (after + (i + 1) * SEGMENT).min(through));
    if let Some(path) = db.sqlite_path() {
        let mut parts = Vec::with_capacity(READERS);
        for w in 0..READERS {
            let (ptx, prx) = mpsc::channel(2);
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = read_sqlite(&path, (w as i64..segments).step_by(READERS).map(segment), &ptx) {
                    let _ = ptx.blocking_send(Err(AuditError::Corrupt(format!("reading the audit trail: {e}"))));
                }
            });
            parts.push(prx);
        }
        tokio::spawn(merge(parts, segments, tx));
    } else if db.backend() == shutong_store::Backend::Postgres {
        let mut parts = Vec::with_capacity(READERS);
        for w in 0..READERS {
            let (ptx, prx) = mpsc::channel(2);
            let mut conn = db.pg_connection().await?.ok_or_else(|| AuditError::Corrupt("no PostgreSQL connection".into()))?;
            // A segment is read in chain order through the chain index, whatever the statistics say: on a
            // table not analysed since it grew (as right after a burst of appends) the planner guessed a
            // bitmap scan and a sort of every segment, and verification ran at two thirds of its speed
            // (shutong-bench audit: 0.91-0.95M events/s, 1.31-1.49M after ANALYZE).
            for set in ["SET enable_bitmapscan = off", "SET enable_sort = off"] {
                sqlx::query(set).execute(&mut conn).await.map_err(AuditError::db)?;
            }
            tokio::spawn(async move {
                for (from, to) in (w as i64..segments).step_by(READERS).map(segment) {
                    let batch = read_pg_copy(&mut conn, from, to).await;
                    let failed = batch.is_err();
                    if ptx.send(batch).await.is_err() || failed {
                        return;
                    }
                }
            });
            parts.push(prx);
        }
        tokio::spawn(merge(parts, segments, tx));
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

/// Hands on the readers' batches in segment order: segment `i` comes from reader `i % READERS`, each of
/// which sends exactly one batch per segment (or an error, and stops).
async fn merge(mut parts: Vec<mpsc::Receiver<AuditResult<Batch>>>, segments: i64, tx: mpsc::Sender<AuditResult<Batch>>) {
    for i in 0..segments {
        let from = &mut parts[(i as usize) % READERS];
        let batch = from.recv().await.unwrap_or_else(|| Err(AuditError::Corrupt("a reader of the audit trail stopped".into())));
        let failed = batch.is_err();
        if tx.send(batch).await.is_err() || failed {
            return;
        }
    }
}

/// [`SELECT`] as `COPY … TO STDOUT (FORMAT binary)`: integers (all `BIGINT`) as 8-byte big-endian, text as
/// its UTF-8 bytes.
async fn read_pg_copy(conn: &mut sqlx::PgConnection, after: i64, through: i64) -> AuditResult<Batch> {
    use futures_util::TryStreamExt;
    // Integers formatted into the statement: COPY takes no parameters.
    let select = SELECT.replace("$1", &after.to_string()).replace("$2", &through.to_string());
    let sql = format!("COPY ({select}) TO STDOUT WITH (FORMAT binary)");
    let mut stream = conn.copy_out_raw(&sql).await.map_err(AuditError::db)?;
    let mut links = Links::with_capacity(usize::try_from(through - after).unwrap_or(0).min(BATCH));
    let mut parser = shutong_store::binary::Reader::default();
    while let Some(chunk) = stream.try_next().await.map_err(AuditError::db)? {
        parser
            .feed::<String>(&chunk, 13, |cols| push_row(cols, &mut links))
            .map_err(|e| AuditError::Corrupt(format!("reading the audit trail: {e}")))?;
    }
    if !parser.finished() {
        return Err(AuditError::Corrupt("reading the audit trail: the COPY output ended early".into()));
    }
    Ok(links)
}

fn required(v: Option<&[u8]>, i: usize) -> Result<&[u8], String> {
    v.ok_or_else(|| format!("column {i} is NULL"))
}

/// One row of the 13 columns, as binary COPY gives them, onto `links`.
fn push_row(cols: &[Option<&[u8]>], links: &mut Links) -> Result<(), String> {
    let int = |i: usize| -> Result<Option<i64>, String> {
        cols[i]
            .map(|v| <[u8; 8]>::try_from(v).map(i64::from_be_bytes).map_err(|_| format!("column {i} is not an 8-byte integer")))
            .transpose()
    };
    let need = |v: Option<i64>, i: usize| v.ok_or_else(|| format!("column {i} is NULL"));
    let ev = RawEventRef {
        chain_seq: need(int(0)?, 0)?,
        seq: need(int(1)?, 1)?,
        at_ms: need(int(2)?, 2)?,
        actor_user_id: int(3)?,
        actor: required(cols[4], 4)?,
        department_id: int(5)?,
        action: required(cols[6], 6)?,
        target_kind: required(cols[7], 7)?,
        target_id: required(cols[8], 8)?,
        detail: required(cols[9], 9)?,
        request_id: cols[10],
        ip: cols[11],
    };
    let h = cols[12].and_then(parse_hash_bytes).unwrap_or(UNREADABLE);
    links.push_raw(ev, h);
    Ok(())
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

fn read_sqlite(
    path: &std::path::Path,
    segments: impl Iterator<Item = (i64, i64)>,
    tx: &mpsc::Sender<AuditResult<Batch>>,
) -> rusqlite::Result<()> {
    let conn = shutong_store::native::sqlite_reader(path, shutong_store::native::SQLITE_BUSY)?;
    let mut stmt = conn.prepare(&SELECT.replace("$1", "?1").replace("$2", "?2"))?;
    for (after, through) in segments {
        let batch = read_sqlite_segment(&mut stmt, after, through)?;
        if tx.blocking_send(Ok(batch)).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

fn read_sqlite_segment(stmt: &mut rusqlite::Statement<'_>, after: i64, through: i64) -> rusqlite::Result<Batch> {
    let mut rows = stmt.query([after, through])?;
    let mut batch = Links::with_capacity(BATCH);
    while let Some(r) = rows.next()? {
        let bytes = |i: usize| -> rusqlite::Result<&[u8]> {
            r.get_ref(i)?.as_bytes().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
        };
        let opt_bytes = |i: usize| -> rusqlite::Result<Option<&[u8]>> {
            r.get_ref(i)?
                .as_bytes_or_null()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
        };
        let ev = RawEventRef {
            chain_seq: r.get(0)?,
            seq: r.get(1)?,
            at_ms: r.get(2)?,
            actor_user_id: r.get(3)?,
            actor: bytes(4)?,
            department_id: r.get(5)?,
            action: bytes(6)?,
            target_kind: bytes(7)?,
            target_id: bytes(8)?,
            detail: bytes(9)?,
            request_id: opt_bytes(10)?,
            ip: opt_bytes(11)?,
        };
        let h = opt_bytes(12).ok().flatten().and_then(parse_hash_bytes).unwrap_or(UNREADABLE);
        batch.push_raw(ev, h);
    }
    Ok(batch)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A binary COPY stream of `rows` events, as PostgreSQL sends it.
    fn copy_stream(rows: i64) -> Vec<u8> {
        let mut b = shutong_store::binary::SIGNATURE.to_vec();
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        for i in 1..=rows {
            b.extend_from_slice(&13i16.to_be_bytes());
            let int = |b: &mut Vec<u8>, v: i64| {
                b.extend_from_slice(&8i32.to_be_bytes());
                b.extend_from_slice(&v.to_be_bytes());
            };
            let text = |b: &mut Vec<u8>, v: Option<&str>| match v {
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v.as_bytes());
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            };
            int(&mut b, i);
            int(&mut b, 100 + i);
            int(&mut b, 1_764_000_000_000 + i);
            b.extend_from_slice(&(-1i32).to_be_bytes());
            text(&mut b, Some("张三"));
            int(&mut b, 3);
            text(&mut b, Some("data.lookup"));
            text(&mut b, Some("resource"));
            text(&mut b, Some("101/000001"));
            text(&mut b, Some(r#"{"records":1}"#));
            text(&mut b, None);
            text(&mut b, Some("10.0.0.1"));
            text(&mut b, Some(&"ab".repeat(32)));
        }
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b
    }

    /// Messages need not align with rows: every split of the stream into two parts parses the same.
    #[test]
    fn binary_copy_parses_across_any_split() {
        let stream = copy_stream(3);
        let mut whole = Links::default();
        let mut p = shutong_store::binary::Reader::default();
        p.feed::<String>(&stream, 13, |c| push_row(c, &mut whole)).unwrap();
        assert!(p.finished());
        assert_eq!(whole.len(), 3);
        assert_eq!((whole.items[2].chain_seq, whole.items[2].seq), (3, 103));
        assert_eq!(whole.items[0].hash, [0xab; 32]);
        let expect = crate::chain::SealedEvent {
            chain_seq: 1,
            seq: 101,
            at_ms: 1_764_000_000_001,
            actor_user_id: None,
            actor: "张三".into(),
            department_id: Some(3),
            action: "data.lookup".into(),
            target_kind: "resource".into(),
            target_id: "101/000001".into(),
            detail: r#"{"records":1}"#.into(),
            request_id: None,
            ip: Some("10.0.0.1".into()),
        };
        assert_eq!(whole.canonical(0), expect.canonical().as_slice());
        for cut in 0..stream.len() {
            let mut links = Links::default();
            let mut p = shutong_store::binary::Reader::default();
            p.feed::<String>(&stream[..cut], 13, |c| push_row(c, &mut links)).unwrap();
            p.feed::<String>(&stream[cut..], 13, |c| push_row(c, &mut links)).unwrap();
            assert!(p.finished(), "cut at {cut}");
            assert_eq!(links.buf, whole.buf, "cut at {cut}");
            assert_eq!(links.len(), 3);
        }
        // A stream that is not binary COPY is refused, not misread.
        let mut links = Links::default();
        assert!(
            shutong_store::binary::Reader::default()
                .feed::<String>(b"1\t2\t3\n.................", 13, |c| push_row(c, &mut links))
                .is_err()
        );
    }
}

//! 封存: the sealer chains committed events and signs checkpoints.
//!
//! Events are written in the transaction of the change they record, without touching the chain, so that
//! no state change waits on another's audit write. The sealer, a single writer guarded by the lock on
//! `audit_chain_head`, then takes the committed events not yet in the chain in `seq` order, gives each the
//! next chain position and `h_i = SM3(h_{i-1} || canonical_i)`, and at intervals signs a checkpoint with
//! the node's SM2 key. Thousands of events are sealed per transaction (group commit).

use shutong_crypto::NodeKey;
use shutong_store::{Db, Row, now_ms};

use crate::chain::{SealedEvent, checkpoint_message, parse_hash};
use crate::{AuditError, AuditResult};

/// When the sealer signs a checkpoint.
#[derive(Clone, Debug)]
pub struct SealOptions {
    /// Events per sealing transaction.
    pub batch: usize,
    /// Sign a checkpoint once this many events were sealed since the last one.
    pub checkpoint_every: i64,
    /// Sign a checkpoint once this long passed since the last one, if anything was sealed since.
    pub checkpoint_interval_ms: i64,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions { batch: 5_000, checkpoint_every: 10_000, checkpoint_interval_ms: 60_000 }
    }
}

/// What one sealing pass did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SealReport {
    pub sealed: u64,
    pub checkpoints: u64,
    /// The chain's last position after the pass.
    pub head: i64,
}

/// A signed checkpoint (签名检查点).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Checkpoint {
    pub chain_seq: i64,
    pub hash: String,
    pub at_ms: i64,
    /// The signer's SM2 public key, uncompressed SEC1, hex.
    pub public_key: String,
    /// DER-encoded SM2 signature of [`checkpoint_message`], hex.
    pub signature: String,
}

/// The chain head's protocol, shared by every writer that extends the chain (the sealer, the access log's
/// group commit) and by archiving: take the head's lock first — the row lock on PostgreSQL, the write lock
/// on SQLite — so that one writer at a time reads the head, extends it and moves it in one transaction.
pub(crate) const LOCK_HEAD: &str = "UPDATE audit_chain_head SET chain_seq = chain_seq WHERE id = 1";
pub(crate) const READ_HEAD: &str = "SELECT chain_seq, hash FROM audit_chain_head WHERE id = 1";
pub(crate) const MOVE_HEAD: &str = "UPDATE audit_chain_head SET chain_seq = $1, hash = $2 WHERE id = 1";

/// The head's stored hash, or why it cannot be extended.
pub(crate) fn head_hash(stored: &str) -> Result<[u8; 32], String> {
    parse_hash(stored).ok_or_else(|| format!("the chain head's hash {stored:?} is not 64 hex digits"))
}

const SELECT_UNSEALED: &str = "SELECT seq, at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip \
     FROM audit_events WHERE chain_seq IS NULL ORDER BY seq LIMIT $1";

/// Seals every committed event not yet in the chain; with `force_checkpoint`, also signs a checkpoint at
/// the end of the chain if it has none there yet.
pub async fn seal(db: &Db, key: &NodeKey, opts: &SealOptions, force_checkpoint: bool) -> AuditResult<SealReport> {
    let mut report = SealReport::default();
    loop {
        let mut tx = db.begin().await?;
        sqlx::query(LOCK_HEAD).execute(&mut *tx).await.map_err(AuditError::db)?;
        let head = sqlx::query(READ_HEAD).fetch_one(&mut *tx).await.map_err(AuditError::db)?;
        let mut n: i64 = head.try_get(0).map_err(AuditError::db)?;
        let mut h = head_hash(&head.try_get::<String, _>(1).map_err(AuditError::db)?).map_err(AuditError::Corrupt)?;
        let last = sqlx::query("SELECT chain_seq, at FROM audit_checkpoints ORDER BY chain_seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(AuditError::db)?;
        let (last_ckpt_seq, last_ckpt_at): (i64, i64) = match last {
            Some(r) => (r.try_get(0).map_err(AuditError::db)?, r.try_get(1).map_err(AuditError::db)?),
            None => (0, 0),
        };

        let rows = sqlx::query(SELECT_UNSEALED)
            .bind(i64::try_from(opts.batch).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .map_err(AuditError::db)?;
        let mut links: Vec<(i64, i64, String)> = Vec::with_capacity(rows.len());
        let mut buf = Vec::with_capacity(1024);
        for r in &rows {
            n += 1;
            let ev = SealedEvent {
                chain_seq: n,
                seq: r.try_get(0).map_err(AuditError::db)?,
                at_ms: r.try_get(1).map_err(AuditError::db)?,
                actor_user_id: r.try_get(2).map_err(AuditError::db)?,
                actor: r.try_get(3).map_err(AuditError::db)?,
                department_id: r.try_get(4).map_err(AuditError::db)?,
                action: r.try_get(5).map_err(AuditError::db)?,
                target_kind: r.try_get(6).map_err(AuditError::db)?,
                target_id: r.try_get(7).map_err(AuditError::db)?,
                detail: r.try_get(8).map_err(AuditError::db)?,
                request_id: r.try_get(9).map_err(AuditError::db)?,
                ip: r.try_get(10).map_err(AuditError::db)?,
            };
            buf.clear();
            ev.encode_canonical(&mut buf);
            h = shutong_crypto::sm3_chain(&h, &buf);
            links.push((ev.seq, n, hex::encode(h)));
        }
        // One statement per batch: the links as a JSON array the database unpacks.
        if !links.is_empty() {
            let json = serde_json::to_string(&links).map_err(|e| AuditError::Invalid(e.to_string()))?;
            let sql = if db.backend() == shutong_store::Backend::Postgres {
                "UPDATE audit_events SET chain_seq = x.c, chain_hash = x.h \
                 FROM (SELECT (v->>0)::bigint AS s, (v->>1)::bigint AS c, v->>2 AS h FROM json_array_elements($1::json) AS v) AS x \
                 WHERE audit_events.seq = x.s"
            } else {
                "UPDATE audit_events SET chain_seq = x.value ->> 1, chain_hash = x.value ->> 2 \
                 FROM json_each($1) AS x WHERE audit_events.seq = x.value ->> 0"
            };
            sqlx::query(sql).bind(json).execute(&mut *tx).await.map_err(AuditError::db)?;
        }
        let now = now_ms();
        let due = n > last_ckpt_seq
            && (force_checkpoint || n - last_ckpt_seq >= opts.checkpoint_every || now - last_ckpt_at >= opts.checkpoint_interval_ms);
        // While a backlog remains, sign only by count; the time rule applies at the end of the backlog.
        let more = rows.len() == opts.batch;
        if due && (!more || n - last_ckpt_seq >= opts.checkpoint_every) {
            let signature = hex::encode(key.sign(&checkpoint_message(n, &h, now)));
            sqlx::query("INSERT INTO audit_checkpoints (chain_seq, hash, at, public_key, signature) VALUES ($1, $2, $3, $4, $5)")
                .bind(n)
                .bind(hex::encode(h))
                .bind(now)
                .bind(key.public_key_hex())
                .bind(signature)
                .execute(&mut *tx)
                .await
                .map_err(AuditError::db)?;
            report.checkpoints += 1;
        }
        if !links.is_empty() {
            sqlx::query(MOVE_HEAD).bind(n).bind(hex::encode(h)).execute(&mut *tx).await.map_err(AuditError::db)?;
        }
        tx.commit().await.map_err(AuditError::db)?;
        report.sealed += links.len() as u64;
        report.head = n;
        if !more {
            return Ok(report);
        }
    }
}

/// The chain's state for status pages: its end, the last checkpoint, and what is not sealed yet.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ChainStatus {
    pub head: i64,
    pub head_hash: String,
    /// Events removed into archives: positions up to here.
    pub archived_through: i64,
    pub unsealed: i64,
    pub last_checkpoint: Option<Checkpoint>,
    pub checkpoints: i64,
}

/// The chain's state (head, unsealed events, checkpoints, archives), for those who read the whole trail:
/// platform administrators and auditors.
pub async fn status(db: &Db, reader: &dyn crate::AuditReader) -> AuditResult<ChainStatus> {
    if !reader.reads_whole_trail() {
        return Err(crate::AuditError::Forbidden("only platform administrators and auditors read the audit trail".into()));
    }
    let head = sqlx::query("SELECT chain_seq, hash, archived_through FROM audit_chain_head WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .map_err(AuditError::db)?;
    let unsealed =
        sqlx::query("SELECT COUNT(*) FROM audit_events WHERE chain_seq IS NULL").fetch_one(db.pool()).await.map_err(AuditError::db)?;
    let checkpoints = sqlx::query("SELECT COUNT(*) FROM audit_checkpoints").fetch_one(db.pool()).await.map_err(AuditError::db)?;
    let last = sqlx::query("SELECT chain_seq, hash, at, public_key, signature FROM audit_checkpoints ORDER BY chain_seq DESC LIMIT 1")
        .fetch_optional(db.pool())
        .await
        .map_err(AuditError::db)?;
    Ok(ChainStatus {
        head: head.try_get(0).map_err(AuditError::db)?,
        head_hash: head.try_get(1).map_err(AuditError::db)?,
        archived_through: head.try_get(2).map_err(AuditError::db)?,
        unsealed: unsealed.try_get(0).map_err(AuditError::db)?,
        checkpoints: checkpoints.try_get(0).map_err(AuditError::db)?,
        last_checkpoint: last.map(|r| checkpoint_from_row(&r)).transpose()?,
    })
}

pub(crate) fn checkpoint_from_row(r: &shutong_store::AnyRow) -> AuditResult<Checkpoint> {
    Ok(Checkpoint {
        chain_seq: r.try_get(0).map_err(AuditError::db)?,
        hash: r.try_get(1).map_err(AuditError::db)?,
        at_ms: r.try_get(2).map_err(AuditError::db)?,
        public_key: r.try_get(3).map_err(AuditError::db)?,
        signature: r.try_get(4).map_err(AuditError::db)?,
    })
}

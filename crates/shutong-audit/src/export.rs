//! 导出: a segment of the chain as NDJSON that a third party verifies with any SM3/SM2 implementation
//! (docs/AUDIT-FORMAT.md).

use base64::Engine;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use shutong_store::{Db, Row};

use crate::chain::{H0, checkpoint_message, parse_hash};
use crate::{AuditError, AuditResult};

pub const EXPORT_FORMAT: &str = "shutong-audit-export/1";

/// The first line of an export.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportHeader {
    #[serde(rename = "type")]
    pub kind: String,
    pub format: String,
    /// The exporting node's name.
    pub node: String,
    /// The node's SM2 public key, uncompressed SEC1 point, hex.
    pub public_key: String,
    /// The same key as SubjectPublicKeyInfo PEM.
    pub public_key_pem: String,
    /// The SM2 distinguishing identifier of the signatures.
    pub sm2_id: String,
    pub hash_algorithm: String,
    /// First and last chain positions in the file.
    pub from: i64,
    pub to: i64,
    /// `h_{from-1}`: the hash the first event's link starts from (`h_0`, 64 zeros, for a chain's start).
    pub prev_hash: String,
    pub exported_at: String,
}

/// Every line after the header.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportLine {
    Event {
        chain_seq: i64,
        seq: i64,
        /// `h_i`, hex.
        hash: String,
        /// The canonical encoding, base64: what the hash covers.
        canonical: String,
        /// The same event decoded, for people; verification ignores it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<serde_json::Value>,
    },
    Checkpoint {
        chain_seq: i64,
        /// `h_{chain_seq}`, hex.
        hash: String,
        at: i64,
        public_key: String,
        /// The exact bytes signed, base64.
        message: String,
        /// DER-encoded SM2 signature, base64.
        signature: String,
    },
}

/// What the node tells about itself in an export.
pub struct ExportSigner<'a> {
    pub node_name: &'a str,
    pub public_key_hex: &'a str,
    pub public_key_pem: &'a str,
}

/// Summary of an export.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ExportSummary {
    pub from: i64,
    pub to: i64,
    pub events: u64,
    pub checkpoints: u64,
    /// The last position covered by a checkpoint in the file (`from - 1` if none): later events in the file
    /// are chained but not yet signed.
    pub signed_through: i64,
}

/// The range an export covers: `from` defaults to the first position still in the database, `to` to the
/// chain's end. Positions already archived are refused with the range that is left.
pub async fn resolve_range(db: &Db, from: Option<i64>, to: Option<i64>) -> AuditResult<(i64, i64)> {
    let head = sqlx::query("SELECT chain_seq, archived_through FROM audit_chain_head WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .map_err(AuditError::db)?;
    let head_seq: i64 = head.try_get(0).map_err(AuditError::db)?;
    let archived: i64 = head.try_get(1).map_err(AuditError::db)?;
    let from = from.unwrap_or(archived + 1);
    let to = to.unwrap_or(head_seq).min(head_seq);
    if from <= archived {
        return Err(AuditError::Range {
            field: "from",
            message: format!(
                "from: positions up to {archived} are archived (read them from the archive files); export from {} on",
                archived + 1
            ),
        });
    }
    if from < 1 || to < from {
        return Err(AuditError::Range {
            field: if from < 1 { "from" } else { "to" },
            message: format!("from/to: the range {from}..{to} is empty; the chain runs {}..{head_seq}", archived + 1),
        });
    }
    Ok((from, to))
}

/// Writes positions `from..=to` as NDJSON to `sink`, in chunks of about 64 KiB.
pub async fn export<F, Fut>(db: &Db, from: i64, to: i64, signer: &ExportSigner<'_>, mut sink: F) -> AuditResult<ExportSummary>
where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    let b64 = base64::engine::general_purpose::STANDARD;
    let prev_hash = prev_hash(db, from).await?;
    let header = ExportHeader {
        kind: "header".into(),
        format: EXPORT_FORMAT.into(),
        node: signer.node_name.into(),
        public_key: signer.public_key_hex.into(),
        public_key_pem: signer.public_key_pem.into(),
        sm2_id: shutong_crypto::DEFAULT_SM2_ID.into(),
        hash_algorithm: "SM3".into(),
        from,
        to,
        prev_hash,
        exported_at: chrono::Utc::now().to_rfc3339(),
    };
    let mut out = serde_json::to_vec(&header).map_err(|e| AuditError::Invalid(e.to_string()))?;
    out.push(b'\n');

    let checkpoints: Vec<crate::seal::Checkpoint> =
        sqlx::query("SELECT chain_seq, hash, at, public_key, signature FROM audit_checkpoints WHERE chain_seq >= $1 AND chain_seq <= $2 ORDER BY chain_seq")
            .bind(from)
            .bind(to)
            .fetch_all(db.pool())
            .await
            .map_err(AuditError::db)?
            .iter()
            .map(crate::seal::checkpoint_from_row)
            .collect::<AuditResult<_>>()?;
    let mut checkpoints = checkpoints.into_iter().peekable();
    let mut summary = ExportSummary { from, to, signed_through: from - 1, ..Default::default() };
    let mut rows = sqlx::query(
        "SELECT chain_seq, seq, at, actor_user_id, actor, department_id, action, target_kind, target_id, detail, request_id, ip, chain_hash \
         FROM audit_events WHERE chain_seq >= $1 AND chain_seq <= $2 ORDER BY chain_seq",
    )
    .bind(from)
    .bind(to)
    .fetch(db.pool());
    let mut canonical = Vec::with_capacity(1024);
    while let Some(r) = rows.try_next().await.map_err(AuditError::db)? {
        let (ev, hash) = crate::verify::event_from_row(&r)?;
        canonical.clear();
        ev.encode_canonical(&mut canonical);
        let line = ExportLine::Event {
            chain_seq: ev.chain_seq,
            seq: ev.seq,
            hash,
            canonical: b64.encode(&canonical),
            event: Some(serde_json::json!({
                "at": shutong_store::from_ms(ev.at_ms).to_rfc3339(),
                "actor_user_id": ev.actor_user_id,
                "actor": ev.actor,
                "department_id": ev.department_id,
                "action": ev.action,
                "target_kind": ev.target_kind,
                "target_id": ev.target_id,
                "detail": serde_json::from_str::<serde_json::Value>(&ev.detail).unwrap_or(serde_json::Value::String(ev.detail.clone())),
                "request_id": ev.request_id,
                "ip": ev.ip,
            })),
        };
        serde_json::to_writer(&mut out, &line).map_err(|e| AuditError::Invalid(e.to_string()))?;
        out.push(b'\n');
        summary.events += 1;
        while let Some(c) = checkpoints.next_if(|c| c.chain_seq <= ev.chain_seq) {
            let hash = parse_hash(&c.hash).ok_or_else(|| AuditError::Corrupt(format!("checkpoint {}: hash is not hex", c.chain_seq)))?;
            let signature =
                hex::decode(&c.signature).map_err(|_| AuditError::Corrupt(format!("checkpoint {}: signature is not hex", c.chain_seq)))?;
            let line = ExportLine::Checkpoint {
                chain_seq: c.chain_seq,
                hash: c.hash.clone(),
                at: c.at_ms,
                public_key: c.public_key.clone(),
                message: b64.encode(checkpoint_message(c.chain_seq, &hash, c.at_ms)),
                signature: b64.encode(signature),
            };
            serde_json::to_writer(&mut out, &line).map_err(|e| AuditError::Invalid(e.to_string()))?;
            out.push(b'\n');
            summary.checkpoints += 1;
            summary.signed_through = c.chain_seq;
        }
        if out.len() >= 64 * 1024 {
            sink(std::mem::replace(&mut out, Vec::with_capacity(80 * 1024))).await.map_err(AuditError::Io)?;
        }
    }
    if !out.is_empty() {
        sink(out).await.map_err(AuditError::Io)?;
    }
    Ok(summary)
}

/// [`export`] into a writer (a file, standard output), buffered; returns the summary and the writer, flushed.
pub async fn export_to<W: std::io::Write + Send>(
    db: &Db,
    from: i64,
    to: i64,
    signer: &ExportSigner<'_>,
    writer: W,
) -> AuditResult<(ExportSummary, W)> {
    use std::io::Write;
    let mut w = std::io::BufWriter::with_capacity(256 * 1024, writer);
    let summary = export(db, from, to, signer, |chunk| std::future::ready(w.write_all(&chunk))).await?;
    let w = w.into_inner().map_err(|e| AuditError::Io(e.into_error()))?;
    Ok((summary, w))
}

/// `h_{from-1}`: zeros at the chain's start, the archived hash right after an archive, else the stored hash.
async fn prev_hash(db: &Db, from: i64) -> AuditResult<String> {
    if from <= 1 {
        return Ok(hex::encode(H0));
    }
    let head = sqlx::query("SELECT archived_through, archived_hash FROM audit_chain_head WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .map_err(AuditError::db)?;
    let archived: i64 = head.try_get(0).map_err(AuditError::db)?;
    if archived == from - 1 {
        return head.try_get(1).map_err(AuditError::db);
    }
    let row = sqlx::query("SELECT chain_hash FROM audit_events WHERE chain_seq = $1")
        .bind(from - 1)
        .fetch_optional(db.pool())
        .await
        .map_err(AuditError::db)?
        .ok_or_else(|| AuditError::Corrupt(format!("the event at chain position {} is missing", from - 1)))?;
    row.try_get::<Option<String>, _>(0)
        .map_err(AuditError::db)?
        .ok_or_else(|| AuditError::Corrupt(format!("position {} has no hash", from - 1)))
}

//! 核验: re-computing the chain and the checkpoint signatures, from the database or from an export file,
//! and naming the first place that does not match.

use std::collections::VecDeque;
use std::io::BufRead;
use std::time::Instant;

use base64::Engine;
use shutong_store::{Db, Row};

use crate::chain::{Links, SealedEvent, checkpoint_message, parse_hash};
use crate::seal::Checkpoint;
use crate::{AuditError, AuditResult};

/// The first place where the trail does not verify.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// Position in the chain.
    pub chain_seq: i64,
    /// The event's own sequence number, where an event is at fault.
    pub seq: Option<i64>,
    pub reason: String,
    /// The same, in Chinese (the portal's).
    pub reason_zh: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "chain position {} (event seq {seq}): {}", self.chain_seq, self.reason),
            None => write!(f, "chain position {}: {}", self.chain_seq, self.reason),
        }
    }
}

/// What a verification found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    /// First position checked (the one after the archived or exported start).
    pub from: i64,
    /// Last position checked.
    pub through: i64,
    pub events: u64,
    pub checkpoints: u64,
    /// The last position covered by a valid signature.
    pub signed_through: i64,
    /// Events committed but not sealed yet (database only): not yet protected by the chain.
    pub unsealed: i64,
    pub failure: Option<Failure>,
    pub elapsed_ms: u64,
}

/// Checks events in chain order against their stored hashes and checkpoints against the chain.
pub struct ChainVerifier {
    next: i64,
    prev: [u8; 32],
    trusted_keys: Vec<String>,
    keys: Vec<(String, shutong_crypto::PublicKey)>,
    checkpoints: VecDeque<Checkpoint>,
    report: VerifyReport,
}

impl ChainVerifier {
    /// Starts after position `after` whose hash is `prev`; checkpoints must be signed by one of
    /// `trusted_keys` (uncompressed SEC1, hex).
    pub fn new(after: i64, prev: [u8; 32], trusted_keys: Vec<String>, mut checkpoints: Vec<Checkpoint>) -> Self {
        checkpoints.sort_by_key(|c| c.chain_seq);
        ChainVerifier {
            next: after + 1,
            prev,
            trusted_keys,
            keys: Vec::new(),
            checkpoints: checkpoints.into_iter().filter(|c| c.chain_seq > after).collect(),
            report: VerifyReport { from: after + 1, through: after, signed_through: after, ..Default::default() },
        }
    }

    /// The next events in chain order, each with its stored hash: the links are checked in parallel (each
    /// against the stored hash before it, which is itself checked), so verification is not bound to one
    /// core. The first failure is the one sequential checking would find.
    pub fn batch(&mut self, links: &Links) -> Result<(), Failure> {
        let events = &links.items;
        // Positions must run on without a gap; links are checked up to the first gap.
        let gap = events.iter().enumerate().position(|(i, l)| l.chain_seq != self.next + i as i64);
        let upto = gap.unwrap_or(events.len());
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
        let chunk = upto.div_ceil(workers).max(512);
        let prev0 = self.prev;
        let first_bad = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..upto)
                .step_by(chunk)
                .map(|start| {
                    let end = (start + chunk).min(upto);
                    scope.spawn(move || {
                        // Sixteen links at a time (multi-buffer SM3): each against the stored hash before it.
                        let mut computed = Vec::with_capacity(end - start);
                        let prev0 = &prev0;
                        shutong_crypto::sm3_chain_many(
                            end - start,
                            |j| {
                                let i = start + j;
                                (if i == 0 { prev0 } else { &events[i - 1].hash }, links.canonical(i))
                            },
                            &mut computed,
                        );
                        computed.iter().zip(&events[start..end]).position(|(h, l)| *h != l.hash).map(|j| start + j)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok().flatten()).min()
        });
        let ok_until = first_bad.unwrap_or(upto);
        // Checkpoints inside the verified part.
        for l in &events[..ok_until] {
            self.prev = l.hash;
            self.next = l.chain_seq + 1;
            self.report.events += 1;
            self.report.through = l.chain_seq;
            while self.checkpoints.front().is_some_and(|c| c.chain_seq == l.chain_seq) {
                if let Some(c) = self.checkpoints.pop_front() {
                    self.checkpoint(&c)?;
                }
            }
        }
        if let Some(i) = first_bad {
            let ev = &events[i];
            return Err(Failure {
                chain_seq: ev.chain_seq,
                seq: Some(ev.seq),
                reason: "does not match its chain hash: the event was changed, or events before it were changed, removed or reordered"
                    .into(),
                reason_zh: "与其链哈希不符：该事件被改动，或其前的事件被改动、删除或调换".into(),
            });
        }
        if let Some(g) = gap {
            let ev = &events[g];
            let (reason, reason_zh) = if ev.chain_seq > self.next {
                (
                    format!("missing: the next event found is at position {} (seq {}); events were deleted", ev.chain_seq, ev.seq),
                    format!("缺失：下一个事件在链位置 {}（事件序号 {}），其间的事件被删除", ev.chain_seq, ev.seq),
                )
            } else {
                (format!("position {} appears twice or out of order", ev.chain_seq), format!("链位置 {} 重复或次序错乱", ev.chain_seq))
            };
            return Err(Failure { chain_seq: self.next, seq: None, reason, reason_zh });
        }
        Ok(())
    }

    fn checkpoint(&mut self, c: &Checkpoint) -> Result<(), Failure> {
        let fail = |reason: String, reason_zh: &str| Failure { chain_seq: c.chain_seq, seq: None, reason, reason_zh: reason_zh.into() };
        if parse_hash(&c.hash) != Some(self.prev) {
            return Err(fail(
                "the signed checkpoint's hash differs from the chain's: events up to it were changed".into(),
                "签名检查点的哈希与链不符：其前的事件被改动",
            ));
        }
        if !self.trusted_keys.iter().any(|k| k.eq_ignore_ascii_case(&c.public_key)) {
            return Err(fail(
                format!("the checkpoint is signed by key {}, which is not a trusted node key", c.public_key),
                "检查点的签名密钥不是本节点（或指定）的公钥",
            ));
        }
        let key = match self.keys.iter().find(|(k, _)| k == &c.public_key) {
            Some((_, key)) => key,
            None => {
                let key = shutong_crypto::PublicKey::from_hex(&c.public_key).map_err(|e| fail(e.to_string(), "检查点的公钥无法解析"))?;
                self.keys.push((c.public_key.clone(), key));
                &self.keys[self.keys.len() - 1].1
            }
        };
        let sig = hex::decode(&c.signature).map_err(|_| fail("the signature is not hex".into(), "签名不是十六进制"))?;
        key.verify(&checkpoint_message(c.chain_seq, &self.prev, c.at_ms), &sig)
            .map_err(|_| fail("the checkpoint's SM2 signature does not verify".into(), "检查点的 SM2 签名验证不通过"))?;
        self.report.checkpoints += 1;
        self.report.signed_through = c.chain_seq;
        Ok(())
    }

    /// Ends the walk: `head` is where the chain should end and with which hash, if known.
    pub fn finish(mut self, head: Option<(i64, &str)>, failure: Option<Failure>, started: Instant) -> VerifyReport {
        let mut failure = failure;
        if failure.is_none()
            && let Some(c) = self.checkpoints.front()
        {
            failure = Some(Failure {
                chain_seq: c.chain_seq,
                seq: None,
                reason: format!(
                    "a checkpoint signs position {} but the chain ends at {}: events at the end were removed",
                    c.chain_seq,
                    self.next - 1
                ),
                reason_zh: format!("检查点签署到链位置 {}，但链止于 {}：链尾的事件被删除", c.chain_seq, self.next - 1),
            });
        }
        if failure.is_none()
            && let Some((head_seq, head_hash)) = head
        {
            if head_seq != self.next - 1 {
                failure = Some(Failure {
                    chain_seq: self.next,
                    seq: None,
                    reason: format!(
                        "the chain head records position {head_seq} but the sealed events end at {}: events at the end were removed",
                        self.next - 1
                    ),
                    reason_zh: format!("链头记录到链位置 {head_seq}，但已封存的事件止于 {}：链尾的事件被删除", self.next - 1),
                });
            } else if parse_hash(head_hash) != Some(self.prev) {
                failure = Some(Failure {
                    chain_seq: head_seq,
                    seq: None,
                    reason: "the chain head's hash differs from the events'".into(),
                    reason_zh: "链头哈希与事件计算结果不符".into(),
                });
            }
        }
        self.report.ok = failure.is_none();
        self.report.failure = failure;
        self.report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.report
    }
}

/// Verifies the whole chain in the database (from the end of the archived part), its checkpoints against
/// `trusted_keys`, and its head.
pub async fn verify_db(db: &Db, trusted_keys: Vec<String>) -> AuditResult<VerifyReport> {
    let started = Instant::now();
    let head = sqlx::query("SELECT chain_seq, hash, archived_through, archived_hash FROM audit_chain_head WHERE id = 1")
        .fetch_one(db.pool())
        .await
        .map_err(AuditError::db)?;
    let head_seq: i64 = head.try_get(0).map_err(AuditError::db)?;
    let head_hash: String = head.try_get(1).map_err(AuditError::db)?;
    let archived_through: i64 = head.try_get(2).map_err(AuditError::db)?;
    let archived_hash: String = head.try_get(3).map_err(AuditError::db)?;
    let prev =
        parse_hash(&archived_hash).ok_or_else(|| AuditError::Corrupt("the archived hash in the chain head is not 64 hex digits".into()))?;
    let checkpoints =
        sqlx::query("SELECT chain_seq, hash, at, public_key, signature FROM audit_checkpoints WHERE chain_seq > $1 ORDER BY chain_seq")
            .bind(archived_through)
            .fetch_all(db.pool())
            .await
            .map_err(AuditError::db)?
            .iter()
            .map(crate::seal::checkpoint_from_row)
            .collect::<AuditResult<Vec<_>>>()?;
    let unsealed: i64 = sqlx::query("SELECT COUNT(*) FROM audit_events WHERE chain_seq IS NULL")
        .fetch_one(db.pool())
        .await
        .map_err(AuditError::db)?
        .try_get(0)
        .map_err(AuditError::db)?;

    let mut v = ChainVerifier::new(archived_through, prev, trusted_keys, checkpoints);
    let mut batches = crate::read::sealed_batches(db, archived_through, head_seq).await?;
    let mut failure = None;
    while let Some(batch) = batches.recv().await {
        if let Err(f) = v.batch(&batch?) {
            failure = Some(f);
            break;
        }
    }
    drop(batches);
    if failure.is_none() {
        // Rows claiming positions past the chain's end were not sealed by the sealer (which moves the head in
        // the same transaction): they are forged, and would also block sealing.
        let beyond =
            sqlx::query("SELECT MIN(e.chain_seq) FROM audit_events e, audit_chain_head h WHERE h.id = 1 AND e.chain_seq > h.chain_seq")
                .fetch_one(db.pool())
                .await
                .map_err(AuditError::db)?
                .try_get::<Option<i64>, _>(0)
                .map_err(AuditError::db)?;
        if let Some(pos) = beyond {
            failure = Some(Failure {
                chain_seq: pos,
                seq: None,
                reason: "an event claims a position past the chain's head: it was not sealed here".into(),
                reason_zh: "有事件占据链头之后的位置：并非由本节点封存（伪造）".into(),
            });
        }
    }
    let mut report = v.finish(Some((head_seq, &head_hash)), failure, started);
    report.unsealed = unsealed;
    Ok(report)
}

pub(crate) fn event_from_row(r: &shutong_store::AnyRow) -> AuditResult<(SealedEvent, String)> {
    Ok((
        SealedEvent {
            chain_seq: r.try_get(0).map_err(AuditError::db)?,
            seq: r.try_get(1).map_err(AuditError::db)?,
            at_ms: r.try_get(2).map_err(AuditError::db)?,
            actor_user_id: r.try_get(3).map_err(AuditError::db)?,
            actor: r.try_get(4).map_err(AuditError::db)?,
            department_id: r.try_get(5).map_err(AuditError::db)?,
            action: r.try_get(6).map_err(AuditError::db)?,
            target_kind: r.try_get(7).map_err(AuditError::db)?,
            target_id: r.try_get(8).map_err(AuditError::db)?,
            detail: r.try_get(9).map_err(AuditError::db)?,
            request_id: r.try_get(10).map_err(AuditError::db)?,
            ip: r.try_get(11).map_err(AuditError::db)?,
        },
        r.try_get::<Option<String>, _>(12).map_err(AuditError::db)?.unwrap_or_default(),
    ))
}

/// One line after an export's header, as verification reads it: a flat record of either kind, text
/// borrowed from the line where it has no escapes, and the decoded `event` (for people) skipped unread.
#[derive(serde::Deserialize)]
struct FileLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    chain_seq: i64,
    #[serde(borrow)]
    hash: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    canonical: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    #[allow(dead_code)]
    event: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    at: Option<i64>,
    #[serde(default, borrow)]
    public_key: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    signature: Option<std::borrow::Cow<'a, str>>,
}

/// Parsed lines on their way to the thread that checks them.
struct FileBatch {
    events: Links,
    checkpoints: Vec<Checkpoint>,
}

/// Verifies an export or archive file (NDJSON, docs/AUDIT-FORMAT.md) on its own. Checkpoints must be
/// signed by one of `trusted_keys`; with none given, the key named in the file's header is trusted (and
/// should then be compared with the node's published key).
///
/// This thread reads and parses the lines; another checks them, batch by batch, as they come.
pub fn verify_file(mut reader: impl BufRead, trusted_keys: Vec<String>) -> AuditResult<VerifyReport> {
    let started = Instant::now();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut line = Vec::with_capacity(4096);
    if reader.read_until(b'\n', &mut line).map_err(AuditError::Io)? == 0 {
        return Err(AuditError::Invalid("line 1: the file is empty".into()));
    }
    let header: crate::export::ExportHeader =
        serde_json::from_slice(&line).map_err(|e| AuditError::Invalid(format!("line 1: not an export header: {e}")))?;
    if header.format != crate::export::EXPORT_FORMAT {
        return Err(AuditError::Invalid(format!("line 1: format {:?}, expected {:?}", header.format, crate::export::EXPORT_FORMAT)));
    }
    let prev = parse_hash(&header.prev_hash).ok_or_else(|| AuditError::Invalid("line 1: prev_hash is not 64 hex digits".into()))?;
    let trusted = if trusted_keys.is_empty() { vec![header.public_key.clone()] } else { trusted_keys };
    let verifier = ChainVerifier::new(header.from - 1, prev, trusted, Vec::new());

    std::thread::scope(|scope| {
        let (batches_tx, batches_rx) = std::sync::mpsc::sync_channel::<FileBatch>(2);
        let checker = scope.spawn(move || {
            let mut v = verifier;
            for b in batches_rx {
                v.checkpoints.extend(b.checkpoints);
                if let Err(f) = v.batch(&b.events) {
                    return (v, Some(f));
                }
            }
            (v, None)
        });

        // Checkpoints follow the event they sign; they go with the batch that holds that event.
        let mut batch = FileBatch { events: Links::with_capacity(16_384), checkpoints: Vec::new() };
        let mut parse_failure = None;
        let mut n = 1;
        let read = loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(AuditError::Io(e)),
            }
            n += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let rec: FileLine<'_> = match serde_json::from_slice(&line) {
                Ok(r) => r,
                Err(e) => break Err(AuditError::Invalid(format!("line {n}: {e}"))),
            };
            match rec.kind.as_ref() {
                "event" => {
                    let Some(canonical) = rec.canonical else {
                        break Err(AuditError::Invalid(format!("line {n}: missing field `canonical`")));
                    };
                    let Some(hash) = parse_hash(&rec.hash) else {
                        parse_failure = Some(Failure {
                            chain_seq: rec.chain_seq,
                            seq: None,
                            reason: format!("line {n}: hash is not 64 hex digits"),
                            reason_zh: format!("第 {n} 行：哈希不是 64 位十六进制"),
                        });
                        break Ok(());
                    };
                    // A full batch is checked when the next event arrives: by then the checkpoint line that
                    // may follow its last event has been read.
                    if batch.events.len() >= 16_384 {
                        let full =
                            std::mem::replace(&mut batch, FileBatch { events: Links::with_capacity(16_384), checkpoints: Vec::new() });
                        if batches_tx.send(full).is_err() {
                            break Ok(()); // The checker stopped at a failure.
                        }
                    }
                    let events = &mut batch.events;
                    let start = events.buf.len();
                    if let Err(e) = b64.decode_vec(canonical.as_bytes(), &mut events.buf) {
                        break Err(AuditError::Invalid(format!("line {n}: canonical is not base64: {e}")));
                    }
                    let bytes = &events.buf[start..];
                    // The encoding starts with its version and its position (docs/AUDIT-FORMAT.md §2); the
                    // chain covers the rest.
                    if bytes.len() < 25 || bytes[0] != crate::chain::EVENT_FORMAT_VERSION {
                        break Err(AuditError::Invalid(format!("line {n}: canonical: not a version 1 event encoding")));
                    }
                    let at = |i: usize| i64::from_be_bytes(bytes[i..i + 8].try_into().unwrap_or([0; 8]));
                    let (encoded_position, seq) = (at(1), at(9));
                    if encoded_position != rec.chain_seq {
                        parse_failure = Some(Failure {
                            chain_seq: rec.chain_seq,
                            seq: Some(seq),
                            reason: format!("line {n}: the encoding says position {encoded_position}"),
                            reason_zh: format!("第 {n} 行：规范编码中的链位置为 {encoded_position}"),
                        });
                        events.buf.truncate(start);
                        break Ok(());
                    }
                    let end = events.buf.len();
                    events.items.push(crate::chain::Link { chain_seq: rec.chain_seq, seq, start, end, hash });
                }
                "checkpoint" => {
                    let (Some(at), Some(public_key), Some(signature)) = (rec.at, rec.public_key, rec.signature) else {
                        break Err(AuditError::Invalid(format!("line {n}: a checkpoint needs at, public_key and signature")));
                    };
                    let signature = match b64.decode(signature.as_bytes()) {
                        Ok(s) => s,
                        Err(e) => break Err(AuditError::Invalid(format!("line {n}: signature is not base64: {e}"))),
                    };
                    batch.checkpoints.push(Checkpoint {
                        chain_seq: rec.chain_seq,
                        hash: rec.hash.into_owned(),
                        at_ms: at,
                        public_key: public_key.into_owned(),
                        signature: hex::encode(signature),
                    });
                }
                other => break Err(AuditError::Invalid(format!("line {n}: unknown line type {other:?}"))),
            }
        };
        // What was read before a failure is checked first: a failure earlier in the chain is the one named.
        let _ = batches_tx.send(batch);
        drop(batches_tx);
        let (v, failure) = checker.join().map_err(|_| AuditError::Corrupt("the verification thread failed".into()))?;
        read?;
        let mut report = v.finish(None, failure.or(parse_failure), started);
        if report.ok && report.through != header.to {
            report.ok = false;
            report.failure = Some(Failure {
                chain_seq: report.through + 1,
                seq: None,
                reason: format!("the header says the export runs to {} but its events end at {}", header.to, report.through),
                reason_zh: format!("文件头写明导出至链位置 {}，但事件止于 {}", header.to, report.through),
            });
        }
        Ok(report)
    })
}

/// 核验审计链 on record: verifies the chain in the database (as [`verify_db`]) for a reader of the whole trail
/// and records the outcome as an `audit.verify` event, so that when and by whom the trail was last checked,
/// and what was found, is itself on the trail (the auditor's home shows the last one). The report is
/// returned only once its record is committed.
pub async fn verify_recorded(
    db: &Db,
    reader: &dyn crate::AuditReader,
    ctx: &crate::AuditContext,
    trusted_keys: Vec<String>,
) -> AuditResult<VerifyReport> {
    if !reader.reads_whole_trail() {
        return Err(AuditError::Forbidden("only platform administrators and auditors verify the audit trail".into()));
    }
    let report = verify_db(db, trusted_keys).await?;
    let mut tx = db.begin().await?;
    crate::record(
        &mut tx,
        ctx,
        crate::NewAuditEvent {
            action: crate::Action::AuditVerify,
            target_kind: "audit_chain",
            target_id: format!("{}-{}", report.from, report.through),
            department_id: None,
            detail: serde_json::json!({
                "ok": report.ok, "from": report.from, "through": report.through, "events": report.events,
                "checkpoints": report.checkpoints, "signed_through": report.signed_through, "unsealed": report.unsealed,
                "failure": report.failure.as_ref().map(|f| serde_json::json!({"chain_seq": f.chain_seq, "seq": f.seq, "reason": f.reason})),
                "elapsed_ms": report.elapsed_ms,
            }),
        },
    )
    .await?;
    tx.commit().await.map_err(AuditError::db)?;
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::export::ExportLine;

    /// An export of `n` events (three batches' worth and more), signed at the middle and at the end.
    fn export(n: i64, key: &shutong_crypto::NodeKey, tamper: impl Fn(i64, &mut ExportLine)) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let header = serde_json::json!({
            "type": "header", "format": crate::export::EXPORT_FORMAT, "node": "test", "public_key": key.public_key_hex(),
            "public_key_pem": key.public_key_pem(), "sm2_id": shutong_crypto::DEFAULT_SM2_ID, "hash_algorithm": "SM3",
            "from": 1, "to": n, "prev_hash": hex::encode(crate::chain::H0), "exported_at": "2026-11-30T00:00:00Z",
        });
        let mut out = format!("{header}\n").into_bytes();
        let mut h = crate::chain::H0;
        for i in 1..=n {
            let ev =
                SealedEvent { chain_seq: i, seq: i + 7, at_ms: 1_764_000_000_000 + i, action: "data.lookup".into(), ..Default::default() };
            let canonical = ev.canonical();
            h = shutong_crypto::sm3_chain(&h, &canonical);
            let mut line =
                ExportLine::Event { chain_seq: i, seq: ev.seq, hash: hex::encode(h), canonical: b64.encode(&canonical), event: None };
            tamper(i, &mut line);
            out.extend_from_slice(serde_json::to_string(&line).unwrap().as_bytes());
            out.push(b'\n');
            if i == n / 2 || i == n {
                let message = checkpoint_message(i, &h, 5);
                let line = ExportLine::Checkpoint {
                    chain_seq: i,
                    hash: hex::encode(h),
                    at: 5,
                    public_key: key.public_key_hex(),
                    message: b64.encode(&message),
                    signature: b64.encode(key.sign(&message)),
                };
                out.extend_from_slice(serde_json::to_string(&line).unwrap().as_bytes());
                out.push(b'\n');
            }
        }
        out
    }

    fn verify(bytes: &[u8]) -> AuditResult<VerifyReport> {
        verify_file(std::io::Cursor::new(bytes), Vec::new())
    }

    #[test]
    fn a_file_verifies_and_its_first_fault_is_named() {
        let key = shutong_crypto::NodeKey::generate();
        let n = 40_000;
        let r = verify(&export(n, &key, |_, _| {})).unwrap();
        assert!(r.ok, "{:?}", r.failure);
        assert_eq!((r.events, r.checkpoints, r.through, r.signed_through), (n as u64, 2, n, n));

        // An event changed early, and a malformed hash later (in a later batch): the earlier is named.
        let bytes = export(n, &key, |i, line| {
            if let ExportLine::Event { canonical, hash, .. } = line {
                let b64 = base64::engine::general_purpose::STANDARD;
                if i == 5 {
                    let mut b = b64.decode(&*canonical).unwrap();
                    let last = b.len() - 1;
                    b[last] ^= 1;
                    *canonical = b64.encode(b);
                }
                if i == 30_000 {
                    *hash = "zz".repeat(32);
                }
            }
        });
        let f = verify(&bytes).unwrap().failure.unwrap();
        assert_eq!((f.chain_seq, f.seq), (5, Some(12)), "{f}");

        // Only the malformed hash: named at its position.
        let bytes = export(n, &key, |i, line| {
            if let (30_000, ExportLine::Event { hash, .. }) = (i, line) {
                *hash = "zz".repeat(32);
            }
        });
        let r = verify(&bytes).unwrap();
        let f = r.failure.unwrap();
        assert_eq!(f.chain_seq, 30_000, "{f}");
        assert!(f.reason.contains("hash is not 64 hex digits"), "{f}");
        assert_eq!(r.through, 29_999, "everything before it was checked");

        // A line whose encoding names another position.
        let bytes = export(n, &key, |i, line| {
            if let (17_000, ExportLine::Event { chain_seq, .. }) = (i, line) {
                *chain_seq = 17_001;
            }
        });
        let f = verify(&bytes).unwrap().failure.unwrap();
        assert_eq!(f.chain_seq, 17_001, "{f}");
        assert!(f.reason.contains("the encoding says position 17000"), "{f}");

        // Lines that are not an export's are refused with their line number.
        let mut bytes = export(3, &key, |_, _| {});
        bytes.extend_from_slice(b"{\"type\":\"note\",\"chain_seq\":1,\"hash\":\"\"}\n");
        assert!(matches!(verify(&bytes), Err(AuditError::Invalid(m)) if m.contains("line 7") && m.contains("note")));
        let mut bytes = export(3, &key, |_, _| {});
        bytes.extend_from_slice(b"{not json\n");
        assert!(matches!(verify(&bytes), Err(AuditError::Invalid(m)) if m.starts_with("line 7")));
        assert!(matches!(verify(b""), Err(AuditError::Invalid(m)) if m.contains("empty")));
    }
}

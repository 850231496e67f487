//! The canonical encoding of an audit event and of a checkpoint (docs/AUDIT-FORMAT.md). Any change here
//! is a new format version: exports already handed to auditors must keep verifying.

use serde::Serialize;

/// `h_0`: the hash before the first event of a chain, 32 zero bytes.
pub const H0: [u8; 32] = [0u8; 32];

/// First byte of every canonical event encoding.
pub const EVENT_FORMAT_VERSION: u8 = 1;

/// Prefix of every signed checkpoint message.
pub const CHECKPOINT_MAGIC: &[u8; 26] = b"SHUTONG-AUDIT-CHECKPOINT-1";

/// 审计事件 as stored and sealed: the fields the canonical encoding covers, with the text exactly as stored
/// (办法 第二十一条: 全过程安全审计).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SealedEvent {
    /// Position in the chain, from 1 (`chain_seq`).
    pub chain_seq: i64,
    /// The event's own sequence number (`seq`), assigned when it was written.
    pub seq: i64,
    pub at_ms: i64,
    pub actor_user_id: Option<i64>,
    pub actor: String,
    pub department_id: Option<i64>,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    /// The JSON detail, as stored text.
    pub detail: String,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

impl SealedEvent {
    /// Appends the canonical encoding to `out`:
    ///
    /// ```text
    /// u8 version = 1
    /// i64 chain_seq, i64 seq, i64 at_ms              (big-endian)
    /// opt_i64 actor_user_id
    /// str actor
    /// opt_i64 department_id
    /// str action, str target_kind, str target_id, str detail
    /// opt_str request_id, opt_str ip
    /// str     = u32 byte length (big-endian) || UTF-8 bytes
    /// opt_X   = 0x00 (absent) | 0x01 || X
    /// ```
    pub fn encode_canonical(&self, out: &mut Vec<u8>) {
        self.as_ref().encode(out);
    }

    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            chain_seq: self.chain_seq,
            seq: self.seq,
            at_ms: self.at_ms,
            actor_user_id: self.actor_user_id,
            actor: &self.actor,
            department_id: self.department_id,
            action: &self.action,
            target_kind: &self.target_kind,
            target_id: &self.target_id,
            detail: &self.detail,
            request_id: self.request_id.as_deref(),
            ip: self.ip.as_deref(),
        }
    }

    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.actor.len() + self.action.len() + self.target_id.len() + self.detail.len());
        self.encode_canonical(&mut out);
        out
    }

    /// Decodes a canonical encoding (an export's `canonical` field), refusing trailing or missing bytes.
    pub fn decode_canonical(mut b: &[u8]) -> Result<Self, String> {
        let version = take(&mut b, 1)?[0];
        if version != EVENT_FORMAT_VERSION {
            return Err(format!("unknown event format version {version}"));
        }
        let ev = SealedEvent {
            chain_seq: i64_(&mut b)?,
            seq: i64_(&mut b)?,
            at_ms: i64_(&mut b)?,
            actor_user_id: read_opt(&mut b, i64_)?,
            actor: string(&mut b)?,
            department_id: read_opt(&mut b, i64_)?,
            action: string(&mut b)?,
            target_kind: string(&mut b)?,
            target_id: string(&mut b)?,
            detail: string(&mut b)?,
            request_id: read_opt(&mut b, string)?,
            ip: read_opt(&mut b, string)?,
        };
        if !b.is_empty() {
            return Err(format!("{} bytes after the last field", b.len()));
        }
        Ok(ev)
    }
}

/// An event's fields borrowed from where they are read (a database row): encoded without copying them.
#[derive(Clone, Copy, Debug)]
pub struct EventRef<'a> {
    pub chain_seq: i64,
    pub seq: i64,
    pub at_ms: i64,
    pub actor_user_id: Option<i64>,
    pub actor: &'a str,
    pub department_id: Option<i64>,
    pub action: &'a str,
    pub target_kind: &'a str,
    pub target_id: &'a str,
    pub detail: &'a str,
    pub request_id: Option<&'a str>,
    pub ip: Option<&'a str>,
}

impl<'a> EventRef<'a> {
    /// The canonical encoding, appended to `out` (see [`SealedEvent::encode_canonical`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.raw().encode(out);
    }

    fn raw(&self) -> RawEventRef<'a> {
        RawEventRef {
            chain_seq: self.chain_seq,
            seq: self.seq,
            at_ms: self.at_ms,
            actor_user_id: self.actor_user_id,
            actor: self.actor.as_bytes(),
            department_id: self.department_id,
            action: self.action.as_bytes(),
            target_kind: self.target_kind.as_bytes(),
            target_id: self.target_id.as_bytes(),
            detail: self.detail.as_bytes(),
            request_id: self.request_id.map(str::as_bytes),
            ip: self.ip.map(str::as_bytes),
        }
    }
}

/// An event's fields as the bytes a database stores for them (text as UTF-8): what verification reads and
/// hashes. The encoding covers the stored bytes, so a reader need not check that they are UTF-8 first.
#[derive(Clone, Copy, Debug)]
pub struct RawEventRef<'a> {
    pub chain_seq: i64,
    pub seq: i64,
    pub at_ms: i64,
    pub actor_user_id: Option<i64>,
    pub actor: &'a [u8],
    pub department_id: Option<i64>,
    pub action: &'a [u8],
    pub target_kind: &'a [u8],
    pub target_id: &'a [u8],
    pub detail: &'a [u8],
    pub request_id: Option<&'a [u8]>,
    pub ip: Option<&'a [u8]>,
}

impl RawEventRef<'_> {
    /// The canonical encoding, appended to `out` (see [`SealedEvent::encode_canonical`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(EVENT_FORMAT_VERSION);
        out.extend_from_slice(&self.chain_seq.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        opt_i64(out, self.actor_user_id);
        str_(out, self.actor);
        opt_i64(out, self.department_id);
        str_(out, self.action);
        str_(out, self.target_kind);
        str_(out, self.target_id);
        str_(out, self.detail);
        opt_str(out, self.request_id);
        opt_str(out, self.ip);
    }
}

/// Events in chain order as their canonical encodings in one buffer, each with its position, `seq` and
/// stored hash: what verification needs, with one allocation per batch instead of several per event.
#[derive(Debug, Default)]
pub struct Links {
    pub buf: Vec<u8>,
    pub items: Vec<Link>,
}

#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub chain_seq: i64,
    pub seq: i64,
    pub start: usize,
    pub end: usize,
    /// The stored `h_i`.
    pub hash: [u8; 32],
}

impl Links {
    pub fn with_capacity(events: usize) -> Self {
        Links { buf: Vec::with_capacity(events * 256), items: Vec::with_capacity(events) }
    }

    pub fn push(&mut self, ev: EventRef<'_>, hash: [u8; 32]) {
        self.push_raw(ev.raw(), hash);
    }

    pub fn push_raw(&mut self, ev: RawEventRef<'_>, hash: [u8; 32]) {
        let start = self.buf.len();
        ev.encode(&mut self.buf);
        self.items.push(Link { chain_seq: ev.chain_seq, seq: ev.seq, start, end: self.buf.len(), hash });
    }

    pub fn push_canonical(&mut self, chain_seq: i64, seq: i64, canonical: &[u8], hash: [u8; 32]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(canonical);
        self.items.push(Link { chain_seq, seq, start, end: self.buf.len(), hash });
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.items.clear();
    }

    pub fn canonical(&self, i: usize) -> &[u8] {
        &self.buf[self.items[i].start..self.items[i].end]
    }
}

/// The bytes a checkpoint's SM2 signature covers: `"SHUTONG-AUDIT-CHECKPOINT-1" || i64 chain_seq || h (32
/// bytes) || i64 at_ms`, integers big-endian.
pub fn checkpoint_message(chain_seq: i64, hash: &[u8; 32], at_ms: i64) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_MAGIC.len() + 48);
    m.extend_from_slice(CHECKPOINT_MAGIC);
    m.extend_from_slice(&chain_seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&at_ms.to_be_bytes());
    m
}

/// Parses a stored or exported hash (64 hex digits).
pub fn parse_hash(s: &str) -> Option<[u8; 32]> {
    parse_hash_bytes(s.as_bytes())
}

/// [`parse_hash`] of stored bytes (SIMD hex: verification parses one per event).
pub fn parse_hash_bytes(b: &[u8]) -> Option<[u8; 32]> {
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    faster_hex::hex_decode(b, &mut out).ok()?;
    Some(out)
}

fn opt_i64(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

fn str_(out: &mut Vec<u8>, s: &[u8]) {
    // Stored text is far below 4 GiB (request bodies are limited); saturate rather than wrap.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s);
}

fn opt_str(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            str_(out, s);
        }
    }
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err(format!("truncated: {n} bytes needed, {} left", b.len()));
    }
    let (head, tail) = b.split_at(n);
    *b = tail;
    Ok(head)
}

fn i64_(b: &mut &[u8]) -> Result<i64, String> {
    let bytes: [u8; 8] = take(b, 8)?.try_into().map_err(|_| "truncated integer".to_string())?;
    Ok(i64::from_be_bytes(bytes))
}

fn string(b: &mut &[u8]) -> Result<String, String> {
    let len: [u8; 4] = take(b, 4)?.try_into().map_err(|_| "truncated length".to_string())?;
    let bytes = take(b, u32::from_be_bytes(len) as usize)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| "a text field is not UTF-8".to_string())
}

fn read_opt<T>(b: &mut &[u8], f: fn(&mut &[u8]) -> Result<T, String>) -> Result<Option<T>, String> {
    match take(b, 1)?[0] {
        0 => Ok(None),
        1 => f(b).map(Some),
        other => Err(format!("presence byte {other} is neither 0 nor 1")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> SealedEvent {
        SealedEvent {
            chain_seq: 7,
            seq: 9,
            at_ms: 1_764_000_000_000,
            actor_user_id: Some(3),
            actor: "张三".into(),
            department_id: None,
            action: "data.lookup".into(),
            target_kind: "resource".into(),
            target_id: "320000-101-0001".into(),
            detail: r#"{"records":1}"#.into(),
            request_id: Some("r-1".into()),
            ip: None,
        }
    }

    /// The encoding is pinned: a change is a new format version, not a silent break of old exports.
    #[test]
    fn encoding_is_pinned() {
        let c = sample().canonical();
        assert_eq!(hex::encode(shutong_crypto::sm3(&c)), PINNED_SM3);
        assert_eq!(c[0], 1);
        assert_eq!(&c[1..9], &7i64.to_be_bytes());
    }

    /// Computed independently from docs/AUDIT-FORMAT.md (Python `struct.pack` + `openssl dgst -sm3`).
    const PINNED_SM3: &str = "e19c44945b1b733ea5280d87bc9131d5c7b41773ec24a8810f8f4b398ea2a181";

    proptest! {
        #[test]
        fn decode_inverts_encode(seq in 1i64.., at in any::<i64>(), uid in any::<Option<i64>>(), actor in ".*", detail in ".*", ip in any::<Option<String>>()) {
            let ev = SealedEvent { chain_seq: seq, seq, at_ms: at, actor_user_id: uid, actor, detail, ip, ..sample() };
            prop_assert_eq!(SealedEvent::decode_canonical(&ev.canonical()).unwrap(), ev);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = SealedEvent::decode_canonical(&bytes);
        }
    }
}

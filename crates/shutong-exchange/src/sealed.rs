//! 敏感数据加密存储: sensitive items at rest (SPEC C5: SM4 for sensitive data at rest; 办法 第二十一条).
//!
//! An item with a masking kind is sensitive. In a pooled dataset its values are stored as
//!
//! ```text
//! U+0001 KEY ":" FP ":" MASKED ":" BASE64(nonce ‖ SM4-GCM ciphertext ‖ tag)
//! ```
//!
//! - `KEY` is the number of the data key that encrypted it (so keys rotate without rewriting at once);
//! - the associated data is `resource code ‖ 0x00 ‖ item name`, so a value moved to another item or
//!   dataset does not decrypt;
//! - `MASKED` is the value masked by the rule of its kind, computed at ingest, and `FP` the first four hex
//!   digits of the SM3 of that rule: a masked read (the default for consumers, R-EX-3) uses it without
//!   decrypting while the rule is unchanged, and decrypts and masks afresh once the rule has changed;
//! - U+0001 never starts a value in clear: ingest refuses control characters.
//!
//! A sensitive key item is stored in the row's `k` column as its HMAC-SM3 blind index (hex), so that lookups
//! and upserts by key still use the index; its value is in its own column, encrypted like any other.
//! Conditions (row filters, query conditions) on sensitive items are evaluated after decryption.

use std::borrow::Cow;

use base64::Engine as _;
use shutong_crypto::DataKeys;
use shutong_reference::{MaskKind, MaskRules};

use crate::{Exchange, ExchangeError, ExchangeResult, invalid};

/// Starts every encrypted value.
pub const MARK: char = '\u{1}';

/// The first four hex digits of the SM3 of a kind's masking rule.
pub fn rule_fingerprint(rules: &MaskRules, kind: MaskKind) -> String {
    let d = shutong_crypto::sm3(format!("{kind:?}/{:?}", rules.rule(kind)).as_bytes());
    hex::encode(&d[..2])
}

fn aad(code: &str, item: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(code.len() + 1 + item.len());
    a.extend_from_slice(code.as_bytes());
    a.push(0);
    a.extend_from_slice(item.as_bytes());
    a
}

/// Encrypts one value of a sensitive item.
pub fn seal(keys: &DataKeys, rules: &MaskRules, code: &str, item: &str, kind: MaskKind, plain: &str) -> ExchangeResult<String> {
    ColumnSealer::new(rules, code, item, kind).seal(keys, rules, plain)
}

/// What encrypting the values of one sensitive item needs, computed once per batch: its masking kind, the
/// rule's fingerprint and the associated data.
#[derive(Clone, Debug)]
pub struct ColumnSealer {
    kind: MaskKind,
    fingerprint: String,
    aad: Vec<u8>,
}

impl ColumnSealer {
    pub fn new(rules: &MaskRules, code: &str, item: &str, kind: MaskKind) -> Self {
        ColumnSealer { kind, fingerprint: rule_fingerprint(rules, kind), aad: aad(code, item) }
    }

    pub fn seal(&self, keys: &DataKeys, rules: &MaskRules, plain: &str) -> ExchangeResult<String> {
        let masked = rules.mask(self.kind, plain);
        let (id, data) = keys.seal(plain.as_bytes(), &self.aad).map_err(|e| ExchangeError::Sealed(e.to_string()))?;
        let mut out = String::with_capacity(12 + masked.len() + data.len() * 4 / 3 + 4);
        use std::fmt::Write as _;
        let _ = write!(out, "{MARK}{id}:{}:{masked}:", self.fingerprint);
        base64::engine::general_purpose::STANDARD_NO_PAD.encode_string(data, &mut out);
        Ok(out)
    }
}

/// A stored encrypted value, taken apart.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    pub key: u32,
    pub fingerprint: &'a str,
    pub masked: &'a str,
    pub data: &'a str,
}

/// Takes an encrypted value apart; `None` for a value in clear.
pub fn parts(raw: &str) -> Option<Parts<'_>> {
    let rest = raw.strip_prefix(MARK)?;
    let (key, rest) = rest.split_once(':')?;
    let (fingerprint, rest) = rest.split_once(':')?;
    let (masked, data) = rest.rsplit_once(':')?;
    Some(Parts { key: key.parse().ok()?, fingerprint, masked, data })
}

pub fn is_sealed(raw: &str) -> bool {
    raw.starts_with(MARK)
}

/// The value in clear: decrypted if it is encrypted.
pub fn open<'a>(keys: Option<&DataKeys>, code: &str, item: &str, raw: &'a str) -> ExchangeResult<Cow<'a, str>> {
    if !is_sealed(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let p = parts(raw).ok_or_else(|| ExchangeError::Sealed(format!("{code}/{item}: an encrypted value is malformed")))?;
    let keys = keys.ok_or_else(|| {
        ExchangeError::Sealed(format!("{code}/{item}: the value is encrypted but security.encrypt_sensitive is off (no data keys)"))
    })?;
    let data = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(p.data)
        .map_err(|_| ExchangeError::Sealed(format!("{code}/{item}: an encrypted value is malformed")))?;
    let plain = keys.open(p.key, &data, &aad(code, item)).map_err(|e| ExchangeError::Sealed(format!("{code}/{item}: {e}")))?;
    String::from_utf8(plain).map(Cow::Owned).map_err(|_| ExchangeError::Sealed(format!("{code}/{item}: decrypted value is not UTF-8")))
}

/// The value as delivered: masked by `mask` (with its rule's fingerprint `fp`) or in clear. A masked read
/// of an encrypted value whose stored masking is current needs no decryption.
pub fn reveal<'a>(
    keys: Option<&DataKeys>,
    rules: &MaskRules,
    code: &str,
    item: &str,
    raw: &'a str,
    mask: Option<(MaskKind, &str)>,
) -> ExchangeResult<Cow<'a, str>> {
    if let (Some((_, fp)), Some(p)) = (mask, parts(raw))
        && p.fingerprint == fp
    {
        return Ok(Cow::Borrowed(p.masked));
    }
    let plain = open(keys, code, item, raw)?;
    Ok(match mask {
        Some((kind, _)) => Cow::Owned(rules.mask(kind, &plain)),
        None => plain,
    })
}

/// 化名: a record's pseudonym under a grant, from its `k` column (the key, or its blind index): HMAC-SM3 with
/// the index key over the grant and `k`, domain-separated from blind indexes; `~` and 32 hex digits.
pub fn pseudonym(keys: &DataKeys, grant: i64, k: &str) -> String {
    let mac = keys.blind_index(format!("pseudonym\0{grant}\0{k}").as_bytes());
    format!("~{}", hex::encode(&mac[..16]))
}

/// The `k` column of a key: its blind index (hex) when the dataset's key is sealed.
pub fn key_column<'a>(keys: Option<&DataKeys>, key_sealed: bool, key: &'a str) -> ExchangeResult<Cow<'a, str>> {
    if !key_sealed {
        return Ok(Cow::Borrowed(key));
    }
    let keys = keys.ok_or_else(|| {
        ExchangeError::Sealed("the dataset's key is stored as a blind index but security.encrypt_sensitive is off (no data keys)".into())
    })?;
    Ok(Cow::Owned(hex::encode(keys.blind_index(key.as_bytes()))))
}

/// How a value of a sensitive item (one with a masking kind, R-EX-3) is written to the access log: its
/// masked form and its audit token (`hex(HMAC-SM3(index key, "audit" ‖ 0 ‖ value))`, see [`audit_token`])
/// joined by `#`, so that the trail holds no sensitive value in clear and an auditor can still find every
/// access to one subject. The token is not the dataset's blind index (another input), so the trail does not
/// give out the key column's values. Values of other items, and every value when no data keys are loaded
/// (`security.encrypt_sensitive = false`), are logged as they are.
pub fn logged_value(keys: Option<&DataKeys>, rules: &MaskRules, mask: Option<MaskKind>, value: &str) -> String {
    match (keys, mask) {
        (Some(_), Some(kind)) => format!("{}#{}", rules.mask(kind, value), audit_token(keys, value)),
        _ => value.to_string(),
    }
}

/// What an auditor's search for a subject matches in the access log: the audit token of the (normalised)
/// subject, or the subject itself when no data keys are loaded.
pub fn audit_token(keys: Option<&DataKeys>, subject: &str) -> String {
    match keys {
        Some(keys) => {
            let mut input = Vec::with_capacity(subject.len() + 6);
            input.extend_from_slice(b"audit\0");
            input.extend_from_slice(subject.as_bytes());
            hex::encode(keys.blind_index(&input))
        }
        None => subject.to_string(),
    }
}

/// The text an auditor's search for one data subject looks for in the access log (`subject=` on the audit
/// trail): a 公民身份号码 or 统一社会信用代码 is normalised first, as lookups normalise keys; any other key is
/// taken as it is, without `%`, `_`, a backslash, a double quote or a control character.
pub fn subject_search(ex: &Exchange, subject: &str) -> ExchangeResult<String> {
    subject_token(ex.keys().as_deref(), ex.sharing.today(), subject)
}

/// [`subject_search`] with the key ring and today's date given (the CLI, without a data plane).
pub fn subject_token(keys: Option<&DataKeys>, today: chrono::NaiveDate, subject: &str) -> ExchangeResult<String> {
    let s = subject.trim();
    if s.is_empty() || s.chars().count() > 200 {
        return Err(crate::invalid("subject", "must be 1–200 characters"));
    }
    let normalised = if let Some((_, normalised)) = crate::exemption::identify_subject(today, s) {
        normalised
    } else if let Some(bad) = s.chars().find(|c| matches!(c, '%' | '_' | '\\' | '"') || c.is_control()) {
        return Err(crate::invalid("subject", format!("'{}' may not be part of a subject", bad.escape_default())));
    } else {
        s.to_string()
    };
    Ok(audit_token(keys, &normalised))
}

/// What a re-encryption pass found and did, per dataset.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RekeyReport {
    pub resource_code: String,
    pub rows: i64,
    /// Rows rewritten (or, in a dry run, that would be).
    pub rows_rewritten: i64,
    /// Encrypted values found under each key number, before the pass.
    pub values_by_key: std::collections::BTreeMap<u32, i64>,
    /// Values of sensitive items found in clear (encrypted by the pass).
    pub values_in_clear: i64,
    /// Encrypted values of items no longer sensitive (decrypted by the pass).
    pub values_no_longer_sensitive: i64,
    /// Whether the key column is (after the pass, would be) a blind index.
    pub key_sealed: bool,
}

/// 密钥轮换: brings every pooled dataset (or one) to the current key and catalog — values under an older key
/// re-encrypted under the active one, sensitive values found in clear encrypted, values of items no longer
/// sensitive decrypted, the key column turned into or out of a blind index. Holds each dataset's claim
/// (no batch loads meanwhile), one transaction per 1,000 rows; safe to interrupt and run again. With
/// `dry_run`, only counts. Each dataset's pass is audited as `data.rekey`, recorded in the transaction that
/// claims the dataset, before any value is rewritten. Platform administrators only.
pub async fn rekey(
    ex: &Exchange,
    actor: &shutong_identity::Principal,
    ctx: &shutong_audit::AuditContext,
    only: Option<&shutong_catalog::ResourceCode>,
    dry_run: bool,
) -> ExchangeResult<Vec<RekeyReport>> {
    if !actor.is_platform_admin() {
        return Err(ExchangeError::Forbidden("only platform administrators re-encrypt the pool".into()));
    }
    let ring = ex.keys();
    let keys = ring.as_deref();
    let mut out = Vec::new();
    for b in crate::binding::list_bindings(ex).await? {
        if only.is_some_and(|c| *c != b.resource_code) {
            continue;
        }
        let Some(table) = b.table_name.clone() else { continue };
        let p = crate::binding::published(ex, &b.resource_code).await?;
        let code = b.resource_code.to_string();
        let kinds: Vec<Option<MaskKind>> = b
            .columns
            .iter()
            .map(|c| if keys.is_some() { p.document.items.iter().find(|i| &i.name == c).and_then(|i| i.mask) } else { None })
            .collect();
        let key_col = b.key_item.as_ref().and_then(|k| b.columns.iter().position(|c| c == k)).unwrap_or(0);
        let want_key_sealed = kinds.get(key_col).copied().flatten().is_some();
        let mut rep = RekeyReport { resource_code: code.clone(), key_sealed: want_key_sealed, ..Default::default() };
        let claim = -1i64;
        if !dry_run {
            // The pass begins with its event, in the transaction that claims the dataset (in the pool's
            // outbox when the pool is a database of its own): no ciphertext is rewritten unless the trail
            // holds the pass that rewrites it.
            let mut change = crate::binding::pool_change(ex, ctx).await?;
            if !crate::ingest::claim(&mut **change.tx(), ex, &code, claim, shutong_store::now_ms()).await? {
                return Err(ExchangeError::Conflict(format!("a batch of {code} is being loaded: run again when it has finished")));
            }
            change
                .record(shutong_audit::NewAuditEvent {
                    action: shutong_audit::Action::DataRekey,
                    target_kind: "resource",
                    target_id: code.clone(),
                    department_id: Some(b.provider_department_id),
                    detail: serde_json::json!({"active_key": keys.map(|k| k.active()), "key_sealed": want_key_sealed}),
                })
                .await?;
            crate::binding::commit_pool_change(ex, change).await?;
        }
        let result = rekey_table(ex, &b, &table, &kinds, key_col, want_key_sealed, dry_run, &mut rep).await;
        if !dry_run {
            let _ = sqlx::query(
                "UPDATE exchange_bindings SET busy_batch = NULL, busy_since = NULL, key_sealed = CASE WHEN $1 THEN $2 ELSE key_sealed END \
                 WHERE resource_code = $3 AND busy_batch = $4",
            )
            .bind(result.is_ok())
            .bind(want_key_sealed as i64)
            .bind(&code)
            .bind(claim)
            .execute(ex.pool.pool())
            .await;
            ex.invalidate();
        }
        result?;
        out.push(rep);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn rekey_table(
    ex: &Exchange,
    b: &crate::model::BindingView,
    table: &str,
    kinds: &[Option<MaskKind>],
    key_col: usize,
    want_key_sealed: bool,
    dry_run: bool,
    rep: &mut RekeyReport,
) -> ExchangeResult<()> {
    use shutong_store::Row as _;
    let ring = ex.keys();
    let keys = ring.as_deref();
    let code = b.resource_code.as_str();
    let n = b.columns.len();
    let cols: String = (0..n).map(|i| format!(", c{i}")).collect();
    // Walked in change-sequence order (unique per row, and unchanged by the pass, unlike `k`).
    let select = format!("SELECT k, s{cols} FROM {table} WHERE s > $1 ORDER BY s LIMIT 1000");
    let sets: String = (0..n).map(|i| format!(", c{i} = ${}", i + 2)).collect();
    let update = format!("UPDATE {table} SET k = $1{sets} WHERE k = ${}", n + 2);
    let mut after: i64 = -1;
    loop {
        let rows = sqlx::query(&select).bind(after).fetch_all(ex.pool.pool()).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut changes: Vec<(String, String, Vec<Option<String>>)> = Vec::new();
        for r in &rows {
            let k: String = r.try_get(0)?;
            let seq: i64 = r.try_get(1)?;
            let mut values: Vec<Option<String>> = (0..n).map(|i| r.try_get::<Option<String>, _>(i + 2)).collect::<Result<_, _>>()?;
            rep.rows += 1;
            let mut changed = false;
            for (c, v) in values.iter_mut().enumerate() {
                let Some(raw) = v.as_deref() else { continue };
                let parts = parts(raw);
                if let Some(p) = &parts {
                    *rep.values_by_key.entry(p.key).or_default() += 1;
                }
                let new = match (kinds.get(c).copied().flatten(), &parts) {
                    (Some(kind), Some(p)) => {
                        let current = keys.is_some_and(|k| k.active() == p.key) && p.fingerprint == rule_fingerprint(&ex.mask_rules, kind);
                        if current {
                            None
                        } else {
                            let plain = open(keys, code, &b.columns[c], raw)?.into_owned();
                            Some(Some(plain))
                        }
                    }
                    (Some(_), None) => {
                        rep.values_in_clear += 1;
                        Some(Some(raw.to_string()))
                    }
                    (None, Some(_)) => {
                        rep.values_no_longer_sensitive += 1;
                        Some(Some(open(keys, code, &b.columns[c], raw)?.into_owned()))
                    }
                    (None, None) => None,
                };
                if let Some(Some(plain)) = new {
                    *v = Some(match (kinds.get(c).copied().flatten(), keys) {
                        (Some(kind), Some(keys)) => seal(keys, &ex.mask_rules, code, &b.columns[c], kind, &plain)?,
                        _ => plain,
                    });
                    changed = true;
                }
            }
            let key_plain = match values.get(key_col).and_then(|v| v.as_deref()) {
                Some(raw) => open(keys, code, &b.columns[key_col], raw)?.into_owned(),
                None => k.clone(),
            };
            let new_k = key_column(keys, want_key_sealed, &key_plain)?.into_owned();
            if new_k != k {
                changed = true;
            }
            after = seq;
            if changed {
                rep.rows_rewritten += 1;
                changes.push((k, new_k, values));
            }
        }
        if !dry_run && !changes.is_empty() {
            let mut tx = ex.pool.pool().begin().await?;
            for (old_k, new_k, values) in &changes {
                let mut q = sqlx::query(&update).bind(new_k.as_str());
                for v in values {
                    q = q.bind(v.as_deref());
                }
                q.bind(old_k.as_str()).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
    }
}

/// 数据密钥轮换 (办法 第二十一条: 安全保障): a new data key becomes the active one and the key ring is saved to
/// `path` (running servers take it up within two seconds). Platform administrators only; audited as
/// `keys.rotate` (the event is written in a transaction that commits only once the file is saved).
pub async fn rotate_key(
    db: &shutong_store::Db,
    actor: &shutong_identity::Principal,
    ctx: &shutong_audit::AuditContext,
    ring: &mut shutong_crypto::DataKeys,
    path: &std::path::Path,
) -> ExchangeResult<u32> {
    if !actor.is_platform_admin() {
        return Err(ExchangeError::Forbidden("only platform administrators rotate data keys".into()));
    }
    let id = ring.rotate();
    save_key_ring(db, ctx, ring, path, shutong_audit::Action::KeysRotate, id).await?;
    Ok(id)
}

/// 数据密钥退役: removes data key `id` from the key ring in `path`, refused while any stored value is still
/// encrypted under it (run `rekey` first) or while it is the active key. Platform administrators only;
/// audited as `keys.retire`.
pub async fn retire_key(
    ex: &Exchange,
    actor: &shutong_identity::Principal,
    ctx: &shutong_audit::AuditContext,
    ring: &mut shutong_crypto::DataKeys,
    path: &std::path::Path,
    id: u32,
) -> ExchangeResult<()> {
    if !actor.is_platform_admin() {
        return Err(ExchangeError::Forbidden("only platform administrators retire data keys".into()));
    }
    let reports = rekey(ex, actor, ctx, None, true).await?;
    let still: i64 = reports.iter().map(|r| r.values_by_key.get(&id).copied().unwrap_or(0)).sum();
    if still > 0 {
        return Err(ExchangeError::Conflict(format!("key {id} still encrypts {still} values: run `shutong keys rekey` first")));
    }
    ring.retire(id).map_err(|m| invalid("id", m))?;
    save_key_ring(&ex.db, ctx, ring, path, shutong_audit::Action::KeysRetire, id).await
}

/// Saves the key ring with its audit event: the event is inserted, the file written, then the event
/// committed; a failed save rolls the event back.
async fn save_key_ring(
    db: &shutong_store::Db,
    ctx: &shutong_audit::AuditContext,
    ring: &shutong_crypto::DataKeys,
    path: &std::path::Path,
    action: shutong_audit::Action,
    id: u32,
) -> ExchangeResult<()> {
    let mut tx = db.pool().begin().await?;
    let event = shutong_audit::NewAuditEvent {
        action,
        target_kind: "data_key",
        target_id: id.to_string(),
        department_id: None,
        detail: serde_json::json!({"key": id, "active": ring.active(), "keys": ring.ids()}),
    };
    shutong_audit::record(&mut tx, ctx, event).await?;
    ring.save(path).map_err(|e| ExchangeError::Sealed(e.to_string()))?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_masked_reads_need_no_key() {
        let keys = DataKeys::generate();
        let rules = MaskRules::default();
        let v = seal(&keys, &rules, "101/000001", "公民身份号码", MaskKind::IdNumber, "110101199003071235").unwrap();
        assert!(is_sealed(&v));
        assert!(!v.contains("199003071235"), "{v}");
        let fp = rule_fingerprint(&rules, MaskKind::IdNumber);
        // Masked: from the stored masked form, without any key.
        let masked = reveal(None, &rules, "101/000001", "公民身份号码", &v, Some((MaskKind::IdNumber, &fp))).unwrap();
        assert_eq!(masked, rules.mask(MaskKind::IdNumber, "110101199003071235"));
        // Clear: decrypted.
        assert_eq!(reveal(Some(&keys), &rules, "101/000001", "公民身份号码", &v, None).unwrap(), "110101199003071235");
        // A changed rule: decrypted and masked afresh.
        let stale = reveal(Some(&keys), &rules, "101/000001", "公民身份号码", &v, Some((MaskKind::Name, "0000"))).unwrap();
        assert_eq!(stale, rules.mask(MaskKind::Name, "110101199003071235"));
        // Moved to another item or dataset, or under another key ring: refused.
        assert!(open(Some(&keys), "101/000001", "姓名", &v).is_err());
        assert!(open(Some(&keys), "101/000002", "公民身份号码", &v).is_err());
        assert!(open(Some(&DataKeys::generate()), "101/000001", "公民身份号码", &v).is_err());
        assert!(open(None, "101/000001", "公民身份号码", &v).is_err());
        // Clear values pass through.
        assert_eq!(open(None, "c", "i", "plain").unwrap(), "plain");
        // A masked form with colons still parses.
        let addr = seal(&keys, &rules, "c", "地址", MaskKind::Address, "A:B:C 路 1 号").unwrap();
        assert_eq!(open(Some(&keys), "c", "地址", &addr).unwrap(), "A:B:C 路 1 号");
    }
}

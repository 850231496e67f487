#![doc = include_str!("../README.md")]

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use shutong_reference::{MaskKind, MaskRule};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole configuration of a node.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the server listens on. Default `127.0.0.1:8080`.
    pub listen: String,
    /// Directory for the SQLite database and local files. Default `./shutong-data`.
    pub data_dir: PathBuf,
    /// `postgres://…` for production; unset means SQLite in `data_dir`.
    #[serde(serialize_with = "redact_opt")]
    pub database_url: Option<SecretString>,
    /// Largest number of pooled database connections. Default 16.
    pub database_max_connections: u32,
    /// Seconds to wait for a database connection before answering 503. Default 3.
    pub database_timeout_seconds: u64,
    /// Username of the platform administrator created on first start. Default `admin`.
    pub admin_username: String,
    /// Password of that administrator; generated and printed once if unset.
    #[serde(serialize_with = "redact_opt")]
    pub admin_password: Option<SecretString>,
    /// `text` or `json` logs. Default `text`.
    pub log_format: String,
    pub node: NodeConfig,
    pub security: SecurityConfig,
    pub limits: LimitsConfig,
    pub sharing: SharingConfig,
    pub exchange: ExchangeConfig,
    pub audit: AuditConfig,
    pub quality: QualityConfig,
    /// 脱敏规则 overrides per item kind, e.g. `[masking.mobile] keep_head = 3, keep_tail = 4`. Kinds:
    /// id_number, mobile, landline, name, address, credit_code, bank_card, email. Unset kinds keep the
    /// defaults of SPEC §5.
    pub masking: BTreeMap<MaskKind, MaskRule>,
}

/// 节点: this platform node.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub name: String,
    /// `national`, `province`, `city` or `county`.
    pub level: String,
    /// `outer` (电子政务外网) or `inner` (电子政务内网).
    pub zone: String,
    /// GB/T 2260 code of the node's region.
    pub region_code: String,
    /// The department running the platform (共享主管部门), created on first start.
    pub authority_name: String,
    pub authority_credit_code: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    pub password_min_length: usize,
    pub max_failed_logins: i64,
    pub lockout_minutes: i64,
    pub session_ttl_minutes: i64,
    pub max_token_ttl_days: i64,
    /// How long a resolved bearer token (session or API token) is reused without asking the database, ms.
    /// Identity changes through this process's API take effect at once; elsewhere within this time.
    /// Default 2000; 0 turns the cache off.
    pub principal_cache_ms: u64,
    /// Set the `Secure` flag on cookies (behind TLS). Default false for the local default.
    pub secure_cookies: bool,
    /// Requests per second from one client address (burst twice that); 0 = unlimited. Default 500.
    pub rate_per_ip: u32,
    /// Requests per second with one bearer token or session (burst twice that); 0 = unlimited. Default 5000.
    pub rate_per_token: u32,
    /// Store sensitive items (those with a masking kind) of pooled datasets encrypted with SM4-GCM, and a
    /// sensitive key item as its HMAC-SM3 blind index. Default true.
    pub encrypt_sensitive: bool,
    /// The data key file (created at first start, owner-only). Default `data_dir/keys/data-sm4.keys`.
    /// Ignored when `data_keys` is set.
    pub data_key_file: Option<PathBuf>,
    /// Data keys from configuration instead of the file: `"ID:HEX"` (32 hex digits each), the last one active.
    pub data_keys: Vec<String>,
    /// The blind-index key (32 hex digits), required with `data_keys`.
    pub index_key: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest JSON request body, bytes. Default 1 MiB.
    pub max_body_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./shutong-data"),
            database_url: None,
            database_max_connections: 16,
            database_timeout_seconds: 3,
            admin_username: "admin".into(),
            admin_password: None,
            log_format: "text".into(),
            node: NodeConfig::default(),
            security: SecurityConfig::default(),
            limits: LimitsConfig::default(),
            sharing: SharingConfig::default(),
            exchange: ExchangeConfig::default(),
            audit: AuditConfig::default(),
            quality: QualityConfig::default(),
            masking: BTreeMap::new(),
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "数通政务数据共享交换平台".into(),
            level: "province".into(),
            zone: "outer".into(),
            region_code: "320000".into(),
            authority_name: "政务信息资源共享主管部门".into(),
            authority_credit_code: "11320000MB0000019A".into(),
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            password_min_length: 10,
            max_failed_logins: 5,
            lockout_minutes: 15,
            session_ttl_minutes: 480,
            max_token_ttl_days: 366,
            principal_cache_ms: 2000,
            secure_cookies: false,
            rate_per_ip: 500,
            rate_per_token: 5000,
            encrypt_sensitive: true,
            data_key_file: None,
            data_keys: Vec::new(),
            index_key: None,
        }
    }
}

/// 共享申请 deadlines, in working days of the official calendar (办法 第十六条), and the reminders.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharingConfig {
    /// A provider answers a conditional request within this many working days. 1–10, default 10 (第十六条).
    pub answer_workdays: i64,
    /// 协商: the provider's answer in a negotiation. Default 10.
    pub negotiation_workdays: i64,
    /// 协调: the sharing authority's coordination. Default 15.
    pub coordination_workdays: i64,
    /// 领导小组: the leading group's decision. Default 20.
    pub leading_group_workdays: i64,
    /// A reminder goes to the owner this many working days before a deadline. Default 3.
    pub reminder_workdays: i64,
    /// Grant holders and providers are told this many days before a grant expires. Default 30.
    pub expiry_notice_days: i64,
    /// How often the server sweeps deadlines (overdue, reminders, expiries), seconds. Default 60; 0 turns the
    /// background sweep off (run `shutong request sweep` from a scheduler instead).
    pub sweep_seconds: u64,
}

impl Default for SharingConfig {
    fn default() -> Self {
        SharingConfig {
            answer_workdays: 10,
            negotiation_workdays: 10,
            coordination_workdays: 15,
            leading_group_workdays: 20,
            reminder_workdays: 3,
            expiry_notice_days: 30,
            sweep_seconds: 60,
        }
    }
}

/// The data plane (共享交换): uploads, batches, pages, per-grant rates, the pool database.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExchangeConfig {
    /// Where pooled datasets live. Default: the platform database on PostgreSQL; `pool.db` in the data
    /// directory on SQLite (so that a long batch never holds the platform database's write lock).
    pub pool_url: Option<String>,
    /// Largest upload of one batch, MiB. Default 1024.
    pub max_upload_mb: u64,
    /// Rows per chunk handed from the parser to the writer. Default 2000.
    pub chunk_rows: usize,
    /// Rejected rows kept in a batch report (all are counted). Default 10000.
    pub max_reported_rejects: usize,
    /// A batch's claim on its dataset lapses when not refreshed for this long (a crashed writer). Default 120.
    pub claim_timeout_seconds: i64,
    /// Requests per second per grant; 0 = unlimited. Default 2000.
    pub grant_rate_per_second: u32,
    /// Largest page of a query or change feed. Default 1000.
    pub max_page: i64,
    /// How long a resolved access decision is reused by this process, ms (changes made through this process
    /// take effect at once; other replicas' within this time). Default 1000; 0 turns the cache off.
    pub access_cache_ms: i64,
    /// Timeout of a proxied call to a provider's service, seconds. Default 10.
    pub proxy_timeout_seconds: u64,
    /// Rows of the demo's synthetic population (`serve --demo`). Default 20000.
    pub demo_population_rows: u64,
    /// The most an uploaded XLSX workbook may unpack to, MiB (its sheets are streamed). Default 4096.
    pub xlsx_max_unpacked_mb: u64,
    /// The most a part of an uploaded workbook may unpack to as a multiple of its packed size (zip bombs).
    /// Default 200.
    pub xlsx_max_ratio: u64,
    /// The most a workbook's shared strings (and other parts read whole) may unpack to, MiB: the reader keeps
    /// them in memory, about two and a half times this at most. Default 256.
    pub xlsx_max_shared_strings_mb: u64,
    /// An exchange node (前置机) whose last heartbeat is older than this is flagged as silent, and its
    /// department's administrators see it in 待办, seconds. Default 600.
    pub node_silence_seconds: i64,
    /// The longest a change-feed read may wait for the next change (`wait_ms`, long-poll), ms. Default 30000.
    pub changes_max_wait_ms: i64,
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        ExchangeConfig {
            pool_url: None,
            max_upload_mb: 1024,
            chunk_rows: 2000,
            max_reported_rejects: 10_000,
            claim_timeout_seconds: 120,
            grant_rate_per_second: 2000,
            max_page: 1000,
            access_cache_ms: 1000,
            proxy_timeout_seconds: 10,
            demo_population_rows: 20_000,
            xlsx_max_unpacked_mb: 4096,
            xlsx_max_ratio: 200,
            xlsx_max_shared_strings_mb: 256,
            node_silence_seconds: 600,
            changes_max_wait_ms: 30_000,
        }
    }
}

/// Data quality (数据质量, 办法 第十七条): when the server checks datasets by itself.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Check a dataset after every committed batch (as a job of the runner; batches committed while a check
    /// runs are checked by one more run). Default true; false: only checks asked for and the schedule.
    pub check_after_batch: bool,
    /// How often every dataset's freshness is checked, seconds. Default 86400 (daily); 0 turns it off.
    pub freshness_interval_seconds: u64,
    /// Working days a provider has to answer an objection (疑义校核, 办法 第十八条). Default 5.
    pub objection_answer_days: u32,
    /// The largest evidence file of an objection, MiB. Default 10.
    pub objection_evidence_max_mb: u64,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            check_after_batch: true,
            freshness_interval_seconds: 86_400,
            objection_answer_days: 5,
            objection_evidence_max_mb: 10,
        }
    }
}

/// The tamper-evident audit trail (审计): sealing, signed checkpoints, retention (docs/AUDIT-FORMAT.md).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The node's SM2 private key (PKCS#8 PEM, owner-only permissions), created at first start if missing.
    /// Default `keys/node-sm2.pem` in the data directory. Replicas of one node share it.
    pub key_file: Option<PathBuf>,
    /// How often committed events are sealed into the hash chain, ms. Default 500.
    pub seal_interval_ms: u64,
    /// Sign a checkpoint after this many sealed events. Default 10000.
    pub checkpoint_every: i64,
    /// …or after this many seconds, if anything was sealed since the last one. Default 60.
    pub checkpoint_interval_seconds: i64,
    /// Sealed events older than this may be archived out of the database (`shutong audit archive`).
    /// Default 184 (six months and more; 办法 第二十一条 asks for the trail to be kept).
    pub retention_days: i64,
    /// Where `shutong audit archive` writes segments. Default `audit-archive` in the data directory.
    pub archive_dir: Option<PathBuf>,
    /// How often the server archives what is past `retention_days` by itself, seconds (as `shutong audit
    /// archive` does). Default 86400 (daily); 0: only by the command.
    pub archive_interval_seconds: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            key_file: None,
            seal_interval_ms: 500,
            checkpoint_every: 10_000,
            checkpoint_interval_seconds: 60,
            retention_days: 184,
            archive_dir: None,
            archive_interval_seconds: 86_400,
        }
    }
}

impl Config {
    /// The node's SM2 key file.
    pub fn audit_key_file(&self) -> PathBuf {
        self.audit.key_file.clone().unwrap_or_else(|| self.data_dir.join("keys").join("node-sm2.pem"))
    }

    /// The time (Unix ms) before which sealed audit events are past `audit.retention_days`, as of `now_ms`.
    pub fn audit_retention_cutoff_ms(&self, now_ms: i64) -> i64 {
        now_ms - self.audit.retention_days * 86_400_000
    }

    /// The data key file (SM4 keys of sensitive items at rest).
    pub fn data_key_file(&self) -> PathBuf {
        self.security.data_key_file.clone().unwrap_or_else(|| self.data_dir.join("keys").join("data-sm4.keys"))
    }

    /// Where archived audit segments go.
    pub fn audit_archive_dir(&self) -> PathBuf {
        self.audit.archive_dir.clone().unwrap_or_else(|| self.data_dir.join("audit-archive"))
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { max_body_bytes: 1024 * 1024 }
    }
}

fn redact_opt<S: Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str("[REDACTED]"),
        None => s.serialize_none(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        ConfigError::Invalid(e.to_string())
    }
}

impl Config {
    /// Loads defaults, then `file` (or `./shutong.toml` if it exists), then `SHUTONG_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, Env::prefixed("SHUTONG_"))
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                if !f.exists() {
                    return Err(ConfigError::Invalid(format!("config file {} does not exist", f.display())));
                }
                fig = fig.merge(Toml::file_exact(f));
            }
            None if Path::new("shutong.toml").exists() => fig = fig.merge(Toml::file_exact("shutong.toml")),
            None => {}
        }
        let env = env.filter(|k| !k.as_str().starts_with("test_")).split("__");
        let config: Config = fig.merge(env).extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |k: &str, m: String| Err(ConfigError::Invalid(format!("{k}: {m}")));
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad("listen", format!("'{}' is not an address like 127.0.0.1:8080", self.listen));
        }
        if !["national", "province", "city", "county"].contains(&self.node.level.as_str()) {
            return bad("node.level", format!("'{}' is not national, province, city or county", self.node.level));
        }
        if !["outer", "inner"].contains(&self.node.zone.as_str()) {
            return bad("node.zone", format!("'{}' is not outer or inner", self.node.zone));
        }
        if let Err(e) = shutong_reference::RegionCode::parse(&self.node.region_code) {
            return bad("node.region_code", e.to_string());
        }
        if let Err(e) = shutong_reference::CreditCode::parse(&self.node.authority_credit_code) {
            return bad("node.authority_credit_code", e.to_string());
        }
        if !["text", "json"].contains(&self.log_format.as_str()) {
            return bad("log_format", format!("'{}' is not text or json", self.log_format));
        }
        if self.limits.max_body_bytes < 1024 {
            return bad("limits.max_body_bytes", "must be at least 1024".into());
        }
        for (kind, rule) in &self.masking {
            if rule.keep_head + rule.keep_tail > 64 {
                return bad(&format!("masking.{}", kind.as_str()), "keep_head + keep_tail must be at most 64".into());
            }
        }
        let sh = &self.sharing;
        if !(1..=10).contains(&sh.answer_workdays) {
            return bad("sharing.answer_workdays", "must be between 1 and 10 (办法 第十六条: within 10 working days)".into());
        }
        for (k, v) in [
            ("sharing.negotiation_workdays", sh.negotiation_workdays),
            ("sharing.coordination_workdays", sh.coordination_workdays),
            ("sharing.leading_group_workdays", sh.leading_group_workdays),
        ] {
            if !(1..=120).contains(&v) {
                return bad(k, "must be between 1 and 120".into());
            }
        }
        if !(0..=10).contains(&sh.reminder_workdays) {
            return bad("sharing.reminder_workdays", "must be between 0 and 10".into());
        }
        if !(0..=365).contains(&sh.expiry_notice_days) {
            return bad("sharing.expiry_notice_days", "must be between 0 and 365".into());
        }
        if !(1..=30).contains(&self.quality.objection_answer_days) {
            return bad("quality.objection_answer_days", "must be between 1 and 30".into());
        }
        if !(1..=1024).contains(&self.quality.objection_evidence_max_mb) {
            return bad("quality.objection_evidence_max_mb", "must be between 1 and 1024".into());
        }
        let ex = &self.exchange;
        if ex.max_upload_mb == 0 {
            return bad("exchange.max_upload_mb", "must be at least 1".into());
        }
        for (name, value) in [
            ("exchange.xlsx_max_unpacked_mb", ex.xlsx_max_unpacked_mb),
            ("exchange.xlsx_max_ratio", ex.xlsx_max_ratio),
            ("exchange.xlsx_max_shared_strings_mb", ex.xlsx_max_shared_strings_mb),
        ] {
            if !(1..=1 << 20).contains(&value) {
                return bad(name, "must be between 1 and 1048576".into());
            }
        }
        if !(1..=100_000).contains(&ex.chunk_rows) {
            return bad("exchange.chunk_rows", "must be between 1 and 100000".into());
        }
        if ex.claim_timeout_seconds < 1 {
            return bad("exchange.claim_timeout_seconds", "must be at least 1".into());
        }
        if !(10..=30 * 86_400).contains(&ex.node_silence_seconds) {
            return bad("exchange.node_silence_seconds", "must be between 10 and 2592000".into());
        }
        if !(0..=300_000).contains(&ex.changes_max_wait_ms) {
            return bad("exchange.changes_max_wait_ms", "must be between 0 and 300000".into());
        }
        if !(1..=100_000).contains(&ex.max_page) {
            return bad("exchange.max_page", "must be between 1 and 100000".into());
        }
        if let Some(u) = &ex.pool_url
            && !(u.starts_with("sqlite:") || u.starts_with("postgres://") || u.starts_with("postgresql://"))
        {
            return bad("exchange.pool_url", "use sqlite://… or postgres://…".into());
        }
        let au = &self.audit;
        if !(10..=3_600_000).contains(&au.seal_interval_ms) {
            return bad("audit.seal_interval_ms", "must be between 10 and 3600000".into());
        }
        if au.checkpoint_every < 1 {
            return bad("audit.checkpoint_every", "must be at least 1".into());
        }
        if au.checkpoint_interval_seconds < 1 {
            return bad("audit.checkpoint_interval_seconds", "must be at least 1".into());
        }
        if au.retention_days < 0 {
            return bad("audit.retention_days", "must not be negative".into());
        }
        if self.security.password_min_length < 8 {
            return bad("security.password_min_length", "must be at least 8".into());
        }
        Ok(())
    }

    /// The database URL in force: the configured one, or SQLite in the data directory.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose_secret().to_string(),
            None => format!("sqlite://{}", self.data_dir.join("shutong.db").display()),
        }
    }

    /// The pool database's URL if it is a database of its own (`None`: the platform database).
    pub fn effective_pool_url(&self) -> Option<String> {
        match &self.exchange.pool_url {
            Some(u) => Some(u.clone()),
            None if self.effective_database_url().starts_with("sqlite:") => {
                Some(format!("sqlite://{}", self.data_dir.join("pool.db").display()))
            }
            None => None,
        }
    }

    /// The configuration as TOML with secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_keys_rejected_and_secrets_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::File::create(&p).unwrap().write_all(b"listen = \"127.0.0.1:9\"\nbogus = 1\n").unwrap();
        let err = Config::load_from(Some(&p), Env::prefixed("SHUTONG_NONE_")).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");

        std::fs::File::create(&p).unwrap().write_all(b"admin_password = \"Secret-123456\"\n[node]\nlevel = \"city\"\n").unwrap();
        let c = Config::load_from(Some(&p), Env::prefixed("SHUTONG_NONE_")).unwrap();
        assert_eq!(c.node.level, "city");
        let shown = c.to_redacted_toml();
        assert!(!shown.contains("Secret-123456") && shown.contains("REDACTED"), "{shown}");

        std::fs::File::create(&p).unwrap().write_all(b"[masking.mobile]\nkeep_head = 0\nkeep_tail = 4\n").unwrap();
        let c = Config::load_from(Some(&p), Env::prefixed("SHUTONG_NONE_")).unwrap();
        assert_eq!(c.masking[&MaskKind::Mobile].keep_tail, 4);
        std::fs::File::create(&p).unwrap().write_all(b"[masking.passport]\nkeep_head = 1\nkeep_tail = 1\n").unwrap();
        assert!(Config::load_from(Some(&p), Env::prefixed("SHUTONG_NONE_")).unwrap_err().to_string().contains("passport"));

        std::fs::File::create(&p).unwrap().write_all(b"[node]\nzone = \"middle\"\n").unwrap();
        assert!(Config::load_from(Some(&p), Env::prefixed("SHUTONG_NONE_")).unwrap_err().to_string().contains("node.zone"));
    }
}

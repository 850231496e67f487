#![doc = include_str!("../README.md")]

pub mod access;
pub mod accesslog;
pub mod binding;
pub mod exemption;
pub mod figures;
pub mod files;
pub mod flags;
pub mod ingest;
mod lookups;
pub mod model;
pub mod nodes;
pub mod parse;
pub mod proxy;
pub mod read;
pub mod scan;
pub mod schema;
pub mod sealed;
pub mod synth;
pub mod validate;

pub use access::*;
pub use accesslog::AccessLog;
pub use binding::*;
pub use exemption::*;
pub use files::*;
pub use ingest::*;
pub use model::*;
pub use proxy::{ProxyAnswer, ProxyCall, proxy};
pub use read::*;

use shutong_reference::MaskRules;
use shutong_sharing::Sharing;
use shutong_store::{Db, StoreError};
use std::sync::Arc;

/// Errors of the data plane, each mapping to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// One field, parameter, column or value is invalid (422).
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// Not found, or not visible to the principal (404).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The principal may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No grant in force covers this access (403, R-EX-1).
    #[error("{0}")]
    NoGrant(String),
    /// The binding or batch is not in a state that allows this (409).
    #[error("{0}")]
    Conflict(String),
    /// A batch uploaded in parts failed between two parts: send it again from part 1 (409).
    #[error("{0}")]
    PartsLost(String),
    /// A grant's daily quota or rate limit is used up (429).
    #[error("{0}")]
    Limited(String),
    /// The upload is larger than the limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// A batch was refused as a whole (422); its report names every rejected row.
    #[error("{message}")]
    BatchRejected { message: String, report: Box<BatchReport> },
    /// The provider's own service failed or answered with something the platform cannot filter (502).
    #[error("{0}")]
    Upstream(String),
    /// An encrypted value could not be decrypted: a missing or wrong data key, or a value altered at rest (500).
    #[error("sensitive data at rest: {0}")]
    Sealed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ExchangeError {
    fn from(e: sqlx::Error) -> Self {
        ExchangeError::Store(e.into())
    }
}

impl From<shutong_catalog::CatalogError> for ExchangeError {
    fn from(e: shutong_catalog::CatalogError) -> Self {
        use shutong_catalog::CatalogError as C;
        match e {
            C::Store(s) => ExchangeError::Store(s),
            C::NotFound { what } => ExchangeError::NotFound { what },
            C::Forbidden(m) => ExchangeError::Forbidden(m),
            other => ExchangeError::Conflict(other.to_string()),
        }
    }
}

impl From<shutong_sharing::SharingError> for ExchangeError {
    fn from(e: shutong_sharing::SharingError) -> Self {
        use shutong_sharing::SharingError as S;
        match e {
            S::Store(s) => ExchangeError::Store(s),
            S::NotFound { what } => ExchangeError::NotFound { what },
            S::Forbidden(m) => ExchangeError::Forbidden(m),
            S::Validation { field, message } => ExchangeError::Validation { field, message },
            other => ExchangeError::Conflict(other.to_string()),
        }
    }
}

pub type ExchangeResult<T> = Result<T, ExchangeError>;

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ExchangeError {
    ExchangeError::Validation { field: field.to_string(), message: message.into() }
}

/// Limits and tuning of the data plane (`[exchange]` in the configuration).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Rows per insert statement and per chunk handed from the parser to the writer.
    pub chunk_rows: usize,
    /// Rejected rows kept in a batch report (all are counted).
    pub max_reported_rejects: usize,
    /// A batch's claim on its dataset lapses when not refreshed for this long (a crashed writer).
    pub claim_timeout_ms: i64,
    /// Requests per second per grant (0: unlimited).
    pub grant_rate_per_second: u32,
    /// Largest page of a query or change feed.
    pub max_page: i64,
    /// How long a resolved access decision may be reused within this process (grant, binding, items).
    /// Every grant, catalog or binding change made through this process invalidates it at once.
    pub access_cache_ms: i64,
    /// Directory for bound files.
    pub files_dir: std::path::PathBuf,
    /// Timeout of a proxied call to a provider's service.
    pub proxy_timeout_ms: u64,
    /// A node whose last heartbeat is older than this is silent (`exchange.node_silence_seconds`).
    pub node_silence_ms: i64,
    /// The longest a change-feed read waits for the next change (`exchange.changes_max_wait_ms`).
    pub changes_max_wait_ms: i64,
    /// What an uploaded XLSX workbook may unpack to (`exchange.xlsx_*`).
    pub xlsx_limits: shutong_catalog::spreadsheet::ZipLimits,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            chunk_rows: 2000,
            max_reported_rejects: 10_000,
            claim_timeout_ms: 120_000,
            grant_rate_per_second: 2000,
            max_page: 1000,
            access_cache_ms: 1000,
            files_dir: std::path::PathBuf::from("shutong-data/exchange-files"),
            proxy_timeout_ms: 10_000,
            node_silence_ms: 600_000,
            changes_max_wait_ms: 30_000,
            xlsx_limits: shutong_catalog::spreadsheet::ZipLimits::default(),
        }
    }
}

/// A failure of the pool's own driver (rusqlite, a batched lookup), as a store error: opaque to callers
/// (500), logged with its message.
pub(crate) fn store_failure(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ExchangeError {
    ExchangeError::Store(shutong_store::StoreError::Other(sqlx::Error::Io(std::io::Error::other(e))))
}

/// The data plane's context: the platform database (catalog, grants, audit), the pool database (datasets,
/// batches; the same database on PostgreSQL, `pool.db` beside the platform's on SQLite), the sharing
/// context for grants, masking rules, settings, and the process-wide caches and access log.
#[derive(Clone)]
pub struct Exchange {
    pub db: Db,
    pub pool: Db,
    pub sharing: Sharing,
    pub mask_rules: MaskRules,
    pub settings: Arc<Settings>,
    pub log: AccessLog,
    /// The pool is the platform database (PostgreSQL without `exchange.pool_url`).
    pub pool_in_platform_db: bool,
    pub(crate) runtime: Arc<access::Runtime>,
    /// SM4-GCM keys for sensitive items at rest (`security.encrypt_sensitive`); none: stored in clear.
    pub data_keys: Option<Arc<KeyRing>>,
}

/// The data key ring in use (密钥环, for 办法 第二十一条's security of shared data at rest), replaced whole
/// when its key file changes (`shutong keys rotate|retire`), so that running servers take up a new active
/// key without a restart. Readers take the current ring ([`Exchange::keys`]) once per batch, page or value.
#[derive(Debug)]
pub struct KeyRing {
    current: std::sync::RwLock<Arc<shutong_crypto::DataKeys>>,
}

impl KeyRing {
    pub fn new(keys: shutong_crypto::DataKeys) -> Self {
        KeyRing { current: std::sync::RwLock::new(Arc::new(keys)) }
    }

    pub fn get(&self) -> Arc<shutong_crypto::DataKeys> {
        match self.current.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `keys` in use. Refused (the ring in use stays) when the blind-index key differs: every stored
    /// blind index would stop matching.
    pub fn replace(&self, keys: shutong_crypto::DataKeys) -> Result<(), String> {
        let mut current = match self.current.write() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !current.same_index_key(&keys) {
            return Err("the new key ring has another blind-index key; it is not used".into());
        }
        *current = Arc::new(keys);
        Ok(())
    }
}

impl Exchange {
    pub fn new(db: Db, pool: Db, sharing: Sharing, mask_rules: MaskRules, settings: Settings, log: AccessLog) -> Self {
        let pool_in_platform_db = pool.backend() == shutong_store::Backend::Postgres && db.backend() == shutong_store::Backend::Postgres;
        let ex = Exchange {
            db,
            pool,
            sharing,
            mask_rules,
            settings: Arc::new(settings),
            log,
            pool_in_platform_db,
            runtime: Default::default(),
            data_keys: None,
        };
        // The effect of the pool's own changes (bindings, batches, files): cached access decisions forgotten.
        // Held weakly: the handler keeps neither the exchange nor its pool alive.
        let invalidator = ex.invalidator();
        ex.pool.effects().on_commit(move |_, notice| {
            let invalidator = invalidator.clone();
            async move {
                if matches!(notice, shutong_store::effects::Notice::DataChanged { .. }) {
                    invalidator.invalidate();
                }
            }
        });
        ex
    }

    /// A data plane on one database with default settings (tests, tools).
    pub fn with_defaults(db: Db) -> Self {
        let sharing = Sharing {
            db: db.clone(),
            calendar: Arc::new(shutong_reference::WorkCalendar::builtin()),
            clock: shutong_store::Clock::system(),
            deadlines: Default::default(),
        };
        let log = AccessLog::start(db.clone(), db.clone());
        Exchange::new(db.clone(), db, sharing, MaskRules::default(), Settings::default(), log)
    }

    /// Whether the pool lives in the platform database (PostgreSQL): then a batch's audit event is written in
    /// the batch's own transaction; otherwise through the outbox (`exchange_batches.audited`).
    pub fn same_database(&self) -> bool {
        self.pool_in_platform_db
    }

    /// The data key ring in use; none when sensitive items are stored in clear.
    pub fn keys(&self) -> Option<Arc<shutong_crypto::DataKeys>> {
        self.data_keys.as_ref().map(|r| r.get())
    }

    /// Forgets every cached access decision: called after grant, catalog, binding and key ring changes.
    pub fn invalidate(&self) {
        self.runtime.invalidate();
    }

    /// A handle that forgets this exchange's cached access decisions without keeping the exchange (or its
    /// database) alive: for the effects registered on the database.
    pub fn invalidator(&self) -> Invalidator {
        Invalidator(Arc::downgrade(&self.runtime))
    }
}

/// 阻断检查: what a batch passes before it commits — the quality rules its provider marked blocking
/// (`shutong_quality::BlockingRules`, registered at start-up; the data plane does not know the rules). `batch`
/// is the dataset's binding with the batch's own load table and columns: the rows the batch writes. An `Err`
/// refuses the batch with that message, naming the rule; nothing is applied.
pub trait BatchGate: Send + Sync {
    fn check<'a>(
        &'a self,
        ex: &'a Exchange,
        batch: &'a model::BindingView,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;
}

impl Exchange {
    /// Puts the batch gate in place (replacing an earlier one).
    pub fn set_batch_gate(&self, gate: Arc<dyn BatchGate>) {
        if let Ok(mut g) = self.runtime.batch_gate.write() {
            *g = Some(gate);
        }
    }

    pub(crate) fn batch_gate(&self) -> Option<Arc<dyn BatchGate>> {
        self.runtime.batch_gate.read().ok().and_then(|g| g.clone())
    }
}

/// See [`Exchange::invalidator`].
#[derive(Clone)]
pub struct Invalidator(std::sync::Weak<access::Runtime>);

impl Invalidator {
    /// Forgets every cached access decision and wakes the change-feed reads waiting for a change, if the
    /// exchange still exists.
    pub fn invalidate(&self) {
        if let Some(r) = self.0.upgrade() {
            r.invalidate();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod key_ring_tests {
    use super::KeyRing;
    use shutong_crypto::DataKeys;

    #[test]
    fn a_ring_with_another_index_key_is_not_used() {
        let first = DataKeys::generate();
        let text = first.to_text();
        let ring = KeyRing::new(DataKeys::parse(&text).unwrap());
        let mut rotated = DataKeys::parse(&text).unwrap();
        rotated.rotate();
        ring.replace(rotated).unwrap();
        assert_eq!(ring.get().active(), 2);
        let err = ring.replace(DataKeys::generate()).unwrap_err();
        assert!(err.contains("blind-index"), "{err}");
        assert_eq!((ring.get().active(), ring.get().ids()), (2, vec![1, 2]));
    }
}

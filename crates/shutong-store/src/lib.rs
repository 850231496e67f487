#![doc = include_str!("../README.md")]

pub mod effects;
pub mod ids;
pub mod jobs;
pub mod native;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use sqlx::any::AnyRow;
pub use sqlx::{Any, AnyConnection, Row, Transaction};

/// A row on either backend.
pub type AnyRowRef = AnyRow;

/// A transaction on either backend.
pub type Tx = Transaction<'static, Any>;

/// Which database the platform runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Errors of the storage layer, classified by what the caller should tell its client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or did not answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A unique constraint rejected the write.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A value the database cannot store as text (PostgreSQL refuses the NUL character): bad input, 400.
    #[error("a text value contains a character the database cannot store (NUL, U+0000)")]
    BadText,
    /// The database URL is not one of the supported forms.
    #[error("unsupported database URL (use sqlite://… or postgres://…)")]
    UnsupportedUrl,
    /// A stored value that does not parse as its type (an unknown status, a malformed document): the
    /// message names the table, the column and the value. Never read as a default: 500, logged.
    #[error("stored value does not parse: {0}")]
    Decode(String),
    /// A unit of work was committed without an audit event: a bug, refused and rolled back.
    #[error("a state change without its audit event was refused")]
    Unaudited,
    /// Anything else: a bug or a schema mismatch.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

/// Reads the text column `column` of a row of `table` and parses it with `parse` (a code of a closed list, a
/// date): a stored value that does not parse is [`StoreError::Decode`] naming the table, the column and the
/// value, never a default.
pub fn parse_column<T>(row: &AnyRow, table: &str, column: &str, parse: impl FnOnce(&str) -> Option<T>) -> StoreResult<T> {
    let text: String = row.try_get(column)?;
    parse(&text).ok_or_else(|| StoreError::decode(table, column, text))
}

/// A stored `YYYY-MM-DD` date.
pub fn parse_date_column(row: &AnyRow, table: &str, column: &str) -> StoreResult<chrono::NaiveDate> {
    parse_column(row, table, column, |s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// A stored `YYYY-MM-DD` date that may be NULL.
pub fn parse_optional_date_column(row: &AnyRow, table: &str, column: &str) -> StoreResult<Option<chrono::NaiveDate>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(|_| StoreError::decode(table, column, t))).transpose()
}

impl StoreError {
    /// A stored value of `table.column` that does not parse.
    pub fn decode(table: &str, column: &str, value: impl std::fmt::Display) -> StoreError {
        StoreError::Decode(format!("{table}.{column} holds '{value}'"))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => {
                StoreError::Unavailable(e)
            }
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    return StoreError::Conflict { constraint: db.constraint().unwrap_or("unique").to_string() };
                }
                // PostgreSQL 22021 (character_not_in_repertoire): text with U+0000 from a client.
                if db.code().as_deref() == Some("22021") {
                    return StoreError::BadText;
                }
                // PostgreSQL: class 08 (connection exception), 57P0x (shutdown), 53300 (too many connections).
                // SQLite primary codes: 5 BUSY, 6 LOCKED, 10 IOERR, 13 FULL, 14 CANTOPEN (extended codes
                // carry the primary code in their low byte).
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                let sqlite_primary =
                    db.try_downcast_ref::<sqlx::sqlite::SqliteError>().and_then(|_| code.parse::<i64>().ok()).map(|c| c & 0xff);
                if code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                    || matches!(sqlite_primary, Some(5 | 6 | 10 | 13 | 14))
                {
                    StoreError::Unavailable(e)
                } else {
                    StoreError::Other(e)
                }
            }
            _ => StoreError::Other(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Connection settings.
#[derive(Clone, Debug)]
pub struct DbOptions {
    pub max_connections: u32,
    /// How long a caller waits for a connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
    /// Statements slower than this are logged with their SQL (`None`: never; the pool's bulk inserts are
    /// long by design).
    pub slow_statement: Option<Duration>,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions { max_connections: 16, acquire_timeout: Duration::from_secs(3), slow_statement: Some(Duration::from_secs(1)) }
    }
}

/// The platform's database: a pool on one backend.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    url: std::sync::Arc<str>,
    /// The database file on SQLite (derived from `url` once).
    sqlite_path: Option<std::sync::Arc<std::path::Path>>,
    /// [`DbOptions::slow_statement`], for the native connections of short statements.
    slow_statement: Option<Duration>,
    /// What runs after a change commits (shared by every clone).
    effects: std::sync::Arc<effects::Effects>,
}

static MIGRATOR_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATOR_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A list of migrations as a migration source (the first ones of a backend, for `Db::migrate_to`).
#[derive(Debug)]
struct Migrations(Vec<sqlx::migrate::Migration>);

impl<'s> sqlx::migrate::MigrationSource<'s> for Migrations {
    fn resolve(
        self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>> + Send + 's>>
    {
        Box::pin(async move { Ok(self.0) })
    }
}

impl Db {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`). A SQLite file is created if missing.
    pub async fn connect(url: &str, options: &DbOptions) -> StoreResult<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
        } else {
            url.to_string()
        };
        let connect = AnyConnectOptions::from_str(&url)
            .map_err(StoreError::Other)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(
                if options.slow_statement.is_some() { tracing::log::LevelFilter::Warn } else { tracing::log::LevelFilter::Off },
                options.slow_statement.unwrap_or(Duration::from_secs(1)),
            );
        let mut pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { options.max_connections.min(8) } else { options.max_connections })
            .acquire_timeout(options.acquire_timeout);
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = pool.connect_lazy_with(connect);
        let sqlite_path = if backend == Backend::Sqlite {
            let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(&url);
            let path = rest.split('?').next().unwrap_or(rest);
            (!path.is_empty() && path != ":memory:").then(|| std::sync::Arc::from(std::path::Path::new(path)))
        } else {
            None
        };
        Ok(Db { pool, backend, url: url.as_str().into(), sqlite_path, slow_statement: options.slow_statement, effects: Default::default() })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A native PostgreSQL connection of its own, for what the portable pool cannot do (`COPY`). Its
    /// statements (a COPY, a whole-table export) are long by design: not logged as slow. `None` on SQLite.
    pub async fn pg_connection(&self) -> StoreResult<Option<sqlx::PgConnection>> {
        self.pg_connect(None).await
    }

    /// A native PostgreSQL connection of its own for short statements the portable driver cannot bind
    /// (arrays: the data plane's batched lookups), logged as slow past [`DbOptions::slow_statement`] as the
    /// pool's statements are. `None` on SQLite.
    pub async fn pg_short_connection(&self) -> StoreResult<Option<sqlx::PgConnection>> {
        self.pg_connect(self.slow_statement).await
    }

    async fn pg_connect(&self, slow: Option<Duration>) -> StoreResult<Option<sqlx::PgConnection>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        use sqlx::{ConnectOptions, Connection};
        let options = sqlx::postgres::PgConnectOptions::from_str(&self.url).map_err(StoreError::Other)?.log_slow_statements(
            if slow.is_some() { tracing::log::LevelFilter::Warn } else { tracing::log::LevelFilter::Off },
            slow.unwrap_or(Duration::from_secs(1)),
        );
        Ok(Some(sqlx::PgConnection::connect_with(&options).await?))
    }

    /// The database file on SQLite (for readers and writers of their own on blocking threads: the data
    /// plane's hot paths); `None` on PostgreSQL and for in-memory databases.
    pub fn sqlite_path(&self) -> Option<&std::path::Path> {
        self.sqlite_path.as_deref()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The effects that run after a change to this database commits ([`effects::Notice`]).
    pub fn effects(&self) -> &effects::Effects {
        &self.effects
    }

    /// Runs the effects of committed notices (a unit of work does this after its commit).
    pub async fn run_effects(&self, notices: &[effects::Notice]) {
        self.effects.run(self, notices).await;
    }

    /// The versions of this backend's migrations, in order.
    pub fn migration_versions(&self) -> Vec<i64> {
        self.migrator().iter().map(|m| m.version).collect()
    }

    /// Applies the pending migrations of this backend up to and including `version`: upgrades in steps,
    /// and the test that applies each migration to data written under the one before.
    pub async fn migrate_to(&self, version: i64) -> StoreResult<()> {
        let upto = Migrations(self.migrator().iter().filter(|m| m.version <= version).cloned().collect());
        let migrator = sqlx::migrate::Migrator::new(upto).await?;
        migrator.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
            other => StoreError::Migrate(other),
        })
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &MIGRATOR_SQLITE,
            Backend::Postgres => &MIGRATOR_POSTGRES,
        }
    }

    /// Applies all pending migrations of this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &MIGRATOR_SQLITE,
            Backend::Postgres => &MIGRATOR_POSTGRES,
        };
        migrator.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
            other => StoreError::Migrate(other),
        })
    }

    /// Starts a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`) so that two
    /// writers queue on the busy timeout instead of failing when a read transaction upgrades.
    pub async fn begin(&self) -> StoreResult<Tx> {
        match self.backend {
            Backend::Postgres => Ok(self.pool.begin().await?),
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Now, as Unix milliseconds: the one time representation stored on both backends.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Converts stored Unix milliseconds to a UTC time.
pub fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// 时钟: the business clock of deadlines (due dates, overdue, reminders, grant validity). Production runs on
/// the system clock; tests shift it so that a deadline can be crossed without waiting. Cloning shares the
/// shift.
#[derive(Clone, Debug, Default)]
pub struct Clock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// Now, as Unix milliseconds, shifted.
    pub fn now_ms(&self) -> i64 {
        now_ms() + self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Today's date in China Standard Time (UTC+8), the time zone of every deadline in the regulations.
    pub fn today(&self) -> chrono::NaiveDate {
        china_date(self.now_ms())
    }

    /// Moves the clock so that it now reads `ms` (and goes on from there).
    pub fn set_now_ms(&self, ms: i64) {
        self.0.store(ms - now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Moves the clock to 09:00 China time on `date`.
    pub fn set_date(&self, date: chrono::NaiveDate) {
        let at = date.and_hms_opt(1, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or_default();
        self.set_now_ms(at);
    }
}

/// The China Standard Time (UTC+8) date of a stored time.
pub fn china_date(ms: i64) -> chrono::NaiveDate {
    (from_ms(ms) + chrono::Duration::hours(8)).date_naive()
}

/// The start (00:00 China time) of a date, as Unix ms: the inverse of [`china_date`].
pub fn china_midnight_ms(d: chrono::NaiveDate) -> i64 {
    d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_millis() - 8 * 3_600_000
}

/// PostgreSQL's binary `COPY` format (`COPY … FROM STDIN WITH (FORMAT binary)`), written: the server takes
/// integers and text as they are, without parsing or unescaping them. A stream is [`header`](binary::header),
/// then per row [`row`](binary::row) and its fields, then [`TRAILER`](binary::TRAILER).
pub mod binary {
    /// The first bytes of the format, in and out.
    pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
    /// The end of the rows.
    pub const TRAILER: [u8; 2] = (-1i16).to_be_bytes();

    /// The signature, no flags, no header extension.
    pub fn header(buf: &mut Vec<u8>) {
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0u32.to_be_bytes());
        buf.extend_from_slice(&0u32.to_be_bytes());
    }

    /// Starts a row of `fields` fields.
    pub fn row(buf: &mut Vec<u8>, fields: i16) {
        buf.extend_from_slice(&fields.to_be_bytes());
    }

    /// A `BIGINT` field, or NULL.
    pub fn int8(buf: &mut Vec<u8>, v: Option<i64>) {
        match v {
            Some(v) => {
                buf.extend_from_slice(&8i32.to_be_bytes());
                buf.extend_from_slice(&v.to_be_bytes());
            }
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    /// A `TEXT` field (UTF-8 bytes), or NULL. Values are far below 2 GiB: request bodies are limited.
    pub fn text(buf: &mut Vec<u8>, v: Option<&[u8]>) {
        match v {
            Some(v) => {
                buf.extend_from_slice(&i32::try_from(v.len()).unwrap_or(i32::MAX).to_be_bytes());
                buf.extend_from_slice(v);
            }
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    /// The format read (`COPY … TO STDOUT WITH (FORMAT binary)`) as it arrives: messages need not align
    /// with rows. Each row's fields are handed on as the bytes they are (`None` for NULL): a `TEXT` field's
    /// UTF-8, a `BIGINT`'s eight big-endian bytes.
    #[derive(Default)]
    pub struct Reader {
        pending: Vec<u8>,
        header_done: bool,
        finished: bool,
    }

    impl Reader {
        /// Whether the trailer has been read: the stream is complete.
        pub fn finished(&self) -> bool {
            self.finished
        }

        /// Reads a chunk of the stream, calling `row` with the fields of each complete row, of which there
        /// must be `fields`. What is left of an incomplete row waits for the next chunk.
        pub fn feed<E: From<String>>(
            &mut self,
            chunk: &[u8],
            fields: usize,
            mut row: impl FnMut(&[Option<&[u8]>]) -> Result<(), E>,
        ) -> Result<(), E> {
            if self.pending.is_empty() {
                // The usual case: whole rows per message, read where they arrived.
                let used = self.parse(chunk, fields, &mut row)?;
                self.pending.extend_from_slice(&chunk[used..]);
                return Ok(());
            }
            self.pending.extend_from_slice(chunk);
            let pending = std::mem::take(&mut self.pending);
            let used = self.parse(&pending, fields, &mut row);
            self.pending = pending;
            self.pending.drain(..used?);
            Ok(())
        }

        /// Reads what is complete in `b`; returns the bytes used.
        fn parse<E: From<String>>(
            &mut self,
            b: &[u8],
            fields: usize,
            row: &mut impl FnMut(&[Option<&[u8]>]) -> Result<(), E>,
        ) -> Result<usize, E> {
            let mut pos = 0;
            if !self.header_done {
                if b.len() < 19 {
                    return Ok(0);
                }
                if &b[..11] != SIGNATURE {
                    return Err(E::from("not PostgreSQL's binary COPY format".into()));
                }
                let ext = u32::from_be_bytes([b[15], b[16], b[17], b[18]]) as usize;
                if b.len() < 19 + ext {
                    return Ok(0);
                }
                pos = 19 + ext;
                self.header_done = true;
            }
            let mut values: Vec<Option<&[u8]>> = Vec::with_capacity(fields);
            while !self.finished {
                let Some(count) = b.get(pos..pos + 2) else { break };
                let count = i16::from_be_bytes([count[0], count[1]]);
                if count == -1 {
                    self.finished = true;
                    pos += 2;
                    break;
                }
                if usize::try_from(count).ok() != Some(fields) {
                    return Err(E::from(format!("a row has {count} columns, {fields} expected")));
                }
                let mut at = pos + 2;
                values.clear();
                let complete = loop {
                    if values.len() == fields {
                        break true;
                    }
                    let Some(len) = b.get(at..at + 4) else { break false };
                    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                    at += 4;
                    if len < 0 {
                        values.push(None);
                        continue;
                    }
                    let Some(v) = b.get(at..at + len as usize) else { break false };
                    values.push(Some(v));
                    at += len as usize;
                };
                if !complete {
                    break;
                }
                row(&values)?;
                pos = at;
            }
            Ok(pos.min(b.len()))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Rows written with this module's writer read back the same, however the stream is cut.
        #[test]
        fn reads_what_is_written_in_any_cuts() {
            let mut stream = Vec::new();
            header(&mut stream);
            let rows: Vec<(i64, Option<String>)> =
                (0..200).map(|i| (i * 1_000_003, (i % 7 != 0).then(|| "值".repeat(i as usize % 13)))).collect();
            for (n, t) in &rows {
                row(&mut stream, 2);
                int8(&mut stream, Some(*n));
                text(&mut stream, t.as_deref().map(str::as_bytes));
            }
            stream.extend_from_slice(&TRAILER);
            for cut in [1, 2, 3, 7, 19, 64, 1000, stream.len()] {
                let mut reader = Reader::default();
                let mut got = Vec::new();
                for chunk in stream.chunks(cut) {
                    reader
                        .feed::<String>(chunk, 2, |f| {
                            let n = i64::from_be_bytes(f[0].ok_or("NULL")?.try_into().map_err(|_| "not 8 bytes")?);
                            got.push((n, f[1].map(|t| String::from_utf8(t.to_vec()).unwrap_or_default())));
                            Ok(())
                        })
                        .unwrap();
                }
                assert!(reader.finished(), "cut {cut}");
                assert_eq!(got, rows, "cut {cut}");
            }
            // A row of another width is an error, not a misreading.
            let mut reader = Reader::default();
            assert!(reader.feed::<String>(&stream, 3, |_| Ok(())).unwrap_err().contains("3 expected"));
        }
    }
}

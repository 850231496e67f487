//! The pool database's own schema, versioned by migrations of its own ([`MIGRATIONS`], recorded in
//! `pool_schema_migrations`), because on SQLite the pool is a database file of its own (`pool.db`), so
//! that a long batch never holds the platform database's write lock; on PostgreSQL the same tables live in
//! the platform database. Dataset tables (`xd_…`) and staging tables (`xs_…`) are created per binding and
//! batch.

use shutong_store::{Backend, Db, Row, StoreResult};

/// Version 1: the tables of the first release.
fn initial(backend: Backend) -> Vec<String> {
    let serial = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    vec![
        "CREATE TABLE exchange_bindings (
            resource_code TEXT PRIMARY KEY,
            provider_department_id BIGINT NOT NULL,
            kind TEXT NOT NULL,
            key_item TEXT,
            columns TEXT NOT NULL DEFAULT '[]',
            table_name TEXT,
            generation BIGINT NOT NULL DEFAULT 0,
            service_url TEXT,
            last_seq BIGINT NOT NULL DEFAULT 0,
            reset_seq BIGINT NOT NULL DEFAULT 0,
            row_count BIGINT NOT NULL DEFAULT 0,
            last_batch_at BIGINT,
            busy_batch BIGINT,
            busy_since BIGINT,
            created_at BIGINT NOT NULL,
            created_by TEXT NOT NULL,
            updated_at BIGINT NOT NULL
        )"
        .to_string(),
        format!(
            "CREATE TABLE exchange_batches (
            id {serial},
            resource_code TEXT NOT NULL,
            batch_key TEXT NOT NULL,
            mode TEXT NOT NULL,
            format TEXT NOT NULL,
            encoding TEXT NOT NULL,
            status TEXT NOT NULL,
            rows_received BIGINT NOT NULL DEFAULT 0,
            rows_upserted BIGINT NOT NULL DEFAULT 0,
            rows_deleted BIGINT NOT NULL DEFAULT 0,
            rows_rejected BIGINT NOT NULL DEFAULT 0,
            rows_after BIGINT NOT NULL DEFAULT 0,
            first_seq BIGINT,
            last_seq BIGINT,
            started_at BIGINT NOT NULL,
            finished_at BIGINT,
            submitted_by TEXT NOT NULL,
            provider_department_id BIGINT NOT NULL,
            failure TEXT,
            audited INTEGER NOT NULL DEFAULT 0
        )"
        ),
        "CREATE UNIQUE INDEX exchange_batches_key ON exchange_batches(resource_code, batch_key) WHERE status = 'committed'".to_string(),
        "CREATE INDEX exchange_batches_resource ON exchange_batches(resource_code, id)".to_string(),
        "CREATE TABLE exchange_rejects (
            batch_id BIGINT NOT NULL,
            row_no BIGINT NOT NULL,
            record_key TEXT,
            field TEXT,
            reason TEXT NOT NULL
        )"
        .to_string(),
        "CREATE INDEX exchange_rejects_batch ON exchange_rejects(batch_id, row_no)".to_string(),
        format!(
            "CREATE TABLE exchange_files (
            id {serial},
            resource_code TEXT NOT NULL,
            name TEXT NOT NULL,
            media_type TEXT NOT NULL,
            size BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            uploaded_at BIGINT NOT NULL,
            uploaded_by TEXT NOT NULL
        )"
        ),
        "CREATE TABLE exchange_usage (
            grant_id BIGINT NOT NULL,
            day TEXT NOT NULL,
            records BIGINT NOT NULL,
            calls BIGINT NOT NULL,
            PRIMARY KEY (grant_id, day)
        )"
        .to_string(),
    ]
}

/// One change of the pool's schema, applied once, in order, in a transaction with its record.
/// The columns of `exchange_bindings`, `exchange_batches` and `exchange_files` as the row decoders read them.
/// Queries name their columns instead of `SELECT *`: SQLite prepares a statement against the schema its
/// connection last read, so a `*` prepared on a connection opened before a migration added a column expands
/// to fewer columns than the statement returns once SQLite notices the change (sqlx then fails on the row).
#[macro_export]
#[doc(hidden)]
macro_rules! binding_columns {
    () => {
        "resource_code, provider_department_id, kind, key_item, columns, table_name, generation, service_url, last_seq, reset_seq, \
         row_count, last_batch_at, busy_batch, busy_since, created_at, created_by, updated_at, key_sealed"
    };
}

#[macro_export]
#[doc(hidden)]
macro_rules! batch_columns {
    () => {
        "id, resource_code, batch_key, mode, format, encoding, status, rows_received, rows_upserted, rows_deleted, rows_rejected, \
         rows_after, first_seq, last_seq, started_at, finished_at, submitted_by, provider_department_id, failure, audited, parts"
    };
}

#[macro_export]
#[doc(hidden)]
macro_rules! file_columns {
    () => {
        "id, resource_code, name, media_type, size, sha256, uploaded_at, uploaded_by"
    };
}

pub struct PoolMigration {
    pub version: i64,
    pub name: &'static str,
    statements: fn(Backend) -> Vec<String>,
}

impl PoolMigration {
    /// The statements this migration runs on `backend`.
    pub fn statements(&self, backend: Backend) -> Vec<String> {
        (self.statements)(backend)
    }
}

/// The pool's migrations. Append only: an applied migration never changes.
pub const MIGRATIONS: &[PoolMigration] = &[
    PoolMigration { version: 1, name: "initial", statements: initial },
    // A sensitive key stored as its blind index (#7).
    PoolMigration {
        version: 2,
        name: "key_sealed",
        statements: |_| vec!["ALTER TABLE exchange_bindings ADD COLUMN key_sealed BIGINT NOT NULL DEFAULT 0".into()],
    },
    // The audit outbox of pool changes (#18).
    PoolMigration { version: 3, name: "audit_outbox", statements: |b| vec![shutong_audit::outbox::create_table_sql(b)] },
    // A full batch uploaded in parts (the exchange node's snapshot, #23): parts received, and the dataset's
    // last sequence number when its first part arrived (row `r` of the batch is `base_seq + r`).
    PoolMigration {
        version: 4,
        name: "batch_parts",
        statements: |_| {
            vec![
                "ALTER TABLE exchange_batches ADD COLUMN parts BIGINT NOT NULL DEFAULT 0".into(),
                "ALTER TABLE exchange_batches ADD COLUMN base_seq BIGINT".into(),
            ]
        },
    },
];

const CREATE_VERSIONS: &str =
    "CREATE TABLE IF NOT EXISTS pool_schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

async fn table_exists(pool: &Db, table: &str) -> StoreResult<bool> {
    let sql = match pool.backend() {
        Backend::Sqlite => "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1",
        Backend::Postgres => "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
    };
    Ok(sqlx::query(sql).bind(table).fetch_optional(pool.pool()).await?.is_some())
}

/// The versions applied to this pool, in order.
pub async fn applied_versions(pool: &Db) -> StoreResult<Vec<i64>> {
    if !table_exists(pool, "pool_schema_migrations").await? {
        return Ok(Vec::new());
    }
    let rows = sqlx::query("SELECT version FROM pool_schema_migrations ORDER BY version").fetch_all(pool.pool()).await?;
    rows.iter().map(|r| r.try_get::<i64, _>(0).map_err(Into::into)).collect()
}

/// Applies the migrations this pool lacks, each in a transaction with its record (on PostgreSQL under an
/// advisory lock, so that replicas starting together apply each once). A pool from before the schema was
/// versioned (its tables exist, `pool_schema_migrations` does not) is adopted first: version 1 is recorded,
/// and version 2 if its column is there — the one place the pool's columns are probed, once per pool.
pub async fn migrate(pool: &Db) -> StoreResult<Vec<i64>> {
    let unversioned = !table_exists(pool, "pool_schema_migrations").await? && table_exists(pool, "exchange_bindings").await?;
    sqlx::query(CREATE_VERSIONS).execute(pool.pool()).await?;
    if unversioned {
        let has_key_sealed = match pool.backend() {
            Backend::Sqlite => sqlx::query("SELECT 1 FROM pragma_table_info('exchange_bindings') WHERE name = 'key_sealed'")
                .fetch_optional(pool.pool())
                .await?
                .is_some(),
            Backend::Postgres => sqlx::query(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'exchange_bindings' AND column_name = 'key_sealed'",
            )
            .fetch_optional(pool.pool())
            .await?
            .is_some(),
        };
        let adopted: &[i64] = if has_key_sealed { &[1, 2] } else { &[1] };
        for v in adopted {
            sqlx::query(
                "INSERT INTO pool_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING",
            )
            .bind(v)
            .bind(format!("{} (adopted)", MIGRATIONS[(*v - 1) as usize].name))
            .bind(shutong_store::now_ms())
            .execute(pool.pool())
            .await?;
        }
        tracing::info!(versions = ?adopted, "adopted an unversioned pool schema");
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let mut tx = pool.begin().await?;
        if pool.backend() == Backend::Postgres {
            // One key for the pool's schema: 0x5348_5450 ("SHTP").
            sqlx::query("SELECT pg_advisory_xact_lock(1397249104)").execute(&mut *tx).await?;
        }
        let done = sqlx::query("SELECT 1 FROM pool_schema_migrations WHERE version = $1").bind(m.version).fetch_optional(&mut *tx).await?;
        if done.is_some() {
            continue;
        }
        for statement in (m.statements)(pool.backend()) {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO pool_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(shutong_store::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "pool schema migrated");
        applied.push(m.version);
    }
    Ok(applied)
}

/// Migrates the pool's schema, then cleans up after a crash: batches that were loading are marked failed,
/// their staging or next-generation tables dropped, and claims older than `claim_timeout_ms` released.
/// Committed batches are untouched: a batch is visible only once its binding points at its data.
pub async fn ensure(pool: &Db, claim_timeout_ms: i64) -> StoreResult<()> {
    migrate(pool).await?;
    let now = shutong_store::now_ms();
    sqlx::query("UPDATE exchange_bindings SET busy_batch = NULL, busy_since = NULL WHERE busy_batch IS NOT NULL AND busy_since < $1")
        .bind(now - claim_timeout_ms)
        .execute(pool.pool())
        .await?;
    // Loading batches whose claim is gone (released above, or taken by another batch) failed.
    sqlx::query(
        "UPDATE exchange_batches SET status = 'failed', failure = 'interrupted (the server stopped while loading)', finished_at = $1 \
         WHERE status = 'loading' AND id NOT IN (SELECT busy_batch FROM exchange_bindings WHERE busy_batch IS NOT NULL)",
    )
    .bind(now)
    .execute(pool.pool())
    .await?;
    drop_orphans(pool).await
}

/// Drops dataset and staging tables that no binding points at and no loading batch owns.
pub async fn drop_orphans(pool: &Db) -> StoreResult<()> {
    let tables: Vec<String> = match pool.backend() {
        Backend::Sqlite => sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE 'xd\\_%' ESCAPE '\\' OR name LIKE 'xs\\_%' ESCAPE '\\')")
            .fetch_all(pool.pool())
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?,
        Backend::Postgres => sqlx::query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND (tablename LIKE 'xd\\_%' OR tablename LIKE 'xs\\_%')",
        )
        .fetch_all(pool.pool())
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?,
    };
    if tables.is_empty() {
        return Ok(());
    }
    let live: Vec<String> = sqlx::query("SELECT table_name FROM exchange_bindings WHERE table_name IS NOT NULL")
        .fetch_all(pool.pool())
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    let loading: Vec<i64> = sqlx::query("SELECT busy_batch FROM exchange_bindings WHERE busy_batch IS NOT NULL")
        .fetch_all(pool.pool())
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    for t in tables {
        let owned_by_loading = loading.iter().any(|b| t.ends_with(&format!("_b{b}")));
        if !live.contains(&t) && !owned_by_loading && is_pool_table_name(&t) {
            tracing::info!(table = %t, "dropping an orphaned dataset table");
            sqlx::query(&format!("DROP TABLE IF EXISTS {t}")).execute(pool.pool()).await?;
        }
    }
    Ok(())
}

/// `xd_<digits>_<digits>_b<digits>` or `xs_…`: the only names the data plane builds SQL from.
pub fn is_pool_table_name(t: &str) -> bool {
    (t.starts_with("xd_") || t.starts_with("xs_")) && t[3..].bytes().all(|b| b.is_ascii_digit() || b == b'_' || b == b'b')
}

/// The table name of a resource's data loaded by a batch: `xd_101_000001_b17`.
pub fn table_name(prefix: &str, resource_code: &str, batch: i64) -> String {
    let code: String = resource_code.chars().map(|c| if c.is_ascii_digit() { c } else { '_' }).collect();
    format!("{prefix}_{code}_b{batch}")
}

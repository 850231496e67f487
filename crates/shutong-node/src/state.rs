//! The node's own state: a SQLite database in `node.state_dir` holding the outbox (batches read from sources
//! and not yet on the platform), each publication's offset, the rows the platform rejected, the keys sent
//! (for deletions found by comparison) and each flow's figures for `shutong node status`.

use std::path::Path;
use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    // One batch per row, delivered in id order per publication.
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, publication TEXT NOT NULL, batch_id TEXT NOT NULL UNIQUE, \
     rows INTEGER NOT NULL, bytes INTEGER NOT NULL, body BLOB NOT NULL, oldest_ms INTEGER NOT NULL, created_at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS outbox_publication ON outbox(publication, id)",
    // phase: snapshot (reading the table in key order up to snapshot_upto) or changes.
    // captured: rows sent as snapshot parts or written to the outbox since the publication began (the
    // exactly-once tests' ledger).
    // The snapshot is one full batch (snapshot_batch) sent in parts: snapshot_part parts taken by the
    // platform, the last ending at key snapshot_after, with snapshot_rows rows (snapshot_rejected of them
    // rejected); pending_last and pending_final
    // describe the part on its way (its last key, whether it is the last part).
    "CREATE TABLE IF NOT EXISTS offsets (publication TEXT PRIMARY KEY, phase TEXT NOT NULL, snapshot_after TEXT, snapshot_upto TEXT, \
     change_offset TEXT, change_key TEXT, captured INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL, snapshot_batch TEXT, \
     snapshot_part INTEGER NOT NULL DEFAULT 0, snapshot_rows INTEGER NOT NULL DEFAULT 0, snapshot_rejected INTEGER NOT NULL DEFAULT 0, \
     pending_last TEXT, pending_final INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS rejects (id INTEGER PRIMARY KEY AUTOINCREMENT, publication TEXT NOT NULL, batch_id TEXT NOT NULL, \
     row_number INTEGER NOT NULL, record_key TEXT, field TEXT, reason TEXT NOT NULL, at INTEGER NOT NULL)",
    // Deletions by comparison: the keys sent as live (and when), and the table's keys during a comparison.
    "CREATE TABLE IF NOT EXISTS sent_keys (publication TEXT NOT NULL, record_key TEXT NOT NULL, sent_at INTEGER NOT NULL, \
     PRIMARY KEY (publication, record_key)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS compare_keys (publication TEXT NOT NULL, record_key TEXT NOT NULL, PRIMARY KEY (publication, record_key)) WITHOUT ROWID",
    // Timestamp capture: the (key, timestamp) pairs sent within the safety window, not sent twice.
    "CREATE TABLE IF NOT EXISTS recent (publication TEXT NOT NULL, record_key TEXT NOT NULL, ts TEXT NOT NULL, at INTEGER NOT NULL, \
     PRIMARY KEY (publication, record_key, ts)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS flows (name TEXT PRIMARY KEY, direction TEXT NOT NULL, resource TEXT NOT NULL, state TEXT NOT NULL, \
     lag_rows INTEGER NOT NULL DEFAULT 0, lag_seconds INTEGER NOT NULL DEFAULT 0, rows_total INTEGER NOT NULL DEFAULT 0, \
     rejects INTEGER NOT NULL DEFAULT 0, batches INTEGER NOT NULL DEFAULT 0, last_transfer_at INTEGER, error TEXT, updated_at INTEGER NOT NULL)",
];

/// The node's state database.
#[derive(Clone)]
pub struct State {
    pub pool: SqlitePool,
    /// A random ID of this state directory, part of every batch ID: a node whose state was reset does not
    /// collide with its own earlier batches.
    pub epoch: String,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl State {
    /// The state as it is, for reading (`shutong node status`): a state that exists already is opened without
    /// a write, so that a reader never waits on the running node's writes (nor makes it wait); one that does not
    /// exist yet is created as [`State::open`] does.
    pub async fn open_for_reading(dir: &Path) -> anyhow::Result<State> {
        let path = dir.join("node.db");
        if path.exists() {
            let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(30));
            let pool = SqlitePoolOptions::new().max_connections(2).connect_with(options).await?;
            let epoch: Option<String> =
                sqlx::query("SELECT v FROM meta WHERE k = 'epoch'").fetch_optional(&pool).await.ok().flatten().map(|r| r.get(0));
            if let Some(epoch) = epoch {
                return Ok(State { pool, epoch });
            }
            pool.close().await;
        }
        State::open(dir).await
    }

    pub async fn open(dir: &Path) -> anyhow::Result<State> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("node.state_dir {}: {e}", dir.display()))?;
        let path = dir.join("node.db");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        for s in SCHEMA {
            sqlx::query(s).execute(&pool).await?;
        }
        // A state directory of the first release: the snapshot's parts.
        if sqlx::query("SELECT 1 FROM pragma_table_info('offsets') WHERE name = 'snapshot_batch'").fetch_optional(&pool).await?.is_none() {
            for c in [
                "snapshot_batch TEXT",
                "snapshot_part INTEGER NOT NULL DEFAULT 0",
                "snapshot_rows INTEGER NOT NULL DEFAULT 0",
                "snapshot_rejected INTEGER NOT NULL DEFAULT 0",
                "pending_last TEXT",
                "pending_final INTEGER NOT NULL DEFAULT 0",
            ] {
                // Another process opening the same state may have added it meanwhile.
                if let Err(e) = sqlx::query(&format!("ALTER TABLE offsets ADD COLUMN {c}")).execute(&pool).await
                    && !e.to_string().contains("duplicate column")
                {
                    return Err(e.into());
                }
            }
        }
        // `shutong node status` may open the state while `run` creates it: the first epoch written stands.
        let e: String = shutong_crypto::request_signing::new_nonce().chars().take(8).collect();
        sqlx::query("INSERT INTO meta (k, v) VALUES ('epoch', $1) ON CONFLICT (k) DO NOTHING").bind(&e).execute(&pool).await?;
        let epoch: String = sqlx::query("SELECT v FROM meta WHERE k = 'epoch'").fetch_one(&pool).await?.get(0);
        Ok(State { pool, epoch })
    }

    /// Batches and bytes waiting in the outbox (all publications, or one).
    pub async fn outbox_depth(&self, publication: Option<&str>) -> anyhow::Result<(i64, i64, Option<i64>)> {
        let r = sqlx::query("SELECT COUNT(*), COALESCE(SUM(bytes), 0), MIN(oldest_ms) FROM outbox WHERE ($1 IS NULL OR publication = $1)")
            .bind(publication)
            .fetch_one(&self.pool)
            .await?;
        Ok((r.get(0), r.get(1), r.get(2)))
    }

    /// Rows waiting in the outbox for one publication, and the age of the oldest change.
    pub async fn outbox_rows(&self, publication: &str) -> anyhow::Result<(i64, Option<i64>)> {
        let r = sqlx::query("SELECT COALESCE(SUM(rows), 0), MIN(oldest_ms) FROM outbox WHERE publication = $1")
            .bind(publication)
            .fetch_one(&self.pool)
            .await?;
        Ok((r.get(0), r.get(1)))
    }

    /// Records a flow's state (kept for `shutong node status` and the heartbeat).
    pub async fn set_flow(&self, f: &FlowFigures) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO flows (name, direction, resource, state, lag_rows, lag_seconds, rows_total, rejects, batches, last_transfer_at, error, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (name) DO UPDATE SET direction = excluded.direction, \
             resource = excluded.resource, state = excluded.state, lag_rows = excluded.lag_rows, lag_seconds = excluded.lag_seconds, \
             rows_total = excluded.rows_total, rejects = excluded.rejects, batches = excluded.batches, \
             last_transfer_at = excluded.last_transfer_at, error = excluded.error, updated_at = excluded.updated_at",
        )
        .bind(&f.name)
        .bind(&f.direction)
        .bind(&f.resource)
        .bind(&f.state)
        .bind(f.lag_rows)
        .bind(f.lag_seconds)
        .bind(f.rows_total)
        .bind(f.rejects)
        .bind(f.batches)
        .bind(f.last_transfer_at)
        .bind(&f.error)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn flows(&self) -> anyhow::Result<Vec<FlowFigures>> {
        let rows = sqlx::query(
            "SELECT name, direction, resource, state, lag_rows, lag_seconds, rows_total, rejects, batches, last_transfer_at, error, updated_at \
             FROM flows ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| FlowFigures {
                name: r.get(0),
                direction: r.get(1),
                resource: r.get(2),
                state: r.get(3),
                lag_rows: r.get(4),
                lag_seconds: r.get(5),
                rows_total: r.get(6),
                rejects: r.get(7),
                batches: r.get(8),
                last_transfer_at: r.get(9),
                error: r.get(10),
                updated_at: r.get(11),
            })
            .collect())
    }

    pub async fn get_meta(&self, k: &str) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query("SELECT v FROM meta WHERE k = $1").bind(k).fetch_optional(&self.pool).await?.map(|r| r.get(0)))
    }

    pub async fn set_meta(&self, k: &str, v: &str) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO meta (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v")
            .bind(k)
            .bind(v)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// One flow's figures, as the node keeps them.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FlowFigures {
    pub name: String,
    /// `publication` or `subscription`.
    pub direction: String,
    pub resource: String,
    /// `running`, `offline` or `stopped`.
    pub state: String,
    pub lag_rows: i64,
    pub lag_seconds: i64,
    pub rows_total: i64,
    pub rejects: i64,
    pub batches: i64,
    pub last_transfer_at: Option<i64>,
    pub error: Option<String>,
    pub updated_at: i64,
}

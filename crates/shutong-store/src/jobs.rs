//! Background work (后台作业): one runner for everything the platform does on its own.
//!
//! Two kinds of work, one runner ([`JobRunner`]):
//!
//! - **Jobs**, persisted in the `jobs` table: one row per `(kind, key)` (scheduling the same job twice is
//!   one job: the key is its idempotency key), run by whichever replica *leases* it first (the lease lapses
//!   after [`JobRunner::lease`], so a crashed runner's job is taken over), retried with exponential backoff
//!   when it fails (its error kept in `last_error`), and, when recurring (`every_ms`), rescheduled after each
//!   run. The deadline sweep, retention archiving and the pool's audit outbox run as recurring jobs, so
//!   that several replicas run each once per period between them; the exchange node, federation and
//!   notices will schedule theirs here.
//! - **Local tasks**: periodic work every process does for itself (its own search index's reconciliation,
//!   its own view of the data key file), run by the same runner with the same logging and shutdown.
//!
//! Business time: `run_at` and leases read the runner's [`Clock`], so tests move time instead of sleeping.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::{Backend, Clock, Db, Row, StoreResult};

/// A leased job, as its handler sees it.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub key: String,
    pub payload: serde_json::Value,
    /// How many times it has been started, this one included (since its last success, for a recurring job).
    pub attempts: i64,
}

type JobFn = Arc<dyn Fn(Db, Job) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;
type TaskFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The runner of jobs and local tasks (see the module doc).
pub struct JobRunner {
    db: Db,
    clock: Clock,
    worker: String,
    handlers: HashMap<String, JobFn>,
    tasks: Vec<(String, Duration, TaskFn)>,
    /// How often the runner looks for due jobs.
    pub poll: Duration,
    /// How long a leased job is the runner's before another may take it over.
    pub lease: Duration,
}

/// The delay before a failed job's next attempt: 2^attempts seconds, at most an hour.
pub fn backoff_ms(attempts: i64) -> i64 {
    1000 * (1i64 << attempts.clamp(0, 12)).min(3600)
}

impl JobRunner {
    pub fn new(db: Db, clock: Clock) -> JobRunner {
        JobRunner {
            db,
            clock,
            worker: format!("{}-{}", std::process::id(), uuid_like()),
            handlers: HashMap::new(),
            tasks: Vec::new(),
            poll: Duration::from_secs(1),
            lease: Duration::from_secs(300),
        }
    }

    /// This runner's name in `jobs.leased_by`.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Runs jobs of `kind` with `handler`; an `Err` is the job's failure, retried with backoff.
    pub fn register<F, Fut>(&mut self, kind: &str, handler: F)
    where
        F: Fn(Db, Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.handlers.insert(kind.to_string(), Arc::new(move |db, job| Box::pin(handler(db, job))));
    }

    /// Runs `task` now and then every `every` in this process (not persisted, not shared with other replicas).
    pub fn every<F, Fut>(&mut self, name: &str, every: Duration, task: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.push((name.to_string(), every, Arc::new(move || Box::pin(task()))));
    }

    /// Leases one due job of a registered kind, runs it and records the outcome; `false` when none was due.
    pub async fn run_one(&self) -> StoreResult<bool> {
        let Some(job) = self.lease_one().await? else { return Ok(false) };
        let outcome = match self.handlers.get(&job.kind) {
            Some(h) => h(self.db.clone(), job.clone()).await,
            None => Err(format!("no handler for jobs of kind {}", job.kind)),
        };
        self.finish(&job, outcome).await?;
        Ok(true)
    }

    /// Runs every job due now; returns how many ran.
    pub async fn run_due(&self) -> StoreResult<usize> {
        let mut n = 0;
        while self.run_one().await? {
            n += 1;
        }
        Ok(n)
    }

    async fn lease_one(&self) -> StoreResult<Option<Job>> {
        if self.handlers.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        let kinds: Vec<String> = self.handlers.keys().cloned().collect();
        let kinds = serde_json::to_string(&kinds).unwrap_or_else(|_| "[]".into());
        let pick = match self.db.backend() {
            Backend::Postgres => {
                "SELECT id FROM jobs WHERE done_at IS NULL AND run_at <= $1 AND (leased_until IS NULL OR leased_until < $1) \
                 AND kind IN (SELECT json_array_elements_text($2::json)) ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
            }
            Backend::Sqlite => {
                "SELECT id FROM jobs WHERE done_at IS NULL AND run_at <= $1 AND (leased_until IS NULL OR leased_until < $1) \
                 AND kind IN (SELECT value FROM json_each($2)) ORDER BY run_at, id LIMIT 1"
            }
        };
        // A read first: most polls find nothing due, and on SQLite a transaction here takes the write lock.
        let due = sqlx::query(
            "SELECT 1 FROM jobs WHERE done_at IS NULL AND run_at <= $1 AND (leased_until IS NULL OR leased_until < $1) LIMIT 1",
        )
        .bind(now)
        .fetch_optional(self.db.pool())
        .await?;
        if due.is_none() {
            return Ok(None);
        }
        let mut tx = self.db.begin().await?;
        let Some(id) =
            sqlx::query(pick).bind(now).bind(&kinds).fetch_optional(&mut *tx).await?.map(|r| r.try_get::<i64, _>(0)).transpose()?
        else {
            return Ok(None);
        };
        let row = sqlx::query(
            "UPDATE jobs SET leased_by = $1, leased_until = $2, attempts = attempts + 1 WHERE id = $3 \
             RETURNING id, kind, job_key, payload, attempts",
        )
        .bind(&self.worker)
        .bind(now + self.lease.as_millis() as i64)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let payload: String = row.try_get("payload")?;
        Ok(Some(Job {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            key: row.try_get("job_key")?,
            payload: serde_json::from_str(&payload).map_err(|_| crate::StoreError::decode("jobs", "payload", &payload))?,
            attempts: row.try_get("attempts")?,
        }))
    }

    async fn finish(&self, job: &Job, outcome: Result<(), String>) -> StoreResult<()> {
        let now = self.clock.now_ms();
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE jobs SET leased_by = NULL, leased_until = NULL, last_error = NULL, last_run_at = $1, runs = runs + 1, \
                     attempts = CASE WHEN every_ms IS NULL AND again = 0 THEN attempts ELSE 0 END, \
                     run_at = CASE WHEN every_ms IS NOT NULL THEN $1 + every_ms WHEN again = 1 THEN $1 ELSE run_at END, \
                     done_at = CASE WHEN every_ms IS NULL AND again = 0 THEN $1 ELSE NULL END, again = 0 \
                     WHERE id = $2 AND leased_by = $3",
                )
                .bind(now)
                .bind(job.id)
                .bind(&self.worker)
                .execute(self.db.pool())
                .await?;
            }
            Err(e) => {
                tracing::warn!(kind = %job.kind, key = %job.key, attempts = job.attempts, error = %e, "job failed; retrying later");
                sqlx::query(
                    "UPDATE jobs SET leased_by = NULL, leased_until = NULL, last_error = $1, last_run_at = $2, run_at = $3 \
                     WHERE id = $4 AND leased_by = $5",
                )
                .bind(&e)
                .bind(now)
                .bind(now + backoff_ms(job.attempts))
                .bind(job.id)
                .bind(&self.worker)
                .execute(self.db.pool())
                .await?;
            }
        }
        Ok(())
    }

    /// Runs the jobs and the local tasks until `shutdown` turns true.
    pub fn start(self, shutdown: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let runner = Arc::new(self);
        for (name, every, task) in runner.tasks.clone() {
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => task().await,
                        _ = stop.changed() => {
                            tracing::debug!(task = %name, "local task stopped");
                            return;
                        }
                    }
                }
            });
        }
        let mut stop = shutdown;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(runner.poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = runner.run_due().await {
                            tracing::warn!(error = %e, "the job runner could not reach the database; retrying");
                        }
                    }
                    _ = stop.changed() => return,
                }
            }
        })
    }
}

/// Schedules a one-off job at `run_at` (ms), once per `(kind, key)`: scheduling it again changes nothing.
pub async fn schedule(db: &Db, kind: &str, key: &str, payload: &serde_json::Value, run_at: i64) -> StoreResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO jobs (kind, job_key, payload, run_at, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, job_key) DO NOTHING",
    )
    .bind(kind)
    .bind(key)
    .bind(payload.to_string())
    .bind(run_at)
    .bind(crate::now_ms())
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Asks for a one-off job of `(kind, key)` to run at `run_at` (ms): scheduled if there is none, due again if
/// the last one is done, left as it is if one is waiting, and run once more after the current run if one is
/// running (its `again` flag), so that a request is never lost to a run that started before it.
pub async fn request(db: &Db, kind: &str, key: &str, payload: &serde_json::Value, run_at: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO jobs (kind, job_key, payload, run_at, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (kind, job_key) DO UPDATE SET \
         run_at = CASE WHEN jobs.done_at IS NOT NULL THEN excluded.run_at ELSE jobs.run_at END, \
         attempts = CASE WHEN jobs.done_at IS NOT NULL THEN 0 ELSE jobs.attempts END, \
         payload = CASE WHEN jobs.leased_by IS NULL THEN excluded.payload ELSE jobs.payload END, \
         again = CASE WHEN jobs.leased_by IS NOT NULL THEN 1 ELSE jobs.again END, \
         done_at = NULL",
    )
    .bind(kind)
    .bind(key)
    .bind(payload.to_string())
    .bind(run_at)
    .bind(crate::now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Makes `(kind, key)` a recurring job every `every_ms`, first due at `first_run_at` if it is new; an
/// existing one keeps its schedule and takes the new period.
pub async fn recur(db: &Db, kind: &str, key: &str, every_ms: i64, first_run_at: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO jobs (kind, job_key, payload, run_at, every_ms, created_at) VALUES ($1, $2, '{}', $3, $4, $5) \
         ON CONFLICT (kind, job_key) DO UPDATE SET every_ms = excluded.every_ms, done_at = NULL",
    )
    .bind(kind)
    .bind(key)
    .bind(first_run_at)
    .bind(every_ms)
    .bind(crate::now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Stops a recurring job (its period set to nothing and marked done): the configuration turned it off.
pub async fn stop_recurring(db: &Db, kind: &str, key: &str) -> StoreResult<()> {
    sqlx::query("UPDATE jobs SET every_ms = NULL, done_at = $1 WHERE kind = $2 AND job_key = $3 AND done_at IS NULL")
        .bind(crate::now_ms())
        .bind(kind)
        .bind(key)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// A job as the operators see it (`GET /api/v1/jobs` later; tests now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    pub kind: String,
    pub key: String,
    pub runs: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub leased_by: Option<String>,
    pub done: bool,
}

/// Every job of `kind`, oldest first.
pub async fn jobs_of(db: &Db, kind: &str) -> StoreResult<Vec<JobState>> {
    let rows = sqlx::query("SELECT job_key, runs, attempts, last_error, leased_by, done_at FROM jobs WHERE kind = $1 ORDER BY id")
        .bind(kind)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(JobState {
                kind: kind.to_string(),
                key: r.try_get("job_key")?,
                runs: r.try_get("runs")?,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                leased_by: r.try_get("leased_by")?,
                done: r.try_get::<Option<i64>, _>("done_at")?.is_some(),
            })
        })
        .collect()
}

/// A short random name part (no uuid dependency in the store).
fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("{:016x}", h.finish())
}

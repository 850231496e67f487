-- Background work (shutong_store::jobs): one row per job, unique by kind and key (scheduling twice is one
-- job), run by whichever replica leases it first; a lease that lapses (a crashed runner) is taken over.
-- Recurring jobs (every_ms) are rescheduled after each run; failures back off.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    job_key TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    run_at BIGINT NOT NULL,
    every_ms BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    leased_by TEXT,
    leased_until BIGINT,
    last_error TEXT,
    last_run_at BIGINT,
    runs BIGINT NOT NULL DEFAULT 0,
    done_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX jobs_kind_key ON jobs(kind, job_key);
CREATE INDEX jobs_due ON jobs(run_at) WHERE done_at IS NULL;

-- 一数一源、多元校核 (办法 第四条(三); R-Q-2): the base data elements the sharing authority declares, each with
-- its authoritative resource and items; the datasets carrying the same element (mapped by item name, or
-- explicitly); every reconciliation appended with its figures, and the conflicts it found per key.
CREATE TABLE base_elements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    key_item TEXT NOT NULL,
    resource_code TEXT NOT NULL,
    items TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE base_element_mappings (
    element_id BIGINT NOT NULL REFERENCES base_elements(id),
    resource_code TEXT NOT NULL,
    items TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (element_id, resource_code)
);

CREATE TABLE consistency_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    element_id BIGINT NOT NULL REFERENCES base_elements(id),
    resource_code TEXT NOT NULL,
    authoritative_code TEXT NOT NULL,
    provider_department_id BIGINT NOT NULL,
    authoritative_department_id BIGINT NOT NULL,
    cause TEXT NOT NULL,
    ran_at BIGINT NOT NULL,
    keys_compared BIGINT NOT NULL,
    missing_in_resource BIGINT NOT NULL,
    missing_in_authoritative BIGINT NOT NULL,
    differing_keys BIGINT NOT NULL,
    items TEXT NOT NULL,
    rate BIGINT NOT NULL,
    conflicts_kept BIGINT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX consistency_runs_element ON consistency_runs(element_id, resource_code, id);

CREATE TABLE consistency_conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id BIGINT NOT NULL REFERENCES consistency_runs(id),
    stored_key TEXT NOT NULL,
    shown_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    item TEXT,
    authoritative_value TEXT,
    resource_value TEXT
);
CREATE INDEX consistency_conflicts_run ON consistency_conflicts(run_id, id);

-- Reconciliations are history, like quality checks: appended, never changed.
CREATE TRIGGER consistency_runs_append_only_update BEFORE UPDATE ON consistency_runs
BEGIN SELECT RAISE(ABORT, 'consistency runs are append-only'); END;
CREATE TRIGGER consistency_runs_append_only_delete BEFORE DELETE ON consistency_runs
BEGIN SELECT RAISE(ABORT, 'consistency runs are append-only'); END;
CREATE TRIGGER consistency_conflicts_append_only_update BEFORE UPDATE ON consistency_conflicts
BEGIN SELECT RAISE(ABORT, 'consistency conflicts are append-only'); END;
CREATE TRIGGER consistency_conflicts_append_only_delete BEFORE DELETE ON consistency_conflicts
BEGIN SELECT RAISE(ABORT, 'consistency conflicts are append-only'); END;

-- 数据质量 (办法 第十七条; SPEC C6): the dimensions after GB/T 36344-2018 with the weights the sharing authority
-- sets, the rules that providers and the authority add to a dataset (the rules derived from its catalog items
-- are computed, not stored: a row here with origin 'derived' only retires one), and every check's results,
-- appended and never changed.
CREATE TABLE quality_dimensions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    weight BIGINT NOT NULL,
    position BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
INSERT INTO quality_dimensions (code, name, weight, position, updated_at, updated_by) VALUES
    ('completeness', '完整性', 25, 1, 0, 'system:install'),
    ('conformity', '规范性', 20, 2, 0, 'system:install'),
    ('accuracy', '准确性', 25, 3, 0, 'system:install'),
    ('consistency', '一致性', 15, 4, 0, 'system:install'),
    ('timeliness', '时效性', 15, 5, 0, 'system:install');

CREATE TABLE quality_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_code TEXT NOT NULL,
    rule_key TEXT NOT NULL,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    dimension TEXT NOT NULL,
    blocking BIGINT NOT NULL DEFAULT 0,
    note TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    retired_at BIGINT,
    retired_by TEXT,
    retire_reason TEXT
);
CREATE INDEX quality_rules_resource ON quality_rules(resource_code, id);
CREATE UNIQUE INDEX quality_rules_key ON quality_rules(resource_code, rule_key);

CREATE TABLE quality_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_code TEXT NOT NULL,
    department_id BIGINT NOT NULL,
    cause TEXT NOT NULL,
    batch_id BIGINT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    rows_checked BIGINT NOT NULL,
    score BIGINT NOT NULL,
    grade TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX quality_runs_resource ON quality_runs(resource_code, id);
CREATE INDEX quality_runs_department ON quality_runs(department_id, id);

CREATE TABLE quality_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id BIGINT NOT NULL REFERENCES quality_runs(id),
    resource_code TEXT NOT NULL,
    rule_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    dimension TEXT NOT NULL,
    checked_at BIGINT NOT NULL,
    rows_checked BIGINT NOT NULL,
    rows_failing BIGINT NOT NULL,
    samples TEXT NOT NULL,
    score BIGINT NOT NULL,
    detail TEXT
);
CREATE INDEX quality_results_run ON quality_results(run_id, id);
CREATE INDEX quality_results_rule ON quality_results(resource_code, rule_key, id);

-- Results are history: appended, never changed (the database refuses it).
CREATE TRIGGER quality_results_append_only_update BEFORE UPDATE ON quality_results
BEGIN SELECT RAISE(ABORT, 'quality results are append-only'); END;
CREATE TRIGGER quality_results_append_only_delete BEFORE DELETE ON quality_results
BEGIN SELECT RAISE(ABORT, 'quality results are append-only'); END;
CREATE TRIGGER quality_runs_append_only_update BEFORE UPDATE ON quality_runs
BEGIN SELECT RAISE(ABORT, 'quality runs are append-only'); END;
CREATE TRIGGER quality_runs_append_only_delete BEFORE DELETE ON quality_runs
BEGIN SELECT RAISE(ABORT, 'quality runs are append-only'); END;

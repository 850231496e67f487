-- 疑义校核 (办法 第十八条; R-Q-1): objections that consumers holding a grant file on records of a dataset, the
-- provider's answer within a number of working days, the filer's acceptance or escalation and the sharing
-- authority's ruling; the reasons the authority keeps; the evidence files; and the 校核中 flags that every
-- read of a flagged record carries while its objection is open.
CREATE TABLE objection_reasons (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    position BIGINT NOT NULL,
    retired_at BIGINT,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
INSERT INTO objection_reasons (code, name, position, updated_at, updated_by) VALUES
    ('missing', '数据缺失', 1, 0, 'system:install'),
    ('wrong', '数据错误', 2, 0, 'system:install'),
    ('duplicate', '数据重复', 3, 0, 'system:install'),
    ('outdated', '数据过期', 4, 0, 'system:install'),
    ('format', '格式不符', 5, 0, 'system:install'),
    ('authority', '与权威来源不一致', 6, 0, 'system:install'),
    ('other', '其他', 7, 0, 'system:install');

CREATE TABLE objections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_code TEXT NOT NULL,
    provider_department_id BIGINT NOT NULL,
    filer_department_id BIGINT NOT NULL,
    filed_by TEXT NOT NULL,
    grant_id BIGINT,
    origin TEXT NOT NULL,
    rule_key TEXT,
    reason TEXT NOT NULL,
    description TEXT NOT NULL,
    items TEXT NOT NULL,
    state TEXT NOT NULL,
    filed_at BIGINT NOT NULL,
    due_on TEXT NOT NULL,
    answer TEXT,
    answer_note TEXT,
    answered_at BIGINT,
    answered_by TEXT,
    corrected_batch BIGINT,
    escalated_at BIGINT,
    escalation_note TEXT,
    ruling TEXT,
    ruling_note TEXT,
    ruled_at BIGINT,
    closed_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX objections_provider ON objections(provider_department_id, state, id);
CREATE INDEX objections_filer ON objections(filer_department_id, id);
CREATE INDEX objections_resource ON objections(resource_code, id);

CREATE TABLE objection_records (
    objection_id BIGINT NOT NULL REFERENCES objections(id),
    position BIGINT NOT NULL,
    stored_key TEXT NOT NULL,
    shown_key TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (objection_id, position)
);

CREATE TABLE objection_evidence (
    objection_id BIGINT PRIMARY KEY REFERENCES objections(id),
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sm3 TEXT NOT NULL,
    content BLOB NOT NULL,
    uploaded_at BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL
);

-- 校核中: one row per flagged record and open objection, read (cached) by every data read; `pending` rows
-- are records whose flag changed and that the change feed has not yet carried again.
CREATE TABLE record_flags (
    resource_code TEXT NOT NULL,
    stored_key TEXT NOT NULL,
    objection_id BIGINT NOT NULL,
    items TEXT NOT NULL,
    PRIMARY KEY (resource_code, stored_key, objection_id)
);
CREATE TABLE record_flag_feed (
    resource_code TEXT NOT NULL,
    stored_key TEXT NOT NULL,
    PRIMARY KEY (resource_code, stored_key)
);

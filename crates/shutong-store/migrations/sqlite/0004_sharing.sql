-- 共享申请与授权 (办法 第十五条, 第十六条; SPEC C3). Dates of the working-day calendar are TEXT
-- (YYYY-MM-DD, China time); lists are JSON arrays in TEXT.

-- A consumer's subscription (无条件共享) or application (有条件共享), and where it stands.
CREATE TABLE sharing_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    resource_code TEXT NOT NULL REFERENCES catalog_resources(code),
    resource_version BIGINT NOT NULL,
    resource_name TEXT NOT NULL,
    consumer_department_id BIGINT NOT NULL REFERENCES departments(id),
    provider_department_id BIGINT NOT NULL REFERENCES departments(id),
    status TEXT NOT NULL,
    stage TEXT NOT NULL,
    -- Who the request waits for at its current stage, and until when (the open stage's due date).
    owner_department_id BIGINT NOT NULL REFERENCES departments(id),
    stage_due_on TEXT NOT NULL,
    items TEXT NOT NULL,
    purpose TEXT NOT NULL,
    purpose_detail TEXT,
    basis TEXT NOT NULL,
    period_from TEXT NOT NULL,
    period_to TEXT NOT NULL,
    access_methods TEXT NOT NULL,
    expected_volume TEXT,
    submitted_at BIGINT NOT NULL,
    submitted_by TEXT NOT NULL,
    submitted_on TEXT NOT NULL,
    due_on TEXT NOT NULL,
    answered_at BIGINT,
    answered_on TEXT,
    answered_by TEXT,
    answer_reason TEXT,
    grant_id BIGINT,
    closed_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX sharing_requests_consumer ON sharing_requests(consumer_department_id, status);
CREATE INDEX sharing_requests_provider ON sharing_requests(provider_department_id, status);
CREATE INDEX sharing_requests_open ON sharing_requests(status, stage_due_on);
-- R-REQ-2: one open request per consumer, resource and purpose, also under concurrent submissions.
CREATE UNIQUE INDEX sharing_requests_one_open ON sharing_requests(consumer_department_id, resource_code, purpose)
    WHERE status IN ('pending', 'negotiating', 'coordinating', 'leading_group');
CREATE INDEX sharing_requests_owner ON sharing_requests(owner_department_id, status);

-- One step of the escalation of a refusal (R-REQ-4): 协商 with the provider, 协调 by the sharing
-- authority of the level, 领导小组 where provincial departments are involved.
CREATE TABLE sharing_escalations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id BIGINT NOT NULL REFERENCES sharing_requests(id),
    stage TEXT NOT NULL,
    owner_department_id BIGINT NOT NULL REFERENCES departments(id),
    opened_at BIGINT NOT NULL,
    opened_by TEXT NOT NULL,
    opened_on TEXT NOT NULL,
    reason TEXT NOT NULL,
    due_on TEXT NOT NULL,
    closed_at BIGINT,
    closed_on TEXT,
    closed_by TEXT,
    outcome TEXT,
    outcome_note TEXT
);
CREATE INDEX sharing_escalations_request ON sharing_escalations(request_id);
CREATE INDEX sharing_escalations_owner ON sharing_escalations(owner_department_id, closed_at);

-- The record of the exchange in a request: what each side wrote.
CREATE TABLE sharing_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id BIGINT NOT NULL REFERENCES sharing_requests(id),
    stage TEXT NOT NULL,
    at BIGINT NOT NULL,
    author TEXT NOT NULL,
    department_id BIGINT REFERENCES departments(id),
    body TEXT NOT NULL
);
CREATE INDEX sharing_messages_request ON sharing_messages(request_id, id);

-- 授权 (R-REQ-5): what every later data access is checked against.
CREATE TABLE sharing_grants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_code TEXT NOT NULL REFERENCES catalog_resources(code),
    consumer_department_id BIGINT NOT NULL REFERENCES departments(id),
    provider_department_id BIGINT NOT NULL REFERENCES departments(id),
    request_id BIGINT REFERENCES sharing_requests(id),
    origin TEXT NOT NULL,
    items TEXT NOT NULL,
    row_filter TEXT,
    purpose TEXT NOT NULL,
    purpose_detail TEXT,
    valid_from TEXT NOT NULL,
    valid_to TEXT NOT NULL,
    access_methods TEXT NOT NULL,
    daily_quota BIGINT,
    clear_text BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    renewed_at BIGINT,
    renewed_by TEXT,
    revoked_at BIGINT,
    revoked_by TEXT,
    revoke_reason TEXT
);
CREATE INDEX sharing_grants_consumer ON sharing_grants(consumer_department_id, resource_code);
CREATE INDEX sharing_grants_provider ON sharing_grants(provider_department_id);
CREATE INDEX sharing_grants_resource ON sharing_grants(resource_code, status);

-- 提醒: what a department is told (reminders, overdue notices, answers, expiries). A key makes each
-- notice once only.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    department_id BIGINT NOT NULL REFERENCES departments(id),
    kind TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    message TEXT NOT NULL,
    due_on TEXT,
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    dedupe_key TEXT NOT NULL UNIQUE
);
CREATE INDEX notifications_department ON notifications(department_id, read_at);

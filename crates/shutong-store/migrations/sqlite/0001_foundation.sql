-- Foundation (C1 organisation and identity, audit events). Times are Unix milliseconds (BIGINT);
-- flags are 0/1 (BIGINT); JSON documents are TEXT. See the crate README for why.

CREATE TABLE node_identity (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    level TEXT NOT NULL,
    zone TEXT NOT NULL,
    region_code TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE departments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    credit_code TEXT NOT NULL UNIQUE,
    region_code TEXT NOT NULL,
    level TEXT NOT NULL,
    kind TEXT NOT NULL,
    parent_id BIGINT REFERENCES departments(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX departments_parent ON departments(parent_id);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    department_id BIGINT NOT NULL REFERENCES departments(id),
    password_hash TEXT,
    is_system BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    must_change_password BIGINT NOT NULL DEFAULT 0,
    password_changed_at BIGINT,
    last_login_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX users_department ON users(department_id);

CREATE TABLE role_assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL,
    department_id BIGINT NOT NULL REFERENCES departments(id),
    created_at BIGINT NOT NULL,
    UNIQUE (user_id, role, department_id)
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor_user_id BIGINT,
    actor TEXT NOT NULL,
    department_id BIGINT,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_id TEXT,
    ip TEXT
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_department ON audit_events(department_id, seq);
CREATE INDEX audit_events_action ON audit_events(action, seq);

CREATE TABLE calendar_years (
    year BIGINT PRIMARY KEY,
    schedule TEXT NOT NULL,
    imported_at BIGINT NOT NULL,
    imported_by TEXT NOT NULL
);

CREATE TABLE region_overrides (
    code TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

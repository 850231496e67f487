-- Resource catalog (政务信息资源目录, SPEC C2). A resource's metadata is a JSON document per version;
-- the columns beside it are copies for filtering and statistics.

CREATE TABLE catalog_classifications (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_code TEXT REFERENCES catalog_classifications(code),
    level BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The last sequence number given out per classification: codes are never reused.
CREATE TABLE catalog_sequences (
    classification_code TEXT PRIMARY KEY REFERENCES catalog_classifications(code),
    last_seq BIGINT NOT NULL
);

CREATE TABLE catalog_resources (
    code TEXT PRIMARY KEY,
    classification_code TEXT NOT NULL REFERENCES catalog_classifications(code),
    provider_department_id BIGINT NOT NULL REFERENCES departments(id),
    status TEXT NOT NULL,
    latest_version BIGINT NOT NULL,
    published_version BIGINT,
    name TEXT NOT NULL,
    sharing_type TEXT NOT NULL,
    is_open BIGINT NOT NULL,
    format TEXT NOT NULL,
    update_cycle TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX catalog_resources_provider ON catalog_resources(provider_department_id);
CREATE INDEX catalog_resources_status ON catalog_resources(status);

CREATE TABLE catalog_versions (
    code TEXT NOT NULL REFERENCES catalog_resources(code),
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    submitted_at BIGINT,
    reviewed_at BIGINT,
    reviewed_by TEXT,
    return_reason TEXT,
    published_at BIGINT,
    withdrawn_at BIGINT,
    withdraw_reason TEXT,
    PRIMARY KEY (code, version)
);

-- 目录更新事件: a law revised or a department's functions changed (办法 第九条: update within 15 working days).
CREATE TABLE catalog_change_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    department_id BIGINT NOT NULL REFERENCES departments(id),
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    occurred_on TEXT NOT NULL,
    due_on TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT,
    resolution TEXT
);
CREATE INDEX catalog_change_events_open ON catalog_change_events(resolved_at, due_on);

-- The seeded classification: 1 基础, 2 主题, 3 部门 (办法 第十一条; 编制指南).
INSERT INTO catalog_classifications (code, name, parent_code, level, created_at) VALUES
  ('1', '基础信息资源', NULL, 1, 0),
  ('2', '主题信息资源', NULL, 1, 0),
  ('3', '部门信息资源', NULL, 1, 0),
  ('101', '人口', '1', 2, 0),
  ('102', '法人单位', '1', 2, 0),
  ('103', '自然资源和空间地理', '1', 2, 0),
  ('104', '社会信用', '1', 2, 0),
  ('105', '电子证照', '1', 2, 0),
  ('106', '宏观经济', '1', 2, 0),
  ('201', '医疗健康', '2', 2, 0),
  ('202', '社会保障', '2', 2, 0),
  ('203', '食品药品安全', '2', 2, 0),
  ('204', '安全生产', '2', 2, 0),
  ('205', '价格监管', '2', 2, 0),
  ('206', '能源安全', '2', 2, 0),
  ('207', '信用体系', '2', 2, 0),
  ('208', '城乡建设', '2', 2, 0),
  ('209', '社区治理', '2', 2, 0),
  ('210', '生态环保', '2', 2, 0),
  ('211', '应急维稳', '2', 2, 0),
  ('212', '精准扶贫', '2', 2, 0),
  ('213', '政务服务', '2', 2, 0);

-- A resource's history is read from the audit trail by target.
CREATE INDEX audit_events_target ON audit_events(target_kind, target_id, seq);

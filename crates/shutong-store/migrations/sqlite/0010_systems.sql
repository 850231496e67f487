-- 信息系统台账 (江苏方案 三(一)1; 吉林方案 二(一); 贵州方案 四(一); 铜川方案 二(一)): each department's systems,
-- versioned on every change; the zombie review (僵尸信息系统) and its cleanup; filed projects (全口径备案,
-- 办法 第二十三条) with their stages and the gates of 办法 第二十二条.
CREATE TABLE info_systems (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    department_id BIGINT NOT NULL REFERENCES departments(id),
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    access_url TEXT,
    status TEXT NOT NULL,
    document TEXT NOT NULL,
    version BIGINT NOT NULL,
    merger_flag TEXT,
    zombie_response TEXT,
    zombie_response_reason TEXT,
    zombie_decision TEXT,
    zombie_decision_reason TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE UNIQUE INDEX info_systems_name ON info_systems(department_id, name_key);
CREATE INDEX info_systems_access_url ON info_systems(access_url);

CREATE TABLE info_system_versions (
    system_id BIGINT NOT NULL REFERENCES info_systems(id),
    version BIGINT NOT NULL,
    document TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    changed_by TEXT NOT NULL,
    PRIMARY KEY (system_id, version)
);

-- The system's links to the platform: resources it produces or consumes, its system accounts.
CREATE TABLE info_system_links (
    system_id BIGINT NOT NULL REFERENCES info_systems(id),
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (system_id, kind, target)
);
CREATE INDEX info_system_links_target ON info_system_links(kind, target);

-- Each step of a zombie review, append-only: the department's response, the authority's decision, with the
-- criteria and evidence as they stood.
CREATE TABLE zombie_reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    system_id BIGINT NOT NULL REFERENCES info_systems(id),
    step TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT,
    evidence TEXT NOT NULL,
    at BIGINT NOT NULL,
    by_user TEXT NOT NULL
);
CREATE INDEX zombie_reviews_system ON zombie_reviews(system_id, id);

CREATE TABLE system_cleanups (
    system_id BIGINT PRIMARY KEY REFERENCES info_systems(id),
    action TEXT NOT NULL,
    due_on TEXT NOT NULL,
    into_system_id BIGINT REFERENCES info_systems(id),
    progress TEXT NOT NULL,
    note TEXT,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE filed_projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    department_id BIGINT NOT NULL REFERENCES departments(id),
    catalog_project_id BIGINT NOT NULL UNIQUE REFERENCES catalog_projects(id),
    name TEXT NOT NULL,
    stage TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX filed_projects_stage ON filed_projects(stage, id);

CREATE TABLE project_systems (
    project_id BIGINT NOT NULL REFERENCES filed_projects(id),
    system_id BIGINT NOT NULL REFERENCES info_systems(id),
    PRIMARY KEY (project_id, system_id)
);
CREATE INDEX project_systems_system ON project_systems(system_id);

-- The date and document of each stage reached; an override names its reason (audited as project.gate_override).
CREATE TABLE project_stages (
    project_id BIGINT NOT NULL REFERENCES filed_projects(id),
    stage TEXT NOT NULL,
    entered_on TEXT NOT NULL,
    document TEXT NOT NULL,
    override_reason TEXT,
    at BIGINT NOT NULL,
    by_user TEXT NOT NULL,
    PRIMARY KEY (project_id, stage)
);

-- 一个报告、三个清单 (铜川方案 二(一)): each version of a department's self-inspection report, with the three
-- lists as generated from the facts when the version was saved.
CREATE TABLE self_inspection_reports (
    department_id BIGINT NOT NULL REFERENCES departments(id),
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    content TEXT NOT NULL,
    lists TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    submitted_at BIGINT,
    submitted_by TEXT,
    reviewed_at BIGINT,
    reviewed_by TEXT,
    review_note TEXT,
    PRIMARY KEY (department_id, version)
);

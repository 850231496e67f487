-- 项目目录 (办法 第二十二条, R-CAT-8): an information project's catalog is compiled before the project is
-- approved and merged into the platform catalog when the project is accepted.
CREATE TABLE catalog_projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    department_id BIGINT NOT NULL REFERENCES departments(id),
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    accepted_at BIGINT,
    accepted_by TEXT
);

ALTER TABLE catalog_resources ADD COLUMN project_id BIGINT REFERENCES catalog_projects(id);
CREATE INDEX catalog_resources_project ON catalog_resources(project_id);

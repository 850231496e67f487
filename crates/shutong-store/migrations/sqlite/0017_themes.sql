-- 主题库 (办法 第十一条(三); 贵州方案 四(七)): a theme database assembled by key from several departments'
-- datasets into a resource of its lead department, its items drawn from the members; every refresh appended
-- with the members' versions and sequence numbers it read (the lineage of every value).
CREATE TABLE themes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource_code TEXT NOT NULL UNIQUE,
    lead_department_id BIGINT NOT NULL,
    key_item TEXT NOT NULL,
    items TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE theme_refreshes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    theme_id BIGINT NOT NULL REFERENCES themes(id),
    refreshed_at BIGINT NOT NULL,
    mode TEXT NOT NULL,
    rows_written BIGINT NOT NULL,
    rows_deleted BIGINT NOT NULL,
    batch_id BIGINT,
    members TEXT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX theme_refreshes_theme ON theme_refreshes(theme_id, id);

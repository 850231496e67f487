-- 前置机 (exchange nodes, 办法 第十五条 前置机共享): one row per node, registered by its system account's first
-- signed heartbeat; the heartbeat keeps its version, its flows' lag, outbox depth and last error.
CREATE TABLE exchange_nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    department_id BIGINT NOT NULL REFERENCES departments(id),
    account_id BIGINT NOT NULL UNIQUE REFERENCES users(id),
    version TEXT NOT NULL,
    report TEXT NOT NULL,
    last_error TEXT,
    registered_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    last_transfer_at BIGINT
);
CREATE INDEX exchange_nodes_department ON exchange_nodes(department_id);

-- The audit trail's hash chain (docs/AUDIT-FORMAT.md): each event, once sealed, has its place in the
-- chain and h_i = SM3(h_{i-1} || canonical_i). Events are sealed shortly after they commit, in the order
-- the sealer sees them, which may differ from seq when transactions commit out of order.
ALTER TABLE audit_events ADD COLUMN chain_seq BIGINT;
ALTER TABLE audit_events ADD COLUMN chain_hash TEXT;
CREATE UNIQUE INDEX audit_events_chain ON audit_events(chain_seq);
CREATE INDEX audit_events_unsealed ON audit_events(seq) WHERE chain_seq IS NULL;

-- One row: the end of the chain (locked by the sealer), and where the chain restarts after archived
-- segments were removed.
CREATE TABLE audit_chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    chain_seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    archived_through BIGINT NOT NULL,
    archived_hash TEXT NOT NULL
);
INSERT INTO audit_chain_head (id, chain_seq, hash, archived_through, archived_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Signed checkpoints: the node's SM2 signature over (chain_seq, h, time).
CREATE TABLE audit_checkpoints (
    chain_seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL
);

-- Archived (removed) segments of the chain, each written to a file that verifies on its own.
CREATE TABLE audit_archives (
    last_chain_seq INTEGER PRIMARY KEY,
    first_chain_seq BIGINT NOT NULL,
    last_hash TEXT NOT NULL,
    events BIGINT NOT NULL,
    file TEXT NOT NULL,
    file_sm3 TEXT NOT NULL,
    archived_at BIGINT NOT NULL,
    archived_by TEXT NOT NULL
);

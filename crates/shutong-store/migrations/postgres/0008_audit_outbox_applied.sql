-- The audit outbox (shutong_audit::outbox): changes made in another database (the data pool on SQLite)
-- write their audit event into that database's audit_outbox in their own transaction; moving an event into
-- audit_events records its outbox position here in the same transaction, so that an event is moved once
-- however often the move is repeated or interrupted.
CREATE TABLE audit_outbox_applied (
    source TEXT NOT NULL,
    outbox_id BIGINT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (source, outbox_id)
);

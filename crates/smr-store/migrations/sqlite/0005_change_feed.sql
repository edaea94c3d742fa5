-- Issue 9: the change feed (an outbox). Every version written appends one row in the same
-- transaction; consumers (the PGx re-check, the DetectedIssue event stream, later
-- Subscriptions, NATS and exports) read it in order and keep their position here, so after a
-- crash or restart every change is processed at least once.
-- On SQLite the single writer commits in `seq` order, so `tx` is unused (0).
CREATE TABLE change_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tx INTEGER NOT NULL DEFAULT 0,
    res_type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    patient_key TEXT NOT NULL,
    action TEXT NOT NULL,
    changed_at INTEGER NOT NULL
);
CREATE INDEX change_log_order ON change_log (tx, seq);

CREATE TABLE change_consumer (
    name TEXT PRIMARY KEY,
    tx INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

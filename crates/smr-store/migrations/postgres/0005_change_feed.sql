-- Issue 9: the change feed (an outbox). Every version written appends one row in the same
-- transaction; consumers (the PGx re-check, the DetectedIssue event stream, later
-- Subscriptions, NATS and exports) read it in order and keep their position here, so after a
-- crash or restart every change is processed at least once.
-- Concurrent transactions take `seq` values in one order and commit in another, so a reader
-- cannot trust "everything below the highest seq I saw is visible". Each row records its
-- transaction id (`tx`); a reader takes only rows of transactions older than the oldest still
-- running (`pg_snapshot_xmin`), which can gain no more rows, in (tx, seq) order.
CREATE TABLE change_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    res_type TEXT NOT NULL,
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    patient_key TEXT NOT NULL,
    action TEXT NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX change_log_order ON change_log (tx, seq);

CREATE TABLE change_consumer (
    name TEXT PRIMARY KEY,
    tx BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

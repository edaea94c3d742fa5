-- Access control and audit (see ARCHITECTURE.md, "Trust").

-- Which organisations care for which patient, derived from the record (smr_access::care) and
-- rewritten with the resource that shows it, in the same transaction. Keyed by patient so it
-- colocates with the record on Citus; the org index serves "patients this org cares for".
CREATE TABLE care_relationship (
    patient_key TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    org         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    -- Microseconds since the epoch; NULL while open-ended.
    valid_until BIGINT,
    PRIMARY KEY (patient_key, source_type, source_id, org, kind)
);
CREATE INDEX care_relationship_org ON care_relationship (org, patient_key);

-- Patients' consent restrictions (smr_access::consent): entries labelled `label` are
-- withheld from `actor`. Rewritten with each Consent.
CREATE TABLE consent_restriction (
    patient_key TEXT NOT NULL,
    consent_id  TEXT NOT NULL,
    label       TEXT NOT NULL,
    actor       TEXT NOT NULL,
    PRIMARY KEY (patient_key, consent_id, label, actor)
);

-- The audit trail: append-only, hash-chained (hash = SHA-256 of prev_hash and body).
CREATE TABLE audit_log (
    seq         BIGINT NOT NULL PRIMARY KEY,
    id          TEXT NOT NULL,
    recorded    BIGINT NOT NULL,
    agent_user  TEXT,
    agent_org   TEXT,
    purpose     TEXT,
    outcome     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE UNIQUE INDEX audit_log_id ON audit_log (id);
CREATE INDEX audit_log_org ON audit_log (agent_org, seq);

-- Which patients' records each audit record touched: a patient's access log.
CREATE TABLE audit_patient (
    patient_key TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (patient_key, seq)
);

-- The chain's head: the last record's sequence number and hash, so removing records from
-- the end is detected too.
CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY,
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only in the database too: SMR never changes or deletes an audit record.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;

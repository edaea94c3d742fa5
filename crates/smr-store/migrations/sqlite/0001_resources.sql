-- SMR storage schema, SQLite flavour (same logical schema as ../postgres; see ARCHITECTURE.md, "Storage").
--
-- Every patient-compartment table carries `patient_key` first in its primary key (and would in
-- any unique constraint), so the schema distributes on Citus by patient without change:
--   SELECT create_distributed_table('resources', 'patient_key');  -- and colocated: versions, idx_*
--   SELECT create_distributed_table('resource_locator', 'id');
--   SELECT create_distributed_table('unique_identifier', 'value');
-- SQLite compares text bytewise (BINARY), as the PostgreSQL schema does with COLLATE "C".
-- The small key tables are WITHOUT ROWID: one B-tree each instead of a table plus its key
-- index, which halves the pages a create dirties there. resource_versions keeps its rowid
-- because its rows (the JSON) are large.

-- id -> owning patient, so a read by id goes to one shard rather than all of them.
CREATE TABLE resource_locator (
    res_type    TEXT NOT NULL,
    id          TEXT NOT NULL,
    patient_key TEXT NOT NULL,
    PRIMARY KEY (res_type, id)
) WITHOUT ROWID;

-- The current version of every resource (deleted ones stay, flagged, so reads give 410).
CREATE TABLE resources (
    patient_key  TEXT NOT NULL,
    res_type     TEXT NOT NULL,
    id           TEXT NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL,
    PRIMARY KEY (patient_key, res_type, id)
) WITHOUT ROWID;
CREATE INDEX resources_type_id ON resources (res_type, id);
CREATE INDEX resources_type_updated ON resources (res_type, last_updated);

-- Every version ever written; the JSON as received (plus meta) is the source of truth.
CREATE TABLE resource_versions (
    patient_key  TEXT NOT NULL,
    res_type     TEXT NOT NULL,
    id           TEXT NOT NULL,
    version      INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL,
    method       TEXT NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (patient_key, res_type, id, version)
);
CREATE INDEX resource_versions_instance ON resource_versions (res_type, id, version);
CREATE INDEX resource_versions_type_updated ON resource_versions (res_type, last_updated);
CREATE INDEX resource_versions_updated ON resource_versions (last_updated);

-- Business identifiers that must be unique across the record (NHS number on Patient).
-- Keyed by the identifier, not the patient: Citus only enforces uniqueness that includes
-- the distribution column.
CREATE TABLE unique_identifier (
    system      TEXT NOT NULL,
    value       TEXT NOT NULL,
    res_type    TEXT NOT NULL,
    id          TEXT NOT NULL,
    PRIMARY KEY (value, system, res_type)
);

-- Search indexes of the current version, rewritten in the same transaction as every write.
CREATE TABLE idx_token (
    patient_key TEXT NOT NULL,
    res_type    TEXT NOT NULL,
    id          TEXT NOT NULL,
    param       TEXT NOT NULL,
    system      TEXT,
    code        TEXT,
    text        TEXT
);
CREATE INDEX idx_token_code ON idx_token (res_type, param, code, system);
CREATE INDEX idx_token_owner ON idx_token (patient_key, res_type, id);

CREATE TABLE idx_string (
    patient_key TEXT NOT NULL,
    res_type    TEXT NOT NULL,
    id          TEXT NOT NULL,
    param       TEXT NOT NULL,
    normalized  TEXT NOT NULL,
    exact       TEXT NOT NULL
);
CREATE INDEX idx_string_value ON idx_string (res_type, param, normalized);
CREATE INDEX idx_string_owner ON idx_string (patient_key, res_type, id);

CREATE TABLE idx_date (
    patient_key TEXT NOT NULL,
    res_type    TEXT NOT NULL,
    id          TEXT NOT NULL,
    param       TEXT NOT NULL,
    low         INTEGER NOT NULL,
    high        INTEGER NOT NULL
);
CREATE INDEX idx_date_low ON idx_date (res_type, param, low);
CREATE INDEX idx_date_owner ON idx_date (patient_key, res_type, id);

CREATE TABLE idx_reference (
    patient_key TEXT NOT NULL,
    res_type    TEXT NOT NULL,
    id          TEXT NOT NULL,
    param       TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    url         TEXT NOT NULL
);
CREATE INDEX idx_reference_target ON idx_reference (res_type, param, target_id);
CREATE INDEX idx_reference_reverse ON idx_reference (target_id, target_type);
CREATE INDEX idx_reference_owner ON idx_reference (patient_key, res_type, id);

CREATE TABLE idx_number (
    patient_key TEXT NOT NULL,
    res_type    TEXT NOT NULL,
    id          TEXT NOT NULL,
    param       TEXT NOT NULL,
    value       REAL NOT NULL
);
CREATE INDEX idx_number_value ON idx_number (res_type, param, value);
CREATE INDEX idx_number_owner ON idx_number (patient_key, res_type, id);

CREATE TABLE idx_quantity (
    patient_key TEXT NOT NULL,
    res_type    TEXT NOT NULL,
    id          TEXT NOT NULL,
    param       TEXT NOT NULL,
    value       REAL NOT NULL,
    system      TEXT,
    code        TEXT,
    unit        TEXT
);
CREATE INDEX idx_quantity_value ON idx_quantity (res_type, param, value);
CREATE INDEX idx_quantity_owner ON idx_quantity (patient_key, res_type, id);

CREATE TABLE idx_uri (
    patient_key TEXT NOT NULL,
    res_type    TEXT NOT NULL,
    id          TEXT NOT NULL,
    param       TEXT NOT NULL,
    value       TEXT NOT NULL
);
CREATE INDEX idx_uri_value ON idx_uri (res_type, param, value);
CREATE INDEX idx_uri_owner ON idx_uri (patient_key, res_type, id);

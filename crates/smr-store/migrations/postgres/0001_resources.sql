-- SMR storage schema, PostgreSQL flavour (see ARCHITECTURE.md, "Storage").
--
-- Every patient-compartment table carries `patient_key` first in its primary key (and would in
-- any unique constraint), so the schema distributes on Citus by patient without change:
--   SELECT create_distributed_table('resources', 'patient_key');  -- and colocated: versions, idx_*
--   SELECT create_distributed_table('resource_locator', 'id');
--   SELECT create_distributed_table('unique_identifier', 'value');
-- Text columns use the "C" collation: byte order, identical to SQLite's, so keyset paging and
-- sort order mean the same on both engines.

-- id -> owning patient, so a read by id goes to one shard rather than all of them.
CREATE TABLE resource_locator (
    res_type    TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    patient_key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (res_type, id)
);

-- The current version of every resource (deleted ones stay, flagged, so reads give 410).
CREATE TABLE resources (
    patient_key  TEXT COLLATE "C" NOT NULL,
    res_type     TEXT COLLATE "C" NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    deleted      BIGINT NOT NULL,
    PRIMARY KEY (patient_key, res_type, id)
);
CREATE INDEX resources_type_id ON resources (res_type, id);
CREATE INDEX resources_type_updated ON resources (res_type, last_updated);

-- Every version ever written; the JSON as received (plus meta) is the source of truth.
CREATE TABLE resource_versions (
    patient_key  TEXT COLLATE "C" NOT NULL,
    res_type     TEXT COLLATE "C" NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    deleted      BIGINT NOT NULL,
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
    system      TEXT COLLATE "C" NOT NULL,
    value       TEXT COLLATE "C" NOT NULL,
    res_type    TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (value, system, res_type)
);

-- Search indexes of the current version, rewritten in the same transaction as every write.
CREATE TABLE idx_token (
    patient_key TEXT COLLATE "C" NOT NULL,
    res_type    TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    system      TEXT COLLATE "C",
    code        TEXT COLLATE "C",
    text        TEXT COLLATE "C"
);
CREATE INDEX idx_token_code ON idx_token (res_type, param, code, system);
CREATE INDEX idx_token_owner ON idx_token (patient_key, res_type, id);

CREATE TABLE idx_string (
    patient_key TEXT COLLATE "C" NOT NULL,
    res_type    TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    normalized  TEXT COLLATE "C" NOT NULL,
    exact       TEXT COLLATE "C" NOT NULL
);
CREATE INDEX idx_string_value ON idx_string (res_type, param, normalized);
CREATE INDEX idx_string_owner ON idx_string (patient_key, res_type, id);

CREATE TABLE idx_date (
    patient_key TEXT COLLATE "C" NOT NULL,
    res_type    TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    low         BIGINT NOT NULL,
    high        BIGINT NOT NULL
);
CREATE INDEX idx_date_low ON idx_date (res_type, param, low);
CREATE INDEX idx_date_owner ON idx_date (patient_key, res_type, id);

CREATE TABLE idx_reference (
    patient_key TEXT COLLATE "C" NOT NULL,
    res_type    TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    target_type TEXT COLLATE "C",
    target_id   TEXT COLLATE "C",
    url         TEXT COLLATE "C" NOT NULL
);
CREATE INDEX idx_reference_target ON idx_reference (res_type, param, target_id);
CREATE INDEX idx_reference_reverse ON idx_reference (target_id, target_type);
CREATE INDEX idx_reference_owner ON idx_reference (patient_key, res_type, id);

CREATE TABLE idx_number (
    patient_key TEXT COLLATE "C" NOT NULL,
    res_type    TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    value       DOUBLE PRECISION NOT NULL
);
CREATE INDEX idx_number_value ON idx_number (res_type, param, value);
CREATE INDEX idx_number_owner ON idx_number (patient_key, res_type, id);

CREATE TABLE idx_quantity (
    patient_key TEXT COLLATE "C" NOT NULL,
    res_type    TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    system      TEXT COLLATE "C",
    code        TEXT COLLATE "C",
    unit        TEXT COLLATE "C"
);
CREATE INDEX idx_quantity_value ON idx_quantity (res_type, param, value);
CREATE INDEX idx_quantity_owner ON idx_quantity (patient_key, res_type, id);

CREATE TABLE idx_uri (
    patient_key TEXT COLLATE "C" NOT NULL,
    res_type    TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    value       TEXT COLLATE "C" NOT NULL
);
CREATE INDEX idx_uri_value ON idx_uri (res_type, param, value);
CREATE INDEX idx_uri_owner ON idx_uri (patient_key, res_type, id);

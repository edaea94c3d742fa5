-- SMR on Citus: distribute a migrated SMR database by patient (issue 13; docs/scale.md).
--
-- Run once on the Citus coordinator, on a database that `smr serve --database-url` (or
-- `smr db partition`'s open) has migrated, before any data is loaded or after a copy
-- (see docs/scale.md, "Moving from one PostgreSQL to Citus"):
--   psql "$COORDINATOR_URL" -v ON_ERROR_STOP=1 -f scripts/citus/distribute.sql
--
-- The table lists are `smr_store::layout::PATIENT_TABLES` and `NOT_BY_PATIENT`; a unit test
-- in crates/smr-store/src/layout.rs keeps this file and those lists the same.

CREATE EXTENSION IF NOT EXISTS citus;

-- Patients' records: one shard group per patient_key range, all colocated with `resources`,
-- so a patient's reads, searches, writes and access checks stay on one worker.
SELECT create_distributed_table('resources', 'patient_key', shard_count => 64);
SELECT create_distributed_table('resource_versions', 'patient_key', colocate_with => 'resources');
SELECT create_distributed_table('idx_token', 'patient_key', colocate_with => 'resources');
SELECT create_distributed_table('idx_string', 'patient_key', colocate_with => 'resources');
SELECT create_distributed_table('idx_date', 'patient_key', colocate_with => 'resources');
SELECT create_distributed_table('idx_reference', 'patient_key', colocate_with => 'resources');
SELECT create_distributed_table('idx_number', 'patient_key', colocate_with => 'resources');
SELECT create_distributed_table('idx_quantity', 'patient_key', colocate_with => 'resources');
SELECT create_distributed_table('idx_uri', 'patient_key', colocate_with => 'resources');
SELECT create_distributed_table('care_relationship', 'patient_key', colocate_with => 'resources');
SELECT create_distributed_table('consent_restriction', 'patient_key', colocate_with => 'resources');
SELECT create_distributed_table('audit_patient', 'patient_key', colocate_with => 'resources');

-- Lookup tables keyed by what is looked up: a read by id finds its patient (and so its
-- shard) in one single-shard query; an NHS number is unique across the country.
SELECT create_distributed_table('resource_locator', 'id');
SELECT create_distributed_table('unique_identifier', 'value');

-- Knowledge and small shared state: a copy on every worker, joined locally.
SELECT create_reference_table('dmd_release');
SELECT create_reference_table('dmd_concept');

-- Left on the coordinator as local tables in Citus's metadata (so one transaction may write
-- them beside distributed rows, as every SMR write does): the change feed (`change_log`,
-- `change_consumer`, read in commit order), the audit chain (`audit_log`, `audit_head`: one
-- hash chain; see docs/scale.md for the per-node chains a national deployment needs) and
-- `job_state`.
SELECT citus_add_local_table_to_metadata('change_log');
SELECT citus_add_local_table_to_metadata('change_consumer');
SELECT citus_add_local_table_to_metadata('audit_log');
SELECT citus_add_local_table_to_metadata('audit_head');
SELECT citus_add_local_table_to_metadata('job_state');

-- Issue 14: a page costs the same whatever the number of matches.
-- A search by reference (`MedicationRequest?subject=Patient/X`, the commonest search) pages in
-- id order (SMR's default sort). With `id` right after the equality columns, the page query
-- walks this index in that order and stops after page size + 1 rows, instead of collecting,
-- joining and sorting every match of a record that may hold 100,000 entries. `target_type`
-- comes last so the same index serves searches with and without a type (`patient=X`,
-- `subject=Patient/X`): it is checked in the index entry, without reading the row.
DROP INDEX idx_reference_target;
CREATE INDEX idx_reference_target ON idx_reference (res_type, param, target_id, id, target_type);

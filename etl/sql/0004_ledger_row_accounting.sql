-- Every detail record of a file is counted once in its ledger row (docs/design.md §7):
--   rows_in = rows_inserted + rows_updated + rows_deleted + rows_unchanged + rows_not_found
--             + rows_superseded + rows_skipped + rows_rejected
-- rows_not_found:  deletes of keys the table does not have;
-- rows_superseded: an earlier row of a key that comes again later in the same file (the last one wins);
-- rows_skipped:    the rows of a file whose content was already loaded (SKIPPED).
-- The identity is checked for LOADED and SKIPPED rows written from now on (NOT VALID: rows written before
-- this migration did not count deletes of missing keys, nor the rows of a SKIPPED file).

ALTER TABLE etl.file_ledger
    ADD COLUMN rows_not_found  bigint NOT NULL DEFAULT 0,
    ADD COLUMN rows_superseded bigint NOT NULL DEFAULT 0,
    ADD COLUMN rows_skipped    bigint NOT NULL DEFAULT 0;

ALTER TABLE etl.file_ledger
    ADD CONSTRAINT file_ledger_rows_accounted CHECK (
        status NOT IN ('LOADED', 'SKIPPED')
        OR rows_in = rows_inserted + rows_updated + rows_deleted + rows_unchanged + rows_not_found
                     + rows_superseded + rows_skipped + rows_rejected
    ) NOT VALID;

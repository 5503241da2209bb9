-- HOT-friendly fintech.transactions (docs/design.md §7, §11). A next-day file updates about a quarter of the
-- rows, and each update rewrites business_date, source_file, execution_name and loaded_at (the lineage
-- follows the data that changed). With an index on business_date every update was a non-HOT update: a new
-- heap tuple elsewhere plus an entry in BOTH indexes. Without it, and with free room left in each page
-- (fillfactor), an update stays on its page and touches no index (heap-only tuple).
-- No query of the project filters transactions by business_date through this index: the loader joins on
-- the primary key, `etl status` reads etl.file_ledger, the notebooks read the stage parquet; the EXPLAIN
-- plans are in tests/db/test_schema_sql.py. account_daily_summary keeps its index: business_date is part of
-- its key, never updated.
DROP INDEX fintech.transactions_business_date_idx;
ALTER TABLE fintech.transactions SET (fillfactor = 75);

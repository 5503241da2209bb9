"""The database edge: where PostgreSQL is, migrations, the bulk loader and the file ledger."""

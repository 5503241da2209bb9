-- One row per file the pipeline finished with (DESIGN 7). A SHA-256 is LOADED at most once: the partial
-- unique index backs rule F004 even if two loads slipped past the advisory lock.

CREATE TABLE etl.file_ledger (
    ledger_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed           text        NOT NULL,
    file_name      text        NOT NULL,
    sha256         char(64)    NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    business_date  date,
    status         text        NOT NULL CHECK (status IN ('LOADED', 'SKIPPED', 'REJECTED', 'FAILED')),
    rows_in        bigint      NOT NULL DEFAULT 0,
    rows_inserted  bigint      NOT NULL DEFAULT 0,
    rows_updated   bigint      NOT NULL DEFAULT 0,
    rows_deleted   bigint      NOT NULL DEFAULT 0,
    rows_unchanged bigint      NOT NULL DEFAULT 0,
    rows_rejected  bigint      NOT NULL DEFAULT 0,
    execution_name text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    error          text
);
CREATE UNIQUE INDEX file_ledger_loaded_sha256_key ON etl.file_ledger (sha256) WHERE status = 'LOADED';
CREATE INDEX file_ledger_feed_business_date_idx ON etl.file_ledger (feed, business_date);
CREATE INDEX file_ledger_started_at_idx ON etl.file_ledger (started_at DESC);

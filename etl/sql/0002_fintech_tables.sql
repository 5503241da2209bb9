-- Operational tables. Columns follow etl.schema.stage_schema(contract) for each feed, less the action
-- field (a load instruction, not data); tests/db/test_schema_sql.py keeps the two from drifting.
-- Aurora PostgreSQL 14 compatible.

CREATE TABLE fintech.transactions (
    transaction_id   varchar(36)   NOT NULL,
    account_id       varchar(12)   NOT NULL,
    card_last4       varchar(4)    NOT NULL,
    card_token       varchar(64)   NOT NULL,
    transaction_ts   timestamptz   NOT NULL,
    posted_date      date          NOT NULL,
    amount           numeric(12,2) NOT NULL,
    debit_credit     varchar(1)    NOT NULL,
    currency         varchar(3)    NOT NULL,
    merchant_name    varchar(40),
    mcc              varchar(4),
    channel          varchar(4)    NOT NULL,
    status           varchar(8)    NOT NULL,
    signed_amount    numeric(12,2),
    is_international boolean,
    business_date    date          NOT NULL,
    source_file      text          NOT NULL,
    execution_name   text          NOT NULL,
    loaded_at        timestamptz   NOT NULL,
    CONSTRAINT transactions_pkey PRIMARY KEY (transaction_id)
);
CREATE INDEX transactions_business_date_idx ON fintech.transactions (business_date);

CREATE TABLE fintech.account_daily_summary (
    account_id          varchar(12)   NOT NULL,
    customer_id         varchar(10)   NOT NULL,
    product_code        varchar(4)    NOT NULL,
    open_date           date          NOT NULL,
    account_status      varchar(1)    NOT NULL,
    current_balance     numeric(12,2) NOT NULL,
    credit_limit        numeric(12,2) NOT NULL,
    available_credit    numeric(12,2) NOT NULL,
    minimum_payment_due numeric(12,2) NOT NULL,
    payment_due_date    date,
    days_past_due       integer       NOT NULL,
    apr                 numeric(5,3)  NOT NULL,
    utilization         numeric(18,4),
    delinquency_bucket  text,
    business_date       date          NOT NULL,
    source_file         text          NOT NULL,
    execution_name      text          NOT NULL,
    loaded_at           timestamptz   NOT NULL,
    CONSTRAINT account_daily_summary_pkey PRIMARY KEY (account_id, business_date)
);
CREATE INDEX account_daily_summary_business_date_idx ON fintech.account_daily_summary (business_date);

-- Schemas: operational data in fintech, pipeline bookkeeping in etl (DESIGN 7).
CREATE SCHEMA IF NOT EXISTS fintech;
CREATE SCHEMA IF NOT EXISTS etl;

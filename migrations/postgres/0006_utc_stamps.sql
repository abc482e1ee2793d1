-- On SQLite this converted stamps written in the host's local time to UTC.
-- A PostgreSQL ledger was UTC from its first row: nothing to convert. The
-- migration is kept so both engines count the same levels.
SELECT 1;

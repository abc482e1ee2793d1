-- The ledger: the state of every file, interchange, transaction set and
-- claim edi-courier has handled, and the control numbers it has used.
-- The PostgreSQL spelling of migrations/sqlite/0001_ledger.sql: the same
-- tables, constraints and indexes; ids are BIGSERIAL.

-- Control numbers, per sender/receiver pair and kind (isa = ISA13,
-- gs = GS06, st = ST02). `next` is the first number not yet handed out;
-- numbers are reserved (committed) before a file is written and never
-- reused, even when the file is not.
CREATE TABLE control_numbers (
    sender   TEXT    NOT NULL,
    receiver TEXT    NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('isa', 'gs', 'st')),
    next     BIGINT  NOT NULL,
    PRIMARY KEY (sender, receiver, kind)
);

-- Per-day counters for file names ({seq}).
CREATE TABLE counters (
    name TEXT   NOT NULL,
    day  TEXT   NOT NULL,
    next BIGINT NOT NULL,
    PRIMARY KEY (name, day)
);

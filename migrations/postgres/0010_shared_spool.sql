-- Shared work state (issue 14). On a shared ledger (PostgreSQL) every
-- sealed file the ledger depends on — an 837 waiting for upload, a
-- collected response waiting to be read or quarantined — is kept here too,
-- byte for byte as sealed (never plaintext), so a daemon on another host
-- can finish what this one began. The tables exist on SQLite as well (one
-- schema in spirit) and stay empty there: see src/ledger/spool.rs.

-- One sealed spool file: what its bytes hash to. direction is 'out'
-- (files.id) or 'in' (inbound_files.id).
CREATE TABLE spool_copies (
    direction TEXT   NOT NULL CHECK (direction IN ('out', 'in')),
    file_id   BIGINT NOT NULL,
    sha256    TEXT   NOT NULL,
    size      BIGINT NOT NULL,
    PRIMARY KEY (direction, file_id)
);

-- Its bytes, in chunks of at most 1 MiB, in order.
CREATE TABLE spool_chunks (
    direction TEXT   NOT NULL,
    file_id   BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    bytes     BYTEA  NOT NULL,
    PRIMARY KEY (direction, file_id, seq)
);

-- Who runs a partner's submit or collect now (name: 'submit:PARTNER',
-- 'collect:PARTNER'), until when: a ledger stamp on the database's clock,
-- as in job_leases, so hosts whose clocks disagree still agree on it.
CREATE TABLE run_leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at TEXT   NOT NULL
);

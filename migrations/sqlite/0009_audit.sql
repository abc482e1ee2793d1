-- The audit chain: every movement of PHI (an export read, claims committed,
-- a file sealed, uploaded, delivered; a response downloaded, applied,
-- quarantined; a remittance exported) and every view of it by a person
-- (`status`, `trace`), in order. Each entry holds the SHA-256 of the entry
-- before it and its own, over every column, so an edited, removed or moved
-- entry breaks the chain at that entry (`edi-courier audit verify`).
CREATE TABLE audit_log (
    seq      INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    partner  TEXT,
    sha256   TEXT,
    controls TEXT,
    detail   TEXT NOT NULL,
    prev     TEXT NOT NULL,
    hash     TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (at);

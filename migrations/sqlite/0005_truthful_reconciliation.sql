-- Reconciliation that fails closed and counts nothing twice.

-- A response is known by who sent it and what it is (its identity: see
-- `ledger::inbound::identity`), so the same answer sealed again, renamed or
-- re-sent is recorded once. Older rows have none.
ALTER TABLE responses ADD COLUMN partner TEXT;
ALTER TABLE responses ADD COLUMN identity TEXT;
CREATE UNIQUE INDEX responses_by_identity ON responses (partner, identity);

-- A collected file is also known by the hash of its opened (plain) bytes:
-- the same X12 sealed twice has two ciphertexts but one content.
-- States now: received → processed | duplicate | quarantined → reviewed.
ALTER TABLE inbound_files ADD COLUMN content_sha256 TEXT;
CREATE INDEX inbound_by_content ON inbound_files (partner, content_sha256);

-- An answer about a claim id we never sent (or cannot tell apart): kept,
-- listed by `status`, alerted, until `match` attaches it to a claim.
CREATE TABLE unmatched_answers (
    id          INTEGER PRIMARY KEY,
    response_id BIGINT NOT NULL REFERENCES responses (id),
    claim_ref   TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    codes       TEXT   NOT NULL,
    paid        TEXT,
    -- The claim it was attached to by hand, once it is.
    matched_to  BIGINT REFERENCES claims (id),
    created_at  TEXT   NOT NULL
);
CREATE INDEX unmatched_by_response ON unmatched_answers (response_id);

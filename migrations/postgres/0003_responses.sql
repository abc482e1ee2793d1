-- What came back: every response set (TA1, 999, 277CA, 835) read from a
-- collected file, and what each said about each claim. Nothing is
-- overwritten: a claim's status is the latest of its responses, and every
-- response stays.

-- A file collected from a partner. Its own table, not `files`: inbound
-- names repeat (a payer's daily `835.dat`), so a file is known by its hash,
-- and by remote name, size and time for partners whose files stay put.
-- States: received (fsynced in the spool, hashed) → processed (read and
-- reconciled) | quarantined (unreadable; kept, with the reason).
CREATE TABLE inbound_files (
    id           BIGSERIAL PRIMARY KEY,
    partner      TEXT   NOT NULL,
    remote_name  TEXT   NOT NULL,
    remote_size  BIGINT NOT NULL,
    remote_mtime BIGINT,
    spool_path   TEXT   NOT NULL,
    sha256       TEXT   NOT NULL,
    state        TEXT   NOT NULL,
    reason       TEXT,
    created_at   TEXT   NOT NULL,
    updated_at   TEXT   NOT NULL,
    UNIQUE (partner, sha256)
);
CREATE INDEX inbound_by_name ON inbound_files (partner, remote_name, remote_size, remote_mtime);

CREATE TABLE responses (
    id          BIGSERIAL PRIMARY KEY,
    file_id     BIGINT  NOT NULL REFERENCES inbound_files (id),
    kind        TEXT    NOT NULL CHECK (kind IN ('TA1', '999', '277CA', '835')),
    -- ISA06, ISA13, GS06, ST02 of the response itself.
    sender      TEXT    NOT NULL,
    interchange TEXT    NOT NULL,
    grp         TEXT    NOT NULL,
    st          TEXT    NOT NULL,
    -- What it answers, as it says: ISA13 (TA1), GS06 (999), BHT03 (277CA),
    -- the check/EFT trace (835).
    answers     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    -- The typed response as JSON (the model keeps no names, member ids or
    -- birth dates).
    body        TEXT    NOT NULL,
    -- Claims it was matched to; 0 means it is listed as unmatched.
    matched     BIGINT  NOT NULL,
    created_at  TEXT    NOT NULL
);
CREATE INDEX responses_by_file ON responses (file_id);

-- One response's word on one claim.
CREATE TABLE claim_responses (
    id          BIGSERIAL PRIMARY KEY,
    claim_id    BIGINT NOT NULL REFERENCES claims (id),
    response_id BIGINT NOT NULL REFERENCES responses (id),
    -- The status it implies: accepted_999, rejected_999, accepted_277,
    -- rejected_277, paid, partially_paid, denied, reversed, rejected_ta1.
    status      TEXT   NOT NULL,
    -- Reason codes as the partner gave them (IK3/IK4, STC, CARC/RARC), JSON.
    codes       TEXT   NOT NULL,
    paid        TEXT,
    created_at  TEXT   NOT NULL
);
CREATE INDEX claim_responses_by_claim ON claim_responses (claim_id);

-- The payer's claim number, once a 277CA or 835 gives it.
ALTER TABLE claims ADD COLUMN payer_claim_number TEXT;

-- What was sent: exports picked up, the files made from them, their
-- envelopes and claims, and an event for every change of state.
-- Times are ISO 8601 text (`YYYY-MM-DDTHH:MM:SS`, the host's local time);
-- money is decimal text, never a float. Plain SQL, so a PostgreSQL backend
-- only needs its own spelling of the id columns.

-- A file that moved through edi-courier: an 837 we sealed and sent
-- (direction 'out'), or a response we collected ('in').
-- Outbound states: sealing → spooled → uploading → verified → delivered,
-- or abandoned (the sealing never finished; its export is picked up again).
CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    direction   TEXT    NOT NULL CHECK (direction IN ('out', 'in')),
    partner     TEXT    NOT NULL,
    -- The name on the partner's server (final name, for outbound files).
    name        TEXT    NOT NULL,
    -- Our copy: the sealed file in the spool.
    spool_path  TEXT    NOT NULL,
    sha256      TEXT,
    size        BIGINT,
    state       TEXT    NOT NULL,
    attempts    BIGINT  NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    UNIQUE (direction, partner, name)
);
CREATE INDEX files_by_state ON files (direction, partner, state);

-- A claim export picked up from the outbox. Its hash is what recognises
-- the same export dropped twice.
-- States: picked_up → spooled (its claims are in a sealed 837 in the
-- spool) → processed (moved to outbox/processed/).
CREATE TABLE exports (
    id               INTEGER PRIMARY KEY,
    partner          TEXT    NOT NULL,
    path             TEXT    NOT NULL,
    sha256           TEXT    NOT NULL,
    size             BIGINT  NOT NULL,
    state            TEXT    NOT NULL,
    -- The outbound file carrying its claims (none when every claim was set aside).
    file_id          BIGINT  REFERENCES files (id),
    claims_read      BIGINT  NOT NULL DEFAULT 0,
    claims_accepted  BIGINT  NOT NULL DEFAULT 0,
    claims_set_aside BIGINT  NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    UNIQUE (partner, sha256)
);

-- ISA: what a TA1 answers.
CREATE TABLE interchanges (
    id                 INTEGER PRIMARY KEY,
    file_id            BIGINT  NOT NULL REFERENCES files (id),
    direction          TEXT    NOT NULL CHECK (direction IN ('out', 'in')),
    sender_qualifier   TEXT    NOT NULL,
    sender             TEXT    NOT NULL,
    receiver_qualifier TEXT    NOT NULL,
    receiver           TEXT    NOT NULL,
    control            BIGINT  NOT NULL,
    ack_requested      BOOLEAN NOT NULL,
    usage              TEXT    NOT NULL,
    UNIQUE (direction, sender, receiver, control)
);

-- GS: what a 999's AK1 answers.
CREATE TABLE groups (
    id             INTEGER PRIMARY KEY,
    interchange_id BIGINT NOT NULL REFERENCES interchanges (id),
    functional_id  TEXT   NOT NULL,
    sender         TEXT   NOT NULL,
    receiver       TEXT   NOT NULL,
    control        BIGINT NOT NULL,
    version        TEXT   NOT NULL
);
CREATE INDEX groups_by_control ON groups (sender, receiver, control);

-- ST: what a 999's AK2 (ST02) and a 277CA (BHT03) answer.
CREATE TABLE transaction_sets (
    id        INTEGER PRIMARY KEY,
    group_id  BIGINT NOT NULL REFERENCES groups (id),
    control   BIGINT NOT NULL,
    reference TEXT   NOT NULL,
    claims    BIGINT NOT NULL,
    segments  BIGINT NOT NULL
);
CREATE INDEX sets_by_group ON transaction_sets (group_id, control);

-- One claim as sent. CLM01 is not unique: a corrected or void claim reuses it.
-- Statuses: queued, sent, then what the responses say.
CREATE TABLE claims (
    id            INTEGER PRIMARY KEY,
    partner       TEXT   NOT NULL,
    export_id     BIGINT NOT NULL REFERENCES exports (id),
    file_id       BIGINT NOT NULL REFERENCES files (id),
    set_id        BIGINT NOT NULL REFERENCES transaction_sets (id),
    claim_id      TEXT   NOT NULL,
    kind          TEXT   NOT NULL,
    frequency     TEXT   NOT NULL,
    charge        TEXT   NOT NULL,
    payer_id      TEXT   NOT NULL,
    -- Positions of its first and last segment in its set (ST = 1), to pin a
    -- 999 IK3 to the claim.
    first_segment BIGINT NOT NULL,
    last_segment  BIGINT NOT NULL,
    -- REF*6R of each line, in order (JSON array; null where a line has none).
    line_controls TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    updated_at    TEXT   NOT NULL
);
CREATE INDEX claims_by_claim_id ON claims (claim_id);
CREATE INDEX claims_by_file ON claims (file_id);
CREATE INDEX claims_by_set ON claims (set_id, first_segment);

-- Every change of state, and every failed attempt, with its reason.
CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    at        TEXT   NOT NULL,
    export_id BIGINT REFERENCES exports (id),
    file_id   BIGINT REFERENCES files (id),
    claim_id  BIGINT REFERENCES claims (id),
    kind      TEXT   NOT NULL,
    detail    TEXT   NOT NULL
);
CREATE INDEX events_by_file ON events (file_id);
CREATE INDEX events_by_claim ON events (claim_id);

-- The daemon: scheduled runs, the lease that keeps two daemons from running
-- one job at once, and the alert queue that outlives an SMTP outage.

-- One row per scheduled tick of a job: the daemon that inserts it runs it,
-- so two daemons on one ledger never run the same tick twice.
CREATE TABLE job_runs (
    id            BIGSERIAL PRIMARY KEY,
    job           TEXT NOT NULL,
    -- The tick, UTC, RFC 3339.
    scheduled_for TEXT NOT NULL,
    -- running, done, rejected, failed, skipped (a run of the job was still going).
    outcome       TEXT NOT NULL,
    detail        TEXT NOT NULL DEFAULT '',
    daemon        TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    UNIQUE (job, scheduled_for)
);

-- Who is running a job now, until when (renewed while it runs).
CREATE TABLE job_leases (
    job        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Alerts wait here until the mail server takes them. The same key raised
-- again within the coalescing window only counts up `repeats`.
CREATE TABLE alerts (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    repeats    BIGINT  NOT NULL DEFAULT 0,
    created_at TEXT    NOT NULL,
    sent_at    TEXT,
    attempts   BIGINT  NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX alerts_unsent ON alerts (sent_at);
CREATE INDEX alerts_by_key ON alerts (key, created_at);

-- Responses found overdue, so each is alerted once.
CREATE TABLE overdue (
    file_id  BIGINT NOT NULL REFERENCES files (id),
    kind     TEXT   NOT NULL,
    found_at TEXT   NOT NULL,
    PRIMARY KEY (file_id, kind)
);

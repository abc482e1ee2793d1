-- What an alert needs to be told apart from others of its run and to be
-- said cleared: the job that raised it (NULL for the daemon's own, such
-- as a refused reload), the partner it is about, the run's batch (alerts
-- of one kind raised by one run go out in one mail, each still its own
-- row), the one line that names it in such a mail, how many repeats the
-- mail that sent it told of, and when the fault was said to have stopped.
ALTER TABLE alerts ADD COLUMN job TEXT;
ALTER TABLE alerts ADD COLUMN partner TEXT;
ALTER TABLE alerts ADD COLUMN batch TEXT;
ALTER TABLE alerts ADD COLUMN line TEXT;
ALTER TABLE alerts ADD COLUMN mailed_repeats BIGINT NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN cleared_at TEXT;
CREATE INDEX alerts_open_by_job ON alerts (job, cleared_at);

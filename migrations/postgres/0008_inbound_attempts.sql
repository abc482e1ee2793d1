-- How many times processing a collected file was started. A file left
-- `received` by a run killed while processing it is tried again; after
-- two interrupted tries it is quarantined instead of taking every run down.
ALTER TABLE inbound_files ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;

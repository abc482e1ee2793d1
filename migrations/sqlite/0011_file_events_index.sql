-- A file's own events (delivered, failed, …: the ones with no claim) are
-- read by file (`trace`, "WHERE file_id = ? AND claim_id IS NULL"); the
-- events of its claims never are. Indexing only the file's own events
-- spares every claim event an index entry: a claim's status move, each
-- claim queued and sent — one row of an 835's 160,000 moves each, and
-- rows that held no file at all.
DROP INDEX events_by_file;
CREATE INDEX events_by_file ON events (file_id) WHERE claim_id IS NULL;

-- Where an export's sealed copy goes in `processed/`, recorded before the
-- copy is renamed into place. A run killed after that rename and before the
-- plain export was removed finds the export still in the outbox: with this
-- path it knows the whole sealed copy is already there, removes the export
-- and does not archive it a second time.
ALTER TABLE exports ADD COLUMN archive_path TEXT;

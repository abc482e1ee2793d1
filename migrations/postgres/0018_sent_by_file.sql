-- A claim's `sent` is its file's `delivered`: the delivery no longer
-- rewrites every claim row of the file (100,000 rows for a large export).
-- A claim row stays `queued` until a response moves it; while its file is
-- delivered it reads as `sent`, changed at the file's delivery. Every
-- reader of a claim's status or change time reads `claims_now`, not the
-- table. Claims written `sent` by an older release read the same: their
-- own row already says it.
--
-- `delivered_at`: when the file was first recorded delivered (the
-- `delivered` transaction sets it once). Files delivered before this
-- migration get their `updated_at`, which is their delivery (nothing
-- changes a delivered file); their claims were already written `sent`.
ALTER TABLE files ADD COLUMN delivered_at TEXT;
UPDATE files SET delivered_at = updated_at WHERE direction = 'out' AND state = 'delivered';

CREATE VIEW claims_now AS
SELECT c.id, c.partner, c.export_id, c.file_id, c.set_id, c.claim_id, c.kind,
       c.frequency, c.charge, c.payer_id, c.first_segment, c.last_segment,
       c.line_controls, c.payer_claim_number,
       CASE WHEN c.status = 'queued' AND f.delivered_at IS NOT NULL
            THEN 'sent' ELSE c.status END AS status,
       CASE WHEN c.status = 'queued' AND f.delivered_at IS NOT NULL
            THEN f.delivered_at ELSE c.updated_at END AS updated_at
FROM claims c JOIN files f ON f.id = c.file_id;

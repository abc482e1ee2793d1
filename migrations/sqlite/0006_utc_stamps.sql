-- Ledger times were the host's local wall time, which repeats an hour
-- every autumn: leases, deadlines and alert windows compared across a DST
-- change went wrong. From now on every stamp is UTC, RFC 3339 with `Z`;
-- the rows written before are converted here from the host's local time
-- (SQLite's 'utc' modifier), once. Shown to people in local time again.
UPDATE files SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'utc') WHERE created_at NOT LIKE '%Z';
UPDATE files SET updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', updated_at, 'utc') WHERE updated_at NOT LIKE '%Z';
UPDATE exports SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'utc') WHERE created_at NOT LIKE '%Z';
UPDATE exports SET updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', updated_at, 'utc') WHERE updated_at NOT LIKE '%Z';
UPDATE claims SET updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', updated_at, 'utc') WHERE updated_at NOT LIKE '%Z';
UPDATE events SET at = strftime('%Y-%m-%dT%H:%M:%SZ', at, 'utc') WHERE at NOT LIKE '%Z';
UPDATE inbound_files SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'utc') WHERE created_at NOT LIKE '%Z';
UPDATE inbound_files SET updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', updated_at, 'utc') WHERE updated_at NOT LIKE '%Z';
UPDATE responses SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'utc') WHERE created_at NOT LIKE '%Z';
UPDATE claim_responses SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'utc') WHERE created_at NOT LIKE '%Z';
UPDATE unmatched_answers SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'utc') WHERE created_at NOT LIKE '%Z';
UPDATE job_runs SET started_at = strftime('%Y-%m-%dT%H:%M:%SZ', started_at, 'utc') WHERE started_at NOT LIKE '%Z';
UPDATE job_runs SET finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', finished_at, 'utc') WHERE finished_at IS NOT NULL AND finished_at NOT LIKE '%Z';
UPDATE job_leases SET expires_at = strftime('%Y-%m-%dT%H:%M:%SZ', expires_at, 'utc') WHERE expires_at NOT LIKE '%Z';
UPDATE alerts SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at, 'utc') WHERE created_at NOT LIKE '%Z';
UPDATE alerts SET sent_at = strftime('%Y-%m-%dT%H:%M:%SZ', sent_at, 'utc') WHERE sent_at IS NOT NULL AND sent_at NOT LIKE '%Z';
UPDATE overdue SET found_at = strftime('%Y-%m-%dT%H:%M:%SZ', found_at, 'utc') WHERE found_at NOT LIKE '%Z';

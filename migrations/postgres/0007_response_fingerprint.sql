-- What a response says, apart from the envelope that carried it: the same
-- identity with another fingerprint is not a repeat but a conflict (a
-- partner reusing control numbers or a payment trace for other content),
-- and the file holding it is quarantined, never silently skipped.
ALTER TABLE responses ADD COLUMN fingerprint TEXT;

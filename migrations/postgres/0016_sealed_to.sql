-- Which keys an outbound file was sealed to: the SHA-256 (hex) of its
-- recipient set (the partner's age recipients, or the fingerprints of the
-- OpenPGP keys it was encrypted to), recorded when it is picked up. Before
-- an upload it is compared with the partner's keys of the day: a file
-- sealed to keys the partner no longer has is not sent. NULL for inbound
-- files and for outbound files sealed before this column (sent as before).
ALTER TABLE files ADD COLUMN sealed_to TEXT;
-- Why an outbound file waiting in the spool is held back rather than sent
-- (`sealed_to_old_keys`), NULL when it is not.
ALTER TABLE files ADD COLUMN held TEXT;

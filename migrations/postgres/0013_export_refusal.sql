-- An export refused whole (a claim's rows came apart in it): nothing of it
-- was sent. Unchanged (the same hash) and read the same way (`refused_under`:
-- the map's SHA-256 and the release), it would be refused again: the next
-- runs say so without reserving control numbers or naming a file for it.
-- `refusal` keeps the words the run said, for those runs to repeat.
ALTER TABLE exports ADD COLUMN refused_under TEXT;
ALTER TABLE exports ADD COLUMN refusal TEXT;

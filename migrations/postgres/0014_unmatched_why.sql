-- Why an answer applied to no claim: `not-ours` (a claim id, batch, set,
-- group or interchange we never sent to the partner between the answer's
-- parties, or not where the answer places it) or `charge-differs` (a 277CA
-- claim status whose STC04 is not the charge of the claim it names). The
-- answers recorded before this column were all of the first kind.
ALTER TABLE unmatched_answers ADD COLUMN why TEXT NOT NULL DEFAULT 'not-ours';

-- An 835 CLP03 (the claim's charge as the payer read it) when it is not the
-- charge of the claim the payment was applied to, nor its negative in a
-- reversal: the money is real and posted, and the claim is listed for a
-- person (`status`: payment_doubts, why `charge_differs`) — a payer's
-- misread, or another claim under our id. NULL when it matched, and for
-- every verdict recorded before this column.
ALTER TABLE claim_responses ADD COLUMN stated_charge TEXT;

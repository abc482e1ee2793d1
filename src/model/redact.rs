//! `{:?}` of the types that hold PHI. A claim, its subscriber and patient,
//! their addresses, an other payer's subscriber, its lines' dates: all
//! individually identifiable, so a stray `dbg!`, `tracing::debug!(?claim)`
//! or a failed assertion must not print them. What `{:?}` shows instead is
//! what an operator may see anywhere (the claim id, kind, amounts, codes
//! that are not diagnoses, counts); the rest is `..`.

use std::fmt;

use super::{Address, Admission, Claim, OtherPayer, Patient, ServiceLine, Subscriber};

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claim")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("frequency_code", &self.frequency_code)
            .field("total_charge", &self.total_charge)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ServiceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceLine")
            .field("procedure", &self.procedure)
            .field("revenue_code", &self.revenue_code)
            .field("charge", &self.charge)
            .field("units", &self.units)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("responsibility", &self.responsibility)
            .field("claim_filing", &self.claim_filing)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Patient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Patient")
            .field("relationship", &self.relationship)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OtherPayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtherPayer")
            .field("responsibility", &self.responsibility)
            .field("payer_id", &self.payer_id)
            .field("paid_amount", &self.paid_amount)
            .finish_non_exhaustive()
    }
}

/// A patient's or subscriber's home: never shown (a provider's address is
/// not PHI, but one type serves both).
impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Address(..)")
    }
}

/// Admission date and hour are dates of care.
impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

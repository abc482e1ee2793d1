//! The claim lifecycle in one place: every status a claim can have, the
//! stage each belongs to, and the one rule that turns what the partner said
//! about a claim into its status.
//!
//! The rule is a function of the *set* of verdicts of the claim's current
//! submission, never of the order they came in: the same answers in any
//! order, or repeated, give the same status.
//!
//! - The furthest stage answered wins (TA1 < 999 < 277CA < 835): a late 999
//!   never undoes a payment.
//! - Within a stage, a rejection outranks an acceptance, so a TA1 collected
//!   after a 999 that rejected the set leaves the claim rejected, and a
//!   rejection at a stage outranks every acceptance at an earlier one.
//! - At the 835 stage the claim's payments are summed over every CLP
//!   (split claims, interim payments, reversals and corrections).
//!
//! Only a new submission of the claim (a resubmission, a replacement or a
//! void) starts a new cycle: it is a new claim row in the ledger, with no
//! verdicts yet.

use crate::money::Overflow;
use rust_decimal::Decimal;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Where a claim is. Stored in the ledger under [`ClaimStatus::name`]; an
/// unknown name read back is an error, never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// Recorded and sealed in the spool, not yet delivered.
    Queued,
    /// Delivered with verified receipt; no answer yet.
    Sent,
    /// TA1 A or E: the partner's gateway took our interchange.
    AcceptedTa1,
    /// TA1 R: the whole interchange was refused.
    RejectedTa1,
    /// 999 IK5 A or E.
    Accepted999,
    /// 999 IK5 R, M, W, X, or AK9 R for the whole group.
    Rejected999,
    /// 277CA category E0–E4: the payer could not give a status.
    Unprocessed277,
    /// 277CA category A4: the payer cannot find the claim.
    NotFound277,
    /// 277CA A0, A1, A2: received, forwarded, accepted into adjudication.
    Accepted277,
    /// 277CA A3, A6, A7, A8: returned, rejected.
    Rejected277,
    /// The 835s paid at least the charge.
    Paid,
    /// The 835s paid something, less than the charge.
    PartiallyPaid,
    /// Processed with nothing paid, all of it the patient's (deductible,
    /// coinsurance): not a denial.
    PatientResponsibility,
    /// CLP02 4, or nothing paid for other reasons than the patient's share.
    Denied,
    /// Every payment was taken back (CLP02 22) and nothing replaced it.
    Reversed,
}

/// The stages of the lifecycle, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Delivery,
    Ta1,
    Ack999,
    Ack277,
    Remittance,
}

/// A status name the ledger does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown claim status {0:?}")]
pub struct UnknownStatus(pub String);

impl ClaimStatus {
    pub const ALL: [ClaimStatus; 15] = [
        ClaimStatus::Queued,
        ClaimStatus::Sent,
        ClaimStatus::AcceptedTa1,
        ClaimStatus::RejectedTa1,
        ClaimStatus::Accepted999,
        ClaimStatus::Rejected999,
        ClaimStatus::Unprocessed277,
        ClaimStatus::NotFound277,
        ClaimStatus::Accepted277,
        ClaimStatus::Rejected277,
        ClaimStatus::Paid,
        ClaimStatus::PartiallyPaid,
        ClaimStatus::PatientResponsibility,
        ClaimStatus::Denied,
        ClaimStatus::Reversed,
    ];

    /// The stable name the ledger, `status --json` and the exports use.
    pub fn name(self) -> &'static str {
        match self {
            ClaimStatus::Queued => "queued",
            ClaimStatus::Sent => "sent",
            ClaimStatus::AcceptedTa1 => "accepted_ta1",
            ClaimStatus::RejectedTa1 => "rejected_ta1",
            ClaimStatus::Accepted999 => "accepted_999",
            ClaimStatus::Rejected999 => "rejected_999",
            ClaimStatus::Unprocessed277 => "unprocessed_277",
            ClaimStatus::NotFound277 => "not_found_277",
            ClaimStatus::Accepted277 => "accepted_277",
            ClaimStatus::Rejected277 => "rejected_277",
            ClaimStatus::Paid => "paid",
            ClaimStatus::PartiallyPaid => "partially_paid",
            ClaimStatus::PatientResponsibility => "patient_responsibility",
            ClaimStatus::Denied => "denied",
            ClaimStatus::Reversed => "reversed",
        }
    }

    pub fn stage(self) -> Stage {
        match self {
            ClaimStatus::Queued | ClaimStatus::Sent => Stage::Delivery,
            ClaimStatus::AcceptedTa1 | ClaimStatus::RejectedTa1 => Stage::Ta1,
            ClaimStatus::Accepted999 | ClaimStatus::Rejected999 => Stage::Ack999,
            ClaimStatus::Unprocessed277
            | ClaimStatus::NotFound277
            | ClaimStatus::Accepted277
            | ClaimStatus::Rejected277 => Stage::Ack277,
            ClaimStatus::Paid
            | ClaimStatus::PartiallyPaid
            | ClaimStatus::PatientResponsibility
            | ClaimStatus::Denied
            | ClaimStatus::Reversed => Stage::Remittance,
        }
    }

    /// The claim was refused before adjudication and must be fixed and sent again.
    pub fn is_rejection(self) -> bool {
        matches!(
            self,
            ClaimStatus::RejectedTa1 | ClaimStatus::Rejected999 | ClaimStatus::Rejected277
        )
    }

    /// A status someone has to act on (listed by `status`, alerted).
    pub fn needs_attention(self) -> bool {
        self.is_rejection()
            || matches!(
                self,
                ClaimStatus::Denied | ClaimStatus::NotFound277 | ClaimStatus::Unprocessed277
            )
    }

    /// Order within a stage: the higher outranks the lower whatever came
    /// first. A rejection outranks everything else at its stage; at the
    /// 277CA stage an acceptance outranks "cannot find it" and "cannot say".
    fn weight(self) -> u8 {
        match self {
            ClaimStatus::Unprocessed277 => 1,
            ClaimStatus::NotFound277 => 2,
            ClaimStatus::AcceptedTa1 | ClaimStatus::Accepted999 | ClaimStatus::Accepted277 => 3,
            ClaimStatus::RejectedTa1 | ClaimStatus::Rejected999 | ClaimStatus::Rejected277 => 4,
            _ => 0,
        }
    }

    fn rank(self) -> (Stage, u8) {
        (self.stage(), self.weight())
    }

    /// `name IN (…)` lists for SQL, from a predicate: the ledger's queries
    /// name statuses through the enum, never by hand.
    pub fn sql_list(pick: impl Fn(ClaimStatus) -> bool) -> String {
        let names: Vec<String> = ClaimStatus::ALL
            .into_iter()
            .filter(|s| pick(*s))
            .map(|s| format!("'{}'", s.name()))
            .collect();
        format!("({})", names.join(", "))
    }
}

impl fmt::Display for ClaimStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ClaimStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClaimStatus::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// One verdict as the ledger keeps it: what one response said about one
/// claim, and for an 835 CLP what it paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    pub status: ClaimStatus,
    pub paid: Option<Decimal>,
}

/// A claim's status from every verdict of its current submission, in any
/// order; None when there are none (the delivery status stands). An
/// [`Overflow`] when its payments cannot be summed (an amount recorded far
/// past what an 835 may carry): never a guess, never a panic.
pub fn derive(charge: Decimal, words: &[Word]) -> Result<Option<ClaimStatus>, Overflow> {
    let remits: Vec<&Word> = words
        .iter()
        .filter(|w| w.status.stage() == Stage::Remittance)
        .collect();
    if !remits.is_empty() {
        return remittance(charge, &remits).map(Some);
    }
    Ok(words.iter().map(|w| w.status).max_by_key(|s| s.rank()))
}

/// The 835 stage: the payments summed over every CLP. A reversal (CLP02
/// 22, negative amounts) cancels one adjudication; what is left decides.
fn remittance(charge: Decimal, words: &[&Word]) -> Result<ClaimStatus, Overflow> {
    let net = crate::money::sum(words.iter().filter_map(|w| w.paid))?;
    if net > Decimal::ZERO {
        return Ok(if net >= charge {
            ClaimStatus::Paid
        } else {
            ClaimStatus::PartiallyPaid
        });
    }
    let reversals = words
        .iter()
        .filter(|w| w.status == ClaimStatus::Reversed)
        .count();
    let standing: Vec<ClaimStatus> = words
        .iter()
        .filter(|w| w.status != ClaimStatus::Reversed)
        .filter(|w| w.paid.unwrap_or_default().is_zero())
        .map(|w| w.status)
        .collect();
    let adjudications = words.len() - reversals;
    Ok(if adjudications <= reversals || standing.is_empty() {
        ClaimStatus::Reversed
    } else if standing.contains(&ClaimStatus::Denied) {
        ClaimStatus::Denied
    } else if standing.contains(&ClaimStatus::PatientResponsibility) {
        ClaimStatus::PatientResponsibility
    } else {
        ClaimStatus::Denied
    })
}

/// ", and N more (not listed)" after a list cut at [`LISTED_PER_STATUS`];
/// empty when nothing was left out.
pub fn more(not_listed: u64) -> String {
    if not_listed == 0 {
        String::new()
    } else {
        format!(", and {not_listed} more (not listed)")
    }
}

/// Claims listed per status in [`StatusChanges`]; the rest are counted.
pub const LISTED_PER_STATUS: usize = 1000;

/// The claims whose status one collected file moved, each counted once at
/// the status it ended at: how many went to each status, and the first
/// [`LISTED_PER_STATUS`] of each by CLM01, in the order they moved. A
/// 160,000-claim 835 moves 160,000 claims; listing them all would grow
/// memory with the file, and a report or a mail of that many ids helps
/// nobody (`status` and `trace` give every claim).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusChanges {
    /// In lifecycle order, each status at most once.
    to: Vec<ChangedTo>,
}

/// The claims a file moved to one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedTo {
    pub status: ClaimStatus,
    /// How many claims ended at this status.
    pub count: u64,
    /// The first of them (CLM01), at most [`LISTED_PER_STATUS`].
    pub listed: Vec<String>,
}

impl ChangedTo {
    /// Claims counted but not listed.
    pub fn not_listed(&self) -> u64 {
        self.count.saturating_sub(self.listed.len() as u64)
    }
}

impl StatusChanges {
    /// Claims moved, all statuses together.
    pub fn total(&self) -> u64 {
        self.to.iter().map(|c| c.count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.to.is_empty()
    }

    /// The claims moved to `status`, if any.
    pub fn to(&self, status: ClaimStatus) -> Option<&ChangedTo> {
        self.to.iter().find(|c| c.status == status)
    }

    /// Every status claims moved to, in lifecycle order.
    pub fn iter(&self) -> impl Iterator<Item = &ChangedTo> {
        self.to.iter()
    }

    /// Counts `count` claims moved to `status`, listing `listed` of them
    /// (beyond [`LISTED_PER_STATUS`] they are only counted).
    pub fn add(
        &mut self,
        status: ClaimStatus,
        count: u64,
        listed: impl IntoIterator<Item = String>,
    ) {
        let at = match self.to.binary_search_by(|c| c.status.cmp(&status)) {
            Ok(at) => at,
            Err(at) => {
                self.to.insert(
                    at,
                    ChangedTo {
                        status,
                        count: 0,
                        listed: Vec::new(),
                    },
                );
                at
            }
        };
        if let Some(c) = self.to.get_mut(at) {
            c.count += count;
            let room = LISTED_PER_STATUS.saturating_sub(c.listed.len());
            c.listed.extend(listed.into_iter().take(room));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive(charge: Decimal, words: &[Word]) -> Option<ClaimStatus> {
        super::derive(charge, words).unwrap()
    }

    fn w(status: ClaimStatus) -> Word {
        Word { status, paid: None }
    }
    fn pay(status: ClaimStatus, paid: i64) -> Word {
        Word {
            status,
            paid: Some(Decimal::from(paid)),
        }
    }

    #[test]
    fn payments_that_cannot_be_summed_are_an_error_not_a_panic() {
        let huge = Word {
            status: ClaimStatus::Paid,
            paid: Some(Decimal::MAX),
        };
        assert_eq!(
            super::derive(Decimal::ONE, &[huge, huge]),
            Err(crate::money::Overflow)
        );
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for s in ClaimStatus::ALL {
            assert_eq!(s.name().parse::<ClaimStatus>(), Ok(s));
        }
        assert!("acepted_999".parse::<ClaimStatus>().is_err());
    }

    #[test]
    fn a_rejection_outranks_acceptances_at_its_stage_and_before() {
        use ClaimStatus::*;
        let c = Decimal::from(100);
        assert_eq!(
            derive(c, &[w(Rejected999), w(AcceptedTa1)]),
            Some(Rejected999)
        );
        assert_eq!(
            derive(c, &[w(AcceptedTa1), w(Rejected999)]),
            Some(Rejected999)
        );
        assert_eq!(
            derive(c, &[w(Rejected277), w(Accepted277), w(Accepted999)]),
            Some(Rejected277)
        );
        assert_eq!(
            derive(c, &[w(NotFound277), w(Accepted277)]),
            Some(Accepted277)
        );
        assert_eq!(derive(c, &[]), None);
    }

    #[test]
    fn payments_are_summed_over_every_clp() {
        use ClaimStatus::*;
        let c = Decimal::from(100);
        assert_eq!(
            derive(c, &[pay(PartiallyPaid, 40), pay(PartiallyPaid, 60)]),
            Some(Paid)
        );
        assert_eq!(
            derive(
                c,
                &[pay(Paid, 100), pay(Reversed, -100), pay(PartiallyPaid, 80)]
            ),
            Some(PartiallyPaid)
        );
        assert_eq!(
            derive(c, &[pay(Paid, 100), pay(Reversed, -100)]),
            Some(Reversed)
        );
        assert_eq!(
            derive(c, &[pay(PatientResponsibility, 0), w(Accepted277)]),
            Some(PatientResponsibility)
        );
        assert_eq!(
            derive(c, &[pay(Denied, 0), pay(Rejected277, 0)]),
            Some(Denied)
        );
    }
}

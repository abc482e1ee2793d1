//! The billing report's figures: what a billing manager looks at — claims
//! and charges by status and partner, first-pass acceptance, denials and
//! their reasons, days to payment, unpaid charges by age, charges against
//! payments, and what is overdue or quarantined.
//!
//! This is plain data, filled from the ledger by `Ledger::report_figures`
//! (`src/ledger/report.rs`, aggregated in SQL) and drawn by [`super::html`].
//! The same struct is `report --json`, so the picture, its tables and the
//! JSON can never say different things. It holds claim counts, money, codes,
//! file names and partner names: no patient detail, not even claim ids.

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// Money as `status --json` writes it: a decimal string with two places.
pub fn money<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{d:.2}"))
}

/// A share in percent, one decimal place (`None` when nothing to divide by).
pub fn percent(part: i64, whole: i64) -> Option<Decimal> {
    (whole > 0)
        .then(|| (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole)).round_dp(1))
}

/// What the report covers.
#[derive(Debug, Clone, Serialize)]
pub struct Scope {
    /// First day of claims submitted and answers received (local date), if any.
    pub from: Option<chrono::NaiveDate>,
    /// Last day, included.
    pub to: Option<chrono::NaiveDate>,
    pub partner: Option<String>,
    /// When it was made (UTC, RFC 3339): also the day aging counts to.
    pub generated_at: String,
}

/// Claims of one partner in one status (the rows of `status --json`'s `claims`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRow {
    pub partner: String,
    pub status: String,
    pub claims: i64,
    #[serde(serialize_with = "money")]
    pub charges: Decimal,
    #[serde(serialize_with = "money")]
    pub paid: Decimal,
}

/// Claims of a partner submitted in a week that had any answer, and how
/// many of those were never rejected at TA1, 999 or 277CA.
#[derive(Debug, Clone, Serialize)]
pub struct FirstPassRow {
    pub partner: String,
    /// The Monday the week starts (UTC dates).
    pub week: chrono::NaiveDate,
    pub answered: i64,
    pub first_pass: i64,
    pub rate_percent: Option<Decimal>,
}

/// Of a partner's claims adjudicated by an 835 (paid, partially paid,
/// patient responsibility, denied, reversed), how many are denied.
#[derive(Debug, Clone, Serialize)]
pub struct DenialRow {
    pub partner: String,
    pub adjudicated: i64,
    pub denied: i64,
    pub rate_percent: Option<Decimal>,
}

/// A reason code and how many claims it was given for.
#[derive(Debug, Clone, Serialize)]
pub struct CodeCount {
    /// As the partner gave it: `CO-50`, `RARC N130`, `STC A7:562:85`.
    pub code: String,
    /// From the built-in table in `src/codes.rs` (common codes only).
    pub description: Option<&'static str>,
    pub claims: i64,
}

/// Claims whose first 835 came within a range of days after submission.
#[derive(Debug, Clone, Serialize)]
pub struct DaysBucket {
    pub label: &'static str,
    pub min_days: i64,
    /// Included; none for the last bucket.
    pub max_days: Option<i64>,
    pub claims: i64,
}

/// The ranges of days to first payment.
pub const DAY_BUCKETS: [(&str, i64, Option<i64>); 7] = [
    ("0-7", 0, Some(7)),
    ("8-14", 8, Some(14)),
    ("15-21", 15, Some(21)),
    ("22-30", 22, Some(30)),
    ("31-45", 31, Some(45)),
    ("46-60", 46, Some(60)),
    ("61+", 61, None),
];

/// The accounts-receivable aging buckets, in days since submission.
pub const AGING_BUCKETS: [&str; 5] = ["0-30", "31-60", "61-90", "91-120", "120+"];

/// Unpaid charges of a partner in one aging bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgingRow {
    pub partner: String,
    pub bucket: &'static str,
    pub claims: i64,
    /// The charges of those claims: `unpaid` is never more.
    #[serde(serialize_with = "money")]
    pub charges: Decimal,
    /// Each claim's charge less what 835s paid on it (reversals included),
    /// held between nothing and its charge: a claim whose payments add up
    /// below zero (a reversal of a payment never recorded here) is unpaid
    /// by its charge, not by more; one paid above its charge, by nothing.
    #[serde(serialize_with = "money")]
    pub unpaid: Decimal,
    /// Of `claims`, those whose payments add up below zero or above the
    /// charge: their money is for a person to check (`status --json` lists
    /// them under `payment_doubts`, `paid_below_zero` or `overpaid`).
    pub in_doubt: i64,
}

/// Charges submitted and payments received in one week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeekMoney {
    pub week: chrono::NaiveDate,
    #[serde(serialize_with = "money")]
    pub charges: Decimal,
    #[serde(serialize_with = "money")]
    pub payments: Decimal,
}

/// A delivered file whose answer was found late by `check-deadlines`.
#[derive(Debug, Clone, Serialize)]
pub struct OverdueResponse {
    pub partner: String,
    pub file: String,
    pub isa13: i64,
    /// ta1, 999, 277ca, 835.
    pub kind: String,
    pub delivered_at: String,
    pub found_at: String,
    pub claims: i64,
}

/// An outbound file sealed but not yet delivered.
#[derive(Debug, Clone, Serialize)]
pub struct PendingFile {
    pub id: i64,
    pub partner: String,
    pub name: String,
    pub state: String,
    pub attempts: i64,
    pub claims: i64,
    pub created_at: String,
}

/// A collected file set aside, as `status --json` lists it under `inbound`.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantinedFile {
    pub id: i64,
    pub partner: String,
    pub name: String,
    pub reason: Option<String>,
    pub updated_at: String,
}

/// Days from submission to first 835, as counts per bucket and a median.
#[derive(Debug, Clone, Serialize)]
pub struct DaysToPayment {
    pub buckets: Vec<DaysBucket>,
    pub claims: i64,
    pub median_days: Option<i64>,
}

impl DaysToPayment {
    /// From counts per whole day (day, claims), any order.
    pub fn from_days(days: &[(i64, i64)]) -> DaysToPayment {
        let buckets = DAY_BUCKETS
            .iter()
            .map(|&(label, min_days, max_days)| DaysBucket {
                label,
                min_days,
                max_days,
                claims: days
                    .iter()
                    .filter(|(d, _)| *d >= min_days && max_days.is_none_or(|m| *d <= m))
                    .map(|(_, n)| n)
                    .sum(),
            })
            .collect();
        let claims: i64 = days.iter().map(|(_, n)| n).sum();
        let mut sorted = days.to_vec();
        sorted.sort_unstable();
        let mut seen = 0;
        let median_days = sorted.iter().find_map(|&(d, n)| {
            seen += n;
            (claims > 0 && 2 * seen >= claims).then_some(d)
        });
        DaysToPayment {
            buckets,
            claims,
            median_days,
        }
    }
}

/// Everything the report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub scope: Scope,
    /// Same rows as `status --json`'s `claims` (for the same ledger, unfiltered).
    pub claims: Vec<StatusRow>,
    pub first_pass: Vec<FirstPassRow>,
    pub denials: Vec<DenialRow>,
    /// Top CARC/RARC codes of 835 denials.
    pub denial_reasons: Vec<CodeCount>,
    /// Top 277CA rejection status codes.
    pub rejection_reasons: Vec<CodeCount>,
    pub days_to_payment: DaysToPayment,
    pub aging: Vec<AgingRow>,
    pub weekly: Vec<WeekMoney>,
    pub overdue_responses: Vec<OverdueResponse>,
    pub pending_files: Vec<PendingFile>,
    pub quarantined: Vec<QuarantinedFile>,
}

impl Figures {
    /// Claims and charges summed over every partner and status. The
    /// ledger checked these sums when it made the figures (an overflow is
    /// its error there); saturating here only keeps this free of a panic.
    pub fn totals(&self) -> (i64, Decimal, Decimal) {
        self.claims
            .iter()
            .fold((0, Decimal::ZERO, Decimal::ZERO), |t, r| {
                (
                    t.0.saturating_add(r.claims),
                    t.1.saturating_add(r.charges),
                    t.2.saturating_add(r.paid),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_to_payment_buckets_and_median() {
        let d = DaysToPayment::from_days(&[(3, 2), (10, 1), (90, 1)]);
        assert_eq!(d.claims, 4);
        assert_eq!(d.buckets[0].claims, 2);
        assert_eq!(d.buckets[1].claims, 1);
        assert_eq!(d.buckets[6].claims, 1);
        assert_eq!(d.median_days, Some(3));
        assert_eq!(DaysToPayment::from_days(&[]).median_days, None);
    }

    #[test]
    fn percent_rounds_and_refuses_zero() {
        assert_eq!(percent(1, 3), Some(Decimal::new(333, 1)));
        assert_eq!(percent(0, 0), None);
    }
}

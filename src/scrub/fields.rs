//! Rules for the claim fields beyond the basics — related causes and
//! accidents, onset and treatment dates, hours, visit reasons, DRG, CLIA —
//! so that a value the 005010X222A1/X223A2 guides do not allow is set aside
//! here instead of reaching the 837 writer, which would either emit a
//! segment the payer rejects (`CLM11` `:::IL`) or silently drop it (a
//! fourth visit reason, an 837I field on an 837P).

use chrono::NaiveDate;

use super::codes::{digits, icd10_shape, is_state, one_of};
use super::{at, code_set, item, At, Findings, Scrubber};
use crate::model::{Claim, ClaimKind, IcdVersion};

/// CLM11-1/-2 related-causes codes the 837P guide allows.
const RELATED_CAUSES: &[&str] = &["AA", "EM", "OA"];
/// CLM11-3 is "Not Used" in 5010: two causes at most.
const MAX_RELATED_CAUSES: usize = 2;
/// HI*APR: at most three patient's reasons for visit.
const MAX_VISIT_REASONS: usize = 3;

/// HHMM on a 24-hour clock: hours 00–23, minutes 00–59.
pub fn hour_shape(h: &str) -> bool {
    let two = |s: &[u8]| u32::from(s[0] - b'0') * 10 + u32::from(s[1] - b'0');
    digits(h, 4) && two(&h.as_bytes()[..2]) < 24 && two(&h.as_bytes()[2..]) < 60
}

/// CLIA number: two digits, the letter D, seven digits (e.g. 14D0123456).
pub fn clia_shape(c: &str) -> bool {
    let b = c.as_bytes();
    b.len() == 10 && b[2] == b'D' && b[..2].iter().chain(&b[3..]).all(u8::is_ascii_digit)
}

impl Scrubber<'_> {
    pub(super) fn claim_fields(&self, c: &Claim, f: &mut Findings<'_>) {
        self.kind_fields(c, f);
        if c.kind == ClaimKind::Professional {
            self.related_causes(c, f);
        }
        self.event_dates(c, f);
        for (field, hour) in [
            (at("discharge_hour"), &c.discharge_hour),
            (
                at("admission.hour"),
                &c.admission.as_ref().and_then(|a| a.hour.clone()),
            ),
        ] {
            if hour.as_deref().is_some_and(|h| !hour_shape(h)) {
                f.error(
                    field,
                    "hour",
                    "must be HHMM on a 24-hour clock (hours 00-23, minutes 00-59)",
                );
            }
        }
        if c.kind == ClaimKind::Institutional {
            if let Some(a) = c.admission.as_ref().filter(|a| a.hour.is_some()) {
                f.require(
                    at("admission.date"),
                    &a.date,
                    "when admission.hour is given (DTP*435 carries both)",
                );
            }
            self.visit_reasons(c, f);
            if c.drg.as_deref().is_some_and(|d| !digits(d, 3)) {
                f.error(
                    at("drg"),
                    "drg",
                    "must be three digits (an MS-DRG code, HI*DR)",
                );
            }
        }
        if c.kind == ClaimKind::Professional
            && c.clia_number.as_deref().is_some_and(|n| !clia_shape(n))
        {
            f.error(
                at("clia_number"),
                "clia",
                "must be a CLIA number: two digits, D, seven digits (REF*X4)",
            );
        }
    }

    /// A field the other claim kind's guide has: the writer has nowhere to
    /// put it, so the claim is set aside rather than sent without it.
    fn kind_fields(&self, c: &Claim, f: &mut Findings<'_>) {
        let (this, other) = match c.kind {
            ClaimKind::Professional => ("837P", "837I"),
            ClaimKind::Institutional => ("837I", "837P"),
        };
        let present: &[(&'static str, bool)] = match c.kind {
            ClaimKind::Professional => &[
                ("discharge_hour", c.discharge_hour.is_some()),
                ("visit_reasons", !c.visit_reasons.is_empty()),
                ("drg", c.drg.is_some()),
            ],
            ClaimKind::Institutional => &[
                ("related_causes", !c.related_causes.is_empty()),
                ("accident_state", c.accident_state.is_some()),
                ("accident_date", c.accident_date.is_some()),
                ("onset_date", c.onset_date.is_some()),
                ("initial_treatment_date", c.initial_treatment_date.is_some()),
                ("clia_number", c.clia_number.is_some()),
            ],
        };
        for (name, _) in present.iter().filter(|(_, there)| *there) {
            f.error(
                at(name),
                "claim-kind",
                format!("is an {other} field; an {this} claim has nowhere to carry it"),
            );
        }
    }

    /// CLM11: at most two causes, each AA, EM or OA; a state only for an
    /// auto accident, and a US one.
    fn related_causes(&self, c: &Claim, f: &mut Findings<'_>) {
        if c.related_causes.len() > MAX_RELATED_CAUSES {
            f.error(
                at("related_causes"),
                "related-cause-count",
                format!(
                    "{} related causes; at most {MAX_RELATED_CAUSES} (CLM11-1 and CLM11-2; CLM11-3 is not used in 5010)",
                    c.related_causes.len()
                ),
            );
        }
        for (i, cause) in c.related_causes.iter().enumerate() {
            if !one_of(RELATED_CAUSES, cause) {
                f.error(
                    item("related_causes", i, ""),
                    "related-cause",
                    "must be AA (auto accident), EM (employment) or OA (other accident)",
                );
            }
        }
        let cause = |code: &str| c.related_causes.iter().any(|x| x == code);
        if let Some(state) = &c.accident_state {
            if !cause("AA") {
                f.error(
                    at("accident_state"),
                    "accident-state",
                    "is sent only with related cause AA (auto accident): CLM11-4 needs CLM11-1",
                );
            }
            if !is_state(state) {
                f.error(
                    at("accident_state"),
                    "state",
                    "is not a US state or territory code",
                );
            }
        }
        if c.accident_date.is_some() && !RELATED_CAUSES.iter().any(|code| cause(code)) {
            f.error(
                at("accident_date"),
                "accident-date",
                "is sent only with related cause AA, EM or OA (DTP*439)",
            );
        }
    }

    /// Accident, onset and initial-treatment dates happened: not in the
    /// future, not before the patient was born.
    fn event_dates(&self, c: &Claim, f: &mut Findings<'_>) {
        let birth = c.patient_birth_date();
        for (field, date) in [
            (at("accident_date"), c.accident_date),
            (at("onset_date"), c.onset_date),
            (at("initial_treatment_date"), c.initial_treatment_date),
        ] {
            self.past_date(f, field, date, birth);
        }
    }

    fn past_date(
        &self,
        f: &mut Findings<'_>,
        field: At,
        date: Option<NaiveDate>,
        birth: Option<NaiveDate>,
    ) {
        let Some(d) = date else { return };
        if d > self.today {
            f.error(field, "date-future", "is in the future");
        }
        if birth.is_some_and(|b| d < b) {
            f.error(
                field,
                "date-before-birth",
                "is before the patient's birth date",
            );
        }
    }

    /// HI*APR: at most three, each an ICD-10-CM code (as the diagnoses).
    fn visit_reasons(&self, c: &Claim, f: &mut Findings<'_>) {
        if c.visit_reasons.len() > MAX_VISIT_REASONS {
            f.error(
                at("visit_reasons"),
                "visit-reason-count",
                format!(
                    "{} visit reasons; at most {MAX_VISIT_REASONS} fit HI*APR",
                    c.visit_reasons.len()
                ),
            );
        }
        if c.icd_version != IcdVersion::Icd10 {
            return;
        }
        for (i, code) in c.visit_reasons.iter().enumerate() {
            let field = item("visit_reasons", i, "");
            if icd10_shape(code) {
                let set = self.profile.code_sets.icd10cm.as_deref();
                code_set(f, field, set, "ICD-10-CM", code);
            } else {
                f.error(
                    field,
                    "icd10",
                    "is not shaped like an ICD-10-CM code (letter, digit, letter or digit, then up to four more; the dot optional)",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_clia_numbers() {
        for ok in ["0000", "0930", "2359", "1200"] {
            assert!(hour_shape(ok), "{ok}");
        }
        for bad in ["2400", "1260", "930", "09:30", "ab12", "", "12345"] {
            assert!(!hour_shape(bad), "{bad}");
        }
        assert!(clia_shape("14D0123456"));
        for bad in [
            "14X0123456",
            "1D01234567",
            "14D012345",
            "14D01234567",
            "AAD0123456",
        ] {
            assert!(!clia_shape(bad), "{bad}");
        }
    }
}

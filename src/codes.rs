//! Short descriptions, in our own words, of the codes partners answer with
//! most often: 277CA status categories, claim adjustment group and reason
//! codes (CARC), and a few remark codes (RARC). Shown beside the code in
//! `status` and `trace`; an unknown code is shown bare.

/// A short description of one code as `trace` and `status` print it
/// (`STC A7:562`, `CO-45`, `RARC N130`, `IK5 R`…), or None.
pub fn describe(code: &str) -> Option<&'static str> {
    if let Some(stc) = code.strip_prefix("STC ") {
        let category = stc.split(':').next().unwrap_or_default();
        return Some(match category {
            "A0" => "forwarded to another entity",
            "A1" => "received",
            "A2" => "accepted into adjudication",
            "A3" => "returned as unprocessable",
            "A4" => "not found",
            "A5" => "split claim",
            "A6" => "rejected: information missing",
            "A7" => "rejected: information invalid",
            "A8" => "rejected: relational field in error",
            _ => return None,
        });
    }
    if let Some(ik5) = code.strip_prefix("IK5 ") {
        return Some(match ik5 {
            "A" => "set accepted",
            "E" => "set accepted with errors",
            "R" => "set rejected",
            "M" => "set rejected: message authentication failed",
            "W" => "set rejected: assurance failed",
            "X" => "set rejected: content could not be analysed",
            "5" => "one or more segments in error",
            "4" => "set control number mismatch",
            "3" => "set count in SE wrong",
            _ => return None,
        });
    }
    if let Some(rarc) = code.strip_prefix("RARC ") {
        return Some(match rarc {
            "N130" => "see the plan's benefit documents for coverage",
            "M15" => "bundled into another service",
            "N290" => "rendering provider identifier missing or invalid",
            "MA130" => "claim has unprocessable information; correct and resubmit as new",
            "N30" => "patient not eligible for this service",
            "M80" => "not covered when performed with another service on the same day",
            _ => return None,
        });
    }
    if let Some((group, reason)) = code.split_once('-') {
        if matches!(group, "CO" | "PR" | "OA" | "PI" | "CR") {
            return Some(match reason {
                "1" => "deductible",
                "2" => "coinsurance",
                "3" => "co-payment",
                "4" => "procedure inconsistent with the modifier, or a modifier is missing",
                "16" => "claim lacks information needed for adjudication",
                "18" => "duplicate claim or service",
                "22" => "another payer may be primary (coordination of benefits)",
                "23" => "prior payer's adjudication impacts this payment",
                "27" => "expenses after coverage ended",
                "29" => "filing time limit expired",
                "45" => "charge exceeds the fee schedule or contracted amount",
                "50" => "not deemed a medical necessity",
                "96" => "non-covered charge",
                "97" => "included in the payment for another service",
                "109" => "not covered by this payer; send to the correct one",
                "197" => "prior authorisation or pre-certification absent",
                "204" => "not covered under the patient's current benefit plan",
                "242" => "services not provided by network providers",
                "253" => "sequestration reduction",
                _ => return None,
            });
        }
    }
    None
}

/// `code (description)`, or the bare code.
pub fn with_description(code: &str) -> String {
    match describe(code) {
        Some(d) => format!("{code} ({d})"),
        None => code.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_codes_are_described_and_unknown_ones_left_bare() {
        assert_eq!(
            with_description("CO-45"),
            "CO-45 (charge exceeds the fee schedule or contracted amount)"
        );
        assert!(with_description("STC A7:562:85").contains("invalid"));
        assert!(with_description("RARC N130").contains("benefit"));
        assert_eq!(with_description("CO-99999"), "CO-99999");
        assert_eq!(with_description("IK3 NM1@17 8"), "IK3 NM1@17 8");
    }
}

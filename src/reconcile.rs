//! Reconciliation: what a response says about which claims, keyed on what
//! was stored when they were sent (DESIGN.md's matching keys).
//!
//! This module is pure: it turns a typed [`Response`] into [`Verdict`]s —
//! a target (an interchange, a transaction set, a segment inside one, or a
//! claim id) and the status and reason codes the partner gave. The ledger
//! resolves targets to claims and records every verdict as history; a
//! claim's status is the latest verdict of the furthest stage
//! ([`stage`]), so a late 999 never undoes an 835.

use rust_decimal::Decimal;

use crate::model::response::{Response, SegmentError};

/// What a verdict is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every claim of our interchange with this ISA13.
    Interchange { control: i64 },
    /// Every claim of a transaction set of ours (GS06, ST02).
    Set { group: i64, set: i64 },
    /// The claim of that set whose segment range holds this position (IK302).
    Segment { group: i64, set: i64, position: i64 },
    /// The most recent claim of ours with this CLM01.
    Claim { claim_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub target: Target,
    /// accepted_999, rejected_999, accepted_277, rejected_277, paid,
    /// partially_paid, denied, reversed, rejected_ta1, accepted_ta1.
    pub status: &'static str,
    /// Reason codes, as the partner gave them (e.g. `IK3 NM1@17 8`,
    /// `STC A7:562:85`, `CO-45`, `RARC N130`).
    pub codes: Vec<String>,
    pub paid: Option<Decimal>,
    pub payer_claim_number: Option<String>,
}

/// How far along the lifecycle a status is: a claim's status moves only
/// forward (or sideways, to the latest word at the same stage).
pub fn stage(status: &str) -> u8 {
    match status {
        "queued" => 0,
        "sent" => 1,
        "accepted_ta1" | "rejected_ta1" | "accepted_999" | "rejected_999" => 2,
        "accepted_277" | "rejected_277" => 3,
        "paid" | "partially_paid" | "denied" | "reversed" => 4,
        _ => 0,
    }
}

fn number(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

fn ik3_code(e: &SegmentError) -> String {
    let mut s = format!("IK3 {}@{} {}", e.segment, e.position, e.code);
    for el in &e.elements {
        s.push_str(&format!(" IK4 {}:{}", el.element, el.code));
    }
    for c in &e.context {
        s.push_str(&format!(" CTX {c}"));
    }
    s
}

/// What a response says, claim target by claim target.
pub fn verdicts(response: &Response) -> Vec<Verdict> {
    let verdict = |target, status, codes| Verdict {
        target,
        status,
        codes,
        paid: None,
        payer_claim_number: None,
    };
    match response {
        Response::Ta1(t) => {
            let Some(control) = number(&t.interchange) else {
                return Vec::new();
            };
            let status = if t.code == "R" {
                "rejected_ta1"
            } else {
                "accepted_ta1"
            };
            vec![verdict(
                Target::Interchange { control },
                status,
                vec![format!("TA1 {} {}", t.code, t.note)],
            )]
        }
        Response::Ack999(a) => {
            let Some(group) = number(&a.group) else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for s in &a.sets {
                let Some(set) = number(&s.set) else { continue };
                let rejected = matches!(s.status.as_str(), "R" | "M" | "W" | "X");
                let status = if rejected {
                    "rejected_999"
                } else {
                    "accepted_999"
                };
                let mut codes: Vec<String> = s.codes.iter().map(|c| format!("IK5 {c}")).collect();
                codes.insert(0, format!("IK5 {}", s.status));
                out.push(verdict(Target::Set { group, set }, status, codes));
                for e in &s.errors {
                    out.push(verdict(
                        Target::Segment {
                            group,
                            set,
                            position: i64::from(e.position),
                        },
                        status,
                        vec![ik3_code(e)],
                    ));
                }
            }
            out
        }
        Response::Status277(s) => s
            .claims
            .iter()
            .filter(|c| !c.claim_id.is_empty())
            .map(|c| {
                let rejected = c.statuses.iter().any(|st| st.is_rejection());
                Verdict {
                    target: Target::Claim {
                        claim_id: c.claim_id.clone(),
                    },
                    status: if rejected {
                        "rejected_277"
                    } else {
                        "accepted_277"
                    },
                    codes: c
                        .statuses
                        .iter()
                        .map(|st| {
                            let mut code = format!("STC {}:{}", st.category, st.code);
                            if let Some(e) = &st.entity {
                                code.push(':');
                                code.push_str(e);
                            }
                            code
                        })
                        .collect(),
                    paid: None,
                    payer_claim_number: c.payer_claim_number.clone(),
                }
            })
            .collect(),
        Response::Remittance(r) => r
            .claims
            .iter()
            .map(|c| {
                let status = if c.is_reversal() {
                    "reversed"
                } else if c.is_denied() {
                    "denied"
                } else if c.paid >= c.charge {
                    "paid"
                } else if c.paid > Decimal::ZERO {
                    "partially_paid"
                } else {
                    "denied"
                };
                let mut codes: Vec<String> = c
                    .adjustments
                    .iter()
                    .chain(c.lines.iter().flat_map(|l| &l.adjustments))
                    .map(|a| format!("{}-{}", a.group, a.reason))
                    .collect();
                codes.extend(
                    c.remarks
                        .iter()
                        .chain(c.lines.iter().flat_map(|l| &l.remarks))
                        .map(|r| format!("RARC {r}")),
                );
                codes.dedup();
                Verdict {
                    target: Target::Claim {
                        claim_id: c.claim_id.clone(),
                    },
                    status,
                    codes,
                    paid: Some(c.paid),
                    payer_claim_number: c.payer_claim_number.clone(),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::response::{Ack999, ClaimPayment, Remittance, SetAck};

    #[test]
    fn a_999_rejects_the_set_and_pins_its_errors() {
        let r = Response::Ack999(Ack999 {
            group: "12".into(),
            sets: vec![SetAck {
                set: "0003".into(),
                status: "R".into(),
                errors: vec![SegmentError {
                    segment: "NM1".into(),
                    position: 17,
                    code: "8".into(),
                    ..SegmentError::default()
                }],
                ..SetAck::default()
            }],
            ..Ack999::default()
        });
        let v = verdicts(&r);
        assert_eq!(v[0].target, Target::Set { group: 12, set: 3 });
        assert_eq!(v[0].status, "rejected_999");
        assert_eq!(
            v[1].target,
            Target::Segment {
                group: 12,
                set: 3,
                position: 17
            }
        );
        assert_eq!(v[1].codes, ["IK3 NM1@17 8"]);
    }

    #[test]
    fn an_835_tells_paid_partial_denied_and_reversed_apart() {
        let claim = |id: &str, status: &str, charge: i64, paid: i64| ClaimPayment {
            claim_id: id.into(),
            status: status.into(),
            charge: charge.into(),
            paid: paid.into(),
            ..ClaimPayment::default()
        };
        let r = Response::Remittance(Remittance {
            claims: vec![
                claim("A", "1", 100, 100),
                claim("B", "1", 100, 60),
                claim("C", "4", 100, 0),
                claim("D", "22", -100, -100),
            ],
            ..Remittance::default()
        });
        let statuses: Vec<_> = verdicts(&r).iter().map(|v| v.status).collect();
        assert_eq!(statuses, ["paid", "partially_paid", "denied", "reversed"]);
        assert!(stage("paid") > stage("accepted_277"));
    }
}

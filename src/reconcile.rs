//! Reconciliation: what a response says about which claims, keyed on what
//! was stored when they were sent — our whole envelope, not control
//! numbers alone, since those restart per sender/receiver pair.
//!
//! This module is pure: it turns a typed [`Response`] into [`Verdict`]s —
//! a target (an interchange, a group, a transaction set, a segment inside
//! one, a batch, or a claim id — for a 277CA within the batch it names)
//! and the status and reason codes the partner gave. A 999's target also
//! carries what it says the group and set are (AK101/AK103, AK201/AK203),
//! so the ledger applies it only to a group and set of ours that fit. The
//! ledger resolves targets to claims and records every verdict as
//! history; what status that gives a claim is [`crate::lifecycle`]'s rule.

use rust_decimal::Decimal;

use crate::lifecycle::ClaimStatus;
use crate::model::response::{
    Category, ClaimPayment, EnvelopeRef, Response, SegmentError, StatusCode,
};

/// Our side of an envelope: the sender and receiver ids as *we* wrote them
/// (a response carries them swapped).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pair {
    pub sender: String,
    pub receiver: String,
}

/// What a verdict is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every claim of our interchange with this ISA13 from ISA06/ISA08 `ours`.
    Interchange { control: i64, ours: Pair },
    /// Every claim of our functional group with this GS06 from GS02/GS03
    /// `ours`, when the group is what `acked` says it is and every set the
    /// 999 lists (`listed`) is one of that group's.
    Group {
        control: i64,
        ours: Pair,
        acked: Acked,
        listed: Vec<Listed>,
    },
    /// Every claim of a transaction set of ours (GS06, and ST02 in
    /// `listed`), when its group and it are what `acked` and `listed` say
    /// they are.
    Set {
        group: i64,
        ours: Pair,
        acked: Acked,
        listed: Listed,
    },
    /// The claim of that set whose segment range holds this position (IK302).
    Segment {
        group: i64,
        position: i64,
        ours: Pair,
        acked: Acked,
        listed: Listed,
    },
    /// Every claim of our transaction set whose BHT03 is this reference (a
    /// 277CA status for a whole batch, with no claim listed below it).
    Batch { reference: String },
    /// The claim of ours with this CLM01, among the submissions `within`
    /// allows (the payer's claim number picks among them when it can, else
    /// the newest: the current cycle).
    Claim { claim_id: String, within: Within },
}

/// Which submissions of a CLM01 an answer about it can be about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Within {
    /// Any sent to the partner (an 835's CLP01, a claim attached by hand).
    Any,
    /// Only those in our batch (transaction set) whose BHT03 this is: a
    /// 277CA claim status is given within the batch its 2200B TRN02 names
    /// (under 005010X214 a claim's TRN02 is unique only within its
    /// submitter and batch). None: it names no batch, so it is about none.
    Batch(Option<String>),
}

/// What a 999 says the group it acknowledges is, besides its number: a
/// group or set of ours is answered only when these fit what we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// AK101: the functional identifier code (our GS01, `HC`).
    pub functional_id: String,
    /// AK103: the version (our GS08), None when not given.
    pub version: Option<String>,
    /// AK902: how many sets the group held (our GE01).
    pub sets_included: u32,
    /// The interchange the 999 came in, as we wrote ours (its ISA08 was our
    /// ISA06): a group is answered only by the partner it was sent to, as
    /// a TA1, a 277CA and an 835 are (tester: a 999 from another sender's
    /// ISA with our GS02/GS03 rejected every claim of the group).
    pub interchange: Pair,
}

/// One set a 999 lists (AK2): what it says the set is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// AK202 as a number; None when it is not one (no set of ours).
    pub set: Option<i64>,
    /// AK201: the transaction set identifier (our ST01, `837`).
    pub set_id: String,
    /// AK203: its version (our ST03), None when not given.
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub target: Target,
    pub status: ClaimStatus,
    /// Reason codes, as the partner gave them (e.g. `IK3 NM1@17 8`,
    /// `STC A7:562:85`, `CO-45`, `RARC N130`).
    pub codes: Vec<String>,
    pub paid: Option<Decimal>,
    pub payer_claim_number: Option<String>,
    /// A 277CA claim status's STC04: the claim's total charge as the payer
    /// read it. The status applies only to a submission of ours with that
    /// charge (another charge means another claim, or a misread one).
    pub charge: Option<Decimal>,
    /// An 835 CLP03: the claim's charge as the payer read it. Unlike
    /// `charge` it never keeps the payment from its claim (the money is
    /// real); when it is not the claim's charge the claim is listed
    /// ([`crate::ledger::Doubt::ChargeDiffers`]).
    pub stated_charge: Option<Decimal>,
}

impl Target {
    /// What the verdict is about, as the list of unmatched answers names
    /// it: a claim id, or our envelope's numbers (never patient data).
    pub fn named(&self) -> String {
        match self {
            Target::Interchange { control, .. } => format!("interchange {control:09}"),
            Target::Group { control, .. } => format!("group {control}"),
            Target::Set { group, listed, .. } | Target::Segment { group, listed, .. } => {
                match listed.set {
                    Some(set) => format!("set {set:04} of group {group}"),
                    None => format!("a set with no number (AK202) in group {group}"),
                }
            }
            Target::Batch { reference } => format!("batch {reference}"),
            Target::Claim { claim_id, .. } => claim_id.clone(),
        }
    }

    /// Whether an answer about it that reaches no claim is listed as
    /// unmatched: all but a segment error, whose set's own verdict is (an
    /// error in a set's header or trailer lies within no claim).
    pub fn listed_when_unmatched(&self) -> bool {
        !matches!(self, Target::Segment { .. })
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

/// The interchange pair as we wrote it: the response's ISA08 was our ISA06.
pub fn isa_pair(env: &EnvelopeRef) -> Pair {
    Pair {
        sender: env.receiver.clone(),
        receiver: env.sender.clone(),
    }
}

/// The group pair as we wrote it: the response's GS03 was our GS02.
fn gs_pair(env: &EnvelopeRef) -> Pair {
    Pair {
        sender: env.group_receiver.clone(),
        receiver: env.group_sender.clone(),
    }
}

fn verdict(target: Target, status: ClaimStatus, codes: Vec<String>) -> Verdict {
    Verdict {
        target,
        status,
        codes,
        paid: None,
        payer_claim_number: None,
        charge: None,
        stated_charge: None,
    }
}

/// What a response says, claim target by claim target.
pub fn verdicts(response: &Response) -> Vec<Verdict> {
    match response {
        Response::Ta1(t) => {
            let Some(control) = number(&t.interchange) else {
                return Vec::new();
            };
            let status = if t.code == "R" {
                ClaimStatus::RejectedTa1
            } else {
                ClaimStatus::AcceptedTa1
            };
            vec![verdict(
                Target::Interchange {
                    control,
                    ours: isa_pair(&t.envelope),
                },
                status,
                vec![format!("TA1 {} {}", t.code, t.note)],
            )]
        }
        Response::Ack999(a) => ack_999(a),
        Response::Status277(s) => {
            let mut out: Vec<Verdict> = s
                .claims_by_batch()
                .filter(|(_, c)| !c.claim_id.is_empty())
                .map(|(batch, c)| Verdict {
                    target: Target::Claim {
                        claim_id: c.claim_id.clone(),
                        within: Within::Batch(batch.map(str::to_owned)),
                    },
                    status: status_277(c.statuses.iter().chain(&c.above)),
                    codes: c.statuses.iter().chain(&c.above).map(stc_code).collect(),
                    paid: None,
                    payer_claim_number: c.payer_claim_number.clone(),
                    charge: c.statuses.iter().find_map(|st| st.amount),
                    stated_charge: None,
                })
                .collect();
            // A batch-level status with no claim below it: every claim of the batch.
            for r in &s.receivers {
                if r.claims == 0 && !r.statuses.is_empty() && !r.trace.is_empty() {
                    out.push(verdict(
                        Target::Batch {
                            reference: r.trace.clone(),
                        },
                        status_277(r.statuses.iter()),
                        r.statuses.iter().map(stc_code).collect(),
                    ));
                }
            }
            out
        }
        Response::Remittance(r) => r.claims.iter().map(payment_verdict).collect(),
    }
}

/// What one 835 claim (CLP) says about the claim it names: a streamed
/// remittance's claims are judged one by one as they are read.
pub fn payment_verdict(c: &ClaimPayment) -> Verdict {
    Verdict {
        target: Target::Claim {
            claim_id: c.claim_id.as_str().to_owned(),
            within: Within::Any,
        },
        status: status_835(c),
        codes: remit_codes(c),
        paid: Some(c.paid),
        payer_claim_number: c.payer_claim_number.as_deref().map(str::to_owned),
        charge: None,
        stated_charge: Some(c.charge),
    }
}

fn given(s: &str) -> Option<String> {
    Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn ack_999(a: &crate::model::response::Ack999) -> Vec<Verdict> {
    let Some(group) = number(&a.group) else {
        return Vec::new();
    };
    let ours = gs_pair(&a.envelope);
    let acked = Acked {
        functional_id: a.functional_id.trim().to_owned(),
        version: given(&a.version),
        sets_included: a.sets_included,
        interchange: isa_pair(&a.envelope),
    };
    let listed = |s: &crate::model::response::SetAck| Listed {
        set: number(&s.set),
        set_id: s.set_id.trim().to_owned(),
        version: given(&s.version),
    };
    let mut out = Vec::new();
    // AK9 R: the whole group is rejected, whatever its sets say (or when
    // it lists none) — if the sets it lists are the group's.
    if a.status == "R" {
        let mut codes = vec![format!("AK9 {}", a.status)];
        codes.extend(a.codes.iter().map(|c| format!("AK9 {c}")));
        out.push(verdict(
            Target::Group {
                control: group,
                ours: ours.clone(),
                acked: acked.clone(),
                listed: a.sets.iter().map(listed).collect(),
            },
            ClaimStatus::Rejected999,
            codes,
        ));
    }
    for s in &a.sets {
        let status = if matches!(s.status.as_str(), "R" | "M" | "W" | "X") {
            ClaimStatus::Rejected999
        } else {
            ClaimStatus::Accepted999
        };
        let mut codes: Vec<String> = s.codes.iter().map(|c| format!("IK5 {c}")).collect();
        codes.insert(0, format!("IK5 {}", s.status));
        out.push(verdict(
            Target::Set {
                group,
                ours: ours.clone(),
                acked: acked.clone(),
                listed: listed(s),
            },
            status,
            codes,
        ));
        // A set with no number (AK202) is one of no group of ours: its
        // verdict reaches no claim and is listed as unmatched.
        for e in &s.errors {
            out.push(verdict(
                Target::Segment {
                    group,
                    position: i64::from(e.position),
                    ours: ours.clone(),
                    acked: acked.clone(),
                    listed: listed(s),
                },
                status,
                vec![ik3_code(e)],
            ));
        }
    }
    out
}

fn stc_code(st: &StatusCode) -> String {
    let mut code = format!("STC {}:{}", st.category, st.code);
    if let Some(e) = &st.entity {
        code.push(':');
        code.push_str(e);
    }
    code
}

/// The strongest word among a claim's 277CA statuses (its own and those
/// given above it): a rejection outranks an acceptance, which outranks
/// "not found" and "cannot say".
fn status_277<'a>(codes: impl Iterator<Item = &'a StatusCode>) -> ClaimStatus {
    codes
        .filter_map(|c| c.kind())
        .map(|k| match k {
            Category::Rejected => ClaimStatus::Rejected277,
            Category::Accepted => ClaimStatus::Accepted277,
            Category::NotFound => ClaimStatus::NotFound277,
            Category::Unprocessed => ClaimStatus::Unprocessed277,
        })
        .max_by_key(|s| match s {
            ClaimStatus::Rejected277 => 3,
            ClaimStatus::Accepted277 => 2,
            ClaimStatus::NotFound277 => 1,
            _ => 0,
        })
        .unwrap_or(ClaimStatus::Unprocessed277)
}

/// What one CLP says on its own (the claim's status sums every CLP: see
/// [`crate::lifecycle::derive`]).
fn status_835(c: &ClaimPayment) -> ClaimStatus {
    if c.is_reversal() {
        ClaimStatus::Reversed
    } else if c.is_denied() {
        ClaimStatus::Denied
    } else if c.paid >= c.charge && c.paid > Decimal::ZERO {
        ClaimStatus::Paid
    } else if c.paid > Decimal::ZERO {
        ClaimStatus::PartiallyPaid
    } else if is_patients_share(c) {
        ClaimStatus::PatientResponsibility
    } else {
        ClaimStatus::Denied
    }
}

/// Processed (CLP02 1, 2, 3 or forwarded 19–21), nothing paid, and what
/// was not paid is the patient's share (PR) besides the contractual
/// write-off (CO-45): a deductible, not a denial.
fn is_patients_share(c: &ClaimPayment) -> bool {
    let processed = matches!(c.status.as_str(), "1" | "2" | "3" | "19" | "20" | "21");
    let all = || {
        c.adjustments
            .iter()
            .chain(c.lines.iter().flat_map(|l| &l.adjustments))
    };
    // Bounded amounts never overflow here; were one to, it is not taken
    // for the patient's share (the claim reads as denied, for a person).
    let Ok(patient) = crate::money::sum(all().filter(|a| a.group == "PR").map(|a| a.amount)) else {
        return false;
    };
    let other_than_contract =
        all().any(|a| a.group != "PR" && !(a.group == "CO" && a.reason == "45"));
    processed && patient > Decimal::ZERO && !other_than_contract
}

fn remit_codes(c: &ClaimPayment) -> Vec<String> {
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
    codes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::response::{Ack999, Adjustment835, Remittance, SetAck};

    fn pair() -> Pair {
        Pair {
            sender: "US".into(),
            receiver: "PAYER".into(),
        }
    }

    #[test]
    fn a_999_rejects_the_set_and_pins_its_errors_on_our_group_pair() {
        let r = Response::Ack999(Ack999 {
            envelope: EnvelopeRef {
                group_sender: "PAYER".into(),
                group_receiver: "US".into(),
                sender: "PAYER-ISA".into(),
                receiver: "US-ISA".into(),
                ..EnvelopeRef::default()
            },
            functional_id: "HC".into(),
            group: "12".into(),
            version: "005010X222A1".into(),
            sets: vec![SetAck {
                set_id: "837".into(),
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
        let acked = Acked {
            functional_id: "HC".into(),
            version: Some("005010X222A1".into()),
            sets_included: 0,
            interchange: Pair {
                sender: "US-ISA".into(),
                receiver: "PAYER-ISA".into(),
            },
        };
        // AK203 not given: the set's version is not checked.
        let listed = Listed {
            set: Some(3),
            set_id: "837".into(),
            version: None,
        };
        assert_eq!(
            v[0].target,
            Target::Set {
                group: 12,
                ours: pair(),
                acked: acked.clone(),
                listed: listed.clone(),
            }
        );
        assert_eq!(v[0].status, ClaimStatus::Rejected999);
        assert_eq!(
            v[1].target,
            Target::Segment {
                group: 12,
                position: 17,
                ours: pair(),
                acked,
                listed,
            }
        );
        assert_eq!(v[1].codes, ["IK3 NM1@17 8"]);
    }

    #[test]
    fn an_ak9_rejection_without_sets_rejects_the_whole_group() {
        let r = Response::Ack999(Ack999 {
            group: "12".into(),
            status: "R".into(),
            codes: vec!["5".into()],
            ..Ack999::default()
        });
        let v = verdicts(&r);
        assert_eq!(v.len(), 1);
        assert!(matches!(v[0].target, Target::Group { control: 12, .. }));
        assert_eq!(v[0].status, ClaimStatus::Rejected999);
    }

    #[test]
    fn a_277ca_claim_status_is_given_within_the_batch_its_2200b_names() {
        use crate::model::response::{ClaimStatus as Status, ReceiverStatus, Status277};
        let claim = |id: &str| Status {
            claim_id: id.into(),
            statuses: vec![StatusCode {
                category: "A7".into(),
                code: "21".into(),
                ..StatusCode::default()
            }],
            ..Status::default()
        };
        let receiver = |trace: &str, claims: u32| ReceiverStatus {
            trace: trace.into(),
            claims,
            ..ReceiverStatus::default()
        };
        let r = Response::Status277(Status277 {
            // One claim above any receiver, two below the first, one below
            // a receiver that names no batch.
            claims: vec![claim("A"), claim("B"), claim("C"), claim("D")],
            receivers: vec![receiver("0000000010001", 2), receiver("", 1)],
            ..Status277::default()
        });
        let within: Vec<_> = verdicts(&r)
            .into_iter()
            .map(|v| match v.target {
                Target::Claim { claim_id, within } => (claim_id, within),
                other => panic!("{other:?}"),
            })
            .collect();
        let batch = |b: Option<&str>| Within::Batch(b.map(str::to_owned));
        assert_eq!(
            within,
            [
                ("A".to_owned(), batch(None)),
                ("B".to_owned(), batch(Some("0000000010001"))),
                ("C".to_owned(), batch(Some("0000000010001"))),
                ("D".to_owned(), batch(None)),
            ]
        );
        // Counts that do not add up give no claim a batch.
        let mut odd = r.clone();
        if let Response::Status277(s) = &mut odd {
            s.receivers[0].claims = 9;
        }
        assert!(verdicts(&odd).iter().all(|v| matches!(
            &v.target,
            Target::Claim {
                within: Within::Batch(None),
                ..
            }
        )));
    }

    #[test]
    fn an_835_tells_paid_partial_denied_deductible_and_reversed_apart() {
        let claim = |id: &str, status: &str, charge: i64, paid: i64| ClaimPayment {
            claim_id: id.into(),
            status: status.into(),
            charge: charge.into(),
            paid: paid.into(),
            ..ClaimPayment::default()
        };
        let adj = |group: &str, reason: &str, amount: i64| Adjustment835 {
            group: group.into(),
            reason: reason.into(),
            amount: amount.into(),
            quantity: None,
        };
        let mut deductible = claim("E", "1", 100, 0);
        deductible.adjustments = vec![adj("CO", "45", 20), adj("PR", "1", 80)];
        let mut not_covered = claim("F", "1", 100, 0);
        not_covered.adjustments = vec![adj("CO", "96", 100)];
        let r = Response::Remittance(Remittance {
            claims: vec![
                claim("A", "1", 100, 100),
                claim("B", "1", 100, 60),
                claim("C", "4", 100, 0),
                claim("D", "22", -100, -100),
                deductible,
                not_covered,
            ],
            ..Remittance::default()
        });
        let statuses: Vec<_> = verdicts(&r).iter().map(|v| v.status).collect();
        use ClaimStatus::*;
        assert_eq!(
            statuses,
            [
                Paid,
                PartiallyPaid,
                Denied,
                Reversed,
                PatientResponsibility,
                Denied
            ]
        );
    }
}

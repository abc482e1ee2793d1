//! What the sandbox payer answers to an 837, decided without I/O: the
//! server hands it a file's bytes and gets back the files to drop.
//!
//! Every decision is a function of the claim id (a SHA-256 of rule name
//! and id), so the same claims get the same answers on every run and in
//! every test: which claims the 277CA rejects, which the 835 denies, which
//! payments are reversed and corrected later.

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::model::response::{
    Ack999, Adjustment835, ClaimPayment, ClaimStatus, LineAdjustments, LinePayment, LineRemarks,
    PatientRef, PayerDetails, ProviderAdjustment, Remittance, SegmentError, SetAck, StatusCode,
    Ta1,
};
use crate::model::{Address, Claim, ClaimKind};
use crate::x12::read::{EnvelopeEvent, EnvelopeReader, Gs, Isa, ReadError, Tokenizer};
use crate::x12::{
    write_277ca, write_999, write_ta1, Answer277, ClaimReader, Closed, ControlNumbers, Damage,
    Envelope, WriteError, Writer835,
};

/// How the sandbox adjudicates. Percentages are of claims, chosen by claim
/// id; amounts are shares of each line's charge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// Claims the 277CA rejects (A7, invalid information).
    pub reject_percent: u8,
    /// Of the accepted claims, those the 835 denies (CLP02 4).
    pub deny_percent: u8,
    /// What the payer allows of each line's charge; the rest is CO-45.
    pub allowed_percent: u8,
    /// Of the paid claims, those paid in full (the whole charge allowed,
    /// nothing left to the patient).
    pub full_pay_percent: u8,
    /// The patient's coinsurance, of the allowed amount (PR-2).
    pub coinsurance_percent: u8,
    /// Of the paid claims, those whose payment a later 835 reverses and
    /// corrects (CLP02 22, then CLP02 1 paying less).
    pub reversal_percent: u8,
    /// Of the accepted claims, those that get a second 277CA later
    /// (A2:20, "accepted for processing", after the A1:19 receipt).
    pub second_277_percent: u8,
    /// Sets whose 999 rejects them whole (IK5 R), by ST02.
    pub reject_set_percent: u8,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            reject_percent: 10,
            deny_percent: 10,
            allowed_percent: 80,
            full_pay_percent: 20,
            coinsurance_percent: 20,
            reversal_percent: 5,
            second_277_percent: 20,
            reject_set_percent: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PayerError {
    #[error("not an 837 this payer can read: {0}")]
    Unreadable(String),
    #[error("writing an answer: {0}")]
    Write(#[from] WriteError),
}

/// One 837 claim as the payer received it, with where it sat.
pub struct ReceivedClaim {
    pub claim: Claim,
    pub group: String,
    pub set: String,
    /// The CLM segment's position in its set (ST = 1): what an IK3 names.
    pub position: u32,
}

/// One transaction set of the 837.
pub struct ReceivedSet {
    pub group: String,
    pub version: String,
    pub set: String,
    /// BHT03: the submitter's batch reference.
    pub reference: String,
    /// Claims the payer's reader could not take, with the segment position.
    pub unreadable: Vec<(u32, String)>,
}

/// What one 837 file held.
pub struct Received {
    pub isa: Isa,
    pub groups: Vec<Gs>,
    pub sets: Vec<ReceivedSet>,
    pub claims: Vec<ReceivedClaim>,
}

/// The files a payer sends back for one 837, each optional as the rules
/// and the 837 decide. `later` ones are dropped after the longer delay.
#[derive(Default)]
pub struct Answers {
    pub ta1: Option<Vec<u8>>,
    pub ack: Option<Vec<u8>>,
    pub status: Option<Vec<u8>>,
    pub remit: Option<Vec<u8>>,
    pub later_status: Option<Vec<u8>>,
    pub later_remit: Option<Vec<u8>>,
}

/// A number 0..100 from a rule's name and a claim id.
fn score(rule: &str, id: &str) -> u8 {
    let digest = Sha256::new()
        .chain_update(rule.as_bytes())
        .chain_update([0u8])
        .chain_update(id.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    (u64::from_be_bytes(first) % 100) as u8
}

fn picked(rule: &str, id: &str, percent: u8) -> bool {
    score(rule, id) < percent
}

/// Reads an 837 the way a payer's front end does: envelope, claims, and
/// where each claim sat.
pub fn read_837(bytes: &[u8]) -> Result<Received, PayerError> {
    let mut tok = Tokenizer::new();
    let mut env = EnvelopeReader::new();
    let mut isa: Option<Isa> = None;
    let mut groups = Vec::new();
    let mut sets: Vec<ReceivedSet> = Vec::new();
    let mut claims = Vec::new();
    let mut reader: Option<ClaimReader> = None;
    let mut group = String::new();
    let mut version = String::new();
    let mut position = 0u32;
    let mut clm_positions: Vec<u32> = Vec::new();
    let mut taken = 0usize;

    // A whole claim is taken; one that is not is unreadable at its CLM
    // (one whose own segment could not be read is so already, there).
    let mut take = |done: Closed, set: &mut ReceivedSet, at: u32| match done {
        Closed::Whole(claim) => claims.push(ReceivedClaim {
            claim: *claim,
            group: set.group.clone(),
            set: set.set.clone(),
            position: at,
        }),
        Closed::Damaged { damage, .. } if damage != Damage::Unreadable => {
            set.unreadable.push((at, damage.to_string()))
        }
        Closed::Damaged { .. } => {}
    };
    tok.feed::<ReadError>(bytes, true, |seg| {
        match env.segment(&seg)? {
            EnvelopeEvent::Interchange(i) => isa = Some(i),
            EnvelopeEvent::Group(gs) => {
                group = gs.control.clone();
                version = gs.version.clone();
                groups.push(gs);
            }
            EnvelopeEvent::SetStart(st) => {
                position = 1;
                clm_positions.clear();
                taken = 0;
                reader = ClaimReader::for_version(&version);
                sets.push(ReceivedSet {
                    group: group.clone(),
                    version: version.clone(),
                    set: st.control,
                    reference: String::new(),
                    unreadable: Vec::new(),
                });
            }
            EnvelopeEvent::Body { .. } => {
                position += 1;
                let Some(current) = sets.last_mut() else {
                    return Ok(());
                };
                if seg.is("BHT") {
                    current.reference = seg.fields().text(3).to_owned();
                }
                if seg.is("CLM") {
                    clm_positions.push(position);
                }
                if let Some(r) = reader.as_mut() {
                    let step = r.segment(&seg);
                    if let Some(done) = step.closed {
                        let at = clm_positions.get(taken).copied().unwrap_or(position);
                        taken += 1;
                        take(done, current, at);
                    }
                    if let Some(e) = step.error {
                        current.unreadable.push((position, e.to_string()));
                    }
                }
            }
            EnvelopeEvent::SetEnd => {
                if let (Some(mut r), Some(current)) = (reader.take(), sets.last_mut()) {
                    if let Some(done) = r.end_set() {
                        let at = clm_positions.get(taken).copied().unwrap_or(position);
                        take(done, current, at);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|e| PayerError::Unreadable(e.to_string()))?;
    env.finish();
    if let Some(problem) = env.problems.first() {
        return Err(PayerError::Unreadable(problem.to_string()));
    }
    let isa = isa.ok_or_else(|| PayerError::Unreadable("no ISA".into()))?;
    Ok(Received {
        isa,
        groups,
        sets,
        claims,
    })
}

/// The envelope of the payer's answers: the 837's ids swapped.
fn answer_envelope(template: &Envelope, r: &Received, gs: Option<&Gs>) -> Envelope {
    let mut env = template.clone();
    env.sender_qualifier = r.isa.receiver_qualifier.clone();
    env.sender_id = r.isa.receiver_id.trim().to_owned();
    env.receiver_qualifier = r.isa.sender_qualifier.clone();
    env.receiver_id = r.isa.sender_id.trim().to_owned();
    if let Some(gs) = gs {
        env.gs_sender = gs.receiver.clone();
        env.gs_receiver = gs.sender.clone();
    }
    env.ack_requested = false;
    env
}

/// The sandbox payer's own details for its 835s.
fn payer_details() -> PayerDetails {
    PayerDetails {
        address: Address {
            line1: "1 SANDBOX PLAZA".into(),
            line2: None,
            city: "SPRINGFIELD".into(),
            state: "IL".into(),
            zip: "627040001".into(),
        },
        contact_name: "SANDBOX EDI SUPPORT".into(),
        contact_phone: Some("8005550100".into()),
        contact_email: None,
        eft: None,
    }
}

/// The payer's claim control number for a claim (stable across runs).
pub fn payer_claim_number(claim_id: &str) -> String {
    let digest = Sha256::digest(claim_id.as_bytes());
    let mut n = [0u8; 8];
    n.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    format!("SBX{:012}", u64::from_be_bytes(n) % 1_000_000_000_000)
}

fn pct(amount: Decimal, percent: u8) -> Decimal {
    (amount * Decimal::from(percent) / Decimal::ONE_HUNDRED).round_dp(2)
}

fn adjustment(group: &str, reason: &str, amount: Decimal) -> Adjustment835 {
    Adjustment835 {
        group: group.into(),
        reason: reason.into(),
        amount,
        quantity: None,
    }
}

/// CLP06 from the 837's SBR09: the 835 has its own, shorter list, without
/// the commercial (CI) and Blue Cross (BL) codes, which a payer reports as
/// the plan type it adjudicated under (here PPO, 12).
fn filing_835(sbr09: &str) -> &str {
    if crate::x12::write835::CLAIM_FILING_835.contains(&sbr09) {
        sbr09
    } else {
        "12"
    }
}

/// How the 835 settles one accepted claim, allowing `allowed_percent`.
pub fn adjudicate(claim: &Claim, rules: &Rules, allowed_percent: u8) -> ClaimPayment {
    let patient = match &claim.patient {
        Some(p) => PatientRef {
            last_name: p.last_name.clone(),
            first_name: p.first_name.clone(),
            member_id: claim.subscriber.member_id.clone(),
        },
        None => PatientRef {
            last_name: claim.subscriber.last_name.clone(),
            first_name: claim.subscriber.first_name.clone(),
            member_id: claim.subscriber.member_id.clone(),
        },
    };
    let (facility, frequency) = match claim.kind {
        ClaimKind::Professional => (claim.place_of_service.clone(), claim.frequency_code.clone()),
        ClaimKind::Institutional => (claim.type_of_bill.clone(), claim.frequency_code.clone()),
    };
    let mut payment = ClaimPayment {
        claim_id: claim.id.as_str().into(),
        status: "1".into(),
        charge: claim.total_charge,
        paid: Decimal::ZERO,
        patient_responsibility: None,
        filing: filing_835(&claim.subscriber.claim_filing).into(),
        payer_claim_number: Some(payer_claim_number(&claim.id).into()),
        facility: facility.map(Into::into),
        frequency: Some(frequency.into()),
        statement_from: claim.statement_from,
        statement_to: claim.statement_to,
        patient: Some(patient),
        ..ClaimPayment::default()
    };
    if picked("deny", &claim.id, rules.deny_percent) {
        // Denied whole: a contractual adjustment of the full charge.
        const DENIALS: [(&str, Option<&str>); 4] = [
            ("50", Some("N115")),
            ("29", None),
            ("16", Some("MA130")),
            ("197", Some("N54")),
        ];
        let (reason, remark) =
            DENIALS[usize::from(score("deny-reason", &claim.id)) % DENIALS.len()];
        payment.status = "4".into();
        payment
            .adjustments
            .push(adjustment("CO", reason, claim.total_charge));
        payment.remarks.extend(remark.map(Into::into));
        return payment;
    }
    let (allowed_percent, coinsurance_percent) =
        if picked("full-pay", &claim.id, rules.full_pay_percent) {
            (100, 0)
        } else {
            (allowed_percent, rules.coinsurance_percent)
        };
    let mut line_charges = Decimal::ZERO;
    let mut coinsurance = Decimal::ZERO;
    for line in &claim.lines {
        let allowed = pct(line.charge, allowed_percent);
        let patient_share = pct(allowed, coinsurance_percent);
        let mut adjustments = LineAdjustments::new();
        if line.charge > allowed {
            adjustments.push(adjustment("CO", "45", line.charge - allowed));
        }
        if patient_share > Decimal::ZERO {
            adjustments.push(adjustment("PR", "2", patient_share));
        }
        let procedure = match &line.procedure {
            Some(p) => std::iter::once(p.qualifier.as_str())
                .chain(std::iter::once(p.code.as_str()))
                .chain(p.modifiers.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(":"),
            None => format!("NU:{}", line.revenue_code.as_deref().unwrap_or_default()),
        };
        payment.lines.push(LinePayment {
            procedure: procedure.into(),
            charge: line.charge,
            paid: allowed - patient_share,
            revenue_code: line
                .revenue_code
                .as_deref()
                .filter(|_| line.procedure.is_some())
                .map(Into::into),
            units: Some(line.units),
            service_date: line.service_date,
            line_control: line.line_control_number.as_deref().map(Into::into),
            allowed: Some(allowed),
            adjustments,
            remarks: LineRemarks::new(),
        });
        line_charges += line.charge;
        coinsurance += patient_share;
        payment.paid += allowed - patient_share;
    }
    if line_charges != claim.total_charge {
        // Lines that do not add up to the claim: the payer settles the
        // difference at claim level rather than paying it.
        payment
            .adjustments
            .push(adjustment("CO", "45", claim.total_charge - line_charges));
    }
    if coinsurance > Decimal::ZERO {
        payment.patient_responsibility = Some(coinsurance);
    }
    payment
}

/// A payment taken back (CLP02 22): every amount negated.
pub fn reversal_of(p: &ClaimPayment) -> ClaimPayment {
    let neg = |a: &Adjustment835| Adjustment835 {
        amount: -a.amount,
        ..a.clone()
    };
    ClaimPayment {
        status: "22".into(),
        charge: -p.charge,
        paid: -p.paid,
        patient_responsibility: p.patient_responsibility.map(|d| -d),
        adjustments: p.adjustments.iter().map(neg).collect(),
        lines: p
            .lines
            .iter()
            .map(|l| LinePayment {
                charge: -l.charge,
                paid: -l.paid,
                allowed: l.allowed.map(|d| -d),
                units: l.units.map(|d| -d),
                adjustments: l.adjustments.iter().map(neg).collect(),
                ..l.clone()
            })
            .collect(),
        ..p.clone()
    }
}

/// A remittance paying `claims` by check.
fn remittance(
    r: &Received,
    claims: Vec<ClaimPayment>,
    trace: String,
    date: NaiveDate,
) -> Remittance {
    let amount = claims.iter().map(|c| c.paid).sum::<Decimal>();
    let payee = r.claims.first().map(|c| &c.claim.billing_provider);
    // BPR02 cannot be negative: a reversal that takes back more than the
    // file pays is carried as a forwarding balance (PLB FB).
    let mut provider_adjustments = Vec::new();
    let amount = if amount < Decimal::ZERO {
        provider_adjustments.push(ProviderAdjustment {
            provider: payee.map(|b| b.npi.clone()).unwrap_or_default(),
            fiscal_date: NaiveDate::from_ymd_opt(date.year(), 12, 31),
            reason: "FB".into(),
            reference: Some(trace.clone()),
            amount,
        });
        Decimal::ZERO
    } else {
        amount
    };
    let (handling, method) = if amount > Decimal::ZERO {
        ("C", "CHK")
    } else {
        ("H", "NON")
    };
    Remittance {
        handling: handling.into(),
        amount,
        credit_debit: "C".into(),
        method: method.into(),
        payment_date: Some(date),
        trace,
        payer_trace_id: "1999999999".into(),
        production_date: Some(date),
        payer_name: "SANDBOX HEALTH PLAN".into(),
        payer_id: Some(r.isa.receiver_id.trim().to_owned()),
        payee_name: payee.map(|b| b.name.clone()).unwrap_or_default(),
        payee_id: payee.map(|b| b.npi.clone()),
        claims,
        provider_adjustments,
        payer_details: Some(Box::new(payer_details())),
        ..Remittance::default()
    }
}

/// The 999s for an 837: one per functional group. A set is rejected when
/// the payer could not read one of its claims (IK3 at that claim), or when
/// `reject_set_percent` picks it (IK3 and IK4 at its first claim's CLM02).
/// Also returns the rejected sets, as (GS06, ST02).
fn acks_999<'r>(r: &'r Received, rules: &Rules) -> (Vec<Ack999>, Vec<(&'r str, &'r str)>) {
    let mut rejected_sets: Vec<(&str, &str)> = Vec::new();
    let acks: Vec<Ack999> = r
        .groups
        .iter()
        .map(|gs| {
            let sets: Vec<SetAck> = r
                .sets
                .iter()
                .filter(|s| s.group == gs.control)
                .map(|s| {
                    let mut errors: Vec<SegmentError> = s
                        .unreadable
                        .iter()
                        .map(|(position, _)| SegmentError {
                            segment: "CLM".into(),
                            position: *position,
                            loop_id: "2300".into(),
                            code: "8".into(),
                            ..SegmentError::default()
                        })
                        .collect();
                    let picked_set = picked(
                        "reject-set",
                        &format!("{}/{}", s.group, s.set),
                        rules.reject_set_percent,
                    );
                    if picked_set && errors.is_empty() {
                        if let Some(c) = r
                            .claims
                            .iter()
                            .find(|c| c.set == s.set && c.group == s.group)
                        {
                            errors.push(SegmentError {
                                segment: "CLM".into(),
                                position: c.position,
                                loop_id: "2300".into(),
                                code: "8".into(),
                                context: Vec::new(),
                                elements: vec![crate::model::response::ElementError {
                                    element: 2,
                                    component: None,
                                    repetition: None,
                                    reference: "782".into(),
                                    code: "7".into(),
                                }],
                            });
                        }
                    }
                    let rejected = !errors.is_empty();
                    if rejected {
                        rejected_sets.push((&s.group, &s.set));
                    }
                    SetAck {
                        set_id: "837".into(),
                        set: s.set.clone(),
                        errors,
                        status: if rejected { "R" } else { "A" }.into(),
                        codes: if rejected {
                            vec!["5".into()]
                        } else {
                            Vec::new()
                        },
                        // AK203 is written with the group's version.
                        version: gs.version.clone(),
                    }
                })
                .collect();
            let accepted = sets.iter().filter(|s| s.status == "A").count();
            let n = u32::try_from(sets.len()).unwrap_or(u32::MAX);
            let accepted_n = u32::try_from(accepted).unwrap_or(u32::MAX);
            Ack999 {
                functional_id: gs.functional_id.clone(),
                group: gs.control.clone(),
                version: gs.version.clone(),
                status: match (accepted, sets.len()) {
                    (a, n) if a == n => "A",
                    (0, _) => "R",
                    _ => "P",
                }
                .into(),
                sets,
                sets_included: n,
                sets_received: n,
                sets_accepted: accepted_n,
                ..Ack999::default()
            }
        })
        .collect();
    (acks, rejected_sets)
}

/// The payer's answers to one 837 file.
pub fn answer(
    r: &Received,
    rules: &Rules,
    template: &Envelope,
    now: NaiveDateTime,
    numbers: &mut dyn ControlNumbers,
) -> Result<Answers, PayerError> {
    let mut answers = Answers::default();
    let first_gs = r.groups.first();
    let env = answer_envelope(template, r, first_gs);

    if r.isa.ack_requested {
        let ta1 = Ta1 {
            envelope: Default::default(),
            interchange: r.isa.control.clone(),
            date: r.isa.date.clone(),
            time: r.isa.time.clone(),
            code: "A".into(),
            note: "000".into(),
        };
        let mut out = Vec::new();
        write_ta1(&env, now, numbers, &ta1, &mut out)?;
        answers.ta1 = Some(out);
    }

    let (acks, rejected_sets) = acks_999(r, rules);
    if !acks.is_empty() {
        let mut out = Vec::new();
        write_999(&env, now, numbers, &acks, &mut out)?;
        answers.ack = Some(out);
    }

    // 277CA: the claims of accepted sets, each accepted or rejected.
    let live: Vec<&ReceivedClaim> = r
        .claims
        .iter()
        .filter(|c| !rejected_sets.contains(&(c.group.as_str(), c.set.as_str())))
        .collect();
    if live.is_empty() {
        return Ok(answers);
    }
    let today = now.date();
    let status_of =
        |c: &ReceivedClaim, category: &str, code: &str, entity: Option<&str>| ClaimStatus {
            claim_id: c.claim.id.clone(),
            payer_claim_number: Some(payer_claim_number(&c.claim.id)),
            statuses: vec![StatusCode {
                category: category.into(),
                code: code.into(),
                entity: entity.map(str::to_owned),
                date: Some(today),
                ..StatusCode::default()
            }],
            ..ClaimStatus::default()
        };
    let mut first: Vec<(&Claim, ClaimStatus)> = Vec::new();
    let mut second: Vec<(&Claim, ClaimStatus)> = Vec::new();
    let mut accepted: Vec<&ReceivedClaim> = Vec::new();
    for c in &live {
        if picked("reject", &c.claim.id, rules.reject_percent) {
            // A7:562 (entity's NPI), A7:21 (missing or invalid information) in turn.
            let mut s = if score("reject-reason", &c.claim.id).is_multiple_of(2) {
                status_of(c, "A7", "562", Some("85"))
            } else {
                status_of(c, "A7", "21", None)
            };
            s.payer_claim_number = None;
            first.push((&c.claim, s));
        } else {
            first.push((&c.claim, status_of(c, "A1", "19", Some("PR"))));
            accepted.push(c);
            if picked("second-277", &c.claim.id, rules.second_277_percent) {
                second.push((&c.claim, status_of(c, "A2", "20", None)));
            }
        }
    }
    // The 837's billing provider stands for the information receiver.
    let submitter_name = r
        .claims
        .first()
        .map_or("SUBMITTER", |c| c.claim.billing_provider.name.as_str());
    let reference = |suffix: &str| format!("{}{suffix}", r.isa.control.trim_start_matches('0'));
    let batch_trace = r
        .sets
        .first()
        .map(|s| s.reference.clone())
        .unwrap_or_default();
    // The payer's own transactions (277CA, 835) go out under its ISA ids in
    // GS too; only the 999 echoes the 837's GS ids back.
    let mut own = env.clone();
    own.gs_sender = r.isa.receiver_id.trim().to_owned();
    own.gs_receiver = r.isa.sender_id.trim().to_owned();
    let write_status = |claims: &[(&Claim, ClaimStatus)],
                        suffix: &str,
                        numbers: &mut dyn ControlNumbers|
     -> Result<Vec<u8>, PayerError> {
        let reference = reference(suffix);
        let mut out = Vec::new();
        write_277ca(
            &own,
            now,
            numbers,
            &Answer277 {
                reference: &reference,
                payer_name: "SANDBOX HEALTH PLAN",
                payer_id: r.isa.receiver_id.trim(),
                submitter_name,
                submitter_id: r.isa.sender_id.trim(),
                batch_trace: &batch_trace,
                received: today,
                claims,
            },
            &mut out,
        )?;
        Ok(out)
    };
    answers.status = Some(write_status(&first, "A", numbers)?);
    if !second.is_empty() {
        answers.later_status = Some(write_status(&second, "B", numbers)?);
    }

    // 835: every accepted claim paid or denied; some payments reversed and
    // corrected in a later 835.
    if accepted.is_empty() {
        return Ok(answers);
    }
    let payments: Vec<ClaimPayment> = accepted
        .iter()
        .map(|c| adjudicate(&c.claim, rules, rules.allowed_percent))
        .collect();
    let mut retro = Vec::new();
    for (c, p) in accepted.iter().zip(&payments) {
        if p.status == "1" && picked("reverse", &c.claim.id, rules.reversal_percent) {
            retro.push(reversal_of(p));
            let lower = rules.allowed_percent.saturating_sub(10);
            // The correction pays less: never denied, never in full.
            let correction = Rules {
                deny_percent: 0,
                full_pay_percent: 0,
                ..rules.clone()
            };
            retro.push(adjudicate(&c.claim, &correction, lower));
        }
    }
    let write_remit = |claims: Vec<ClaimPayment>,
                       trace: String,
                       numbers: &mut dyn ControlNumbers|
     -> Result<Vec<u8>, PayerError> {
        let mut out = Vec::new();
        let mut w = Writer835::begin(&own, now, numbers, &mut out)?;
        w.write(numbers, &remittance(r, claims, trace, today), &mut out)?;
        w.finish(&mut out)?;
        Ok(out)
    };
    answers.remit = Some(write_remit(payments, reference("P"), numbers)?);
    if !retro.is_empty() {
        answers.later_remit = Some(write_remit(retro, reference("R"), numbers)?);
    }
    Ok(answers)
}

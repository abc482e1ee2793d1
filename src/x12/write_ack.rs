//! TA1 and 999 writers: what a payer's gateway answers to an 837 — the
//! built-in sandbox payer and the tests use them, and a payer's EDI team
//! may too. No I/O: segments are appended to the caller's buffer.
//!
//! The 999 is 005010X231A1; the bad value an IK404 may quote is never
//! written (the model does not keep it).

use chrono::NaiveDateTime;

use super::emit::Emitter;
use super::write837::{check_envelope, write_isa};
use super::{ControlNumbers, Envelope, WriteError};
use crate::model::response::{Ack999, Ta1};

const VERSION_999: &str = "005010X231A1";

fn value_error(segment: &'static str) -> WriteError {
    WriteError::Envelope {
        field: segment,
        value: String::new(),
        problem: "holds a delimiter or a non-ASCII character",
    }
}

/// ISA and GS of an answer with one functional group: the emitter, the
/// ISA13 and the GS06 used. The 835 writer opens its interchange here too.
pub(crate) fn open_interchange(
    env: &Envelope,
    now: NaiveDateTime,
    numbers: &mut dyn ControlNumbers,
    functional_id: &str,
    version: &str,
    out: &mut Vec<u8>,
) -> Result<(Emitter, u32, String), WriteError> {
    let mut em = Emitter::new(env.delimiters, env.line_break);
    check_envelope(env, &em)?;
    let control = numbers.interchange()?;
    write_isa(env, now, control, out);
    let group = numbers.group()?.to_string();
    em.seg(out, "GS")
        .el(functional_id)
        .el(&env.gs_sender)
        .el(&env.gs_receiver)
        .date(now.date())
        .el(&now.format("%H%M").to_string())
        .el(&group)
        .el("X")
        .el(version)
        .end()
        .map_err(|b| value_error(b.segment))?;
    Ok((em, control, group))
}

/// GE and IEA closing what [`open_interchange`] opened.
pub(crate) fn close_interchange(
    em: &mut Emitter,
    sets: usize,
    group: &str,
    control: u32,
    out: &mut Vec<u8>,
) -> Result<(), WriteError> {
    em.seg(out, "GE")
        .num(u32::try_from(sets).unwrap_or(u32::MAX))
        .el(group)
        .end()
        .map_err(|b| value_error(b.segment))?;
    em.seg(out, "IEA")
        .el("1")
        .el(&format!("{control:09}"))
        .end()
        .map_err(|b| value_error(b.segment))
}

/// An interchange holding one TA1 and no functional group.
pub fn write_ta1(
    env: &Envelope,
    now: NaiveDateTime,
    numbers: &mut dyn ControlNumbers,
    ta1: &Ta1,
    out: &mut Vec<u8>,
) -> Result<u32, WriteError> {
    let mut em = Emitter::new(env.delimiters, env.line_break);
    check_envelope(env, &em)?;
    let control = numbers.interchange()?;
    write_isa(env, now, control, out);
    em.seg(out, "TA1")
        .el(&ta1.interchange)
        .el(&ta1.date)
        .el(&ta1.time)
        .el(&ta1.code)
        .el(&ta1.note)
        .end()
        .map_err(|b| value_error(b.segment))?;
    em.seg(out, "IEA")
        .el("0")
        .el(&format!("{control:09}"))
        .end()
        .map_err(|b| value_error(b.segment))?;
    Ok(control)
}

/// An interchange with one FA group holding one 999 per acknowledgment
/// (each answers one of the partner's functional groups).
pub fn write_999(
    env: &Envelope,
    now: NaiveDateTime,
    numbers: &mut dyn ControlNumbers,
    acks: &[Ack999],
    out: &mut Vec<u8>,
) -> Result<u32, WriteError> {
    let (mut em, control, group) = open_interchange(env, now, numbers, "FA", VERSION_999, out)?;
    let err = |b: super::emit::BadValue| value_error(b.segment);
    for ack in acks {
        let st02 = format!("{:04}", numbers.transaction_set()?);
        em.set_segments = 0;
        em.seg(out, "ST")
            .el("999")
            .el(&st02)
            .el(VERSION_999)
            .end()
            .map_err(err)?;
        em.seg(out, "AK1")
            .el(&ack.functional_id)
            .el(&ack.group)
            .el(&ack.version)
            .end()
            .map_err(err)?;
        for set in &ack.sets {
            em.seg(out, "AK2")
                .el(&set.set_id)
                .el(&set.set)
                .opt(Some(ack.version.as_str()).filter(|v| !v.is_empty()))
                .end()
                .map_err(err)?;
            for e in &set.errors {
                em.seg(out, "IK3")
                    .el(&e.segment)
                    .num(e.position)
                    .opt(Some(e.loop_id.as_str()).filter(|l| !l.is_empty()))
                    .el(&e.code)
                    .end()
                    .map_err(err)?;
                for c in &e.context {
                    let (name, reference) = c.split_once('=').unwrap_or((c.as_str(), ""));
                    em.seg(out, "CTX")
                        .comp(&[name, reference])
                        .end()
                        .map_err(err)?;
                }
                for el in &e.elements {
                    let position = el.element.to_string();
                    let component = el.component.map(|c| c.to_string()).unwrap_or_default();
                    let repetition = el.repetition.map(|r| r.to_string()).unwrap_or_default();
                    em.seg(out, "IK4")
                        .comp(&[&position, &component, &repetition])
                        .opt(Some(el.reference.as_str()).filter(|r| !r.is_empty()))
                        .el(&el.code)
                        .end()
                        .map_err(err)?;
                }
            }
            let mut ik5 = em.seg(out, "IK5");
            ik5.el(&set.status);
            for c in &set.codes {
                ik5.el(c);
            }
            ik5.end().map_err(err)?;
        }
        let mut ak9 = em.seg(out, "AK9");
        ak9.el(&ack.status)
            .num(ack.sets_included)
            .num(ack.sets_received)
            .num(ack.sets_accepted);
        for c in &ack.codes {
            ak9.el(c);
        }
        ak9.end().map_err(err)?;
        let count = (em.set_segments + 1).to_string();
        em.seg(out, "SE").el(&count).el(&st02).end().map_err(err)?;
    }
    close_interchange(&mut em, acks.len(), &group, control, out)?;
    Ok(control)
}

const VERSION_277CA: &str = "005010X214";

/// What one 277CA answers: an 837 transaction set of the partner's, claim
/// by claim. The claims carry what loop 2200D must repeat (the patient's
/// name and member id, the billing provider, service dates); they come
/// from the 837 that is being answered and are written nowhere else.
pub struct Answer277<'a> {
    /// BHT03 of this 277CA.
    pub reference: &'a str,
    /// The payer (information source): name and payer id.
    pub payer_name: &'a str,
    pub payer_id: &'a str,
    /// The 837's submitter (information receiver): name and id.
    pub submitter_name: &'a str,
    pub submitter_id: &'a str,
    /// TRN02 for the receiver level: the 837's BHT03, which ties the batch back.
    pub batch_trace: &'a str,
    /// When the 837 was received and processed.
    pub received: chrono::NaiveDate,
    pub claims: &'a [(&'a crate::model::Claim, crate::model::response::ClaimStatus)],
}

/// An interchange with one HN group and one 277CA.
pub fn write_277ca(
    env: &Envelope,
    now: NaiveDateTime,
    numbers: &mut dyn ControlNumbers,
    answer: &Answer277<'_>,
    out: &mut Vec<u8>,
) -> Result<u32, WriteError> {
    use crate::model::EntityType;
    use rust_decimal::Decimal;

    let (mut em, control, group) = open_interchange(env, now, numbers, "HN", VERSION_277CA, out)?;
    let err = |b: super::emit::BadValue| value_error(b.segment);
    let hhmm = now.format("%H%M").to_string();
    let st02 = format!("{:04}", numbers.transaction_set()?);
    em.set_segments = 0;
    em.seg(out, "ST")
        .el("277")
        .el(&st02)
        .el(VERSION_277CA)
        .end()
        .map_err(err)?;
    em.seg(out, "BHT")
        .el("0085")
        .el("08")
        .el(answer.reference)
        .date(now.date())
        .el(&hhmm)
        .el("TH")
        .end()
        .map_err(err)?;
    // 2000A/2100A: the payer.
    em.seg(out, "HL")
        .el("1")
        .skip(1)
        .el("20")
        .el("1")
        .end()
        .map_err(err)?;
    em.seg(out, "NM1")
        .el("PR")
        .el("2")
        .el(answer.payer_name)
        .skip(4)
        .el("PI")
        .el(answer.payer_id)
        .end()
        .map_err(err)?;
    em.seg(out, "TRN")
        .el("1")
        .el(answer.reference)
        .end()
        .map_err(err)?;
    em.seg(out, "DTP")
        .el("050")
        .el("D8")
        .date(answer.received)
        .end()
        .map_err(err)?;
    em.seg(out, "DTP")
        .el("009")
        .el("D8")
        .date(now.date())
        .end()
        .map_err(err)?;

    let rejected =
        |s: &crate::model::response::ClaimStatus| s.statuses.iter().any(|c| c.is_rejection());
    let totals = |claims: &[(&crate::model::Claim, crate::model::response::ClaimStatus)]| {
        let mut t = (0u32, Decimal::ZERO, 0u32, Decimal::ZERO);
        for (c, s) in claims {
            if rejected(s) {
                t.2 += 1;
                t.3 += c.total_charge;
            } else {
                t.0 += 1;
                t.1 += c.total_charge;
            }
        }
        t
    };
    // Batch-level status and totals (2200B), then per provider (2200C).
    let write_totals = |em: &mut Emitter,
                        out: &mut Vec<u8>,
                        t: (u32, Decimal, u32, Decimal),
                        qty: (&'static str, &'static str)|
     -> Result<(), WriteError> {
        if t.0 > 0 {
            em.seg(out, "QTY").el(qty.0).num(t.0).end().map_err(err)?;
        }
        if t.2 > 0 {
            em.seg(out, "QTY").el(qty.1).num(t.2).end().map_err(err)?;
        }
        if t.0 > 0 {
            em.seg(out, "AMT").el("YU").dec(t.1).end().map_err(err)?;
        }
        if t.2 > 0 {
            em.seg(out, "AMT").el("YY").dec(t.3).end().map_err(err)?;
        }
        Ok(())
    };
    let all = totals(answer.claims);
    em.seg(out, "HL")
        .el("2")
        .el("1")
        .el("21")
        .el("1")
        .end()
        .map_err(err)?;
    em.seg(out, "NM1")
        .el("41")
        .el("2")
        .el(answer.submitter_name)
        .skip(4)
        .el("46")
        .el(answer.submitter_id)
        .end()
        .map_err(err)?;
    em.seg(out, "TRN")
        .el("2")
        .el(answer.batch_trace)
        .end()
        .map_err(err)?;
    em.seg(out, "STC")
        .comp(&["A1", "19", "PR"])
        .date(now.date())
        .el("WQ")
        .dec(all.1 + all.3)
        .end()
        .map_err(err)?;
    write_totals(&mut em, out, all, ("90", "AA"))?;

    let mut hl = 2u32;
    let mut i = 0;
    while i < answer.claims.len() {
        // One 2000C per run of claims with the same billing provider.
        let billing = &answer.claims[i].0.billing_provider;
        let run = answer.claims[i..]
            .iter()
            .take_while(|(c, _)| &c.billing_provider == billing)
            .count();
        let claims = &answer.claims[i..i + run];
        hl += 1;
        let provider_hl = hl;
        em.seg(out, "HL")
            .num(provider_hl)
            .el("2")
            .el("19")
            .el("1")
            .end()
            .map_err(err)?;
        let person = billing.entity == EntityType::Person;
        em.seg(out, "NM1")
            .el("85")
            .el(if person { "1" } else { "2" })
            .el(&billing.name)
            .opt(billing.first_name.as_deref().filter(|_| person))
            .skip(3)
            .el("XX")
            .el(&billing.npi)
            .end()
            .map_err(err)?;
        let t = totals(claims);
        // 2200C: pyx12's X214 map insists on the situational TRN and STC here.
        em.seg(out, "TRN")
            .el("1")
            .el(&format!("{}-{provider_hl}", answer.reference))
            .end()
            .map_err(err)?;
        em.seg(out, "STC")
            .comp(&["A1", "19", "85"])
            .skip(1) // STC02 is not used at this level
            .el("WQ")
            .dec(t.1 + t.3)
            .end()
            .map_err(err)?;
        write_totals(&mut em, out, t, ("QA", "QC"))?;
        for (claim, status) in claims {
            hl += 1;
            em.seg(out, "HL")
                .num(hl)
                .num(provider_hl)
                .el("PT")
                .end()
                .map_err(err)?;
            let (last, first) = match &claim.patient {
                Some(p) => (p.last_name.as_str(), p.first_name.as_deref()),
                None => (
                    claim.subscriber.last_name.as_str(),
                    claim.subscriber.first_name.as_deref(),
                ),
            };
            em.seg(out, "NM1")
                .el("QC")
                .el("1")
                .el(last)
                .opt(first)
                .skip(3)
                .el("MI")
                .el(&claim.subscriber.member_id)
                .end()
                .map_err(err)?;
            em.seg(out, "TRN")
                .el("2")
                .el(&claim.id)
                .end()
                .map_err(err)?;
            for stc in &status.statuses {
                let parts: Vec<&str> = [
                    Some(stc.category.as_str()),
                    Some(stc.code.as_str()),
                    stc.entity.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect();
                em.seg(out, "STC")
                    .comp(&parts)
                    .date(stc.date.unwrap_or(now.date()))
                    .el(stc.action.as_deref().unwrap_or(if stc.is_rejection() {
                        "U"
                    } else {
                        "WQ"
                    }))
                    .dec(stc.amount.unwrap_or(claim.total_charge))
                    .end()
                    .map_err(err)?;
            }
            if let Some(n) = &status.payer_claim_number {
                em.seg(out, "REF").el("1K").el(n).end().map_err(err)?;
            }
            let from = claim
                .statement_from
                .or_else(|| claim.lines.iter().filter_map(|l| l.service_date).min());
            let to = claim.statement_to.or_else(|| {
                claim
                    .lines
                    .iter()
                    .filter_map(|l| l.service_date_end.or(l.service_date))
                    .max()
            });
            match (from, to) {
                (Some(f), Some(t)) if f != t => em
                    .seg(out, "DTP")
                    .el("472")
                    .el("RD8")
                    .date_range(f, t)
                    .end()
                    .map_err(err)?,
                (Some(f), _) => em
                    .seg(out, "DTP")
                    .el("472")
                    .el("D8")
                    .date(f)
                    .end()
                    .map_err(err)?,
                _ => {}
            }
        }
        i += run;
    }
    let count = (em.set_segments + 1).to_string();
    em.seg(out, "SE").el(&count).el(&st02).end().map_err(err)?;
    close_interchange(&mut em, 1, &group, control, out)?;
    Ok(control)
}

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
    let mut em = Emitter::new(env.delimiters, env.line_break);
    check_envelope(env, &em)?;
    let control = numbers.interchange()?;
    write_isa(env, now, control, out);
    let group = numbers.group()?.to_string();
    let err = |b: super::emit::BadValue| value_error(b.segment);
    em.seg(out, "GS")
        .el("FA")
        .el(&env.gs_sender)
        .el(&env.gs_receiver)
        .date(now.date())
        .el(&now.format("%H%M").to_string())
        .el(&group)
        .el("X")
        .el(VERSION_999)
        .end()
        .map_err(err)?;
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
    em.seg(out, "GE")
        .num(acks.len() as u32)
        .el(&group)
        .end()
        .map_err(err)?;
    em.seg(out, "IEA")
        .el("1")
        .el(&format!("{control:09}"))
        .end()
        .map_err(err)?;
    Ok(control)
}

//! The 837P (005010X222A1) and 837I (005010X223A2) writer.
//!
//! One interchange per file: ISA, one GS per claim kind, as many ST sets as
//! needed (at most [`MAX_CLAIMS_PER_SET`] claims each, the TR3's
//! recommendation), the HL hierarchy billing provider → subscriber → patient.
//! Consecutive claims of the same billing provider share one 2000A loop; each
//! claim gets its own 2000B so its segment range is contiguous, which is what
//! lets a 999's IK3 be pinned to one claim later.
//!
//! Streaming: [`Writer837::write_claim`] appends one claim's segments to the
//! caller's buffer; the caller drains it to disk (or into the encryptor)
//! between claims, so memory does not grow with the batch. A claim of
//! another kind than the open group's closes that group and opens one of its
//! own kind: callers that want one group per kind hand the claims over a kind
//! at a time (the translate pipeline reads its inputs once per kind, and
//! settles with [`Writer837::check_claim`] at once whether a claim it writes
//! later will write).

use chrono::{NaiveDate, NaiveDateTime};

use super::emit::{push_date, BadValue, Codes, Emitter, Head};
use super::Delimiters;
use crate::model::{
    Address, BillingProvider, Claim, ClaimKind, EntityType, Facility, IcdVersion, OtherPayer,
    Patient, Payer, Procedure, Provider, Receiver, ServiceLine, Submitter, Subscriber,
};

/// The TR3 recommends at most 5000 CLM per transaction set.
pub const MAX_CLAIMS_PER_SET: usize = 5000;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("claim {claim}: {segment}{element:02} holds a delimiter or a non-ASCII character")]
    Value {
        claim: String,
        segment: &'static str,
        element: usize,
    },
    #[error("envelope: {field} {value:?} {problem}")]
    Envelope {
        field: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error(transparent)]
    ControlNumber(#[from] ControlNumberError),
    /// An 835 amount that does not add up; nothing of it may be sent.
    #[error("{what} does not balance: {stated} stated, {computed} computed ({rule}; off by {})", stated - computed)]
    Unbalanced {
        what: String,
        stated: rust_decimal::Decimal,
        computed: rust_decimal::Decimal,
        rule: &'static str,
    },
    /// Payment data an 835 cannot be written from.
    #[error("payment {payment}: {problem}")]
    Payment { payment: String, problem: String },
}

/// A control number could not be allocated (the ledger's allocator can fail).
#[derive(Debug, thiserror::Error)]
#[error("could not allocate a control number: {0}")]
pub struct ControlNumberError(pub String);

/// Where control numbers come from. The ledger allocates and commits them
/// before a file is written; `translate` previews with [`Sequential`].
pub trait ControlNumbers {
    /// ISA13, 1..=999_999_999.
    fn interchange(&mut self) -> Result<u32, ControlNumberError>;
    /// GS06.
    fn group(&mut self) -> Result<u32, ControlNumberError>;
    /// ST02.
    fn transaction_set(&mut self) -> Result<u32, ControlNumberError>;
}

/// Counts up from a starting number, separately for ISA13, GS06 and ST02.
#[derive(Debug, Clone)]
pub struct Sequential {
    next: [u32; 3],
}

impl Sequential {
    pub fn starting_at(n: u32) -> Self {
        Sequential {
            next: [n.max(1); 3],
        }
    }

    fn take(&mut self, i: usize) -> Result<u32, ControlNumberError> {
        let slot = self
            .next
            .get_mut(i)
            .ok_or_else(|| ControlNumberError("no such counter".into()))?;
        let n = *slot;
        if n > 999_999_999 {
            return Err(ControlNumberError("past 999999999".into()));
        }
        *slot += 1;
        Ok(n)
    }
}

impl ControlNumbers for Sequential {
    fn interchange(&mut self) -> Result<u32, ControlNumberError> {
        self.take(0)
    }
    fn group(&mut self) -> Result<u32, ControlNumberError> {
        self.take(1)
    }
    fn transaction_set(&mut self) -> Result<u32, ControlNumberError> {
        self.take(2)
    }
}

/// ISA15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum Usage {
    #[serde(rename = "T")]
    Test,
    #[serde(rename = "P")]
    Production,
}

/// Everything the envelope and header loops need, from the partner profile.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub sender_qualifier: String,
    pub sender_id: String,
    pub receiver_qualifier: String,
    pub receiver_id: String,
    pub gs_sender: String,
    pub gs_receiver: String,
    pub usage: Usage,
    /// ISA14: ask for a TA1.
    pub ack_requested: bool,
    pub delimiters: Delimiters,
    /// Write a line break after each segment terminator.
    pub line_break: bool,
    pub submitter: Submitter,
    pub receiver: Receiver,
}

impl Envelope {
    /// The envelope of an answer to this one: sender and receiver swapped
    /// (ISA and GS), no TA1 asked for. What a payer's 999, TA1 and 277CA
    /// carry back.
    pub fn reply(&self) -> Envelope {
        Envelope {
            sender_qualifier: self.receiver_qualifier.clone(),
            sender_id: self.receiver_id.clone(),
            receiver_qualifier: self.sender_qualifier.clone(),
            receiver_id: self.sender_id.clone(),
            gs_sender: self.gs_receiver.clone(),
            gs_receiver: self.gs_sender.clone(),
            ack_requested: false,
            ..self.clone()
        }
    }
}

/// Where one claim landed, for the ledger and for pinning 999 errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimPlacement {
    pub interchange: u32,
    pub group: u32,
    pub set: u32,
    /// Position of the claim's first segment (its 2000B HL) in the set, ST = 1.
    pub first_segment: u32,
    /// Position of its last segment.
    pub last_segment: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSummary {
    pub control: u32,
    /// BHT03, what 277CAs refer back to.
    pub reference: String,
    pub claims: usize,
    pub segments: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub control: u32,
    pub kind: ClaimKind,
    pub sets: Vec<SetSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterchangeSummary {
    pub control: u32,
    pub groups: Vec<GroupSummary>,
}

impl InterchangeSummary {
    pub fn claims(&self) -> usize {
        self.groups
            .iter()
            .flat_map(|g| &g.sets)
            .map(|s| s.claims)
            .sum()
    }
}

struct OpenSet {
    control: u32,
    reference: String,
    claims: usize,
    hl: u32,
    /// The billing provider of the open 2000A loop and its HL number.
    billing: Option<(u32, crate::model::Shared<BillingProvider>)>,
}

/// Writes one interchange of 837s. See the module docs.
pub struct Writer837 {
    env: Envelope,
    now: NaiveDateTime,
    em: Emitter,
    summary: InterchangeSummary,
    set: Option<OpenSet>,
    group_open: bool,
    max_claims_per_set: usize,
    /// Where [`Writer837::check_claim`] writes what it throws away.
    scratch: Vec<u8>,
    /// Segments this writer rendered before, kept to be copied again.
    memo: Memos,
}

impl Writer837 {
    /// Writes the ISA. `now` stamps ISA09/10, GS04/05 and BHT04/05.
    pub fn begin(
        env: Envelope,
        now: NaiveDateTime,
        numbers: &mut dyn ControlNumbers,
        out: &mut Vec<u8>,
    ) -> Result<Self, WriteError> {
        let em = Emitter::new(env.delimiters, env.line_break);
        check_envelope(&env, &em)?;
        let control = numbers.interchange()?;
        if !(1..=999_999_999).contains(&control) {
            return Err(WriteError::Envelope {
                field: "ISA13",
                value: control.to_string(),
                problem: "must be 1..=999999999",
            });
        }
        write_isa(&env, now, control, out);
        Ok(Writer837 {
            env,
            now,
            em,
            summary: InterchangeSummary {
                control,
                groups: Vec::new(),
            },
            set: None,
            group_open: false,
            max_claims_per_set: MAX_CLAIMS_PER_SET,
            scratch: Vec::new(),
            memo: Memos::default(),
        })
    }

    /// A writer that renders every segment value by value (the memo's
    /// test holds the two ways together).
    #[cfg(test)]
    fn without_memo(mut self) -> Self {
        self.memo.providers.misses = MEMO_TRIAL;
        self.memo.payers.misses = MEMO_TRIAL;
        self.memo.subscribers.misses = MEMO_TRIAL;
        self.memo.lines.misses = MEMO_TRIAL;
        self.memo.claims.misses = MEMO_TRIAL;
        self
    }

    /// A writer whose memos are never closed, however often they miss.
    #[cfg(test)]
    fn with_memo_open(mut self) -> Self {
        self.memo.providers.hits = u32::MAX / 2;
        self.memo.payers.hits = u32::MAX / 2;
        self.memo.subscribers.hits = u32::MAX / 2;
        self.memo.lines.hits = u32::MAX / 2;
        self.memo.claims.hits = u32::MAX / 2;
        self
    }

    /// Lowers the claims-per-set limit (tests use it to exercise splitting
    /// without writing 5000 claims; some partners ask for smaller sets).
    pub fn with_max_claims_per_set(mut self, n: usize) -> Self {
        self.max_claims_per_set = n.clamp(1, MAX_CLAIMS_PER_SET);
        self
    }

    /// Appends one claim. On error nothing of the claim is left in `out`.
    pub fn write_claim(
        &mut self,
        claim: &Claim,
        numbers: &mut dyn ControlNumbers,
        out: &mut Vec<u8>,
    ) -> Result<ClaimPlacement, WriteError> {
        self.ensure_set(claim.kind, numbers, out)?;
        let Some(set) = self.set.as_mut() else {
            return Err(ControlNumberError("no open transaction set".into()).into());
        };
        let saved_segments = self.em.set_segments;
        let new_billing = match &set.billing {
            // The very same (shared) provider, or an equal one.
            Some((hl, b)) if *b == claim.billing_provider => Err(*hl),
            _ => Ok(set.hl + 1),
        };
        let start = out.len();
        let mut w = ClaimWriter {
            em: &mut self.em,
            out,
            kind: claim.kind,
            memo: Some(&mut self.memo),
        };
        let result = (|| {
            let parent = match new_billing {
                Ok(hl) => {
                    w.billing_provider(hl, &claim.billing_provider)?;
                    hl
                }
                Err(hl) => hl,
            };
            let sub_hl = parent.max(set.hl) + 1;
            let first = w.em.set_segments + 1;
            w.claim(claim, parent, sub_hl)?;
            Ok::<_, BadValue>((first, sub_hl))
        })();
        match result {
            Ok((first, sub_hl)) => {
                if let Ok(hl) = new_billing {
                    set.billing = Some((hl, claim.billing_provider.clone()));
                }
                set.hl = sub_hl + u32::from(claim.patient.is_some());
                set.claims += 1;
                Ok(ClaimPlacement {
                    interchange: self.summary.control,
                    group: self.summary.groups.last().map_or(0, |g| g.control),
                    set: set.control,
                    first_segment: first,
                    last_segment: self.em.set_segments,
                })
            }
            Err(bad) => {
                out.truncate(start);
                self.em.set_segments = saved_segments;
                Err(value_error(claim, bad))
            }
        }
    }

    /// Whether `claim` can be written, without writing it or touching any
    /// count: a caller that writes this claim later, in its kind's own
    /// group, learns now what [`Writer837::write_claim`] would say.
    pub fn check_claim(&mut self, claim: &Claim) -> Result<(), WriteError> {
        let mut em = Emitter::new(self.env.delimiters, false);
        self.scratch.clear();
        let mut w = ClaimWriter {
            em: &mut em,
            out: &mut self.scratch,
            kind: claim.kind,
            memo: None,
        };
        w.billing_provider(1, &claim.billing_provider)
            .and_then(|()| w.claim(claim, 1, 2))
            .map_err(|bad| value_error(claim, bad))
    }

    /// Closes the open set, group and the interchange.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<InterchangeSummary, WriteError> {
        self.close_set(out);
        self.close_group(out);
        let groups = self.summary.groups.len().to_string();
        let control = format!("{:09}", self.summary.control);
        self.em
            .seg(out, "IEA")
            .el(&groups)
            .el(&control)
            .end()
            .map_err(|b| self.envelope_error(b))?;
        Ok(self.summary)
    }

    fn envelope_error(&self, b: BadValue) -> WriteError {
        WriteError::Envelope {
            field: b.segment,
            value: String::new(),
            problem: "holds a delimiter or a non-ASCII character",
        }
    }

    fn ensure_set(
        &mut self,
        kind: ClaimKind,
        numbers: &mut dyn ControlNumbers,
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        let group_kind = self.summary.groups.last().map(|g| g.kind);
        if group_kind != Some(kind) {
            self.close_set(out);
            self.close_group(out);
            self.open_group(kind, numbers, out)?;
        }
        let full = self
            .set
            .as_ref()
            .is_none_or(|s| s.claims >= self.max_claims_per_set);
        if full {
            self.close_set(out);
            self.open_set(kind, numbers, out)?;
        }
        Ok(())
    }

    fn open_group(
        &mut self,
        kind: ClaimKind,
        numbers: &mut dyn ControlNumbers,
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        let control = numbers.group()?;
        let (date, time) = (self.now.date(), self.now.format("%H%M").to_string());
        self.em
            .seg(out, "GS")
            .el("HC")
            .el(&self.env.gs_sender)
            .el(&self.env.gs_receiver)
            .date(date)
            .el(&time)
            .el(&control.to_string())
            .el("X")
            .el(kind.version())
            .end()
            .map_err(|b| self.envelope_error(b))?;
        self.summary.groups.push(GroupSummary {
            control,
            kind,
            sets: Vec::new(),
        });
        self.group_open = true;
        Ok(())
    }

    fn close_group(&mut self, out: &mut Vec<u8>) {
        if !std::mem::take(&mut self.group_open) {
            return;
        }
        if let Some(g) = self.summary.groups.last() {
            let (sets, control) = (g.sets.len().to_string(), g.control.to_string());
            // Digits we made: they cannot hold delimiters.
            let _ = self.em.seg(out, "GE").el(&sets).el(&control).end();
        }
    }

    fn open_set(
        &mut self,
        kind: ClaimKind,
        numbers: &mut dyn ControlNumbers,
        out: &mut Vec<u8>,
    ) -> Result<(), WriteError> {
        let control = numbers.transaction_set()?;
        let st02 = format!("{control:04}");
        let reference = format!("{:09}{:04}", self.summary.control, control);
        self.em.set_segments = 0;
        let env = &self.env;
        let time = self.now.format("%H%M").to_string();
        let result = (|| {
            let em = &mut self.em;
            em.seg(out, "ST")
                .el("837")
                .el(&st02)
                .el(kind.version())
                .end()?;
            em.seg(out, "BHT")
                .el("0019")
                .el("00")
                .el(&reference)
                .date(self.now.date())
                .el(&time)
                .el("CH")
                .end()?;
            let s = &env.submitter;
            em.seg(out, "NM1")
                .el("41")
                .el("2")
                .el(&s.name)
                .skip(4)
                .el("46")
                .el(&s.id)
                .end()?;
            let mut per = em.seg(out, "PER");
            per.el("IC").opt(s.contact_name.as_deref());
            if let Some(phone) = &s.phone {
                per.el("TE").el(phone);
            }
            if let Some(email) = &s.email {
                per.el("EM").el(email);
            }
            per.end()?;
            em.seg(out, "NM1")
                .el("40")
                .el("2")
                .el(&env.receiver.name)
                .skip(4)
                .el("46")
                .el(&env.receiver.id)
                .end()
        })();
        result.map_err(|b| self.envelope_error(b))?;
        self.set = Some(OpenSet {
            control,
            reference,
            claims: 0,
            hl: 0,
            billing: None,
        });
        Ok(())
    }

    fn close_set(&mut self, out: &mut Vec<u8>) {
        let Some(set) = self.set.take() else {
            return;
        };
        let count = (self.em.set_segments + 1).to_string();
        let st02 = format!("{:04}", set.control);
        // Digits we made: they cannot hold delimiters.
        let _ = self.em.seg(out, "SE").el(&count).el(&st02).end();
        if let Some(group) = self.summary.groups.last_mut() {
            group.sets.push(SetSummary {
                control: set.control,
                reference: set.reference,
                claims: set.claims,
                segments: self.em.set_segments,
            });
        }
    }
}

fn value_error(claim: &Claim, bad: BadValue) -> WriteError {
    WriteError::Value {
        claim: claim.id.clone(),
        segment: bad.segment,
        element: bad.element,
    }
}

pub(crate) fn check_envelope(env: &Envelope, em: &Emitter) -> Result<(), WriteError> {
    let fields: [(&'static str, &str, usize); 6] = [
        ("ISA05", &env.sender_qualifier, 2),
        ("ISA06", &env.sender_id, 15),
        ("ISA07", &env.receiver_qualifier, 2),
        ("ISA08", &env.receiver_id, 15),
        ("GS02", &env.gs_sender, 15),
        ("GS03", &env.gs_receiver, 15),
    ];
    for (field, value, max) in fields {
        let problem = if value.is_empty() {
            Some("is empty")
        } else if value.len() > max {
            Some("is too long")
        } else if !em.is_clean(value) {
            Some("holds a delimiter or a non-ASCII character")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(WriteError::Envelope {
                field,
                value: value.to_owned(),
                problem,
            });
        }
    }
    Ok(())
}

/// The ISA is fixed width: every field padded to its full length.
pub(crate) fn write_isa(env: &Envelope, now: NaiveDateTime, control: u32, out: &mut Vec<u8>) {
    let d = env.delimiters;
    let e = char::from(d.element);
    let mut date = Vec::with_capacity(8);
    push_date(&mut date, now.date());
    let yymmdd = String::from_utf8_lossy(date.get(2..).unwrap_or_default()).into_owned();
    let isa = format!(
        "ISA{e}00{e}{:10}{e}00{e}{:10}{e}{:2}{e}{:15}{e}{:2}{e}{:15}{e}{yymmdd}{e}{}{e}{}{e}00501{e}{control:09}{e}{}{e}{}{e}{}",
        "",
        "",
        env.sender_qualifier,
        env.sender_id,
        env.receiver_qualifier,
        env.receiver_id,
        now.format("%H%M"),
        char::from(d.repetition),
        if env.ack_requested { '1' } else { '0' },
        match env.usage {
            Usage::Test => 'T',
            Usage::Production => 'P',
        },
        char::from(d.component),
    );
    out.extend_from_slice(isa.as_bytes());
    out.push(d.segment);
    if env.line_break {
        out.push(b'\n');
    }
}

/// Writes the loops of one claim.
struct ClaimWriter<'a> {
    em: &'a mut Emitter,
    out: &'a mut Vec<u8>,
    kind: ClaimKind,
    /// The writer's rendered segments (None: render everything, as
    /// [`Writer837::check_claim`] does with an emitter of its own).
    memo: Option<&'a mut Memos>,
}

/// Segments a writer rendered before, by what they were rendered from: a
/// claim's rendering provider and payer are most often one of a handful
/// in a batch, and their segments were built value by value on every
/// claim. What is rendered depends on nothing but the value, the segment
/// heads and the writer's emitter (its delimiters and line breaks, fixed
/// for the writer's life), so an equal value renders the same bytes and
/// the same segment count: they are copied. Only what rendered without a
/// refusal is kept; anything else is rendered (and refused) every time.
#[derive(Default)]
struct Memos {
    providers: Memo<(&'static str, Option<&'static str>, Provider)>,
    payers: Memo<Payer>,
    subscribers: Memo<SbrKey>,
    lines: Memo<LineKey>,
    claims: Memo<ClmKey>,
}

/// What a CLM is rendered from after its id and charge (CLM03 on: the
/// place or type of bill, the frequency, the signature, assignment,
/// benefits and release codes, related causes and the accident's state),
/// most often one of a few per practice.
#[derive(PartialEq)]
struct ClmKey {
    professional: bool,
    facility: String,
    frequency: String,
    signature: bool,
    assignment: String,
    benefits: bool,
    release: String,
    causes: [String; 2],
    accident_state: String,
}

/// The values of a CLM's tail, as [`ClaimWriter::clm_tail`] writes them.
struct ClmTail<'c> {
    professional: bool,
    facility: &'c str,
    frequency: &'c str,
    signature: bool,
    assignment: &'c str,
    benefits: bool,
    release: &'c str,
    causes: [&'c str; 2],
    accident_state: &'c str,
}

impl ClmTail<'_> {
    /// `professional`: written as an 837P's (the writer's kind).
    fn of(c: &Claim, professional: bool) -> ClmTail<'_> {
        let cause = |i: usize| c.related_causes.get(i).map_or("", String::as_str);
        ClmTail {
            professional,
            facility: if professional {
                c.place_of_service.as_deref().unwrap_or("")
            } else {
                c.type_of_bill.as_deref().unwrap_or("")
            },
            frequency: &c.frequency_code,
            signature: c.provider_signature,
            assignment: &c.assignment,
            benefits: c.benefits_assigned,
            release: &c.release_of_information,
            causes: [cause(0), cause(1)],
            accident_state: c.accident_state.as_deref().unwrap_or(""),
        }
    }

    /// Whether `k` was made from a tail equal to this one.
    #[inline(always)]
    fn is(&self, k: &ClmKey) -> bool {
        k.professional == self.professional
            && k.signature == self.signature
            && k.benefits == self.benefits
            && k.facility == self.facility
            && k.frequency == self.frequency
            && k.assignment == self.assignment
            && k.release == self.release
            && k.causes[0] == self.causes[0]
            && k.causes[1] == self.causes[1]
            && k.accident_state == self.accident_state
    }

    fn key(&self) -> ClmKey {
        ClmKey {
            professional: self.professional,
            facility: self.facility.to_owned(),
            frequency: self.frequency.to_owned(),
            signature: self.signature,
            assignment: self.assignment.to_owned(),
            benefits: self.benefits,
            release: self.release.to_owned(),
            causes: self.causes.map(str::to_owned),
            accident_state: self.accident_state.to_owned(),
        }
    }
}

/// What a subscriber's SBR is rendered from.
#[derive(PartialEq)]
struct SbrKey {
    responsibility: &'static str,
    has_patient: bool,
    group_number: Option<String>,
    group_name: Option<String>,
    claim_filing: String,
}

/// What a service line's SV1 or SV2 is rendered from; amounts by their
/// exact representation (an equal one renders the same text anyway).
#[derive(PartialEq)]
struct LineKey {
    kind: ClaimKind,
    revenue_code: Option<String>,
    procedure: Option<Procedure>,
    charge: [u8; 16],
    unit_basis: String,
    units: [u8; 16],
    place_of_service: Option<String>,
    pointers: Vec<u8>,
}

impl LineKey {
    /// Whether `l`, in a claim of `kind`, is what this key was made from.
    fn is(&self, kind: ClaimKind, l: &ServiceLine) -> bool {
        self.kind == kind
            && self.charge == l.charge.serialize()
            && self.units == l.units.serialize()
            && self.procedure.as_ref() == l.procedure.as_ref()
            && self.pointers == l.diagnosis_pointers
            && self.unit_basis == l.unit_basis
            && self.place_of_service == l.place_of_service
            && self.revenue_code == l.revenue_code
    }

    fn of(kind: ClaimKind, l: &ServiceLine) -> LineKey {
        LineKey {
            kind,
            revenue_code: l.revenue_code.clone(),
            procedure: l.procedure.clone(),
            charge: l.charge.serialize(),
            unit_basis: l.unit_basis.clone(),
            units: l.units.serialize(),
            place_of_service: l.place_of_service.clone(),
            pointers: l.diagnosis_pointers.clone(),
        }
    }
}

/// Rendered segments kept per key: a few slots, filled in turn.
struct Memo<K> {
    slots: Vec<(K, Vec<u8>, u32)>,
    /// The slot the next miss fills once all are taken.
    next: usize,
    hits: u32,
    misses: u32,
}

impl<K> Default for Memo<K> {
    fn default() -> Self {
        Memo {
            slots: Vec::new(),
            next: 0,
            hits: 0,
            misses: 0,
        }
    }
}

/// Slots per [`Memo`].
const MEMO_SLOTS: usize = 8;
/// After this many misses, a memo that missed more often than it hit is
/// no longer asked nor filled (a batch of many providers in no order
/// would pay for the comparisons and copies and gain nothing).
const MEMO_TRIAL: u32 = 32;

impl<K> Memo<K> {
    /// Whether the memo is still in use.
    #[inline(always)]
    fn open(&self) -> bool {
        self.misses < MEMO_TRIAL || self.hits >= self.misses
    }

    /// The bytes and segment count rendered for a key `same` says is this one.
    #[inline(always)]
    fn find(&mut self, same: impl Fn(&K) -> bool) -> Option<(&[u8], u32)> {
        match self.slots.iter().find(|(k, _, _)| same(k)) {
            Some((_, bytes, segments)) => {
                self.hits = self.hits.saturating_add(1);
                Some((bytes.as_slice(), *segments))
            }
            None => {
                self.misses = self.misses.saturating_add(1);
                None
            }
        }
    }

    /// Keeps what `key` rendered to.
    #[inline(never)]
    fn keep(&mut self, key: K, bytes: &[u8], segments: u32) {
        let slot = (key, bytes.to_vec(), segments);
        if self.slots.len() < MEMO_SLOTS {
            self.slots.push(slot);
        } else if let Some(s) = self.slots.get_mut(self.next) {
            *s = slot;
            self.next = (self.next + 1) % MEMO_SLOTS;
        }
    }
}

type W = Result<(), BadValue>;

// Segment heads written at once (see `Head`): the id and its constant codes.
const NM1_IL: Head = Head::new("NM1", "NM1*IL*1");
const NM1_QC: Head = Head::new("NM1", "NM1*QC*1");
const NM1_PR: Head = Head::new("NM1", "NM1*PR*2");
const NM1_77: Head = Head::new("NM1", "NM1*77*2");
const NM1_DN: Head = Head::new("NM1", "NM1*DN");
const NM1_82: Head = Head::new("NM1", "NM1*82");
const NM1_71: Head = Head::new("NM1", "NM1*71");
const PRV_PE: Head = Head::new("PRV", "PRV*PE*PXC");
const PRV_AT: Head = Head::new("PRV", "PRV*AT*PXC");
const DMG_D8: Head = Head::new("DMG", "DMG*D8");
const DTP_431: Head = Head::new("DTP", "DTP*431*D8");
const DTP_454: Head = Head::new("DTP", "DTP*454*D8");
const DTP_439: Head = Head::new("DTP", "DTP*439*D8");
const DTP_435: Head = Head::new("DTP", "DTP*435*D8");
const DTP_573: Head = Head::new("DTP", "DTP*573*D8");
const DTP_472_D8: Head = Head::new("DTP", "DTP*472*D8");
const DTP_472_RD8: Head = Head::new("DTP", "DTP*472*RD8");
const REF_6R: Head = Head::new("REF", "REF*6R");
const REF_9F: Head = Head::new("REF", "REF*9F");
const REF_G1: Head = Head::new("REF", "REF*G1");
const REF_F8: Head = Head::new("REF", "REF*F8");
const REF_X4: Head = Head::new("REF", "REF*X4");
const REF_EA: Head = Head::new("REF", "REF*EA");
const NTE_ADD: Head = Head::new("NTE", "NTE*ADD");
const AMT_D: Head = Head::new("AMT", "AMT*D");
// Constant codes after a segment's values (see `Codes`).
const HL_22_1: Codes = Codes::new("*22*1");
const HL_22_0: Codes = Codes::new("*22*0");
const HL_23_0: Codes = Codes::new("*23*0");
const MI: Codes = Codes::new("*MI");

fn entity_code(e: EntityType) -> &'static str {
    match e {
        EntityType::Person => "1",
        EntityType::Organization => "2",
    }
}

fn yn(b: bool) -> &'static str {
    if b {
        "Y"
    } else {
        "N"
    }
}

impl ClaimWriter<'_> {
    /// What `render` writes, copied from `memo` when a key `same` takes
    /// was rendered before; else rendered, and kept under `key()` if it
    /// rendered without a refusal.
    #[inline(always)]
    fn memoized<K>(
        &mut self,
        memo: fn(&mut Memos) -> &mut Memo<K>,
        same: impl Fn(&K) -> bool,
        key: impl FnOnce() -> K,
        render: impl FnOnce(&mut Self) -> W,
    ) -> W {
        let Some(m) = self.memo.as_deref_mut().map(memo).filter(|m| m.open()) else {
            return render(self);
        };
        if let Some((bytes, segments)) = m.find(same) {
            self.out.extend_from_slice(bytes);
            self.em.set_segments += segments;
            return Ok(());
        }
        let (start, before) = (self.out.len(), self.em.set_segments);
        render(self)?;
        if let (Some(m), Some(bytes)) = (self.memo.as_deref_mut().map(memo), self.out.get(start..))
        {
            m.keep(key(), bytes, self.em.set_segments - before);
        }
        Ok(())
    }

    fn address(&mut self, a: &Address) -> W {
        self.em
            .seg(self.out, "N3")
            .el(&a.line1)
            .opt(a.line2.as_deref())
            .end()?;
        self.em
            .seg(self.out, "N4")
            .el(&a.city)
            .el(&a.state)
            .el(&a.zip)
            .end()
    }

    fn billing_provider(&mut self, hl: u32, b: &BillingProvider) -> W {
        self.em
            .seg(self.out, "HL")
            .num(hl)
            .skip(1)
            .el("20")
            .el("1")
            .end()?;
        if let Some(t) = &b.taxonomy {
            self.em
                .seg(self.out, "PRV")
                .el("BI")
                .el("PXC")
                .el(t)
                .end()?;
        }
        self.em
            .seg(self.out, "NM1")
            .el("85")
            .el(entity_code(b.entity))
            .el(&b.name)
            .opt(b.first_name.as_deref())
            .skip(3)
            .el("XX")
            .el(&b.npi)
            .end()?;
        self.address(&b.address)?;
        let qualifier = if b.ssn_as_tax_id == Some(true) {
            "SY"
        } else {
            "EI"
        };
        self.em
            .seg(self.out, "REF")
            .el(qualifier)
            .el(&b.tax_id)
            .end()?;
        if let Some(pay_to) = &b.pay_to_address {
            self.em.seg(self.out, "NM1").el("87").el("2").end()?;
            self.address(pay_to)?;
        }
        Ok(())
    }

    fn claim(&mut self, c: &Claim, parent: u32, hl: u32) -> W {
        self.subscriber(c, parent, hl)?;
        if let Some(p) = &c.patient {
            self.patient(p, hl)?;
        }
        self.clm(c)?;
        match self.kind {
            ClaimKind::Professional => self.professional_providers(c)?,
            ClaimKind::Institutional => self.institutional_providers(c)?,
        }
        for other in &c.other_payers {
            self.other_payer(c, other)?;
        }
        for (i, line) in c.lines.iter().enumerate() {
            self.line(i + 1, line)?;
        }
        Ok(())
    }

    fn subscriber(&mut self, c: &Claim, parent: u32, hl: u32) -> W {
        let s: &Subscriber = &c.subscriber;
        let has_patient = c.patient.is_some();
        self.em
            .seg(self.out, "HL")
            .num(hl)
            .num(parent)
            .codes(if has_patient { &HL_22_1 } else { &HL_22_0 })
            .end()?;
        let responsibility = s.responsibility.code();
        self.memoized(
            |m| &mut m.subscribers,
            |k| {
                k.has_patient == has_patient
                    && k.claim_filing == s.claim_filing
                    && k.group_number == s.group_number
                    && k.responsibility == responsibility
                    && k.group_name == s.group_name
            },
            || SbrKey {
                responsibility,
                has_patient,
                group_number: s.group_number.clone(),
                group_name: s.group_name.clone(),
                claim_filing: s.claim_filing.clone(),
            },
            |w| {
                w.em.seg(w.out, "SBR")
                    .el(responsibility)
                    .el(if has_patient { "" } else { "18" })
                    .opt(s.group_number.as_deref())
                    .opt(s.group_name.as_deref())
                    .skip(4)
                    .el(&s.claim_filing)
                    .end()
            },
        )?;
        self.person_name(
            &NM1_IL,
            &s.last_name,
            s.first_name.as_deref(),
            s.middle_name.as_deref(),
            Some((&MI, &s.member_id)),
        )?;
        if let Some(a) = &s.address {
            self.address(a)?;
        }
        if let Some(dob) = s.birth_date {
            self.dmg(dob, s.gender.map_or("U", |g| g.code()))?;
        }
        self.payer(&c.payer)
    }

    /// NM1 of a person: `head` is NM1, its entity code and "1".
    fn person_name(
        &mut self,
        head: &Head,
        last: &str,
        first: Option<&str>,
        middle: Option<&str>,
        id: Option<(&Codes, &str)>,
    ) -> W {
        let mut s = self.em.head(self.out, head);
        s.el(last).opt(first).opt(middle).skip(2);
        if let Some((q, v)) = id {
            s.codes(q).el(v);
        }
        s.end()
    }

    fn dmg(&mut self, dob: NaiveDate, gender: &str) -> W {
        self.em.head(self.out, &DMG_D8).date(dob).el(gender).end()
    }

    /// NM1 of the payer and its address; copied from the memo when this
    /// payer was rendered before.
    fn payer(&mut self, p: &Payer) -> W {
        self.memoized(
            |m| &mut m.payers,
            |k| k == p,
            || p.clone(),
            |w| w.payer_rendered(p),
        )
    }

    /// [`ClaimWriter::payer`], value by value.
    fn payer_rendered(&mut self, p: &Payer) -> W {
        self.em
            .head(self.out, &NM1_PR)
            .el(&p.name)
            .skip(4)
            .el("PI")
            .el(&p.id)
            .end()?;
        if let Some(a) = &p.address {
            self.address(a)?;
        }
        Ok(())
    }

    fn patient(&mut self, p: &Patient, parent: u32) -> W {
        self.em
            .seg(self.out, "HL")
            .num(parent + 1)
            .num(parent)
            .codes(&HL_23_0)
            .end()?;
        self.em.seg(self.out, "PAT").el(&p.relationship).end()?;
        self.person_name(&NM1_QC, &p.last_name, p.first_name.as_deref(), None, None)?;
        if let Some(a) = &p.address {
            self.address(a)?;
        }
        if let Some(dob) = p.birth_date {
            self.dmg(dob, p.gender.map_or("U", |g| g.code()))?;
        }
        Ok(())
    }

    fn clm(&mut self, c: &Claim) -> W {
        let professional = self.kind == ClaimKind::Professional;
        let mut s = self.em.seg(self.out, "CLM");
        s.el(&c.id).dec(c.total_charge);
        // The id refused: the claim is refused for it (the first refusal
        // of the segment, whatever its tail holds), nothing of it kept.
        if let Some(bad) = s.refused() {
            return Err(bad.clone());
        }
        // CLM03 on: copied from the memo when an equal tail was rendered.
        let tail = ClmTail::of(c, professional);
        self.memoized(
            |m| &mut m.claims,
            |k| tail.is(k),
            || tail.key(),
            |w| w.clm_tail(&tail),
        )?;
        match self.kind {
            ClaimKind::Professional => self.professional_dates(c)?,
            ClaimKind::Institutional => self.institutional_dates(c)?,
        }
        if !professional {
            let adm = c.admission.clone().unwrap_or_default();
            self.em
                .seg(self.out, "CL1")
                .opt(adm.kind.as_deref())
                .opt(adm.source.as_deref())
                .opt(c.patient_status.as_deref())
                .end()?;
        }
        // The guides' order; the CLIA number is 837P only.
        let clia = if professional { &c.clia_number } else { &None };
        for (head, v) in [
            (&REF_9F, &c.referral_number),
            (&REF_G1, &c.prior_authorization),
            (&REF_F8, &c.payer_claim_number),
            (&REF_X4, clia),
            (&REF_EA, &c.medical_record_number),
        ] {
            if let Some(v) = v {
                self.em.head(self.out, head).el(v).end()?;
            }
        }
        if let Some(note) = &c.note {
            // ADD, the billing note, is the free-text NTE both guides allow.
            self.em.head(self.out, &NTE_ADD).el(note).end()?;
        }
        self.diagnoses(c)
    }

    /// A CLM from CLM03 on, after its id and charge (a [`Seg`] that ended
    /// with the charge: two elements, none pending).
    fn clm_tail(&mut self, t: &ClmTail<'_>) -> W {
        let professional = t.professional;
        let qualifier = if professional { "B" } else { "A" };
        let mut s = self.em.resume(self.out, "CLM", 2);
        s.skip(2).comp(&[t.facility, qualifier, t.frequency]);
        if professional {
            s.el(yn(t.signature));
        } else {
            s.skip(1);
        }
        s.el(t.assignment).el(yn(t.benefits)).el(t.release);
        if professional {
            // CLM11: related causes (CLM11-3 is not used in 5010) and the
            // auto accident's state.
            s.skip(1)
                .comp(&[t.causes[0], t.causes[1], "", t.accident_state]);
        }
        s.end()
    }

    /// DTP with a CCYYMMDD date: `head` is DTP, its qualifier and D8.
    fn dtp(&mut self, head: &Head, date: Option<NaiveDate>) -> W {
        match date {
            Some(d) => self.em.head(self.out, head).date(d).end(),
            None => Ok(()),
        }
    }

    /// 837P 2300 dates, in the guide's order: onset, initial treatment,
    /// accident, admission (a date only).
    fn professional_dates(&mut self, c: &Claim) -> W {
        self.dtp(&DTP_431, c.onset_date)?;
        self.dtp(&DTP_454, c.initial_treatment_date)?;
        self.dtp(&DTP_439, c.accident_date)?;
        self.dtp(&DTP_435, c.admission.as_ref().and_then(|a| a.date))
    }

    /// 837I 2300 dates, in the guide's order: discharge hour, statement
    /// period, admission (with its hour when known).
    fn institutional_dates(&mut self, c: &Claim) -> W {
        if let Some(hour) = &c.discharge_hour {
            self.em
                .seg(self.out, "DTP")
                .el("096")
                .el("TM")
                .el(hour)
                .end()?;
        }
        if let (Some(from), Some(to)) = (c.statement_from, c.statement_to) {
            self.em
                .seg(self.out, "DTP")
                .el("434")
                .el("RD8")
                .date_range(from, to)
                .end()?;
        }
        let Some((date, hour)) = c.admission.as_ref().and_then(|a| Some((a.date?, &a.hour))) else {
            return Ok(());
        };
        let mut s = self.em.seg(self.out, "DTP");
        s.el("435");
        match hour {
            Some(hour) => s.el("DT").date_time(date, hour),
            None => s.el("D8").date(date),
        };
        s.end()
    }

    fn diagnoses(&mut self, c: &Claim) -> W {
        let (principal, admitting, visit, other) = match c.icd_version {
            IcdVersion::Icd10 => ("ABK", "ABJ", "APR", "ABF"),
            IcdVersion::Icd9 => ("BK", "BJ", "PR", "BF"),
        };
        let Some((first, rest)) = c.diagnoses.split_first() else {
            return Ok(());
        };
        match self.kind {
            ClaimKind::Professional => {
                let mut s = self.em.seg(self.out, "HI");
                s.comp(&[principal, first]);
                for dx in rest {
                    s.comp(&[other, dx]);
                }
                s.end()
            }
            ClaimKind::Institutional => {
                self.em
                    .seg(self.out, "HI")
                    .comp(&[principal, first])
                    .end()?;
                if let Some(adm) = &c.admitting_diagnosis {
                    self.em.seg(self.out, "HI").comp(&[admitting, adm]).end()?;
                }
                if !c.visit_reasons.is_empty() {
                    let mut s = self.em.seg(self.out, "HI");
                    for reason in c.visit_reasons.iter().take(3) {
                        s.comp(&[visit, reason]);
                    }
                    s.end()?;
                }
                if let Some(drg) = &c.drg {
                    self.em.seg(self.out, "HI").comp(&["DR", drg]).end()?;
                }
                for chunk in rest.chunks(12) {
                    let mut s = self.em.seg(self.out, "HI");
                    for dx in chunk {
                        s.comp(&[other, dx]);
                    }
                    s.end()?;
                }
                Ok(())
            }
        }
    }

    /// NM1 of a provider (`head`: NM1 and its entity code) and, when
    /// `prv` is given (PRV, its code and PXC), the taxonomy; copied from
    /// the memo when this provider was rendered so before.
    fn provider(&mut self, head: &'static Head, p: &Provider, prv: Option<&'static Head>) -> W {
        // Heads are constants: the same text, most often at the same place.
        let text = |a: &'static str, b: &'static str| std::ptr::eq(a, b) || a == b;
        let same = |k: &(&'static str, Option<&'static str>, Provider)| {
            text(k.0, head.text())
                && match (k.1, prv) {
                    (None, None) => true,
                    (Some(a), Some(b)) => text(a, b.text()),
                    _ => false,
                }
                && k.2 == *p
        };
        self.memoized(
            |m| &mut m.providers,
            same,
            || (head.text(), prv.map(Head::text), p.clone()),
            |w| w.provider_rendered(head, p, prv),
        )
    }

    /// [`ClaimWriter::provider`], value by value.
    fn provider_rendered(&mut self, head: &Head, p: &Provider, prv: Option<&Head>) -> W {
        let mut s = self.em.head(self.out, head);
        s.el(entity_code(p.entity))
            .el(&p.name)
            .opt(p.first_name.as_deref())
            .skip(3);
        if let Some(npi) = &p.npi {
            s.el("XX").el(npi);
        }
        s.end()?;
        if let (Some(prv), Some(t)) = (prv, &p.taxonomy) {
            self.em.head(self.out, prv).el(t).end()?;
        }
        Ok(())
    }

    fn facility(&mut self, f: &Facility) -> W {
        let mut s = self.em.head(self.out, &NM1_77);
        s.el(&f.name).skip(4);
        if let Some(npi) = &f.npi {
            s.el("XX").el(npi);
        }
        s.end()?;
        self.address(&f.address)
    }

    /// 2310A referring, 2310B rendering, 2310C service facility.
    fn professional_providers(&mut self, c: &Claim) -> W {
        if let Some(p) = &c.referring_provider {
            self.provider(&NM1_DN, p, None)?;
        }
        if let Some(p) = &c.rendering_provider {
            self.provider(&NM1_82, p, Some(&PRV_PE))?;
        }
        if let Some(f) = &c.service_facility {
            self.facility(f)?;
        }
        Ok(())
    }

    /// 2310A attending, 2310D rendering, 2310E service facility, 2310F referring.
    fn institutional_providers(&mut self, c: &Claim) -> W {
        if let Some(p) = &c.attending_provider {
            self.provider(&NM1_71, p, Some(&PRV_AT))?;
        }
        if let Some(p) = &c.rendering_provider {
            self.provider(&NM1_82, p, None)?;
        }
        if let Some(f) = &c.service_facility {
            self.facility(f)?;
        }
        if let Some(p) = &c.referring_provider {
            self.provider(&NM1_DN, p, None)?;
        }
        Ok(())
    }

    /// Loops 2320, 2330A and 2330B.
    fn other_payer(&mut self, c: &Claim, o: &OtherPayer) -> W {
        self.em
            .seg(self.out, "SBR")
            .el(o.responsibility.code())
            .el(&o.relationship)
            .opt(o.group_number.as_deref())
            .skip(5)
            .el(&o.claim_filing)
            .end()?;
        // CAS: one segment per group code, up to six reason/amount/quantity triplets each.
        let mut groups: Vec<&str> = Vec::new();
        for a in &o.adjustments {
            if !groups.contains(&a.group.as_str()) {
                groups.push(&a.group);
            }
        }
        for group in groups {
            let adjustments: Vec<_> = o.adjustments.iter().filter(|a| a.group == group).collect();
            for chunk in adjustments.chunks(6) {
                let mut s = self.em.seg(self.out, "CAS");
                s.el(group);
                for a in chunk {
                    s.el(&a.reason).dec(a.amount).opt_dec(a.quantity);
                }
                s.end()?;
            }
        }
        if let Some(paid) = o.paid_amount {
            self.em.head(self.out, &AMT_D).dec(paid).end()?;
        }
        self.em
            .seg(self.out, "OI")
            .skip(2)
            .el(yn(c.benefits_assigned))
            .skip(2)
            .el(&c.release_of_information)
            .end()?;
        self.person_name(
            &NM1_IL,
            &o.subscriber_last_name,
            o.subscriber_first_name.as_deref(),
            None,
            Some((&MI, &o.subscriber_member_id)),
        )?;
        self.em
            .head(self.out, &NM1_PR)
            .el(&o.payer_name)
            .skip(4)
            .el("PI")
            .el(&o.payer_id)
            .end()?;
        if let Some(date) = o.adjudication_date {
            self.em.head(self.out, &DTP_573).date(date).end()?;
        }
        Ok(())
    }

    /// A line's SV1 (837P) or SV2 (837I).
    fn service(&mut self, l: &ServiceLine) -> W {
        let empty = String::new();
        let (qualifier, code, mods) = match &l.procedure {
            Some(p) => (
                p.qualifier.as_str(),
                p.code.as_str(),
                p.modifiers.as_slice(),
            ),
            None => ("", "", &[][..]),
        };
        let m = |i: usize| mods.get(i).unwrap_or(&empty).as_str();
        let procedure = [qualifier, code, m(0), m(1), m(2), m(3)];
        match self.kind {
            ClaimKind::Professional => self
                .em
                .seg(self.out, "SV1")
                .comp(&procedure)
                .dec(l.charge)
                .el(&l.unit_basis)
                .dec(l.units)
                .opt(l.place_of_service.as_deref())
                .skip(1)
                .nums(&l.diagnosis_pointers)
                .end(),
            ClaimKind::Institutional => self
                .em
                .seg(self.out, "SV2")
                .opt(l.revenue_code.as_deref())
                .comp(&procedure)
                .dec(l.charge)
                .el(&l.unit_basis)
                .dec(l.units)
                .end(),
        }
    }

    fn line(&mut self, n: usize, l: &ServiceLine) -> W {
        self.em
            .seg(self.out, "LX")
            .num(u32::try_from(n).unwrap_or(u32::MAX))
            .end()?;
        let kind = self.kind;
        self.memoized(
            |m| &mut m.lines,
            |k| k.is(kind, l),
            || LineKey::of(kind, l),
            |w| w.service(l),
        )?;
        if let Some(from) = l.service_date {
            match l.service_date_end.filter(|to| *to != from) {
                Some(to) => self
                    .em
                    .head(self.out, &DTP_472_RD8)
                    .date_range(from, to)
                    .end()?,
                None => self.em.head(self.out, &DTP_472_D8).date(from).end()?,
            }
        }
        if let Some(lcn) = &l.line_control_number {
            self.em.head(self.out, &REF_6R).el(lcn).end()?;
        }
        if let Some(d) = &l.drug {
            self.em
                .seg(self.out, "LIN")
                .skip(1)
                .el("N4")
                .el(&d.ndc)
                .end()?;
            self.em
                .seg(self.out, "CTP")
                .skip(3)
                .dec(d.quantity)
                .comp(&[&d.unit])
                .end()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ClaimFile;
    use crate::x12::{EnvelopeEvent, EnvelopeReader, ReadError, Tokenizer};

    /// The example file's professional claims.
    fn claims() -> Vec<Claim> {
        let file: ClaimFile =
            serde_json::from_str(include_str!("../../examples/claims.json")).unwrap();
        file.claims
            .into_iter()
            .filter(|c| c.kind == ClaimKind::Professional)
            .collect()
    }

    fn envelope() -> Envelope {
        crate::profile::Profile::sandbox().unwrap().envelope
    }

    fn now() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
            .unwrap()
            .and_hms_opt(9, 5, 0)
            .unwrap()
    }

    /// Segment ids of the output, and the envelope reader's verdict.
    fn check(out: &[u8]) -> (Vec<String>, Vec<ReadError>) {
        let mut ids = Vec::new();
        let mut env = EnvelopeReader::new();
        Tokenizer::new()
            .feed::<ReadError>(out, true, |s| {
                ids.push(String::from_utf8_lossy(s.raw()).into_owned());
                env.segment(&s).map(|_: EnvelopeEvent| ())
            })
            .unwrap();
        env.finish();
        (ids, env.problems)
    }

    #[test]
    fn sets_split_at_the_limit_with_correct_counts_and_fresh_hl_numbers() {
        let mut numbers = Sequential::starting_at(7);
        let mut out = Vec::new();
        let mut w = Writer837::begin(envelope(), now(), &mut numbers, &mut out)
            .unwrap()
            .with_max_claims_per_set(2);
        let claims = claims();
        let mut placements = Vec::new();
        for c in claims.iter().chain(&claims) {
            placements.push(w.write_claim(c, &mut numbers, &mut out).unwrap());
        }
        let summary = w.finish(&mut out).unwrap();
        let (segments, problems) = check(&out);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(summary.control, 7);
        let sets: Vec<usize> = summary.groups[0].sets.iter().map(|s| s.claims).collect();
        assert_eq!(sets, [2, 2, 2]);
        assert_eq!(
            placements.iter().map(|p| p.set).collect::<Vec<_>>(),
            [7, 7, 8, 8, 9, 9]
        );
        // Each set numbers its HLs from 1 again.
        let hl1 = segments
            .iter()
            .filter(|s| s.starts_with("HL*1**20*1"))
            .count();
        assert_eq!(hl1, 3);
        assert!(segments[0].starts_with("ISA*00*          *00*          *ZZ*EDICOURIER     *"));
        assert_eq!(segments[0].len(), 105, "the ISA is fixed width");
        assert_eq!(segments.last().unwrap(), "IEA*1*000000007");
        // The placement's segment range starts at the claim's subscriber HL.
        let st = segments
            .iter()
            .position(|s| s.starts_with("ST*837*0007"))
            .unwrap();
        let first = segments[st + placements[1].first_segment as usize - 1].clone();
        assert!(
            first.starts_with("HL*") && first.ends_with("*22*0"),
            "{first}"
        );
        let last = &segments[st + placements[1].last_segment as usize - 1];
        assert!(last.starts_with("REF*6R*"), "{last}");
    }

    #[test]
    fn consecutive_claims_of_one_billing_provider_share_its_hl() {
        let mut numbers = Sequential::starting_at(1);
        let mut out = Vec::new();
        let mut w = Writer837::begin(envelope(), now(), &mut numbers, &mut out).unwrap();
        let claims = claims();
        for c in &claims {
            w.write_claim(c, &mut numbers, &mut out).unwrap();
        }
        let mut other = claims[0].clone();
        other.billing_provider.npi = "1999999984".into();
        w.write_claim(&other, &mut numbers, &mut out).unwrap();
        w.finish(&mut out).unwrap();
        let (segments, _) = check(&out);
        let billing: Vec<&String> = segments.iter().filter(|s| s.ends_with("*20*1")).collect();
        assert_eq!(
            billing,
            ["HL*1**20*1", &format!("HL*{}**20*1", claims.len() + 2)]
        );
    }

    #[test]
    fn a_value_that_cannot_be_written_leaves_nothing_of_its_claim() {
        let mut numbers = Sequential::starting_at(1);
        let mut out = Vec::new();
        let mut w = Writer837::begin(envelope(), now(), &mut numbers, &mut out).unwrap();
        let claims = claims();
        w.write_claim(&claims[0], &mut numbers, &mut out).unwrap();
        let before = out.len();
        let mut bad = claims[1].clone();
        bad.lines[0].line_control_number = Some("A~B".into());
        let err = w.write_claim(&bad, &mut numbers, &mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "claim {}: REF02 holds a delimiter or a non-ASCII character",
                bad.id
            )
        );
        assert_eq!(out.len(), before);
        w.write_claim(&claims[1], &mut numbers, &mut out).unwrap();
        w.finish(&mut out).unwrap();
        let (_, problems) = check(&out);
        assert!(problems.is_empty(), "counts still right: {problems:?}");
    }

    #[test]
    fn envelope_ids_are_checked_before_anything_is_written() {
        let mut env = envelope();
        env.sender_id = "A-SENDER-ID-THAT-IS-TOO-LONG".into();
        let mut out = Vec::new();
        let err = Writer837::begin(env, now(), &mut Sequential::starting_at(1), &mut out)
            .err()
            .unwrap();
        assert!(err.to_string().contains("ISA06"), "{err}");
        assert!(out.is_empty());
    }

    #[test]
    fn segments_copied_from_the_memo_are_what_rendering_writes() {
        use crate::model::{EntityType, Provider};
        let file: ClaimFile =
            serde_json::from_str(include_str!("../../examples/claims.json")).unwrap();
        let person =
            |name: &str, first: Option<&str>, npi: Option<&str>, tax: Option<&str>| Provider {
                entity: EntityType::Person,
                name: name.into(),
                first_name: first.map(Into::into),
                npi: npi.map(Into::into),
                taxonomy: tax.map(Into::into),
            };
        let mut org = person("CLINIC", None, Some("1234567893"), None);
        org.entity = EntityType::Organization;
        // More providers and payers than the memo has slots, equal ones
        // under other heads, ones that differ in one field only, and ones
        // that cannot be written.
        let providers = [
            Some(person("WELBY", Some("MARCUS"), Some("1987654328"), None)),
            Some(person("CASEY", Some("BEN"), Some("1456789019"), None)),
            Some(person(
                "WELBY",
                Some("MARCUS"),
                Some("1987654328"),
                Some("207Q00000X"),
            )),
            Some(person("WELBY", Some("MARCUS"), None, None)),
            Some(person("WELBY", None, Some("1987654328"), None)),
            Some(person("WELBYS", Some("MARCUS"), Some("1987654328"), None)),
            Some(person("O*BRIEN", Some("PAT"), Some("1987654328"), None)),
            Some(person(
                "HOUSE",
                Some("GREGORY"),
                Some("1987654328"),
                Some("207R00000X~"),
            )),
            Some(org),
            None,
        ];
        let mut payers: Vec<Payer> = file.claims.iter().map(|c| c.payer.clone()).collect();
        let mut addressed = payers[0].clone();
        addressed.address = file.claims[0].subscriber.address.clone();
        payers.push(addressed.clone());
        addressed.address.as_mut().unwrap().zip = "62701".into();
        payers.push(addressed.clone());
        addressed.address.as_mut().unwrap().city = "SPRING~FIELD".into();
        payers.push(addressed);
        let mut renamed = payers[0].clone();
        renamed.id = "ACME02".into();
        payers.push(renamed);
        let mut next = crate::testing::xorshift(0x5eed_6e60);
        let mut claims = Vec::new();
        for i in 0..600 {
            let mut c = file.claims[i % file.claims.len()].clone();
            // Mostly one of the first two, as in a practice's batch (or,
            // with n = 0, any number).
            let mut pick = |n: usize| {
                if n == 0 {
                    return next() as usize;
                }
                let i = if next().is_multiple_of(8) {
                    next()
                } else {
                    next() % 2
                };
                i as usize % n
            };
            c.rendering_provider = providers[pick(providers.len())].clone();
            c.referring_provider = providers[pick(providers.len())]
                .clone()
                .filter(|_| i % 8 == 0);
            c.attending_provider = providers[pick(providers.len())].clone();
            c.payer = payers[pick(payers.len())].clone();
            c.id = format!("C{i}");
            // Plans: a few groups, names and filing codes, one that cannot
            // be written; the responsibility and the patient. Variants
            // taken whole, mostly the first two.
            let plans = [
                (Some("GRP7700"), None, "CI", false),
                (None, None, "MB", false),
                (Some("GRP7700"), None, "CI", true),
                (Some("GRP7700"), Some("ACME"), "CI", false),
                (Some("GRP7701"), None, "CI", false),
                (Some("GRP7700"), None, "BL", false),
                (Some("G~1"), None, "CI", false),
                (None, Some("AC\u{c9}ME"), "MB", false),
                (None, None, "MB", true),
            ];
            let (group, name, filing, secondary) = plans[pick(plans.len())];
            c.subscriber.group_number = group.map(Into::into);
            c.subscriber.group_name = name.map(Into::into);
            c.subscriber.claim_filing = filing.into();
            if secondary {
                c.subscriber.responsibility = crate::model::Responsibility::Secondary;
            }
            if pick(5) == 4 {
                c.patient = Some(crate::model::Patient {
                    relationship: "19".into(),
                    last_name: "DOE".into(),
                    first_name: Some("JIM".into()),
                    ..Default::default()
                });
            }
            // Claims' tails (CLM03 on): a few places, frequencies and
            // codes, causes and accident states; ones that cannot be
            // written. Variants taken whole, mostly the first two.
            type Tail<'a> = (
                Option<&'a str>,
                &'a str,
                bool,
                &'a str,
                bool,
                &'a str,
                &'a [&'a str],
                Option<&'a str>,
            );
            let tails: [Tail; 14] = [
                (Some("11"), "1", true, "A", true, "Y", &[], None),
                (Some("10"), "1", true, "A", true, "Y", &[], None),
                (Some("11"), "7", true, "A", true, "Y", &[], None),
                (Some("11"), "1", false, "A", true, "Y", &[], None),
                (Some("11"), "1", true, "C", true, "Y", &[], None),
                (Some("11"), "1", true, "A", false, "Y", &[], None),
                (Some("11"), "1", true, "A", true, "I", &[], None),
                (Some("11"), "1", true, "A", true, "Y", &["AA"], Some("IL")),
                (Some("11"), "1", true, "A", true, "Y", &["AA"], None),
                (Some("11"), "1", true, "A", true, "Y", &["EM", "AA"], None),
                (
                    Some("11"),
                    "1",
                    true,
                    "A",
                    true,
                    "Y",
                    &["AA", "EM", "OA"],
                    Some("IL"),
                ),
                (None, "1", true, "A", true, "Y", &[], None),
                (Some("1~"), "1", true, "A", true, "Y", &[], None),
                (Some("11"), "1", true, "A", true, "Y", &["A*A"], None),
            ];
            let (place, frequency, signature, assignment, benefits, release, causes, state) =
                tails[pick(tails.len())];
            if c.kind == ClaimKind::Professional {
                c.place_of_service = place.map(Into::into);
            } else {
                c.type_of_bill =
                    [Some("131"), Some("111"), None, Some("13~")][pick(4)].map(Into::into);
            }
            c.frequency_code = frequency.into();
            c.provider_signature = signature;
            c.assignment = assignment.into();
            c.benefits_assigned = benefits;
            c.release_of_information = release.into();
            c.related_causes = causes.iter().map(|c| c.to_string()).collect();
            c.accident_state = state.map(Into::into);
            if pick(0) % 64 == 0 {
                // An id that cannot be written: refused before the tail.
                c.id = format!("C~{i}");
            }
            // Lines: a fee schedule's few codes and charges, units,
            // modifiers, pointers, places, revenue codes; one that cannot
            // be written.
            // Code, charge, units, modifiers, pointers, place, unit basis.
            type Fee<'a> = (
                &'a str,
                &'a str,
                &'a str,
                &'a [&'a str],
                &'a [u8],
                Option<&'a str>,
                &'a str,
            );
            let schedule: [Fee; 14] = [
                ("99214", "150", "1", &["25"], &[1, 2], None, "UN"),
                ("94640", "35", "1", &[], &[1], Some("11"), "UN"),
                ("99214", "150.00", "1", &["25"], &[1, 2], None, "UN"),
                ("99214", "150.0", "1.0", &["25"], &[1, 2], None, "UN"),
                ("99214", "150", "1", &["25", "59"], &[1, 2], None, "UN"),
                ("99214", "150", "1", &["25"], &[2, 1], None, "UN"),
                ("99214", "150", "1", &["25"], &[1, 2], Some("22"), "UN"),
                ("99214", "150", "1", &["25"], &[1, 2], None, "MJ"),
                ("99214", "150", "2", &["25"], &[1, 2], None, "UN"),
                ("99214", "35", "1", &["25"], &[1, 2], None, "UN"),
                ("99213", "-0", "0.5", &[], &[], None, "UN"),
                ("99213", "1234567890123.45", "2", &[], &[1], None, "UN"),
                ("9*9", "35", "1", &[], &[1], None, "UN"),
                ("", "35", "1", &[], &[1], None, "UN"),
            ];
            for l in &mut c.lines {
                // Half the first (in the memo most of the time), half any
                // other: one field away from it, or more.
                let n = if pick(0) % 2 == 0 {
                    0
                } else {
                    pick(0) % schedule.len()
                };
                let (code, charge, units, mods, pointers, pos, basis) = schedule[n];
                l.charge = charge.parse().unwrap();
                l.units = units.parse().unwrap();
                l.diagnosis_pointers = pointers.to_vec();
                l.place_of_service = pos.map(Into::into);
                l.unit_basis = basis.into();
                l.procedure = Some(crate::model::Procedure {
                    qualifier: "HC".into(),
                    code: code.into(),
                    modifiers: mods.iter().map(|m| m.to_string()).collect(),
                })
                .filter(|p| !p.code.is_empty());
                l.revenue_code = [None, Some("0450"), Some("0301")][pick(3)].map(Into::into);
            }
            claims.push(c);
        }
        // Runs of one kind, as translate hands them over, and alternating.
        let mut kinds = claims.clone();
        kinds.sort_by_key(|c| c.kind == ClaimKind::Institutional);
        for claims in [claims, kinds] {
            let mut outs = Vec::new();
            for memo in [Some(true), Some(false), None] {
                let mut numbers = Sequential::starting_at(1);
                let mut out = Vec::new();
                let w = Writer837::begin(envelope(), now(), &mut numbers, &mut out).unwrap();
                let mut w = match memo {
                    Some(true) => w,
                    Some(false) => w.with_memo_open(),
                    None => w.without_memo(),
                };
                let mut results = Vec::new();
                for c in &claims {
                    let r = w.write_claim(c, &mut numbers, &mut out);
                    results.push(r.map_err(|e| e.to_string()));
                }
                // The memos were used (and only by the writers that have them).
                let m = &w.memo;
                let hits = [
                    m.providers.hits,
                    m.payers.hits,
                    m.subscribers.hits,
                    m.lines.hits,
                    m.claims.hits,
                ];
                match memo {
                    Some(false) => {
                        assert!(hits.iter().all(|&h| h > u32::MAX / 2 + 100), "{hits:?}")
                    }
                    None => assert_eq!(hits, [0; 5]),
                    Some(true) => assert!(hits.iter().any(|&h| h > 100), "{hits:?}"),
                }
                let summary = w.finish(&mut out).unwrap();
                outs.push((String::from_utf8(out).unwrap(), results, summary));
            }
            let without = &outs[2];
            assert!(without.1.iter().any(|r| r.is_err()) && without.1.iter().any(|r| r.is_ok()));
            for with in &outs[..2] {
                assert_eq!(with.1, without.1);
                assert_eq!(with.2, without.2);
                assert_eq!(with.0, without.0);
            }
        }
    }
}

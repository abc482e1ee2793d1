//! Reads the body of an 837P/837I transaction set back into the claim model.
//!
//! Fed one segment at a time (after [`super::EnvelopeReader`] has placed it),
//! it yields each claim as soon as the next CLM, HL or SE closes it, so memory
//! holds one claim at a time. Segments the model has no place for (CR1, HCP,
//! 2430 line adjudication…) are skipped; they are still counted by the
//! envelope reader.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::delim::Delimiters;
use super::read::{id_slot, segment_key, slot_table, Fields, Position, Segment, ID_SLOTS};
use crate::model::{
    Address, Adjustment, Admission, BillingProvider, Claim, ClaimKind, Drug, EntityType, Facility,
    Gender, IcdVersion, OtherPayer, Patient, Payer, Procedure, Provider, Receiver, Responsibility,
    ServiceLine, Submitter, Subscriber,
};

/// A value the model cannot take, or a segment that shows the file is
/// damaged. The value itself is not kept: it may be a birth date or a
/// member id, and this error ends up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {pos}{}: {element} {wrong}", claim.as_ref().map(|c| format!(", claim {c}")).unwrap_or_default())]
pub struct Claim837Error {
    pub pos: Position,
    pub claim: Option<String>,
    /// The element (`SV102`), or the segment (`SV1`) for [`Wrong::Repeated`].
    pub element: Cow<'static, str>,
    pub wrong: Wrong,
}

/// What is wrong with an element or a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrong {
    /// Not the kind of value the guide asks for ("a number", "a CCYYMMDD date").
    NotA(&'static str),
    /// Holds a value where the 5010 guides use no element: what a lost
    /// segment terminator makes of two segments run together.
    NotUsed,
    /// Holds a control character: what a terminator replaced by a line
    /// break, or a file cut and joined, leaves inside a segment.
    ControlCharacter,
    /// A second SV1/SV2 in one service line: its LX was lost.
    Repeated,
    /// A segment id the 837 guides do not use (`HL3`: a lost separator).
    Unknown,
    /// A segment out of its place: the text says where it came.
    Misplaced(&'static str),
}

impl fmt::Display for Wrong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wrong::NotA(what) => write!(f, "is not {what}"),
            Wrong::NotUsed => f.write_str(
                "holds a value where the 837 guides use none: a segment terminator or a delimiter may be damaged",
            ),
            Wrong::ControlCharacter => f.write_str(
                "holds a control character: a segment terminator may be damaged",
            ),
            Wrong::Repeated => {
                f.write_str("comes twice in one service line: an LX segment may be missing")
            }
            Wrong::Unknown => f.write_str(
                "is not a segment the 837 guides use: a delimiter may be damaged or lost",
            ),
            Wrong::Misplaced(text) => f.write_str(text),
        }
    }
}

/// Why a claim the reader closed is not whole: it is named, never listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// One of its own segments could not be read (that error is named too).
    Unreadable,
    /// It sits under a billing provider, subscriber or patient loop one of
    /// whose segments could not be read: the parties it would carry are
    /// not known whole.
    Parties,
    /// A segment the guides require is not there: `line` is the service
    /// line's number (1-based) when the segment belongs to a line.
    Missing {
        segment: &'static str,
        line: Option<usize>,
    },
    /// A service line points at a diagnosis the claim does not have.
    Pointer { line: usize },
    /// A party's part the guides require is empty: its segment (or the
    /// element) was lost.
    Party { what: &'static str },
    /// Its total charge (CLM02) is not the sum of its lines' (SV102/SV203).
    Unbalanced,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Unreadable => f.write_str("holds a segment that could not be read"),
            Damage::Parties => f.write_str(
                "sits under a billing provider, subscriber or patient loop that could not be read",
            ),
            Damage::Missing {
                segment,
                line: None,
            } => write!(f, "has no {segment} segment"),
            Damage::Missing {
                segment,
                line: Some(n),
            } => write!(f, "has no {segment} segment in its service line {n}"),
            Damage::Party { what } => write!(f, "lacks {what}"),
            Damage::Unbalanced => {
                f.write_str("has a total charge (CLM02) that is not the sum of its lines' charges")
            }
            Damage::Pointer { line } => write!(
                f,
                "has a service line ({line}) pointing at a diagnosis it does not have"
            ),
        }
    }
}

/// A claim closed by a segment (or the set's end): whole, or named with
/// why it is not.
pub enum Closed {
    Whole(Box<Claim>),
    /// `clm` is the segment number of the claim's CLM.
    Damaged {
        claim: String,
        clm: u64,
        damage: Damage,
    },
}

/// What one segment did: the claim it closed, and what was wrong with it.
#[derive(Default)]
pub struct Step {
    pub closed: Option<Closed>,
    pub error: Option<Claim837Error>,
}

/// The loop the last NM1 (or HL/CLM/LX) opened: where N3, N4, REF, PRV and
/// DMG segments belong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    None,
    Billing,
    PayTo,
    Subscriber,
    Payer,
    Patient,
    Claim,
    Referring,
    Rendering,
    Attending,
    Facility,
    OtherSubscriber,
    OtherPayerName,
    Line,
    Skip,
}

/// See the module docs.
#[derive(Debug)]
pub struct ClaimReader {
    kind: ClaimKind,
    pub submitter: Option<Submitter>,
    pub receiver: Option<Receiver>,
    billing: BillingProvider,
    subscriber: Subscriber,
    payer: Payer,
    patient: Option<Patient>,
    /// Whether a claim already took the current subscriber loop's parties
    /// (the next claim under the same HL clones them from it instead).
    parties_taken: bool,
    /// Boxed: a claim is ~2 KB and every segment's result carries an Option of it.
    claim: Option<Box<Claim>>,
    /// Why the open claim is not whole, once known (the first reason).
    damage: Option<Damage>,
    /// The HL level (20 billing provider, 22 subscriber, 23 patient; 0
    /// before the first HL) of the highest loop a segment of which could
    /// not be read: every claim under it is [`Damage::Parties`] until an
    /// HL at that level or above begins new parties.
    tainted: Option<u8>,
    /// The level of the last HL.
    level: u8,
    /// The segment number of the open claim's CLM.
    clm: u64,
    ctx: Ctx,
}

impl ClaimReader {
    /// `version` is ST03 (or GS08): X222 is professional, X223 institutional.
    pub fn for_version(version: &str) -> Option<Self> {
        let kind = if version.contains("X222") {
            ClaimKind::Professional
        } else if version.contains("X223") {
            ClaimKind::Institutional
        } else {
            return None;
        };
        Some(ClaimReader {
            kind,
            submitter: None,
            receiver: None,
            billing: BillingProvider::default(),
            subscriber: Subscriber::default(),
            payer: Payer::default(),
            patient: None,
            parties_taken: false,
            claim: None,
            damage: None,
            tainted: None,
            level: 0,
            clm: 0,
            ctx: Ctx::None,
        })
    }

    pub fn kind(&self) -> ClaimKind {
        self.kind
    }

    /// The claim still open at SE (or where the set was cut short), judged.
    pub fn end_set(&mut self) -> Option<Closed> {
        let claim = self.claim.take()?;
        let damage = self.judge(&claim);
        Some(Closed::new(claim, self.clm, damage))
    }

    /// Takes one body segment: gives the claim it closed, judged whole or
    /// not, and what was wrong with the segment. A claim one of whose
    /// segments was wrong, or under parties one of whose segments was, is
    /// never given whole.
    pub fn segment(&mut self, seg: &Segment<'_>) -> Step {
        let fields = seg.fields();
        let closing = matches!(fields.id(), b"HL" | b"CLM");
        // Judged before this segment changes the parties it sat under.
        let done = if closing { self.claim.take() } else { None };
        let damage = done.as_ref().and_then(|c| self.judge(c));
        let clm = self.clm;
        let damaged = damaged_segment(&fields, seg.delims);
        let read = self.take_segment(&fields, done.as_deref());
        let error = match (damaged, read) {
            (Some(e), _) | (None, Err(e)) => Some(self.blame(e)),
            (None, Ok(())) => None,
        };
        Step {
            closed: done.map(|c| Closed::new(c, clm, damage)),
            error,
        }
    }

    /// Names the error's claim and marks it damaged; outside a claim, marks
    /// the parties of the current loop damaged. A segment whose very shape
    /// is wrong (an unknown id, values past its last element, a control
    /// character) or that is out of its place may have swallowed an HL or
    /// stand where one was lost: the parties are marked damaged too, so a
    /// claim that follows under them is not given as whole.
    fn blame(&mut self, mut e: Claim837Error) -> Claim837Error {
        let shape = matches!(
            e.wrong,
            Wrong::Unknown | Wrong::NotUsed | Wrong::ControlCharacter | Wrong::Misplaced(_)
        );
        if let Some(c) = self.claim.as_ref() {
            // Named here, not per segment: cloning the id each time costs.
            e.claim = Some(c.id.clone());
            self.damage.get_or_insert(Damage::Unreadable);
        }
        if self.claim.is_none() || shape {
            self.tainted = Some(self.tainted.map_or(self.level, |t| t.min(self.level)));
        }
        e
    }

    /// Why `claim` (just closed) is not whole, if it is not.
    fn judge(&mut self, claim: &Claim) -> Option<Damage> {
        self.damage
            .take()
            .or_else(|| self.tainted.map(|_| Damage::Parties))
            .or_else(|| missing(claim))
    }

    /// Reads one segment into the parties or the open claim; `done` is
    /// the claim this segment (an HL or a CLM) closed.
    fn take_segment(
        &mut self,
        seg: &Fields<'_>,
        done: Option<&Claim>,
    ) -> Result<(), Claim837Error> {
        let id = seg.id();
        // A claim's own segment with no claim open: its CLM was lost, and
        // with it the claim (named here, as its id is not known).
        if self.claim.is_none() && in_claim_only(seg.key()) {
            return Err(Claim837Error {
                pos: seg.pos,
                claim: None,
                element: Cow::Owned(String::from_utf8_lossy(id).into_owned()),
                wrong: Wrong::Misplaced(
                    "comes outside a claim (no CLM before it in its loop): a CLM segment may be missing",
                ),
            });
        }
        let err = |element: &'static str, _found: &str, expected| Claim837Error {
            pos: seg.pos,
            claim: None,
            element: Cow::Borrowed(element),
            wrong: Wrong::NotA(expected),
        };
        let dec = |n: usize, element| -> Result<Decimal, Claim837Error> {
            Decimal::from_str(seg.text(n)).map_err(|_| err(element, seg.text(n), "a number"))
        };
        let opt_dec = |n: usize, element| -> Result<Option<Decimal>, Claim837Error> {
            if seg.el(n).is_empty() {
                Ok(None)
            } else {
                dec(n, element).map(Some)
            }
        };
        let date = |s: &str, element| -> Result<NaiveDate, Claim837Error> {
            ccyymmdd(s).ok_or_else(|| err(element, s, "a CCYYMMDD date"))
        };
        let range = |element| -> Result<(NaiveDate, NaiveDate), Claim837Error> {
            let v = seg.text(3);
            match v.split_once('-') {
                Some((a, b)) => Ok((date(a, element)?, date(b, element)?)),
                None => date(v, element).map(|d| (d, d)),
            }
        };
        match id {
            b"NM1" => {
                // A party named twice in its loop: the HL between was lost
                // (else the second would silently replace the first).
                // A subscriber's, payer's, patient's or billing provider's
                // NM1 inside a service line: the HL before it was lost.
                if self.ctx == Ctx::Line
                    && matches!(seg.el(1), b"IL" | b"PR" | b"QC" | b"85" | b"87")
                {
                    return Err(Claim837Error {
                        pos: seg.pos,
                        claim: None,
                        element: Cow::Borrowed("NM1"),
                        wrong: Wrong::Misplaced(
                            "names a party inside a service line: an HL segment may be missing",
                        ),
                    });
                }
                let again = match (seg.el(1), self.claim.is_some()) {
                    (b"85", false) => !self.billing.name.is_empty(),
                    (b"IL", false) => !self.subscriber.last_name.is_empty(),
                    (b"PR", false) => !self.payer.name.is_empty(),
                    (b"QC", false) => self
                        .patient
                        .as_ref()
                        .is_some_and(|p| !p.last_name.is_empty()),
                    _ => false,
                };
                if again {
                    return Err(Claim837Error {
                        pos: seg.pos,
                        claim: None,
                        element: Cow::Borrowed("NM1"),
                        wrong: Wrong::Misplaced(
                            "names a party its loop already named: an HL segment may be missing",
                        ),
                    });
                }
                self.nm1(seg);
            }
            b"N3" | b"N4" => {
                if let Some(addr) = self.address_slot() {
                    if id == b"N3" {
                        addr.line1 = owned(seg, 1);
                        addr.line2 = opt(seg, 2);
                    } else {
                        addr.city = owned(seg, 1);
                        addr.state = owned(seg, 2);
                        addr.zip = owned(seg, 3);
                    }
                }
            }
            b"HL" => {
                self.ctx = Ctx::None;
                let level = match seg.el(3) {
                    b"20" => 20,
                    b"22" => 22,
                    b"23" => 23,
                    _ => self.level,
                };
                // New parties at the damaged loop's level or above: the
                // damage is behind.
                if self.tainted.is_some_and(|t| t > 0 && level <= t) {
                    self.tainted = None;
                }
                self.level = level;
                match seg.el(3) {
                    b"20" => self.billing = BillingProvider::default(),
                    b"22" => {
                        self.subscriber = Subscriber::default();
                        self.payer = Payer::default();
                        self.patient = None;
                        self.parties_taken = false;
                    }
                    b"23" => {
                        self.patient = Some(Patient::default());
                        self.parties_taken = false;
                    }
                    _ => {}
                }
            }
            b"PRV" => {
                let taxonomy = opt(seg, 3);
                match (seg.el(1), self.ctx) {
                    (b"BI", _) => self.billing.taxonomy = taxonomy,
                    (b"PE", Ctx::Rendering) | (b"AT", Ctx::Attending) => {
                        if let Some(p) = self.provider_slot() {
                            p.taxonomy = taxonomy;
                        }
                    }
                    _ => {}
                }
            }
            b"REF" => self.reference(seg),
            b"SBR" => {
                // An other payer's SBR (2320) comes before the claim's
                // service lines: one after them begins a subscriber loop
                // whose HL was lost.
                if self.claim.as_ref().is_some_and(|c| !c.lines.is_empty()) {
                    return Err(Claim837Error {
                        pos: seg.pos,
                        claim: None,
                        element: Cow::Borrowed("SBR"),
                        wrong: Wrong::Misplaced(
                            "comes after the claim's service lines: an HL segment may be missing",
                        ),
                    });
                }
                let responsibility = match seg.el(1) {
                    b"S" => Responsibility::Secondary,
                    b"T" => Responsibility::Tertiary,
                    _ => Responsibility::Primary,
                };
                if let Some(claim) = self.claim.as_mut() {
                    claim.other_payers.push(OtherPayer {
                        responsibility,
                        relationship: owned(seg, 2),
                        group_number: opt(seg, 3),
                        claim_filing: owned(seg, 9),
                        ..OtherPayer::default()
                    });
                    self.ctx = Ctx::OtherSubscriber;
                } else {
                    let s = &mut self.subscriber;
                    s.responsibility = responsibility;
                    s.group_number = opt(seg, 3);
                    s.group_name = opt(seg, 4);
                    s.claim_filing = owned(seg, 9);
                }
            }
            b"DMG" => {
                let dob = Some(date(seg.text(2), "DMG02")?);
                let gender = match seg.el(3) {
                    b"M" => Some(Gender::Male),
                    b"F" => Some(Gender::Female),
                    b"U" => Some(Gender::Unknown),
                    _ => None,
                };
                match (self.ctx, self.patient.as_mut()) {
                    (Ctx::Patient, Some(p)) => (p.birth_date, p.gender) = (dob, gender),
                    (Ctx::Subscriber, _) => {
                        (self.subscriber.birth_date, self.subscriber.gender) = (dob, gender)
                    }
                    _ => {}
                }
            }
            // The patient loop's PAT (2000C). A subscriber loop's PAT
            // (2000B) carries only a death date, weight or pregnancy for a
            // subscriber who is the patient: it makes no patient (it made
            // one with no relationship, and a valid claim was refused).
            b"PAT" if self.level == 23 => {
                let p = self.patient.get_or_insert_with(Patient::default);
                p.relationship = owned(seg, 1);
            }
            b"CLM" => {
                // A claim whose CLM cannot be read is still opened: it is
                // then named (damaged), not lost with what follows it.
                let (total, unread) = match dec(2, "CLM02") {
                    Ok(total) => (total, None),
                    Err(e) => (Decimal::ZERO, Some(e)),
                };
                let unread = unread.or_else(|| {
                    (!matches!(seg.el(9), b"I" | b"Y")).then(|| err("CLM09", "", "I or Y"))
                });
                let professional = self.kind == ClaimKind::Professional;
                let facility = seg.comp(5, 1);
                // Most files have one claim per subscriber loop: move the
                // parties into it; a second claim under the same loop copies
                // them from the claim before.
                let (subscriber, payer, patient) = match (done, self.parties_taken) {
                    (Some(prev), true) => (
                        prev.subscriber.clone(),
                        prev.payer.clone(),
                        prev.patient.clone(),
                    ),
                    _ => (
                        std::mem::take(&mut self.subscriber),
                        std::mem::take(&mut self.payer),
                        self.patient.take(),
                    ),
                };
                self.parties_taken = true;
                self.claim = Some(Box::new(Claim {
                    kind: self.kind,
                    id: owned(seg, 1),
                    total_charge: total,
                    place_of_service: professional.then(|| facility.to_owned()),
                    type_of_bill: (!professional).then(|| facility.to_owned()),
                    frequency_code: seg.comp(5, 3).to_owned(),
                    provider_signature: seg.el(6) != b"N",
                    assignment: owned(seg, 7),
                    benefits_assigned: seg.el(8) != b"N",
                    release_of_information: owned(seg, 9),
                    statement_from: None,
                    statement_to: None,
                    admission: None,
                    discharge_hour: None,
                    patient_status: None,
                    diagnoses: Vec::new(),
                    icd_version: IcdVersion::Icd10,
                    admitting_diagnosis: None,
                    visit_reasons: Vec::new(),
                    drg: None,
                    related_causes: if professional {
                        seg.comps(11)
                            .take(3)
                            .filter(|c| !c.is_empty())
                            .map(str::to_owned)
                            .collect()
                    } else {
                        Vec::new()
                    },
                    accident_date: None,
                    accident_state: Some(seg.comp(11, 4))
                        .filter(|s| professional && !s.is_empty())
                        .map(str::to_owned),
                    onset_date: None,
                    initial_treatment_date: None,
                    clia_number: None,
                    referral_number: None,
                    prior_authorization: None,
                    payer_claim_number: None,
                    medical_record_number: None,
                    note: None,
                    billing_provider: self.billing.clone().into(),
                    referring_provider: None,
                    rendering_provider: None,
                    attending_provider: None,
                    service_facility: None,
                    subscriber,
                    patient,
                    payer,
                    other_payers: Vec::new(),
                    lines: Vec::new(),
                }));
                self.ctx = Ctx::Claim;
                self.clm = seg.pos.segment;
                if let Some(e) = unread {
                    return Err(e);
                }
            }
            b"DTP" => {
                let qualifier = seg.el(1);
                let in_line = self.ctx == Ctx::Line;
                let Some(claim) = self.claim.as_mut() else {
                    return Ok(());
                };
                match qualifier {
                    b"472" if in_line => {
                        let (from, to) = range("DTP03")?;
                        if let Some(line) = claim.lines.last_mut() {
                            // A second date in one line: its LX was lost.
                            if line.service_date.is_some() {
                                return Err(Claim837Error {
                                    pos: seg.pos,
                                    claim: None,
                                    element: Cow::Borrowed("DTP*472"),
                                    wrong: Wrong::Repeated,
                                });
                            }
                            line.service_date = Some(from);
                            line.service_date_end = (to != from).then_some(to);
                        }
                    }
                    b"434" if !in_line => {
                        let (from, to) = range("DTP03")?;
                        (claim.statement_from, claim.statement_to) = (Some(from), Some(to));
                    }
                    b"435" if !in_line => {
                        let v = seg.text(3);
                        let a = claim.admission.get_or_insert_with(Admission::default);
                        a.date = Some(date(v, "DTP03")?);
                        // DT: CCYYMMDDHHMM.
                        a.hour = v.get(8..).filter(|h| !h.is_empty()).map(str::to_owned);
                    }
                    b"096" if !in_line && seg.el(2) == b"TM" => {
                        claim.discharge_hour = opt(seg, 3);
                    }
                    b"431" if !in_line => claim.onset_date = Some(date(seg.text(3), "DTP03")?),
                    b"454" if !in_line => {
                        claim.initial_treatment_date = Some(date(seg.text(3), "DTP03")?);
                    }
                    b"439" if !in_line => claim.accident_date = Some(date(seg.text(3), "DTP03")?),
                    b"573" if self.ctx == Ctx::OtherPayerName => {
                        if let Some(o) = claim.other_payers.last_mut() {
                            o.adjudication_date = Some(date(seg.text(3), "DTP03")?);
                        }
                    }
                    _ => {}
                }
            }
            b"CL1" => {
                if let Some(claim) = self.claim.as_mut() {
                    let (kind, source) = (opt(seg, 1), opt(seg, 2));
                    if kind.is_some() || source.is_some() {
                        let a = claim.admission.get_or_insert_with(Admission::default);
                        (a.kind, a.source) = (kind, source);
                    }
                    claim.patient_status = opt(seg, 3);
                }
            }
            b"NTE" if self.ctx == Ctx::Claim => {
                if let Some(claim) = self.claim.as_mut() {
                    claim.note = opt(seg, 2);
                }
            }
            b"HI" => {
                if let Some(claim) = self.claim.as_mut() {
                    for (n, element) in (1..).zip(seg.texts()) {
                        if element.is_empty() {
                            continue;
                        }
                        let mut parts = seg.components_of(element);
                        let (qualifier, code) = (
                            parts.next().unwrap_or_default(),
                            parts.next().unwrap_or_default(),
                        );
                        // A code list qualifier is one to three capitals:
                        // anything else is a component separator lost.
                        if !(1..=3).contains(&qualifier.len())
                            || !qualifier.bytes().all(|b| b.is_ascii_uppercase())
                            || code.is_empty()
                        {
                            return Err(Claim837Error {
                                pos: seg.pos,
                                claim: None,
                                element: Cow::Owned(format!("HI{n:02}")),
                                wrong: Wrong::NotA("a code list qualifier with its code"),
                            });
                        }
                        // The principal diagnosis comes first, once: a
                        // second, or another before it, is a lost or
                        // repeated segment that would change which is
                        // principal.
                        let principal = matches!(qualifier, "ABK" | "BK");
                        let secondary = matches!(qualifier, "ABF" | "BF");
                        if (principal && !claim.diagnoses.is_empty())
                            || (secondary && claim.diagnoses.is_empty())
                        {
                            return Err(Claim837Error {
                                pos: seg.pos,
                                claim: None,
                                element: Cow::Owned(format!("HI{n:02}")),
                                wrong: Wrong::Misplaced(if principal {
                                    "is a second principal diagnosis (ABK/BK)"
                                } else {
                                    "comes before the principal diagnosis (ABK/BK)"
                                }),
                            });
                        }
                        match qualifier {
                            "ABK" | "ABF" => claim.diagnoses.push(code.to_owned()),
                            "BK" | "BF" => {
                                claim.icd_version = IcdVersion::Icd9;
                                claim.diagnoses.push(code.to_owned());
                            }
                            "ABJ" | "BJ" => claim.admitting_diagnosis = Some(code.to_owned()),
                            "APR" | "PR" => claim.visit_reasons.push(code.to_owned()),
                            "DR" => claim.drg = Some(code.to_owned()),
                            _ => {}
                        }
                    }
                }
            }
            b"CAS" if self.ctx == Ctx::OtherSubscriber => {
                let group = owned(seg, 1);
                let mut adjustments = Vec::new();
                for k in 0..6 {
                    let at = 2 + 3 * k;
                    if seg.el(at).is_empty() {
                        break;
                    }
                    adjustments.push(Adjustment {
                        group: group.clone(),
                        reason: owned(seg, at),
                        amount: dec(at + 1, "CAS03")?,
                        quantity: opt_dec(at + 2, "CAS04")?,
                    });
                }
                if let Some(o) = self.claim.as_mut().and_then(|c| c.other_payers.last_mut()) {
                    o.adjustments.extend(adjustments);
                }
            }
            b"AMT" if self.ctx == Ctx::OtherSubscriber && seg.el(1) == b"D" => {
                let paid = dec(2, "AMT02")?;
                if let Some(o) = self.claim.as_mut().and_then(|c| c.other_payers.last_mut()) {
                    o.paid_amount = Some(paid);
                }
            }
            b"LX" => {
                if let Some(claim) = self.claim.as_mut() {
                    claim.lines.push(ServiceLine {
                        unit_basis: "UN".into(),
                        ..ServiceLine::default()
                    });
                    self.ctx = Ctx::Line;
                }
            }
            b"SV1" | b"SV2" => {
                let professional = id == b"SV1";
                let (proc_el, first) = if professional { (1, 2) } else { (2, 3) };
                let procedure = procedure(seg, proc_el).map_err(|element| {
                    err(
                        element,
                        "",
                        "a procedure code qualifier (ER, HC, HP, IV or WK) with its code",
                    )
                })?;
                let charge = dec(first, if professional { "SV102" } else { "SV203" })?;
                let units = opt_dec(first + 2, if professional { "SV104" } else { "SV205" })?;
                let pointers = if professional {
                    pointers(seg).ok_or_else(|| err("SV107", "", "diagnosis pointers (1 to 12)"))?
                } else {
                    Vec::new()
                };
                let Some(line) = self.claim.as_mut().and_then(|c| c.lines.last_mut()) else {
                    return Err(Claim837Error {
                        pos: seg.pos,
                        claim: None,
                        element: Cow::Borrowed(if professional { "SV1" } else { "SV2" }),
                        wrong: Wrong::Misplaced(
                            "comes before any LX in its claim: an LX segment may be missing",
                        ),
                    });
                };
                // A line already read: the LX between two lines was lost.
                if line.procedure.is_some() || line.revenue_code.is_some() {
                    return Err(Claim837Error {
                        pos: seg.pos,
                        claim: None,
                        element: Cow::Borrowed(if professional { "SV1" } else { "SV2" }),
                        wrong: Wrong::Repeated,
                    });
                }
                line.procedure = procedure;
                line.charge = charge;
                line.unit_basis = owned(seg, first + 1);
                line.units = units.unwrap_or(Decimal::ONE);
                if professional {
                    line.place_of_service = opt(seg, 5);
                    line.diagnosis_pointers = pointers;
                } else {
                    line.revenue_code = opt(seg, 1);
                }
            }
            b"LIN" if self.ctx == Ctx::Line => {
                if let Some(line) = self.claim.as_mut().and_then(|c| c.lines.last_mut()) {
                    line.drug = Some(Drug {
                        ndc: owned(seg, 3),
                        quantity: Decimal::ZERO,
                        unit: String::new(),
                    });
                }
            }
            b"CTP" if self.ctx == Ctx::Line => {
                let quantity = opt_dec(4, "CTP04")?;
                let unit = seg.comp(5, 1).to_owned();
                if let Some(drug) = self
                    .claim
                    .as_mut()
                    .and_then(|c| c.lines.last_mut())
                    .and_then(|l| l.drug.as_mut())
                {
                    drug.quantity = quantity.unwrap_or_default();
                    drug.unit = unit;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn nm1(&mut self, seg: &Fields<'_>) {
        let entity = if seg.el(2) == b"1" {
            EntityType::Person
        } else {
            EntityType::Organization
        };
        let npi = (seg.el(8) == b"XX").then(|| owned(seg, 9));
        let in_line = self.ctx == Ctx::Line;
        let in_cob = matches!(self.ctx, Ctx::OtherSubscriber | Ctx::OtherPayerName);
        let provider = || Provider {
            entity,
            name: owned(seg, 3),
            first_name: opt(seg, 4),
            npi: npi.clone(),
            taxonomy: None,
        };
        self.ctx = match (seg.el(1), self.claim.as_mut()) {
            (b"41", _) => {
                self.submitter = Some(Submitter {
                    name: owned(seg, 3),
                    id: owned(seg, 9),
                    contact_name: None,
                    phone: None,
                    email: None,
                });
                Ctx::None
            }
            (b"40", _) => {
                self.receiver = Some(Receiver {
                    name: owned(seg, 3),
                    id: owned(seg, 9),
                });
                Ctx::None
            }
            (b"85", _) => {
                let b = &mut self.billing;
                b.entity = entity;
                b.name = owned(seg, 3);
                b.first_name = opt(seg, 4);
                b.npi = npi.clone().unwrap_or_default();
                Ctx::Billing
            }
            (b"87", _) => {
                self.billing.pay_to_address = Some(Address::default());
                Ctx::PayTo
            }
            (b"IL", Some(claim)) if in_cob => {
                if let Some(o) = claim.other_payers.last_mut() {
                    o.subscriber_last_name = owned(seg, 3);
                    o.subscriber_first_name = opt(seg, 4);
                    o.subscriber_member_id = owned(seg, 9);
                }
                Ctx::OtherSubscriber
            }
            (b"PR", Some(claim)) if in_cob => {
                if let Some(o) = claim.other_payers.last_mut() {
                    o.payer_name = owned(seg, 3);
                    o.payer_id = owned(seg, 9);
                }
                Ctx::OtherPayerName
            }
            (b"IL", None) => {
                let s = &mut self.subscriber;
                s.last_name = owned(seg, 3);
                s.first_name = opt(seg, 4);
                s.middle_name = opt(seg, 5);
                s.member_id = owned(seg, 9);
                Ctx::Subscriber
            }
            (b"PR", None) => {
                self.payer.name = owned(seg, 3);
                self.payer.id = owned(seg, 9);
                Ctx::Payer
            }
            (b"QC", None) => {
                let p = self.patient.get_or_insert_with(Patient::default);
                p.last_name = owned(seg, 3);
                p.first_name = opt(seg, 4);
                Ctx::Patient
            }
            (_, Some(_)) if in_line || in_cob => Ctx::Skip,
            (b"DN", Some(claim)) => {
                claim.referring_provider = Some(provider());
                Ctx::Referring
            }
            (b"82", Some(claim)) => {
                claim.rendering_provider = Some(provider());
                Ctx::Rendering
            }
            (b"71", Some(claim)) => {
                claim.attending_provider = Some(provider());
                Ctx::Attending
            }
            (b"77", Some(claim)) => {
                claim.service_facility = Some(Facility {
                    name: owned(seg, 3),
                    npi,
                    address: Address::default(),
                });
                Ctx::Facility
            }
            _ => Ctx::Skip,
        };
    }

    fn reference(&mut self, seg: &Fields<'_>) {
        let value = opt(seg, 2);
        match (self.ctx, seg.el(1)) {
            (Ctx::Billing, b"EI") => self.billing.tax_id = value.unwrap_or_default(),
            (Ctx::Billing, b"SY") => {
                self.billing.tax_id = value.unwrap_or_default();
                self.billing.ssn_as_tax_id = Some(true);
            }
            (Ctx::Line, b"6R") => {
                if let Some(line) = self.claim.as_mut().and_then(|c| c.lines.last_mut()) {
                    line.line_control_number = value;
                }
            }
            (Ctx::Claim, q) => {
                if let Some(claim) = self.claim.as_mut() {
                    match q {
                        b"G1" => claim.prior_authorization = value,
                        b"F8" => claim.payer_claim_number = value,
                        b"EA" => claim.medical_record_number = value,
                        b"9F" => claim.referral_number = value,
                        b"X4" => claim.clia_number = value,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn address_slot(&mut self) -> Option<&mut Address> {
        match self.ctx {
            Ctx::Billing => Some(&mut self.billing.address),
            Ctx::PayTo => self.billing.pay_to_address.as_mut(),
            Ctx::Subscriber => Some(self.subscriber.address.get_or_insert_with(Address::default)),
            Ctx::Payer => Some(self.payer.address.get_or_insert_with(Address::default)),
            Ctx::Patient => self
                .patient
                .as_mut()
                .map(|p| p.address.get_or_insert_with(Address::default)),
            Ctx::Facility => self
                .claim
                .as_mut()
                .and_then(|c| c.service_facility.as_mut())
                .map(|f| &mut f.address),
            _ => None,
        }
    }

    fn provider_slot(&mut self) -> Option<&mut Provider> {
        let claim = self.claim.as_mut()?;
        match self.ctx {
            Ctx::Rendering => claim.rendering_provider.as_mut(),
            Ctx::Attending => claim.attending_provider.as_mut(),
            Ctx::Referring => claim.referring_provider.as_mut(),
            _ => None,
        }
    }
}

/// CCYYMMDD (a DT date-time's first eight characters) without a format string.
pub(crate) fn ccyymmdd(s: &str) -> Option<NaiveDate> {
    let d = s.as_bytes().get(..8)?;
    if !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| {
        d.get(r)
            .map(|x| x.iter().fold(0u32, |a, b| a * 10 + u32::from(b - b'0')))
    };
    NaiveDate::from_ymd_opt(i32::try_from(n(0..4)?).ok()?, n(4..6)?, n(6..8)?)
}

fn owned(seg: &Fields<'_>, n: usize) -> String {
    seg.text(n).to_owned()
}

fn opt(seg: &Fields<'_>, n: usize) -> Option<String> {
    Some(seg.text(n))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The procedure in composite `n` (SV101 or SV202): None when the element
/// is empty; Err (naming the element) when its qualifier is not one the
/// guides list or its code is empty: what a changed component separator
/// (ISA16) makes of `HC:99213`.
fn procedure(seg: &Fields<'_>, n: usize) -> Result<Option<Procedure>, &'static str> {
    if seg.el(n).is_empty() {
        return Ok(None);
    }
    let mut parts = seg.comps(n);
    let qualifier = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !matches!(qualifier, "ER" | "HC" | "HP" | "IV" | "WK") || code.is_empty() {
        return Err(if n == 1 { "SV101" } else { "SV202" });
    }
    let modifiers = parts
        .take(4)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Some(Procedure {
        qualifier: qualifier.to_owned(),
        code: code.to_owned(),
        modifiers,
    }))
}

/// SV107's diagnosis pointers, each 1 to 12; None when one is not.
fn pointers(seg: &Fields<'_>) -> Option<Vec<u8>> {
    if seg.el(7).is_empty() {
        return Some(Vec::new());
    }
    seg.comps(7)
        .map(|p| p.parse::<u8>().ok().filter(|n| (1..=12).contains(n)))
        .collect()
}

/// The first segment a claim needs and lacks: its diagnoses (HI), a
/// service line (LX), each line's service (SV1, or SV2's revenue code) and,
/// on a professional claim, each line's date (DTP*472).
fn missing(claim: &Claim) -> Option<Damage> {
    let professional = claim.kind == ClaimKind::Professional;
    if let Some(what) = party_missing(claim) {
        return Some(Damage::Party { what });
    }
    if claim.diagnoses.is_empty() {
        return Some(Damage::Missing {
            segment: "HI",
            line: None,
        });
    }
    if claim.lines.is_empty() {
        return Some(Damage::Missing {
            segment: "LX",
            line: None,
        });
    }
    let line = claim.lines.iter().zip(1..).find_map(|(line, n)| {
        let segment = if professional {
            if line.procedure.is_none() {
                "SV1"
            } else if line.service_date.is_none() {
                "DTP*472"
            } else if line.diagnosis_pointers.is_empty() {
                "SV107 (diagnosis pointers)"
            } else if line
                .diagnosis_pointers
                .iter()
                .any(|&p| usize::from(p) > claim.diagnoses.len())
            {
                return Some(Damage::Pointer { line: n });
            } else {
                return None;
            }
        } else if line.revenue_code.is_none() {
            "SV2"
        } else {
            return None;
        };
        Some(Damage::Missing {
            segment,
            line: Some(n),
        })
    });
    // The guides have CLM02 balance to the lines' charges: a line lost (or
    // one run into another) shows here. Said after what a line lacks,
    // which names the line.
    line.or_else(|| {
        (claim.lines.iter().map(|l| l.charge).sum::<Decimal>() != claim.total_charge)
            .then_some(Damage::Unbalanced)
    })
}

/// The first part of a claim's parties the guides require and the claim
/// lacks: what a lost or damaged NM1, N3, N4, REF, SBR, PAT or DMG leaves.
fn party_missing(claim: &Claim) -> Option<&'static str> {
    let b = &claim.billing_provider;
    let blank = |a: &crate::model::Address| {
        a.line1.is_empty() || a.city.is_empty() || a.state.is_empty() || a.zip.is_empty()
    };
    let s = &claim.subscriber;
    Some(if b.name.is_empty() || b.npi.is_empty() {
        "the billing provider's name or NPI (NM1*85)"
    } else if blank(&b.address) {
        "the billing provider's address (N3, N4)"
    } else if b.tax_id.is_empty() {
        "the billing provider's tax id (REF*EI or REF*SY)"
    } else if s.last_name.is_empty() || s.member_id.is_empty() {
        "the subscriber's name or member id (NM1*IL)"
    } else if s.claim_filing.is_empty() {
        "the subscriber's claim filing code (SBR09)"
    } else if claim.payer.name.is_empty() || claim.payer.id.is_empty() {
        "the payer's name or id (NM1*PR)"
    } else if claim.patient.is_none() && s.birth_date.is_none() {
        "the birth date of the subscriber, who is the patient (DMG)"
    } else if let Some(p) = &claim.patient {
        if p.relationship.is_empty() {
            "the patient's relationship (PAT)"
        } else if p.last_name.is_empty() {
            "the patient's name (NM1*QC)"
        } else if p.birth_date.is_none() {
            "the patient's birth date (DMG)"
        } else {
            return None;
        }
    } else {
        return None;
    })
}

/// Most elements the 837 guides (005010X222A1, X223A2) use in each segment
/// the body may hold, from pyx12's maps of them: a value past these is two
/// segments run together. REF is narrowed by its qualifier below.
const MAX_USED: [(&[u8], u8); 42] = [
    (b"REF", 2),
    (b"LX", 1),
    (b"K3", 1),
    (b"AMT", 2),
    (b"CUR", 2),
    (b"LQ", 2),
    (b"N3", 2),
    (b"NTE", 2),
    (b"PS1", 2),
    (b"QTY", 2),
    (b"CL1", 3),
    (b"CR3", 3),
    (b"DMG", 3),
    (b"DTP", 3),
    (b"LIN", 3),
    (b"MEA", 3),
    (b"PRV", 3),
    (b"HL", 4),
    (b"CTP", 5),
    (b"FRM", 5),
    (b"BHT", 6),
    (b"CN1", 6),
    (b"OI", 6),
    (b"PWK", 6),
    (b"SV5", 6),
    (b"SVD", 6),
    (b"N4", 7),
    (b"CRC", 7),
    (b"SV2", 7),
    (b"PER", 8),
    (b"MOA", 9),
    (b"NM1", 9),
    (b"PAT", 9),
    (b"SBR", 9),
    (b"CR1", 10),
    (b"CR2", 11),
    (b"HI", 12),
    (b"HCP", 15),
    (b"SV1", 15),
    (b"CAS", 19),
    (b"CLM", 20),
    (b"MIA", 24),
];

/// [`MAX_USED`] by [`id_slot`]: one load per segment, no search (0: an id
/// the guides do not use). 34,632 bytes, of which a reader touches the few
/// slots of the ids it meets.
static MAX_USED_BY_ID: [u8; ID_SLOTS] = slot_table(&MAX_USED);

/// The most elements the guides use in a segment with this key and first
/// element; None for an id they do not use.
fn max_used(key: u32, first: &[u8]) -> Option<usize> {
    const REF: u32 = segment_key(b"REF");
    let max = id_slot(key).and_then(|slot| MAX_USED_BY_ID.get(slot).copied())?;
    match max {
        0 => None,
        _ if key == REF && matches!(first, b"G1" | b"9F" | b"0B" | b"1G" | b"G2" | b"LU") => {
            Some(4)
        }
        _ => Some(usize::from(max)),
    }
}

/// Whether a segment with this key belongs only inside a claim (the 2300
/// loop and the loops below it).
fn in_claim_only(key: u32) -> bool {
    const IDS: [&[u8]; 29] = [
        b"AMT", b"CAS", b"CL1", b"CN1", b"CR1", b"CR2", b"CR3", b"CRC", b"CTP", b"DTP", b"FRM",
        b"HCP", b"HI", b"K3", b"LIN", b"LQ", b"LX", b"MEA", b"MIA", b"MOA", b"NTE", b"OI", b"PS1",
        b"PWK", b"QTY", b"SV1", b"SV2", b"SV5", b"SVD",
    ];
    const KEYS: [u32; IDS.len()] = {
        let mut keys = [0; IDS.len()];
        let mut i = 0;
        while i < IDS.len() {
            keys[i] = segment_key(IDS[i]);
            i += 1;
        }
        keys
    };
    KEYS.contains(&key)
}

/// Whether `text` holds a control character (below 0x20, or DEL) other
/// than `allowed` ones (the file's own element, component and repetition
/// separators, which may be control characters). A segment has none but
/// when damaged: the exact look is taken only when the quick one finds one.
fn stray_control(text: &[u8], allowed: [u8; 3]) -> bool {
    maybe_control(text) && text.iter().any(|&b| is_control(b) && !allowed.contains(&b))
}

/// A control character: below 0x20, or DEL.
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Whether `text` may hold a control character: sixteen bytes at a time
/// with SSE2 (every x86-64 CPU has it), the last sixteen overlapping the
/// ones before; a shorter text is padded with spaces. No loop whose length
/// depends on the text but the count of sixteens (a segment's average is
/// under thirty bytes).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn maybe_control(text: &[u8]) -> bool {
    use safe_arch::{bitor_m128i, m128i, move_mask_i8_m128i, set_splat_i8_m128i};
    use safe_arch::{cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i};
    let low = set_splat_i8_m128i(0x1f);
    let del = set_splat_i8_m128i(0x7f);
    // A byte is at most 0x1F when the unsigned minimum with 0x1F is itself.
    let hits = |v: m128i| {
        move_mask_i8_m128i(bitor_m128i(
            cmp_eq_mask_i8_m128i(min_u8_m128i(v, low), v),
            cmp_eq_mask_i8_m128i(v, del),
        )) != 0
    };
    let load = |chunk: &[u8]| load_unaligned_m128i(chunk.try_into().unwrap_or(&[b' '; 16]));
    if text.len() < 16 {
        let mut padded = [b' '; 16];
        if let Some(head) = padded.get_mut(..text.len()) {
            head.copy_from_slice(text);
        }
        return hits(load(&padded));
    }
    let mut any = false;
    for chunk in text.chunks_exact(16) {
        any |= hits(load(chunk));
    }
    let last = text.get(text.len() - 16..).unwrap_or_default();
    any || hits(load(last))
}

/// [`maybe_control`] without SSE2: a byte loop.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn maybe_control(text: &[u8]) -> bool {
    text.iter().any(|&b| is_control(b))
}

/// What shows a segment damaged whatever it holds: a control character
/// that is not one of the file's delimiters, or a value past the last
/// element the guides use.
fn damaged_segment(seg: &Fields<'_>, delims: Delimiters) -> Option<Claim837Error> {
    let id = || String::from_utf8_lossy(seg.id()).into_owned();
    if stray_control(
        seg.as_str().as_bytes(),
        [delims.element, delims.component, delims.repetition],
    ) {
        return Some(Claim837Error {
            pos: seg.pos,
            claim: None,
            element: Cow::Owned(id()),
            wrong: Wrong::ControlCharacter,
        });
    }
    let Some(max) = max_used(seg.key(), seg.el(1)) else {
        // A segment that is not UTF-8 reads as U+FFFD, with no id.
        let utf8 = seg.as_str() != "\u{fffd}";
        return Some(Claim837Error {
            pos: seg.pos,
            claim: None,
            element: Cow::Owned(if utf8 { id() } else { "the segment".to_owned() }),
            wrong: if utf8 {
                Wrong::Unknown
            } else {
                Wrong::NotA("text this reader can read (UTF-8)")
            },
        });
    };
    if seg.count() <= max {
        return None;
    }
    let past = (max + 1..=seg.count()).find(|&n| !seg.el(n).is_empty())?;
    Some(Claim837Error {
        pos: seg.pos,
        claim: None,
        element: Cow::Owned(format!("{}{past:02}", id())),
        wrong: Wrong::NotUsed,
    })
}

impl Closed {
    fn new(claim: Box<Claim>, clm: u64, damage: Option<Damage>) -> Self {
        match damage {
            None => Closed::Whole(claim),
            Some(damage) => Closed::Damaged {
                claim: claim.id,
                clm,
                damage,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x12::{EnvelopeEvent, EnvelopeReader, ReadError, Tokenizer};

    #[test]
    fn a_bad_value_is_located_without_being_quoted() {
        let text = "ISA*00*          *00*          *ZZ*S              *ZZ*R              *261120*1000*^*00501*000000001*0*T*:~GS*HC*S*R*20261120*1000*1*X*005010X222A1~ST*837*0001*005010X222A1~HL*1**20*1~HL*2*1*22*0~NM1*IL*1*DOE*JANE****MI*SECRET123~DMG*D8*19611340*F~CLM*C1*100***11:B:1*Y*A*Y*Y~SE*7*0001~GE*1*1~IEA*1*000000001~";
        let mut env = EnvelopeReader::new();
        let mut reader = None;
        let mut errors = Vec::new();
        Tokenizer::new()
            .feed::<ReadError>(text.as_bytes(), true, |s| {
                match env.segment(&s)? {
                    EnvelopeEvent::SetStart(st) => reader = ClaimReader::for_version(&st.version),
                    EnvelopeEvent::Body { .. } => {
                        if let Some(e) = reader.as_mut().unwrap().segment(&s).error {
                            errors.push(e.to_string());
                        }
                    }
                    _ => {}
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(
            errors,
            ["at segment 7 (byte 229): DMG02 is not a CCYYMMDD date"]
        );
    }

    /// Two claims under two subscribers; RFM-1001 has two service lines.
    const TWO: &str = "ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *261120*1000*^*00501*000000001*0*T*:~\
GS*HC*SUBMITTER*RECEIVER*20261120*1000*1*X*005010X222A1~ST*837*0001*005010X222A1~\
BHT*0019*00*B1*20261120*1000*CH~NM1*41*2*CLINIC*****46*S1~PER*IC*DESK*TE*5555550100~\
NM1*40*2*PAYER*****46*R1~HL*1**20*1~NM1*85*2*CLINIC*****XX*1234567893~N3*1 MAIN ST~\
N4*TOWN*NY*12345~REF*EI*123456789~HL*2*1*22*0~SBR*P*18*******CI~NM1*IL*1*DOE*JANE****MI*M1~\
DMG*D8*19610101*F~NM1*PR*2*PAYER*****PI*P1~CLM*RFM-1001*185***11:B:1*Y*A*Y*Y~\
HI*ABK:J020*ABF:R05~LX*1~SV1*HC:94640*35*UN*1***1~DTP*472*D8*20261101~REF*6R*RFM-1001-1~\
LX*2~SV1*HC:99214:25*150*UN*1***1:2~DTP*472*D8*20261101~REF*6R*RFM-1001-2~\
HL*3*1*22*0~SBR*P*18*******CI~NM1*IL*1*ROE*RAY****MI*M2~DMG*D8*19700101*M~\
NM1*PR*2*PAYER*****PI*P1~CLM*RFM-1002*50***11:B:1*Y*A*Y*Y~HI*ABK:J020~LX*1~\
SV1*HC:99213*50*UN*1***1~DTP*472*D8*20261101~SE*36*0001~GE*1*1~IEA*1*000000001~";

    /// The claims `text` lists and the problems it names.
    fn listed_and_named(text: &str) -> (Vec<String>, Vec<String>) {
        let mut listed = Vec::new();
        let summary = crate::inspect::read_items(text.as_bytes(), |item| {
            if let crate::inspect::Item::Claim(c) = item {
                listed.push(c.id.clone());
            }
        })
        .unwrap();
        assert_eq!(
            summary.claims as usize,
            listed.len(),
            "the count is what is listed"
        );
        let mut named: Vec<String> = summary.problems.iter().map(|p| p.to_string()).collect();
        named.extend(summary.fatal.iter().map(|e| e.to_string()));
        (listed, named)
    }

    /// `damaged` read: RFM-1001 is not listed but named as damaged (and,
    /// unless `only_1001`, RFM-1002 is still listed whole).
    fn assert_1001_named_not_listed(damaged: &str, why: &str) {
        let (listed, named) = listed_and_named(damaged);
        assert!(
            !listed.contains(&"RFM-1001".to_owned()),
            "{why}: RFM-1001 listed as whole; problems: {named:#?}"
        );
        assert!(
            named
                .iter()
                .any(|p| p.contains("claim RFM-1001 (its CLM at segment")
                    && p.ends_with("not listed")),
            "{why}: RFM-1001 not named: {named:#?}"
        );
        for p in &named {
            for phi in ["DOE", "JANE", "M1", "19610101", "J020", "R05"] {
                assert!(!p.contains(phi), "{why}: {p} quotes a value");
            }
        }
    }

    /// `TWO` with `from` (which it must hold) replaced by `to`, read:
    /// `claim` is not listed, a problem names it, and one says `said`.
    fn assert_damage_named(from: &str, to: &str, claim: &str, said: &str) {
        assert!(TWO.contains(from), "{said}");
        let (listed, named) = listed_and_named(&TWO.replacen(from, to, 1));
        assert!(
            !listed.iter().any(|c| c == claim),
            "{said}: {claim} listed: {named:#?}"
        );
        assert!(
            named
                .iter()
                .any(|p| p.contains(&format!("claim {claim} (its CLM"))),
            "{said}: {claim} not named: {named:#?}"
        );
        assert!(named.iter().any(|p| p.contains(said)), "{said}: {named:#?}");
    }

    #[test]
    fn a_whole_file_lists_both_claims_and_names_nothing() {
        let (listed, named) = listed_and_named(TWO);
        assert_eq!(listed, ["RFM-1001", "RFM-1002"]);
        assert!(named.is_empty(), "{named:#?}");
    }

    // tester19 F3: each damage of a delimiter or a segment once listed
    // RFM-1001 whole, with a line, its diagnoses or its codes gone.
    #[test]
    fn a_claim_a_damaged_delimiter_runs_into_the_next_segment_is_named_not_listed() {
        let cases = [
            (
                "REF*6R*RFM-1001-1~LX*2~",
                "REF*6R*RFM-1001-1LX*2~",
                "terminator lost before LX",
            ),
            (
                "REF*6R*RFM-1001-1~LX*2~",
                "REF*6R*RFM-1001-1\nLX*2~",
                "terminator made a line break",
            ),
            (
                "REF*6R*RFM-1001-1~LX*2~",
                "REF*6R*RFM-1001-1~",
                "LX removed",
            ),
            (
                "SV1*HC:94640*35*UN*1***1~DTP",
                "SV1*HC:94640*35*UN*1***1DTP",
                "terminator lost after SV1",
            ),
            (
                "*Y~HI*ABK:J020*ABF:R05~",
                "*YHI*ABK:J020*ABF:R05~",
                "terminator lost after CLM",
            ),
            (
                "SV1*HC:99214:25*150*",
                "SV1*HC:99214:25|150*",
                "element separator changed",
            ),
            (
                "CLM*RFM-1001*185*",
                "CLM*RFM-1001*1X5*",
                "CLM02 not a number",
            ),
            ("HI*ABK:J020*ABF:R05~", "", "HI removed"),
            (
                "DTP*472*D8*20261101~REF*6R*RFM-1001-1~",
                "REF*6R*RFM-1001-1~",
                "line 1's date removed",
            ),
        ];
        for (from, to, why) in cases {
            assert!(TWO.contains(from), "{why}");
            let damaged = TWO.replacen(from, to, 1);
            assert_1001_named_not_listed(&damaged, why);
            let (listed, _) = listed_and_named(&damaged);
            assert_eq!(listed, ["RFM-1002"], "{why}: the other claim stays listed");
        }
    }

    #[test]
    fn a_changed_component_separator_lists_no_claim() {
        // ISA16 ':' → '>': every composite reads as one value.
        let damaged = TWO.replacen("*T*:~", "*T*>~", 1);
        let (listed, named) = listed_and_named(&damaged);
        assert!(listed.is_empty(), "{listed:?} listed; {named:#?}");
        assert!(
            named.iter().any(|p| p.contains("claim RFM-1001 (its CLM")),
            "{named:#?}"
        );
        assert!(
            named.iter().any(|p| p.contains("claim RFM-1002 (its CLM")),
            "{named:#?}"
        );
        assert!(
            named
                .iter()
                .any(|p| p.contains("SV101 is not a procedure code qualifier")),
            "{named:#?}"
        );
    }

    #[test]
    fn a_damaged_subscriber_loop_names_its_claim_and_spares_the_next_subscriber() {
        let damaged = TWO.replacen("DMG*D8*19610101*F~", "DMG*D8*19611340*F~", 1);
        let (listed, named) = listed_and_named(&damaged);
        assert_eq!(listed, ["RFM-1002"], "{named:#?}");
        assert!(
            named.iter().any(|p| p.contains("claim RFM-1001 (its CLM at segment 18) sits under a billing provider, subscriber or patient loop")),
            "{named:#?}"
        );
        // A damaged billing provider loop damages every claim under it.
        let damaged = TWO.replacen("N4*TOWN*NY*12345~", "N4*TOWN\n*NY*12345~", 1);
        let (listed, named) = listed_and_named(&damaged);
        assert!(listed.is_empty(), "{listed:?}: {named:#?}");
    }

    // tester19 F4: a first interchange cut inside a segment swallowed the
    // second's ISA, and the second's whole claims were neither listed nor
    // named.
    #[test]
    fn an_interchange_joined_to_one_cut_inside_a_segment_is_read_whole() {
        let second = TWO
            .replace("RFM-10", "RFM-20")
            .replace("000000001", "000000007")
            .replace("*1*X*", "*7*X*")
            .replace("GE*1*1~", "GE*1*7~");
        let (listed, named) = listed_and_named(&second);
        assert_eq!(listed, ["RFM-2001", "RFM-2002"], "{named:#?}");
        for cut in 106..TWO.len() {
            for join in ["\n", "\r\n", ""] {
                let file = format!("{}{join}{second}", &TWO[..cut]);
                let (listed, named) = listed_and_named(&file);
                assert!(
                    listed.ends_with(&["RFM-2001".to_owned(), "RFM-2002".to_owned()]),
                    "cut at {cut}, joined by {join:?}: {listed:?} {named:#?}"
                );
            }
        }
    }

    #[test]
    fn a_stray_control_byte_is_found_as_a_byte_loop_finds_it() {
        let naive = |t: &[u8], allowed: [u8; 3]| {
            t.iter()
                .any(|&b| (b < 0x20 || b == 0x7f) && !allowed.contains(&b))
        };
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| match next() % 10 {
                    0 => (next() % 0x20) as u8,
                    1 => 0x80 | (next() % 0x80) as u8,
                    2 => 0x1d,
                    3 => 0x7f,
                    _ => 0x20 + (next() % 0x5f) as u8,
                })
                .collect();
            for allowed in [[b'*', b':', b'^'], [0x1d, 0x1f, 0x1e]] {
                assert_eq!(
                    stray_control(&bytes, allowed),
                    naive(&bytes, allowed),
                    "{bytes:?} {allowed:?}"
                );
            }
        }
    }

    // tester20: each of these listed a claim changed (another patient's
    // subscriber, a line gone, diagnoses moved) or dropped one unnamed.
    #[test]
    fn a_lost_segment_or_separator_that_moves_data_between_loops_is_named() {
        let cases = [
            (
                "HL*3*1*22*0~",
                "HL3*1*22*0~",
                "RFM-1002",
                "HL3 is not a segment the 837 guides use",
            ),
            (
                "LX*1~SV1*HC:94640",
                "SV1*HC:94640",
                "RFM-1001",
                "SV1 comes before any LX",
            ),
            (
                "LX*1~SV1*HC:94640",
                "LX1~SV1*HC:94640",
                "RFM-1001",
                "LX1 is not a segment",
            ),
            (
                "HI*ABK:J020*ABF:R05~",
                "HI*ABF:R05~",
                "RFM-1001",
                "comes before the principal diagnosis",
            ),
            (
                "HI*ABK:J020*ABF:R05~",
                "HI*ABK:J020*ABF:R05~HI*ABK:J020~",
                "RFM-1001",
                "a second principal",
            ),
            (
                "UN*1***1:2~",
                "UN*1***1:5~",
                "RFM-1001",
                "pointing at a diagnosis it does not have",
            ),
            (
                "UN*1***1:2~",
                "UN*1~",
                "RFM-1001",
                "has no SV107 (diagnosis pointers)",
            ),
            (
                "N3*1 MAIN ST~",
                "N3*1 MAIN\u{7f}ST~",
                "RFM-1001",
                "N3 holds a control character",
            ),
        ];
        for (from, to, claim, said) in cases {
            assert_damage_named(from, to, claim, said);
        }
    }

    #[test]
    fn a_lost_clm_names_the_segments_it_leaves_outside_a_claim() {
        let damaged = TWO.replacen("CLM*RFM-1002*50***11:B:1*Y*A*Y*Y~", "", 1);
        let (listed, named) = listed_and_named(&damaged);
        assert_eq!(listed, ["RFM-1001"], "{named:#?}");
        assert!(
            named
                .iter()
                .any(|p| p.contains("HI comes outside a claim (no CLM before it")),
            "{named:#?}"
        );
    }

    // tester20 F7: `read` said claims: 2 with no problem and exit 0.
    #[test]
    fn an_837_of_a_version_no_reader_knows_is_named() {
        let damaged = TWO.replacen("ST*837*0001*005010X222A1", "ST*837*0001*005010X22A1", 1);
        let mut listed = 0;
        let summary = crate::inspect::read_items(damaged.as_bytes(), |item| {
            listed += usize::from(matches!(item, crate::inspect::Item::Claim(_)));
        })
        .unwrap();
        assert_eq!(listed, 0);
        assert!(
            summary.problems.iter().any(|p| p
                .to_string()
                .contains("837 transaction sets of version 005010X22A1 are not read here")),
            "{:#?}",
            summary.problems
        );
    }

    #[test]
    fn the_element_table_gives_each_id_its_maximum_and_others_none() {
        for (id, max) in MAX_USED {
            let want = usize::from(max);
            assert_eq!(max_used(segment_key(id), b"XX"), Some(want), "{id:?}");
        }
        assert_eq!(max_used(segment_key(b"REF"), b"G1"), Some(4));
        assert_eq!(max_used(segment_key(b"REF"), b"6R"), Some(2));
        // Every other id of every shape the tokenizer lets through.
        let bytes: Vec<u8> = (b'A'..=b'Z').chain(b'0'..=b'9').collect();
        for &a in &bytes {
            for &b in &bytes {
                for c in bytes.iter().map(|&c| Some(c)).chain([None]) {
                    let id: Vec<u8> = [a, b].into_iter().chain(c).collect();
                    let listed = MAX_USED.iter().any(|(i, _)| *i == id.as_slice());
                    assert_eq!(
                        max_used(segment_key(&id), b"").is_some(),
                        listed,
                        "{}",
                        String::from_utf8_lossy(&id)
                    );
                }
            }
        }
    }

    // tester20 F3: loops above the claim with a required segment lost.
    #[test]
    fn a_claim_whose_parties_lost_a_required_segment_is_named() {
        let cases = [
            ("N4*TOWN*NY*12345~", "", "the billing provider's address"),
            ("REF*EI*123456789~", "", "the billing provider's tax id"),
            (
                "NM1*85*2*CLINIC*****XX*1234567893~",
                "",
                "the billing provider's name or NPI",
            ),
            (
                "SBR*P*18*******CI~NM1*IL*1*DOE",
                "SBR*P*18*******CI~NM1*XX*1*DOE",
                "the subscriber's name or member id",
            ),
            (
                "SBR*P*18*******CI~NM1*IL*1*DOE",
                "NM1*IL*1*DOE",
                "the subscriber's claim filing code",
            ),
            ("DMG*D8*19610101*F~", "", "the birth date of the subscriber"),
            (
                "NM1*PR*2*PAYER*****PI*P1~CLM*RFM-1001",
                "CLM*RFM-1001",
                "the payer's name or id",
            ),
        ];
        for (from, to, said) in cases {
            assert_damage_named(from, to, "RFM-1001", said);
        }
    }

    // tester20 F15: a second date, a second subscriber, a total that is not
    // its lines' sum: each silently replaced or hid something.
    #[test]
    fn a_repeated_party_or_date_and_an_unbalanced_total_are_named() {
        let cases = [
            (
                "DTP*472*D8*20261101~REF*6R*RFM-1001-1~",
                "DTP*472*D8*20261101~DTP*472*D8*20261102~REF*6R*RFM-1001-1~",
                "DTP*472 comes twice",
            ),
            (
                "NM1*IL*1*DOE*JANE****MI*M1~",
                "NM1*IL*1*DOE*JANE****MI*M1~NM1*IL*1*ROE*RAY****MI*M2~",
                "names a party its loop already named",
            ),
            (
                "CLM*RFM-1001*185*",
                "CLM*RFM-1001*999*",
                "not the sum of its lines' charges",
            ),
        ];
        for (from, to, said) in cases {
            assert_damage_named(from, to, "RFM-1001", said);
        }
    }

    // tester21: a deleted subscriber HL filed the next claim under the
    // subscriber before (its SBR and NM1 read as an other payer's); a
    // subscriber loop's PAT (weight, death date) made a patient with no
    // relationship and a valid claim was refused.
    #[test]
    fn a_lost_subscriber_hl_is_named_and_a_subscribers_pat_is_no_patient() {
        let damaged = TWO.replacen("HL*3*1*22*0~", "", 1);
        let (listed, named) = listed_and_named(&damaged);
        assert!(listed.is_empty(), "{listed:?}: {named:#?}");
        assert!(
            named
                .iter()
                .any(|p| p.contains("SBR comes after the claim's service lines")),
            "{named:#?}"
        );
        let weight = TWO
            .replacen(
                "SBR*P*18*******CI~NM1*IL*1*DOE",
                "SBR*P*18*******CI~PAT*******01*155~NM1*IL*1*DOE",
                1,
            )
            .replacen("SE*36*0001", "SE*37*0001", 1);
        let (listed, named) = listed_and_named(&weight);
        assert_eq!(listed, ["RFM-1001", "RFM-1002"], "{named:#?}");
        assert!(named.is_empty(), "{named:#?}");
    }
}

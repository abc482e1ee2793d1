//! Reads the body of an 837P/837I transaction set back into the claim model.
//!
//! Fed one segment at a time (after [`super::EnvelopeReader`] has placed it),
//! it yields each claim as soon as the next CLM, HL or SE closes it, so memory
//! holds one claim at a time. Segments the model has no place for (CR1, HCP,
//! 2430 line adjudication…) are skipped; they are still counted by the
//! envelope reader.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use std::str::FromStr;

use super::read::{Fields, Position, Segment};
use crate::model::{
    Address, Adjustment, Admission, BillingProvider, Claim, ClaimKind, Drug, EntityType, Facility,
    Gender, IcdVersion, OtherPayer, Patient, Payer, Procedure, Provider, Receiver, Responsibility,
    ServiceLine, Submitter, Subscriber,
};

/// A value the model cannot take. The value itself is not kept: it may be a
/// birth date or a member id, and this error ends up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {pos}{}: {element} is not {expected}", claim.as_ref().map(|c| format!(", claim {c}")).unwrap_or_default())]
pub struct Claim837Error {
    pub pos: Position,
    pub claim: Option<String>,
    pub element: &'static str,
    pub expected: &'static str,
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
            ctx: Ctx::None,
        })
    }

    pub fn kind(&self) -> ClaimKind {
        self.kind
    }

    /// The claim still open at SE.
    pub fn end_set(&mut self) -> Option<Box<Claim>> {
        self.claim.take()
    }

    /// Takes one body segment; returns a claim that this segment closed.
    pub fn segment(&mut self, seg: &Segment<'_>) -> Result<Option<Box<Claim>>, Claim837Error> {
        self.take_segment(seg).map_err(|mut e| {
            // Named here, not per segment: cloning the id each time costs.
            e.claim = self.claim.as_ref().map(|c| c.id.clone());
            e
        })
    }

    fn take_segment(&mut self, seg: &Segment<'_>) -> Result<Option<Box<Claim>>, Claim837Error> {
        let seg = &seg.fields();
        let id = seg.id();
        let closes = matches!(id, b"HL" | b"CLM");
        let done = if closes { self.claim.take() } else { None };
        let err = |element, _found: &str, expected| Claim837Error {
            pos: seg.pos,
            claim: None,
            element,
            expected,
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
            b"NM1" => self.nm1(seg),
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
            b"PAT" => {
                let p = self.patient.get_or_insert_with(Patient::default);
                p.relationship = owned(seg, 1);
            }
            b"CLM" => {
                let total = dec(2, "CLM02")?;
                let professional = self.kind == ClaimKind::Professional;
                let facility = seg.comp(5, 1);
                // Most files have one claim per subscriber loop: move the
                // parties into it; a second claim under the same loop copies
                // them from the claim before.
                let (subscriber, payer, patient) = match (&done, self.parties_taken) {
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
            }
            b"DTP" => {
                let qualifier = seg.el(1);
                let in_line = self.ctx == Ctx::Line;
                let Some(claim) = self.claim.as_mut() else {
                    return Ok(done);
                };
                match qualifier {
                    b"472" if in_line => {
                        let (from, to) = range("DTP03")?;
                        if let Some(line) = claim.lines.last_mut() {
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
                    for element in seg.texts() {
                        let mut parts = seg.components_of(element);
                        let (qualifier, code) = (
                            parts.next().unwrap_or_default(),
                            parts.next().unwrap_or_default(),
                        );
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
                let procedure = procedure(seg, proc_el);
                let charge = dec(first, if professional { "SV102" } else { "SV203" })?;
                let units = opt_dec(first + 2, if professional { "SV104" } else { "SV205" })?;
                let Some(line) = self.claim.as_mut().and_then(|c| c.lines.last_mut()) else {
                    return Ok(done);
                };
                line.procedure = procedure;
                line.charge = charge;
                line.unit_basis = owned(seg, first + 1);
                line.units = units.unwrap_or(Decimal::ONE);
                if professional {
                    line.place_of_service = opt(seg, 5);
                    line.diagnosis_pointers = seg.comps(7).filter_map(|p| p.parse().ok()).collect();
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
        Ok(done)
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

fn procedure(seg: &Fields<'_>, n: usize) -> Option<Procedure> {
    let mut parts = seg.comps(n);
    let qualifier = parts.next().filter(|q| !q.is_empty())?.to_owned();
    let code = parts.next().unwrap_or_default().to_owned();
    let modifiers = parts
        .take(4)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    Some(Procedure {
        qualifier,
        code,
        modifiers,
    })
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
                        if let Err(e) = reader.as_mut().unwrap().segment(&s) {
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
}

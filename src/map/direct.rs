//! A claim built from a map's typed values by setters resolved when the
//! map is loaded, without serde's string-keyed visitors on the good path.
//!
//! Building each claim through the model's derived `Deserialize` (the plan's
//! deserializer, `plan.rs`) matched every member's name as a string, looked
//! for every object's presence and walked nested deserializers: about half
//! of the work of the thread that builds and scrubs claims. Here each field
//! of the map is given, once, a setter that puts its value where the model
//! holds it; a claim is then a draft filled slot by slot and checked at the
//! end for the members the model requires.
//!
//! Results must be exactly what deserialising gives, so every value is read
//! by the model field's own `Deserialize` (through the same [`Val`]
//! deserializer), except for the everyday shapes read directly — text into
//! text, an amount that is not negative into an amount, a date with a
//! four-digit year into a date — which give the same value by construction
//! (unit tests hold them to the serde result). Whenever anything is not as
//! expected (a value the model refuses, a required member missing, a map
//! target not known here) this path gives up and the claim goes through
//! serde as before, which words the error exactly as it always did.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::field::{FieldSpec, Fresh, Shape};
use super::plan::{Filled, Val};
use crate::model::{
    Address, Admission, BillingProvider, Claim, ClaimKind, EntityType, Facility, Gender,
    IcdVersion, OtherPayer, Patient, Payer, Procedure, Provider, Responsibility, ServiceLine,
    Shared, Subscriber,
};

/// The value as the model field of type `T` reads it (its own `Deserialize`).
fn de<T: DeserializeOwned>(v: Val) -> Option<T> {
    T::deserialize(v).ok()
}

pub(super) fn text(v: Val) -> Option<String> {
    match v {
        Val::Text(s) => Some(s),
        v => de(v),
    }
}

fn opt_text(v: Val) -> Option<Option<String>> {
    match v {
        Val::Text(s) => Some(Some(s)),
        v => de(v),
    }
}

/// An amount handed over as text would read back as itself: the model
/// reads the digits `Display` writes (`plan::with_decimal`), the same
/// mantissa and scale. Negative amounts go the long way.
fn dec(v: Val) -> Option<Decimal> {
    match v {
        Val::Dec(d) if !d.is_sign_negative() => Some(d),
        v => de(v),
    }
}

fn opt_dec(v: Val) -> Option<Option<Decimal>> {
    match v {
        Val::Dec(d) if !d.is_sign_negative() => Some(Some(d)),
        v => de(v),
    }
}

/// A date with a four-digit year is handed over as `YYYY-MM-DD` and read
/// back by hand as the same date (`plan::with_date`, `date::iso`); any
/// other goes the long way.
fn date(v: Val) -> Option<Option<NaiveDate>> {
    match v {
        Val::Date(d) if (0..=9999).contains(&d.year()) => Some(Some(d)),
        v => crate::model::optional_date(v).ok(),
    }
}

/// A gender given as its code ("M", "F", "U") is the gender the model's
/// `Deserialize` reads from it (those are its names); anything else (an
/// alias such as "female", a value it refuses) goes the long way.
fn gender(v: Val) -> Option<Option<Gender>> {
    if let Val::Text(s) = &v {
        match s.as_str() {
            "M" => return Some(Some(Gender::Male)),
            "F" => return Some(Some(Gender::Female)),
            "U" => return Some(Some(Gender::Unknown)),
            _ => {}
        }
    }
    de(v)
}

fn flag(v: Val) -> Option<bool> {
    match v {
        Val::Bool(b) => Some(b),
        v => de(v),
    }
}

fn texts(v: Val) -> Option<Vec<String>> {
    match v {
        Val::List(items) if items.iter().all(|i| matches!(i, Val::Text(_))) => {
            // Pushed into a list of its own size (collecting in place would
            // reallocate the list of values down to the smaller strings).
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                if let Val::Text(s) = i {
                    out.push(s);
                }
            }
            Some(out)
        }
        v => de(v),
    }
}

fn pointers(v: Val) -> Option<Vec<u8>> {
    match v {
        Val::List(items)
            if items
                .iter()
                .all(|i| matches!(i, Val::Int(n) if u8::try_from(*n).is_ok())) =>
        {
            items
                .into_iter()
                .map(|i| match i {
                    Val::Int(n) => u8::try_from(n).ok(),
                    _ => None,
                })
                .collect()
        }
        v => de(v),
    }
}

/// An optional object: absent, or there and complete (`None`: there but
/// missing a member the model requires).
fn optional<D, T>(draft: Option<D>, finish: fn(D) -> Option<T>) -> Option<Option<T>> {
    match draft {
        Some(d) => finish(d).map(Some),
        None => Some(None),
    }
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct AddressDraft {
    line1: Option<String>,
    line2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    zip: Option<String>,
}

impl AddressDraft {
    fn finish(self) -> Option<Address> {
        Some(Address {
            line1: self.line1?,
            line2: self.line2,
            city: self.city?,
            state: self.state?,
            zip: self.zip?,
        })
    }
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct BillingDraft {
    entity: Option<EntityType>,
    name: Option<String>,
    first_name: Option<String>,
    npi: Option<String>,
    tax_id: Option<String>,
    ssn_as_tax_id: Option<bool>,
    taxonomy: Option<String>,
    address: Option<AddressDraft>,
    pay_to_address: Option<AddressDraft>,
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct ProviderDraft {
    entity: Option<EntityType>,
    name: Option<String>,
    first_name: Option<String>,
    npi: Option<String>,
    taxonomy: Option<String>,
}

impl ProviderDraft {
    fn finish(self) -> Option<Provider> {
        Some(Provider {
            entity: self.entity.unwrap_or(EntityType::Person),
            name: self.name?,
            first_name: self.first_name,
            npi: self.npi,
            taxonomy: self.taxonomy,
        })
    }
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct FacilityDraft {
    name: Option<String>,
    npi: Option<String>,
    address: Option<AddressDraft>,
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct SubscriberDraft {
    member_id: Option<String>,
    last_name: Option<String>,
    first_name: Option<String>,
    middle_name: Option<String>,
    birth_date: Option<NaiveDate>,
    gender: Option<Gender>,
    address: Option<AddressDraft>,
    group_number: Option<String>,
    group_name: Option<String>,
    responsibility: Option<Responsibility>,
    claim_filing: Option<String>,
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct PatientDraft {
    relationship: Option<String>,
    last_name: Option<String>,
    first_name: Option<String>,
    birth_date: Option<NaiveDate>,
    gender: Option<Gender>,
    address: Option<AddressDraft>,
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct PayerDraft {
    name: Option<String>,
    id: Option<String>,
    address: Option<AddressDraft>,
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct OtherPayerDraft {
    responsibility: Option<Responsibility>,
    relationship: Option<String>,
    group_number: Option<String>,
    claim_filing: Option<String>,
    subscriber_last_name: Option<String>,
    subscriber_first_name: Option<String>,
    subscriber_member_id: Option<String>,
    payer_name: Option<String>,
    payer_id: Option<String>,
    paid_amount: Option<Decimal>,
    adjudication_date: Option<NaiveDate>,
}

/// A claim being filled: a member the model requires (or defaults) is an
/// `Option` until the end; an object is there once a field under it is.
#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct ClaimDraft {
    kind: Option<ClaimKind>,
    id: Option<String>,
    total_charge: Option<Decimal>,
    place_of_service: Option<String>,
    type_of_bill: Option<String>,
    frequency_code: Option<String>,
    provider_signature: Option<bool>,
    assignment: Option<String>,
    benefits_assigned: Option<bool>,
    release_of_information: Option<String>,
    statement_from: Option<NaiveDate>,
    statement_to: Option<NaiveDate>,
    admission: Option<Admission>,
    discharge_hour: Option<String>,
    patient_status: Option<String>,
    diagnoses: Option<Vec<String>>,
    icd_version: Option<IcdVersion>,
    admitting_diagnosis: Option<String>,
    visit_reasons: Option<Vec<String>>,
    drg: Option<String>,
    related_causes: Option<Vec<String>>,
    accident_date: Option<NaiveDate>,
    accident_state: Option<String>,
    onset_date: Option<NaiveDate>,
    initial_treatment_date: Option<NaiveDate>,
    clia_number: Option<String>,
    referral_number: Option<String>,
    prior_authorization: Option<String>,
    payer_claim_number: Option<String>,
    medical_record_number: Option<String>,
    note: Option<String>,
    billing_provider: Option<BillingDraft>,
    referring_provider: Option<ProviderDraft>,
    rendering_provider: Option<ProviderDraft>,
    attending_provider: Option<ProviderDraft>,
    service_facility: Option<FacilityDraft>,
    subscriber: Option<SubscriberDraft>,
    patient: Option<PatientDraft>,
    payer: Option<PayerDraft>,
    other_payer: Option<OtherPayerDraft>,
}

impl BillingDraft {
    fn finish(self) -> Option<BillingProvider> {
        Some(BillingProvider {
            entity: self.entity.unwrap_or_default(),
            name: self.name?,
            first_name: self.first_name,
            npi: self.npi?,
            tax_id: self.tax_id?,
            ssn_as_tax_id: self.ssn_as_tax_id,
            taxonomy: self.taxonomy,
            address: self.address?.finish()?,
            pay_to_address: optional(self.pay_to_address, AddressDraft::finish)?,
        })
    }
}

impl ClaimDraft {
    fn finish(mut self, lines: Vec<ServiceLine>) -> Option<Box<Claim>> {
        self.finish_with(lines, None, None)
    }

    /// The claim, with `billing` as its billing provider when given (a
    /// map's constant one, built once), else the draft's.
    ///
    /// `spare`: a written claim to put this one into (its box, and the
    /// room of the strings it holds for the defaults); what it held is
    /// dropped, never read.
    fn finish_with(
        &mut self,
        lines: Vec<ServiceLine>,
        billing: Option<&Shared<BillingProvider>>,
        mut spare: Option<Box<Claim>>,
    ) -> Option<Box<Claim>> {
        // A default's text, made in the room of the spare claim's string
        // in the same place when there is one.
        let mut fixed = |v: &str, room: fn(&mut Claim) -> &mut String| {
            super::field::kept(v, spare.as_deref_mut().map(room))
        };
        let billing_provider = match billing {
            Some(b) => b.clone(),
            None => Shared::new(self.billing_provider.take()?.finish()?),
        };
        let s = self.subscriber.take()?;
        let subscriber = Subscriber {
            member_id: s.member_id?,
            last_name: s.last_name?,
            first_name: s.first_name,
            middle_name: s.middle_name,
            birth_date: s.birth_date,
            gender: s.gender,
            address: optional(s.address, AddressDraft::finish)?,
            group_number: s.group_number,
            group_name: s.group_name,
            responsibility: s.responsibility.unwrap_or_default(),
            claim_filing: s
                .claim_filing
                .unwrap_or_else(|| fixed("CI", |c| &mut c.subscriber.claim_filing)),
        };
        let patient = match self.patient.take() {
            Some(p) => Some(Patient {
                relationship: p.relationship?,
                last_name: p.last_name?,
                first_name: p.first_name,
                birth_date: p.birth_date,
                gender: p.gender,
                address: optional(p.address, AddressDraft::finish)?,
            }),
            None => None,
        };
        let p = self.payer.take()?;
        let payer = Payer {
            name: p.name?,
            id: p.id?,
            address: optional(p.address, AddressDraft::finish)?,
        };
        let service_facility = match self.service_facility.take() {
            Some(f) => Some(Facility {
                name: f.name?,
                npi: f.npi,
                address: f.address?.finish()?,
            }),
            None => None,
        };
        let other_payers = match self.other_payer.take() {
            Some(o) => vec![OtherPayer {
                responsibility: o.responsibility.unwrap_or_default(),
                relationship: o.relationship?,
                group_number: o.group_number,
                claim_filing: o.claim_filing.unwrap_or_else(|| "CI".to_owned()),
                subscriber_last_name: o.subscriber_last_name?,
                subscriber_first_name: o.subscriber_first_name,
                subscriber_member_id: o.subscriber_member_id?,
                payer_name: o.payer_name?,
                payer_id: o.payer_id?,
                paid_amount: o.paid_amount,
                adjustments: Vec::new(),
                adjudication_date: o.adjudication_date,
            }],
            None => Vec::new(),
        };
        // Boxed here: the claim travels boxed ([`crate::map::Mapped`]).
        let claim = Claim {
            kind: self.kind?,
            id: self.id.take()?,
            total_charge: self.total_charge?,
            place_of_service: self.place_of_service.take(),
            type_of_bill: self.type_of_bill.take(),
            frequency_code: self
                .frequency_code
                .take()
                .unwrap_or_else(|| fixed("1", |c| &mut c.frequency_code)),
            provider_signature: self.provider_signature.unwrap_or(true),
            assignment: self
                .assignment
                .take()
                .unwrap_or_else(|| fixed("A", |c| &mut c.assignment)),
            benefits_assigned: self.benefits_assigned.unwrap_or(true),
            release_of_information: self
                .release_of_information
                .take()
                .unwrap_or_else(|| fixed("Y", |c| &mut c.release_of_information)),
            statement_from: self.statement_from,
            statement_to: self.statement_to,
            admission: self.admission.take(),
            discharge_hour: self.discharge_hour.take(),
            patient_status: self.patient_status.take(),
            diagnoses: self.diagnoses.take()?,
            icd_version: self.icd_version.unwrap_or_default(),
            admitting_diagnosis: self.admitting_diagnosis.take(),
            visit_reasons: self.visit_reasons.take().unwrap_or_default(),
            drg: self.drg.take(),
            related_causes: self.related_causes.take().unwrap_or_default(),
            accident_date: self.accident_date,
            accident_state: self.accident_state.take(),
            onset_date: self.onset_date,
            initial_treatment_date: self.initial_treatment_date,
            clia_number: self.clia_number.take(),
            referral_number: self.referral_number.take(),
            prior_authorization: self.prior_authorization.take(),
            payer_claim_number: self.payer_claim_number.take(),
            medical_record_number: self.medical_record_number.take(),
            note: self.note.take(),
            billing_provider,
            referring_provider: optional(self.referring_provider.take(), ProviderDraft::finish)?,
            rendering_provider: optional(self.rendering_provider.take(), ProviderDraft::finish)?,
            attending_provider: optional(self.attending_provider.take(), ProviderDraft::finish)?,
            service_facility,
            subscriber,
            patient,
            payer,
            other_payers,
            lines,
        };
        Some(match spare {
            Some(mut b) => {
                *b = claim;
                b
            }
            None => Box::new(claim),
        })
    }
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct ProcedureDraft {
    qualifier: Option<String>,
    code: Option<String>,
    modifiers: Option<Vec<String>>,
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct DrugDraft {
    ndc: Option<String>,
    quantity: Option<Decimal>,
    unit: Option<String>,
}

#[derive(Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
struct LineDraft {
    procedure: Option<ProcedureDraft>,
    revenue_code: Option<String>,
    charge: Option<Decimal>,
    units: Option<Decimal>,
    unit_basis: Option<String>,
    place_of_service: Option<String>,
    service_date: Option<NaiveDate>,
    service_date_end: Option<NaiveDate>,
    diagnosis_pointers: Option<Vec<u8>>,
    line_control_number: Option<String>,
    drug: Option<DrugDraft>,
}

impl LineDraft {
    /// The line (members taken out of the draft, which is not moved);
    /// `spare`: a written line whose strings' room the defaults use.
    fn finish(&mut self, mut spare: Option<&mut ServiceLine>) -> Option<ServiceLine> {
        let procedure = match self.procedure.take() {
            Some(p) => Some(Procedure {
                qualifier: p.qualifier.unwrap_or_else(|| {
                    let room = spare
                        .as_deref_mut()
                        .and_then(|l| l.procedure.as_mut())
                        .map(|p| &mut p.qualifier);
                    super::field::kept("HC", room)
                }),
                code: p.code?,
                modifiers: p.modifiers.unwrap_or_default(),
            }),
            None => None,
        };
        let drug = match self.drug.take() {
            Some(d) => Some(crate::model::Drug {
                ndc: d.ndc?,
                quantity: d.quantity?,
                unit: d.unit?,
            }),
            None => None,
        };
        Some(ServiceLine {
            procedure,
            revenue_code: self.revenue_code.take(),
            charge: self.charge?,
            units: self.units?,
            unit_basis: self
                .unit_basis
                .take()
                .unwrap_or_else(|| super::field::kept("UN", spare.map(|l| &mut l.unit_basis))),
            place_of_service: self.place_of_service.take(),
            service_date: self.service_date,
            service_date_end: self.service_date_end,
            diagnosis_pointers: self.diagnosis_pointers.take().unwrap_or_default(),
            line_control_number: self.line_control_number.take(),
            drug,
        })
    }
}

/// Puts a value where the model holds it; `None`: the value is not what
/// the model takes (serde then says why).
type Set<D> = fn(&mut D, Val) -> Option<()>;

/// An address's member.
#[derive(Clone, Copy, Debug)]
enum AddressField {
    Line1,
    Line2,
    City,
    State,
    Zip,
}

impl AddressField {
    fn of(name: &str) -> Option<AddressField> {
        Some(match name {
            "line1" => AddressField::Line1,
            "line2" => AddressField::Line2,
            "city" => AddressField::City,
            "state" => AddressField::State,
            "zip" => AddressField::Zip,
            _ => return None,
        })
    }

    fn set(self, slot: &mut Option<AddressDraft>, v: Val) -> Option<()> {
        let a = slot.get_or_insert_with(AddressDraft::default);
        match self {
            AddressField::Line1 => a.line1 = Some(text(v)?),
            AddressField::Line2 => a.line2 = opt_text(v)?,
            AddressField::City => a.city = Some(text(v)?),
            AddressField::State => a.state = Some(text(v)?),
            AddressField::Zip => a.zip = Some(text(v)?),
        }
        Some(())
    }
}

/// A provider's member.
#[derive(Clone, Copy, Debug)]
enum ProviderField {
    Entity,
    Name,
    FirstName,
    Npi,
    Taxonomy,
}

impl ProviderField {
    fn of(name: &str) -> Option<ProviderField> {
        Some(match name {
            "entity" => ProviderField::Entity,
            "name" => ProviderField::Name,
            "first_name" => ProviderField::FirstName,
            "npi" => ProviderField::Npi,
            "taxonomy" => ProviderField::Taxonomy,
            _ => return None,
        })
    }

    fn set(self, slot: &mut Option<ProviderDraft>, v: Val) -> Option<()> {
        let p = slot.get_or_insert_with(ProviderDraft::default);
        match self {
            ProviderField::Entity => p.entity = Some(de(v)?),
            ProviderField::Name => p.name = Some(text(v)?),
            ProviderField::FirstName => p.first_name = opt_text(v)?,
            ProviderField::Npi => p.npi = opt_text(v)?,
            ProviderField::Taxonomy => p.taxonomy = opt_text(v)?,
        }
        Some(())
    }
}

/// Which address of the claim.
#[derive(Clone, Copy, Debug)]
enum AddressOf {
    Billing,
    PayTo,
    Facility,
    Subscriber,
    Patient,
    Payer,
}

/// Which provider of the claim.
#[derive(Clone, Copy, Debug)]
enum ProviderOf {
    Referring,
    Rendering,
    Attending,
}

/// Where a claim field's value goes.
#[derive(Clone, Copy)]
enum ClaimSet {
    Field(Set<ClaimDraft>),
    Address(AddressOf, AddressField),
    Provider(ProviderOf, ProviderField),
}

impl ClaimSet {
    fn of(target: &str) -> Option<ClaimSet> {
        if let Some((owner, field)) = target.rsplit_once('.') {
            let to = match owner {
                "billing_provider.address" => Some(AddressOf::Billing),
                "billing_provider.pay_to_address" => Some(AddressOf::PayTo),
                "service_facility.address" => Some(AddressOf::Facility),
                "subscriber.address" => Some(AddressOf::Subscriber),
                "patient.address" => Some(AddressOf::Patient),
                "payer.address" => Some(AddressOf::Payer),
                _ => None,
            };
            if let Some(to) = to {
                return Some(ClaimSet::Address(to, AddressField::of(field)?));
            }
            let to = match owner {
                "referring_provider" => Some(ProviderOf::Referring),
                "rendering_provider" => Some(ProviderOf::Rendering),
                "attending_provider" => Some(ProviderOf::Attending),
                _ => None,
            };
            if let Some(to) = to {
                return Some(ClaimSet::Provider(to, ProviderField::of(field)?));
            }
        }
        claim_setter(target).map(ClaimSet::Field)
    }

    fn set(self, d: &mut ClaimDraft, v: Val) -> Option<()> {
        match self {
            ClaimSet::Field(set) => set(d, v),
            ClaimSet::Address(to, field) => {
                let slot = match to {
                    AddressOf::Billing => &mut bp(d).address,
                    AddressOf::PayTo => &mut bp(d).pay_to_address,
                    AddressOf::Facility => &mut fac(d).address,
                    AddressOf::Subscriber => &mut sub(d).address,
                    AddressOf::Patient => &mut pat(d).address,
                    AddressOf::Payer => &mut payer(d).address,
                };
                field.set(slot, v)
            }
            ClaimSet::Provider(to, field) => {
                let slot = match to {
                    ProviderOf::Referring => &mut d.referring_provider,
                    ProviderOf::Rendering => &mut d.rendering_provider,
                    ProviderOf::Attending => &mut d.attending_provider,
                };
                field.set(slot, v)
            }
        }
    }
}

fn bp(d: &mut ClaimDraft) -> &mut BillingDraft {
    d.billing_provider.get_or_insert_with(Default::default)
}

fn sub(d: &mut ClaimDraft) -> &mut SubscriberDraft {
    d.subscriber.get_or_insert_with(Default::default)
}

fn pat(d: &mut ClaimDraft) -> &mut PatientDraft {
    d.patient.get_or_insert_with(Default::default)
}

fn payer(d: &mut ClaimDraft) -> &mut PayerDraft {
    d.payer.get_or_insert_with(Default::default)
}

fn fac(d: &mut ClaimDraft) -> &mut FacilityDraft {
    d.service_facility.get_or_insert_with(Default::default)
}

fn op(d: &mut ClaimDraft) -> &mut OtherPayerDraft {
    d.other_payer.get_or_insert_with(Default::default)
}

fn adm(d: &mut ClaimDraft) -> &mut Admission {
    d.admission.get_or_insert_with(Default::default)
}

macro_rules! setters {
    ($draft:ty, $target:expr, { $($path:literal => |$d:ident, $v:ident| $body:expr,)* }) => {
        match $target {
            $($path => Some((|$d: &mut $draft, $v: Val| -> Option<()> {
                $body;
                Some(())
            }) as Set<$draft>),)*
            _ => None,
        }
    };
}

/// The setter of a claim field other than an address's or a provider's;
/// `None` for a target this path does not know (other payers'
/// adjustments, line fields in the claim section): such a map is built
/// through serde only.
fn claim_setter(target: &str) -> Option<Set<ClaimDraft>> {
    setters!(ClaimDraft, target, {
        "kind" => |d, v| d.kind = Some(de(v)?),
        "id" => |d, v| d.id = Some(text(v)?),
        "total_charge" => |d, v| d.total_charge = Some(dec(v)?),
        "place_of_service" => |d, v| d.place_of_service = opt_text(v)?,
        "type_of_bill" => |d, v| d.type_of_bill = opt_text(v)?,
        "frequency_code" => |d, v| d.frequency_code = Some(text(v)?),
        "provider_signature" => |d, v| d.provider_signature = Some(flag(v)?),
        "assignment" => |d, v| d.assignment = Some(text(v)?),
        "benefits_assigned" => |d, v| d.benefits_assigned = Some(flag(v)?),
        "release_of_information" => |d, v| d.release_of_information = Some(text(v)?),
        "statement_from" => |d, v| d.statement_from = date(v)?,
        "statement_to" => |d, v| d.statement_to = date(v)?,
        "admission.date" => |d, v| adm(d).date = date(v)?,
        "admission.kind" => |d, v| adm(d).kind = opt_text(v)?,
        "admission.source" => |d, v| adm(d).source = opt_text(v)?,
        "admission.hour" => |d, v| adm(d).hour = opt_text(v)?,
        "discharge_hour" => |d, v| d.discharge_hour = opt_text(v)?,
        "patient_status" => |d, v| d.patient_status = opt_text(v)?,
        "diagnoses" => |d, v| d.diagnoses = Some(texts(v)?),
        "icd_version" => |d, v| d.icd_version = Some(de(v)?),
        "admitting_diagnosis" => |d, v| d.admitting_diagnosis = opt_text(v)?,
        "visit_reasons" => |d, v| d.visit_reasons = Some(texts(v)?),
        "drg" => |d, v| d.drg = opt_text(v)?,
        "related_causes" => |d, v| d.related_causes = Some(texts(v)?),
        "accident_date" => |d, v| d.accident_date = date(v)?,
        "accident_state" => |d, v| d.accident_state = opt_text(v)?,
        "onset_date" => |d, v| d.onset_date = date(v)?,
        "initial_treatment_date" => |d, v| d.initial_treatment_date = date(v)?,
        "clia_number" => |d, v| d.clia_number = opt_text(v)?,
        "referral_number" => |d, v| d.referral_number = opt_text(v)?,
        "prior_authorization" => |d, v| d.prior_authorization = opt_text(v)?,
        "payer_claim_number" => |d, v| d.payer_claim_number = opt_text(v)?,
        "medical_record_number" => |d, v| d.medical_record_number = opt_text(v)?,
        "note" => |d, v| d.note = opt_text(v)?,
        "billing_provider.entity" => |d, v| bp(d).entity = Some(de(v)?),
        "billing_provider.name" => |d, v| bp(d).name = Some(text(v)?),
        "billing_provider.first_name" => |d, v| bp(d).first_name = opt_text(v)?,
        "billing_provider.npi" => |d, v| bp(d).npi = Some(text(v)?),
        "billing_provider.tax_id" => |d, v| bp(d).tax_id = Some(text(v)?),
        "billing_provider.ssn_as_tax_id" => |d, v| bp(d).ssn_as_tax_id = de(v)?,
        "billing_provider.taxonomy" => |d, v| bp(d).taxonomy = opt_text(v)?,
        "service_facility.name" => |d, v| fac(d).name = Some(text(v)?),
        "service_facility.npi" => |d, v| fac(d).npi = opt_text(v)?,
        "subscriber.member_id" => |d, v| sub(d).member_id = Some(text(v)?),
        "subscriber.last_name" => |d, v| sub(d).last_name = Some(text(v)?),
        "subscriber.first_name" => |d, v| sub(d).first_name = opt_text(v)?,
        "subscriber.middle_name" => |d, v| sub(d).middle_name = opt_text(v)?,
        "subscriber.birth_date" => |d, v| sub(d).birth_date = date(v)?,
        "subscriber.gender" => |d, v| sub(d).gender = gender(v)?,
        "subscriber.group_number" => |d, v| sub(d).group_number = opt_text(v)?,
        "subscriber.group_name" => |d, v| sub(d).group_name = opt_text(v)?,
        "subscriber.responsibility" => |d, v| sub(d).responsibility = Some(de(v)?),
        "subscriber.claim_filing" => |d, v| sub(d).claim_filing = Some(text(v)?),
        "patient.relationship" => |d, v| pat(d).relationship = Some(text(v)?),
        "patient.last_name" => |d, v| pat(d).last_name = Some(text(v)?),
        "patient.first_name" => |d, v| pat(d).first_name = opt_text(v)?,
        "patient.birth_date" => |d, v| pat(d).birth_date = date(v)?,
        "patient.gender" => |d, v| pat(d).gender = gender(v)?,
        "payer.name" => |d, v| payer(d).name = Some(text(v)?),
        "payer.id" => |d, v| payer(d).id = Some(text(v)?),
        "other_payers.responsibility" => |d, v| op(d).responsibility = Some(de(v)?),
        "other_payers.relationship" => |d, v| op(d).relationship = Some(text(v)?),
        "other_payers.group_number" => |d, v| op(d).group_number = opt_text(v)?,
        "other_payers.claim_filing" => |d, v| op(d).claim_filing = Some(text(v)?),
        "other_payers.subscriber_last_name" => |d, v| op(d).subscriber_last_name = Some(text(v)?),
        "other_payers.subscriber_first_name" => |d, v| op(d).subscriber_first_name = opt_text(v)?,
        "other_payers.subscriber_member_id" => |d, v| op(d).subscriber_member_id = Some(text(v)?),
        "other_payers.payer_name" => |d, v| op(d).payer_name = Some(text(v)?),
        "other_payers.payer_id" => |d, v| op(d).payer_id = Some(text(v)?),
        "other_payers.paid_amount" => |d, v| op(d).paid_amount = opt_dec(v)?,
        "other_payers.adjudication_date" => |d, v| op(d).adjudication_date = date(v)?,
    })
}

fn proc_(l: &mut LineDraft) -> &mut ProcedureDraft {
    l.procedure.get_or_insert_with(Default::default)
}

fn drug(l: &mut LineDraft) -> &mut DrugDraft {
    l.drug.get_or_insert_with(Default::default)
}

/// The setter of a line field (relative to the line).
fn line_setter(target: &str) -> Option<Set<LineDraft>> {
    setters!(LineDraft, target, {
        "procedure.qualifier" => |l, v| proc_(l).qualifier = Some(text(v)?),
        "procedure.code" => |l, v| proc_(l).code = Some(text(v)?),
        "procedure.modifiers" => |l, v| proc_(l).modifiers = Some(texts(v)?),
        "revenue_code" => |l, v| l.revenue_code = opt_text(v)?,
        "charge" => |l, v| l.charge = Some(dec(v)?),
        "units" => |l, v| l.units = Some(dec(v)?),
        "unit_basis" => |l, v| l.unit_basis = Some(text(v)?),
        "place_of_service" => |l, v| l.place_of_service = opt_text(v)?,
        "service_date" => |l, v| l.service_date = date(v)?,
        "service_date_end" => |l, v| l.service_date_end = date(v)?,
        "diagnosis_pointers" => |l, v| l.diagnosis_pointers = Some(pointers(v)?),
        "line_control_number" => |l, v| l.line_control_number = opt_text(v)?,
        "drug.ndc" => |l, v| drug(l).ndc = Some(text(v)?),
        "drug.quantity" => |l, v| drug(l).quantity = Some(dec(v)?),
        "drug.unit" => |l, v| drug(l).unit = Some(text(v)?),
    })
}

/// Where a text member of a draft is: a field of type `text` read by the
/// compiled path puts its string there directly (no [`Val`], no setter),
/// as its setter would put `Val::Text` (`text` and `opt_text` both make
/// `Some` of the string; the objects on the way are made as the setter
/// makes them).
type Slot<D> = fn(&mut D) -> &mut Option<String>;

macro_rules! slots {
    ($draft:ty, $target:expr, { $($path:literal => |$d:ident| $place:expr,)* }) => {
        match $target {
            $($path => Some((|$d: &mut $draft| -> &mut Option<String> { &mut $place }) as Slot<$draft>),)*
            _ => None,
        }
    };
}

fn addr(slot: &mut Option<AddressDraft>) -> &mut AddressDraft {
    slot.get_or_insert_with(AddressDraft::default)
}

fn provider(slot: &mut Option<ProviderDraft>) -> &mut ProviderDraft {
    slot.get_or_insert_with(ProviderDraft::default)
}

/// The text slot of a claim target, when its setter takes text
/// (`text`/`opt_text`); `None` for anything else (it keeps its setter).
fn claim_slot(target: &str) -> Option<Slot<ClaimDraft>> {
    slots!(ClaimDraft, target, {
        "id" => |d| d.id,
        "place_of_service" => |d| d.place_of_service,
        "type_of_bill" => |d| d.type_of_bill,
        "frequency_code" => |d| d.frequency_code,
        "assignment" => |d| d.assignment,
        "release_of_information" => |d| d.release_of_information,
        "admission.kind" => |d| adm(d).kind,
        "admission.source" => |d| adm(d).source,
        "admission.hour" => |d| adm(d).hour,
        "discharge_hour" => |d| d.discharge_hour,
        "patient_status" => |d| d.patient_status,
        "admitting_diagnosis" => |d| d.admitting_diagnosis,
        "drg" => |d| d.drg,
        "accident_state" => |d| d.accident_state,
        "clia_number" => |d| d.clia_number,
        "referral_number" => |d| d.referral_number,
        "prior_authorization" => |d| d.prior_authorization,
        "payer_claim_number" => |d| d.payer_claim_number,
        "medical_record_number" => |d| d.medical_record_number,
        "note" => |d| d.note,
        "billing_provider.name" => |d| bp(d).name,
        "billing_provider.first_name" => |d| bp(d).first_name,
        "billing_provider.npi" => |d| bp(d).npi,
        "billing_provider.tax_id" => |d| bp(d).tax_id,
        "billing_provider.taxonomy" => |d| bp(d).taxonomy,
        "service_facility.name" => |d| fac(d).name,
        "service_facility.npi" => |d| fac(d).npi,
        "subscriber.member_id" => |d| sub(d).member_id,
        "subscriber.last_name" => |d| sub(d).last_name,
        "subscriber.first_name" => |d| sub(d).first_name,
        "subscriber.middle_name" => |d| sub(d).middle_name,
        "subscriber.group_number" => |d| sub(d).group_number,
        "subscriber.group_name" => |d| sub(d).group_name,
        "subscriber.claim_filing" => |d| sub(d).claim_filing,
        "patient.relationship" => |d| pat(d).relationship,
        "patient.last_name" => |d| pat(d).last_name,
        "patient.first_name" => |d| pat(d).first_name,
        "payer.name" => |d| payer(d).name,
        "payer.id" => |d| payer(d).id,
        "other_payers.relationship" => |d| op(d).relationship,
        "other_payers.group_number" => |d| op(d).group_number,
        "other_payers.claim_filing" => |d| op(d).claim_filing,
        "other_payers.subscriber_last_name" => |d| op(d).subscriber_last_name,
        "other_payers.subscriber_first_name" => |d| op(d).subscriber_first_name,
        "other_payers.subscriber_member_id" => |d| op(d).subscriber_member_id,
        "other_payers.payer_name" => |d| op(d).payer_name,
        "other_payers.payer_id" => |d| op(d).payer_id,
        "billing_provider.address.line1" => |d| addr(&mut bp(d).address).line1,
        "billing_provider.address.line2" => |d| addr(&mut bp(d).address).line2,
        "billing_provider.address.city" => |d| addr(&mut bp(d).address).city,
        "billing_provider.address.state" => |d| addr(&mut bp(d).address).state,
        "billing_provider.address.zip" => |d| addr(&mut bp(d).address).zip,
        "billing_provider.pay_to_address.line1" => |d| addr(&mut bp(d).pay_to_address).line1,
        "billing_provider.pay_to_address.line2" => |d| addr(&mut bp(d).pay_to_address).line2,
        "billing_provider.pay_to_address.city" => |d| addr(&mut bp(d).pay_to_address).city,
        "billing_provider.pay_to_address.state" => |d| addr(&mut bp(d).pay_to_address).state,
        "billing_provider.pay_to_address.zip" => |d| addr(&mut bp(d).pay_to_address).zip,
        "service_facility.address.line1" => |d| addr(&mut fac(d).address).line1,
        "service_facility.address.line2" => |d| addr(&mut fac(d).address).line2,
        "service_facility.address.city" => |d| addr(&mut fac(d).address).city,
        "service_facility.address.state" => |d| addr(&mut fac(d).address).state,
        "service_facility.address.zip" => |d| addr(&mut fac(d).address).zip,
        "subscriber.address.line1" => |d| addr(&mut sub(d).address).line1,
        "subscriber.address.line2" => |d| addr(&mut sub(d).address).line2,
        "subscriber.address.city" => |d| addr(&mut sub(d).address).city,
        "subscriber.address.state" => |d| addr(&mut sub(d).address).state,
        "subscriber.address.zip" => |d| addr(&mut sub(d).address).zip,
        "patient.address.line1" => |d| addr(&mut pat(d).address).line1,
        "patient.address.line2" => |d| addr(&mut pat(d).address).line2,
        "patient.address.city" => |d| addr(&mut pat(d).address).city,
        "patient.address.state" => |d| addr(&mut pat(d).address).state,
        "patient.address.zip" => |d| addr(&mut pat(d).address).zip,
        "payer.address.line1" => |d| addr(&mut payer(d).address).line1,
        "payer.address.line2" => |d| addr(&mut payer(d).address).line2,
        "payer.address.city" => |d| addr(&mut payer(d).address).city,
        "payer.address.state" => |d| addr(&mut payer(d).address).state,
        "payer.address.zip" => |d| addr(&mut payer(d).address).zip,
        "referring_provider.name" => |d| provider(&mut d.referring_provider).name,
        "referring_provider.first_name" => |d| provider(&mut d.referring_provider).first_name,
        "referring_provider.npi" => |d| provider(&mut d.referring_provider).npi,
        "referring_provider.taxonomy" => |d| provider(&mut d.referring_provider).taxonomy,
        "rendering_provider.name" => |d| provider(&mut d.rendering_provider).name,
        "rendering_provider.first_name" => |d| provider(&mut d.rendering_provider).first_name,
        "rendering_provider.npi" => |d| provider(&mut d.rendering_provider).npi,
        "rendering_provider.taxonomy" => |d| provider(&mut d.rendering_provider).taxonomy,
        "attending_provider.name" => |d| provider(&mut d.attending_provider).name,
        "attending_provider.first_name" => |d| provider(&mut d.attending_provider).first_name,
        "attending_provider.npi" => |d| provider(&mut d.attending_provider).npi,
        "attending_provider.taxonomy" => |d| provider(&mut d.attending_provider).taxonomy,
    })
}

/// Where a built claim (or line) holds a target's text: a written claim
/// handed back to be built into gives the room of its string there to the
/// same target's text of the claim built into it ([`FieldSpec::text_kept`]).
type Room<M> = fn(&mut M) -> Option<&mut String>;

/// Where a built claim (or line) holds a target's list of texts (as
/// [`Room`]).
type ListRoom<M> = fn(&mut M) -> Option<&mut Vec<String>>;

macro_rules! rooms {
    ($model:ty, $target:expr, { $($path:literal => |$c:ident| $place:expr,)* }) => {
        match $target {
            $($path => Some((|$c: &mut $model| -> Option<&mut String> { $place }) as Room<$model>),)*
            _ => None,
        }
    };
}

/// The room of a claim target's text in a built claim (`None`: none kept;
/// the text is made in a new string).
fn claim_room(target: &str) -> Option<Room<Claim>> {
    rooms!(Claim, target, {
        "id" => |c| Some(&mut c.id),
        "place_of_service" => |c| c.place_of_service.as_mut(),
        "type_of_bill" => |c| c.type_of_bill.as_mut(),
        "frequency_code" => |c| Some(&mut c.frequency_code),
        "assignment" => |c| Some(&mut c.assignment),
        "release_of_information" => |c| Some(&mut c.release_of_information),
        "discharge_hour" => |c| c.discharge_hour.as_mut(),
        "patient_status" => |c| c.patient_status.as_mut(),
        "admitting_diagnosis" => |c| c.admitting_diagnosis.as_mut(),
        "drg" => |c| c.drg.as_mut(),
        "accident_state" => |c| c.accident_state.as_mut(),
        "clia_number" => |c| c.clia_number.as_mut(),
        "referral_number" => |c| c.referral_number.as_mut(),
        "prior_authorization" => |c| c.prior_authorization.as_mut(),
        "payer_claim_number" => |c| c.payer_claim_number.as_mut(),
        "medical_record_number" => |c| c.medical_record_number.as_mut(),
        "note" => |c| c.note.as_mut(),
        "subscriber.member_id" => |c| Some(&mut c.subscriber.member_id),
        "subscriber.last_name" => |c| Some(&mut c.subscriber.last_name),
        "subscriber.first_name" => |c| c.subscriber.first_name.as_mut(),
        "subscriber.middle_name" => |c| c.subscriber.middle_name.as_mut(),
        "subscriber.group_number" => |c| c.subscriber.group_number.as_mut(),
        "subscriber.group_name" => |c| c.subscriber.group_name.as_mut(),
        "subscriber.claim_filing" => |c| Some(&mut c.subscriber.claim_filing),
        "subscriber.address.line1" => |c| c.subscriber.address.as_mut().map(|a| &mut a.line1),
        "subscriber.address.line2" => |c| c.subscriber.address.as_mut().and_then(|a| a.line2.as_mut()),
        "subscriber.address.city" => |c| c.subscriber.address.as_mut().map(|a| &mut a.city),
        "subscriber.address.state" => |c| c.subscriber.address.as_mut().map(|a| &mut a.state),
        "subscriber.address.zip" => |c| c.subscriber.address.as_mut().map(|a| &mut a.zip),
        "patient.relationship" => |c| c.patient.as_mut().map(|p| &mut p.relationship),
        "patient.last_name" => |c| c.patient.as_mut().map(|p| &mut p.last_name),
        "patient.first_name" => |c| c.patient.as_mut().and_then(|p| p.first_name.as_mut()),
        "patient.address.line1" => |c| c.patient.as_mut().and_then(|p| p.address.as_mut()).map(|a| &mut a.line1),
        "patient.address.city" => |c| c.patient.as_mut().and_then(|p| p.address.as_mut()).map(|a| &mut a.city),
        "patient.address.state" => |c| c.patient.as_mut().and_then(|p| p.address.as_mut()).map(|a| &mut a.state),
        "patient.address.zip" => |c| c.patient.as_mut().and_then(|p| p.address.as_mut()).map(|a| &mut a.zip),
        "payer.name" => |c| Some(&mut c.payer.name),
        "payer.id" => |c| Some(&mut c.payer.id),
        "rendering_provider.name" => |c| c.rendering_provider.as_mut().map(|p| &mut p.name),
        "rendering_provider.first_name" => |c| c.rendering_provider.as_mut().and_then(|p| p.first_name.as_mut()),
        "rendering_provider.npi" => |c| c.rendering_provider.as_mut().and_then(|p| p.npi.as_mut()),
        "rendering_provider.taxonomy" => |c| c.rendering_provider.as_mut().and_then(|p| p.taxonomy.as_mut()),
        "referring_provider.name" => |c| c.referring_provider.as_mut().map(|p| &mut p.name),
        "referring_provider.first_name" => |c| c.referring_provider.as_mut().and_then(|p| p.first_name.as_mut()),
        "referring_provider.npi" => |c| c.referring_provider.as_mut().and_then(|p| p.npi.as_mut()),
        "attending_provider.name" => |c| c.attending_provider.as_mut().map(|p| &mut p.name),
        "attending_provider.first_name" => |c| c.attending_provider.as_mut().and_then(|p| p.first_name.as_mut()),
        "attending_provider.npi" => |c| c.attending_provider.as_mut().and_then(|p| p.npi.as_mut()),
    })
}

/// The room of a line target's text in a built line (as [`claim_room`]).
fn line_room(target: &str) -> Option<Room<ServiceLine>> {
    rooms!(ServiceLine, target, {
        "procedure.qualifier" => |l| l.procedure.as_mut().map(|p| &mut p.qualifier),
        "procedure.code" => |l| l.procedure.as_mut().map(|p| &mut p.code),
        "revenue_code" => |l| l.revenue_code.as_mut(),
        "unit_basis" => |l| Some(&mut l.unit_basis),
        "place_of_service" => |l| l.place_of_service.as_mut(),
        "line_control_number" => |l| l.line_control_number.as_mut(),
        "drug.ndc" => |l| l.drug.as_mut().map(|d| &mut d.ndc),
        "drug.unit" => |l| l.drug.as_mut().map(|d| &mut d.unit),
    })
}

/// Where a gender member of a draft is ([`Put::Gender`]).
type GenderSlot<D> = fn(&mut D) -> &mut Option<Gender>;

/// The gender slot of a claim target whose setter reads it by [`gender`].
fn claim_gender_slot(target: &str) -> Option<GenderSlot<ClaimDraft>> {
    Some(match target {
        "subscriber.gender" => |d| &mut sub(d).gender,
        "patient.gender" => |d| &mut pat(d).gender,
        _ => return None,
    })
}

/// The gender [`gender`] reads from its code as it is.
fn gender_code(code: &str) -> Option<Gender> {
    match code {
        "M" => Some(Gender::Male),
        "F" => Some(Gender::Female),
        "U" => Some(Gender::Unknown),
        _ => None,
    }
}

/// Where an amount member of a draft is ([`Put::Dec`]).
type DecSlot<D> = fn(&mut D) -> &mut Option<Decimal>;
/// Where a date member of a draft is ([`Put::Date`]).
type DateSlot<D> = fn(&mut D) -> &mut Option<NaiveDate>;

/// The amount slot of a claim target whose setter reads it by [`dec`] or
/// [`opt_dec`] (both put `Some` of a non-negative amount).
fn claim_dec_slot(target: &str) -> Option<DecSlot<ClaimDraft>> {
    Some(match target {
        "total_charge" => |d| &mut d.total_charge,
        "other_payers.paid_amount" => |d| &mut op(d).paid_amount,
        _ => return None,
    })
}

/// The date slot of a claim target whose setter reads it by [`date`].
fn claim_date_slot(target: &str) -> Option<DateSlot<ClaimDraft>> {
    Some(match target {
        "statement_from" => |d| &mut d.statement_from,
        "statement_to" => |d| &mut d.statement_to,
        "admission.date" => |d| &mut adm(d).date,
        "accident_date" => |d| &mut d.accident_date,
        "onset_date" => |d| &mut d.onset_date,
        "initial_treatment_date" => |d| &mut d.initial_treatment_date,
        "subscriber.birth_date" => |d| &mut sub(d).birth_date,
        "patient.birth_date" => |d| &mut pat(d).birth_date,
        "other_payers.adjudication_date" => |d| &mut op(d).adjudication_date,
        _ => return None,
    })
}

/// The amount slot of a line target (as [`claim_dec_slot`]).
fn line_dec_slot(target: &str) -> Option<DecSlot<LineDraft>> {
    Some(match target {
        "charge" => |l| &mut l.charge,
        "units" => |l| &mut l.units,
        "drug.quantity" => |l| &mut drug(l).quantity,
        _ => return None,
    })
}

/// The date slot of a line target (as [`claim_date_slot`]).
fn line_date_slot(target: &str) -> Option<DateSlot<LineDraft>> {
    Some(match target {
        "service_date" => |l| &mut l.service_date,
        "service_date_end" => |l| &mut l.service_date_end,
        _ => return None,
    })
}

/// How a one-column field of another type than text is put: an amount or
/// a date into its slot when it has one, else through its setter.
fn typed_put<S: Copy, D>(set: S, dec: Option<DecSlot<D>>, date: Option<DateSlot<D>>) -> Put<S, D> {
    match (dec, date) {
        (Some(slot), _) => Put::Dec(slot, set),
        (_, Some(slot)) => Put::Date(slot, set),
        _ => Put::Val(set),
    }
}

/// An amount or date value put straight into its slot when its setter
/// would take it as it is; `Err(v)`: the value, for the setter.
fn put_typed<S, D>(put: Put<S, D>, d: &mut D, v: Val) -> Result<(), Val> {
    match (put, v) {
        (Put::Dec(slot, _), Val::Dec(x)) if !x.is_sign_negative() => {
            *slot(d) = Some(x);
            Ok(())
        }
        (Put::Date(slot, _), Val::Date(x)) if (0..=9999).contains(&x.year()) => {
            *slot(d) = Some(x);
            Ok(())
        }
        (_, v) => Err(v),
    }
}

/// The text slot of a line target (as [`claim_slot`]).
fn line_slot(target: &str) -> Option<Slot<LineDraft>> {
    slots!(LineDraft, target, {
        "procedure.qualifier" => |l| proc_(l).qualifier,
        "procedure.code" => |l| proc_(l).code,
        "revenue_code" => |l| l.revenue_code,
        "unit_basis" => |l| l.unit_basis,
        "place_of_service" => |l| l.place_of_service,
        "line_control_number" => |l| l.line_control_number,
        "drug.ndc" => |l| drug(l).ndc,
        "drug.unit" => |l| drug(l).unit,
    })
}

/// A map's setters, one per claim field and per line field (in the map's
/// field order, as the slots of [`Filled`]).
#[derive(Clone)]
pub(crate) struct Direct {
    kind: Option<ClaimKind>,
    claim: Vec<ClaimSet>,
    line: Vec<Set<LineDraft>>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("kind", &self.kind)
            .field("claim", &self.claim.len())
            .field("line", &self.line.len())
            .finish()
    }
}

impl Direct {
    /// The setters for these targets, or `None` when one of them is not
    /// known here (that map is built through serde only).
    pub(crate) fn new<'t>(
        kind: Option<&serde_json::Value>,
        claim_targets: impl IntoIterator<Item = &'t str>,
        line_targets: impl IntoIterator<Item = &'t str>,
    ) -> Option<Direct> {
        let kind = match kind {
            Some(v) => Some(ClaimKind::deserialize(v).ok()?),
            None => None,
        };
        Some(Direct {
            kind,
            claim: claim_targets
                .into_iter()
                .map(ClaimSet::of)
                .collect::<Option<_>>()?,
            line: line_targets
                .into_iter()
                .map(line_setter)
                .collect::<Option<_>>()?,
        })
    }

    /// The claim from its values, or `None` when serde must build it (and
    /// word what is wrong). Values are taken out of `filled`.
    pub(crate) fn build(&self, filled: &mut Filled) -> Option<Box<Claim>> {
        let mut d = ClaimDraft {
            kind: self.kind,
            ..ClaimDraft::default()
        };
        if filled.claim.len() != self.claim.len() {
            return None;
        }
        for (set, slot) in self.claim.iter().zip(filled.claim.iter_mut()) {
            if let Some(v) = slot.take() {
                set.set(&mut d, v)?;
            }
        }
        let mut lines = Vec::with_capacity(filled.lines.len());
        for vals in &mut filled.lines {
            if vals.len() != self.line.len() {
                return None;
            }
            let mut l = LineDraft::default();
            for (set, slot) in self.line.iter().zip(vals.iter_mut()) {
                if let Some(v) = slot.take() {
                    set(&mut l, v)?;
                }
            }
            lines.push(l.finish(None)?);
        }
        d.finish(lines)
    }
}

/// A list's items set where the model holds them: texts (diagnoses,
/// modifiers) or diagnosis pointers.
type Texts<D> = fn(&mut D, Vec<String>);
type Pointers<D> = fn(&mut D, Vec<u8>);

/// How a compiled step puts its value into the draft.
enum Put<S, D> {
    /// Through the field's setter of a [`Val`] (as [`Direct::build`]).
    Val(S),
    /// A list of texts, straight into the model's `Vec<String>`.
    Texts(Texts<D>),
    /// A list of pointers, straight into the model's `Vec<u8>`.
    Pointers(Pointers<D>),
    /// A text, straight into its slot ([`Slot`]).
    Slot(Slot<D>),
    /// An amount the setter would take as it is (not negative: [`dec`])
    /// straight into its slot; any other value through the setter.
    Dec(DecSlot<D>, S),
    /// A date the setter would take as it is (a four-digit year:
    /// [`date`]) straight into its slot; any other value through the
    /// setter.
    Date(DateSlot<D>, S),
    /// A text that is a gender's code (`M`, `F`, `U`: what [`gender`]
    /// reads as it is) straight into its slot, without a string; any other
    /// text through the setter.
    Gender(GenderSlot<D>, S),
}

impl<S: Copy, D> Clone for Put<S, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Copy, D> Copy for Put<S, D> {}

fn claim_texts(target: &str) -> Option<Texts<ClaimDraft>> {
    Some(match target {
        "diagnoses" => |d, v| d.diagnoses = Some(v),
        "visit_reasons" => |d, v| d.visit_reasons = Some(v),
        "related_causes" => |d, v| d.related_causes = Some(v),
        _ => return None,
    })
}

fn line_texts(target: &str) -> Option<Texts<LineDraft>> {
    Some(match target {
        "procedure.modifiers" => |l, v| proc_(l).modifiers = Some(v),
        _ => return None,
    })
}

fn line_pointers(target: &str) -> Option<Pointers<LineDraft>> {
    Some(match target {
        "diagnosis_pointers" => |l, v| l.diagnosis_pointers = Some(v),
        _ => return None,
    })
}

/// How a compiled step reads its value.
#[derive(Clone)]
enum How {
    /// One cell, typed ([`FieldSpec::typed`]).
    One(usize),
    /// A list's cells, each item typed ([`FieldSpec::each_item`]).
    List(Vec<usize>),
    /// Anything else: [`FieldSpec::value_over`], as before.
    Any,
}

/// One field of the map compiled into a step: which field (its index in
/// the map's section), how its value is read, and where it goes.
#[derive(Clone)]
struct Step<S: Copy, D, M> {
    field: usize,
    how: How,
    put: Put<S, D>,
    /// Where a built claim (or line) holds this field's text
    /// ([`Put::Slot`]): a spare claim's string there gives its room.
    room: Option<Room<M>>,
    /// Where a built claim (or line) holds this field's list of texts
    /// ([`Put::Texts`]): a spare claim's list there gives its room.
    list: Option<ListRoom<M>>,
}

/// A claim's row, as the compiled path reads it.
pub(crate) trait Cells {
    /// The text of the cell at `at`, where it lies in the row.
    fn cell(&self, at: usize) -> Option<&str>;
    /// The data row's number.
    fn number(&self) -> u64;
}

/// A map compiled at load, once its columns are resolved: each field a
/// step that reads its cell where it lies in the row and puts the typed
/// value straight into the claim draft, with no slot per field and no list
/// of values in between; the map's constants are put into a draft once,
/// which each claim starts from. Whenever a step meets anything unexpected
/// (a value that does not read, a table miss, a value the setter refuses,
/// a required member missing) it gives up, and the claim is built as
/// before (values filled, then setters or serde, which word the error).
#[derive(Clone)]
pub(crate) struct Compiled {
    base: ClaimDraft,
    /// The billing provider, built once, when the map sets it by
    /// constants only (then not in `base`): every claim shares it.
    billing: Option<Shared<BillingProvider>>,
    /// Whether `base` holds nothing but the kind.
    bare: bool,
    line_base: LineDraft,
    /// Whether `line_base` is empty (no line constants): a line starts from
    /// a default draft rather than a clone of it.
    line_bare: bool,
    claim: Vec<Step<ClaimSet, ClaimDraft, Claim>>,
    line: Vec<Step<Set<LineDraft>, LineDraft, ServiceLine>>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("claim", &self.claim.len())
            .field("line", &self.line.len())
            .finish()
    }
}

/// How a field is read, with the constant's value when it is one that can
/// go into the draft every claim starts from (not under a section
/// condition). `Err(())`: a constant that does not read (the map cannot be
/// compiled).
fn how_of(spec: &FieldSpec, conditional: bool) -> Result<(How, Option<Val>), ()> {
    Ok(match spec.shape() {
        Some(Shape::Fixed) if !conditional => match spec.fixed() {
            Some(Ok(v)) => (How::Any, Some(v.clone().ok_or(())?)),
            _ => return Err(()),
        },
        Some(Shape::One(at)) => (How::One(at), None),
        Some(Shape::List(ats)) => (How::List(ats), None),
        Some(Shape::Fixed) | None => (How::Any, None),
    })
}

impl Compiled {
    /// The map's fields compiled (`claim_when`/`line_when`: per field,
    /// whether a section condition is over it). `None` when the map's
    /// setters are not all known, or a constant does not go into the model.
    pub(crate) fn new(
        direct: &Direct,
        claim: &[FieldSpec],
        line: &[FieldSpec],
        claim_when: &[bool],
        line_when: &[bool],
    ) -> Option<Compiled> {
        if claim.len() != direct.claim.len() || line.len() != direct.line.len() {
            return None;
        }
        let mut base = ClaimDraft {
            kind: direct.kind,
            ..ClaimDraft::default()
        };
        let mut steps = Vec::new();
        // Constants put into `base`, and those of them under the billing
        // provider.
        let (mut constants, mut billing_constants) = (0, 0);
        for (i, (spec, set)) in claim.iter().zip(&direct.claim).enumerate() {
            let conditional = *claim_when.get(i)?;
            let how = match how_of(spec, conditional) {
                Ok((_, Some(v))) => {
                    set.set(&mut base, v)?;
                    constants += 1;
                    billing_constants += usize::from(spec.target.starts_with("billing_provider."));
                    continue;
                }
                Ok((how, None)) => how,
                // An empty constant: no value, nothing to put.
                Err(()) if matches!(spec.fixed(), Some(Ok(None))) && !conditional => continue,
                Err(()) => return None,
            };
            let put = match (&how, claim_texts(&spec.target)) {
                (How::List(_), Some(texts)) => Put::Texts(texts),
                (How::One(_), _) if spec.is_text() => {
                    match (claim_slot(&spec.target), claim_gender_slot(&spec.target)) {
                        (Some(slot), _) => Put::Slot(slot),
                        (_, Some(slot)) => Put::Gender(slot, *set),
                        _ => Put::Val(*set),
                    }
                }
                (How::One(_), _) => typed_put(
                    *set,
                    claim_dec_slot(&spec.target),
                    claim_date_slot(&spec.target),
                ),
                _ => Put::Val(*set),
            };
            let room = claim_room(&spec.target);
            let list: Option<ListRoom<Claim>> = match spec.target.as_str() {
                "diagnoses" => Some(|c| Some(&mut c.diagnoses)),
                "visit_reasons" => Some(|c| Some(&mut c.visit_reasons)),
                "related_causes" => Some(|c| Some(&mut c.related_causes)),
                _ => None,
            };
            steps.push(Step {
                field: i,
                how,
                put,
                room,
                list,
            });
        }
        let mut line_base = LineDraft::default();
        let mut line_constants = 0;
        let mut line_steps = Vec::new();
        for (i, (spec, set)) in line.iter().zip(&direct.line).enumerate() {
            let conditional = *line_when.get(i)?;
            let how = match how_of(spec, conditional) {
                Ok((_, Some(v))) => {
                    set(&mut line_base, v)?;
                    line_constants += 1;
                    continue;
                }
                Ok((how, None)) => how,
                Err(()) if matches!(spec.fixed(), Some(Ok(None))) && !conditional => continue,
                Err(()) => return None,
            };
            let put = match (&how, line_texts(&spec.target), line_pointers(&spec.target)) {
                (How::List(_), Some(texts), _) => Put::Texts(texts),
                (How::List(_), _, Some(pointers)) => Put::Pointers(pointers),
                (How::One(_), _, _) if spec.is_text() => match line_slot(&spec.target) {
                    Some(slot) => Put::Slot(slot),
                    None => Put::Val(*set),
                },
                (How::One(_), _, _) => typed_put(
                    *set,
                    line_dec_slot(&spec.target),
                    line_date_slot(&spec.target),
                ),
                _ => Put::Val(*set),
            };
            let room = line_room(&spec.target);
            let list: Option<ListRoom<ServiceLine>> = match spec.target.as_str() {
                "procedure.modifiers" => Some(|l| l.procedure.as_mut().map(|p| &mut p.modifiers)),
                _ => None,
            };
            line_steps.push(Step {
                field: i,
                how,
                put,
                room,
                list,
            });
        }
        // A billing provider no step puts anything into is the same on
        // every claim: built once here (when it is whole; otherwise each
        // claim gives up on it as before).
        let mut billing = None;
        let constant = !steps.iter().any(|step| {
            claim
                .get(step.field)
                .is_none_or(|spec| spec.target.starts_with("billing_provider."))
        });
        if constant {
            if let Some(b) = base.billing_provider.clone().and_then(BillingDraft::finish) {
                base.billing_provider = None;
                billing = Some(Shared::new(b));
            }
        }
        // Nothing but the kind left in `base`: a claim starts from a
        // default draft rather than a clone of it.
        let bare = constants == 0 || (billing.is_some() && constants == billing_constants);
        Some(Compiled {
            base,
            bare,
            billing,
            line_base,
            line_bare: line_constants == 0,
            claim: steps,
            line: line_steps,
        })
    }

    /// The claim from its rows (claim fields from the first, a line per
    /// row), or `None` when the claim must be built as before. `claim_on`
    /// and `line_on` say whether a field's section conditions hold for a
    /// row (asked only of fields a condition is over).
    pub(crate) fn build<R: Cells>(
        &self,
        claim: &[FieldSpec],
        line: &[FieldSpec],
        rows: &[R],
        claim_on: impl Fn(usize, &R) -> bool,
        line_on: impl Fn(usize, &R) -> bool,
        mut spare: Option<Box<Claim>>,
    ) -> Option<Box<Claim>> {
        let first = rows.first()?;
        let mut d = if self.bare {
            ClaimDraft {
                kind: self.base.kind,
                ..ClaimDraft::default()
            }
        } else {
            self.base.clone()
        };
        for step in &self.claim {
            let spec = claim.get(step.field)?;
            if !claim_on(step.field, first) {
                continue;
            }
            let v = match &step.how {
                How::Any => {
                    let column = spec.sum_column();
                    let mut every = rows
                        .iter()
                        .map(|r| (r.number(), column.and_then(|c| r.cell(c.at))));
                    let get = |c: &super::field::Col| first.cell(c.at);
                    spec.value_over(&get, &mut every).ok()?
                }
                How::One(at) => match step.put {
                    Put::Slot(slot) => {
                        let cell = first.cell(*at).unwrap_or_default();
                        let room = match (step.room, spare.as_deref_mut()) {
                            (Some(room), Some(c)) => room(c),
                            _ => None,
                        };
                        let text = match room {
                            Some(room) => spec.text_kept(cell, room),
                            None => spec.text_kept(cell, Fresh),
                        };
                        if let Some(s) = text.ok()? {
                            *slot(&mut d) = Some(s);
                        }
                        continue;
                    }
                    Put::Gender(slot, set) => {
                        let mut buf = [0u8; super::field::SHORT];
                        let cell = first.cell(*at).unwrap_or_default();
                        if let Some(code) = spec.text_in(cell, &mut buf).ok()? {
                            match gender_code(&code) {
                                Some(g) => *slot(&mut d) = Some(g),
                                None => set.set(&mut d, Val::Text(code.into_owned()))?,
                            }
                        }
                        continue;
                    }
                    _ => spec.typed(first.cell(*at).unwrap_or_default()).ok()?,
                },
                How::List(ats) => match step.put {
                    Put::Texts(put) => {
                        let room = match (step.list, spare.as_deref_mut()) {
                            (Some(list), Some(c)) => list(c),
                            _ => None,
                        };
                        if let Some(items) = texts_of(spec, first, ats, room)? {
                            put(&mut d, items);
                        }
                        continue;
                    }
                    _ => vals_of(spec, first, ats)?,
                },
            };
            match (v, step.put) {
                (Some(v), Put::Val(set)) => set.set(&mut d, v)?,
                (Some(v), put @ (Put::Dec(_, set) | Put::Date(_, set))) => {
                    if let Err(v) = put_typed(put, &mut d, v) {
                        set.set(&mut d, v)?;
                    }
                }
                (Some(_), _) => return None,
                (None, _) => {}
            }
        }
        // The spare claim's lines: the list the lines are put in, each old
        // line the room of the new one in its place (then replaced by it).
        let mut lines = spare
            .as_deref_mut()
            .map(|c| std::mem::take(&mut c.lines))
            .unwrap_or_default();
        lines.reserve(rows.len().saturating_sub(lines.len()));
        for (n, row) in rows.iter().enumerate() {
            let mut spare_line = lines.get_mut(n);
            let mut l = if self.line_bare {
                LineDraft::default()
            } else {
                self.line_base.clone()
            };
            for step in &self.line {
                let spec = line.get(step.field)?;
                if !line_on(step.field, row) {
                    continue;
                }
                let v = match &step.how {
                    How::Any => {
                        let get = |c: &super::field::Col| row.cell(c.at);
                        spec.value_over(&get, &mut std::iter::empty()).ok()?
                    }
                    How::One(at) => match step.put {
                        Put::Slot(slot) => {
                            let room = match (step.room, spare_line.as_deref_mut()) {
                                (Some(room), Some(spare)) => room(spare),
                                _ => None,
                            };
                            let cell = row.cell(*at).unwrap_or_default();
                            let text = match room {
                                Some(room) => spec.text_kept(cell, room),
                                None => spec.text_kept(cell, Fresh),
                            };
                            if let Some(s) = text.ok()? {
                                *slot(&mut l) = Some(s);
                            }
                            continue;
                        }
                        _ => spec.typed(row.cell(*at).unwrap_or_default()).ok()?,
                    },
                    How::List(ats) => match step.put {
                        Put::Texts(put) => {
                            let room = match (step.list, spare_line.as_deref_mut()) {
                                (Some(list), Some(spare)) => list(spare),
                                _ => None,
                            };
                            if let Some(items) = texts_of(spec, row, ats, room)? {
                                put(&mut l, items);
                            }
                            continue;
                        }
                        Put::Pointers(put) => {
                            let room = spare_line.as_deref_mut().map(|l| &mut l.diagnosis_pointers);
                            if let Some(items) = pointers_of(spec, row, ats, room)? {
                                put(&mut l, items);
                            }
                            continue;
                        }
                        Put::Val(_)
                        | Put::Slot(_)
                        | Put::Dec(..)
                        | Put::Date(..)
                        | Put::Gender(..) => vals_of(spec, row, ats)?,
                    },
                };
                match (v, step.put) {
                    (Some(v), Put::Val(set)) => set(&mut l, v)?,
                    (Some(v), put @ (Put::Dec(_, set) | Put::Date(_, set))) => {
                        if let Err(v) = put_typed(put, &mut l, v) {
                            set(&mut l, v)?;
                        }
                    }
                    (Some(_), _) => return None,
                    (None, _) => {}
                }
            }
            let line = l.finish(spare_line)?;
            match lines.get_mut(n) {
                Some(old) => *old = line,
                None => lines.push(line),
            }
        }
        lines.truncate(rows.len());
        d.finish_with(lines, self.billing.as_ref(), spare)
    }
}

/// A list's items as [`FieldSpec::value_over`] makes them (`Some(None)`: no
/// item, the field is left out); `None`: an item does not read.
fn vals_of<R: Cells>(spec: &FieldSpec, row: &R, ats: &[usize]) -> Option<Option<Val>> {
    let mut out = Vec::new();
    for at in ats {
        spec.each_item(row.cell(*at).unwrap_or_default(), &mut |v| {
            out.push(v);
            Some(())
        })?;
    }
    Some((!out.is_empty()).then_some(Val::List(out)))
}

/// A list of texts as [`texts`] takes it from [`vals_of`]'s list; `None`
/// when an item does not read or is not text.
///
/// `spare`: a written claim's list in the same place, whose allocation and
/// strings the items are made in (what it held is never read).
fn texts_of<R: Cells>(
    spec: &FieldSpec,
    row: &R,
    ats: &[usize],
    spare: Option<&mut Vec<String>>,
) -> Option<Option<Vec<String>>> {
    if spec.items_are_text() && !spec.is_split() {
        // One item a cell: `Val::Text` of what `FieldSpec::text` gives
        // (`each_text` without a split, called directly), the k-th made
        // in the room of the spare list's k-th string.
        let mut out = spare.map(std::mem::take).unwrap_or_default();
        let mut k = 0;
        for at in ats {
            let cell = row.cell(*at).unwrap_or_default();
            let text = match out.get_mut(k) {
                Some(room) => spec.text_kept(cell, room),
                None => spec.text_kept(cell, Fresh),
            };
            if let Some(s) = text.ok()? {
                match out.get_mut(k) {
                    Some(slot) => *slot = s,
                    None => out.push(s),
                }
                k += 1;
            }
        }
        out.truncate(k);
        return Some((k > 0).then_some(out));
    }
    let mut out = Vec::new();
    if spec.items_are_text() {
        // Each item is `Val::Text` of what `FieldSpec::text` gives.
        for at in ats {
            spec.each_text(row.cell(*at).unwrap_or_default(), &mut |s| out.push(s))?;
        }
        return Some((!out.is_empty()).then_some(out));
    }
    for at in ats {
        spec.each_item(row.cell(*at).unwrap_or_default(), &mut |v| match v {
            Val::Text(s) => {
                out.push(s);
                Some(())
            }
            _ => None,
        })?;
    }
    Some((!out.is_empty()).then_some(out))
}

/// Diagnosis pointers as [`pointers`] takes them from [`vals_of`]'s list.
///
/// `spare`: a written line's pointers, whose allocation is used again.
fn pointers_of<R: Cells>(
    spec: &FieldSpec,
    row: &R,
    ats: &[usize],
    spare: Option<&mut Vec<u8>>,
) -> Option<Option<Vec<u8>>> {
    let mut out = spare.map(std::mem::take).unwrap_or_default();
    out.clear();
    if spec.ints_plain() {
        // The numbers `each_item` would give as `Val::Int`, read directly.
        for at in ats {
            spec.each_int(row.cell(*at).unwrap_or_default(), &mut |n| {
                out.push(u8::try_from(n).ok()?);
                Some(())
            })?;
        }
        return Some((!out.is_empty()).then_some(out));
    }
    for at in ats {
        spec.each_item(row.cell(*at).unwrap_or_default(), &mut |v| match v {
            Val::Int(n) => {
                out.push(u8::try_from(n).ok()?);
                Some(())
            }
            _ => None,
        })?;
    }
    Some((!out.is_empty()).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::plan::Plan;
    use std::str::FromStr;

    /// The claim as serde builds it from the same values (the old path).
    fn by_serde(plan: &Plan, filled: Filled) -> Option<Claim> {
        Claim::deserialize(plan.claim(filled)).ok()
    }

    /// Every member, every amount's scale: the JSON form shows them all
    /// (`PartialEq` on `Decimal` ignores the scale).
    fn shown(c: &Option<Claim>) -> Option<String> {
        c.as_ref().map(|c| serde_json::to_string(c).unwrap())
    }

    /// A gender's code read directly is what serde reads; every other
    /// value goes to serde and gives what it gives (aliases, refusals).
    #[test]
    fn genders_read_as_serde_reads_them() {
        let mut values: Vec<Val> = [
            "M", "F", "U", "m", "f", "u", "male", "female", "unknown", "Male", "X", "", " M", "M ",
            "MM", "Female",
        ]
        .into_iter()
        .map(|t| Val::Text(t.to_owned()))
        .collect();
        values.extend([
            Val::Int(1),
            Val::Bool(true),
            Val::List(vec![Val::Text("M".to_owned())]),
        ]);
        let mut fast = 0;
        for v in values {
            let shown = format!("{v:?}");
            let theirs = de::<Option<Gender>>(v.clone());
            assert_eq!(gender(v.clone()), theirs, "{shown}");
            fast +=
                usize::from(matches!(&v, Val::Text(t) if ["M", "F", "U"].contains(&t.as_str())));
        }
        assert_eq!(fast, 3);
    }

    /// A text put straight into its slot leaves the draft as the field's
    /// setter leaves it given the text as a value (the objects on the way
    /// made, nothing else touched), for every target with a slot; and the
    /// targets without one are not text.
    #[test]
    fn text_slots_put_what_the_setters_put() {
        // Every claim-level field of the model (lines have their own test;
        // an other payer's adjustments are a list of objects, no slot).
        let claim_targets: Vec<String> = crate::model::claim_paths()
            .into_iter()
            .filter(|p| !p.starts_with("lines.") && !p.starts_with("other_payers.adjustments."))
            .collect();
        let value = || Val::Text("X1".to_owned());
        let mut slots = 0;
        for target in &claim_targets {
            let set = ClaimSet::of(target).unwrap();
            let mut theirs = ClaimDraft::default();
            let took = set.set(&mut theirs, value()).is_some();
            match claim_slot(target) {
                Some(slot) => {
                    assert!(took, "{target}");
                    let mut ours = ClaimDraft::default();
                    *slot(&mut ours) = Some("X1".to_owned());
                    assert!(ours == theirs, "{target}");
                    // Over a draft that has the objects already.
                    let mut full = theirs.clone();
                    set.set(&mut full, Val::Text("Y".to_owned())).unwrap();
                    *slot(&mut theirs) = Some("Y".to_owned());
                    assert!(full == theirs, "{target}");
                    slots += 1;
                }
                // Not a text: its setter refuses the text or reads it as
                // something else (a code, a date).
                None => assert!(
                    !took
                        || [
                            "kind",
                            "icd_version",
                            "subscriber.gender",
                            "patient.gender",
                            "diagnoses",
                            "visit_reasons",
                            "related_causes",
                        ]
                        .contains(&target.as_str())
                        || target.ends_with(".entity")
                        || target.ends_with("responsibility"),
                    "{target}"
                ),
            }
        }
        assert_eq!(slots, 89);
        // Amounts and dates: the slot takes what the setter takes as it is
        // (the same draft after), and leaves the rest to the setter.
        let amount = Decimal::new(18500, 2);
        let day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        let (mut decs, mut dates) = (0, 0);
        for target in &claim_targets {
            let set = ClaimSet::of(target).unwrap();
            let typed: Option<(Put<ClaimSet, ClaimDraft>, Val)> =
                match (claim_dec_slot(target), claim_date_slot(target)) {
                    (Some(slot), _) => {
                        decs += 1;
                        Some((Put::Dec(slot, set), Val::Dec(amount)))
                    }
                    (_, Some(slot)) => {
                        dates += 1;
                        Some((Put::Date(slot, set), Val::Date(day)))
                    }
                    _ => None,
                };
            let Some((put, v)) = typed else { continue };
            let mut theirs = ClaimDraft::default();
            set.set(&mut theirs, v.clone()).unwrap();
            let mut ours = ClaimDraft::default();
            assert!(put_typed(put, &mut ours, v).is_ok(), "{target}");
            assert!(ours == theirs, "{target}");
            let early = NaiveDate::from_ymd_opt(-5, 1, 1).unwrap();
            for odd in [
                Val::Dec(-amount),
                Val::Date(early),
                Val::Text("1".to_owned()),
            ] {
                assert!(put_typed(put, &mut ours, odd).is_err(), "{target}");
            }
        }
        assert_eq!((decs, dates), (2, 9));
        // Genders: a code goes into the slot as the setter puts it; the
        // setter still reads (or refuses) anything else.
        let mut genders = 0;
        for target in &claim_targets {
            let Some(slot) = claim_gender_slot(target) else {
                continue;
            };
            genders += 1;
            let set = ClaimSet::of(target).unwrap();
            for code in ["M", "F", "U", "X", "female", "m", ""] {
                let mut theirs = ClaimDraft::default();
                let took = set.set(&mut theirs, Val::Text(code.to_owned())).is_some();
                match gender_code(code) {
                    Some(g) => {
                        assert!(took, "{target} {code}");
                        let mut ours = ClaimDraft::default();
                        *slot(&mut ours) = Some(g);
                        assert!(ours == theirs, "{target} {code}");
                    }
                    None => assert!(!["M", "F", "U"].contains(&code)),
                }
            }
        }
        assert_eq!(genders, 2);
        let (mut decs, mut dates) = (0, 0);
        for target in [
            "charge",
            "units",
            "drug.quantity",
            "service_date",
            "service_date_end",
        ] {
            let set = line_setter(target).unwrap();
            let (put, v): (Put<Set<LineDraft>, LineDraft>, Val) =
                match (line_dec_slot(target), line_date_slot(target)) {
                    (Some(slot), _) => {
                        decs += 1;
                        (Put::Dec(slot, set), Val::Dec(amount))
                    }
                    (_, Some(slot)) => {
                        dates += 1;
                        (Put::Date(slot, set), Val::Date(day))
                    }
                    _ => panic!("{target}"),
                };
            let mut theirs = LineDraft::default();
            set(&mut theirs, v.clone()).unwrap();
            let mut ours = LineDraft::default();
            assert!(put_typed(put, &mut ours, v).is_ok(), "{target}");
            assert!(ours == theirs, "{target}");
        }
        assert_eq!((decs, dates), (3, 2));
        let line_targets = crate::model::line_paths();
        let mut slots = 0;
        for target in line_targets.iter().map(String::as_str) {
            let set = line_setter(target).unwrap();
            let mut theirs = LineDraft::default();
            let took = set(&mut theirs, value()).is_some();
            if let Some(slot) = line_slot(target) {
                assert!(took, "{target}");
                let mut ours = LineDraft::default();
                *slot(&mut ours) = Some("X1".to_owned());
                assert!(ours == theirs, "{target}");
                slots += 1;
            } else {
                assert!(!took || target == "procedure.modifiers", "{target}");
            }
        }
        assert_eq!(slots, 8);
    }

    /// The fast reads give what the model's own `Deserialize` gives.
    #[test]
    fn amounts_and_dates_read_as_serde_reads_them() {
        for text in [
            "0",
            "0.00",
            "0.05",
            "1",
            "150.00",
            "185.5",
            "1234.50",
            "7.000",
            "-12.00",
            "-0.00",
            "79228162514264337593543950335",
            "0.0000000000000000000000000001",
        ] {
            let d = Decimal::from_str(text).unwrap();
            let ours = dec(Val::Dec(d)).unwrap();
            let theirs = <Decimal as Deserialize>::deserialize(Val::Dec(d)).unwrap();
            assert_eq!(
                (ours.mantissa(), ours.scale(), ours.is_sign_negative()),
                (theirs.mantissa(), theirs.scale(), theirs.is_sign_negative()),
                "{text}"
            );
            let ours = opt_dec(Val::Dec(d)).unwrap().unwrap();
            assert_eq!(
                (ours.mantissa(), ours.scale()),
                (theirs.mantissa(), theirs.scale())
            );
        }
        for (y, m, d) in [
            (2026, 11, 3),
            (1961, 3, 14),
            (0, 1, 1),
            (999, 12, 31),
            (9999, 12, 31),
            (-1, 6, 1),
            (10000, 1, 1),
        ] {
            let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(
                date(Val::Date(day)),
                crate::model::optional_date(Val::Date(day)).ok(),
                "{day}"
            );
        }
    }

    /// Every target the setters know, filled with values of every kind
    /// (mostly the field's own, sometimes anything, sometimes nothing):
    /// wherever the setters build a claim, serde builds the same one, and
    /// the setters give up only where serde fails.
    #[test]
    fn setters_build_what_serde_builds_for_every_target() {
        let claim_targets: Vec<String> = crate::model::claim_paths()
            .into_iter()
            .filter(|p| !p.starts_with("lines.") && !p.contains("adjustments"))
            .collect();
        let line_targets = crate::model::line_paths();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let day = |y, m, d| Val::Date(NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let amount = |t: &str| Val::Dec(Decimal::from_str(t).unwrap());
        let text = |t: &str| Val::Text(t.to_owned());
        let anything = |i: u64| -> Val {
            match i {
                0 => text("1"),
                1 => text("male"),
                2 => text("150.00"),
                3 => text("2026-11-03"),
                4 => text(""),
                5 => Val::Int(7),
                6 => Val::Int(300),
                7 => Val::Bool(false),
                8 => amount("-12.00"),
                9 => amount("-0.00"),
                10 => day(-1, 6, 1),
                11 => day(10000, 1, 1),
                12 => Val::List(vec![text("A"), Val::Int(2)]),
                13 => Val::List(vec![Val::Int(1), Val::Int(4)]),
                14 => Val::List(vec![amount("1.50")]),
                15 => text("Y"),
                16 => text("icd9"),
                17 => text("837I"),
                _ => Val::List(Vec::new()),
            }
        };
        let good = |target: &str, i: u64| -> Val {
            let leaf = target.rsplit('.').next().unwrap_or(target);
            match leaf {
                "kind" if target == "kind" => {
                    [text("professional"), text("837I")][i as usize % 2].clone()
                }
                "total_charge" | "charge" | "units" | "paid_amount" | "quantity" => {
                    [amount("150.00"), amount("0"), amount("1.5")][i as usize % 3].clone()
                }
                "provider_signature" | "benefits_assigned" | "ssn_as_tax_id" => {
                    Val::Bool(i.is_multiple_of(2))
                }
                "diagnoses" | "visit_reasons" | "related_causes" | "modifiers" => {
                    Val::List(vec![text("J45909"), text("E119")])
                }
                "diagnosis_pointers" => Val::List(vec![Val::Int(1), Val::Int(2)]),
                "gender" => [text("F"), text("male"), text("u")][i as usize % 3].clone(),
                "entity" => [text("person"), text("organization")][i as usize % 2].clone(),
                "responsibility" => [text("S"), text("primary")][i as usize % 2].clone(),
                "icd_version" => text("icd9"),
                _ if leaf.contains("date") || leaf.starts_with("statement_") => {
                    [day(2026, 11, 3), day(1961, 3, 14)][i as usize % 2].clone()
                }
                _ => text("X1"),
            }
        };
        let (mut built, mut refused, mut both_failed) = (0, 0, 0);
        for round in 0..4000 {
            // Each round maps a different subset of the targets (most of
            // them, or fewer), fills them with the field's own kind of
            // value, then spoils up to three values (anything, or none).
            let keep_one_in = [1000, 1000, 8, 3][round % 4];
            let claim: Vec<&str> = claim_targets
                .iter()
                .filter(|_| next(keep_one_in) != 0)
                .map(String::as_str)
                .collect();
            let line: Vec<&str> = line_targets
                .iter()
                .filter(|_| next(keep_one_in) != 0)
                .map(String::as_str)
                .collect();
            let kind = (round % 5 != 0).then(|| serde_json::json!("professional"));
            let plan = Plan::new(kind, claim.iter().copied(), line.iter().copied());
            let claim_vals: Vec<Option<Val>> =
                claim.iter().map(|t| Some(good(t, next(6)))).collect();
            let mut lines: Vec<Vec<Option<Val>>> = Vec::new();
            for _ in 0..round % 3 + 1 {
                lines.push(line.iter().map(|t| Some(good(t, next(6)))).collect());
            }
            let mut filled = Filled {
                claim: claim_vals,
                lines,
            };
            for _ in 0..next(4) {
                let spoilt = match next(3) {
                    0 => None,
                    _ => Some(anything(next(19))),
                };
                let n = filled.claim.len() as u64;
                let at = next(n + 3) as usize;
                match filled.claim.get_mut(at) {
                    Some(slot) => *slot = spoilt,
                    None => {
                        let l = next(filled.lines.len() as u64) as usize;
                        if let Some(vals) = filled.lines.get_mut(l) {
                            let k = next(vals.len().max(1) as u64) as usize;
                            if let Some(slot) = vals.get_mut(k) {
                                *slot = spoilt;
                            }
                        }
                    }
                }
            }
            let ours = plan.build(&mut filled.clone());
            let theirs = by_serde(&plan, filled);
            assert_eq!(
                shown(&ours.clone().map(|c| *c)),
                shown(&theirs).filter(|_| ours.is_some()),
                "round {round}"
            );
            match (ours.is_some(), theirs.is_some()) {
                (true, _) => built += 1,
                (false, true) => refused += 1,
                (false, false) => both_failed += 1,
            }
        }
        // The setters give up only where serde fails too.
        assert_eq!(refused, 0, "built {built}, failed {both_failed}");
        assert!(
            built > 200 && both_failed > 200,
            "built {built}, failed {both_failed}"
        );
    }

    #[test]
    fn targets_the_setters_do_not_know_leave_the_map_to_serde() {
        let plan = Plan::new(None, ["id", "other_payers.adjustments.group"], ["charge"]);
        assert!(plan.build(&mut Filled::default()).is_none());
        assert!(Direct::new(None, ["lines.charge"], []).is_none());
        assert!(Direct::new(None, ["id", "subscriber.address.zip"], ["drug.ndc"]).is_some());
    }
}

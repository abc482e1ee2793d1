//! Claims for 837P (005010X222A1) and 837I (005010X223A2).
//!
//! Field names follow the billing office's vocabulary, not X12 element ids;
//! the X12 writer and reader own the mapping to segments. Optional fields are
//! `Option` so that real-world files, which omit situational segments, read
//! into the model without inventing data; the scrubber decides what a given
//! claim kind and partner require.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Dates as the model reads them (`2026-11-03`): that shape is read by hand
/// (the map hands every date over so), anything else by chrono's own
/// deserialiser, exactly as before: the same dates and the same errors.
mod date {
    use chrono::NaiveDate;
    use serde::de::{self, Deserializer, Visitor};
    use serde::Deserialize;
    use std::fmt;

    struct Date(NaiveDate);

    struct DateVisitor;

    /// `YYYY-MM-DD` exactly, a date that exists.
    pub(super) fn iso(v: &str) -> Option<NaiveDate> {
        let b = v.as_bytes();
        if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<u32> {
            b.get(from..to)?.iter().try_fold(0u32, |n, c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 7)?, num(8, 10)?)
    }

    impl Visitor<'_> for DateVisitor {
        type Value = NaiveDate;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            // chrono's words, so a refusal reads as it always did.
            formatter.write_str("a formatted date string")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<NaiveDate, E> {
            match iso(value) {
                Some(date) => Ok(date),
                None => value.parse().map_err(E::custom),
            }
        }
    }

    impl<'de> Deserialize<'de> for Date {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_str(DateVisitor).map(Date)
        }
    }

    pub(super) fn optional<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NaiveDate>, D::Error> {
        Ok(Option::<Date>::deserialize(deserializer)?.map(|Date(d)| d))
    }
}

/// A date member of the model as its `Deserialize` reads it (`YYYY-MM-DD`
/// by hand, anything else by chrono), for the map's direct claim builder,
/// which must read a date exactly as the model does.
pub(crate) fn optional_date<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<NaiveDate>, D::Error> {
    date::optional(deserializer)
}

/// A set of claims with the parties of the transmission, as canonical JSON.
///
/// ```json
/// { "submitter": { "name": "PREMIER BILLING", "id": "TGJ23",
///                  "contact_name": "JERRY", "phone": "3055552222" },
///   "receiver": { "name": "KEY INSURANCE", "id": "66783JJT" },
///   "claims": [ { "kind": "professional", "id": "26463774", ... } ] }
/// ```
///
/// `submitter` and `receiver` may be left out: the partner profile supplies
/// them (it knows the submitter id the partner assigned to us).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitter: Option<Submitter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<Receiver>,
    pub claims: Vec<Claim>,
}

/// Loop 1000A: who sends the transaction (us, under the id the partner gave us).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submitter {
    pub name: String,
    pub id: String,
    pub contact_name: Option<String>,
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Loop 1000B: who receives the transaction (payer or clearinghouse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    pub name: String,
    pub id: String,
}

/// 837P or 837I.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimKind {
    /// 837P, 005010X222A1.
    #[serde(alias = "837P", alias = "837p")]
    Professional,
    /// 837I, 005010X223A2.
    #[serde(alias = "837I", alias = "837i")]
    Institutional,
}

impl ClaimKind {
    /// The implementation guide's version id (GS08 / ST03).
    pub fn version(self) -> &'static str {
        match self {
            ClaimKind::Professional => "005010X222A1",
            ClaimKind::Institutional => "005010X223A2",
        }
    }

    /// The short name used in reports and file names.
    pub fn label(self) -> &'static str {
        match self {
            ClaimKind::Professional => "837P",
            ClaimKind::Institutional => "837I",
        }
    }
}

/// Person (NM102 = 1) or organisation (NM102 = 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityType {
    Person,
    #[default]
    Organization,
}

#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub state: String,
    /// 5 or 9 digits, no hyphen (the map strips it).
    pub zip: String,
}

/// A member that consecutive claims may hold in common (a map's constant
/// billing provider, built once at load instead of cloned into every
/// claim). It reads as the value it holds; it is changed in place only
/// through a copy of its own once shared (copy on write, so no claim ever
/// sees another's change); it is compared, hashed, printed and serialised
/// as that value, so the model's JSON is the same as with the value
/// itself. Two that share one value are equal without looking at it.
#[derive(Default)]
pub struct Shared<T>(std::sync::Arc<T>);

impl<T> Shared<T> {
    pub fn new(value: T) -> Shared<T> {
        Shared(std::sync::Arc::new(value))
    }

    /// Whether both hold the very same value (not a copy of it).
    pub fn same(a: &Shared<T>, b: &Shared<T>) -> bool {
        std::sync::Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(std::sync::Arc::clone(&self.0))
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Shared<T> {
        Shared::new(value)
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> std::ops::DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Shared<T>) -> bool {
        Shared::same(self, other) || *self.0 == *other.0
    }
}

impl<T: Eq> Eq for Shared<T> {}

/// A billing provider compares with a shared one as with its value.
impl PartialEq<Shared<BillingProvider>> for BillingProvider {
    fn eq(&self, other: &Shared<BillingProvider>) -> bool {
        *self == **other
    }
}

impl<T: std::hash::Hash> std::hash::Hash for Shared<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (*self.0).hash(state);
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (*self.0).fmt(f)
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (*self.0).serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Shared::new)
    }
}

/// Loop 2010AA. Compared whole to decide whether consecutive claims share one
/// billing-provider HL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingProvider {
    #[serde(default)]
    pub entity: EntityType,
    /// Organisation name, or the last name of a person.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    pub npi: String,
    /// Employer identification number (REF*EI) or, for a person, SSN (REF*SY).
    pub tax_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssn_as_tax_id: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxonomy: Option<String>,
    pub address: Address,
    /// Loop 2010AB, when payments go to another address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_to_address: Option<Address>,
}

/// Rendering, referring, attending or operating provider (loops 2310x).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    #[serde(default = "person")]
    pub entity: EntityType,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxonomy: Option<String>,
}

fn person() -> EntityType {
    EntityType::Person
}

/// Service facility location (2310C in 837P, 2310E in 837I).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facility {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npi: Option<String>,
    pub address: Address,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Gender {
    #[serde(rename = "M", alias = "m", alias = "male")]
    Male,
    #[serde(rename = "F", alias = "f", alias = "female")]
    Female,
    #[serde(rename = "U", alias = "u", alias = "unknown")]
    Unknown,
}

impl Gender {
    pub fn code(self) -> &'static str {
        match self {
            Gender::Male => "M",
            Gender::Female => "F",
            Gender::Unknown => "U",
        }
    }
}

/// Payer responsibility sequence (SBR01).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Responsibility {
    #[default]
    #[serde(rename = "P", alias = "primary")]
    Primary,
    #[serde(rename = "S", alias = "secondary")]
    Secondary,
    #[serde(rename = "T", alias = "tertiary")]
    Tertiary,
}

impl Responsibility {
    pub fn code(self) -> &'static str {
        match self {
            Responsibility::Primary => "P",
            Responsibility::Secondary => "S",
            Responsibility::Tertiary => "T",
        }
    }
}

/// Loop 2000B/2010BA: the insured.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriber {
    pub member_id: String,
    pub last_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub birth_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// SBR01; primary unless this is a secondary/tertiary claim.
    #[serde(default)]
    pub responsibility: Responsibility,
    /// SBR09 claim filing indicator: CI commercial, MB Medicare B, MC Medicaid, BL, HM…
    #[serde(default = "commercial")]
    pub claim_filing: String,
}

fn commercial() -> String {
    "CI".to_owned()
}

/// Loop 2000C/2010CA: the patient, when not the subscriber.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    /// PAT01 individual relationship code: 01 spouse, 19 child, 20 employee, 21 unknown, 39 organ donor, 40 cadaver donor, 53 life partner, G8 other.
    pub relationship: String,
    pub last_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub birth_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// Loop 2010BB: the payer the claim goes to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payer {
    pub name: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

/// Which ICD revision the diagnosis codes are in. ICD-10-CM unless the claim
/// was read from an old file that used ICD-9 qualifiers (BK/BF).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IcdVersion {
    #[default]
    Icd10,
    Icd9,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn yes() -> bool {
    true
}

/// Claim adjustment (CAS): group, reason (CARC) and amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// CO contractual, PR patient responsibility, OA other, PI payer initiated, CR correction.
    pub group: String,
    pub reason: String,
    pub amount: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Decimal>,
}

/// Loops 2320/2330A/2330B: a payer that already saw this claim (COB).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherPayer {
    #[serde(default)]
    pub responsibility: Responsibility,
    /// SBR02 relationship of the patient to this other subscriber (18 self, 01 spouse, 19 child, G8 other).
    pub relationship: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_number: Option<String>,
    #[serde(default = "commercial")]
    pub claim_filing: String,
    pub subscriber_last_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_first_name: Option<String>,
    pub subscriber_member_id: String,
    pub payer_name: String,
    pub payer_id: String,
    /// AMT*D: what this payer paid on the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_amount: Option<Decimal>,
    /// CAS at claim level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjustments: Vec<Adjustment>,
    /// DTP*573: when this payer adjudicated the claim.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub adjudication_date: Option<NaiveDate>,
}

/// CPT/HCPCS procedure with up to four modifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    /// SV101-1 / SV202-1 qualifier; HC (CPT/HCPCS) unless the file said otherwise.
    #[serde(default = "hc", skip_serializing_if = "is_hc")]
    pub qualifier: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<String>,
}

fn hc() -> String {
    "HC".to_owned()
}

fn is_hc(s: &str) -> bool {
    s == "HC"
}

fn un() -> String {
    "UN".to_owned()
}

fn is_un(s: &str) -> bool {
    s == "UN"
}

/// Loop 2410: National Drug Code for a drug billed on the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drug {
    /// 11 digits, 5-4-2, no hyphens.
    pub ndc: String,
    pub quantity: Decimal,
    /// F2 international unit, GR gram, ME milligram, ML millilitre, UN unit.
    pub unit: String,
}

/// Loop 2400: one service line.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLine {
    /// CPT/HCPCS; required on 837P lines, optional on 837I lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<Procedure>,
    /// NUBC revenue code (837I only), four digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue_code: Option<String>,
    pub charge: Decimal,
    pub units: Decimal,
    /// UN units, MJ minutes (anesthesia), DA days (837I).
    #[serde(default = "un", skip_serializing_if = "is_un")]
    pub unit_basis: String,
    /// 837P SV105, when the line's place of service differs from the claim's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_service: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub service_date: Option<NaiveDate>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub service_date_end: Option<NaiveDate>,
    /// 837P SV107: 1-based indexes into the claim's diagnoses, at most four.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnosis_pointers: Vec<u8>,
    /// REF*6R, the key that 835 service lines come back with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_control_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drug: Option<Drug>,
}

/// Institutional claim codes (CL1).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub date: Option<NaiveDate>,
    /// CL101 priority (type) of admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// CL102 point of origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Admission hour, HHMM (837I: DTP*435 then carries CCYYMMDDHHMM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<String>,
}

/// Loop 2300 with everything under it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub kind: ClaimKind,
    /// CLM01, the patient control number; what `trace` looks claims up by.
    pub id: String,
    pub total_charge: Decimal,
    /// 837P: CLM05-1, two-digit CMS place of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_of_service: Option<String>,
    /// 837I: CLM05-1, the first two digits of the type of bill (facility type + classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_of_bill: Option<String>,
    /// CLM05-3: 1 original, 7 replacement, 8 void (plus the NUBC codes on 837I).
    #[serde(default = "original")]
    pub frequency_code: String,
    /// CLM06 (837P): provider signature on file.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub provider_signature: bool,
    /// CLM07: A assigned, B lab services only, C not assigned.
    #[serde(default = "assigned")]
    pub assignment: String,
    /// CLM08: benefits assigned to the provider.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub benefits_assigned: bool,
    /// CLM09: I informed consent, Y signed release.
    #[serde(default = "release")]
    pub release_of_information: String,
    /// 837I DTP*434. On an 837P nothing carries it: set it only to have the
    /// scrubber check that every line falls inside it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub statement_from: Option<NaiveDate>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub statement_to: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
    /// 837I DTP*096: discharge hour, HHMM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discharge_hour: Option<String>,
    /// 837I CL103 patient discharge status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_status: Option<String>,
    /// Diagnosis codes without the dot; the first is the principal one.
    pub diagnoses: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub icd_version: IcdVersion,
    /// 837I HI*ABJ, admitting diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitting_diagnosis: Option<String>,
    /// 837I HI*APR (PR for ICD-9): the patient's reasons for the visit, at most three.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visit_reasons: Vec<String>,
    /// 837I HI*DR: diagnosis related group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drg: Option<String>,
    /// 837P CLM11-1 and CLM11-2: what the condition is related to: AA auto
    /// accident, EM employment, OA other accident. At most two: 5010 does
    /// not use CLM11-3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_causes: Vec<String>,
    /// 837P DTP*439: date of the accident.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub accident_date: Option<NaiveDate>,
    /// 837P CLM11-4: state (or province) of an auto accident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accident_state: Option<String>,
    /// 837P DTP*431: onset of the current illness or symptom.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub onset_date: Option<NaiveDate>,
    /// 837P DTP*454: initial treatment date.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "date::optional"
    )]
    pub initial_treatment_date: Option<NaiveDate>,
    /// 837P REF*X4: the laboratory's CLIA number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clia_number: Option<String>,
    /// REF*9F: the referral number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral_number: Option<String>,
    /// REF*G1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_authorization: Option<String>,
    /// REF*F8: the payer's claim number, required on replacement and void claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_claim_number: Option<String>,
    /// REF*EA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medical_record_number: Option<String>,
    /// NTE, free text to the payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Shared between the claims of a map that sets it by constants only
    /// (built once at load); see [`Shared`].
    pub billing_provider: Shared<BillingProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referring_provider: Option<Provider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendering_provider: Option<Provider>,
    /// 837I 2310A.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attending_provider: Option<Provider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_facility: Option<Facility>,
    pub subscriber: Subscriber,
    /// Present only when the patient is not the subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<Patient>,
    pub payer: Payer,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_payers: Vec<OtherPayer>,
    pub lines: Vec<ServiceLine>,
}

fn original() -> String {
    "1".to_owned()
}

fn assigned() -> String {
    "A".to_owned()
}

fn release() -> String {
    "Y".to_owned()
}

impl Claim {
    /// The sum of the lines' charges, which CLM02 must equal; None when it
    /// is too large for a `Decimal` (amounts the scrubber refuses anyway: no
    /// 5010 amount is past 99999999.99).
    pub fn line_total(&self) -> Option<Decimal> {
        self.lines
            .iter()
            .try_fold(Decimal::ZERO, |sum, l| sum.checked_add(l.charge))
    }

    /// The patient's birth date, whoever the patient is.
    pub fn patient_birth_date(&self) -> Option<NaiveDate> {
        match &self.patient {
            Some(p) => p.birth_date,
            None => self.subscriber.birth_date,
        }
    }

    /// Earliest and latest service date on the lines.
    pub fn service_span(&self) -> Option<(NaiveDate, NaiveDate)> {
        let mut dates = self
            .lines
            .iter()
            .flat_map(|l| l.service_date.into_iter().chain(l.service_date_end));
        let first = dates.next()?;
        Some(dates.fold((first, first), |(lo, hi), d| (lo.min(d), hi.max(d))))
    }
}

const ADDRESS: &[&str] = &["line1", "line2", "city", "state", "zip"];
const PROVIDER: &[&str] = &["entity", "name", "first_name", "npi", "taxonomy"];

/// Every field of [`Claim`] as a dotted path; lists are transparent
/// (`lines.procedure.code`). Maps and partner rules are checked against this
/// at load time, so a typo in a TOML file fails early.
pub fn claim_paths() -> Vec<String> {
    let mut paths: Vec<String> = [
        "kind",
        "id",
        "total_charge",
        "place_of_service",
        "type_of_bill",
        "frequency_code",
        "provider_signature",
        "assignment",
        "benefits_assigned",
        "release_of_information",
        "statement_from",
        "statement_to",
        "admission.date",
        "admission.kind",
        "admission.source",
        "admission.hour",
        "discharge_hour",
        "patient_status",
        "diagnoses",
        "icd_version",
        "admitting_diagnosis",
        "visit_reasons",
        "drg",
        "related_causes",
        "accident_date",
        "accident_state",
        "onset_date",
        "initial_treatment_date",
        "clia_number",
        "referral_number",
        "prior_authorization",
        "payer_claim_number",
        "medical_record_number",
        "note",
        "billing_provider.entity",
        "billing_provider.name",
        "billing_provider.first_name",
        "billing_provider.npi",
        "billing_provider.tax_id",
        "billing_provider.ssn_as_tax_id",
        "billing_provider.taxonomy",
        "service_facility.name",
        "service_facility.npi",
        "subscriber.member_id",
        "subscriber.last_name",
        "subscriber.first_name",
        "subscriber.middle_name",
        "subscriber.birth_date",
        "subscriber.gender",
        "subscriber.group_number",
        "subscriber.group_name",
        "subscriber.responsibility",
        "subscriber.claim_filing",
        "patient.relationship",
        "patient.last_name",
        "patient.first_name",
        "patient.birth_date",
        "patient.gender",
        "payer.name",
        "payer.id",
        "other_payers.responsibility",
        "other_payers.relationship",
        "other_payers.group_number",
        "other_payers.claim_filing",
        "other_payers.subscriber_last_name",
        "other_payers.subscriber_first_name",
        "other_payers.subscriber_member_id",
        "other_payers.payer_name",
        "other_payers.payer_id",
        "other_payers.paid_amount",
        "other_payers.adjustments.group",
        "other_payers.adjustments.reason",
        "other_payers.adjustments.amount",
        "other_payers.adjustments.quantity",
        "other_payers.adjudication_date",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for owner in [
        "billing_provider.address",
        "billing_provider.pay_to_address",
        "service_facility.address",
        "subscriber.address",
        "patient.address",
        "payer.address",
    ] {
        paths.extend(ADDRESS.iter().map(|f| format!("{owner}.{f}")));
    }
    for owner in [
        "referring_provider",
        "rendering_provider",
        "attending_provider",
    ] {
        paths.extend(PROVIDER.iter().map(|f| format!("{owner}.{f}")));
    }
    paths.extend(line_paths().into_iter().map(|p| format!("lines.{p}")));
    paths
}

/// Fields of [`ServiceLine`], relative to the line.
pub fn line_paths() -> Vec<String> {
    [
        "procedure.qualifier",
        "procedure.code",
        "procedure.modifiers",
        "revenue_code",
        "charge",
        "units",
        "unit_basis",
        "place_of_service",
        "service_date",
        "service_date_end",
        "diagnosis_pointers",
        "line_control_number",
        "drug.ndc",
        "drug.quantity",
        "drug.unit",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Whether `path` names a field of the claim (a leaf or an object holding some).
pub fn is_claim_path(path: &[String]) -> bool {
    let joined = path.join(".");
    claim_paths()
        .iter()
        .any(|p| *p == joined || p.starts_with(&format!("{joined}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates in the model's shape are read by hand; every date, and every
    /// refusal, must read as chrono's own deserialiser reads it.
    #[test]
    fn dates_read_as_chrono_reads_them() {
        for text in [
            "2026-11-03",
            "2024-02-29",
            "0000-01-01",
            "9999-12-31",
            "2026-02-30",
            "2026-13-01",
            "2026-1-03",
            "20261103",
            " 2026-11-03",
            "2026-11-03T00:00",
            "+2026-11-03",
            "",
        ] {
            let json = serde_json::json!(text);
            let ours = date::optional(&json).map_err(|e| e.to_string());
            let chrono = Option::<NaiveDate>::deserialize(&json).map_err(|e| e.to_string());
            assert_eq!(ours, chrono, "{text:?}");
        }
        assert_eq!(
            date::iso("2026-11-03"),
            NaiveDate::from_ymd_opt(2026, 11, 3)
        );
        for other in [
            serde_json::json!(null),
            serde_json::json!(20261103),
            serde_json::json!(["2026-11-03"]),
        ] {
            let ours = date::optional(&other).map_err(|e| e.to_string());
            let chrono = Option::<NaiveDate>::deserialize(&other).map_err(|e| e.to_string());
            assert_eq!(ours, chrono, "{other}");
        }
    }
}

//! Varied, valid claims from a seed: the property tests' raw material. Every
//! claim it makes passes the scrubber; variety covers both claim kinds,
//! patients and subscribers, COB loops, NDC drugs, modifiers, date ranges,
//! many lines and many diagnoses, accidents and related causes, onset and
//! admission/discharge hours, CLIA, referral, DRG and visit reasons.

use chrono::NaiveDate;
use edi_courier::model::*;
use rust_decimal::Decimal;

/// splitmix64: small, seedable, good enough to vary test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const LAST: &[&str] = &[
    "SMITH",
    "O BRIEN",
    "NGUYEN",
    "GARCIA-LOPEZ",
    "VAN DER BERG",
    "KIM",
    "PATEL",
    "MUELLER",
];
const FIRST: &[&str] = &[
    "ANNA", "JOSE", "LI", "MARY ANN", "OMAR", "ZOE", "JEAN-LUC", "PRIYA",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("SPRINGFIELD", "IL", "62704"),
    ("AUSTIN", "TX", "787011234"),
    ("PORTLAND", "OR", "97201"),
    ("MIAMI", "FL", "331110001"),
];
const ICD10: &[&str] = &[
    "J45909", "E119", "I10", "M5450", "Z0000", "R079", "J189", "S72001A", "F329", "K219", "N390",
    "E785", "G4733", "M170",
];
const CPT: &[&str] = &[
    "99213", "99214", "99395", "93000", "97110", "36415", "J3420", "G0439", "80053", "0001F",
];
const MODIFIERS: &[&str] = &["25", "59", "GT", "95", "LT", "RT", "GP", "XS"];
const POS: &[&str] = &["11", "02", "10", "12", "20", "22"];
const REVENUE: &[&str] = &["0450", "0300", "0250", "0730", "0120", "0320"];
const NPIS: &[&str] = &[
    "1234567893",
    "1987654328",
    "1456789019",
    "1678901236",
    "1765432103",
    "1543210987",
];

fn money(rng: &mut Rng) -> Decimal {
    Decimal::new(500 + rng.below(250_000) as i64, 2)
}

/// A date in one of `span` years from `first`.
fn date(rng: &mut Rng, first: i32, span: u64) -> NaiveDate {
    let year = first + rng.below(span) as i32;
    NaiveDate::from_ymd_opt(year, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32).unwrap()
}

fn address(rng: &mut Rng, zip9: bool) -> Address {
    let (city, state, zip) = *rng.pick(CITIES);
    let zip = if zip9 && zip.len() == 5 {
        format!("{zip}0042")
    } else {
        zip.to_owned()
    };
    Address {
        line1: format!("{} MAIN ST", 1 + rng.below(9999)),
        line2: rng
            .chance(20)
            .then(|| format!("SUITE {}", 1 + rng.below(400))),
        city: city.into(),
        state: state.into(),
        zip,
    }
}

/// HHMM.
fn hour(rng: &mut Rng) -> String {
    format!("{:02}{:02}", rng.below(24), rng.below(60))
}

fn gender(rng: &mut Rng) -> Gender {
    *rng.pick(&[Gender::Male, Gender::Female, Gender::Unknown])
}

/// One valid claim; `n` makes its ids unique within a batch.
pub fn claim(rng: &mut Rng, kind: ClaimKind, n: usize) -> Claim {
    let professional = kind == ClaimKind::Professional;
    let n_dx = 1 + rng.below(if professional { 12 } else { 14 }) as usize;
    let mut diagnoses: Vec<String> = (0..n_dx).map(|_| rng.pick(ICD10).to_string()).collect();
    diagnoses.dedup();
    let from = date(rng, 2025, 2).min(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
    let to = from + chrono::Days::new(rng.below(5));
    let max_lines = if rng.chance(10) { 40 } else { 6 };
    let n_lines = 1 + rng.below(max_lines) as usize;
    let lines: Vec<ServiceLine> = (0..n_lines)
        .map(|i| {
            let with_proc = professional || rng.chance(70);
            let procedure = with_proc.then(|| Procedure {
                qualifier: "HC".into(),
                code: rng.pick(CPT).to_string(),
                modifiers: (0..rng.below(5))
                    .map(|_| rng.pick(MODIFIERS).to_string())
                    .collect(),
            });
            let day = from + chrono::Days::new(rng.below(1 + (to - from).num_days() as u64));
            ServiceLine {
                procedure,
                revenue_code: (!professional).then(|| rng.pick(REVENUE).to_string()),
                charge: money(rng),
                units: Decimal::from(1 + rng.below(4)),
                unit_basis: if professional && rng.chance(10) {
                    "MJ".into()
                } else {
                    "UN".into()
                },
                place_of_service: (professional && rng.chance(10))
                    .then(|| rng.pick(POS).to_string()),
                service_date: Some(day),
                service_date_end: None,
                diagnosis_pointers: if professional {
                    let k = 1 + rng.below(diagnoses.len().min(4) as u64) as u8;
                    (1..=k).collect()
                } else {
                    Vec::new()
                },
                line_control_number: rng.chance(90).then(|| format!("C{n}L{}", i + 1)),
                drug: rng.chance(10).then(|| Drug {
                    ndc: format!("{:011}", rng.below(99_999_999_999)),
                    quantity: Decimal::new(1 + rng.below(500) as i64, 1),
                    unit: rng.pick(&["UN", "ML", "GR", "F2", "ME"]).to_string(),
                }),
            }
        })
        .collect();
    let total = lines.iter().map(|l| l.charge).sum();
    let with_patient = rng.chance(40);
    let birth = date(rng, 1930, 80);
    let subscriber = Subscriber {
        member_id: format!("M{:010}", rng.below(10_000_000_000)),
        last_name: rng.pick(LAST).to_string(),
        first_name: Some(rng.pick(FIRST).to_string()),
        middle_name: rng.chance(20).then(|| "Q".to_owned()),
        birth_date: Some(birth),
        gender: Some(gender(rng)),
        address: Some(address(rng, false)),
        group_number: rng.chance(70).then(|| format!("G{}", rng.below(99999))),
        group_name: rng.chance(20).then(|| "ACME EMPLOYEES".to_owned()),
        responsibility: Responsibility::Primary,
        claim_filing: rng.pick(&["CI", "MB", "MC", "BL", "HM"]).to_string(),
    };
    let patient = with_patient.then(|| Patient {
        relationship: rng.pick(&["01", "19", "G8"]).to_string(),
        last_name: rng.pick(LAST).to_string(),
        first_name: Some(rng.pick(FIRST).to_string()),
        birth_date: Some(date(rng, 1960, 60).min(from)),
        gender: Some(gender(rng)),
        address: Some(address(rng, false)),
    });
    let cob = rng.chance(15);
    let mut subscriber = subscriber;
    let other_payers = if cob {
        subscriber.responsibility = Responsibility::Secondary;
        vec![OtherPayer {
            responsibility: Responsibility::Primary,
            relationship: "18".into(),
            group_number: Some("PRIMARY01".into()),
            claim_filing: "MB".into(),
            subscriber_last_name: subscriber.last_name.clone(),
            subscriber_first_name: subscriber.first_name.clone(),
            subscriber_member_id: format!("1EG4TE5MK{:02}", rng.below(99)),
            payer_name: "MEDICARE PART B".into(),
            payer_id: "MCRB01".into(),
            paid_amount: Some(Decimal::new(1000 + rng.below(10000) as i64, 2)),
            adjustments: vec![
                Adjustment {
                    group: "CO".into(),
                    reason: "45".into(),
                    amount: Decimal::new(1234, 2),
                    quantity: None,
                },
                Adjustment {
                    group: "PR".into(),
                    reason: "2".into(),
                    amount: Decimal::new(500, 2),
                    quantity: None,
                },
            ],
            adjudication_date: Some(to),
        }]
    } else {
        Vec::new()
    };
    let frequency = if rng.chance(10) { "7" } else { "1" };
    // 837P CLM11: one or two related causes; an auto accident names its state.
    let causes: Vec<String> = if professional && rng.chance(15) {
        let first = *rng.pick(&["AA", "EM", "OA"]);
        let second = rng
            .chance(30)
            .then(|| *rng.pick(&["AA", "EM", "OA"]))
            .filter(|c| *c != first);
        std::iter::once(first)
            .chain(second)
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    let auto = causes.iter().any(|c| c == "AA");
    let accident = auto || causes.iter().any(|c| c == "OA");
    let billing_npi = rng.pick(&NPIS[..2]).to_string();
    Claim {
        kind,
        id: format!("CLM{n:07}"),
        total_charge: total,
        place_of_service: professional.then(|| rng.pick(POS).to_string()),
        type_of_bill: (!professional)
            .then(|| rng.pick(&["11", "13", "14", "21", "83"]).to_string()),
        frequency_code: frequency.into(),
        provider_signature: true,
        assignment: "A".into(),
        benefits_assigned: !rng.chance(5),
        release_of_information: if rng.chance(10) {
            "I".into()
        } else {
            "Y".into()
        },
        // 837P has no statement period segment: only institutional claims carry one.
        statement_from: (!professional).then_some(from),
        statement_to: (!professional).then_some(to),
        admission: (!professional && rng.chance(40)).then(|| Admission {
            date: Some(from),
            kind: Some("1".into()),
            source: Some("7".into()),
            hour: rng.chance(50).then(|| hour(rng)),
        }),
        discharge_hour: (!professional && rng.chance(30)).then(|| hour(rng)),
        patient_status: (!professional).then(|| "01".into()),
        diagnoses,
        icd_version: IcdVersion::Icd10,
        admitting_diagnosis: (!professional && rng.chance(30)).then(|| rng.pick(ICD10).to_string()),
        visit_reasons: if !professional && rng.chance(25) {
            (0..1 + rng.below(3))
                .map(|_| rng.pick(ICD10).to_string())
                .collect()
        } else {
            Vec::new()
        },
        drg: (!professional && rng.chance(25)).then(|| format!("{:03}", 1 + rng.below(998))),
        related_causes: causes,
        accident_date: accident.then(|| from - chrono::Days::new(rng.below(30))),
        accident_state: auto.then(|| rng.pick(CITIES).1.to_owned()),
        onset_date: (professional && rng.chance(30))
            .then(|| from - chrono::Days::new(rng.below(60))),
        initial_treatment_date: (professional && rng.chance(15))
            .then(|| from - chrono::Days::new(rng.below(60))),
        clia_number: (professional && rng.chance(10))
            .then(|| format!("{:02}D{:07}", rng.below(100), rng.below(10_000_000))),
        referral_number: rng
            .chance(15)
            .then(|| format!("RF{}", rng.below(1_000_000))),
        prior_authorization: rng
            .chance(15)
            .then(|| format!("PA{}", rng.below(1_000_000))),
        payer_claim_number: (frequency == "7").then(|| format!("PCN{}", rng.below(1_000_000_000))),
        medical_record_number: rng
            .chance(30)
            .then(|| format!("MRN{}", rng.below(1_000_000))),
        note: rng
            .chance(10)
            .then(|| "PATIENT SEEN AFTER HOURS".to_owned()),
        billing_provider: BillingProvider {
            entity: EntityType::Organization,
            name: if billing_npi == NPIS[0] {
                "RIVERSIDE CLINIC".into()
            } else {
                "LAKESIDE MEDICAL GROUP".into()
            },
            first_name: None,
            npi: billing_npi,
            tax_id: "123456789".into(),
            ssn_as_tax_id: None,
            taxonomy: Some(
                if professional {
                    "207Q00000X"
                } else {
                    "282N00000X"
                }
                .into(),
            ),
            address: Address {
                line1: "100 RIVER RD".into(),
                line2: None,
                city: "SPRINGFIELD".into(),
                state: "IL".into(),
                zip: "627011234".into(),
            },
            pay_to_address: None,
        }
        .into(),
        referring_provider: rng.chance(20).then(|| Provider {
            entity: EntityType::Person,
            name: "REFERRER".into(),
            first_name: Some("RITA".into()),
            npi: Some(rng.pick(NPIS).to_string()),
            taxonomy: None,
        }),
        rendering_provider: (professional && rng.chance(70)).then(|| Provider {
            entity: EntityType::Person,
            name: "WELBY".into(),
            first_name: Some("MARCUS".into()),
            npi: Some(rng.pick(NPIS).to_string()),
            taxonomy: rng.chance(50).then(|| "207R00000X".into()),
        }),
        attending_provider: (!professional).then(|| Provider {
            entity: EntityType::Person,
            name: "HOUSE".into(),
            first_name: Some("GREGORY".into()),
            npi: Some(rng.pick(NPIS).to_string()),
            taxonomy: Some("207R00000X".into()),
        }),
        service_facility: rng.chance(15).then(|| Facility {
            name: "NORTH CAMPUS".into(),
            npi: Some(rng.pick(NPIS).to_string()),
            address: address(rng, true),
        }),
        subscriber,
        patient,
        payer: Payer {
            name: "ACME HEALTH PLAN".into(),
            id: "ACME01".into(),
            address: rng.chance(20).then(|| address(rng, false)),
        },
        other_payers,
        lines,
    }
}

/// A batch of `n` claims; `mix` gives both kinds, else `kind` only.
pub fn batch(seed: u64, n: usize, kind: ClaimKind, mix: bool) -> Vec<Claim> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let k = if mix && rng.chance(50) {
                match kind {
                    ClaimKind::Professional => ClaimKind::Institutional,
                    ClaimKind::Institutional => ClaimKind::Professional,
                }
            } else {
                kind
            };
            claim(&mut rng, k, i + 1)
        })
        .collect()
}

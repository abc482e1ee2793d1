//! The claim fields real exports carry beyond the basics (related causes and
//! accidents, onset and treatment dates, CLIA, referral, DRG, visit reasons,
//! admission and discharge hours): every combination is written where the
//! guides put it, read back into the same claim, and accepted by pyx12.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use chrono::NaiveDate;
use common::*;
use edi_courier::model::{Admission, Claim, ClaimFile, ClaimKind, IcdVersion};

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, d).unwrap()
}

/// The example file's first claim of `kind`, without the optional fields.
fn base(kind: ClaimKind) -> Claim {
    let file: ClaimFile = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/claims.json")).unwrap(),
    )
    .unwrap();
    let mut c = file.claims.into_iter().find(|c| c.kind == kind).unwrap();
    c.related_causes.clear();
    c.accident_date = None;
    c.accident_state = None;
    c.onset_date = None;
    c.initial_treatment_date = None;
    c.clia_number = None;
    c.referral_number = None;
    c.drg = None;
    c.visit_reasons.clear();
    c.discharge_hour = None;
    c.admission = None;
    c
}

/// Every combination of the 837P fields: related causes (none, one, two),
/// accident date, accident state, onset, initial treatment, CLIA, referral.
fn professional_combinations() -> Vec<Claim> {
    let mut claims = Vec::new();
    for bits in 0u32..(3 << 6) {
        let mut c = base(ClaimKind::Professional);
        let on = |i: u32| bits & (1 << i) != 0;
        c.id = format!("P{bits:03}");
        c.related_causes = match bits >> 6 {
            0 => vec![],
            1 => vec!["EM".into()],
            _ => vec!["AA".into(), "OA".into()],
        };
        c.accident_date = on(0).then(|| day(1));
        c.accident_state = on(1).then(|| "IL".into());
        c.onset_date = on(2).then(|| day(2));
        c.initial_treatment_date = on(3).then(|| day(3));
        c.clia_number = on(4).then(|| "14D0123456".into());
        c.referral_number = on(5).then(|| "REF9".into());
        if c.related_causes.is_empty() && c.accident_state.is_some() {
            // CLM11-4 needs CLM11-1: a state alone has nowhere to go.
            continue;
        }
        claims.push(c);
    }
    claims
}

/// Every combination of the 837I fields: admission (none, a date, a date and
/// hour), discharge hour, DRG, visit reasons (none to three), referral.
fn institutional_combinations() -> Vec<Claim> {
    let mut claims = Vec::new();
    for admission in 0..3 {
        for reasons in 0..4 {
            for bits in 0u32..8 {
                let mut c = base(ClaimKind::Institutional);
                let on = |i: u32| bits & (1 << i) != 0;
                c.id = format!("I{admission}{reasons}{bits}");
                c.admission = (admission > 0).then(|| Admission {
                    date: Some(day(4)),
                    kind: Some("1".into()),
                    source: Some("7".into()),
                    hour: (admission == 2).then(|| "0930".into()),
                });
                c.visit_reasons = ["R079", "I10", "E119"][..reasons]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                c.discharge_hour = on(0).then(|| "1745".into());
                c.drg = on(1).then(|| "194".into());
                c.referral_number = on(2).then(|| "REF9".into());
                claims.push(c);
            }
        }
    }
    claims
}

fn segments(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split('~')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[test]
fn every_combination_reads_back_equal_and_pyx12_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let p = professional_combinations();
    let i = institutional_combinations();
    assert_eq!((p.len(), i.len()), (160, 96));
    // pyx12 pays per file: 32 claims a file, each claim still its own 2000B.
    for (n, chunk) in p.chunks(32).chain(i.chunks(32)).enumerate() {
        let bytes = write_837(chunk, None);
        let (summary, back) = read_claims(&bytes);
        assert!(summary.is_valid(), "{:?}", summary.problems);
        assert_eq!(back.len(), chunk.len());
        for (a, b) in chunk.iter().zip(&back) {
            assert_eq!(a, b, "{} reads back as written", a.id);
        }
        let path = dir.path().join(format!("combinations-{n}.837"));
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    }
    assert_pyx12_valid(&files);
}

#[test]
fn the_fields_land_in_the_guides_segments_and_order() {
    let mut p = base(ClaimKind::Professional);
    p.related_causes = vec!["AA".into(), "EM".into()];
    p.accident_state = Some("IL".into());
    p.accident_date = Some(day(1));
    p.onset_date = Some(day(2));
    p.initial_treatment_date = Some(day(3));
    p.clia_number = Some("14D0123456".into());
    p.referral_number = Some("REF9".into());
    p.prior_authorization = Some("PA1".into());
    p.medical_record_number = Some("MRN1".into());
    let segs = segments(&write_837(&[p], None));
    let from = segs.iter().position(|s| s.starts_with("CLM*")).unwrap();
    let to = segs.iter().position(|s| s.starts_with("HI*")).unwrap();
    assert_eq!(
        segs[from..to],
        [
            "CLM*RFM-1001*185***11:B:1*Y*A*Y*Y**AA:EM::IL",
            "DTP*431*D8*20261002",
            "DTP*454*D8*20261003",
            "DTP*439*D8*20261001",
            "REF*9F*REF9",
            "REF*G1*PA1",
            "REF*X4*14D0123456",
            "REF*EA*MRN1",
        ]
    );

    let mut i = base(ClaimKind::Institutional);
    i.discharge_hour = Some("1745".into());
    i.admission = Some(Admission {
        date: Some(day(4)),
        kind: Some("1".into()),
        source: Some("7".into()),
        hour: Some("0930".into()),
    });
    i.referral_number = Some("REF9".into());
    i.admitting_diagnosis = Some("R079".into());
    i.visit_reasons = vec!["R079".into(), "I10".into()];
    i.drg = Some("194".into());
    let segs = segments(&write_837(&[i.clone()], None));
    let from = segs.iter().position(|s| s.starts_with("CLM*")).unwrap();
    let to = segs.iter().position(|s| s.starts_with("NM1*71")).unwrap();
    assert_eq!(
        segs[from + 1..to],
        [
            "DTP*096*TM*1745",
            "DTP*434*RD8*20261102-20261104",
            "DTP*435*DT*202610040930",
            "CL1*1*7*01",
            "REF*9F*REF9",
            "HI*ABK:J189",
            "HI*ABJ:R079",
            "HI*APR:R079*APR:I10",
            "HI*DR:194",
            "HI*ABF:E119",
        ]
    );

    // ICD-9 claims (read from old files) say PR, and read back as ICD-9.
    i.icd_version = IcdVersion::Icd9;
    i.diagnoses = vec!["4019".into()];
    i.admitting_diagnosis = None;
    i.visit_reasons = vec!["7865".into()];
    let bytes = write_837(&[i.clone()], None);
    assert!(segments(&bytes).contains(&"HI*PR:7865".to_owned()));
    assert_eq!(read_claims(&bytes).1, [i]);
}

#[test]
fn a_field_is_written_only_on_the_claim_kind_that_has_it() {
    let p = base(ClaimKind::Professional);
    let mut p_with_837i_fields = p.clone();
    p_with_837i_fields.drg = Some("194".into());
    p_with_837i_fields.visit_reasons = vec!["R079".into()];
    p_with_837i_fields.discharge_hour = Some("1745".into());
    assert_eq!(
        write_837(&[p_with_837i_fields], None),
        write_837(&[p], None)
    );

    let i = base(ClaimKind::Institutional);
    let mut i_with_837p_fields = i.clone();
    i_with_837p_fields.related_causes = vec!["AA".into()];
    i_with_837p_fields.accident_state = Some("IL".into());
    i_with_837p_fields.accident_date = Some(day(1));
    i_with_837p_fields.onset_date = Some(day(2));
    i_with_837p_fields.initial_treatment_date = Some(day(3));
    i_with_837p_fields.clia_number = Some("14D0123456".into());
    assert_eq!(
        write_837(&[i_with_837p_fields], None),
        write_837(&[i], None)
    );
}

#[test]
fn old_claim_json_without_the_new_fields_still_reads() {
    let mut doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/claims.json")).unwrap(),
    )
    .unwrap();
    for c in doc["claims"].as_array_mut().unwrap() {
        let c = c.as_object_mut().unwrap();
        for key in [
            "related_causes",
            "accident_date",
            "accident_state",
            "onset_date",
            "initial_treatment_date",
            "clia_number",
            "referral_number",
            "drg",
            "visit_reasons",
            "discharge_hour",
        ] {
            c.remove(key);
        }
        if let Some(a) = c.get_mut("admission").and_then(|a| a.as_object_mut()) {
            a.remove("hour");
        }
    }
    let file: ClaimFile = serde_json::from_value(doc).unwrap();
    assert!(file.claims.iter().all(|c| c.drg.is_none()
        && c.related_causes.is_empty()
        && c.admission.as_ref().is_none_or(|a| a.hour.is_none())));
}

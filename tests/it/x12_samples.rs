//! The public X12 samples in tests/fixtures/x12 (see SOURCES.md there):
//! read without a panic, counted as pyx12 counts them, broken envelopes
//! reported with their location, and valid 837s written back valid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use edi_courier::inspect::{read_items, Item};
use edi_courier::model::response::Response;
use edi_courier::model::Claim;

#[test]
fn every_sample_reads_and_counts_agree_with_pyx12() {
    let rows = manifest();
    assert_eq!(
        rows.len(),
        45,
        "all permissively licensed samples are fixtures"
    );
    let files: Vec<_> = rows
        .iter()
        .map(|(f, _, _)| fixture(&format!("x12/{f}")))
        .collect();
    let verdicts = pyx12(&files);
    let mut compared = 0;
    for ((file, _, _), theirs) in rows.iter().zip(&verdicts) {
        let bytes = std::fs::read(fixture(&format!("x12/{file}"))).unwrap();
        let mut claims = 0u64;
        let mut responses = Vec::new();
        let ours = read_items(bytes.as_slice(), |item| match item {
            Item::Claim(_) => claims += 1,
            Item::Response(r) => responses.push(*r),
            Item::Payment(_) => panic!("read_items never streams 835 claims"),
        })
        .unwrap();
        assert!(ours.fatal.is_none(), "{file}: {:?}", ours.fatal);
        // Typed views: one per response set, one per TA1; every CLP in a remittance.
        let typed_sets = responses
            .iter()
            .filter(|r| !matches!(r, Response::Ta1(_)))
            .count() as u64;
        let typed_ta1 = responses.len() as u64 - typed_sets;
        assert_eq!(typed_ta1, ours.ta1, "{file}: TA1s");
        let response_sets: u64 = ["999", "277", "835"]
            .iter()
            .map(|t| ours.sets.get(*t).copied().unwrap_or(0))
            .sum();
        assert_eq!(typed_sets, response_sets, "{file}: typed response sets");
        let remitted: usize = responses
            .iter()
            .map(|r| match r {
                Response::Remittance(r) => r.claims.len(),
                _ => 0,
            })
            .sum();
        // A claim the guides' rules show damaged (pyx12 fails its file
        // too) is named, never listed: listed and named, every CLM is one.
        let damaged = damaged_claims(&ours).len() as u64;
        if theirs.status == "PASS" {
            assert_eq!(damaged, 0, "{file}: pyx12 passes it: {:#?}", ours.problems);
        }
        if let Some(c) = &theirs.counts {
            assert_eq!(
                remitted as u64, c.clp,
                "{file}: 835 claims typed, as pyx12 counts CLP"
            );
            assert_eq!(
                claims + damaged,
                c.clm,
                "{file}: 837 claims typed or named damaged, as pyx12 counts CLM"
            );
            assert_eq!(ours.segments, c.segments, "{file}: segments");
            assert_eq!(ours.interchanges, c.isa, "{file}: interchanges");
            assert_eq!(ours.groups, c.gs, "{file}: groups");
            assert_eq!(ours.sets.values().sum::<u64>(), c.st, "{file}: sets");
            assert_eq!(ours.claims + damaged, c.clm + c.clp, "{file}: claims");
            compared += 1;
        }
    }
    // pyx12's reader cannot read the ISA that is not fixed width; we can.
    assert_eq!(compared, 44);
}

#[test]
fn broken_envelopes_get_located_errors() {
    let cases = [
        (
            "837p/imsweb-multiple-st.edi",
            "at segment 71 (byte 2201): GE01 says 1, but 2 were counted",
        ),
        (
            "837p/imsweb-multiple-st.edi",
            "control number ST02 \"987654\" is used twice",
        ),
        ("837p/imsweb-multiple-gs.edi", "control number GS06"),
        (
            "ta1/staedi-ta1-5010.edi",
            "IEA01 says 1, but 0 were counted",
        ),
    ];
    for (file, expected) in cases {
        let (summary, _) = read_claims(&std::fs::read(fixture(&format!("x12/{file}"))).unwrap());
        assert!(
            summary
                .problems
                .iter()
                .any(|p| p.to_string().contains(expected)),
            "{file}: expected {expected:?} in {:#?}",
            summary.problems
        );
    }
}

#[test]
fn odd_delimiters_read_like_standard_ones() {
    // Same content, '~' as element separator and '_' + LF as terminator.
    let std_bytes = std::fs::read(fixture("x12/837p/imsweb-valid.edi")).unwrap();
    let odd_bytes = std::fs::read(fixture("x12/837p/imsweb-different-separators.edi")).unwrap();
    let (sa, a) = read_claims(&std_bytes);
    let (sb, b) = read_claims(&odd_bytes);
    assert_eq!(a, b);
    // Both claims have HI elements without a code (pyx12 fails the file
    // for it): named as damaged in both, with no other problem.
    assert_eq!(damaged_claims(&sa), ["A37YH556", "A37YH667"]);
    assert_eq!(damaged_claims(&sa), damaged_claims(&sb));
    assert_eq!(sa.problems.len(), sb.problems.len());
}

/// The ids of the claims a read named damaged (not listed).
fn damaged_claims(summary: &edi_courier::inspect::FileSummary) -> Vec<String> {
    summary
        .problems
        .iter()
        .filter_map(|p| match p {
            edi_courier::inspect::Problem::DamagedClaim { claim, .. } => Some(claim.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_ta1_with_bom_cr_terminator_and_no_final_terminator_reads() {
    // Not a fixture (CDDL-licensed original); the same shape, written here.
    let text = "\u{feff}  ISA>00>          >00>          >ZZ>SENDER         >ZZ>RECEIVER       >100101>1200>^>00501>000000001>0>P>+\r\n  TA1>000000001>100101>1200>A>000\r\n  IEA>0>000000001";
    let (summary, _) = read_claims(text.as_bytes());
    assert_eq!((summary.segments, summary.ta1, summary.fatal), (3, 1, None));
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
}

fn claim_facts(c: &Claim) -> (String, String, usize, Vec<String>) {
    (
        c.id.clone(),
        c.total_charge.normalize().to_string(),
        c.lines.len(),
        c.lines
            .iter()
            .map(|l| l.charge.normalize().to_string())
            .collect(),
    )
}

#[test]
fn valid_837_samples_write_back_valid_with_the_same_claims() {
    let dir = tempfile::tempdir().unwrap();
    let mut written = Vec::new();
    let mut expected = Vec::new();
    for (file, kind, verdict) in manifest() {
        if verdict != "OK" || !kind.starts_with("837") {
            continue;
        }
        let (_, claims) = read_claims(&std::fs::read(fixture(&format!("x12/{file}"))).unwrap());
        assert!(!claims.is_empty(), "{file}");
        let out = dir.path().join(file.replace('/', "-"));
        std::fs::write(&out, write_837(&claims, None)).unwrap();
        written.push(out);
        expected.push(claims);
    }
    assert_eq!(
        written.len(),
        13,
        "11 837P and 2 837I samples are pyx12-valid"
    );
    assert_pyx12_valid(&written);
    for (path, original) in written.iter().zip(&expected) {
        let (summary, back) = read_claims(&std::fs::read(path).unwrap());
        assert!(
            summary.is_valid(),
            "{}: {:?}",
            path.display(),
            summary.problems
        );
        let a: Vec<_> = original.iter().map(claim_facts).collect();
        let b: Vec<_> = back.iter().map(claim_facts).collect();
        assert_eq!(a, b, "{}", path.display());
    }
}

fn responses_of(rel: &str) -> Vec<Response> {
    let bytes = std::fs::read(fixture(&format!("x12/{rel}"))).unwrap();
    let mut out = Vec::new();
    read_items(bytes.as_slice(), |item| {
        if let Item::Response(r) = item {
            out.push(*r)
        }
    })
    .unwrap();
    out
}

#[test]
fn a_rejecting_999_pins_its_error_to_a_set_and_segment() {
    let r = responses_of("999/emedny-999-rejected.edi");
    let [Response::Ack999(ack)] = r.as_slice() else {
        panic!("{r:?}")
    };
    assert_eq!(
        (ack.functional_id.as_str(), ack.group.as_str()),
        ("HC", "28")
    );
    assert_eq!((ack.status.as_str(), ack.sets_accepted), ("R", 0));
    let set = &ack.sets[0];
    assert_eq!(
        (set.set.as_str(), set.status.as_str(), set.codes.as_slice()),
        ("0028", "R", &["5".to_owned()][..])
    );
    assert_eq!(
        (
            set.errors[0].segment.as_str(),
            set.errors[0].position,
            set.errors[0].code.as_str()
        ),
        ("NM", 17, "1")
    );
}

#[test]
fn a_rejecting_277ca_names_the_claim_its_payer_number_and_the_reason() {
    let r = responses_of("277ca/emedny-277ca-rejected.edi");
    let [Response::Status277(s)] = r.as_slice() else {
        panic!("{r:?}")
    };
    assert_eq!(
        s.receivers[0].statuses[0].category, "A1",
        "the batch was received (2200B)"
    );
    assert_eq!(s.receivers[0].claims, 1);
    let claim = &s.claims[0];
    assert_eq!(claim.claim_id, "3920394930203");
    assert_eq!(
        claim.payer_claim_number.as_deref(),
        Some("1107000000001120")
    );
    let stc = &claim.statuses[0];
    assert_eq!(
        (
            stc.category.as_str(),
            stc.code.as_str(),
            stc.entity.as_deref()
        ),
        ("A7", "562", Some("85"))
    );
    assert!(stc.is_rejection());
    assert_eq!(stc.amount, Some("199.14".parse().unwrap()));
}

#[test]
fn every_sample_835_balances_and_reversals_are_seen() {
    let mut reversals = 0;
    for (file, kind, _) in manifest() {
        if kind != "835" {
            continue;
        }
        for r in responses_of(&file) {
            let Response::Remittance(r) = r else { continue };
            assert!(
                r.is_balanced(),
                "{file}: BPR02 {} vs {:?}",
                r.amount,
                r.expected_payment()
            );
            reversals += r.claims.iter().filter(|c| c.is_reversal()).count();
        }
    }
    assert_eq!(reversals, 2, "the two retro samples each reverse one claim");
}

//! A batch that mixes 837P and 837I claims, in any order, is written as one
//! functional group per kind — within the control numbers the ledger reserves
//! for a file (a group per kind) — with every claim present and reported once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::gen::{claim, Rng};
use common::*;
use edi_courier::ledger::Ledger;
use edi_courier::model::{Claim, ClaimFile, ClaimKind};
use edi_courier::profile::Profile;
use edi_courier::translate::{Pipeline, TranslateError};
use edi_courier::x12::Sequential;
use std::path::{Path, PathBuf};

/// `n` claims alternating P, I, P, I… with ids unique from `first`.
fn alternating(seed: u64, first: usize, n: usize) -> Vec<Claim> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let kind = if i % 2 == 0 {
                ClaimKind::Professional
            } else {
                ClaimKind::Institutional
            };
            claim(&mut rng, kind, first + i)
        })
        .collect()
}

fn write_json(path: &Path, claims: &[Claim]) {
    let file = ClaimFile {
        submitter: None,
        receiver: None,
        claims: claims.to_vec(),
    };
    std::fs::write(path, serde_json::to_vec(&file).unwrap()).unwrap();
}

fn ids(claims: &[Claim]) -> Vec<&str> {
    claims.iter().map(|c| c.id.as_str()).collect()
}

/// The claims of `kind`, then those of the other: the order one group per
/// kind writes them in.
fn by_kind(claims: &[Claim]) -> Vec<&str> {
    let (p, i): (Vec<&Claim>, Vec<&Claim>) = claims
        .iter()
        .partition(|c| c.kind == ClaimKind::Professional);
    p.iter().chain(&i).map(|c| c.id.as_str()).collect()
}

fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

fn pipeline(profile: &Profile) -> Pipeline<'_> {
    Pipeline {
        map: None,
        profile,
        today: today(),
        file_parties: false,
        quarantine: None,
        already_sent: None,
    }
}

/// Regression: 138 alternating claims made 71 groups (a GS/ST at every
/// change of kind).
#[test]
fn an_alternating_batch_is_two_groups_with_every_claim() {
    let dir = tempfile::tempdir().unwrap();
    let claims = alternating(7, 1, 138);
    let input = dir.path().join("mixed.json");
    write_json(&input, &claims);
    let out_path = dir.path().join("mixed.837");
    let out = edi_courier(&[
        "translate",
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&out_path).unwrap();
    let (summary, back) = read_claims(&bytes);
    assert!(summary.is_valid(), "{:?}", summary.problems);
    assert_eq!(summary.groups, 2);
    assert_eq!(summary.sets.get("837"), Some(&2));
    assert_eq!(ids(&back), by_kind(&claims));
    for c in &back {
        let sent = claims.iter().find(|s| s.id == c.id).unwrap();
        assert_eq!(c, sent, "{} arrives as sent", c.id);
    }
    assert_pyx12_valid(&[out_path]);
}

/// What `submit` does: numbers reserved in the ledger for two kinds and the
/// claim count, then the file written. Set splitting included.
#[tokio::test]
async fn a_mixed_batch_fits_the_numbers_reserved_for_two_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ledger.sqlite").display());
    let ledger = Ledger::open(&url).await.unwrap();
    let mut profile = Profile::sandbox().unwrap();
    profile.max_claims_per_set = Some(10);
    let env = profile.envelope.clone();
    let claims = alternating(11, 1, 138);
    let input = dir.path().join("mixed.json");
    write_json(&input, &claims);
    let mut reserved = ledger
        .reserve_batch(
            (&env.sender_id, &env.receiver_id),
            (&env.gs_sender, &env.gs_receiver),
            2,
            138,
            10,
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut placed = Vec::new();
    let t = pipeline(&profile)
        .translate(
            &[input],
            today().and_hms_opt(10, 0, 0).unwrap(),
            &mut reserved,
            &mut out,
            |c, p| placed.push((c.id.clone(), p.group)),
        )
        .unwrap();
    let ic = t.interchange.unwrap();
    assert_eq!(ic.groups.len(), 2);
    assert_eq!(
        ic.groups.iter().map(|g| g.sets.len()).collect::<Vec<_>>(),
        [7, 7]
    );
    assert_eq!(ic.claims(), 138);
    // Every claim's placement names its kind's group.
    for (id, group) in &placed {
        let kind = claims.iter().find(|c| &c.id == id).unwrap().kind;
        let g = ic.groups.iter().find(|g| g.control == *group).unwrap();
        assert_eq!(g.kind, kind, "{id}");
    }
    let (summary, back) = read_claims(&out);
    assert!(summary.is_valid(), "{:?}", summary.problems);
    assert_eq!(back.len(), 138);
}

#[test]
fn several_mixed_inputs_make_two_groups_and_a_bad_claim_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = alternating(21, 1, 9);
    let mut second = alternating(22, 100, 8);
    // An 837I claim the scrubber refuses, between good ones.
    second[3].billing_provider.npi = "1234567890".into();
    let bad = second[3].id.clone();
    assert_eq!(second[3].kind, ClaimKind::Institutional);
    let inputs: Vec<PathBuf> = ["a.json", "b.json"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    write_json(&inputs[0], &first);
    write_json(&inputs[1], &second);
    let profile = Profile::sandbox().unwrap();
    let mut out = Vec::new();
    let t = pipeline(&profile)
        .translate(
            &inputs,
            today().and_hms_opt(10, 0, 0).unwrap(),
            &mut Sequential::starting_at(1),
            &mut out,
            |_, _| {},
        )
        .unwrap();
    let r = &t.report;
    assert_eq!(
        (r.claims_read, r.claims_accepted, r.claims_set_aside),
        (17, 16, 1)
    );
    assert_eq!(r.set_aside().to_vec().unwrap(), std::slice::from_ref(&bad));
    let problems = r.problems().to_vec().unwrap();
    assert_eq!(
        problems
            .iter()
            .filter(|p| p.claim.as_deref() == Some(bad.as_str()))
            .count(),
        1,
        "{problems:#?}"
    );
    let (summary, back) = read_claims(&out);
    assert_eq!(summary.groups, 2);
    let sent: Vec<Claim> = first
        .iter()
        .chain(&second)
        .filter(|c| c.id != bad)
        .cloned()
        .collect();
    assert_eq!(ids(&back), by_kind(&sent));
}

#[test]
fn an_input_that_changes_before_its_second_kind_is_written_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let claims = alternating(31, 1, 6);
    let input = dir.path().join("mixed.json");
    write_json(&input, &claims);
    let profile = Profile::sandbox().unwrap();
    let mut changed = claims.clone();
    changed[1].id = "SWAPPED".into();
    let mut out = Vec::new();
    let err = pipeline(&profile)
        .translate(
            std::slice::from_ref(&input),
            today().and_hms_opt(10, 0, 0).unwrap(),
            &mut Sequential::starting_at(1),
            &mut out,
            // While the 837P group is written, the export is replaced.
            |_, _| write_json(&input, &changed),
        )
        .unwrap_err();
    assert!(
        matches!(&err, TranslateError::InputChanged { kind: ClaimKind::Institutional, file } if *file == input),
        "{err}"
    );
}

//! Property tests over generated claims: what we write, pyx12 accepts, and
//! what we write reads back as the same claims.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::gen::{batch, Rng};
use common::*;
use edi_courier::model::{Claim, ClaimKind};
use edi_courier::profile::Profile;
use edi_courier::scrub::Scrubber;
use proptest::prelude::*;

fn today() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

#[test]
fn generated_claims_are_clean_for_the_scrubber() {
    let profile = Profile::sandbox().unwrap();
    let scrubber = Scrubber::new(&profile, today());
    for mut claim in batch(7, 400, ClaimKind::Professional, true) {
        let problems = scrubber.scrub(&mut claim, "gen", None);
        assert!(problems.is_empty(), "{}: {problems:#?}", claim.id);
    }
}

/// About 30 varied batches, one of them over 5000 claims so the writer
/// splits it into two transaction sets, all through one pyx12 process.
#[test]
fn pyx12_accepts_thirty_varied_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut rng = Rng::new(2026);
    for i in 0..29u64 {
        let kind = if i % 2 == 0 {
            ClaimKind::Professional
        } else {
            ClaimKind::Institutional
        };
        let n = 1 + rng.below(40) as usize;
        // A few batches hold both kinds (two functional groups) or small sets.
        let claims = batch(1000 + i, n, kind, i % 7 == 3);
        let max_per_set = (i % 5 == 4).then_some(3);
        let path = dir.path().join(format!("batch-{i}.837"));
        std::fs::write(&path, write_837(&claims, max_per_set)).unwrap();
        files.push(path);
    }
    // The large one: small claims, so pyx12's 0.2 MB/s stays bearable.
    let mut rng = Rng::new(5001);
    let big: Vec<Claim> = (0..5001)
        .map(|i| {
            let mut c = common::gen::claim(&mut rng, ClaimKind::Professional, i + 1);
            c.lines.truncate(1);
            c.total_charge = c.lines[0].charge;
            c.other_payers.clear();
            c.subscriber.responsibility = edi_courier::model::Responsibility::Primary;
            c
        })
        .collect();
    let bytes = write_837(&big, None);
    let (summary, _) = read_claims(&bytes);
    assert_eq!(
        summary.sets.get("837"),
        Some(&2),
        "5001 claims make two sets"
    );
    let path = dir.path().join("big.837");
    std::fs::write(&path, bytes).unwrap();
    files.push(path);
    assert_pyx12_valid(&files);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Claims written and read back are the claims we wrote, field for field,
    /// and the envelope counts check out.
    #[test]
    fn written_claims_read_back_equal(seed in any::<u64>(), n in 1usize..300, mix in any::<bool>(), per_set in 1usize..60) {
        let kind = if seed % 2 == 0 { ClaimKind::Professional } else { ClaimKind::Institutional };
        let claims = batch(seed, n, kind, mix);
        let bytes = write_837(&claims, Some(per_set));
        let (summary, back) = read_claims(&bytes);
        prop_assert!(summary.is_valid(), "{:?}", summary.problems);
        prop_assert_eq!(summary.claims as usize, n);
        prop_assert_eq!(back.len(), n);
        for (a, b) in claims.iter().zip(&back) {
            prop_assert_eq!(a, b);
        }
    }
}

#[test]
fn a_large_batch_round_trips_through_our_reader() {
    let claims = batch(99, 20_000, ClaimKind::Professional, true);
    let bytes = write_837(&claims, None);
    let (summary, back) = read_claims(&bytes);
    assert!(summary.is_valid(), "{:?}", summary.problems);
    assert_eq!(back.len(), claims.len());
    let total = |cs: &[Claim]| {
        cs.iter()
            .map(|c| c.total_charge)
            .sum::<rust_decimal::Decimal>()
    };
    assert_eq!(total(&back), total(&claims));
    let lines = |cs: &[Claim]| cs.iter().map(|c| c.lines.len()).sum::<usize>();
    assert_eq!(lines(&back), lines(&claims));
    assert!(back.iter().zip(&claims).all(|(a, b)| a == b));
}

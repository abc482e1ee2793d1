//! An independent parser reads what we write: x12-types (its typed 837
//! segment definitions) must find the same claims, charges and lines. It is
//! too strict and slow for production input (measured when chosen), which is why
//! it is only a cross-check here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::gen::batch;
use common::*;
use edi_courier::model::{ClaimKind, Responsibility};
use x12_types::util::Parser;
use x12_types::v005010::{Transmission, _837};

#[test]
fn x12_types_reads_our_837s_as_we_wrote_them() {
    for seed in 0..12u64 {
        let kind = if seed % 2 == 0 {
            ClaimKind::Professional
        } else {
            ClaimKind::Institutional
        };
        let mut claims = batch(300 + seed, 25, kind, false);
        // x12-types' loop 2320 holds a single CAS; our COB claims carry two.
        for c in &mut claims {
            c.other_payers.clear();
            c.subscriber.responsibility = Responsibility::Primary;
        }
        let text = String::from_utf8(write_837(&claims, Some(10))).unwrap();
        let (rest, parsed) = Transmission::<_837>::parse(&text)
            .unwrap_or_else(|e| panic!("seed {seed}: x12-types could not parse our 837: {e:?}"));
        assert!(rest.trim().is_empty(), "seed {seed}: unparsed tail");
        let theirs: Vec<(String, String, usize)> = parsed.functional_group[0]
            .segments
            .iter()
            .flat_map(|set| &set.loop_2000)
            .flat_map(|hl| &hl.loop_2300)
            .map(|l| {
                (
                    l.clm._01.clone(),
                    l.clm._02.clone().unwrap_or_default(),
                    l.loop_2400.len(),
                )
            })
            .collect();
        let ours: Vec<(String, String, usize)> = claims
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    c.total_charge.normalize().to_string(),
                    c.lines.len(),
                )
            })
            .collect();
        assert_eq!(theirs, ours, "seed {seed}");
        assert_eq!(
            parsed.functional_group[0].segments.len(),
            3,
            "25 claims, 10 per set"
        );
    }
}

//! The 835 writer and the sandbox payer's answers: what they write pyx12
//! accepts with zero errors, balances, and reads back to the same payments.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use chrono::NaiveDate;
use common::gen::{batch, Rng};
use common::*;
use edi_courier::inspect::{read_items, Item};
use edi_courier::model::response::{
    Adjustment835, ClaimPayment, Eft, ProviderAdjustment, Remittance, Response,
};
use edi_courier::model::ClaimKind;
use edi_courier::profile::Profile;
use edi_courier::sandbox::payer::{
    adjudicate, answer, read_837, reversal_of, Answers, Received, Rules,
};
use edi_courier::x12::{Envelope, Sequential, WriteError, Writer835};
use rust_decimal::Decimal;
use std::path::PathBuf;

fn now() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 24)
        .unwrap()
        .and_hms_opt(9, 30, 0)
        .unwrap()
}

fn remittances_in(bytes: &[u8]) -> Vec<Remittance> {
    let mut out = Vec::new();
    let summary = read_items(bytes, |i| {
        if let Item::Response(r) = i {
            if let Response::Remittance(r) = *r {
                out.push(r);
            }
        }
    })
    .unwrap();
    assert!(
        summary.is_valid(),
        "{:?} {:?}",
        summary.problems,
        summary.fatal
    );
    out
}

/// Payment data from a seed: claims adjudicated under varied rules, some
/// reversed and corrected, provider-level adjustments, check or EFT.
fn payment_data(seed: u64) -> Vec<Remittance> {
    let mut rng = Rng::new(seed);
    let payments = 1 + rng.below(3) as usize;
    (0..payments)
        .map(|p| {
            let kind = if rng.chance(50) {
                ClaimKind::Professional
            } else {
                ClaimKind::Institutional
            };
            let n = 1 + rng.below(25) as usize;
            let claims = batch(seed * 10 + p as u64, n, kind, rng.chance(30));
            let rules = Rules {
                deny_percent: rng.below(40) as u8,
                allowed_percent: 40 + rng.below(61) as u8,
                coinsurance_percent: rng.below(40) as u8,
                ..Rules::default()
            };
            let mut paid: Vec<ClaimPayment> = Vec::new();
            for c in &claims {
                let payment = adjudicate(c, &rules, rules.allowed_percent);
                if payment.status == "1" && rng.chance(15) {
                    paid.push(reversal_of(&payment));
                }
                paid.push(payment);
            }
            let mut plb = Vec::new();
            if rng.chance(40) {
                plb.push(ProviderAdjustment {
                    provider: "1234567893".into(),
                    fiscal_date: NaiveDate::from_ymd_opt(2026, 12, 31),
                    reason: (*rng.pick(&["L6", "WO", "CS"])).into(),
                    reference: rng.chance(50).then(|| format!("REF{seed}")),
                    amount: Decimal::new(rng.below(5000) as i64, 2) - Decimal::new(2500, 2),
                });
            }
            let total = paid.iter().map(|c| c.paid).sum::<Decimal>()
                - plb.iter().map(|a| a.amount).sum::<Decimal>();
            let (total, extra) = if total < Decimal::ZERO {
                (
                    Decimal::ZERO,
                    Some(ProviderAdjustment {
                        provider: "1234567893".into(),
                        fiscal_date: NaiveDate::from_ymd_opt(2026, 12, 31),
                        reason: "FB".into(),
                        reference: None,
                        amount: total,
                    }),
                )
            } else {
                (total, None)
            };
            plb.extend(extra);
            let eft = rng.chance(50) && total > Decimal::ZERO;
            let mut details = edi_courier::model::response::PayerDetails {
                address: edi_courier::model::Address {
                    line1: "100 MAIN ST".into(),
                    line2: rng.chance(30).then(|| "SUITE 4".into()),
                    city: "HARTFORD".into(),
                    state: "CT".into(),
                    zip: "061031234".into(),
                },
                contact_name: "EDI HELP DESK".into(),
                contact_phone: Some("8605550199".into()),
                contact_email: rng.chance(30).then(|| "edi@example.com".into()),
                eft: None,
            };
            if eft {
                details.eft = Some(Eft {
                    format: "CCP".into(),
                    payer_routing: "011000015".into(),
                    payer_account: "12345678".into(),
                    originator: "1512345678".into(),
                    payee_routing: "021000021".into(),
                    payee_account_kind: "DA".into(),
                    payee_account: "987654321".into(),
                });
            }
            Remittance {
                handling: if total > Decimal::ZERO { "I" } else { "H" }.into(),
                amount: total,
                credit_debit: "C".into(),
                method: if eft {
                    "ACH"
                } else if total > Decimal::ZERO {
                    "CHK"
                } else {
                    "NON"
                }
                .into(),
                payment_date: NaiveDate::from_ymd_opt(2026, 11, 27),
                trace: format!("{seed}{p:04}"),
                payer_trace_id: "1512345678".into(),
                production_date: NaiveDate::from_ymd_opt(2026, 11, 24),
                payer_name: "ACME HEALTH PLAN".into(),
                payer_id: Some("ACME01".into()),
                payee_name: "SPRINGFIELD CLINIC".into(),
                payee_id: Some("1234567893".into()),
                claims: paid,
                provider_adjustments: plb,
                payer_details: Some(Box::new(details)),
                ..Remittance::default()
            }
        })
        .collect()
}

fn envelope(seed: u64) -> Envelope {
    if seed.is_multiple_of(3) {
        Profile::load(&root().join("edi-maps/partners/acme-health.toml"))
            .unwrap()
            .envelope
            .reply()
    } else {
        Profile::sandbox().unwrap().envelope.reply()
    }
}

fn write(seed: u64, remits: &[Remittance]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut numbers = Sequential::starting_at(seed as u32 + 1);
    let env = envelope(seed);
    let mut w = Writer835::begin(&env, now(), &mut numbers, &mut out).unwrap();
    for r in remits {
        w.write(&mut numbers, r, &mut out).unwrap();
    }
    w.finish(&mut out).unwrap();
    out
}

/// What the reader is expected to give back: everything but what only the
/// payer side holds (patients, its address and bank details).
fn as_read(mut r: Remittance, read: &Remittance) -> Remittance {
    r.envelope = read.envelope.clone();
    r.payer_details = None;
    for c in &mut r.claims {
        c.patient = None;
    }
    r
}

#[test]
fn random_payment_data_makes_balanced_835s_that_pyx12_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    // Many batches through our own reader, 30 of them through pyx12 too.
    for seed in 1..=300u64 {
        let remits = payment_data(seed);
        let bytes = write(seed, &remits);
        let back = remittances_in(&bytes);
        assert_eq!(back.len(), remits.len(), "seed {seed}");
        for (read, wrote) in back.iter().zip(remits) {
            assert!(read.is_balanced(), "seed {seed}: {read:?}");
            assert_eq!(read, &as_read(wrote, read), "seed {seed}");
        }
        if seed.is_multiple_of(10) {
            let f = dir.path().join(format!("remit-{seed}.835"));
            std::fs::write(&f, &bytes).unwrap();
            files.push(f);
        }
    }
    assert_eq!(files.len(), 30);
    assert_pyx12_valid(&files);
}

#[test]
fn unbalanced_payment_data_is_refused_with_the_difference_named() {
    let mut remit = payment_data(7).remove(0);
    remit.amount += Decimal::new(1, 2);
    let mut out = Vec::new();
    let mut numbers = Sequential::starting_at(1);
    let mut w = Writer835::begin(&envelope(1), now(), &mut numbers, &mut out).unwrap();
    let err = w.write(&mut numbers, &remit, &mut out).unwrap_err();
    assert!(matches!(err, WriteError::Unbalanced { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("off by 0.01"), "{msg}");
    assert!(msg.contains("BPR02"), "{msg}");

    // A claim whose lines do not add up is named with its line.
    let mut remit = payment_data(8).remove(0);
    let claim = remit
        .claims
        .iter_mut()
        .find(|c| !c.lines.is_empty() && c.status == "1")
        .unwrap();
    claim.lines[0].paid += Decimal::ONE;
    let id = claim.claim_id.clone();
    let err = w.write(&mut numbers, &remit, &mut out).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("claim {id} line 1")), "{msg}");
    assert!(msg.contains("off by 1"), "{msg}");

    // A claim adjustment that does not match: the claim is named.
    let mut c = ClaimPayment {
        claim_id: "C9".into(),
        status: "1".into(),
        charge: Decimal::new(100, 0),
        paid: Decimal::new(80, 0),
        ..ClaimPayment::default()
    };
    c.adjustments.push(Adjustment835 {
        group: "CO".into(),
        reason: "45".into(),
        amount: Decimal::new(10, 0),
        quantity: None,
    });
    let msg = edi_courier::x12::check_claim_balance(&c)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("claim C9 does not balance"), "{msg}");
    assert!(msg.contains("off by -10"), "{msg}");
}

/// What the sandbox payer answers, under `rules`, to the 837 it received.
fn sandbox_answers(received: &Received, rules: &Rules) -> Answers {
    let env = Profile::sandbox().unwrap().envelope;
    answer(
        received,
        rules,
        &env,
        now(),
        &mut Sequential::starting_at(1),
    )
    .unwrap()
}

#[test]
fn the_sandbox_payers_answers_pass_pyx12_and_cover_every_outcome() {
    let claims = batch(5, 60, ClaimKind::Professional, true);
    let sent = write_837(&claims, Some(25));
    let received = read_837(&sent).unwrap();
    assert_eq!(received.claims.len(), 60);
    let rules = Rules {
        reject_percent: 15,
        deny_percent: 15,
        reversal_percent: 20,
        second_277_percent: 30,
        ..Rules::default()
    };
    let answers = sandbox_answers(&received, &rules);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, bytes) in [
        ("ack.999", &answers.ack),
        ("status.277", &answers.status),
        ("later.277", &answers.later_status),
        ("remit.835", &answers.remit),
        ("retro.835", &answers.later_remit),
    ] {
        let bytes = bytes.as_ref().unwrap_or_else(|| panic!("{name} missing"));
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        files.push(f);
    }
    assert_pyx12_valid(&files);

    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        read_items(bytes.as_slice(), |i| {
            let Item::Response(r) = i else { return };
            match *r {
                Response::Status277(s) => {
                    for c in s.claims {
                        *statuses
                            .entry(format!("277 {}", c.statuses[0].category))
                            .or_default() += 1;
                    }
                }
                Response::Remittance(r) => {
                    assert!(r.is_balanced());
                    for c in r.claims {
                        *statuses.entry(format!("835 {}", c.status)).or_default() += 1;
                    }
                }
                Response::Ack999(a) => {
                    assert_eq!(a.status, "A");
                    *statuses.entry("999 sets".into()).or_default() += a.sets.len();
                }
                Response::Ta1(_) => {}
            }
        })
        .unwrap();
    }
    let n = |k: &str| statuses.get(k).copied().unwrap_or(0);
    assert_eq!(n("999 sets"), received.sets.len());
    assert!(received.sets.len() >= 3, "two kinds, 25 claims a set");
    assert_eq!(n("277 A1") + n("277 A7"), 60, "{statuses:?}");
    assert!(n("277 A7") > 0 && n("277 A2") > 0, "{statuses:?}");
    assert_eq!(
        n("835 1") + n("835 4"),
        n("277 A1") + n("835 22"),
        "{statuses:?}"
    );
    assert!(n("835 4") > 0 && n("835 22") > 0, "{statuses:?}");

    // The same claims get the same answers: the payer is deterministic.
    let again = sandbox_answers(&received, &rules);
    assert_eq!(again.remit, answers.remit);
}

#[test]
fn translate_payments_writes_the_good_remittances_and_refuses_the_unbalanced_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = root().join("examples/payments.json");
    let mut bad: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&good).unwrap()).unwrap();
    bad["amount"] = serde_json::json!("120.65");
    bad["trace"] = serde_json::json!("CHK-BAD");
    let bad_file = dir.path().join("bad.json");
    std::fs::write(&bad_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out_file = dir.path().join("out.835");
    let out = edi_courier(&[
        "translate",
        "--payments",
        bad_file.to_str().unwrap(),
        good.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.json: remittance 1 (trace CHK-BAD)"),
        "{err}"
    );
    assert!(err.contains("off by 1"), "{err}");
    assert!(err.contains("1 remittance(s) written"), "{err}");
    let written = std::fs::read(&out_file).unwrap();
    let back = remittances_in(&written);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].trace, "CHK20261127001");
    assert!(back[0].is_balanced());
    // Patients are written in the 835 (NM1*QC) but never read back.
    assert!(String::from_utf8_lossy(&written).contains("NM1*QC*1*DOE*JANE"));
    assert!(back[0].claims.iter().all(|c| c.patient.is_none()));
    assert_pyx12_valid(&[out_file]);
}

#[test]
fn streamed_835_claims_equal_the_claims_read_whole() {
    use edi_courier::inspect::read_items_streaming;
    use edi_courier::model::response::ClaimTotals;
    let mut files: Vec<Vec<u8>> = std::fs::read_dir(fixture("x12/835"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    files.extend((1..=20).map(|seed| write(seed, &payment_data(seed))));
    for bytes in files {
        let whole = remittances_in(&bytes);
        let mut claims = Vec::new();
        let mut streamed = Vec::new();
        let mut totals = Vec::new();
        let mut running = ClaimTotals::default();
        read_items_streaming(bytes.as_slice(), |i| match i {
            Item::Payment(c) => {
                running.add(&c);
                claims.push(*c);
            }
            Item::Response(r) => {
                if let Response::Remittance(r) = *r {
                    assert!(
                        r.claims.is_empty(),
                        "streamed remittances come without claims"
                    );
                    totals.push(std::mem::take(&mut running));
                    streamed.push(r);
                }
            }
            Item::Claim(_) => {}
        })
        .unwrap();
        assert_eq!(streamed.len(), whole.len());
        let mut claims = claims.into_iter();
        for ((s, w), t) in streamed.iter().zip(&whole).zip(&totals) {
            let these: Vec<_> = claims.by_ref().take(w.claims.len()).collect();
            assert_eq!(these, w.claims);
            assert_eq!(t.expected_payment(s), w.expected_payment());
            assert_eq!(
                &Remittance {
                    claims: w.claims.clone(),
                    ..s.clone()
                },
                w
            );
        }
    }
}

#[test]
fn a_csv_payment_export_becomes_835s_through_a_declarative_map() {
    let dir = tempfile::tempdir().unwrap();
    let good = root().join("examples/payments.csv");
    let out_file = dir.path().join("good.835");
    let out = edi_courier(&[
        "translate",
        "--payments",
        "--map",
        "payer-remit",
        good.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read(&out_file).unwrap();
    let back = remittances_in(&written);
    assert_eq!(back.len(), 2, "one 835 per check number");
    assert_eq!(back[0].trace, "CHK20261127002");
    assert_eq!(back[0].claims.len(), 2);
    assert_eq!(back[0].claims[0].lines.len(), 2);
    assert!(back[0].claims[1].is_denied() && back[0].claims[1].lines.is_empty());
    assert_eq!(back[0].claims[1].remarks, ["N115"]);
    assert_eq!(back[0].claims[0].filing, "12", "PPO translated");
    assert!(back.iter().all(Remittance::is_balanced));

    // Broken copies: a check amount that does not add up, and a bad amount
    // in one row. Each is refused with where and why; the rest is written.
    let text = std::fs::read_to_string(&good).unwrap();
    let bad = text
        .replace(
            "CHK20261204001,12/04/2026,$70.00",
            "CHK20261204001,12/04/2026,$60.00",
        )
        .replace("$150.00,$120.00,$96.00", "$150.00,$120.00,9X6");
    let bad_file = dir.path().join("bad.csv");
    std::fs::write(&bad_file, bad).unwrap();
    let out_bad = dir.path().join("bad.835");
    let out = edi_courier(&[
        "translate",
        "--payments",
        "--map",
        "payer-remit",
        bad_file.to_str().unwrap(),
        "-o",
        out_bad.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.csv: rows 1-3: row 1: paid"), "{err}");
    assert!(
        err.contains("rows 4-5 (trace CHK20261204001)") && err.contains("off by -10"),
        "{err}"
    );
    assert!(err.contains("0 remittance(s) written"), "{err}");
    assert!(!out_bad.exists(), "nothing written when nothing is good");
    assert_pyx12_valid(&[out_file]);
}

#[test]
fn the_sandbox_rejects_whole_sets_with_ik3_and_ik4_when_its_rules_say_so() {
    let claims = batch(21, 12, ClaimKind::Professional, false);
    let received = read_837(&write_837(&claims, Some(5))).unwrap();
    let rules = Rules {
        reject_set_percent: 100,
        ..Rules::default()
    };
    let answers = sandbox_answers(&received, &rules);
    assert!(
        answers.status.is_none() && answers.remit.is_none(),
        "a rejected set gets no 277CA or 835"
    );
    let ack = answers.ack.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("reject.999");
    std::fs::write(&f, &ack).unwrap();
    assert_pyx12_valid(&[f]);
    let mut sets = Vec::new();
    read_items(ack.as_slice(), |i| {
        if let Item::Response(r) = i {
            if let Response::Ack999(a) = *r {
                assert_eq!(a.status, "R");
                sets.extend(a.sets);
            }
        }
    })
    .unwrap();
    assert_eq!(sets.len(), 3, "12 claims, 5 a set");
    for s in &sets {
        assert_eq!(s.status, "R");
        assert_eq!(s.errors[0].segment, "CLM");
        assert_eq!(s.errors[0].elements[0].element, 2);
    }
}

/// Regression: a payment paid in full that is reversed was "corrected" by
/// the same full payment (the correction's rules still picked full pay).
#[test]
fn a_sandbox_correction_pays_less_than_the_payment_it_reverses() {
    let claims = batch(33, 20, ClaimKind::Professional, false);
    let received = read_837(&write_837(&claims, None)).unwrap();
    let rules = Rules {
        reject_percent: 0,
        deny_percent: 0,
        full_pay_percent: 100,
        reversal_percent: 100,
        ..Rules::default()
    };
    let answers = sandbox_answers(&received, &rules);
    let retro = remittances_in(&answers.later_remit.unwrap());
    let claims = &retro[0].claims;
    assert_eq!(claims.len(), 40, "a reversal and a correction per claim");
    for pair in claims.chunks(2) {
        let (reversal, correction) = (&pair[0], &pair[1]);
        assert!(reversal.is_reversal());
        assert_eq!(correction.claim_id, reversal.claim_id);
        assert!(correction.paid < -reversal.paid, "{correction:?}");
    }
}

/// A payment export whose header holds a column the map reads twice is
/// refused naming both positions, as a claim export is (before, the later
/// "Paid" was read and the other ignored: one check in `map` serves both).
#[test]
fn a_payment_column_the_map_reads_twice_in_the_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("examples/payments.csv")).unwrap();
    assert!(text.lines().next().unwrap().contains(",Billed,Paid,"));
    let input = dir.path().join("payments.csv");
    std::fs::write(&input, text.replacen(",Billed,Paid,", ",Paid,Paid,", 1)).unwrap();
    let out = edi_courier(&[
        "translate",
        "--payments",
        "--map",
        "payer-remit",
        input.to_str().unwrap(),
        "-o",
        dir.path().join("out.835").to_str().unwrap(),
    ]);
    let said = common::said(&out);
    // Refused as payment data the map cannot read is (exit 1, "1 refused").
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("0 remittance(s) written as 835, 1 refused"),
        "{said}"
    );
    assert!(
        said.contains("the header has the column \"Paid\" 2 times (columns 8, 9)"),
        "{said}"
    );
}

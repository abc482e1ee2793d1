//! `translate --payments` fails closed on money: an amount the 835 cannot
//! hold, a sum that would overflow, a negative payment, rows of one check
//! that disagree, an amount written loosely, a card number in a text — each
//! refuses its payment (naming file, rows or remittance, and field, never
//! the value) and the rest are written. What is written passes pyx12.
//! Found by an independent tester (repro set s12a: 01, 02, 03, 06, 07 and
//! the card case).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use std::path::{Path, PathBuf};

/// The shipped example export, as text.
fn example_csv() -> String {
    std::fs::read_to_string(root().join("examples/payments.csv")).unwrap()
}

/// The shipped example payment data, as JSON.
fn example_json() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(root().join("examples/payments.json")).unwrap()).unwrap()
}

/// `translate --payments` (through the payer-remit map for CSV) of these
/// inputs into `out`: exit code, stderr, and the 835 when one was written.
fn translate(inputs: &[&Path], out: &Path) -> (Option<i32>, String, Option<String>) {
    let mut args = vec!["translate", "--payments", "--map", "payer-remit"];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    args.extend(["-o", out.to_str().unwrap()]);
    let run = edi_courier(&args);
    let written = std::fs::read_to_string(out).ok();
    (run.status.code(), stderr(&run), written)
}

fn segments<'a>(x12: &'a str, id: &str) -> Vec<&'a str> {
    x12.split('~')
        .map(str::trim)
        .filter(|s| s.split('*').next() == Some(id))
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Rows of one check (CHKSUM) whose two claims are 5e28 each: their sum
/// does not fit a Decimal.
const HUGE_ROWS: &str = "\
CHKSUM,11/27/2026,1.00,RIVERSIDE,1234567893,S0,Processed,50000000000000000000000000000.00,50000000000000000000000000000.00,,PPO,ICN1,11,,DOE,JANE,XJH100200300,,,,HC:99213,50000000000000000000000000000.00,,50000000000000000000000000000.00,1,11/03/2026,S0-1,,
CHKSUM,11/27/2026,1.00,RIVERSIDE,1234567893,S1,Processed,50000000000000000000000000000.00,50000000000000000000000000000.00,,PPO,ICN1,11,,DOE,JANE,XJH100200300,,,,HC:99213,50000000000000000000000000000.00,,50000000000000000000000000000.00,1,11/03/2026,S1-1,,
";

/// Regression: two claims of 5e28 in one check panicked the translation
/// ("Addition overflowed", exit 101) and the good checks were lost.
#[test]
fn a_check_whose_amounts_overflow_is_refused_and_the_rest_written() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "sum.csv", &(example_csv() + HUGE_ROWS));
    let out = dir.path().join("sum.835");
    let (code, err, written) = translate(&[&input], &out);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("sum.csv: rows 6-7 (trace CHKSUM)") && err.contains("CLP03 (charge)"),
        "{err}"
    );
    assert!(
        err.contains("CLP03 (charge) is not an amount in dollars and cents"),
        "{err}"
    );
    assert!(
        !err.contains("50000000000"),
        "the value is never quoted: {err}"
    );
    assert!(
        err.contains("2 remittance(s) written as 835 (ISA13 000000001), 1 refused"),
        "{err}"
    );
    assert_eq!(segments(&written.unwrap(), "ST").len(), 2);
    assert_pyx12_valid(&[out]);
}

/// Regression: amounts longer than an R element holds were written, and
/// pyx12 rejected the 835 ("too long 22 > 18"). A 5010 amount is at most
/// 99999999.99 (TR3 B.1.1.3.1.2), a quantity 15 digits. Each element is
/// named.
#[test]
fn amounts_longer_than_an_835_holds_are_refused_naming_the_element() {
    let dir = tempfile::tempdir().unwrap();
    let too_long = "CHK031,11/27/2026,99999999999999999999.99,RIVERSIDE,1234567893,C031,Processed,99999999999999999999.99,99999999999999999999.99,,PPO,ICN1,11,,DOE,JANE,XJH100200300,,,,,,,,,,,,\n";
    let input = write(dir.path(), "long.csv", &(example_csv() + too_long));
    let out = dir.path().join("long.835");
    let (code, err, _) = translate(&[&input], &out);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("long.csv: rows 6-6 (trace CHK031)")
            && err.contains(
                "BPR02 (amount) is not an amount in dollars and cents of at most 99999999.99"
            ),
        "{err}"
    );
    assert!(err.contains("2 remittance(s) written"), "{err}");
    assert_pyx12_valid(&[out]);

    // 99999999.99 is written; a cent more, or a fraction of one, is not.
    // A quantity holds 15 digits.
    /// A name, a change to the example, and what its refusal says (None:
    /// written).
    type Case = (
        &'static str,
        fn(&mut serde_json::Value),
        Option<&'static str>,
    );
    let cases: [Case; 5] = [
        (
            "ten digits",
            |j| {
                j["claims"][1]["charge"] = "99999999.95".into();
                j["claims"][1]["adjustments"][0]["amount"] = "99999999.95".into();
            },
            None,
        ),
        (
            "eleven digits",
            |j| {
                j["claims"][1]["charge"] = "999999999.95".into();
                j["claims"][1]["adjustments"][0]["amount"] = "999999999.95".into();
            },
            Some("claim RFM-1002: CLP03 (charge) is not an amount in dollars and cents"),
        ),
        (
            "a fraction of a cent",
            |j| {
                j["claims"][1]["charge"] = "99999999.955".into();
                j["claims"][1]["adjustments"][0]["amount"] = "99999999.955".into();
            },
            Some("claim RFM-1002: CLP03 (charge) is not an amount in dollars and cents"),
        ),
        (
            "units",
            |j| j["claims"][0]["lines"][1]["units"] = "1234567890123456".into(),
            Some("claim RFM-1001: line 2 SVC05 (units) has 16 digits; an 835 holds at most 15"),
        ),
        (
            "plb",
            |j| {
                j["provider_adjustments"][0]["amount"] = "-1000000000000000000.25".into();
            },
            Some("provider adjustment 1 PLB04 (amount) is not an amount in dollars and cents"),
        ),
    ];
    for (name, change, refused) in cases {
        let mut j = example_json();
        change(&mut j);
        let input = write(dir.path(), &format!("{name}.json"), &j.to_string());
        let out = dir.path().join(format!("{name}.835"));
        let (code, err, _) = translate(&[&input], &out);
        match refused {
            None => {
                assert_eq!(code, Some(0), "{name}: {err}");
                assert_pyx12_valid(&[out]);
            }
            Some(words) => {
                assert_eq!(code, Some(1), "{name}: {err}");
                assert!(err.contains(words), "{name}: {err}");
                assert!(err.contains("0 remittance(s) written"), "{name}: {err}");
            }
        }
    }
}

/// Regression: a negative check (a negative CSV total, or a PLB recoupment
/// larger than the claims) was written with a negative BPR02; the guide
/// issues no 835 for less than zero (X12 RFI 222: forward the balance).
#[test]
fn a_payment_below_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let negative = "CHK003,11/27/2026,-12.00,RIVERSIDE,1234567893,C003,Processed,-12.00,-12.00,,PPO,ICN1,11,,DOE,JANE,XJH100200300,,,,,,,,,,,,\n";
    let input = write(dir.path(), "neg.csv", &(example_csv() + negative));
    let out = dir.path().join("neg.835");
    let (code, err, written) = translate(&[&input], &out);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("neg.csv: rows 6-6 (trace CHK003)")
            && err.contains("BPR02 (amount) is below zero"),
        "{err}"
    );
    assert!(!written.unwrap().contains("CHK003"));

    // Recouped: the claims pay 118.40, PLB WO takes 200.00 back.
    let mut j = example_json();
    j["amount"] = "-81.60".into();
    j["provider_adjustments"] = serde_json::json!([{
        "provider": "1234567893", "fiscal_date": "2026-12-31", "reason": "WO",
        "reference": "OVP1", "amount": "200.00"
    }]);
    let input = write(dir.path(), "recouped.json", &j.to_string());
    let (code, err, written) = translate(&[&input], &dir.path().join("recouped.835"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("BPR02 (amount) is below zero"), "{err}");
    assert!(written.is_none(), "nothing written when nothing is good");
}

/// Regression: a zero payment was written as the data said (`BPR*C*0*C*CHK`);
/// the guide wants BPR01 H and BPR04 NON with no bank details (X12 RFI
/// 2228), whatever the map's constants or the data say.
#[test]
fn a_zero_payment_is_written_as_a_notification_without_bank_details() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, method) in [("check", "CHK"), ("ach", "ACH")] {
        let mut j = example_json();
        j["amount"] = "0".into();
        j["method"] = method.into();
        j["claims"] = serde_json::json!([j["claims"][1].clone()]);
        j["provider_adjustments"] = serde_json::json!([]);
        if method == "ACH" {
            j["payer_details"]["eft"] = serde_json::json!({
                "format": "CCP", "payer_routing": "011000015", "payer_account": "12345",
                "originator": "1512345678", "payee_routing": "011000028",
                "payee_account_kind": "DA", "payee_account": "67890"
            });
        }
        let input = write(dir.path(), &format!("{name}.json"), &j.to_string());
        let out = dir.path().join(format!("{name}.835"));
        let (code, err, written) = translate(&[&input], &out);
        assert_eq!(code, Some(0), "{err}");
        let written = written.unwrap();
        assert_eq!(
            segments(&written, "BPR"),
            ["BPR*H*0*C*NON************20261127"],
            "{name}"
        );
        files.push(out);
    }
    assert_pyx12_valid(&files);
}

/// Regression: two adjustments of one provider and fiscal date were two PLB
/// segments and pyx12 failed the 835 ("Loop FOOTER exceeded max count").
/// A PLB holds six adjustments of one provider and period; a seventh
/// starts another PLB, another provider or date its own.
#[test]
fn adjustments_of_one_provider_and_period_share_a_plb() {
    let dir = tempfile::tempdir().unwrap();
    let plb = |reason: &str, reference: Option<&str>, amount: &str, date: &str| {
        serde_json::json!({
            "provider": "1234567893", "fiscal_date": date, "reason": reason,
            "reference": reference, "amount": amount
        })
    };
    let mut j = example_json();
    j["amount"] = "114.65".into();
    j["provider_adjustments"] = serde_json::json!([
        plb("L6", None, "-1.25", "2026-12-31"),
        plb("WO", Some("X1"), "5.00", "2026-12-31"),
    ]);
    let input = write(dir.path(), "plb2.json", &j.to_string());
    let out = dir.path().join("plb2.835");
    let (code, err, written) = translate(&[&input], &out);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        segments(&written.unwrap(), "PLB"),
        ["PLB*1234567893*20261231*L6*-1.25*WO:X1*5"]
    );
    assert_pyx12_valid(&[out]);

    // Seven of one period, and one of another date: 6 + 1, then 1.
    let mut j = example_json();
    let mut list: Vec<serde_json::Value> = (1..=7)
        .map(|i| plb("WO", Some(&format!("R{i}")), "1", "2026-12-31"))
        .collect();
    list.insert(2, plb("L6", None, "-0.35", "2025-12-31"));
    j["amount"] = "111.75".into();
    j["provider_adjustments"] = serde_json::Value::Array(list);
    let input = write(dir.path(), "plb8.json", &j.to_string());
    let (code, err, written) = translate(&[&input], &dir.path().join("plb8.835"));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        segments(&written.unwrap(), "PLB"),
        [
            "PLB*1234567893*20261231*WO:R1*1*WO:R2*1*WO:R3*1*WO:R4*1*WO:R5*1*WO:R6*1",
            "PLB*1234567893*20261231*WO:R7*1",
            "PLB*1234567893*20251231*L6*-0.35",
        ]
    );
}

/// Regression: a provider adjustment of 0.00 was written into a PLB pair
/// (`PLB*…*WO:Z1*0`); the guide allows no zero dollar adjustment (the
/// 005010X221A1 PLB note, X12 RFI 1324). It moves no money, so the payment
/// is written without it, with a warning naming the file, the remittance
/// and the member; exit 0; pyx12 passes the 835. A payment whose only
/// adjustment is zero gets no PLB at all.
#[test]
fn a_zero_provider_adjustment_is_left_out_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let plb = |reason: &str, reference: Option<&str>, amount: &str| {
        serde_json::json!({
            "provider": "1234567893", "fiscal_date": "2026-12-31", "reason": reason,
            "reference": reference, "amount": amount
        })
    };
    let mut j = example_json();
    j["provider_adjustments"] =
        serde_json::json!([plb("L6", None, "-1.25"), plb("WO", Some("Z1"), "0.00"),]);
    let mut only_zero = example_json();
    only_zero["trace"] = "CHKZERO".into();
    only_zero["amount"] = "118.40".into();
    only_zero["provider_adjustments"] = serde_json::json!([plb("WO", Some("Z2"), "-0")]);
    let input = write(
        dir.path(),
        "zero_plb.json",
        &serde_json::Value::Array(vec![j, only_zero]).to_string(),
    );
    let out = dir.path().join("zero_plb.835");
    let (code, err, written) = translate(&[&input], &out);
    assert_eq!(code, Some(0), "{err}");
    let written = written.unwrap();
    assert_eq!(
        segments(&written, "PLB"),
        ["PLB*1234567893*20261231*L6*-1.25"],
        "{written}"
    );
    for (remittance, trace) in [(1, "CHK20261127001"), (2, "CHKZERO")] {
        assert!(
            err.contains(&format!(
                "warning: {}: remittance {remittance} (trace {trace}): zero-provider-adjustment: \
                 provider_adjustments[{}].amount (PLB04) is zero: left out of the 835",
                input.display(),
                if remittance == 1 { 1 } else { 0 }
            )),
            "{err}"
        );
    }
    assert!(err.contains("2 remittance(s) written"), "{err}");
    assert_eq!(segments(&written, "BPR").len(), 2);
    assert_pyx12_valid(&[out]);
}

/// One row of a check of its own (CHKX) whose three amounts are `amount`.
fn one_row_check(amount: &str) -> String {
    format!("CHKX,11/27/2026,{amount},RIVERSIDE,1234567893,CX,Processed,{amount},{amount},,PPO,ICN1,11,,DOE,JANE,XJH100200300,,,,,,,,,,,,\n")
}

/// Regression: CSV `(-12.00)` was read as +12 (a double negative made
/// positive) and `12.` as 12; payment JSON took `"1.1965e2"` and
/// `"+119.65"`. Each is refused naming the row or member, never the value.
#[test]
fn amounts_written_loosely_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, amount) in [
        ("paren_neg", "(-12.00)"),
        ("paren_dollar_neg", "($-12.00)"),
        ("trailing_dot", "12."),
        ("trailing_dot_dollar", "$12."),
    ] {
        let input = write(
            dir.path(),
            &format!("{name}.csv"),
            &(example_csv() + &one_row_check(amount)),
        );
        let (code, err, written) = translate(&[&input], &dir.path().join(format!("{name}.835")));
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(
            err.contains(&format!(
                "{name}.csv: rows 6-6: row 6: amount: is not an amount of money"
            )),
            "{name}: {err}"
        );
        assert!(err.contains("2 remittance(s) written"), "{name}: {err}");
        assert!(!written.unwrap().contains("CHKX"), "{name}");
    }
    // Written plainly, the same amounts are read (and a positive check of
    // the same shape is written).
    let input = write(
        dir.path(),
        "plain.csv",
        &(example_csv() + &one_row_check("$12.00")),
    );
    let (code, err, _) = translate(&[&input], &dir.path().join("plain.835"));
    assert_eq!(code, Some(0), "{err}");

    for (name, member, value) in [
        ("exponent", "amount", "1.1965e2"),
        ("plus", "amount", "+119.65"),
        ("line", "claims[0].lines[1].paid", "2.24e1"),
        ("float", "amount", ""),
    ] {
        let mut j = example_json();
        match (name, member) {
            ("float", _) => j["amount"] = serde_json::json!(119.65),
            (_, "amount") => j["amount"] = value.into(),
            _ => j["claims"][0]["lines"][1]["paid"] = value.into(),
        }
        let input = write(dir.path(), &format!("{name}.json"), &j.to_string());
        let (code, err, _) = translate(&[&input], &dir.path().join(format!("{name}.835")));
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(
            err.contains(&format!(
                "{name}.json: remittance 1: {member} is not written as a plain amount"
            )),
            "{name}: {err}"
        );
        if !value.is_empty() {
            assert!(
                !err.contains(value),
                "{name}: the value is never quoted: {err}"
            );
        }
    }
}

/// Regression: rows of one check that disagree on a check-level field
/// (Check Amount $999.00 in row 2) or of one claim on a claim-level field
/// (Paid $0.00 in row 2) were resolved silently by the first row (exit 0).
/// The check is refused naming field, column and rows; the rest written.
#[test]
fn a_check_whose_rows_disagree_is_refused_and_the_rest_written() {
    let dir = tempfile::tempdir().unwrap();
    let text = example_csv();
    let second_row = text.lines().nth(2).unwrap();
    for (name, from, to, words) in [
        (
            "check_amount",
            "CHK20261127002,11/27/2026,$118.40,",
            "CHK20261127002,11/27/2026,$999.00,",
            "check-rows-disagree: amount: rows 1 and 2 of this check hold different values in column \"Check Amount\"",
        ),
        (
            "claim_paid",
            ",Processed,$185.00,$118.40,",
            ",Processed,$185.00,$0.00,",
            "claim-rows-disagree: paid: rows 1 and 2 of this claim hold different values in column \"Paid\"",
        ),
    ] {
        let changed = second_row.replacen(from, to, 1);
        assert_ne!(changed, second_row, "{name}");
        let input = write(
            dir.path(),
            &format!("{name}.csv"),
            &text.replacen(second_row, &changed, 1),
        );
        let out = dir.path().join(format!("{name}.835"));
        let (code, err, written) = translate(&[&input], &out);
        assert_eq!(code, Some(1), "{name}: {err}");
        assert!(err.contains(&format!("{name}.csv: rows 1-3: {words}")), "{name}: {err}");
        assert!(!err.contains("999") && !err.contains("0.00"), "{name}: {err}");
        assert!(err.contains("1 remittance(s) written"), "{name}: {err}");
        assert!(!written.unwrap().contains("CHK20261127002"), "{name}");
        assert_pyx12_valid(&[out]);
    }
    // The same value spelt otherwise, or left blank, is no disagreement.
    let same = second_row
        .replacen("$118.40,RIVERSIDE", "118.4,RIVERSIDE", 1)
        .replacen(",PPO,", ",,", 1);
    let input = write(dir.path(), "same.csv", &text.replacen(second_row, &same, 1));
    let (code, err, _) = translate(&[&input], &dir.path().join("same.835"));
    assert_eq!(code, Some(0), "{err}");
}

/// Regression: a Luhn-valid card number in a payment's patient name went
/// into NM1*QC. Every text of a payment is held to the claim scrubber's
/// card guard: the payment is refused (rule card-number), naming where and
/// the last four digits only.
#[test]
fn a_card_number_in_a_payment_is_refused_by_its_last_four_digits() {
    let dir = tempfile::tempdir().unwrap();
    let text = example_csv().replacen(",ROE,RICHARD,", ",ROE,4111 1111 1111 1111,", 1);
    let input = write(dir.path(), "card.csv", &text);
    let out = dir.path().join("card.835");
    let (code, err, written) = translate(&[&input], &out);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "card.csv: rows 1-3: card-number: claims[1].patient.first_name holds what looks like a payment card number (ending 1111)"
        ),
        "{err}"
    );
    assert!(!err.contains("4111"), "{err}");
    let written = written.unwrap();
    assert!(!written.contains("4111") && !written.contains("CHK20261127002"));
    assert_pyx12_valid(&[out]);

    // In the trace (TRN02), which the refusal must not quote either.
    let mut j = example_json();
    j["trace"] = "5500000000000004".into();
    let input = write(dir.path(), "trace.json", &j.to_string());
    let (code, err, _) = translate(&[&input], &dir.path().join("trace.835"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("trace.json: remittance 1: card-number: trace holds what looks like a payment card number (ending 0004)"),
        "{err}"
    );
    assert!(!err.contains("5500000000000004"), "{err}");
}

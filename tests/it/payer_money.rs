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
    assert!(err.contains("has 29 digits"), "{err}");
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

/// Regression: amounts longer than an R element holds (18 digits, 15 for
/// quantities) were written, and pyx12 rejected the 835 ("too long 22 >
/// 18"). Each element is named.
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
            && err.contains("BPR02 (amount) has 22 digits; an 835 holds at most 18"),
        "{err}"
    );
    assert!(err.contains("2 remittance(s) written"), "{err}");
    assert_pyx12_valid(&[out]);

    // 18 digits are written; 19 are not. A quantity holds 15.
    let cases: [(&str, fn(&mut serde_json::Value), Option<&str>); 4] = [
        (
            "eighteen",
            |j| {
                j["claims"][1]["charge"] = "9999999999999999.95".into();
                j["claims"][1]["adjustments"][0]["amount"] = "9999999999999999.95".into();
            },
            None,
        ),
        (
            "nineteen",
            |j| {
                j["claims"][1]["charge"] = "99999999999999999.95".into();
                j["claims"][1]["adjustments"][0]["amount"] = "99999999999999999.95".into();
            },
            Some("claim RFM-1002: CLP03 (charge) has 19 digits"),
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
            Some("provider adjustment 1 PLB04 (amount) has 21 digits"),
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

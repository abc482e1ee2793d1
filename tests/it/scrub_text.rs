//! Delimiters in claim text, by what the field holds: in free text (notes,
//! names, address lines) each becomes a space and the report warns; in ids
//! and codes the claim is set aside, since a changed id would name
//! something else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;

#[test]
fn a_delimiter_in_an_address_becomes_a_space_but_in_a_member_id_sets_the_claim_aside() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    let text = text
        // RFM-1001 (two rows): an address line with "*" and "~" in it.
        .replace("12 ELM ST,", "12 ELM ST*APT~4,")
        // RFM-1002: a member id with ":" in it.
        .replace("MBI9988776655", "MBI99:88776655");
    let input = dir.path().join("export.csv");
    std::fs::write(&input, text).unwrap();
    let out_path = dir.path().join("out.837");
    let out = edi_courier(&[
        "translate",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
        "--quarantine",
        dir.path().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");

    let x12 = std::fs::read_to_string(&out_path).unwrap();
    assert!(x12.contains("CLM*RFM-1001*"), "{x12}");
    assert!(x12.contains("N3*12 ELM ST APT 4~"), "{x12}");
    assert!(!x12.contains("RFM-1002"), "{x12}");
    let (summary, claims) = read_claims(x12.as_bytes());
    assert!(summary.is_valid());
    assert_eq!(claims.len(), 4);

    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out.837.report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["set_aside"], serde_json::json!(["RFM-1002"]));
    let found: Vec<(String, String, String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["rule"].as_str().unwrap().starts_with("delimiter"))
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_owned();
            (s("severity"), s("claim"), s("field"), s("rule"))
        })
        .collect();
    let row = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    assert_eq!(
        found,
        [
            row(
                "warning",
                "RFM-1001",
                "subscriber.address.line1",
                "delimiter-replaced"
            ),
            row(
                "error",
                "RFM-1002",
                "subscriber.member_id",
                "delimiter-in-text"
            ),
        ]
    );
    let rejected = std::fs::read_to_string(dir.path().join("export.rejected.csv")).unwrap();
    assert!(
        rejected.contains("MBI99:88776655"),
        "handed back as it came in"
    );
}

/// Regression (found by an independent tester): non-ASCII letters and
/// control characters in ids were changed to fit X12 — `É` to `E`, an en
/// dash to `-`, a NUL or a zero-width space to a space — and the claim
/// went out under another member id or claim id, with at most a warning.
/// In ids and codes they now set the claim aside (naming the field, never
/// the value); in names a control character becomes a space with a
/// warning, as transliterated letters do.
#[test]
fn non_ascii_or_control_characters_in_ids_set_the_claim_aside_and_in_names_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    let text = text
        // RFM-1002: an accented letter in its member id.
        .replace("MBI9988776655", "MBI998877665\u{c9}")
        // RFM-1003 (one row): an en dash in its claim id.
        .replacen("RFM-1003,", "RFM\u{2013}1003,", 1);
    // RFM-1004: a NUL in the patient's last name; RFM-1005: in its member id.
    let mut rows: Vec<String> = text.lines().map(str::to_owned).collect();
    let at = rows
        .iter()
        .position(|r| r.starts_with("RFM-1004,"))
        .unwrap();
    let header: Vec<&str> = rows[0].split(',').collect();
    let last = header.iter().position(|h| *h == "Patient Last").unwrap();
    let member = header.iter().position(|h| *h == "Member ID").unwrap();
    let mut cells: Vec<String> = rows[at].split(',').map(str::to_owned).collect();
    cells[last] = "SMI\u{0}TH".to_owned();
    // And a C1 control character (NEL) in the first name: a control, not a
    // letter to transliterate.
    let first = header.iter().position(|h| *h == "Patient First").unwrap();
    cells[first] = "AN\u{85}NA".to_owned();
    rows[at] = cells.join(",");
    let at5 = rows
        .iter()
        .position(|r| r.starts_with("RFM-1005,"))
        .unwrap();
    let mut cells: Vec<String> = rows[at5].split(',').map(str::to_owned).collect();
    cells[member].insert(3, '\u{0}');
    rows[at5] = cells.join(",");
    let input = dir.path().join("export.csv");
    std::fs::write(&input, rows.join("\n") + "\n").unwrap();
    let out = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["set_aside"],
        serde_json::json!(["RFM-1002", "RFM\u{2013}1003", "RFM-1005"])
    );
    let rules: Vec<(String, String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            let r = p["rule"].as_str().unwrap();
            r.starts_with("non-ascii") || r.starts_with("control")
        })
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_owned();
            (s("claim"), s("field"), s("rule"))
        })
        .collect();
    let row = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        rules,
        [
            row("RFM-1002", "subscriber.member_id", "non-ascii-in-code"),
            row("RFM\u{2013}1003", "id", "non-ascii-in-code"),
            // Its names (NUÑEZ JOSÉ) are free text: transliterated, warned.
            row(
                "RFM\u{2013}1003",
                "subscriber.last_name",
                "non-ascii-transliterated"
            ),
            row(
                "RFM\u{2013}1003",
                "subscriber.first_name",
                "non-ascii-transliterated"
            ),
            row("RFM-1004", "subscriber.last_name", "control-replaced"),
            row("RFM-1004", "subscriber.first_name", "control-replaced"),
            row("RFM-1005", "subscriber.member_id", "control-character"),
        ]
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(!shown.contains("MBI998877665"), "{shown}");
}

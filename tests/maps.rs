//! The map language as someone writing a map for a new export meets it:
//! mistakes in the map said once, at load, with where and what was meant;
//! computed fields, conditions and row routing; and the example exports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The clinic map with `from` replaced by `to`, written into `dir`.
fn clinic_map_with(dir: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string("edi-maps/clinic-professional.toml").unwrap();
    assert!(text.contains(from), "{from:?} is not in the clinic map");
    let path = dir.join("variant.toml");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

/// Scrubs the clinic example through a map: exit code and stderr.
fn scrub_with(map: &Path, input: &str) -> (Option<i32>, String) {
    let out = edi_courier(&["scrub", "--map", map.to_str().unwrap(), input]);
    (out.status.code(), stderr(&out))
}

#[test]
fn a_wrong_key_in_a_field_is_named_once_with_the_key_meant() {
    let dir = tempfile::tempdir().unwrap();
    let map = clinic_map_with(
        dir.path(),
        r#"{ column = "Patient DOB", type = "date" }"#,
        r#"{ colum = "Patient DOB", type = "date" }"#,
    );
    let (code, err) = scrub_with(&map, "examples/clinic-claims.csv");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("variant.toml"), "{err}");
    assert!(
        err.contains("[claim] subscriber.birth_date")
            && err.contains("\"colum\"")
            && err.contains("did you mean \"column\""),
        "{err}"
    );
    assert_eq!(err.matches("colum\"").count(), 1, "said once: {err}");
    assert!(!err.contains("untagged"), "{err}");
}

#[test]
fn a_field_the_model_needs_but_the_map_never_fills_is_a_map_error_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let map = clinic_map_with(
        dir.path(),
        "total_charge = { column = \"Claim Total\", type = \"money\" }\n",
        "",
    );
    let (code, err) = scrub_with(&map, "examples/clinic-claims.csv");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("variant.toml") && err.contains("maps nothing to total_charge"),
        "{err}"
    );
    assert_eq!(err.matches("total_charge").count(), 1, "{err}");
}

#[test]
fn a_list_for_a_one_value_field_and_one_value_for_a_list_are_map_errors() {
    let dir = tempfile::tempdir().unwrap();
    let map = clinic_map_with(
        dir.path(),
        r#""subscriber.group_number" = "Group Number""#,
        r#""subscriber.group_number" = { columns = ["Group Number", "Plan Type"] }"#,
    );
    let (code, err) = scrub_with(&map, "examples/clinic-claims.csv");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("[claim] subscriber.group_number") && err.contains("holds one value"),
        "{err}"
    );
    let map = clinic_map_with(
        dir.path(),
        r#"diagnoses = { columns = ["Dx 1", "Dx 2", "Dx 3", "Dx 4"], type = "list", strip = ".", upper = true }"#,
        r#"diagnoses = "Dx 1""#,
    );
    let (code, err) = scrub_with(&map, "examples/clinic-claims.csv");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("[claim] diagnoses") && err.contains("holds a list"),
        "{err}"
    );
}

#[test]
fn a_misspelt_field_or_table_gets_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let map = clinic_map_with(dir.path(), "prior_authorization =", "prior_authorisation =");
    let (code, err) = scrub_with(&map, "examples/clinic-claims.csv");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("did you mean \"prior_authorization\""),
        "{err}"
    );
    let map = clinic_map_with(dir.path(), "translate = \"pos\"", "translate = \"poss\"");
    let (_, err) = scrub_with(&map, "examples/clinic-claims.csv");
    assert!(
        err.contains("no [translate.poss] table (did you mean \"pos\"?)"),
        "{err}"
    );
}

#[test]
fn a_value_missing_from_a_translate_table_sets_the_claim_aside_naming_table_column_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string("examples/clinic-claims.csv").unwrap();
    // RFM-1003's first row is data row 4: an unknown sex word.
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    assert!(lines[4].starts_with("RFM-1003,"), "{}", lines[4]);
    let first = lines[4].clone();
    let sex = first.split(',').nth(17).unwrap().to_owned();
    lines[4] = first.replacen(&format!(",{sex},"), ",Femme,", 1);
    let input = dir.path().join("export.csv");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["set_aside"], serde_json::json!(["RFM-1003"]));
    let p = &report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["rule"] == "translate")
        .unwrap();
    assert_eq!(p["field"], "subscriber.gender");
    assert_eq!(p["rows"]["first"], 4);
    let message = p["message"].as_str().unwrap();
    assert!(
        message.contains("[translate.sex]") && message.contains("Patient Sex"),
        "{message}"
    );
    assert!(
        !message.contains("Femme"),
        "the value may be PHI: {message}"
    );
}

#[test]
fn an_export_with_another_delimiter_is_told_which_one_its_header_seems_to_use() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string("examples/clinic-claims.csv").unwrap();
    let input = dir.path().join("semicolons.csv");
    std::fs::write(&input, csv.lines().next().unwrap().replace(',', ";") + "\n").unwrap();
    let out = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("separated by ';', the map says delimiter = ','"),
        "{said}"
    );
    assert!(
        !said.contains("Rendering NPI"),
        "not every column listed: {said}"
    );
}

#[test]
fn a_wrong_type_inside_a_field_points_at_the_value_not_at_an_untagged_enum() {
    let dir = tempfile::tempdir().unwrap();
    let map = clinic_map_with(
        dir.path(),
        r#"translate = "pos", upper = true"#,
        r#"translate = "pos", upper = "yes""#,
    );
    let (code, err) = scrub_with(&map, "examples/clinic-claims.csv");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("line 15") && err.contains("expected a boolean"),
        "{err}"
    );
    assert!(!err.contains("untagged"), "{err}");
}

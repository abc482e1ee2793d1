//! The map language as someone writing a map for a new export meets it:
//! mistakes in the map said once, at load, with where and what was meant;
//! computed fields, conditions and row routing; and the example exports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use std::path::{Path, PathBuf};

/// The clinic map with `from` replaced by `to`, written into `dir`.
fn clinic_map_with(dir: &Path, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string("edi-maps/clinic-professional.toml").unwrap();
    assert!(text.contains(from), "{from:?} is not in the clinic map");
    let path = dir.join("variant.toml");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

/// `scrub --json` of `input` through `map`: exit code and report.
fn scrub_json(map: &str, input: &Path) -> (Option<i32>, serde_json::Value) {
    let out = edi_courier(&["scrub", "--map", map, input.to_str().unwrap(), "--json"]);
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
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
    // Nothing could be read: a run that could not be done (exit 2), not a
    // batch with claims set aside.
    assert_eq!(out.status.code(), Some(2));
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

/// Found by an independent tester: an export saved as UTF-16, one with
/// Excel's `sep=,` first line and one whose header is lower-cased were
/// each refused with only "none of the map's columns is there". Each now
/// names its cause.
#[test]
fn a_header_none_of_whose_columns_match_is_told_why_when_the_cause_is_common() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string("examples/clinic-claims.csv").unwrap();
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(csv.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let header = csv.lines().next().unwrap();
    let rest = &csv[header.len()..];
    for (name, bytes, says) in [
        ("utf16.csv", utf16, "seems to be UTF-16"),
        (
            "sep.csv",
            format!("sep=,\n{csv}").into_bytes(),
            "Excel's `sep=` line",
        ),
        (
            "lower.csv",
            format!("{}{rest}", header.to_lowercase()).into_bytes(),
            "in another case",
        ),
    ] {
        let input = dir.path().join(name);
        std::fs::write(&input, bytes).unwrap();
        let out = edi_courier(&[
            "scrub",
            "--map",
            "clinic-professional",
            input.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("none of the map's columns is there") && said.contains(says),
            "{name}: {said}"
        );
    }
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

/// Translates an example export through its map: the 837's text, the
/// report, and the rejected CSV's bytes.
fn translate_example(map: &str, input: &str) -> (String, serde_json::Value, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.837");
    let report_path = dir.path().join("report.json");
    let out = edi_courier(&[
        "translate",
        "--map",
        map,
        input,
        "-o",
        out_path.to_str().unwrap(),
        "--report",
        report_path.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "planted claims: {}",
        stderr(&out)
    );
    assert_pyx12_valid(std::slice::from_ref(&out_path));
    let report = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let stem = Path::new(input).file_stem().unwrap().to_str().unwrap();
    let rejected = std::fs::read(dir.path().join(format!("{stem}.rejected.csv"))).unwrap();
    (
        std::fs::read_to_string(&out_path).unwrap(),
        report,
        rejected,
    )
}

/// Asserts each planted claim is set aside for its reason, at its row.
fn assert_planted(report: &serde_json::Value, planted: &[(&str, &str, &str, u64)]) {
    let ids: Vec<&str> = planted.iter().map(|p| p.0).collect();
    assert_eq!(report["set_aside"], serde_json::json!(ids));
    let problems = report["problems"].as_array().unwrap();
    for (id, field, rule, row) in planted {
        assert!(
            problems.iter().any(|p| p["claim"] == *id
                && p["field"] == *field
                && p["rule"] == *rule
                && p["rows"]["first"] == *row),
            "{id}: {field} [{rule}] at row {row} not reported: {problems:#?}"
        );
    }
}

/// The data rows (1-based) of an export, each with its line ending.
fn data_rows(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut rows: Vec<Vec<u8>> = bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    rows.remove(0);
    rows
}

#[test]
fn the_physician_group_export_needs_no_preprocessing_and_its_bad_claims_are_named() {
    let input = "examples/physician-group-claims.csv";
    let (x12, report, rejected) = translate_example("physician-group", input);
    assert_planted(
        &report,
        &[
            // A relationship word the table lacks: named, value shown (a code).
            ("PG-24006", "patient.relationship", "translate", 11),
            // A child whose subscriber columns are blank: refused, not invented.
            ("PG-24007", "subscriber", "model", 12),
            (
                "PG-24008",
                "lines[2].diagnosis_pointers",
                "diagnosis-pointer",
                13,
            ),
            ("PG-24009", "lines[2].charge", "map", 16),
            ("PG-24010", "rendering_provider.npi", "npi-check-digit", 17),
        ],
    );
    assert_eq!(report["claims_accepted"], 6);
    // No total column: the total is the sum of "$1,234.50"-style lines.
    assert!(x12.contains("CLM*PG-24003*1854.5***11:B:1"), "{x12}");
    // Dx1..Dx4 then the comma list, in order, as one HI.
    assert!(x12.contains("HI*ABK:M5450*ABF:M7918*ABF:G8929*ABF:M25561*ABF:M25562*ABF:R2689~"));
    // "LT 59" in one cell: two modifiers.
    assert!(x12.contains("SV1*HC:20610:LT:59*310*UN*1***5~"));
    // Self: the subscriber is the patient, from the patient's columns, no PAT loop.
    assert!(x12.contains("SBR*P*18*GRP4410******CI~NM1*IL*1*HALL*DENISE****MI*XWA100200301~"));
    // A child: the subscriber from the subscriber columns, the patient in 2000C.
    assert!(x12.contains("NM1*IL*1*ORTIZ*ELENA****MI*XWA100200302~"));
    assert!(x12.contains("PAT*19~NM1*QC*1*ORTIZ*LUCAS~"));
    assert!(x12.contains("DTP*431*D8*20261028~"), "onset date");
    // The rejected CSV: the BOM, the header and the planted claims' rows,
    // byte for byte (CRLF, quoting).
    let bytes = std::fs::read(input).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF") && bytes.windows(2).any(|w| w == b"\r\n"));
    let rows = data_rows(&bytes);
    let header_len = bytes.len() - rows.concat().len();
    let mut expected = bytes[..header_len].to_vec();
    for n in [11, 12, 13, 14, 15, 16, 17] {
        expected.extend_from_slice(&rows[n - 1]);
    }
    assert_eq!(rejected, expected);
}

#[test]
fn the_hospital_export_mixes_837i_and_837p_by_claim_type_and_its_bad_claims_are_named() {
    let input = "examples/hospital-mixed-claims.csv";
    let (x12, report, _) = translate_example("hospital-mixed", input);
    assert_planted(
        &report,
        &[
            // The export has a total column: it must equal the lines' sum.
            ("H-7005", "total_charge", "total-charge", 11),
            ("H-7006", "lines[1].diagnosis_pointers", "translate", 13),
            ("H-7007", "type_of_bill", "type-of-bill", 14),
            ("H-7008", "statement_from", "map", 15),
            ("H-7009", "row", "csv", 16),
        ],
    );
    // One interchange, a functional group per claim kind.
    assert!(x12.contains("*005010X223A2~") && x12.contains("*005010X222A1~"));
    // 111 → type of bill 11, frequency 1; admission hour, discharge hour, DRG.
    assert!(x12.contains("CLM*H-7001*4301.75***11:A:1**A*Y*Y~DTP*096*TM*1415~"));
    assert!(x12.contains("DTP*435*DT*202610260730~"));
    assert!(x12.contains("HI*DR:282~"));
    // 01: the spouse as the patient; 18: no patient loop.
    assert!(x12.contains("PAT*01~NM1*QC*1*GREEN*MARY~"));
    assert!(!x12.contains("NM1*QC*1*WHITE"));
    // CMS-1500 letters AB → pointers 1 and 2; the accident in CLM11.
    assert!(x12.contains("CLM*H-7003*355***22:B:1*Y*A*Y*Y**AA:::IL~DTP*439*D8*20261103~"));
    assert!(x12.contains("SV1*HC:99283:25*240*UN*1***1:2~"));
    // The lab's CLIA number, and its voided line left out by the row filter.
    assert!(x12.contains("REF*X4*14D0123456~"));
    assert!(!x12.contains("85025"));
}

#[test]
fn pointers_read_as_text_are_a_map_error_naming_the_item_type() {
    let dir = tempfile::tempdir().unwrap();
    let map = clinic_map_with(
        dir.path(),
        r#"split = ",", item = "integer""#,
        r#"split = ",""#,
    );
    let (code, err) = scrub_with(&map, "examples/clinic-claims.csv");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("[line] diagnosis_pointers") && err.contains("give item = \"integer\""),
        "{err}"
    );
}

#[test]
fn rows_of_bare_delimiters_at_the_end_of_an_export_are_not_claims() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string("examples/clinic-claims.csv").unwrap();
    let width = csv.lines().next().unwrap().split(',').count();
    let input = dir.path().join("export.csv");
    std::fs::write(&input, format!("{csv}{}\n\n", ",".repeat(width - 1))).unwrap();
    let out = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `translate` of `inputs` through the clinic map into `dir`: the run, its
/// JSON report and the 837 it wrote.
fn translate_clinic(
    dir: &Path,
    inputs: &[&Path],
) -> (std::process::Output, serde_json::Value, String) {
    let out_path = dir.join("out.837");
    let report_path = dir.join("report.json");
    let mut args = vec!["translate", "--map", "clinic-professional"];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    args.extend([
        "-o",
        out_path.to_str().unwrap(),
        "--report",
        report_path.to_str().unwrap(),
    ]);
    let out = edi_courier(&args);
    let report = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    (
        out,
        report,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
    )
}

/// A claim is read from its first row. A later row holding another value
/// in a column only claim fields read (another birth date: another patient
/// under the same claim id) sets the claim aside, naming the column and the
/// two rows, never the values; a later row leaving such columns blank is
/// not a difference.
#[test]
fn a_claim_whose_rows_disagree_on_a_claim_column_is_set_aside_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = csv::Reader::from_path("examples/clinic-claims.csv").unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let first_two: Vec<csv::StringRecord> = rows.iter().take(2).cloned().collect();
    assert!(first_two.iter().all(|r| &r[0] == "RFM-1001"));
    let with = |r: &csv::StringRecord, changes: &[(usize, &str)]| -> csv::StringRecord {
        r.iter()
            .enumerate()
            .map(|(i, v)| changes.iter().find(|c| c.0 == i).map_or(v, |c| c.1))
            .collect()
    };
    let (dob, last, first, member, id) = (
        col("Patient DOB"),
        col("Patient Last"),
        col("Patient First"),
        col("Member ID"),
        col("Claim ID"),
    );
    let mut writer = csv::Writer::from_path(dir.path().join("export.csv")).unwrap();
    writer.write_record(&header).unwrap();
    // Data row 2: RFM-1001's second line, under another birth date.
    writer.write_record(&first_two[0]).unwrap();
    writer
        .write_record(&with(&first_two[1], &[(dob, "07/04/1950")]))
        .unwrap();
    for r in &rows[2..] {
        writer.write_record(r).unwrap();
    }
    // Rows 7 and 8: the same two lines as a new claim, the patient's
    // columns left blank on its second row, two others spelt otherwise.
    writer
        .write_record(&with(&first_two[0], &[(id, "RFM-1009")]))
        .unwrap();
    writer
        .write_record(&with(
            &first_two[1],
            &[
                (id, "RFM-1009"),
                (dob, ""),
                (last, ""),
                (first, ""),
                (member, ""),
                // Other text, the same values once mapped (`upper`,
                // `strip = "."`): not a difference.
                (col("Place of Service"), "OFFICE"),
                (col("Dx 2"), "E119"),
            ],
        ))
        .unwrap();
    writer.flush().unwrap();
    drop(writer);

    let (out, report, x12) = translate_clinic(dir.path(), &[&dir.path().join("export.csv")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        report["set_aside"],
        serde_json::json!(["RFM-1001"]),
        "{report:#}"
    );
    let problems = report["problems"].as_array().unwrap();
    let disagree: Vec<&serde_json::Value> = problems
        .iter()
        .filter(|p| p["rule"] == "claim-rows-disagree")
        .collect();
    assert_eq!(disagree.len(), 1, "{problems:#?}");
    let p = disagree[0];
    assert_eq!(p["claim"], "RFM-1001");
    assert_eq!(p["field"], "subscriber.birth_date");
    assert_eq!(p["rows"]["first"], 1);
    assert_eq!(p["rows"]["last"], 2);
    let message = p["message"].as_str().unwrap();
    assert!(message.contains("\"Patient DOB\""), "{message}");
    let said = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    for shown in [&said, &report.to_string()] {
        assert!(
            !shown.contains("1950") && !shown.contains("1961"),
            "a birth date was quoted: {shown}"
        );
    }
    assert!(x12.contains("CLM*RFM-1009*") && !x12.contains("CLM*RFM-1001*"));
}

/// A column the map reads, twice in the header: which one is meant cannot
/// be told, so the export is refused naming the column and both positions
/// (before, the later one was read and the other ignored).
#[test]
fn a_column_the_map_reads_twice_in_the_header_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string("examples/clinic-claims.csv").unwrap();
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .contains(",Patient DOB,Patient Sex,"));
    let input = dir.path().join("export.csv");
    std::fs::write(
        &input,
        csv.replacen(",Patient DOB,Patient Sex,", ",Patient DOB,Patient DOB,", 1),
    )
    .unwrap();
    let out = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
    ]);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("the header has the column \"Patient DOB\" 2 times (columns 17, 18)"),
        "{said}"
    );
}

/// One input of several refused whole (here a column the map reads twice
/// in its header): its claims are neither read nor set aside, so the run
/// ends 2 as it does with that input alone — not 1 with "0 set aside" —
/// and the report counts the refused input; the other input's claims are
/// still written.
#[test]
fn an_input_refused_whole_beside_a_good_one_ends_the_run_2() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string("examples/clinic-claims.csv").unwrap();
    let bad = dir.path().join("b.csv");
    std::fs::write(
        &bad,
        csv.replacen(",Patient DOB,Patient Sex,", ",Patient DOB,Patient DOB,", 1),
    )
    .unwrap();
    let (out, report, x12) =
        translate_clinic(dir.path(), &[Path::new("examples/clinic-claims.csv"), &bad]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(report["inputs_refused"], 1, "{report:#}");
    assert_eq!(report["claims_read"], 5, "{report:#}");
    assert_eq!(x12.matches("CLM*").count(), 5);
}

/// Regression (found by an independent tester): a claim set aside before it
/// was built (here a place of service the map's table lacks) did not hold
/// its id in the batch, so a clean claim under the same id in the next file
/// went out — and the first, fixed and dropped again, would have gone out
/// as a second claim with that id. Now the later one is a duplicate.
#[test]
fn a_claim_set_aside_by_the_map_still_holds_its_id_in_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string("examples/clinic-claims.csv").unwrap();
    let first_row = csv.lines().nth(1).unwrap();
    assert!(first_row.starts_with("RFM-1001,") && first_row.contains(",Office,"));
    let a = dir.path().join("a.csv");
    std::fs::write(
        &a,
        csv.replacen(
            first_row,
            &first_row.replacen(",Office,", ",Moonbase,", 1),
            1,
        ),
    )
    .unwrap();
    // The next file: RFM-1001 clean, its other claims under ids of their own.
    let b = dir.path().join("b.csv");
    std::fs::write(
        &b,
        csv.replace("RFM-100", "RFB-100")
            .replace("RFB-1001", "RFM-1001"),
    )
    .unwrap();
    let (out, report, x12) = translate_clinic(dir.path(), &[&a, &b]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["claim"] == "RFM-1001"
            && p["rule"] == "duplicate-claim"
            && p["file"] == b.to_str().unwrap()),
        "{problems:#?}"
    );
    assert!(!x12.contains("CLM*RFM-1001*"), "neither RFM-1001 goes out");
    assert_eq!(x12.matches("CLM*").count(), 8);
}

/// The clinic export with cells replaced: (claim id, column, value) for the
/// claim's first row. Read and written with the csv crate, so quoting holds.
fn clinic_with_cells(dir: &Path, cells: &[(&str, &str, &str)]) -> PathBuf {
    let mut reader = csv::Reader::from_path("examples/clinic-claims.csv").unwrap();
    let header = reader.headers().unwrap().clone();
    let path = dir.join("export.csv");
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(&header).unwrap();
    let mut done = std::collections::HashSet::new();
    for row in reader.records() {
        let mut row: Vec<String> = row.unwrap().iter().map(str::to_owned).collect();
        let id = row[0].clone();
        if done.insert(id.clone()) {
            for (claim, column, value) in cells {
                if *claim == id {
                    let at = header.iter().position(|h| h == *column).unwrap();
                    row[at] = (*value).to_owned();
                }
            }
        }
        writer.write_record(&row).unwrap();
    }
    writer.flush().unwrap();
    path
}

/// Regression (found by an independent tester): amounts and numbers were
/// read by dropping every comma and space and accepting exponents, so
/// `45,00` went out as 4500, `1,23` as 123 and units `1e3` as 1000; and a
/// date's year of two digits under `%Y` was the year 90, sent as 0090.
/// Each is now the claim set aside, naming the row and field, never the
/// value; the other claims go on.
#[test]
fn amounts_numbers_and_dates_not_written_as_such_are_set_aside_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let input = clinic_with_cells(
        dir.path(),
        &[
            ("RFM-1002", "Line Charge", "95,00"),
            ("RFM-1003", "Patient DOB", "1/5/90"),
            ("RFM-1004", "Units", "1e3"),
            ("RFM-1005", "Claim Total", "7 5.00"),
        ],
    );
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
        serde_json::json!(["RFM-1002", "RFM-1003", "RFM-1004", "RFM-1005"])
    );
    let problems = report["problems"].as_array().unwrap();
    for (claim, field, row, says) in [
        (
            "RFM-1002",
            "lines[1].charge",
            3,
            "is not an amount of money",
        ),
        (
            "RFM-1003",
            "subscriber.birth_date",
            4,
            "is not a valid date",
        ),
        ("RFM-1004", "lines[1].units", 5, "is not a number"),
        ("RFM-1005", "total_charge", 6, "is not an amount of money"),
    ] {
        let p = problems
            .iter()
            .find(|p| p["claim"] == claim && p["field"] == field)
            .unwrap_or_else(|| panic!("{claim} {field}: {problems:?}"));
        assert_eq!(p["rows"]["first"], row, "{p}");
        assert!(p["message"].as_str().unwrap().contains(says), "{p}");
    }
    let shown = String::from_utf8_lossy(&out.stdout);
    for value in ["95,00", "1/5/90", "1e3", "7 5.00"] {
        assert!(!shown.contains(value), "{value} shown: {shown}");
    }
}

/// Regression: a claim map read `45.` (a point with no digits after it,
/// perhaps an amount cut short) as 45, where a payment map refused it. One
/// amount reader serves both sides now: the claim is set aside naming the
/// row and field, never the value, and the other claims are written.
#[test]
fn an_amount_whose_point_has_nothing_after_it_is_set_aside_as_on_the_payer_side() {
    let dir = tempfile::tempdir().unwrap();
    let input = clinic_with_cells(
        dir.path(),
        &[
            ("RFM-1002", "Line Charge", "95."),
            ("RFM-1004", "Claim Total", "$75."),
        ],
    );
    let out_path = dir.path().join("out.837");
    let out = edi_courier(&[
        "translate",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
        "--report",
        dir.path().join("report.json").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(
        report["set_aside"],
        serde_json::json!(["RFM-1002", "RFM-1004"])
    );
    let problems = report["problems"].as_array().unwrap();
    for (claim, field, row) in [
        ("RFM-1002", "lines[1].charge", 3),
        ("RFM-1004", "total_charge", 5),
    ] {
        let p = problems
            .iter()
            .find(|p| p["claim"] == claim && p["field"] == field)
            .unwrap_or_else(|| panic!("{claim} {field}: {problems:?}"));
        assert_eq!(p["rows"]["first"], row, "{p}");
        assert!(
            p["message"]
                .as_str()
                .unwrap()
                .contains("is not an amount of money"),
            "{p}"
        );
    }
    let shown = report.to_string() + &String::from_utf8_lossy(&out.stderr);
    for value in ["95.", "$75."] {
        assert!(!shown.contains(value), "{value} shown: {shown}");
    }
    let x12 = std::fs::read_to_string(&out_path).unwrap();
    for id in ["RFM-1001", "RFM-1003", "RFM-1005"] {
        assert!(x12.contains(&format!("CLM*{id}*")), "{id} written");
    }
    assert!(!x12.contains("CLM*RFM-1002*") && !x12.contains("CLM*RFM-1004*"));
}

/// Regression (found by an independent tester): a UTF-8 export with a BOM,
/// read under a map declaring Windows-1252, was decoded byte by byte as
/// Windows-1252: `NUÑEZ JOSÉ` went out as `NUA'EZ JOSA` (and `O’BRIEN` as
/// `OaEURtmBRIEN`) with only a transliteration warning. The BOM says what
/// the file is: it is read as UTF-8.
#[test]
fn a_utf8_bom_wins_over_a_declared_windows_1252() {
    let dir = tempfile::tempdir().unwrap();
    let map = clinic_map_with(
        dir.path(),
        "delimiter = \",\"",
        "delimiter = \",\"\nencoding = \"windows-1252\"",
    );
    let csv = std::fs::read(root().join("examples/clinic-claims.csv")).unwrap();
    assert!(String::from_utf8_lossy(&csv).contains("NU\u{d1}EZ"));
    let input = dir.path().join("bom.csv");
    std::fs::write(&input, [b"\xEF\xBB\xBF".as_slice(), &csv].concat()).unwrap();
    let out_path = dir.path().join("out.837");
    let out = edi_courier(&[
        "translate",
        "--map",
        map.to_str().unwrap(),
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
        "--quarantine",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let x12 = std::fs::read_to_string(&out_path).unwrap();
    assert!(x12.contains("NM1*IL*1*NUNEZ*JOSE"), "{x12}");
}

/// Regression (found by an independent tester): the shipped hospital map
/// cut BILL_TYPE by position, so `11` went out as type of bill 11 with the
/// default frequency 1, and `1117` as 111 with its last digit dropped. A
/// bill type of another shape now sets the claim aside, naming the field.
#[test]
fn the_hospital_map_sets_aside_a_bill_type_of_the_wrong_length() {
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read_to_string(root().join("examples/hospital-mixed-claims.csv")).unwrap();
    let text: String = csv
        .lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(';').collect();
            match cells[0] {
                "H-7002" => cells[3] = "11",
                "H-7005" => cells[3] = "1317",
                "H-7001" => cells[3] = "0111",
                _ => {}
            }
            cells.join(";") + "\n"
        })
        .collect();
    let input = dir.path().join("export.csv");
    std::fs::write(&input, text).unwrap();
    let out = edi_courier(&[
        "scrub",
        "--map",
        "hospital-mixed",
        input.to_str().unwrap(),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let set_aside: Vec<&str> = report["set_aside"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        set_aside.contains(&"H-7002") && set_aside.contains(&"H-7005"),
        "{report}"
    );
    assert!(
        !set_aside.contains(&"H-7001"),
        "UB-04's 0111 reads as 111: {report}"
    );
    for claim in ["H-7002", "H-7005"] {
        assert!(
            report["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["claim"] == claim
                    && p["field"] == "type_of_bill"
                    && p["message"].as_str().unwrap().contains("regex")),
            "{claim}: {report}"
        );
    }
}

/// The physician-group example as `export.csv` in `dir`, with the Charge
/// cell of each data row (0-based index, claim id) that `charge` gives a
/// value for replaced by it.
fn physician_group_with_charges(
    dir: &Path,
    charge: impl Fn(usize, &str) -> Option<&'static str>,
) -> PathBuf {
    let mut reader = csv::Reader::from_path("examples/physician-group-claims.csv").unwrap();
    let header = reader.headers().unwrap().clone();
    let at = header.iter().position(|h| h == "Charge").unwrap();
    let path = dir.join("export.csv");
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(&header).unwrap();
    for (i, row) in reader.records().enumerate() {
        let mut row: Vec<String> = row.unwrap().iter().map(str::to_owned).collect();
        if let Some(value) = charge(i, &row[0]) {
            row[at] = value.to_owned();
        }
        writer.write_record(&row).unwrap();
    }
    writer.flush().unwrap();
    path
}

/// Found by an independent tester: a `sum` that cannot add a later row's
/// cell was reported on the claim's first row while its message named the
/// right one. The problem's row is now the row of the bad cell.
#[test]
fn a_sum_that_cannot_add_a_cell_names_that_cells_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = physician_group_with_charges(dir.path(), |i, claim| {
        (i == 1).then(|| {
            assert_eq!(claim, "PG-24001", "data row 2 is PG-24001's second line");
            "12,34.50"
        })
    });
    let out = edi_courier(&[
        "scrub",
        "--map",
        "physician-group",
        input.to_str().unwrap(),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["claim"] == "PG-24001" && p["field"] == "total_charge")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(total["rows"]["first"], 2, "{total}");
    assert!(
        total["message"].as_str().unwrap().contains("row 2"),
        "{total}"
    );
}

/// Found by a second round of the independent tester: values that still
/// went out changed. `ı10` (a dotless i) became the diagnosis `I10` through
/// `upper`; `01/05/-1990` read as a signed year; a service date in the year
/// 26 (`0026`); units of twenty digits (SV104 holds 15). Each now sets its
/// claim aside, naming the row and field.
#[test]
fn second_round_values_that_went_out_changed_are_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let input = clinic_with_cells(
        dir.path(),
        &[
            ("RFM-1002", "Dx 1", "\u{131}10"),
            ("RFM-1003", "Patient DOB", "01/05/-1990"),
            ("RFM-1004", "Date of Service", "11/12/0026"),
            ("RFM-1005", "Units", "99999999999999999999"),
        ],
    );
    let (_, report) = scrub_json("clinic-professional", &input);
    assert_eq!(
        report["set_aside"],
        serde_json::json!(["RFM-1002", "RFM-1003", "RFM-1004", "RFM-1005"]),
        "{report}"
    );
    let problems = report["problems"].as_array().unwrap();
    for (claim, field, rule) in [
        ("RFM-1002", "diagnoses", "non-ascii-in-code"),
        ("RFM-1003", "subscriber.birth_date", "map"),
        ("RFM-1004", "lines[1].service_date", "map"),
        ("RFM-1005", "lines[1].units", "units"),
    ] {
        assert!(
            problems
                .iter()
                .any(|p| p["claim"] == claim && p["field"] == field && p["rule"] == rule),
            "{claim} {field} {rule}: {report}"
        );
    }
}

/// A file that starts with a UTF-8 byte order mark says it is UTF-8: under
/// `encoding = "auto"` a row that is not (Windows-1252 bytes after the mark)
/// is refused naming the row and the mark, not read cell by cell as
/// Windows-1252 (found by the tester's second round: the docs said so).
#[test]
fn a_bom_file_with_a_row_that_is_not_utf8_is_refused_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    // A Windows-1252 apostrophe (0x92, not UTF-8) in RFM-1001's first row.
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(text.replacen("WELBY", "O\u{1}BRIEN", 1).bytes().map(|b| {
        if b == 1 {
            0x92
        } else {
            b
        }
    }));
    let input = dir.path().join("bom-cp1252.csv");
    std::fs::write(&input, &bytes).unwrap();
    let (_, report) = scrub_json("clinic-professional", &input);
    let p = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["claim"] == "RFM-1001")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(p["rows"]["first"], 1, "{p}");
    assert!(
        p["message"].as_str().unwrap().contains("byte order mark"),
        "{p}"
    );
}

/// Found by an independent tester on the payer side, and then on the claim
/// side: line charges of 29 digits made the map's `sum` overflow a Decimal
/// (a panic, every claim after it lost), and a charge of 20 digits went
/// out in CLM02 and SV102 (a 5010 amount is at most 99999999.99). The first claim is now set aside
/// for its sum, the second for its amounts, the others go on; a
/// `--quarantine` folder that does not exist yet is made.
#[test]
fn amounts_too_large_to_sum_or_to_write_set_their_claim_aside_and_the_rest_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let input = physician_group_with_charges(dir.path(), |_, claim| match claim {
        "PG-24001" => Some("$50000000000000000000000000000.00"),
        "PG-24002" => Some("$99999999999999999999.99"),
        _ => None,
    });
    let quarantine = dir.path().join("not/yet/there");
    let out = edi_courier(&[
        "translate",
        "--map",
        "physician-group",
        input.to_str().unwrap(),
        "--quarantine",
        quarantine.to_str().unwrap(),
        "--report",
        dir.path().join("report.json").to_str().unwrap(),
        "-o",
        dir.path().join("out.837").to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let problem = |claim: &str, field: &str| {
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["claim"] == claim && p["field"] == field)
            .and_then(|p| p["message"].as_str())
            .unwrap_or_else(|| panic!("{claim} {field}: {report}"))
            .to_owned()
    };
    assert!(problem("PG-24001", "total_charge").contains("too large"));
    assert!(problem("PG-24002", "lines[1].charge").contains("past 99999999.99"));
    assert!(problem("PG-24002", "total_charge").contains("past 99999999.99"));
    let set_aside = report["set_aside"].as_array().unwrap();
    assert!(set_aside.contains(&"PG-24001".into()) && set_aside.contains(&"PG-24002".into()));
    // The rest went out, none of the huge amounts with them.
    let sent = std::fs::read_to_string(dir.path().join("out.837")).unwrap();
    assert!(sent.contains("CLM*PG-24003*"), "{sent}");
    assert!(!sent.contains("99999999999999999999"), "{sent}");
    assert!(quarantine.join("export.rejected.csv").exists());
}

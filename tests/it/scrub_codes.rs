//! Diagnosis and procedure codes as the code sets have them: every
//! ICD-10-CM code's shape is admitted (U07.1 COVID-19 included), and a
//! deployment's own code-set files, named in the partner profile, set aside
//! a well-shaped code that is not in them — without quoting it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use std::path::{Path, PathBuf};

fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The clinic example with its first claim's diagnoses replaced.
fn export(dir: &Path, dx1: &str, dx2: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    let text = text.replace("J45.909,E11.9,", &format!("{dx1},{dx2},"));
    let path = dir.join("export.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn translate(dir: &Path, input: &Path, partner: Option<&Path>) -> (std::process::Output, String) {
    let out_path = dir.join("out.837");
    let mut args = vec![
        "translate",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ];
    if let Some(p) = partner {
        args.extend(["--partner", p.to_str().unwrap()]);
    }
    let out = edi_courier(&args);
    let x12 = std::fs::read_to_string(&out_path).unwrap_or_default();
    (out, x12)
}

#[test]
fn covid_codes_u07_1_and_u09_9_are_accepted_and_sent_without_the_dot() {
    let dir = tempfile::tempdir().unwrap();
    let input = export(dir.path(), "U07.1", "U09.9");
    let (out, x12) = translate(dir.path(), &input, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(x12.contains("HI*ABK:U071*ABF:U099~"), "{x12}");
    let (summary, claims) = read_claims(x12.as_bytes());
    assert!(summary.is_valid());
    assert_eq!(claims.len(), 5);
}

/// A partner profile (the sandbox's) whose `[code_sets]` name our files.
fn profile_with_code_sets(dir: &Path, icd: &str, cpt: &str) -> PathBuf {
    std::fs::write(dir.join("icd10cm.txt"), icd).unwrap();
    std::fs::write(dir.join("cpt.txt"), cpt).unwrap();
    let profile = std::fs::read_to_string(root().join("edi-maps/partners/sandbox.toml")).unwrap()
        + "\n[code_sets]\nicd10cm = \"icd10cm.txt\"\ncpt = \"cpt.txt\"\n";
    let path = dir.join("partner.toml");
    std::fs::write(&path, profile).unwrap();
    path
}

#[test]
fn a_code_missing_from_a_configured_code_set_sets_the_claim_aside_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = export(dir.path(), "U07.1", "U09.9");
    // Every diagnosis of the example but M54.50 (claim RFM-1003's first),
    // in CMS's file shape (code, then description); every CPT but 99395
    // (claim RFM-1004's).
    let icd = "U071 COVID-19\nU099 Post COVID-19 condition, unspecified\nI10 Essential hypertension\nM62830 Muscle spasm of back\nZ0000 General adult exam\nJ029 Acute pharyngitis\n";
    let cpt = "# licensed CPT list\n99214\n94640\n99213\n97110\n";
    let partner = profile_with_code_sets(dir.path(), icd, cpt);
    let (out, x12) = translate(dir.path(), &input, Some(&partner));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out.837.report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        report["set_aside"],
        serde_json::json!(["RFM-1003", "RFM-1004"])
    );
    let problems: Vec<(String, String, String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["rule"] == "code-set")
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_owned(),
                format!("{}-{}", p["rows"]["first"], p["rows"]["last"]),
                p["claim"].as_str().unwrap().to_owned(),
                p["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let file = input.display().to_string();
    assert_eq!(
        problems,
        [
            (
                file.clone(),
                "4-4".to_owned(),
                "RFM-1003".to_owned(),
                "diagnoses[1]".to_owned()
            ),
            (
                file,
                "5-5".to_owned(),
                "RFM-1004".to_owned(),
                "lines[1].procedure.code".to_owned()
            ),
        ]
    );
    // The diagnosis is PHI: neither the report nor the table on stderr quote it.
    let report_text = report.to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for shown in [&report_text, &*stderr] {
        assert!(
            !shown.contains("M5450") && !shown.contains("M54.50"),
            "{shown}"
        );
        assert!(
            shown.contains("icd10cm.txt"),
            "the message names the code set: {shown}"
        );
    }
    // The three others went through.
    assert_eq!(x12.matches("CLM*").count(), 3, "{x12}");
}

#[test]
fn a_code_set_file_that_cannot_be_read_stops_the_run_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let input = export(dir.path(), "U07.1", "U09.9");
    let partner = profile_with_code_sets(dir.path(), "U071\n", "99214\n");
    std::fs::remove_file(dir.path().join("cpt.txt")).unwrap();
    let (out, _) = translate(dir.path(), &input, Some(&partner));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("code_sets.cpt") && stderr.contains("cpt.txt"),
        "{stderr}"
    );
    assert!(!dir.path().join("out.837").exists());
}

//! The claim fields beyond the basics — related causes, accident state and
//! date, onset and initial-treatment dates, admission and discharge hours,
//! visit reasons, DRG, CLIA — are checked before the writer sees them: a
//! value the guides do not allow sets its claim aside with a rule naming
//! the file, rows, claim and field (never the value), and every claim the
//! rules let through is written whole and accepted by pyx12.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use chrono::NaiveDate;
use common::gen::{batch, Rng};
use common::*;
use edi_courier::model::{Admission, Claim, ClaimKind};
use edi_courier::profile::Profile;
use edi_courier::report::Severity;
use edi_courier::scrub::Scrubber;
use std::path::Path;

fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The mixed hospital export with `(account, column, value)` changed on
/// every row of that account.
fn hospital_export(dir: &Path, changes: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let original =
        std::fs::read_to_string(root().join("examples/hospital-mixed-claims.csv")).unwrap();
    let mut lines = original.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let mut out = vec![header.join(";")];
    for line in lines {
        let mut cells: Vec<String> = line.split(';').map(str::to_owned).collect();
        for (account, column, value) in changes {
            if cells[0] == *account {
                let at = header.iter().position(|h| h == column).unwrap();
                cells[at] = (*value).to_owned();
            }
        }
        out.push(cells.join(";"));
    }
    let path = dir.join("hospital.csv");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

/// Translates one export with the hospital-mixed map: the JSON report, its
/// text and the 837's path.
fn translate(dir: &Path, input: &Path) -> (serde_json::Value, String, std::path::PathBuf) {
    let out_path = dir.join("out.837");
    let out = edi_courier(&[
        "translate",
        "--map",
        "hospital-mixed",
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report_text = std::fs::read_to_string(dir.join("out.837.report.json")).unwrap();
    (
        serde_json::from_str(&report_text).unwrap(),
        report_text,
        out_path,
    )
}

#[test]
fn bad_new_fields_set_their_claim_aside_naming_file_rows_claim_field_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let input = hospital_export(
        dir.path(),
        &[
            ("H-7001", "DRG", "28"),
            ("H-7001", "DISCH_TIME", "24:15"),
            // A state with no related cause: the writer would send CLM11 `:::IL`.
            ("H-7003", "ACCIDENT", ""),
            ("H-7004", "CLIA", "14D012345"),
            ("H-7004", "ACCIDENT", "AA,EM,OA"),
            ("H-7007", "ADMIT_TIME", "0975"),
        ],
    );
    let unchanged = dir.path().join("unchanged");
    std::fs::create_dir(&unchanged).unwrap();
    let (baseline, _, _) = translate(&unchanged, &hospital_export(&unchanged, &[]));
    let (report, report_text, out_path) = translate(dir.path(), &input);
    let errors = |report: &serde_json::Value| -> Vec<(String, String, String, String)> {
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["severity"] == "error")
            .map(|p| {
                let rows = &p["rows"];
                (
                    format!("{}-{}", rows["first"], rows["last"]),
                    p["claim"].as_str().unwrap().to_owned(),
                    p["field"].as_str().unwrap().to_owned(),
                    p["rule"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    // The example export sets a few claims aside of its own: only what the
    // changes added counts here.
    let before = errors(&baseline);
    let mut added: Vec<_> = errors(&report)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    added.sort();
    let mut expected: Vec<(String, String, String, String)> = [
        ("1-3", "H-7001", "discharge_hour", "hour"),
        ("1-3", "H-7001", "drg", "drg"),
        ("6-7", "H-7003", "accident_state", "accident-state"),
        ("6-7", "H-7003", "accident_date", "accident-date"),
        ("8-9", "H-7004", "related_causes", "related-cause-count"),
        ("8-9", "H-7004", "clia_number", "clia"),
        ("14-14", "H-7007", "admission.hour", "hour"),
    ]
    .iter()
    .map(|(r, c, f, rule)| {
        (
            r.to_string(),
            c.to_string(),
            f.to_string(),
            rule.to_string(),
        )
    })
    .collect();
    expected.sort();
    assert_eq!(added, expected, "{report_text}");
    assert!(report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["file"] == input.to_str().unwrap()));
    let newly_set_aside: Vec<&serde_json::Value> = report["set_aside"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|id| !baseline["set_aside"].as_array().unwrap().contains(id))
        .collect();
    assert_eq!(newly_set_aside, ["H-7001", "H-7003", "H-7004"]);
    let written = |r: &serde_json::Value| r["claims_accepted"].as_u64().unwrap();
    assert_eq!(written(&baseline) - written(&report), 3);
    for value in ["14D012345", "24:15", "0975", "WHITE", "19550817"] {
        assert!(
            !report_text.contains(value),
            "the report quotes {value}: {report_text}"
        );
    }
    assert_pyx12_valid(&[out_path]);
}

#[test]
fn the_same_export_translated_again_reuses_its_set_aside_copy() {
    let dir = tempfile::tempdir().unwrap();
    let input = hospital_export(dir.path(), &[("H-7001", "DRG", "28")]);
    let quarantine = dir.path().join("rejected");
    std::fs::create_dir(&quarantine).unwrap();
    let run = |input: &Path| {
        let out = edi_courier(&[
            "translate",
            "--map",
            "hospital-mixed",
            input.to_str().unwrap(),
            "-o",
            dir.path().join("out.837").to_str().unwrap(),
            "--quarantine",
            quarantine.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    run(&input);
    run(&input);
    assert_eq!(
        common::workspace::names_in(&quarantine),
        ["hospital.rejected.csv"]
    );
    let other = hospital_export(dir.path(), &[("H-7002", "DRG", "28")]);
    let said = run(&other);
    assert!(said.contains("hospital.rejected.2.csv"), "{said}");
    assert_eq!(
        common::workspace::names_in(&quarantine),
        ["hospital.rejected.2.csv", "hospital.rejected.csv"]
    );
}

/// Sets one of the new fields of `c` to a value drawn from good and bad
/// ones alike.
fn vary(rng: &mut Rng, c: &mut Claim) {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
    let dates = [
        None,
        day(2025, 6, 1),
        day(2026, 10, 31),
        day(2026, 12, 24), // after "today"
        day(1901, 1, 1),   // before any patient's birth
    ];
    let hours = ["0000", "0930", "2359", "2400", "1260", "930"];
    match (c.kind, rng.below(8)) {
        (ClaimKind::Professional, 0) => {
            c.related_causes = rng
                .pick(&[
                    &[][..],
                    &["AA"],
                    &["EM"],
                    &["OA"],
                    &["AA", "EM"],
                    &["EM", "OA"],
                    &["AA", "EM", "OA"],
                    &["XX"],
                ])
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        }
        (ClaimKind::Professional, 1) => {
            c.accident_state = rng
                .pick(&[None, Some("IL"), Some("PR"), Some("ON")])
                .map(str::to_owned)
        }
        (ClaimKind::Professional, 2) => c.accident_date = *rng.pick(&dates),
        (ClaimKind::Professional, 3) => c.onset_date = *rng.pick(&dates),
        (ClaimKind::Professional, 4) => c.initial_treatment_date = *rng.pick(&dates),
        (ClaimKind::Professional, 5) => {
            c.clia_number = rng
                .pick(&[None, Some("05D2345678"), Some("05D234567")])
                .map(str::to_owned)
        }
        (ClaimKind::Professional, 6) => c.referral_number = Some("RF*9".into()),
        (ClaimKind::Professional, _) => c.drg = Some("194".into()),
        (ClaimKind::Institutional, 0 | 1) => {
            let n = rng.below(6) as usize;
            c.visit_reasons = (0..n)
                .map(|_| {
                    rng.pick(&["R079", "I10", "R07.9", "U071", "786.5"])
                        .to_string()
                })
                .collect();
        }
        (ClaimKind::Institutional, 2) => {
            c.discharge_hour = rng.chance(80).then(|| rng.pick(&hours).to_string())
        }
        (ClaimKind::Institutional, 3) => {
            let date = if rng.chance(80) {
                c.statement_from
            } else {
                None
            };
            c.admission = Some(Admission {
                date,
                kind: Some("1".into()),
                source: Some("7".into()),
                hour: Some(rng.pick(&hours).to_string()),
            });
        }
        (ClaimKind::Institutional, 4) => {
            c.drg = rng
                .pick(&[None, Some("001"), Some("19"), Some("1940")])
                .map(str::to_owned)
        }
        (ClaimKind::Institutional, 5) => c.related_causes = vec!["EM".into()],
        (ClaimKind::Institutional, 6) => c.clia_number = Some("05D2345678".into()),
        (ClaimKind::Institutional, _) => c.onset_date = day(2026, 10, 1),
    }
}

/// Every claim the rules let through writes an 837 pyx12 accepts and reads
/// back as it was (nothing dropped on the way); the rest are set aside by a
/// rule on the field that was varied.
#[test]
fn every_claim_that_passes_the_new_rules_writes_a_pyx12_valid_837() {
    let profile = Profile::sandbox().unwrap();
    let scrubber = Scrubber::new(&profile, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
    let mut rng = Rng::new(0x5C2B_F1E1D);
    let mut good = Vec::new();
    let mut set_aside = 0;
    for mut c in batch(42, 300, ClaimKind::Professional, true) {
        if rng.chance(60) {
            vary(&mut rng, &mut c);
        }
        let problems = scrubber.scrub(&mut c, "generated", None);
        if problems.iter().any(|p| p.severity == Severity::Error) {
            set_aside += 1;
        } else {
            good.push(c);
        }
    }
    let with_new_fields = good
        .iter()
        .filter(|c| {
            !c.related_causes.is_empty()
                || c.accident_state.is_some()
                || c.visit_reasons.len() == 3
                || c.admission.as_ref().is_some_and(|a| a.hour.is_some())
                || c.discharge_hour.is_some()
        })
        .count();
    assert!(
        set_aside >= 60 && good.len() >= 150 && with_new_fields >= 40,
        "the variations reach both sides: {} good ({with_new_fields} with the new fields), {set_aside} set aside",
        good.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (n, chunk) in good.chunks(100).enumerate() {
        let bytes = write_837(chunk, None);
        let (summary, back) = read_claims(&bytes);
        assert!(summary.is_valid(), "{:?}", summary.problems);
        // The writer groups each kind in its own set: compare by id.
        let mut back = back;
        back.sort_by(|a, b| a.id.cmp(&b.id));
        let mut sent = chunk.to_vec();
        sent.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(sent.len(), back.len());
        for (a, b) in sent.iter().zip(&back) {
            assert_eq!(a, b, "{} reads back as it was written", a.id);
        }
        let path = dir.path().join(format!("varied-{n}.837"));
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    }
    assert_pyx12_valid(&files);
}

//! A batch whose claims are all bad is reported in full — every claim id in
//! the report, the table and the set-aside copy — though the report's lists
//! are held out of memory; and a report that cannot be held whole (a full
//! disk) is never shown cut.

use crate::common;
use common::*;
use std::path::Path;

/// `examples/clinic-claims.csv` repeated with fresh claim ids (`ID-k`)
/// until it holds at least `claims` claims; every claim's rendering NPI
/// fails its check digit, but in one copy of every `good_every` (0: none).
/// The ids in input order.
fn export(path: &Path, claims: usize, good_every: usize) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    let mut lines = text.lines();
    let head = lines.next().unwrap();
    let npi = head.split(',').position(|c| c == "Rendering NPI").unwrap();
    let body: Vec<&str> = lines.collect();
    let mut out = format!("{head}\n");
    let mut ids = Vec::new();
    let mut k = 0;
    while ids.len() < claims {
        let good = good_every != 0 && k % good_every == 0;
        for row in &body {
            // The example's quoted fields come after the NPI column.
            let (id, rest) = row.split_once(',').unwrap();
            let id = format!("{id}-{k}");
            if ids.last() != Some(&id) {
                ids.push(id.clone());
            }
            let mut cells: Vec<&str> = rest.splitn(npi + 1, ',').collect();
            if !good {
                cells[npi - 1] = "1234567890";
            }
            let rest = cells.join(",");
            out.push_str(&format!("{id},{rest}\n"));
        }
        k += 1;
    }
    std::fs::write(path, out).unwrap();
    ids
}

/// The claim column of a report table (the header row gives where it is).
fn table_claims(table: &str) -> Vec<String> {
    let mut lines = table.lines();
    let head = lines.next().unwrap();
    let at = head.find("claim").unwrap();
    let end = head.find("field").unwrap();
    lines
        .take_while(|l| l.starts_with("error") || l.starts_with("warning"))
        .map(|l| l[at..end].trim_end().to_owned())
        .collect()
}

#[test]
fn a_large_all_bad_batch_is_reported_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.csv");
    // ~20,000 problems: megabytes of report, far past what a report holds
    // in memory (64 KiB a list) before its temporary file.
    let ids = export(&input, 20_000, 0);
    let n = ids.len();
    let out_path = dir.path().join("out.837");
    let report_path = dir.path().join("report.json");
    let out = edi_courier(&[
        "translate",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
        "--report",
        report_path.to_str().unwrap(),
        "--quarantine",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!out_path.exists(), "nothing good, nothing written");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["claims_read"], n);
    assert_eq!(report["claims_set_aside"], n);
    assert_eq!(report["set_aside"], serde_json::json!(ids));
    let problems = report["problems"].as_array().unwrap();
    let npi_errors: Vec<&str> = problems
        .iter()
        .filter(|p| p["rule"] == "npi-check-digit" && p["severity"] == "error")
        .map(|p| p["claim"].as_str().unwrap())
        .collect();
    assert_eq!(npi_errors, ids, "one NPI error per claim, in input order");

    // The table on stderr: every claim, in its column.
    let table = stderr(&out);
    let mut listed = table_claims(&table);
    listed.dedup();
    assert_eq!(listed, ids);
    assert!(table.contains(&format!("{n} claims read, 0 accepted, {n} set aside")));

    // The set-aside copy holds every claim's rows.
    let rejected = std::fs::read_to_string(dir.path().join("export.rejected.csv")).unwrap();
    let mut copied: Vec<&str> = rejected
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    copied.dedup();
    assert_eq!(copied, ids);

    // scrub says the same: its JSON is the report's bytes (without the
    // quarantined file), its table the same claims.
    let json = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(json.status.code(), Some(1), "{}", stderr(&json));
    let scrubbed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(scrubbed["set_aside"], report["set_aside"]);
    assert_eq!(scrubbed["problems"], report["problems"]);
    let text = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
    ]);
    let mut listed = table_claims(&String::from_utf8(text.stdout).unwrap());
    listed.dedup();
    assert_eq!(listed, ids);
}

#[test]
fn a_report_that_cannot_be_held_whole_fails_the_run_and_shows_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.csv");
    // Mostly bad, some good: an 837 would be written.
    export(&input, 3_000, 10);
    let fault = [("EDI_COURIER_FAULT", "enospc-report")];
    for args in [vec!["scrub", "--json"], vec!["scrub"]] {
        let mut args = args;
        args.extend(["--map", "clinic-professional", input.to_str().unwrap()]);
        let out = edi_courier_with(&args, &fault);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}: a cut report was shown");
        let err = stderr(&out);
        assert!(
            err.contains("could not be kept in a temporary file")
                && err.contains("No space left on device"),
            "{err}"
        );
    }
    let out_path = dir.path().join("out.837");
    let out = edi_courier_with(
        &[
            "translate",
            "--map",
            "clinic-professional",
            input.to_str().unwrap(),
            "-o",
            out_path.to_str().unwrap(),
            "--quarantine",
            dir.path().to_str().unwrap(),
        ],
        &fault,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("could not be kept in a temporary file"));
    // No 837 without its report, and no report.
    assert!(!out_path.exists());
    assert!(!dir.path().join("out.837.report.json").exists());

    // A small report stays in memory: the same fault does not touch it.
    let small = dir.path().join("small.csv");
    export(&small, 20, 0);
    let out = edi_courier_with(
        &[
            "scrub",
            "--map",
            "clinic-professional",
            small.to_str().unwrap(),
            "--json",
        ],
        &fault,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["claims_set_aside"], 20);
}

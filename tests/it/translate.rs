//! The translate, scrub and read commands as a billing office uses them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[test]
fn every_example_export_translates_to_837s_pyx12_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("clinic-professional", "examples/clinic-claims.csv"),
        ("hospital-institutional", "examples/hospital-claims.csv"),
        ("", "examples/claims.json"),
    ];
    let mut outputs = Vec::new();
    for (map, input) in cases {
        let out_path = dir.path().join(format!(
            "{}.837",
            Path::new(input).file_stem().unwrap().to_string_lossy()
        ));
        let out_s = out_path.to_str().unwrap();
        let mut args = vec!["translate", input, "-o", out_s];
        if !map.is_empty() {
            args.extend(["--map", map]);
        }
        let out = edi_courier(&args);
        assert_eq!(out.status.code(), Some(0), "{input}: {}", stderr(&out));
        let (summary, claims) = read_claims(&std::fs::read(&out_path).unwrap());
        assert!(summary.is_valid());
        assert!(!claims.is_empty());
        outputs.push(out_path);
    }
    assert_pyx12_valid(&outputs);
}

#[test]
fn the_clinic_example_matches_its_golden_837() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("clinic.837");
    let out = edi_courier(&[
        "translate",
        "--map",
        "clinic-professional",
        "examples/clinic-claims.csv",
        "--control-number",
        "42",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let golden = std::fs::read_to_string(fixture("golden/clinic-professional.837")).unwrap();
    let ours = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(ours.replace('~', "~\n"), golden.replace('~', "~\n"));
    // José Nuñez went through as ASCII, and the report says so without naming him.
    assert!(ours.contains("NUNEZ*JOSE"));
    let report = std::fs::read_to_string(dir.path().join("clinic.837.report.json")).unwrap();
    assert!(report.contains("non-ascii-transliterated"));
    assert!(!report.contains("NUNEZ") && !report.contains("JOSE"));
}

const HEADER: &str = "Claim ID,Claim Total,Place of Service,Claim Frequency,Original Payer Claim No,Prior Auth,Dx 1,Dx 2,Dx 3,Dx 4,Rendering Last,Rendering First,Rendering NPI,Member ID,Patient Last,Patient First,Patient DOB,Patient Sex,Group Number,Plan Type,Patient Address,Patient City,Patient State,Patient ZIP,Payer Name,Payer ID,CPT,Mod 1,Mod 2,Line Charge,Units,Date of Service,Dx Pointers,Line ID";

/// One claim of two lines in the clinic export's shape, with `fault` applied.
fn clinic_rows(n: usize, fault: Option<&str>) -> String {
    let id = format!("C{n:05}");
    let mut total = "$150.00";
    let mut npi = "1987654328";
    let mut dob = "03/14/1961";
    let mut dos2 = "11/03/2026";
    let mut cpt = "99214";
    let mut pointers = "1,2";
    let mut member = format!("M{n:08}");
    let mut pos = "Office";
    let mut dx1 = "J45.909";
    match fault {
        Some("total") => total = "$151.00",
        Some("npi") => npi = "1987654321",
        Some("dob") => dob = "02/30/1961",
        Some("future") => dos2 = "12/24/2026",
        Some("cpt") => cpt = "9921",
        Some("pointer") => pointers = "1,3",
        Some("member") => member.clear(),
        Some("pos") => pos = "Moon Base",
        Some("icd") => dx1 = "401.9",
        Some("dos") => dos2 = "13/01/2026",
        _ => {}
    }
    let mut s = String::new();
    for (line, (cpt, charge, dos)) in [(cpt, "$100.00", "11/03/2026"), ("94640", "$50.00", dos2)]
        .iter()
        .enumerate()
    {
        writeln!(
            s,
            "{id},{total},{pos},1,,,{dx1},E11.9,,,WELBY,MARCUS,{npi},{member},DOE,JANE,{dob},Female,GRP1,Commercial,12 ELM ST,SPRINGFIELD,IL,62704,ACME HEALTH PLAN,ACME01,{cpt},,,{charge},1,{dos},\"{pointers}\",{id}-{}",
            line + 1
        )
        .unwrap();
    }
    s
}

const FAULTS: [(&str, &str, &str); 10] = [
    ("total", "total_charge", "total-charge"),
    ("npi", "rendering_provider.npi", "npi-check-digit"),
    ("dob", "subscriber.birth_date", "map"),
    ("future", "lines[2].service_date", "date-future"),
    ("cpt", "lines[1].procedure.code", "procedure-code"),
    (
        "pointer",
        "lines[1].diagnosis_pointers",
        "diagnosis-pointer",
    ),
    ("member", "subscriber", "model"),
    ("pos", "place_of_service", "translate"),
    ("icd", "diagnoses[1]", "icd10"),
    ("dos", "lines[2].service_date", "map"),
];

#[test]
fn a_thousand_claims_with_ten_bad_ones_give_990_good_claims_and_a_report_naming_the_ten() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.csv");
    let mut csv = format!("{HEADER}\n");
    let mut bad = Vec::new();
    for n in 1..=1000 {
        let fault = (n % 100 == 37).then(|| FAULTS[n / 100]);
        if let Some((_, field, rule)) = fault {
            // Rows are data rows (the header is not counted): claim n's two
            // rows are 2n-1 and 2n.
            bad.push((format!("C{n:05}"), 2 * n as u64 - 1, field, rule));
        }
        csv.push_str(&clinic_rows(n, fault.map(|f| f.0)));
    }
    std::fs::write(&input, &csv).unwrap();
    let before = file_bytes(&input);
    let out_path = dir.path().join("claims.837");
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
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "some claims were set aside: {}",
        stderr(&out)
    );
    assert_eq!(file_bytes(&input), before, "the input file is untouched");

    let (summary, claims) = read_claims(&std::fs::read(&out_path).unwrap());
    assert!(summary.is_valid(), "{:?}", summary.problems);
    assert_eq!(claims.len(), 990);
    let bad_ids: Vec<&str> = bad.iter().map(|b| b.0.as_str()).collect();
    assert!(claims.iter().all(|c| !bad_ids.contains(&c.id.as_str())));
    assert_pyx12_valid(std::slice::from_ref(&out_path));

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(report["claims_read"], 1000);
    assert_eq!(report["claims_accepted"], 990);
    assert_eq!(report["claims_set_aside"], 10);
    assert_eq!(report["set_aside"], serde_json::json!(bad_ids));
    let problems = report["problems"].as_array().unwrap();
    for (id, row, field, rule) in &bad {
        let found = problems.iter().any(|p| {
            p["claim"] == *id.as_str()
                && p["field"] == *field
                && p["rule"] == *rule
                && p["rows"]["first"]
                    .as_u64()
                    .is_some_and(|first| first == *row || first == row + 1)
        });
        assert!(found, "{id} ({field}, {rule}) not reported: {problems:#?}");
    }
    // The ten come back as they came in, ready to fix and resubmit: same
    // header, their rows only, readable by the same map.
    let rejected = dir.path().join("export.rejected.csv");
    let text = std::fs::read_to_string(&rejected).unwrap();
    assert_eq!(text.lines().next().unwrap(), HEADER);
    assert_eq!(text.lines().count(), 1 + 2 * 10);
    assert_eq!(
        report["quarantined"],
        serde_json::json!([rejected.to_str().unwrap()])
    );
    let again = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        rejected.to_str().unwrap(),
        "--json",
    ]);
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["set_aside"], serde_json::json!(bad_ids));

    // The readable table on stderr names them too, and no patient data.
    let table = stderr(&out);
    for (id, ..) in &bad {
        assert!(table.contains(id.as_str()), "{id} missing from the table");
    }
    assert!(
        !table.contains("DOE") && !table.contains("1961"),
        "PHI in the report table"
    );
}

#[test]
fn scrub_exit_codes_say_clean_rejected_or_could_not_run() {
    let clean = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        "examples/clinic-claims.csv",
    ]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    assert!(
        String::from_utf8_lossy(&clean.stdout).contains("5 claims read, 5 accepted, 0 set aside")
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!(
            "{HEADER}\n{}{}",
            clinic_rows(1, None),
            clinic_rows(2, Some("npi"))
        ),
    )
    .unwrap();
    let rejected = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        bad.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(rejected.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&rejected.stdout).unwrap();
    assert_eq!(report["set_aside"], serde_json::json!(["C00002"]));

    let missing = edi_courier(&[
        "scrub",
        "--map",
        "no-such-map",
        "examples/clinic-claims.csv",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no-such-map"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_file_the_map_does_not_fit_is_reported_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.csv");
    std::fs::write(&wrong, "Claim ID,Amount\nX1,10\n").unwrap();
    let out_path = dir.path().join("out.837");
    let out = edi_courier(&[
        "translate",
        "--map",
        "clinic-professional",
        wrong.to_str().unwrap(),
        "examples/clinic-claims.csv",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    // The refused file is a part of the run not done: 2, as `submit` ends
    // with an export left in the outbox; the rest still goes on.
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("wrong.csv") && err.contains("Claim Total"),
        "{err}"
    );
    let (_, claims) = read_claims(&std::fs::read(&out_path).unwrap());
    assert_eq!(claims.len(), 5);
}

#[test]
fn rows_of_one_claim_that_are_not_together_are_set_aside_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("split.csv");
    let one = clinic_rows(1, None);
    let mut lines = one.lines();
    let (first, second) = (lines.next().unwrap(), lines.next().unwrap());
    std::fs::write(
        &input,
        format!("{HEADER}\n{first}\n{}{second}\n", clinic_rows(2, None)),
    )
    .unwrap();
    let out = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["rule"].as_str())
        .collect();
    assert!(rules.contains(&"rows-together"), "{rules:?}");
    assert_eq!(report["claims_accepted"], 1, "C00002 is fine");
}

/// The batch's claim ids and keys are kept in memory only up to a limit,
/// then in sorted runs on disk (`map/seen.rs`). With a limit of 16 (a
/// `test-hooks` build), a repeat of a claim seen hundreds of claims earlier,
/// in another file or split apart in the same one, is still caught, and the
/// report is the one the in-memory check gives.
#[test]
fn repeats_far_apart_are_caught_when_the_seen_ids_spill_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a.csv");
    let second = dir.path().join("b.csv");
    let mut a = format!("{HEADER}\n");
    for n in 1..=300 {
        a.push_str(&clinic_rows(n, None));
    }
    // Claim 7's first line again, far from the rest of its rows.
    a.push_str(clinic_rows(7, None).lines().next().unwrap());
    a.push('\n');
    std::fs::write(&first, a).unwrap();
    let mut b = format!("{HEADER}\n");
    for n in [1, 150, 301, 299] {
        b.push_str(&clinic_rows(n, None));
    }
    std::fs::write(&second, b).unwrap();
    let run = |limit: Option<&str>| {
        let limit: Vec<(&str, &str)> = limit
            .map(|l| ("EDI_COURIER_TEST_SEEN_LIMIT", l))
            .into_iter()
            .collect();
        let out = edi_courier_with(
            &[
                "scrub",
                "--map",
                "clinic-professional",
                first.to_str().unwrap(),
                second.to_str().unwrap(),
                "--json",
            ],
            &limit,
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let spilled = run(Some("16"));
    let problems: Vec<(String, String)> = spilled["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["rule"].as_str().unwrap().to_owned(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let rule_count = |rule: &str| problems.iter().filter(|(r, _)| r == rule).count();
    assert_eq!(rule_count("rows-together"), 1, "{problems:?}");
    assert_eq!(rule_count("duplicate-claim"), 3, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|(r, m)| r == "duplicate-claim" && m.contains("a.csv row 299-300")),
        "claim 150's first rows are named: {problems:?}"
    );
    // 300 + 1 in a.csv (the stray row is a claim of its own, set aside),
    // 4 in b.csv of which three repeat ids of a.csv: 300 + 1 accepted.
    assert_eq!(spilled["claims_read"], 305);
    assert_eq!(spilled["claims_accepted"], 301);
    assert_eq!(spilled, run(None), "the same report without spilling");
}

/// Regression: `-o` or `--report` naming an input replaced the export with
/// the 837 or the report.
#[test]
fn an_output_that_is_an_input_is_refused_and_the_export_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.csv");
    let text = format!("{HEADER}\n{}", clinic_rows(1, None));
    std::fs::write(&input, &text).unwrap();
    // The same file under another name, too.
    let alias = dir.path().join("alias.csv");
    std::fs::hard_link(&input, &alias).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let out837 = path(&dir.path().join("out.837"));
    for args in [
        vec!["-o".to_owned(), path(&input)],
        vec!["-o".to_owned(), path(&alias)],
        vec![
            "-o".to_owned(),
            out837.clone(),
            "--report".to_owned(),
            path(&input),
        ],
    ] {
        let mut all = vec!["translate", "--map", "clinic-professional"];
        let input_path = path(&input);
        all.push(&input_path);
        all.extend(args.iter().map(String::as_str));
        let out = edi_courier(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("is also an input"),
            "{}",
            stderr(&out)
        );
        assert_eq!(std::fs::read_to_string(&input).unwrap(), text, "{args:?}");
    }
    assert!(!dir.path().join("out.837").exists());
}

/// Regression: a value missing from a translate table was quoted when the
/// field held codes, but a row whose cells are shifted puts a birth date or
/// an address into a code column.
#[test]
fn a_value_missing_from_a_translate_table_is_described_not_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("shifted.csv");
    let rows = clinic_rows(1, None).replace("Commercial", "07/22/1948")
        + &clinic_rows(2, Some("pos")).replace("Moon Base", "48 OAK AVE");
    std::fs::write(&input, format!("{HEADER}\n{rows}")).unwrap();
    let out = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    for phi in ["07/22/1948", "1948", "OAK"] {
        assert!(!said.contains(phi), "{phi} in {said}");
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["rule"] == "translate")
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("Plan Type")
            && m.contains("10 characters: digits, other characters; it looks like a date")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("10 characters: letters, digits, spaces") && !m.contains("date")),
        "{messages:?}"
    );
}

/// Regression: with a key of two columns, the cells were joined by U+001F,
/// so ("C00001\u{1f}X", member) and ("C00001", "X\u{1f}" + member) made one
/// key: two claims were merged into one and the second claim vanished.
#[test]
fn a_separator_character_inside_a_key_cell_does_not_merge_two_claims() {
    let dir = tempfile::tempdir().unwrap();
    let map = std::fs::read_to_string(root().join("edi-maps/clinic-professional.toml")).unwrap();
    assert!(
        map.contains("group_by = [\"Claim ID\"]"),
        "the map's key changed"
    );
    let map = map.replace(
        "group_by = [\"Claim ID\"]",
        "group_by = [\"Claim ID\", \"Member ID\"]",
    );
    let map_path = dir.path().join("two-keys.toml");
    std::fs::write(&map_path, map).unwrap();
    // One line each: claim 1's first line under two crafted keys.
    let line = clinic_rows(1, None).lines().next().unwrap().to_owned();
    let member = "M00000001";
    let a = line
        .replacen("C00001,", "C00001\u{1f}X,", 1)
        .replace("$150.00", "$100.00");
    let b = line
        .replace(member, &format!("X\u{1f}{member}"))
        .replace("$150.00", "$100.00");
    let input = dir.path().join("keys.csv");
    std::fs::write(&input, format!("{HEADER}\n{a}\n{b}\n")).unwrap();
    let report = scrub_report(map_path.to_str().unwrap(), &input);
    assert_eq!(report["claims_read"], 2, "{report}");
}

/// Regression: the rows-together problem named only the first row of the
/// claim it set aside (rows 5-6 reported as row 5).
#[test]
fn rows_that_come_back_later_are_reported_with_all_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("again.csv");
    let one = clinic_rows(1, None);
    std::fs::write(
        &input,
        format!("{HEADER}\n{one}{}{one}", clinic_rows(2, None)),
    )
    .unwrap();
    let report = scrub_report("clinic-professional", &input);
    let split: Vec<&serde_json::Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["rule"] == "rows-together")
        .collect();
    assert_eq!(split.len(), 1, "{report}");
    assert_eq!(split[0]["rows"], serde_json::json!({"first": 5, "last": 6}));
}

/// Regression: an 80-character last name went into NM103 (at most 60) as it
/// was, making an 837 the payer's front end rejects whole. Names and ids over
/// their element's limit set the claim aside; a note is cut, with a warning.
#[test]
fn texts_longer_than_their_element_are_set_aside_or_cut_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let long_name = "Q".repeat(80);
    let rows = clinic_rows(1, None).replace("DOE", &long_name) + &clinic_rows(2, None);
    let input = dir.path().join("long.csv");
    std::fs::write(&input, format!("{HEADER}\n{rows}")).unwrap();
    let out837 = dir.path().join("out.837");
    let out = edi_courier(&[
        "translate",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
        "-o",
        out837.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(!said.contains(&long_name), "{said}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out.837.report.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["set_aside"],
        serde_json::json!(["C00001"]),
        "{report}"
    );
    let length: Vec<&serde_json::Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["rule"] == "length")
        .collect();
    assert_eq!(length.len(), 1, "{report}");
    assert_eq!(length[0]["field"], "subscriber.last_name");
    assert_eq!(
        length[0]["message"],
        "is 80 characters, longer than the 60 NM103 holds"
    );
    let edi = std::fs::read_to_string(&out837).unwrap();
    assert!(!edi.contains(&long_name));
    assert!(edi.contains("CLM*C00002*"), "the other claim goes on");
}

/// Regression: a run that could read nothing at all (every input missing,
/// or not fitting the map) exited 1, "claims set aside", with 0 set aside.
#[test]
fn a_run_that_can_read_no_input_at_all_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "a;b;c\n1;2;3\n").unwrap();
    for inputs in [vec![&missing], vec![&other], vec![&missing, &other]] {
        for command in ["scrub", "translate"] {
            let mut args = vec![command, "--map", "clinic-professional"];
            args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
            let out = edi_courier(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        }
    }
    // One good input beside a missing one: the good one is read, and the
    // run still ends 2 (the missing one's claims were neither read nor set
    // aside: not "done with rejected items").
    let out = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        "examples/clinic-claims.csv",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("5 claims read, 5 accepted, 0 set aside"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn read_reports_counts_and_exit_codes() {
    let ok = edi_courier(&["read", "tests/fixtures/x12/835/emedny-pharmacy.edi"]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout)
        .contains("46 segments, 1 interchange(s), 1 group(s), sets: 1×835, claims: 3"));
    let broken = edi_courier(&["read", "tests/fixtures/x12/837p/imsweb-multiple-st.edi"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stdout).contains("GE01 says 1, but 2 were counted"));
    let json = edi_courier(&[
        "read",
        "--json",
        "tests/fixtures/x12/837i/tr3-ppo-repriced.edi",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["837"]["claims"][0]["id"], "456DFH43");
    assert_eq!(v["837"]["claims"][0]["lines"].as_array().unwrap().len(), 2);
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"not x12 at all").unwrap();
    let bad = edi_courier(&["read", garbage.path().to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("does not start with an ISA"));
}

#[test]
fn canonical_json_read_back_translates_again_to_the_same_claims() {
    let dir = tempfile::tempdir().unwrap();
    let json = edi_courier(&[
        "read",
        "--json",
        "tests/fixtures/golden/clinic-professional.837",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let canonical: PathBuf = dir.path().join("claims.json");
    std::fs::write(&canonical, serde_json::to_string(&v["837"]).unwrap()).unwrap();
    let out_path = dir.path().join("again.837");
    let out = edi_courier(&[
        "translate",
        canonical.to_str().unwrap(),
        "--control-number",
        "42",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, a) = read_claims(&std::fs::read(fixture("golden/clinic-professional.837")).unwrap());
    let (_, b) = read_claims(&std::fs::read(&out_path).unwrap());
    assert_eq!(a, b);
}

#[test]
fn a_partner_profile_brings_its_envelope_delimiters_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("acme.837");
    let out = edi_courier(&[
        "translate",
        "--map",
        "clinic-professional",
        "--partner",
        "acme-health",
        "examples/clinic-claims.csv",
        "-o",
        out_path.to_str().unwrap(),
        "--report",
        dir.path().join("r.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    // The Medicare patient's member id is not Acme-shaped, and the telehealth
    // modifier 95 is not on Acme's list.
    assert_eq!(report["set_aside"], serde_json::json!(["RFM-1002"]));
    let fields: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["rule"] == "partner:acme-health")
        .map(|p| p["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        [
            "subscriber.member_id",
            "subscriber.group_number",
            "lines[1].procedure.modifiers[1]"
        ]
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        text.starts_with("ISA*00*          *00*          *30*123456789      *ZZ*ACMEHP         *")
    );
    assert!(
        text.contains("*P*>~\nGS*HC*RFM123456789*ACMEHP*"),
        "usage P, '>' components, a line break per segment"
    );
    assert!(text.contains("SV1*HC>99214>25*150*UN*1***1>2~\n"));
    assert!(text.contains("NM1*41*2*RIVERSIDE FAMILY MEDICINE*****46*RFM00042~\nPER*IC*BILLING OFFICE*TE*2175550100*EM*billing@riverside.example~"));
    let (summary, claims) = read_claims(text.as_bytes());
    assert!(summary.is_valid());
    assert_eq!(claims.len(), 4);
    assert_pyx12_valid(&[out_path]);
}

#[test]
fn a_partner_profile_overrides_the_parties_a_canonical_file_names() {
    let dir = tempfile::tempdir().unwrap();
    let preview = dir.path().join("preview.837");
    let out = edi_courier(&[
        "translate",
        "examples/claims.json",
        "-o",
        preview.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&preview)
        .unwrap()
        .contains("NM1*41*2*RIVERSIDE BILLING*****46*RFMSUB01~"));
    let acme = dir.path().join("acme.837");
    let out = edi_courier(&[
        "translate",
        "examples/claims.json",
        "--partner",
        "acme-health",
        "-o",
        acme.to_str().unwrap(),
    ]);
    // Acme's rules set the Medicare claim aside; the others go out under Acme's ids.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&acme)
        .unwrap()
        .contains("NM1*41*2*RIVERSIDE FAMILY MEDICINE*****46*RFM00042~"));
}

#[test]
fn set_aside_json_claims_come_back_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("examples/claims.json").unwrap()).unwrap();
    doc["claims"][1]["billing_provider"]["npi"] = "1234567890".into();
    let input = dir.path().join("batch.json");
    std::fs::write(&input, serde_json::to_string(&doc).unwrap()).unwrap();
    let out_path = dir.path().join("out.837");
    let out = edi_courier(&[
        "translate",
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let back: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("batch.rejected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(back["claims"].as_array().unwrap().len(), 1);
    assert_eq!(back["claims"][0], doc["claims"][1]);
    let (_, claims) = read_claims(&std::fs::read(&out_path).unwrap());
    assert_eq!(claims.len(), doc["claims"].as_array().unwrap().len() - 1);
}

/// The report of `scrub --json` on one file, without the file's path.
fn scrub_report(map: &str, input: &Path) -> serde_json::Value {
    let out = edi_courier(&["scrub", "--map", map, input.to_str().unwrap(), "--json"]);
    let mut report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for p in report["problems"].as_array_mut().unwrap() {
        p.as_object_mut().unwrap().remove("file");
    }
    report
}

#[test]
fn one_export_in_lf_and_in_crlf_gives_the_same_report_with_data_row_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = format!("{HEADER}\n");
    for (n, fault) in [(1, None), (2, Some("npi")), (3, None), (4, Some("dob"))] {
        csv.push_str(&clinic_rows(n, fault));
    }
    let lf = dir.path().join("lf.csv");
    let crlf = dir.path().join("crlf.csv");
    std::fs::write(&lf, &csv).unwrap();
    std::fs::write(&crlf, csv.replace('\n', "\r\n")).unwrap();
    let a = scrub_report("clinic-professional", &lf);
    assert_eq!(a, scrub_report("clinic-professional", &crlf));
    assert_eq!(a["set_aside"], serde_json::json!(["C00002", "C00004"]));
    // Claim 4's rows are data rows 7 and 8 (the header is not a data row).
    let dob = a["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["claim"] == "C00004")
        .unwrap();
    assert_eq!(dob["rows"], serde_json::json!({"first": 7, "last": 7}));
}

#[test]
fn a_copy_cut_mid_row_or_mid_quote_is_flagged_with_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let whole = format!("{HEADER}\n{}{}", clinic_rows(1, None), clinic_rows(2, None));
    // Cut in claim 2's second row (data row 4): once after "Units", once
    // inside the quoted diagnosis pointers.
    let row4 = whole.rfind("C00002,").unwrap();
    let cut_row = &whole[..whole.rfind(",1,11/03/2026,").unwrap() + 2];
    let cut_quote = &whole[..whole.rfind("\"1,").unwrap() + 2];
    assert!(cut_row.len() > row4 && cut_quote.len() > row4);
    for (name, text, what) in [
        ("row.csv", cut_row, "cells where the header has"),
        ("quote.csv", cut_quote, "never closed"),
    ] {
        let input = dir.path().join(name);
        std::fs::write(&input, text).unwrap();
        let report = scrub_report("clinic-professional", &input);
        assert_eq!(report["set_aside"], serde_json::json!(["C00002"]), "{name}");
        assert_eq!(report["claims_accepted"], 1, "{name}");
        let csv = report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["rule"] == "csv")
            .unwrap_or_else(|| panic!("{name}: {report:#}"));
        assert_eq!(csv["rows"]["first"], 4, "{name}");
        assert!(
            csv["message"].as_str().unwrap().contains(what),
            "{name}: {csv}"
        );
    }
}

#[test]
fn the_rejected_csv_holds_the_set_aside_rows_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    // A BOM, CRLF, a quoted cell holding a quote and a line break, and a
    // last row with no line ending.
    let quoted = "\"12 ELM ST \"\"REAR\"\"\r\nUNIT 2\"";
    let rows: Vec<String> = [(1, None), (2, Some("npi")), (3, None), (4, Some("cpt"))]
        .iter()
        .map(|(n, f)| {
            clinic_rows(*n, *f)
                .replace("12 ELM ST", quoted)
                .replace('\n', "\r\n")
        })
        .collect();
    let mut text = format!("\u{feff}{HEADER}\r\n{}", rows.concat());
    text.truncate(text.len() - 2);
    let input = dir.path().join("export.csv");
    std::fs::write(&input, &text).unwrap();
    let translate = || {
        edi_courier(&[
            "translate",
            "--map",
            "clinic-professional",
            input.to_str().unwrap(),
            "-o",
            dir.path().join("out.837").to_str().unwrap(),
        ])
    };
    let out = translate();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rejected = std::fs::read(dir.path().join("export.rejected.csv")).unwrap();
    // The last row had no line ending in the input, and has none here.
    let mut expected = format!("\u{feff}{HEADER}\r\n{}{}", rows[1], rows[3]);
    expected.truncate(expected.len() - 2);
    assert_eq!(String::from_utf8(rejected).unwrap(), expected);
    let rejected_copies = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("rejected"))
            .collect();
        names.sort();
        names
    };
    // The same export read again: its copy is already waiting, no second.
    assert_eq!(translate().status.code(), Some(1));
    assert_eq!(rejected_copies(), ["export.rejected.csv"]);
    // Other set-aside rows under the same name: a copy of their own, the
    // unfixed one kept. Its last row (claim 3's, set aside now too) ends
    // without a line ending, after rows that had one.
    let changed = text.replace("99214", "9921");
    std::fs::write(&input, &changed).unwrap();
    assert_eq!(translate().status.code(), Some(1));
    assert_eq!(
        rejected_copies(),
        ["export.rejected.2.csv", "export.rejected.csv"]
    );
    let second = std::fs::read(dir.path().join("export.rejected.2.csv")).unwrap();
    assert_eq!(String::from_utf8(second).unwrap(), changed);
}

#[test]
fn an_export_declared_windows_1252_is_read_as_windows_1252() {
    let dir = tempfile::tempdir().unwrap();
    let map = std::fs::read_to_string("edi-maps/clinic-professional.toml")
        .unwrap()
        .replace(
            "format = \"csv\"",
            "format = \"csv\"\nencoding = \"windows-1252\"",
        );
    let map_path = dir.path().join("cp1252.toml");
    std::fs::write(&map_path, map).unwrap();
    let mut bytes = format!("{HEADER}\n").into_bytes();
    // O’BRIEN with the right single quote of Windows-1252 (0x92).
    bytes.extend(
        clinic_rows(1, None)
            .replace("DOE,JANE", "O\u{0}BRIEN,JANE")
            .bytes()
            .map(|b| if b == 0 { 0x92 } else { b }),
    );
    let input = dir.path().join("export.csv");
    std::fs::write(&input, &bytes).unwrap();
    let out_path = dir.path().join("out.837");
    let out = edi_courier(&[
        "translate",
        "--map",
        map_path.to_str().unwrap(),
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(text.contains("*O'BRIEN*JANE"), "{text}");
}

#[test]
fn a_model_error_on_a_line_counts_lines_from_one_as_the_scrubber_does() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.csv");
    // The second line of claim 1 has no charge: the model refuses it.
    let rows = clinic_rows(1, None).replace("$50.00", "");
    std::fs::write(&input, format!("{HEADER}\n{rows}")).unwrap();
    let report = scrub_report("clinic-professional", &input);
    let p = &report["problems"][0];
    assert_eq!(p["rule"], "model", "{report:#}");
    assert_eq!(p["field"], "lines[2]", "{report:#}");
    assert!(p["message"].as_str().unwrap().contains("charge"), "{p}");
}

#[test]
fn a_warning_every_claim_carries_is_listed_a_hundred_times_then_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = format!("{HEADER}\n");
    for n in 1..=130 {
        // Two non-ASCII names per claim: one transliteration warning each.
        csv.push_str(&clinic_rows(n, None).replace("DOE,JANE", "DOÉ,JOSÉ"));
    }
    csv.push_str(&clinic_rows(131, Some("npi")));
    let input = dir.path().join("export.csv");
    std::fs::write(&input, csv).unwrap();
    let report = scrub_report("clinic-professional", &input);
    let problems = report["problems"].as_array().unwrap();
    let listed = problems
        .iter()
        .filter(|p| p["rule"] == "non-ascii-transliterated")
        .count();
    assert_eq!(listed, 100);
    assert_eq!(
        report["warnings_not_listed"],
        serde_json::json!({"non-ascii-transliterated": 160})
    );
    // Errors are always listed, however many warnings came before.
    assert!(problems
        .iter()
        .any(|p| p["claim"] == "C00131" && p["rule"] == "npi-check-digit"));
    assert_eq!(report["claims_accepted"], 130);
    let out = edi_courier(&[
        "scrub",
        "--map",
        "clinic-professional",
        input.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("160 more non-ascii-transliterated warnings (counted, not listed)"));
}

/// `translate` of canonical JSON `text` in `dir`: the run, its stderr and
/// where the 837 went.
fn translate_json(dir: &Path, text: &str) -> (std::process::Output, String, PathBuf) {
    let input = dir.join("batch.json");
    std::fs::write(&input, text).unwrap();
    let out_path = dir.join("out.837");
    let out = edi_courier(&[
        "translate",
        input.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, said, out_path)
}

#[test]
fn json_claim_amounts_written_loosely_set_their_claim_aside_naming_the_member() {
    let dir = tempfile::tempdir().unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("examples/claims.json").unwrap()).unwrap();
    // Decimal reads each of these as 185 or 150; none is how an amount is
    // written, and a JSON float goes through binary floating point.
    for (member, written) in [
        ("total_charge", serde_json::json!("185.")),
        ("total_charge", serde_json::json!("1.85e2")),
        ("total_charge", serde_json::json!("+185")),
        ("total_charge", serde_json::json!(185.0)),
        ("lines[0].charge", serde_json::json!(150.0)),
    ] {
        let mut doc = doc.clone();
        match member {
            "total_charge" => doc["claims"][0]["total_charge"] = written.clone(),
            _ => doc["claims"][0]["lines"][0]["charge"] = written.clone(),
        }
        let (out, said, out_path) =
            translate_json(dir.path(), &serde_json::to_string(&doc).unwrap());
        assert_eq!(out.status.code(), Some(1), "{written}: {said}");
        assert!(
            said.contains(&format!("{member} is not written as a plain amount")),
            "{written}: {said}"
        );
        let (_, claims) = read_claims(&std::fs::read(&out_path).unwrap());
        assert_eq!(
            claims.len(),
            doc["claims"].as_array().unwrap().len() - 1,
            "{written}: the rest are written"
        );
    }
}

#[test]
fn a_member_given_twice_in_json_is_refused_not_read_as_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("examples/claims.json").unwrap();
    // The first claim says its charge twice: serde would keep the second.
    let twice = text.replacen(
        "\"total_charge\": \"185\",",
        "\"total_charge\": \"185\", \"total_charge\": \"999\",",
        1,
    );
    assert_ne!(twice, text);
    let (out, said, out_path) = translate_json(dir.path(), &twice);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("duplicate-member") && said.contains("total_charge is given twice"),
        "{said}"
    );
    let written = std::fs::read_to_string(&out_path).unwrap();
    assert!(!written.contains("*999*"), "the second charge went out");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (_, claims) = read_claims(written.as_bytes());
    assert_eq!(claims.len(), doc["claims"].as_array().unwrap().len() - 1);
    // Payment data the same: the file is refused, naming the member.
    let payments = std::fs::read_to_string("examples/payments.json").unwrap();
    let first = payments.find("\"trace\"").unwrap();
    let mut twice = payments.clone();
    twice.insert_str(first, "\"trace\": \"OTHER\", ");
    let input = dir.path().join("pay.json");
    std::fs::write(&input, &twice).unwrap();
    let out = edi_courier(&[
        "translate",
        "--payments",
        input.to_str().unwrap(),
        "-o",
        dir.path().join("out.835").to_str().unwrap(),
    ]);
    let said = common::said(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("trace is given twice"), "{said}");
}

/// A 837 of 2,000 generated claims (many of `read --json`'s batches).
fn big_837(dir: &Path) -> PathBuf {
    let claims = gen::batch(11, 2000, edi_courier::model::ClaimKind::Professional, true);
    let out = dir.join("big.837");
    std::fs::write(&out, write_837(&claims, None)).unwrap();
    out
}

/// The ids of the claims `read --json` listed, in order.
fn listed_ids(v: &serde_json::Value) -> Vec<&str> {
    v["837"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

/// `read --json` reads on one thread and writes on another: every claim
/// comes out once, in the file's order, as the library reads them.
#[test]
fn read_json_gives_every_claim_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_837(dir.path());
    let (_, claims) = read_claims(&std::fs::read(&file).unwrap());
    let out = edi_courier(&["read", "--json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = listed_ids(&v);
    let want: Vec<&str> = claims.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, want);
    assert_eq!(v["claims"], 2000);
}

/// Its output closed early (`| head`), `read --json` ends, exit 0, rather
/// than waiting on the thread still reading (regression: it said `Broken
/// pipe` and ended 2); a file cut short gives the claims before the cut,
/// the problems, and exit 1.
#[test]
fn read_json_ends_when_its_output_closes_and_reports_a_cut_file() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let file = big_837(dir.path());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_edi-courier"))
        .args(["read", "--json", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 4096];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The pipe is closed here, mid-output.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));

    let whole = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.837");
    std::fs::write(&cut, &whole[..whole.len() * 2 / 3]).unwrap();
    let out = edi_courier(&["read", "--json", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let claims = v["837"]["claims"].as_array().unwrap();
    let read = claims.len();
    assert!(read > 1000 && read < 2000, "{read} claims before the cut");
    assert!(
        v["problems"].to_string().contains("is not closed"),
        "{}",
        v["problems"]
    );
    // The claim the file ends inside is not shown as whole: said, by its
    // id, and left out of the list and the count (regression: it was
    // listed with the lines and codes before the cut only).
    let text = String::from_utf8_lossy(&whole[..whole.len() * 2 / 3]).into_owned();
    let whole_segments = text.rsplit_once('~').unwrap().0;
    let cut_id = whole_segments
        .rsplit('~')
        .map(str::trim_start)
        .find_map(|seg| seg.strip_prefix("CLM*"))
        .unwrap()
        .split('*')
        .next()
        .unwrap();
    assert!(
        claims.iter().all(|c| c["id"] != cut_id),
        "claim {cut_id}, cut short, is listed"
    );
    assert_eq!(v["claims"], read as u64, "{}", v["problems"]);
    assert!(
        v["problems"]
            .to_string()
            .contains(&format!("claim {cut_id} is cut short")),
        "{}",
        v["problems"]
    );
}

/// Regression: an interchange cut inside a claim and followed by a whole
/// one (a file put together from a transfer that was cut, then resent):
/// the next ISA dropped the open claim without a word. It is named cut
/// short where the next interchange begins; every claim of the whole
/// interchange is listed.
#[test]
fn read_names_a_claim_cut_short_by_the_next_interchange() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(big_837(dir.path())).unwrap();
    let text = String::from_utf8(whole.clone()).unwrap();
    // Just after the 500th claim's CLM and the segment after it.
    let clm = text.match_indices("CLM*").nth(499).unwrap().0;
    let after_clm = clm + text[clm..].find('~').unwrap() + 1;
    let cut = after_clm + text[after_clm..].find('~').unwrap() + 1;
    let cut_id = text[clm + 4..].split('*').next().unwrap().to_owned();
    let mut joined = whole[..cut].to_vec();
    joined.extend_from_slice(&whole);
    let file = dir.path().join("joined.837");
    std::fs::write(&file, &joined).unwrap();

    let out = edi_courier(&["read", "--json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = listed_ids(&v);
    // 499 whole claims before the cut, then all 2,000 again.
    assert_eq!(ids.len(), 499 + 2000, "{}", v["problems"]);
    assert_eq!(ids.iter().filter(|id| **id == cut_id).count(), 1);
    assert_eq!(v["claims"], 2499);
    let problems = v["problems"].to_string();
    assert!(
        problems.contains(&format!("claim {cut_id} is cut short"))
            && problems.contains("at segment"),
        "{problems}"
    );
}

/// Regression: an 837 cut at any byte never shows a cut claim as whole,
/// and never drops a claim without a word. Cut inside the CLM segment
/// (`~CLM*ID*`), or with one byte of the next segment's id left (`~H`,
/// which stops the reading), the open claim was counted but neither listed
/// nor named. Every claim whose CLM segment the cut kept whole is now
/// either listed or named cut short, and the count is what is listed.
#[test]
fn an_837_cut_at_any_byte_lists_or_names_every_claim_it_holds() {
    let claims = gen::batch(12, 6, edi_courier::model::ClaimKind::Professional, true);
    let whole = write_837(&claims, Some(4));
    let text = String::from_utf8(whole.clone()).unwrap();
    for cut in 1..whole.len() {
        let kept = &text[..cut];
        let (summary, listed) = read_claims(kept.as_bytes());
        // Claims whose CLM segment is whole in what was kept.
        let begun: Vec<&str> = kept
            .split('~')
            .rev()
            .skip(1) // the segment the cut runs through
            .filter_map(|seg| seg.trim_start().strip_prefix("CLM*"))
            .filter_map(|rest| rest.split('*').nth(1).map(|_| rest))
            .map(|rest| rest.split('*').next().unwrap())
            .collect();
        let problems: Vec<String> = summary.problems.iter().map(|p| p.to_string()).collect();
        for id in &begun {
            let shown = listed.iter().any(|c| c.id == *id);
            let named = problems
                .iter()
                .any(|p| p.contains(&format!("claim {id} is cut short")));
            assert!(
                shown ^ named,
                "cut at {cut}: claim {id} shown {shown}, named {named}: {problems:?}"
            );
        }
        assert_eq!(
            summary.claims,
            listed.len() as u64,
            "cut at {cut}: {problems:?}"
        );
        if cut + 1 < whole.len() {
            assert!(!summary.is_valid(), "cut at {cut} reads as whole");
        }
    }
}

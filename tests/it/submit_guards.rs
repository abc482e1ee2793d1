//! What `submit` promises about an export it cannot send whole or that
//! repeats what was sent: an export that does not read as claims stays in
//! the outbox, untouched, refused with why (never sealed away as processed
//! with zero claims); a claim this partner already holds from us is not
//! sent again as a new original (`already-sent`); an export still being
//! written is left for a later run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::root;
use common::sshd::Sshd;
use common::tools::age_decrypt;
use common::workspace::{names_in, Workspace};

fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn clinic_csv() -> String {
    std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap()
}

/// Every CLM01 the partner's server holds, over every file there.
fn clm01s_at_partner(ws: &Workspace) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names_in(&ws.partner.outbound_dir) {
        let opened = age_decrypt(&ws.partner_identity, &ws.partner.outbound_dir.join(&name));
        let x12 = String::from_utf8_lossy(&opened).into_owned();
        for seg in x12.split('~') {
            if let Some(rest) = seg.trim().strip_prefix("CLM*") {
                ids.push(rest.split('*').next().unwrap().to_owned());
            }
        }
    }
    ids.sort();
    ids
}

/// Regression (found by an independent tester): an export whose header
/// lacks the map's columns (the physician-group example dropped where the
/// partner's map is clinic-professional) was taken as an export of zero
/// claims — sealed away into `processed/`, its plain file removed, its file
/// `abandoned` with no reason, no alert. Now it is refused with the
/// header's message before any claim is read and before any control number
/// is used, and stays in the outbox byte for byte, run after run.
#[test]
fn an_export_whose_header_lacks_the_maps_columns_stays_in_the_outbox() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let export = ws.drop_export(
        &root().join("examples/physician-group-claims.csv"),
        "pg.csv",
    );
    let bytes = std::fs::read(&export).unwrap();
    for attempt in 1..=2 {
        let out = ws.submit(&[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "attempt {attempt}: {}",
            text(&out)
        );
        let said = text(&out);
        assert!(
            said.contains("needs columns the header does not have")
                && said.contains("nothing of this export is sent"),
            "attempt {attempt}: {said}"
        );
        assert_eq!(std::fs::read(&export).unwrap(), bytes, "untouched");
        assert_eq!(names_in(&ws.outbox()), ["pg.csv"], "attempt {attempt}");
        assert!(
            ws.out_files().is_empty(),
            "no file named, no control number used"
        );
        assert!(names_in(&ws.partner.outbound_dir).is_empty());
    }
}

/// An export that reads but holds no claim (a header and no rows) is
/// never taken as sent: it stays in the outbox, refused; the next runs
/// remember the refusal and use no control number for it.
#[test]
fn an_export_with_no_claims_is_refused_not_processed() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let header = clinic_csv().lines().next().unwrap().to_owned() + "\n";
    std::fs::write(ws.outbox().join("empty.csv"), &header).unwrap();
    for attempt in 1..=2 {
        let out = ws.submit(&[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "attempt {attempt}: {}",
            text(&out)
        );
        let said = text(&out);
        assert!(said.contains("holds no claim"), "attempt {attempt}: {said}");
        assert_eq!(said.contains("refused before"), attempt > 1, "{said}");
        assert_eq!(names_in(&ws.outbox()), ["empty.csv"], "attempt {attempt}");
        assert_eq!(
            ws.out_files(),
            [("abandoned".to_owned(), 1)],
            "attempt {attempt}: one file named, by the first attempt only"
        );
    }
}

/// Regression (found by an independent tester): an export picked up while
/// it was still being written sent its first claims; the whole file, next
/// run, sent them again. Now a new original (frequency 1) under a CLM01
/// this partner holds from us, delivered and not rejected, is set aside
/// (`already-sent`, naming the earlier file) into `rejected/`; the rest of
/// the export goes. After a rejection (here a 999 R recorded on one claim)
/// it goes again, and so does a replacement (frequency 7).
#[test]
fn a_claim_already_delivered_is_not_sent_again_as_an_original() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let csv = clinic_csv();
    std::fs::write(ws.outbox().join("first.csv"), &csv).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let first_file = names_in(&ws.partner.outbound_dir);
    assert_eq!(first_file.len(), 1);

    // The whole export again, with new claims after: only the new go.
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let more: Vec<String> = lines[1..]
        .iter()
        .map(|l| l.replace("RFM-", "NEW-"))
        .collect();
    lines.extend(more);
    std::fs::write(ws.outbox().join("whole.csv"), lines.join("\n") + "\n").unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(1), "set aside: {}", text(&out));
    let said = text(&out);
    assert!(said.contains("already-sent"), "{said}");
    assert!(
        said.contains(&first_file[0]),
        "names the earlier file: {said}"
    );
    // Each original once; RFM-1005, a replacement (frequency 7) in the
    // example, goes again as it should.
    let at_partner = clm01s_at_partner(&ws);
    let mut once = at_partner.clone();
    once.dedup();
    assert_eq!(once.len(), 10, "{at_partner:?}");
    assert_eq!(at_partner.len(), 11, "{at_partner:?}");
    assert_eq!(
        at_partner.iter().filter(|id| *id == "RFM-1005").count(),
        2,
        "{at_partner:?}"
    );
    let rejected = names_in(&ws.outbox().join("rejected"));
    assert_eq!(rejected, ["whole.rejected.csv"]);
    let kept = std::fs::read_to_string(ws.outbox().join("rejected/whole.rejected.csv")).unwrap();
    assert!(
        kept.contains("RFM-1001") && !kept.contains("NEW-"),
        "{kept}"
    );

    // RFM-1002 rejected by a 999; RFM-1003 resent as a replacement.
    common::with_ledger_pool(&ws.ledger_url, async |pool| {
        sqlx::query("UPDATE claims SET status = 'rejected_999' WHERE claim_id = 'RFM-1002'")
            .execute(pool)
            .await
            .unwrap();
    });
    let header = csv.lines().next().unwrap();
    let again: Vec<String> = csv
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("RFM-1002,") || l.starts_with("RFM-1003,"))
        .map(|l| {
            if l.starts_with("RFM-1003,") {
                // Frequency 7 with the payer's claim number.
                let mut cells: Vec<&str> = l.split(',').collect();
                cells[3] = "7";
                cells[4] = "PCN1003";
                cells.join(",")
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(again.len() >= 2, "{again:?}");
    std::fs::write(
        ws.outbox().join("fixed.csv"),
        format!("{header}\n{}\n", again.join("\n")),
    )
    .unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let at_partner = clm01s_at_partner(&ws);
    assert_eq!(
        at_partner.iter().filter(|id| *id == "RFM-1002").count(),
        2,
        "{at_partner:?}"
    );
    assert_eq!(
        at_partner.iter().filter(|id| *id == "RFM-1003").count(),
        2,
        "{at_partner:?}"
    );
}

/// The partner's map becomes the clinic map with its `id` field read as
/// `id` says (written into the workspace, named by path in the config).
fn use_clinic_map_with_id(ws: &Workspace, name: &str, id: &str) {
    let map = std::fs::read_to_string(root().join("edi-maps/clinic-professional.toml"))
        .unwrap()
        .replace("id = \"Claim ID\"", id);
    assert!(map.contains(id), "{map}");
    let path = ws.path(&format!("{name}.toml"));
    std::fs::write(&path, map).unwrap();
    let config = std::fs::read_to_string(&ws.config).unwrap();
    let mapped = regex::Regex::new(r#"(?m)^map = ".*"$"#)
        .unwrap()
        .replace(&config, format!("map = \"{}\"", path.display()).as_str())
        .into_owned();
    assert_ne!(mapped, config);
    std::fs::write(&ws.config, mapped).unwrap();
}

/// The clinic export with `from` in its rows replaced by `to` (the claim
/// ids, and the line ids made of them).
fn clinic_with_ids(from: &str, to: &str) -> String {
    let csv = clinic_csv();
    let mut lines = csv.lines();
    let header = lines.next().unwrap().to_owned();
    let rows: Vec<String> = lines.map(|l| l.replace(from, to)).collect();
    format!("{header}\n{}\n", rows.join("\n"))
}

/// `submit`'s already-sent pre-read must find the CLM01 the claim will
/// carry, however the export writes the id. Map steps (`upper`, `strip`)
/// and the scrubber's trim give the same CLM01 in the pre-read as in the
/// claim written (the same field reader), so `r.f.m-1001 ` under
/// `upper`/`strip = "."` is found as `RFM-1001`. Regression: an id typed
/// `decimal` (`01001` is CLM01 `1001`) was not looked up at all — the
/// pre-read kept text and integer ids only — so a claim already delivered
/// went again as a new original.
#[test]
fn the_already_sent_check_looks_up_the_clm01_the_claim_will_carry() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    use_clinic_map_with_id(
        &ws,
        "upper",
        "id = { column = \"Claim ID\", upper = true, strip = \".\" }",
    );
    std::fs::write(ws.outbox().join("first.csv"), clinic_csv()).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(clm01s_at_partner(&ws).len(), 5);
    // The same claims, their ids written otherwise: the same CLM01s.
    std::fs::write(
        ws.outbox().join("again.csv"),
        clinic_with_ids("RFM-", " r.f.m-"),
    )
    .unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(1), "set aside: {}", text(&out));
    let said = text(&out);
    assert!(said.contains("already-sent"), "{said}");
    // Only RFM-1005, a replacement (frequency 7), goes again.
    let at_partner = clm01s_at_partner(&ws);
    assert_eq!(at_partner.len(), 6, "{at_partner:?}");
    assert_eq!(
        at_partner.iter().filter(|id| *id == "RFM-1005").count(),
        2,
        "{at_partner:?}"
    );

    // Ids typed as decimals: `1001` is delivered, then `01001`, CLM01 1001.
    use_clinic_map_with_id(
        &ws,
        "decimal",
        "id = { column = \"Claim ID\", type = \"decimal\" }",
    );
    std::fs::write(ws.outbox().join("numbers.csv"), clinic_with_ids("RFM-", "")).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        clm01s_at_partner(&ws)
            .iter()
            .filter(|id| *id == "1001")
            .count(),
        1
    );
    std::fs::write(ws.outbox().join("padded.csv"), clinic_with_ids("RFM-", "0")).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(1), "set aside: {}", text(&out));
    assert!(text(&out).contains("already-sent"), "{}", text(&out));
    let at_partner = clm01s_at_partner(&ws);
    for id in ["1001", "1002", "1003", "1004"] {
        assert_eq!(
            at_partner.iter().filter(|c| *c == id).count(),
            1,
            "{id} once: {at_partner:?}"
        );
    }
    assert_eq!(
        at_partner.iter().filter(|c| *c == "1005").count(),
        2,
        "the replacement goes: {at_partner:?}"
    );
}

/// Regression (found by an independent tester): an export the practice
/// system was still writing was picked up half-written. Now an outbox
/// export changed less than `export_settle_secs` ago is left for a later
/// run (said in the output, nothing used for it), and picked up once it
/// holds still.
#[test]
fn an_export_still_changing_is_left_for_a_later_run() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let config = std::fs::read_to_string(&ws.config).unwrap();
    let settling = config.replace("export_settle_secs = 0", "export_settle_secs = 3");
    assert_ne!(config, settling);
    std::fs::write(&ws.config, settling).unwrap();
    std::fs::write(ws.outbox().join("clinic.csv"), clinic_csv()).unwrap();
    let written = std::time::Instant::now();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        written.elapsed() < std::time::Duration::from_secs(3),
        "the first run came within the settle time"
    );
    assert!(text(&out).contains("not picked up yet"), "{}", text(&out));
    assert!(names_in(&ws.partner.outbound_dir).is_empty());
    assert!(
        ws.out_files().is_empty(),
        "nothing named, no control number"
    );
    assert_eq!(names_in(&ws.outbox()), ["clinic.csv"]);

    std::thread::sleep(std::time::Duration::from_millis(3200).saturating_sub(written.elapsed()));
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(names_in(&ws.partner.outbound_dir).len(), 1);
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
}

/// The partner's server is dialled from the start of a run that has
/// exports, while they are read: a run whose only export is refused (it
/// holds no claim) says just that, as before — no connection fault, no
/// attempt on any file — though the partner cannot be reached, and the
/// refusal is the same on the next run.
#[test]
fn an_export_refused_while_the_partner_is_unreachable_reports_only_the_refusal() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let mut away = ws.partner.clone();
    away.port = common::sshd::free_port();
    away.attempts = 1;
    ws.write_config(&away, &ws.user.clone());
    let header = clinic_csv().lines().next().unwrap().to_owned() + "\n";
    std::fs::write(ws.outbox().join("empty.csv"), &header).unwrap();
    for attempt in 1..=2 {
        let out = ws.submit(&[]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "attempt {attempt}: {said}");
        assert!(said.contains("holds no claim"), "attempt {attempt}: {said}");
        assert!(
            !said.contains(&away.port.to_string()),
            "attempt {attempt}: no connection fault is reported: {said}"
        );
        assert_eq!(names_in(&ws.outbox()), ["empty.csv"], "attempt {attempt}");
        assert_eq!(ws.out_files(), [("abandoned".to_owned(), 1)], "{said}");
    }
}

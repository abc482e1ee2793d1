//! Faults on the way to the partner, each against a real OpenSSH sshd:
//! a clear error, a recorded failed attempt, nothing lost — and the next
//! run, once the fault is gone, delivers exactly once. Then `kill -9` at
//! every step of the outbound state machine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;

use common::proxy::Fault;
use common::sshd::{free_port, Sshd};
use common::tools::age_decrypt;
use common::workspace::{names_in, Workspace};
use common::{root, said};

const FINAL: &str = "EDICOURIER_20261120_000000001.x12.age";

/// The details of the ledger's events of this kind (a file's steps: no
/// PHI), oldest first.
fn events(ws: &Workspace, kind: &str) -> Vec<String> {
    common::with_ledger_pool(&ws.ledger_url, async |pool| {
        sqlx::query_scalar("SELECT detail FROM events WHERE kind = $1 ORDER BY id")
            .bind(kind)
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

/// Runs submit expecting it to fail with `message`, leaving the claims
/// queued and the partner's folder without any final file.
fn fails_with(ws: &Workspace, message: &str) {
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains(message),
        "expected {message:?}:\n{}",
        said(&out)
    );
    let finals: Vec<String> = names_in(&ws.partner.outbound_dir)
        .into_iter()
        .filter(|n| !n.ends_with(".part"))
        .collect();
    assert!(
        finals.is_empty() || finals == ["theirs"],
        "nothing delivered: {finals:?}"
    );
    assert_eq!(ws.claim_statuses(), [("queued".to_owned(), 5)]);
    let status = String::from_utf8_lossy(&ws.run(&["status"], &[]).stdout).into_owned();
    assert!(
        status.contains("last error:") && status.contains(message),
        "status shows the failed attempt:\n{status}"
    );
}

/// The next run delivers the one file, once.
fn then_delivers(ws: &Workspace) {
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(said(&out).contains("delivered to acme"), "{}", said(&out));
    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote, [FINAL], "one file, under its final name");
    let opened = age_decrypt(&ws.partner_identity, &ws.partner.outbound_dir.join(FINAL));
    assert_eq!(String::from_utf8_lossy(&opened).matches("CLM*").count(), 5);
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
}

fn workspace_with_export(sshd: &Sshd) -> Workspace {
    let ws = Workspace::new(sshd);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    ws
}

#[test]
fn wrong_host_key_sends_nothing_until_the_pin_matches() {
    let sshd = Sshd::start();
    let mut ws = workspace_with_export(&sshd);
    let good = ws.partner.clone();
    ws.partner.host_key = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    ws.write_config(&ws.partner.clone(), &sshd.user);
    fails_with(&ws, "matches none of the pinned keys");
    let out = ws.submit(&[]);
    assert!(
        said(&out).contains(&sshd.fingerprint),
        "names the key it saw:\n{}",
        said(&out)
    );
    ws.partner = good;
    ws.write_config(&ws.partner.clone(), &sshd.user);
    then_delivers(&ws);
}

#[test]
fn refused_login_then_accepted() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let other = tempfile::tempdir().unwrap();
    common::tools::ssh_key(other.path(), "other");
    sshd.authorize_only(&other.path().join("other.pub"));
    fails_with(&ws, "login refused");
    sshd.authorize_only(&sshd.client_key.with_extension("pub"));
    then_delivers(&ws);
}

#[test]
fn unreachable_host_is_retried_then_reached() {
    let sshd = Sshd::start();
    let mut ws = workspace_with_export(&sshd);
    let good = ws.partner.clone();
    ws.partner.port = free_port();
    ws.write_config(&ws.partner.clone(), &sshd.user);
    fails_with(&ws, "cannot connect");
    let out = ws.submit(&[]);
    assert!(
        said(&out).contains("gave up after 2 tries"),
        "{}",
        said(&out)
    );
    ws.partner = good;
    ws.write_config(&ws.partner.clone(), &sshd.user);
    then_delivers(&ws);
}

/// Two exports for a partner that cannot be reached: the temporary name of
/// the first is tried while its claims are recorded; the second is not
/// (the run does not wait on an unreachable host once per export), and both
/// files wait, queued, for the next run.
#[test]
fn an_unreachable_host_is_tried_once_per_run_before_delivery() {
    let sshd = Sshd::start();
    let mut ws = workspace_with_export(&sshd);
    let other = ws.path("other.csv");
    let csv = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    std::fs::write(&other, csv.replace("RFM-1", "RFM-3")).unwrap();
    ws.drop_export(&other, "other.csv");
    ws.partner.port = free_port();
    ws.write_config(&ws.partner.clone(), &sshd.user);
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert_eq!(ws.claim_statuses(), [("queued".to_owned(), 10)]);
    assert_eq!(events(&ws, "uploading").len(), 1, "tried ahead once");
}

#[test]
fn missing_remote_folder_then_created() {
    let sshd = Sshd::start();
    let mut ws = workspace_with_export(&sshd);
    let missing = sshd.dir.path().join("remote/not-yet");
    ws.partner.outbound_dir = missing.clone();
    ws.write_config(&ws.partner.clone(), &sshd.user);
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains(&missing.display().to_string()) && said(&out).contains("No such file"),
        "{}",
        said(&out)
    );
    std::fs::create_dir_all(&missing).unwrap();
    then_delivers(&ws);
}

#[test]
fn a_taken_final_name_is_never_overwritten() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let theirs = ws.partner.outbound_dir.join(FINAL);
    std::fs::write(&theirs, "their file").unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("already exists; it was not overwritten"),
        "{}",
        said(&out)
    );
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "their file");
    assert_eq!(ws.claim_statuses(), [("queued".to_owned(), 5)]);
    // The partner clears the clash; the verified upload is renamed, not re-sent.
    std::fs::remove_file(&theirs).unwrap();
    then_delivers(&ws);
}

#[test]
fn a_full_spool_loses_nothing() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let out = ws.submit(&[("EDI_COURIER_FAULT", "enospc-spool")]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("No space left on device"),
        "{}",
        said(&out)
    );
    assert_eq!(
        names_in(&ws.outbox()),
        ["clinic.csv"],
        "the export waits in the outbox"
    );
    assert!(
        names_in(&ws.path("spool/out/acme")).is_empty(),
        "no partial spool file"
    );
    assert!(names_in(&ws.partner.outbound_dir).is_empty());
    // The burnt ISA13 1 is not reused: the delivered file carries 2.
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(
        names_in(&ws.partner.outbound_dir),
        ["EDICOURIER_20261120_000000002.x12.age"]
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
}

#[test]
fn a_connection_dropped_mid_upload_is_resumed_whole() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    ws.big_export(7, 2000);
    let good = ws.behind_proxy(&sshd, 512 * 1024, Fault::Cut);
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    // Regression (an independent tester): a partner reached, then cut off
    // mid-upload, was reported "not reached".
    assert!(
        said(&out).contains("acme: connection lost while sending: "),
        "{}",
        said(&out)
    );
    let finals: Vec<String> = names_in(&ws.partner.outbound_dir)
        .into_iter()
        .filter(|n| !n.ends_with(".part"))
        .collect();
    assert!(
        finals.is_empty(),
        "a cut upload is never renamed: {finals:?}"
    );
    let queued: i64 = ws.claim_statuses().iter().map(|(_, n)| n).sum();
    assert!(queued > 1000, "{queued}");

    ws.partner = good;
    ws.write_config(&ws.partner.clone(), &sshd.user);
    let out = ws.submit(&[]);
    assert!(said(&out).contains("delivered to acme"), "{}", said(&out));
    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote, [FINAL]);
    let opened = age_decrypt(&ws.partner_identity, &ws.partner.outbound_dir.join(FINAL));
    assert_eq!(
        String::from_utf8_lossy(&opened).matches("CLM*").count() as i64,
        queued
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), queued)]);
}

/// Every step of the outbound state machine, killed there by SIGKILL, then
/// run again: every claim Sent exactly once, one file per interchange on
/// the server, no temporary file left, the export processed once.
#[test]
fn kill_9_at_every_step_then_a_normal_run_sends_each_claim_once() {
    let sshd = Sshd::start();
    for step in [
        "picked-up",
        "sealed",
        "spooled",
        "retire-sealed",
        "archived",
        "moved",
        "uploading",
        "uploaded",
        "verified",
        "renamed",
    ] {
        let mut ws = workspace_with_export(&sshd);
        ws.partner.outbound_dir = sshd.folder(&format!("in-{step}"));
        ws.write_config(&ws.partner.clone(), &sshd.user);
        let killed = ws.submit(&[("EDI_COURIER_FAULT", step)]);
        assert_eq!(
            killed.status.code(),
            None,
            "{step}: killed by a signal\n{}",
            said(&killed)
        );

        let out = ws.submit(&[]);
        assert_eq!(out.status.code(), Some(0), "{step}: {}", said(&out));
        let remote = names_in(&ws.partner.outbound_dir);
        assert_eq!(
            remote.len(),
            1,
            "{step}: one file, no leftovers: {remote:?}"
        );
        assert!(!remote[0].ends_with(".part"), "{step}: {remote:?}");
        let opened = age_decrypt(
            &ws.partner_identity,
            &ws.partner.outbound_dir.join(&remote[0]),
        );
        let opened = String::from_utf8_lossy(&opened).into_owned();
        assert_eq!(opened.matches("CLM*").count(), 5, "{step}");
        let isa13 = &opened[90..99];
        assert!(
            remote[0].contains(isa13),
            "{step}: the name carries the ISA13 {isa13}"
        );
        assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)], "{step}");
        assert!(
            names_in(&ws.outbox()).iter().all(|n| n == "processed"),
            "{step}"
        );
        assert_eq!(
            names_in(&ws.outbox().join("processed")),
            ["clinic.csv.age"],
            "{step}"
        );
        assert!(
            names_in(&ws.path("spool/out/acme")).is_empty(),
            "{step}: spool emptied"
        );

        // And a third run has nothing left to do.
        let again = ws.submit(&[]);
        assert_eq!(again.status.code(), Some(0), "{step}: {}", said(&again));
        assert_eq!(names_in(&ws.partner.outbound_dir).len(), 1, "{step}");
        assert!(Path::new(&ws.partner.outbound_dir).exists());
    }
}

/// The export's sealed copy for `processed/` is written while the file is
/// delivered, and put in place after. When that fails (here a full disk),
/// the file is still delivered once, the failure is reported, the export
/// waits in the outbox (nothing lost), and the next run retires it — once.
///
/// Regression (found by an independent tester): the report (and its mail)
/// said of such an export that nothing of it was sent and the next run
/// tries it again — while every claim had been delivered. Now it says what
/// happened, from the step that failed: delivered, not archived.
#[test]
fn a_retirement_that_fails_after_delivery_is_reported_and_finished_next_run() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let out = ws.submit(&[("EDI_COURIER_FAULT", "enospc-processed")]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("5 claim(s) delivered in")
            && said(&out).contains("its sealed copy into processed/ failed")
            && said(&out).contains("No space left")
            && !said(&out).contains("not picked up"),
        "{}",
        said(&out)
    );
    assert_eq!(names_in(&ws.partner.outbound_dir), [FINAL], "delivered");
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
    assert!(
        names_in(&ws.outbox()).contains(&"clinic.csv".to_owned()),
        "the export waits in the outbox: {:?}",
        names_in(&ws.outbox())
    );
    assert!(
        names_in(&ws.outbox().join("processed")).is_empty(),
        "no copy, no temporary file left"
    );

    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(
        names_in(&ws.partner.outbound_dir),
        [FINAL],
        "not sent again"
    );
    assert!(names_in(&ws.outbox()).iter().all(|n| n == "processed"));
    assert_eq!(names_in(&ws.outbox().join("processed")), ["clinic.csv.age"]);
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
}

/// A drop of bytes submitted before is not sent again but retired into
/// `processed/` — with its copy's name on record before the copy is renamed
/// into place: killed between that rename and the drop's removal, or just
/// after the removal, the next run finishes with the copy it made (no
/// second copy), and a later drop of the same bytes gets a copy of its own.
#[test]
fn a_duplicate_killed_while_it_is_retired_is_archived_once() {
    let sshd = Sshd::start();
    for step in ["archived", "duplicate-moved"] {
        let mut ws = workspace_with_export(&sshd);
        ws.partner.outbound_dir = sshd.folder(&format!("dup-{step}"));
        ws.write_config(&ws.partner.clone(), &sshd.user);
        let first = ws.submit(&[]);
        assert_eq!(first.status.code(), Some(0), "{step}: {}", said(&first));
        ws.drop_export(&root().join("examples/clinic-claims.csv"), "again.csv");
        let killed = ws.submit(&[("EDI_COURIER_FAULT", step)]);
        assert_eq!(killed.status.code(), None, "{step}: {}", said(&killed));
        assert_eq!(
            names_in(&ws.outbox().join("processed")),
            ["again.csv.age", "clinic.csv.age"],
            "{step}: the window is real"
        );

        let out = ws.submit(&[]);
        assert_eq!(out.status.code(), Some(0), "{step}: {}", said(&out));
        assert!(
            names_in(&ws.outbox()).iter().all(|n| n == "processed"),
            "{step}: {:?}",
            names_in(&ws.outbox())
        );
        assert_eq!(
            names_in(&ws.outbox().join("processed")),
            ["again.csv.age", "clinic.csv.age"],
            "{step}: archived once"
        );
        assert_eq!(names_in(&ws.partner.outbound_dir), [FINAL], "{step}");
        assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)], "{step}");

        // The same bytes once more: a copy of their own.
        ws.drop_export(&root().join("examples/clinic-claims.csv"), "again.csv");
        let out = ws.submit(&[]);
        assert_eq!(out.status.code(), Some(0), "{step}: {}", said(&out));
        assert_eq!(
            names_in(&ws.outbox().join("processed")),
            ["again.csv.1.age", "again.csv.age", "clinic.csv.age"],
            "{step}"
        );
        let audit = ws.run(&["audit", "verify"], &[]);
        assert_eq!(audit.status.code(), Some(0), "{step}: {}", said(&audit));
    }
}

/// `upload = "rename"` writes the temporary name while the claims are
/// recorded. Killed after that upload and before the `spooled` commit, the
/// partner's server holds the whole `NAME.part` of a file the ledger never
/// spooled. The next run abandons the file, removes its temporary name (on
/// record, once), never renames it, and sends each claim once in a new file.
#[test]
fn killed_after_the_upload_ahead_and_before_its_claims_were_recorded() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let killed = ws.submit(&[("EDI_COURIER_FAULT", "ahead-unrecorded")]);
    assert_eq!(killed.status.code(), None, "{}", said(&killed));
    // The window is real: the whole file under its temporary name, not one
    // claim recorded.
    assert_eq!(
        names_in(&ws.partner.outbound_dir),
        [format!("{FINAL}.part")]
    );
    assert!(ws.claim_statuses().is_empty(), "{:?}", ws.claim_statuses());

    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote.len(), 1, "one file, no leftovers: {remote:?}");
    assert!(
        !remote[0].ends_with(".part") && remote[0] != FINAL,
        "a new file, the first never renamed: {remote:?}"
    );
    let opened = String::from_utf8_lossy(&age_decrypt(
        &ws.partner_identity,
        &ws.partner.outbound_dir.join(&remote[0]),
    ))
    .into_owned();
    assert_eq!(opened.matches("CLM*").count(), 5);
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
    let removed = || events(&ws, "temporary_removed").len();
    assert_eq!(removed(), 1);

    // A third run has nothing left to do, nor to remove.
    let again = ws.submit(&[]);
    assert_eq!(again.status.code(), Some(0), "{}", said(&again));
    assert_eq!(names_in(&ws.partner.outbound_dir), remote);
    assert_eq!(removed(), 1);
}

/// `upload = "rename"` writes the temporary name while the file is still
/// being sealed, not once it is spooled. Held after two pieces of a large
/// file are sealed, the partner's server already holds them under
/// `NAME.part`, while the ledger has no claim of it (not spooled yet). Let
/// go, the run delivers the file whole, once, and no temporary name stays.
#[test]
fn the_temporary_name_is_written_while_the_file_is_still_sealed() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    ws.big_export(7, 3000);
    let tmp = ws.partner.outbound_dir.join(format!("{FINAL}.part"));
    let two_pieces = 2 * edi_courier::sftp::WRITE_CHUNK as u64;
    let out = ws.run_paused_at(
        &["submit", "--partner", common::workspace::PARTNER],
        "sealing-ahead",
        || {
            let started = std::time::Instant::now();
            while std::fs::metadata(&tmp).map_or(0, |m| m.len()) < two_pieces {
                // Not a timing assertion: a guard so a broken run fails, not hangs.
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "two sealed pieces never reached {}",
                    tmp.display()
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert!(ws.claim_statuses().is_empty(), "{:?}", ws.claim_statuses());
            assert_eq!(ws.out_files(), [("sealing".to_owned(), 1)]);
        },
    );
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(names_in(&ws.partner.outbound_dir), [FINAL]);
    let opened = age_decrypt(&ws.partner_identity, &ws.partner.outbound_dir.join(FINAL));
    assert_eq!(
        String::from_utf8_lossy(&opened).matches("CLM*").count(),
        3000
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 3000)]);
}

/// Regression (found by an independent tester): an export edited in place
/// at the same size while it was read was sent as read, under the
/// fingerprint of the bytes before the edit; the run then said "not
/// archived" and the next took the edited export for a new one (its
/// replacement claims went out twice), or removed the edited export
/// unsent. The bytes are now read again after the translate: a change is
/// refused, nothing sent, and the next run sends the edited export once.
#[test]
fn an_export_edited_in_place_while_it_is_read_is_not_sent_as_read() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let export = ws.outbox().join("clinic.csv");
    let out = ws.run_paused_at(
        &["submit", "--partner", common::workspace::PARTNER],
        "translated",
        || {
            let text = std::fs::read_to_string(&export).unwrap();
            let edited = text.replace("SPRINGFIELD", "SPRINGFIELE");
            assert_eq!(edited.len(), text.len());
            std::fs::write(&export, edited).unwrap();
        },
    );
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        said(&out).contains("changed while it was read"),
        "{}",
        said(&out)
    );
    assert!(
        names_in(&ws.partner.outbound_dir).is_empty(),
        "nothing sent: {:?}",
        names_in(&ws.partner.outbound_dir)
    );
    assert!(ws.claim_statuses().is_empty(), "{:?}", ws.claim_statuses());
    assert!(export.exists(), "the edited export waits in the outbox");

    let again = ws.submit(&[]);
    assert_eq!(again.status.code(), Some(0), "{}", said(&again));
    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote.len(), 1, "{remote:?}");
    let opened = String::from_utf8_lossy(&age_decrypt(
        &ws.partner_identity,
        &ws.partner.outbound_dir.join(&remote[0]),
    ))
    .into_owned();
    assert!(opened.contains("SPRINGFIELE"), "the edited bytes were sent");
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
    assert!(!export.exists(), "retired once sent");
}

/// An export that grows while it is read (a row appended) is refused as
/// still being written, nothing sent; the next run sends it whole.
#[test]
fn an_export_that_grows_while_it_is_read_is_left_for_the_next_run() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let export = ws.outbox().join("clinic.csv");
    let out = ws.run_paused_at(
        &["submit", "--partner", common::workspace::PARTNER],
        "translated",
        || {
            use std::io::Write as _;
            let last = std::fs::read_to_string(&export).unwrap();
            let row = last.lines().last().unwrap().replace("RFM-10", "RFM-20");
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&export)
                .unwrap();
            writeln!(f, "{row}").unwrap();
        },
    );
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains("still being written"), "{}", said(&out));
    assert!(names_in(&ws.partner.outbound_dir).is_empty());
    assert!(ws.claim_statuses().is_empty(), "{:?}", ws.claim_statuses());
    let again = ws.submit(&[]);
    assert_eq!(again.status.code(), Some(0), "{}", said(&again));
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 6)]);
}

/// Regression (found by an independent tester): the upload made while a
/// file was sealed hung on a stalled session, and delivery then tried the
/// same session again, losing a second `timeout_secs` and recording a
/// failed attempt. A session the upload failed on for a reason that may
/// pass is dropped: delivery dials anew and sends the file in the same
/// run, with no failed attempt on record.
#[test]
fn a_session_the_upload_stalled_on_is_not_used_again() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    ws.big_export(5, 3000);
    ws.behind_proxy(&sshd, 256 * 1024, Fault::StallFirst);
    ws.set_timeout_secs(3);
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(names_in(&ws.partner.outbound_dir), [FINAL]);
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 3000)]);
    let failed = events(&ws, "attempt_failed");
    assert!(failed.is_empty(), "delivered at the first try: {failed:?}");
}

/// Regression (tester19 F6): a line that stopped while the file was being
/// sealed and sent was said as `I/O: sender dropped`, not as the stall it
/// was, in the run's output and in `status`'s last error.
#[test]
fn an_upload_stalled_while_sealing_is_said_as_a_stall() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    ws.big_export(5, 3000);
    ws.behind_proxy(&sshd, 256 * 1024, Fault::Stall);
    ws.set_timeout_secs(2);
    let out = ws.submit(&[]);
    let said = said(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(!said.contains("sender dropped"), "{said}");
    assert!(said.contains("no answer within"), "{said}");
}

/// Regression: on a slow line that never stops moving, an upload failed
/// with `Timeout` whenever the writes in flight (up to 32 × 255 KiB) took
/// longer than `timeout_secs` to cross it: the answer to the last write
/// waited behind all the others, and a large file was never delivered.
/// `timeout_secs` bounds the wait for any one answer, so each write (and
/// each read of the file read back) answered in turn keeps it going.
#[test]
fn an_upload_over_a_slow_line_that_keeps_moving_is_delivered() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    ws.big_export(6, 2000);
    ws.behind_proxy(&sshd, usize::MAX, Fault::Throttle(192 * 1024));
    ws.set_timeout_secs(2);
    // Read back, too: the reads in flight wait on the slow line alike.
    ws.append_config("verify = \"readback\"\n");
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(names_in(&ws.partner.outbound_dir), [FINAL]);
    let sent = std::fs::metadata(ws.partner.outbound_dir.join(FINAL))
        .unwrap()
        .len();
    assert!(
        sent > 3 * 192 * 1024,
        "the file takes longer than timeout_secs to cross: {sent} bytes"
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 2000)]);
    let failed = events(&ws, "attempt_failed");
    assert!(failed.is_empty(), "delivered at the first try: {failed:?}");
}

/// An export refused whole after its file began to go up under its
/// temporary name (a claim's rows apart): the run removes what it wrote
/// at once, on record, and the server is left with nothing.
#[test]
fn a_refused_export_leaves_nothing_under_the_temporary_name() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let csv = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    let mut lines: Vec<&str> = csv.lines().collect();
    let second = lines.remove(2);
    lines.insert(3, second);
    std::fs::write(ws.outbox().join("clinic.csv"), lines.join("\n") + "\n").unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains("rows apart"), "{}", said(&out));
    assert!(names_in(&ws.partner.outbound_dir).is_empty());
    let removed = events(&ws, "temporary_removed");
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(
        removed[0].contains("written while a file never spooled was sealed"),
        "removed by the run that wrote it: {removed:?}"
    );
}

/// A partner that takes each file the moment it is renamed (configured
/// `move_on_arrival`), and a crash right after the rename, before it was
/// recorded: the next run must not upload it again — the temporary name is
/// gone, so it was delivered.
#[test]
fn a_file_taken_by_the_partner_before_delivery_was_recorded_is_not_sent_again() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    ws.append_config("move_on_arrival = true\n");
    let killed = ws.submit(&[("EDI_COURIER_FAULT", "renamed")]);
    assert_eq!(killed.status.code(), None, "{}", said(&killed));
    let taken = sshd.folder("partner-processing").join(FINAL);
    std::fs::rename(ws.partner.outbound_dir.join(FINAL), &taken).unwrap();

    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(said(&out).contains("delivered to acme"), "{}", said(&out));
    assert!(
        names_in(&ws.partner.outbound_dir).is_empty(),
        "nothing uploaded again"
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
    let opened = age_decrypt(&ws.partner_identity, &taken);
    assert_eq!(String::from_utf8_lossy(&opened).matches("CLM*").count(), 5);
}

/// Regression: a verified upload whose temporary name was gone was marked
/// delivered without a look at the final name. A partner's cleanup that
/// removed the `.part` (the crash came before our rename) must not count as
/// delivery: the file is uploaded again and renamed.
#[test]
fn a_verified_upload_that_vanished_before_the_rename_is_uploaded_again() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let killed = ws.submit(&[("EDI_COURIER_FAULT", "verified")]);
    assert_eq!(killed.status.code(), None, "{}", said(&killed));
    let part = ws.partner.outbound_dir.join(format!("{FINAL}.part"));
    assert!(part.exists(), "verified under the temporary name");
    std::fs::remove_file(&part).unwrap();

    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    then_delivers_once(&ws);
}

/// The same crash when the rename did happen: the final name holds the
/// recorded size, so it is delivered and not sent again.
#[test]
fn a_verified_upload_renamed_before_a_crash_is_not_sent_again() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let killed = ws.submit(&[("EDI_COURIER_FAULT", "renamed")]);
    assert_eq!(killed.status.code(), None, "{}", said(&killed));
    let before = std::fs::metadata(ws.partner.outbound_dir.join(FINAL))
        .unwrap()
        .modified()
        .unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    then_delivers_once(&ws);
    let after = std::fs::metadata(ws.partner.outbound_dir.join(FINAL))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "the partner's file was not written again");
}

/// One file under its final name holding the five claims, all Sent.
fn then_delivers_once(ws: &Workspace) {
    assert_eq!(names_in(&ws.partner.outbound_dir), [FINAL]);
    let opened = age_decrypt(&ws.partner_identity, &ws.partner.outbound_dir.join(FINAL));
    assert_eq!(String::from_utf8_lossy(&opened).matches("CLM*").count(), 5);
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
}

/// Killed after the export's claims were recorded and before it was
/// retired, then the export replaced by another file of the same name (a
/// clinic writes the same name every night): the replacement is sent and
/// archived, and the first export's record says no sealed copy of it was
/// made — not a path in `processed/` that never existed (found by an
/// independent tester: the audit chain named `processed/clinic.csv`).
#[test]
fn an_export_replaced_after_a_kill_is_recorded_as_not_archived() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let killed = ws.submit(&[("EDI_COURIER_FAULT", "spooled")]);
    assert_eq!(killed.status.code(), None, "{}", said(&killed));
    let other = std::fs::read_to_string(root().join("examples/clinic-claims.csv"))
        .unwrap()
        .replace("RFM-", "RFX-");
    std::fs::write(ws.outbox().join("clinic.csv"), other).unwrap();

    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    // Said, not only logged: the daemon mails the same as a `not-archived`
    // alert (src/alert.rs).
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.lines()
            .any(|l| l.contains("clinic.csv: sent, but not archived")),
        "{said}"
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 10)]);
    assert_eq!(
        names_in(&ws.outbox().join("processed")),
        ["clinic.csv.age"],
        "only the replacement has a sealed copy"
    );
    let audit = ws.run(&["audit", "export"], &[]);
    assert_eq!(audit.status.code(), Some(0), "{}", common::said(&audit));
    let archived: Vec<String> = String::from_utf8(audit.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "export_archived")
        .map(|e| e["detail"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(archived.len(), 2, "{archived:?}");
    assert!(
        archived[0].starts_with("(not archived: ") && archived[0].contains("clinic.csv"),
        "{archived:?}"
    );
    assert!(
        archived[1].ends_with("processed/clinic.csv.age"),
        "{archived:?}"
    );
}

/// Points the workspace's spool at `spool` (another filesystem).
fn spool_at(ws: &Workspace, spool: &Path) {
    let config = std::fs::read_to_string(&ws.config).unwrap();
    let config = config.replacen(
        "[paths]\n",
        &format!("[paths]\nspool = \"{}\"\n", spool.display()),
        1,
    );
    std::fs::write(&ws.config, config).unwrap();
}

/// A tester's finding: a spool on its own filesystem (a tmpfs) made every
/// archive move fail with EXDEV: the delivered file was logged "upload
/// failed", the run failed, the sealed copies piled up in the spool. Now
/// the move copies (fsync, rename, fsync) then removes, `check` warns, and
/// a kill at either step of the copy leaves what the next run finishes.
/// Needs /dev/shm on another filesystem than the workspace, as on Debian.
#[test]
fn a_spool_on_another_filesystem_than_the_archive_delivers_and_archives() {
    let sshd = Sshd::start();
    for step in [
        None,
        Some("cross-device-copied"),
        Some("cross-device-renamed"),
    ] {
        let mut ws = workspace_with_export(&sshd);
        let label = step.unwrap_or("no fault");
        ws.partner.outbound_dir = sshd.folder(&format!("xdev-{label}"));
        ws.write_config(&ws.partner.clone(), &sshd.user);
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        spool_at(&ws, shm.path());
        assert_eq!(
            edi_courier::atomic::on_different_filesystems(shm.path(), ws.dir.path()),
            Some(true),
            "/dev/shm shares the workspace's filesystem"
        );
        let check = ws.run(&["check", "--offline"], &[]);
        assert!(
            said(&check).contains("are on different filesystems"),
            "{label}: {}",
            said(&check)
        );
        if let Some(step) = step {
            let killed = ws.submit(&[("EDI_COURIER_FAULT", step)]);
            assert_eq!(killed.status.code(), None, "{label}: {}", said(&killed));
        }
        let out = ws.submit(&[]);
        assert_eq!(out.status.code(), Some(0), "{label}: {}", said(&out));
        assert!(
            !said(&out).contains("upload failed"),
            "{label}: {}",
            said(&out)
        );
        let remote = names_in(&ws.partner.outbound_dir);
        assert_eq!(remote.len(), 1, "{label}: {remote:?}");
        assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)], "{label}");
        assert!(
            names_in(&shm.path().join("out/acme")).is_empty(),
            "{label}: spool emptied"
        );
        assert_eq!(
            names_in(&ws.path("archive/out/acme")),
            remote,
            "{label}: archived, no temporary copy left"
        );
        assert_eq!(
            std::fs::read(ws.path("archive/out/acme").join(&remote[0])).unwrap(),
            std::fs::read(ws.partner.outbound_dir.join(&remote[0])).unwrap(),
            "{label}"
        );
    }
}

/// A delivered file whose sealed copy cannot be archived (here the archive
/// is a plain file, not a folder) is delivered all the same: said so, never
/// "upload failed" nor a failed run, its copy kept in the spool, and the
/// next run archives it once the archive is fixed.
#[test]
fn a_delivered_file_that_cannot_be_archived_is_not_an_upload_failure() {
    let sshd = Sshd::start();
    let ws = workspace_with_export(&sshd);
    let archive = ws.path("archive-here");
    std::fs::write(&archive, b"not a folder").unwrap();
    let config = std::fs::read_to_string(&ws.config).unwrap().replacen(
        "[paths]\n",
        &format!("[paths]\narchive = \"{}\"\n", archive.display()),
        1,
    );
    std::fs::write(&ws.config, config).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!said(&out).contains("upload failed"), "{}", said(&out));
    assert!(
        said(&out).contains("delivered, but its sealed copy stays in the spool"),
        "{}",
        said(&out)
    );
    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote.len(), 1, "{remote:?}");
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
    assert_eq!(names_in(&ws.path("spool/out/acme")), remote);

    std::fs::remove_file(&archive).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(names_in(&ws.path("spool/out/acme")).is_empty());
    assert_eq!(names_in(&archive.join("out/acme")), remote);
}

/// A file that fails every time (here: the line drops after 512 KiB, and
/// it is bigger) never holds back the partner's other files: they go
/// first at the next try, and at the next run. (It once stayed first in
/// line: the small file behind it was left `NAME.part`, run after run,
/// `status` showing it a bare `spooled`.) `status` shows each stuck file
/// with its error, or why it was not tried.
#[test]
fn a_file_that_keeps_failing_does_not_block_the_partners_others() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    ws.big_export(21, 6000);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    // No retry within the run: the small file, behind the big one, is not
    // tried in the first run, and says so.
    ws.partner.attempts = 1;
    ws.behind_proxy(&sshd, 512 * 1024, Fault::Cut);
    let out = ws.submit(&[]);
    assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    let status = String::from_utf8_lossy(&ws.run(&["status"], &[]).stdout).into_owned();
    assert!(
        status.contains("last error: not tried: the connection failed while sending"),
        "{status}\n{}",
        said(&out)
    );
    // The next run tries it first; and with a retry, a file that failed in
    // the run goes after the others at the next try.
    ws.partner.attempts = 2;
    ws.write_config(&ws.partner.clone(), &sshd.user);
    ws.drop_export(&root().join("examples/demo-claims.csv"), "demo.csv");
    for run in 1..3 {
        let out = ws.submit(&[]);
        assert_ne!(out.status.code(), Some(0), "run {run}: {}", said(&out));
    }
    let finals: Vec<String> = names_in(&ws.partner.outbound_dir)
        .into_iter()
        .filter(|n| !n.ends_with(".part"))
        .collect();
    assert_eq!(finals.len(), 2, "{finals:?}");
    let statuses = ws.claim_statuses();
    assert!(
        statuses.contains(&("queued".to_owned(), 6000)),
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    let status = String::from_utf8_lossy(&ws.run(&["status"], &[]).stdout).into_owned();
    assert!(status.contains("last error: "), "{status}");
}

//! Sealed delivery against a real OpenSSH sshd started by each test:
//! the file appears only under its final name, the Go `age` CLI opens it to
//! exactly the 837 that was written, no plaintext is left on our disk, and
//! the same export submitted twice is sent once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::sshd::Sshd;
use common::tools::age_decrypt;
use common::workspace::{names_in, Workspace};
use common::{edi_courier, root};
use std::path::{Path, PathBuf};

fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The 837 `translate` writes for the same export, clock and control
/// number 1: what the delivered file must hold once opened.
fn expected_837(export: &std::path::Path) -> Vec<u8> {
    let out = edi_courier(&[
        "translate",
        "--map",
        "clinic-professional",
        export.to_str().unwrap(),
        "--quarantine",
        std::env::temp_dir().to_str().unwrap(),
    ]);
    out.stdout
}

#[test]
fn delivers_one_sealed_837_under_its_final_name_that_age_opens() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let export = ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");

    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("delivered to acme"), "{}", text(&out));

    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(
        remote,
        ["EDICOURIER_20261120_000000001.x12.age"],
        "{}",
        text(&out)
    );
    let delivered = ws.partner.outbound_dir.join(&remote[0]);
    let opened = age_decrypt(&ws.partner_identity, &delivered);
    assert_eq!(
        String::from_utf8_lossy(&opened),
        String::from_utf8_lossy(&expected_837(&root().join("examples/clinic-claims.csv"))),
        "the partner opens exactly the 837 that was written"
    );

    // The export moved on; the sealed copy is archived; no plaintext anywhere.
    assert!(!export.exists());
    assert_eq!(names_in(&ws.outbox().join("processed")), ["clinic.csv.age"]);
    assert!(names_in(&ws.path("spool/out/acme")).is_empty());
    assert_eq!(
        std::fs::read(ws.path("archive/out/acme").join(&remote[0])).unwrap(),
        std::fs::read(&delivered).unwrap()
    );
    for f in ws.all_files() {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(4).any(|w| w == b"ISA*" || w == b"CLM*"),
            "plaintext X12 on our disk: {}",
            f.display()
        );
    }
    let statuses = ws.claim_statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].0, "sent");
    let claims_in_file = String::from_utf8_lossy(&opened).matches("CLM*").count() as i64;
    assert_eq!(statuses[0].1, claims_in_file);

    // status shows it.
    let status = ws.run(&["status"], &[]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("delivered") && shown.contains(&remote[0]),
        "{shown}"
    );
}

#[test]
fn the_same_export_twice_is_sent_once_and_says_so() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let source = root().join("examples/clinic-claims.csv");
    ws.drop_export(&source, "monday.csv");
    let first = ws.submit(&[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    ws.drop_export(&source, "monday-again.csv");
    let second = ws.submit(&[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let said = String::from_utf8_lossy(&second.stdout);
    assert!(said.contains("already submitted"), "{}", text(&second));
    assert_eq!(
        names_in(&ws.partner.outbound_dir).len(),
        1,
        "one file on the server"
    );
    assert_eq!(
        names_in(&ws.outbox().join("processed")),
        ["monday-again.csv.age", "monday.csv.age"],
        "the duplicate is kept (sealed), not deleted"
    );
}

#[test]
fn check_proves_host_key_login_and_folders_and_writes_nothing() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let offline = ws.run(&["check", "--offline"], &[]);
    assert_eq!(offline.status.code(), Some(0), "{}", text(&offline));
    assert!(String::from_utf8_lossy(&offline.stdout).contains("key"));

    let online = ws.run(&["check"], &[]);
    assert_eq!(online.status.code(), Some(0), "{}", text(&online));
    let said = String::from_utf8_lossy(&online.stdout);
    assert!(said.contains("host key pinned, login accepted"), "{said}");
    assert!(said.contains("readable"), "{said}");
    assert!(
        names_in(&ws.partner.outbound_dir).is_empty(),
        "check writes nothing"
    );

    // A key others can read is refused before anything is contacted.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ws.partner.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loose = ws.run(&["check", "--offline"], &[]);
    assert_eq!(loose.status.code(), Some(2), "{}", text(&loose));
    assert!(
        String::from_utf8_lossy(&loose.stderr).contains("readable by group or others"),
        "{}",
        text(&loose)
    );
}

#[test]
fn a_second_run_for_the_same_partner_waits_its_turn() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    let dir = ws.path("spool/out");
    std::fs::create_dir_all(&dir).unwrap();
    let held = std::fs::File::create(dir.join("acme.lock")).unwrap();
    held.lock().unwrap();

    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("another run for partner acme is in progress"),
        "{}",
        text(&out)
    );
    assert_eq!(
        names_in(&ws.outbox()),
        ["clinic.csv"],
        "nothing was touched"
    );

    drop(held);
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(names_in(&ws.partner.outbound_dir).len(), 1);
}

/// Regression: `submit` never created `OUTBOX/<partner>/rejected/`, so an
/// export holding one claim to set aside was never sent (each run burnt a
/// control number and left an abandoned file).
#[test]
fn an_export_with_one_bad_claim_sends_the_good_ones_and_sets_the_bad_one_aside() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    assert!(!ws.outbox().join("rejected").exists(), "a fresh outbox");
    let good = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    // RFM-1099: a rendering NPI whose check digit is wrong.
    let bad = "RFM-1099,$60.00,Office,1,,,Z00.00,,,,WELBY,MARCUS,1987654321,XJH777888000,SMITH,ANNA,01/05/1990,Female,GRP7700,Commercial,301 MAPLE DR,SPRINGFIELD,IL,62703,ACME HEALTH PLAN,ACME01,99395,,,$60.00,1,11/12/2026,1,RFM-1099-1\n";
    std::fs::write(ws.outbox().join("clinic.csv"), format!("{good}{bad}")).unwrap();

    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote.len(), 1, "{}", text(&out));
    let opened = age_decrypt(
        &ws.partner_identity,
        &ws.partner.outbound_dir.join(&remote[0]),
    );
    let opened = String::from_utf8_lossy(&opened);
    assert_eq!(opened.matches("CLM*").count(), 5, "{opened}");
    assert!(!opened.contains("RFM-1099"));

    let rejected = ws.outbox().join("rejected");
    assert_eq!(names_in(&rejected), ["clinic.rejected.csv"]);
    let kept = std::fs::read_to_string(rejected.join("clinic.rejected.csv")).unwrap();
    assert_eq!(kept, format!("{}\n{bad}", good.lines().next().unwrap()));
    assert_eq!(names_in(&ws.outbox().join("processed")), ["clinic.csv.age"]);
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);

    // Nothing is left for the next run: no new control number is burnt.
    let again = ws.submit(&[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(names_in(&ws.partner.outbound_dir).len(), 1);
}

/// A workspace whose partner is unreachable has spooled the clinic
/// export, sealed to the partner's key of then; the partner's key is then
/// replaced in the config. The workspace, the partner back, and the old
/// key's identity file.
fn spooled_then_key_replaced(sshd: &Sshd) -> (Workspace, common::workspace::Partner, PathBuf) {
    let (mut ws, reachable) = spooled_while_unreachable(sshd);
    let old_identity = ws.partner_identity.clone();
    let (new_identity, new_recipient) =
        common::tools::age_key(ws.dir.path(), "partner-new-age.txt");
    ws.partner_identity = new_identity;
    ws.partner_recipient = new_recipient;
    ws.write_config(&reachable, &ws.user.clone());
    (ws, reachable, old_identity)
}

/// A workspace that spooled the clinic export while its partner was
/// unreachable (its config says so still), and the partner as reachable.
fn spooled_while_unreachable(sshd: &Sshd) -> (Workspace, common::workspace::Partner) {
    let ws = Workspace::new(sshd);
    let reachable = ws.partner.clone();
    let mut away = reachable.clone();
    away.port = common::sshd::free_port();
    away.attempts = 1;
    ws.write_config(&away, &ws.user.clone());
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "unreachable: {}", text(&out));
    assert_eq!(ws.out_files().len(), 1, "{}", text(&out));
    (ws, reachable)
}

/// The one file waiting in the spool, one byte of it flipped (its size
/// the same): the spool's names, and the copy's path.
fn one_byte_flipped_in_the_spool(ws: &Workspace) -> (Vec<String>, PathBuf) {
    let spooled = names_in(&ws.path("spool/out/acme"));
    assert_eq!(spooled.len(), 1, "{spooled:?}");
    let copy = ws.path("spool/out/acme").join(&spooled[0]);
    let mut bytes = std::fs::read(&copy).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&copy, &bytes).unwrap();
    (spooled, copy)
}

/// Regression (an independent tester's finding): a spool copy altered on
/// disk while it waited — one byte flipped, the size the same — was
/// uploaded, "verified by size" and recorded delivered: the partner got
/// bytes it could not open (or, forged to our and its keys, a claim we
/// never sealed). The bytes sent are hashed as they are read and held to
/// the ledger's SHA-256: the upload is not finished, its remote copy
/// removed, the file reported not delivered and its claims stay queued.
#[test]
fn a_spool_copy_altered_while_it_waited_is_not_delivered() {
    let sshd = Sshd::start();
    let (ws, reachable) = spooled_while_unreachable(&sshd);
    one_byte_flipped_in_the_spool(&ws);
    ws.write_config(&reachable, &ws.user.clone());
    for _ in 0..2 {
        let out = ws.submit(&[]);
        let said = text(&out);
        assert_ne!(out.status.code(), Some(0), "{said}");
        assert!(said.contains("is not the file that was sealed"), "{said}");
        assert!(
            names_in(&ws.partner.outbound_dir).is_empty(),
            "nothing under any name on the partner's server: {said}"
        );
        assert_eq!(ws.claim_statuses(), [("queued".to_owned(), 5)], "{said}");
    }
}

/// Whether the age CLI opens `file` with `identity`.
fn age_opens(identity: &Path, file: &Path) -> bool {
    std::process::Command::new("age")
        .args(["-d", "-i"])
        .arg(identity)
        .arg(file)
        .output()
        .unwrap()
        .status
        .success()
}

/// A file that waited in the spool (partner unreachable) while the
/// partner's key was replaced is sealed again to the new key from what our
/// own key opens in it (a spooled 837 is sealed to us too), and delivered:
/// the new key opens what the partner gets, the old one does not, and a
/// run killed just after the new copy is recorded delivers it whole at
/// the next run, once. (It was held until the old key was put back: a
/// partner that rotated its key had its claims stuck.)
#[test]
fn a_file_sealed_to_a_replaced_key_is_sealed_again_to_the_new_key_and_delivered() {
    let sshd = Sshd::start();
    let (ws, _, old_identity) = spooled_then_key_replaced(&sshd);
    let out = ws.submit(&[("EDI_COURIER_FAULT", "resealed")]);
    assert_eq!(out.status.code(), None, "killed: {}", text(&out));
    assert!(names_in(&ws.partner.outbound_dir).is_empty());
    let out = ws.submit(&[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let sent = names_in(&ws.partner.outbound_dir);
    assert_eq!(sent.len(), 1, "{said}");
    let delivered = ws.partner.outbound_dir.join(&sent[0]);
    let opened = age_decrypt(&ws.partner_identity, &delivered);
    assert!(opened.starts_with(b"ISA*"), "the new key opens it");
    assert_eq!(common::read_claims(&opened).1.len(), 5);
    assert!(
        !age_opens(&old_identity, &delivered),
        "the old key does not open it"
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)], "{said}");
    let status = text(&ws.run(&["status"], &[]));
    assert!(!status.contains("held"), "{status}");
    // The archive keeps the copy delivered, not the one it replaced (an
    // independent tester's finding: the kill left the old copy in the
    // spool, and the sweep archived it over the new one), and the spool
    // keeps nothing.
    assert_eq!(names_in(&ws.path("archive/out/acme")), sent, "{said}");
    let archived = ws.path("archive/out/acme").join(&sent[0]);
    assert_eq!(
        std::fs::read(&archived).unwrap(),
        std::fs::read(&delivered).unwrap(),
        "{said}"
    );
    assert!(names_in(&ws.path("spool/out/acme")).is_empty(), "{said}");
}

/// A file the partner's replaced key alone opens — spooled before spooled
/// files were sealed to us too, here by our own key replaced as well — is
/// held: not uploaded, `submit` and `status` say why
/// (`sealed_to_old_keys`), and it goes once the partner's key is the one
/// it was sealed to again.
#[test]
fn a_file_sealed_to_a_replaced_key_that_our_key_cannot_open_is_held_not_delivered() {
    let sshd = Sshd::start();
    let (mut ws, reachable, old_identity) = spooled_then_key_replaced(&sshd);
    let old_recipient = String::from_utf8(
        std::process::Command::new("age-keygen")
            .arg("-y")
            .arg(&old_identity)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    // Our own key replaced too (the one the file was sealed to is gone).
    std::fs::remove_file(&ws.our_identity).unwrap();
    let (ours, _) = common::tools::age_key(ws.dir.path(), "our-new-age.txt");
    std::fs::rename(&ours, &ws.our_identity).unwrap();
    let out = ws.submit(&[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("sealed_to_old_keys"), "{said}");
    assert!(
        names_in(&ws.partner.outbound_dir).is_empty(),
        "nothing sealed to the old key reaches the partner: {said}"
    );
    let status = ws.run(&["status"], &[]);
    let shown = text(&status);
    assert!(shown.contains("held: sealed_to_old_keys"), "{shown}");
    assert_eq!(ws.claim_statuses(), [("queued".to_owned(), 5)], "{said}");

    // Its copy then altered: that is what `status` says now, not the hold
    // (an independent tester's finding: both were shown, the hold first).
    let (_, copy) = one_byte_flipped_in_the_spool(&ws);
    let out = ws.submit(&[]);
    assert!(!text(&out).contains("sealed_to_old_keys"), "{}", text(&out));
    let shown = text(&ws.run(&["status"], &[]));
    assert!(
        !shown.contains("held: sealed_to_old_keys")
            && shown.contains("is not the file that was sealed"),
        "{shown}"
    );
    // Put back as it was: held again until the keys are.
    let mut bytes = std::fs::read(&copy).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&copy, &bytes).unwrap();
    let out = ws.submit(&[]);
    assert!(text(&out).contains("sealed_to_old_keys"), "{}", text(&out));

    // The old key is the partner's again (the rotation was undone): it goes.
    ws.partner_recipient = old_recipient;
    ws.write_config(&reachable, &ws.user.clone());
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let sent = names_in(&ws.partner.outbound_dir);
    assert_eq!(sent.len(), 1, "{}", text(&out));
    let opened = age_decrypt(&old_identity, &ws.partner.outbound_dir.join(&sent[0]));
    assert!(opened.starts_with(b"ISA*"), "the old key opens it");
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
}

/// Regression (an independent tester's finding): a file waiting for a key
/// change whose spool copy was then altered, or deleted, was held with
/// the `sealed_to_old_keys` wording: nothing was sent, but the cause named
/// was the keys. It is reported as delivery reports it — the copy is not
/// the file sealed, or is gone — and never opened, sealed again or held.
#[test]
fn a_changed_or_missing_copy_waiting_for_a_key_change_is_reported_as_such_not_held() {
    let sshd = Sshd::start();
    let (ws, _, _) = spooled_then_key_replaced(&sshd);
    let (spooled, copy) = one_byte_flipped_in_the_spool(&ws);
    for (how, said_as) in [
        ("altered", "is not the file that was sealed"),
        ("deleted", "No such file"),
    ] {
        if how == "deleted" {
            std::fs::remove_file(&copy).unwrap();
            if ws.ledger_url.starts_with("postgres") {
                // A shared ledger keeps the bytes sealed: the copy comes
                // back from it, is sealed again to the new key and goes.
                let out = ws.submit(&[]);
                assert_eq!(out.status.code(), Some(0), "{}", text(&out));
                let sent = names_in(&ws.partner.outbound_dir);
                let opened = age_decrypt(
                    &ws.partner_identity,
                    &ws.partner.outbound_dir.join(&sent[0]),
                );
                assert_eq!(common::read_claims(&opened).1.len(), 5);
                return;
            }
        }
        let out = ws.submit(&[]);
        let said = text(&out);
        assert_ne!(out.status.code(), Some(0), "{how}: {said}");
        assert!(said.contains(said_as), "{how}: {said}");
        assert!(!said.contains("sealed_to_old_keys"), "{how}: {said}");
        let status = text(&ws.run(&["status"], &[]));
        assert!(!status.contains("sealed_to_old_keys"), "{how}: {status}");
        assert!(
            names_in(&ws.partner.outbound_dir).is_empty(),
            "{how}: {said}"
        );
        assert_eq!(
            names_in(&ws.path("spool/out/acme")),
            if how == "altered" {
                spooled.clone()
            } else {
                vec![]
            },
            "{how}: never opened and sealed again"
        );
        assert_eq!(ws.claim_statuses(), [("queued".to_owned(), 5)], "{how}");
    }
}

/// What `status`, `status --json`, `report --json` and `trace` say about
/// the workspace's claims (the commands' own output, byte for byte).
fn readings(ws: &Workspace) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["report", "--json"],
        &["trace", "RFM-1001"],
        &["trace", "RFM-1005"],
    ] {
        let out = ws.run(args, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        seen.push((
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ));
    }
    seen
}

/// A claim's `sent` is its file's delivery: delivering a file writes no
/// claim row (the rows stay `queued`, as recorded when spooled), and every
/// reader shows them `sent`, changed at the delivery — exactly as a ledger
/// whose rows an older release rewrote `sent` at delivery reads (the same
/// ledger with its rows rewritten so, after the migration).
#[test]
fn a_delivered_files_claims_read_sent_without_their_rows_rewritten() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("delivered to acme"),
        "{}",
        text(&out)
    );
    let statuses = ws.claim_statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].0, "sent", "{statuses:?}");
    let claims = statuses[0].1;
    let rows = |sql: &'static str| {
        common::with_ledger_pool(&ws.ledger_url, async |pool| {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(pool)
                .await
                .unwrap()
        })
    };
    // This release's record: the delivery did not touch the claim rows.
    assert_eq!(
        rows("SELECT COUNT(*) FROM claims WHERE status = 'queued'"),
        claims
    );
    let now = readings(&ws);
    let status = &now[0].1;
    assert!(status.contains("sent"), "{status}");
    assert!(!status.contains("queued"), "{status}");

    // What an older release wrote at delivery: every row `sent`, changed
    // at the delivery.
    let rewritten = common::with_ledger_pool(&ws.ledger_url, async |pool| {
        sqlx::query(
            "UPDATE claims SET status = 'sent', \
             updated_at = (SELECT delivered_at FROM files f WHERE f.id = claims.file_id) \
             WHERE status = 'queued'",
        )
        .execute(pool)
        .await
        .unwrap()
        .rows_affected()
    });
    assert_eq!(i64::try_from(rewritten).unwrap(), claims);
    assert_eq!(ws.claim_statuses(), statuses);
    let older = readings(&ws);
    for ((what, a), (_, b)) in now.iter().zip(&older) {
        assert_eq!(
            a, b,
            "{what}: this release's ledger and an older one's read differently"
        );
    }
}

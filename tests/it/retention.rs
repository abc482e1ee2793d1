//! PHI at rest after a real loop against OpenSSH: every file edi-courier
//! wrote is 0600 in a 0700 folder, the processed export is sealed to our
//! archive key (and the Go `age` CLI opens it), and `purge` removes plain
//! copies and sealed archives after their periods, each removal audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

use common::sshd::Sshd;
use common::tools::age_decrypt;
use common::workspace::{names_in, Workspace};
use common::{root, said};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// An export with one claim set aside, submitted: a rejected copy, a
/// sealed processed export, a delivered 837 in the archive.
fn submitted(sshd: &Sshd) -> Workspace {
    let ws = Workspace::new(sshd);
    let good = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    let bad = "RFM-1099,$60.00,Office,1,,,Z00.00,,,,WELBY,MARCUS,1987654321,XJH777888000,SMITH,ANNA,01/05/1990,Female,GRP7700,Commercial,301 MAPLE DR,SPRINGFIELD,IL,62703,ACME HEALTH PLAN,ACME01,99395,,,$60.00,1,11/12/2026,1,RFM-1099-1\n";
    std::fs::write(ws.outbox().join("clinic.csv"), format!("{good}{bad}")).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    ws
}

#[test]
fn what_edi_courier_writes_is_private_and_the_export_is_archived_sealed() {
    let sshd = Sshd::start();
    let ws = submitted(&sshd);
    let processed = ws.outbox().join("processed");
    assert_eq!(
        names_in(&processed),
        ["clinic.csv.age"],
        "no plain export stays"
    );
    let archived = processed.join("clinic.csv.age");
    let opened = age_decrypt(&ws.our_identity, &archived);
    assert!(
        String::from_utf8_lossy(&opened).starts_with("Claim ID,"),
        "the Go age CLI opens it"
    );
    // Everything under the workspace that edi-courier made: 0600 files in
    // 0700 folders (the test's own config, keys and outbox are its own).
    let ours: Vec<_> = ws
        .all_files()
        .into_iter()
        .filter(|f| {
            let rel = f.strip_prefix(ws.dir.path()).unwrap();
            !(rel.starts_with("keys")
                || rel == Path::new("edi-courier.toml")
                || rel == Path::new("partner-age.txt"))
        })
        .collect();
    assert!(ours
        .iter()
        .any(|f| f.ends_with("rejected/clinic.rejected.csv")));
    assert!(ours.iter().any(|f| f.starts_with(ws.path("archive"))));
    for file in &ours {
        if !file.exists() {
            continue; // the ledger's -wal/-shm, gone as a connection closed
        }
        assert_eq!(mode(file), 0o600, "{}", file.display());
        let dir = file.parent().unwrap();
        if dir != ws.dir.path() && dir != ws.outbox() {
            assert_eq!(mode(dir), 0o700, "{}", dir.display());
        }
    }
    // check warns about a PHI folder opened up by hand.
    std::fs::set_permissions(ws.path("archive"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let check = ws.run(&["check", "--offline"], &[]);
    assert!(
        said(&check).contains("holds PHI but is mode 0755"),
        "{}",
        said(&check)
    );
}

/// Later than `common::NOW` by a little over 100 days (plain copies due).
const PLAIN_DUE: &str = "2027-03-01T10:00:00";
/// Later than `common::NOW` by more than 2557 days (sealed archives due).
const SEALED_DUE: &str = "2034-01-01T10:00:00";

fn purged_entries(ws: &Workspace) -> Vec<serde_json::Value> {
    let audit = ws.run(&["audit", "export"], &[]);
    String::from_utf8_lossy(&audit.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["action"] == "purged")
        .collect()
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    edi_courier::hex(&sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn purge_removes_each_kind_after_its_period_and_audits_it() {
    let sshd = Sshd::start();
    let ws = submitted(&sshd);
    let rejected = ws.outbox().join("rejected/clinic.rejected.csv");
    let sealed = ws.outbox().join("processed/clinic.csv.age");
    let archived = names_in(&ws.path("archive/out/acme"));
    assert_eq!(archived.len(), 1, "{archived:?}");
    let archived = ws.path("archive/out/acme").join(&archived[0]);
    let archived_sha = sha256_hex(&archived);
    // Not recorded by the ledger: a rejected copy is aged by its
    // modification time (written "now" by the tests' clock).
    touch(&rejected, 0);
    // Plain copies go after 90 days by default, sealed archives after 2557.
    let dry = ws.run(&["purge", "--dry-run"], &[("EDI_COURIER_NOW", PLAIN_DUE)]);
    assert!(
        said(&dry).contains("1 file(s) past retention"),
        "{}",
        said(&dry)
    );
    assert!(rejected.exists(), "a dry run removes nothing");
    let out = ws.run(&["purge"], &[("EDI_COURIER_NOW", PLAIN_DUE)]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!rejected.exists(), "the plain copy is past 90 days");
    assert!(sealed.exists(), "the sealed archive is kept for years");
    assert!(archived.exists(), "the delivered 837 is kept for years");
    let out = ws.run(&["purge"], &[("EDI_COURIER_NOW", SEALED_DUE)]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!sealed.exists());
    assert!(!archived.exists());
    let purged = purged_entries(&ws);
    assert_eq!(purged.len(), 3, "{purged:?}");
    // Each entry names the partner and the SHA-256 the chain knows the file
    // by; the archived 837's carries its own hash and its ISA13.
    for entry in &purged {
        assert_eq!(entry["partner"], "acme", "{entry}");
        assert!(
            entry["sha256"].as_str().is_some_and(|h| h.len() == 64),
            "{entry}"
        );
    }
    let of_837 = purged
        .iter()
        .find(|e| {
            e["detail"]
                .as_str()
                .unwrap()
                .contains(archived.to_str().unwrap())
        })
        .unwrap();
    assert_eq!(of_837["sha256"], archived_sha.as_str(), "{of_837}");
    assert_eq!(of_837["controls"], "ISA13 000000001", "{of_837}");
    let of_copy = purged
        .iter()
        .find(|e| e["detail"].as_str().unwrap().contains("clinic.csv.age"))
        .unwrap();
    assert_eq!(of_copy["controls"], "ISA13 000000001", "{of_copy}");
    let verify = ws.run(&["audit", "verify"], &[]);
    assert_eq!(verify.status.code(), Some(0), "{}", said(&verify));
}

/// A remittance export (plain payment data, `REMITTANCES/P/`) written by a
/// real collect of the sandbox payer's 835 goes after the plain period,
/// counted from the ledger's record of it, audited with its hash; a file
/// of someone else's beside it stays.
#[test]
fn purge_removes_a_remittance_export_after_its_period_and_audits_it() {
    use edi_courier::sandbox::payer::{answer, read_837, Rules};
    let sshd = Sshd::start();
    let ws = submitted(&sshd);
    let sent = names_in(&ws.partner.outbound_dir);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let bytes = age_decrypt(
        &ws.partner_identity,
        &ws.partner.outbound_dir.join(&sent[0]),
    );
    let received = read_837(&bytes).unwrap();
    let now = chrono::NaiveDateTime::parse_from_str(common::NOW, "%Y-%m-%dT%H:%M:%S").unwrap();
    let answers = answer(
        &received,
        &Rules::default(),
        &edi_courier::profile::Profile::sandbox().unwrap().envelope,
        now,
        &mut edi_courier::x12::Sequential::starting_at(50),
    )
    .unwrap();
    std::fs::write(
        ws.partner.inbound_dir.join("REMIT.835"),
        answers.remit.unwrap(),
    )
    .unwrap();
    let out = ws.run(&["collect", "--partner", "acme"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let folder = ws.path("remittances/acme");
    // The payment as CSV and as JSON, both named by the collected file.
    let exports = names_in(&folder);
    assert_eq!(exports.len(), 2, "{exports:?}");
    let shas: Vec<String> = exports
        .iter()
        .map(|e| sha256_hex(&folder.join(e)))
        .collect();
    for e in &exports {
        // Made to look ten years old: its age runs from the ledger.
        touch(&folder.join(e), -3650);
    }
    let theirs = folder.join("notes.csv");
    std::fs::write(&theirs, "kept by the billing office\n").unwrap();
    touch(&theirs, -3650);
    let out = ws.run(&["purge"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(names_in(&folder).len(), 3, "not yet due: {}", said(&out));
    let out = ws.run(&["purge"], &[("EDI_COURIER_NOW", PLAIN_DUE)]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(
        names_in(&folder),
        ["notes.csv"],
        "past 90 days, and not ours kept"
    );
    let purged = purged_entries(&ws);
    for (e, sha) in exports.iter().zip(&shas) {
        let of: Vec<_> = purged
            .iter()
            .filter(|p| p["detail"].as_str().unwrap().contains(e.as_str()))
            .collect();
        assert_eq!(of.len(), 1, "{e}: {purged:?}");
        assert_eq!(of[0]["partner"], "acme", "{}", of[0]);
        // The bytes removed, by their hash; the entry's own `sha256` is
        // the one the chain knows them by (the 835 they came from).
        let detail = of[0]["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("these bytes' SHA-256 {sha}"))
                && detail.contains("written 2026-11-20T10:00:00Z by the ledger"),
            "{}",
            of[0]
        );
    }
    let verify = ws.run(&["audit", "verify"], &[]);
    assert_eq!(verify.status.code(), Some(0), "{}", said(&verify));
}

/// Sets `path`'s modification time `days` after (positive) or before
/// the tests' clock.
fn touch(path: &Path, days: i64) {
    let now = chrono::NaiveDateTime::parse_from_str(common::NOW, "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_local_timezone(chrono::Local)
        .earliest()
        .unwrap();
    let then = SystemTime::from(now + chrono::Duration::days(days));
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(then)
        .unwrap();
}

/// Regression (the rejected copy): a copy of claims set aside was aged by
/// its modification time, so an admin who opened and saved it to fix the
/// claims kept its plain PHI for another full period. It is aged from the
/// ledger's record of it, like the sealed archives.
#[test]
fn a_recorded_files_age_runs_from_the_ledger_not_its_modification_time() {
    let sshd = Sshd::start();
    let ws = submitted(&sshd);
    let sealed = ws.outbox().join("processed/clinic.csv.age");
    let rejected = ws.outbox().join("rejected/clinic.rejected.csv");
    let archived = ws
        .path("archive/out/acme")
        .join(&names_in(&ws.path("archive/out/acme"))[0]);
    // Made to look ten years old: the ledger wrote them today.
    touch(&sealed, -3650);
    touch(&archived, -3650);
    touch(&rejected, -3650);
    let out = ws.run(&["purge"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        sealed.exists() && archived.exists() && rejected.exists(),
        "{}",
        said(&out)
    );
    // The rejected copy edited by hand on day 80: past 90 days from the
    // ledger's record, it goes all the same, said so in the audit chain.
    touch(&rejected, 80);
    let out = ws.run(&["purge"], &[("EDI_COURIER_NOW", PLAIN_DUE)]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!rejected.exists(), "{}", said(&out));
    let purged = purged_entries(&ws);
    assert_eq!(purged.len(), 1, "{purged:?}");
    let detail = purged[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("clinic.rejected.csv") && detail.contains("by the ledger"),
        "{detail}"
    );
    // Made to look new: past their period by the ledger, they go.
    touch(&sealed, 3000);
    touch(&archived, 3000);
    let out = ws.run(&["purge"], &[("EDI_COURIER_NOW", SEALED_DUE)]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!sealed.exists() && !archived.exists(), "{}", said(&out));
}

#[test]
fn purge_keeps_what_edi_courier_did_not_write_in_its_folders() {
    let sshd = Sshd::start();
    let ws = submitted(&sshd);
    let outside = ws.path("outside.rejected.csv");
    std::fs::write(&outside, "not ours").unwrap();
    let strangers = [
        "remittances/notes.csv",
        "remittances/acme/notes.csv",
        "remittances/acme/TRACE-999-1.csv",
        "remittances/acme/deeper/TRACE-1-1.csv",
        "outbox/acme/processed/other.csv.age",
        "outbox/acme/rejected/notes.txt",
        "outbox/acme/rejected/deeper/old.rejected.csv",
        "archive/out/acme/ACME_20200101_000000042.x12.age",
        "archive/secret.txt",
        "archive/reports/notes.html",
    ];
    for rel in strangers {
        let path = ws.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "a stranger's file").unwrap();
        touch(&path, -4000);
    }
    std::os::unix::fs::symlink(&outside, ws.outbox().join("rejected/link.rejected.csv")).unwrap();
    touch(&outside, -4000);
    let out = ws.run(&["purge"], &[("EDI_COURIER_NOW", SEALED_DUE)]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        said(&out).contains("3 file(s) past retention removed"),
        "the rejected copy, the processed copy and the archived 837 only: {}",
        said(&out)
    );
    for rel in strangers {
        assert!(ws.path(rel).exists(), "{rel} was removed: {}", said(&out));
    }
    assert!(outside.exists(), "a link is not followed");
    assert!(ws
        .outbox()
        .join("rejected/link.rejected.csv")
        .symlink_metadata()
        .is_ok());
}

/// `original` with `[paths] SETTING = "VALUE"`.
fn with_path(original: &str, setting: &str, value: &str) -> String {
    original.replacen(
        "[paths]\n",
        &format!("[paths]\n{setting} = \"{value}\"\n"),
        1,
    )
}

#[test]
fn a_retention_folder_that_holds_the_ledger_keys_or_config_is_refused() {
    let sshd = Sshd::start();
    let ws = submitted(&sshd);
    // Everything in the workspace ten years old.
    for file in ws.all_files() {
        if file.symlink_metadata().is_ok_and(|m| m.is_file()) {
            touch(&file, -3650);
        }
    }
    let before = ws.all_files();
    let original = std::fs::read_to_string(&ws.config).unwrap();
    let cases = [
        (
            "remittances",
            ".".to_owned(),
            "the folder of the configuration file itself",
        ),
        (
            "archive",
            ".".to_owned(),
            "the folder of the configuration file itself",
        ),
        ("remittances", "/".to_owned(), "is the root folder"),
        ("remittances", "..".to_owned(), "the configuration's folder"),
        ("archive", "keys".to_owned(), "identities[1]"),
        ("remittances", "outbox".to_owned(), "paths.outbox"),
        // Inside a folder the program takes files from: an archived export
        // in a partner's outbox folder would be taken for a new one.
        (
            "archive",
            "outbox/acme".to_owned(),
            "lies inside paths.outbox",
        ),
        (
            "remittances",
            "spool/in".to_owned(),
            "lies inside paths.spool",
        ),
        ("archive", "remittances".to_owned(), "paths.remittances"),
        (
            "remittances",
            ws.dir.path().display().to_string(),
            "the folder of the configuration file itself",
        ),
    ];
    for (setting, value, why) in cases {
        std::fs::write(&ws.config, with_path(&original, setting, &value)).unwrap();
        let run = |args: &[&str]| ws.run(args, &[("EDI_COURIER_NOW", SEALED_DUE)]);
        let check = run(&["check", "--offline"]);
        assert_ne!(
            check.status.code(),
            Some(0),
            "{setting} = {value}: {}",
            said(&check)
        );
        assert!(
            said(&check).contains(&format!("paths.{setting}")) && said(&check).contains(why),
            "{setting} = {value}: {}",
            said(&check)
        );
        let dry = run(&["purge", "--dry-run"]);
        assert_ne!(
            dry.status.code(),
            Some(0),
            "{setting} = {value}: {}",
            said(&dry)
        );
        assert!(!said(&dry).contains("past retention"), "{}", said(&dry));
        // Never for real on / or ..: only the workspace's own folders.
        if value != "/" && value != ".." {
            let out = run(&["purge"]);
            assert_ne!(
                out.status.code(),
                Some(0),
                "{setting} = {value}: {}",
                said(&out)
            );
        }
    }
    std::fs::write(&ws.config, &original).unwrap();
    for file in before {
        let name = file.to_string_lossy();
        if name.ends_with("-wal") || name.ends_with("-shm") {
            continue; // the ledger's, gone as a connection closed
        }
        assert!(file.exists(), "{} was removed", file.display());
    }
    assert!(ws.config.exists() && ws.our_identity.exists());
}

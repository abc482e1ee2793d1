//! PHI at rest after a real loop against OpenSSH: every file edi-courier
//! wrote is 0600 in a 0700 folder, the processed export is sealed to our
//! archive key (and the Go `age` CLI opens it), and `purge` removes plain
//! copies and sealed archives after their periods, each removal audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

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

/// Makes `path` `days` old at the tests' fixed clock (`common::NOW`).
fn age_days(path: &Path, days: u64) {
    let now = chrono::NaiveDateTime::parse_from_str(common::NOW, "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_local_timezone(chrono::Local)
        .earliest()
        .unwrap();
    let then = SystemTime::from(now) - Duration::from_secs(days * 86_400);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(then)
        .unwrap();
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

#[test]
fn purge_removes_each_kind_after_its_period_and_audits_it() {
    let sshd = Sshd::start();
    let ws = submitted(&sshd);
    let rejected = ws.outbox().join("rejected/clinic.rejected.csv");
    let sealed = ws.outbox().join("processed/clinic.csv.age");
    // Plain copies go after 90 days by default, sealed archives after 2557.
    age_days(&rejected, 100);
    age_days(&sealed, 100);
    let dry = ws.run(&["purge", "--dry-run"], &[]);
    assert!(
        said(&dry).contains("1 file(s) past retention"),
        "{}",
        said(&dry)
    );
    assert!(rejected.exists(), "a dry run removes nothing");
    let out = ws.run(&["purge"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!rejected.exists(), "the plain copy is past 90 days");
    assert!(sealed.exists(), "the sealed archive is kept for years");
    age_days(&sealed, 2600);
    let out = ws.run(&["purge"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!sealed.exists());
    let audit = ws.run(&["audit", "export"], &[]);
    let purged = String::from_utf8_lossy(&audit.stdout)
        .lines()
        .filter(|l| l.contains("\"action\":\"purged\""))
        .count();
    assert_eq!(purged, 2, "{}", said(&audit));
    let verify = ws.run(&["audit", "verify"], &[]);
    assert_eq!(verify.status.code(), Some(0), "{}", said(&verify));
}

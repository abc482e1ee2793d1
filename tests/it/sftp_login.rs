//! Partners that take a password: OpenSSH's sshd with password login,
//! keyboard-interactive through PAM, and a key then a password
//! (`AuthenticationMethods publickey,password`), each delivering a real
//! submit; a wrong password refused once, clearly, and never written
//! anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::sshd::{Auth, Sshd, TEST_PASSWORD};
use common::workspace::{names_in, Workspace};
use common::{root, said};

/// A workspace logging in with `password` (and the key when `key` is set).
fn workspace(sshd: &Sshd, password: &str, key: bool) -> Workspace {
    let mut ws = Workspace::new(sshd);
    let file = ws.path("keys/sftp-password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    ws.partner.password_file = Some(file);
    ws.partner.key_login = key;
    ws.write_config(&ws.partner.clone(), &sshd.user);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    ws
}

fn delivered(ws: &Workspace) -> usize {
    names_in(&ws.partner.outbound_dir)
        .iter()
        .filter(|n| n.ends_with(".x12.age"))
        .count()
}

/// Every file the run left behind, and what it printed: no password.
fn assert_password_nowhere(ws: &Workspace, outputs: &[&Output], password: &str) {
    for out in outputs {
        assert!(!said(out).contains(password), "printed: {}", said(out));
    }
    for file in ws.all_files() {
        if file.ends_with("keys/sftp-password") {
            continue;
        }
        // The ledger's -wal/-shm may vanish as a connection closes.
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{} holds the password",
            file.display()
        );
    }
}

fn logs_in_and_delivers(auth: Auth, key: bool, used: &str) {
    let sshd = Sshd::start_with(auth);
    let ws = workspace(&sshd, TEST_PASSWORD, key);
    let check = ws.run(&["check"], &[]);
    assert_eq!(check.status.code(), Some(0), "{}", said(&check));
    assert!(
        said(&check).contains(&format!("login accepted by {used}")),
        "{used}: {}",
        said(&check)
    );
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(delivered(&ws), 1, "{}", said(&out));
    assert!(ws.claim_statuses().iter().all(|(s, _)| s == "sent"));
    assert_password_nowhere(&ws, &[&check, &out], TEST_PASSWORD);
}

#[test]
fn password_login_delivers() {
    logs_in_and_delivers(Auth::Password, false, "password");
}

#[test]
fn keyboard_interactive_login_delivers() {
    logs_in_and_delivers(Auth::KeyboardInteractive, false, "keyboard-interactive");
}

#[test]
fn key_then_password_login_delivers() {
    logs_in_and_delivers(Auth::KeyThenPassword, true, "publickey then password");
}

#[test]
fn a_wrong_password_is_refused_once_clearly_and_written_nowhere() {
    for auth in [Auth::Password, Auth::KeyboardInteractive] {
        let sshd = Sshd::start_with(auth);
        let wrong = "Wrong-Pw-Canary-9917";
        let ws = workspace(&sshd, wrong, false);
        let out = ws.submit(&[]);
        assert_eq!(out.status.code(), Some(2), "{auth:?}: {}", said(&out));
        assert!(
            said(&out).contains("login refused for user edicourier"),
            "{auth:?}: {}",
            said(&out)
        );
        assert_eq!(delivered(&ws), 0);
        assert!(ws.claim_statuses().iter().all(|(s, _)| s == "queued"));
        // One try per run: a refused login is not retried (partner
        // `retry` is for dropped connections), so no lock-out storm.
        let log = sshd.log();
        let failures = log
            .lines()
            .filter(|l| l.contains("Failed password") || l.contains("Failed keyboard-interactive"))
            .count();
        assert_eq!(
            failures, 1,
            "{auth:?}: one failed attempt in the sshd log:\n{log}"
        );
        assert_password_nowhere(&ws, &[&out], wrong);
    }
}

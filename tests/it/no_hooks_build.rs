//! The binary users run is built without the `test-hooks` feature: a stray
//! `EDI_COURIER_FAULT` (or clock variable) left in a unit file must not kill
//! a delivery halfway or skew the clock, and `check` must point it out.
//! These tests run the binary `scripts/test` builds without the hooks,
//! before the test build (which obeys the same variables:
//! tests/it/delivery_faults.rs), and keeps as `target/no-hooks/edi-courier`.
//! It is built in the dev profile, not the release one: the hooks are a cargo
//! feature, which no profile setting turns on or off, and the dev build shares
//! every dependency with the test build where a release build would compile
//! them all again (7–8 of CI's 19 minutes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::PathBuf;

use common::sshd::Sshd;
use common::workspace::{names_in, Workspace, PARTNER};
use common::{root, said};

fn hookless_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join("no-hooks/edi-courier");
    assert!(
        bin.exists(),
        "{} is missing: scripts/test builds it (cargo build --bin edi-courier, without --features test-hooks, then copies it there)",
        bin.display()
    );
    bin
}

#[test]
fn the_binary_without_hooks_ignores_an_injected_fault_and_delivers() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    // The test build dies by SIGKILL right after the upload with this set.
    let out = ws.run_binary(
        &hookless_binary(),
        &["submit", "--partner", PARTNER],
        &[("EDI_COURIER_FAULT", "uploaded")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let delivered: Vec<String> = names_in(&ws.partner.outbound_dir)
        .into_iter()
        .filter(|n| n.ends_with(".x12.age"))
        .collect();
    assert_eq!(
        delivered.len(),
        1,
        "one sealed 837 on the server: {delivered:?}"
    );
    let statuses = ws.claim_statuses();
    assert!(
        statuses.iter().all(|(s, _)| s == "sent") && !statuses.is_empty(),
        "every claim sent: {statuses:?}"
    );
}

#[test]
fn check_on_the_binary_without_hooks_names_stray_test_variables() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let out = ws.run_binary(
        &hookless_binary(),
        &["check"],
        &[
            ("EDI_COURIER_FAULT", "uploaded"),
            ("EDI_COURIER_CLOCK", "2027-01-01T00:00:00Z*3600"),
        ],
    );
    let text = said(&out);
    // The workspace also sets EDI_COURIER_NOW for every run.
    for var in ["EDI_COURIER_FAULT", "EDI_COURIER_CLOCK", "EDI_COURIER_NOW"] {
        assert!(
            text.contains(&format!("{var} is set but ignored")),
            "{var} reported: {text}"
        );
    }
}

//! Every integration test in one test binary: one module per former
//! `tests/NAME.rs` (now `tests/it/NAME.rs`), so a test keeps its name as
//! `NAME::test_fn` and `cargo test --test it NAME::` runs what
//! `cargo test --test NAME` ran. Each file under tests/ used to be its own
//! binary, each linking the whole library and its dependencies (~170 MB,
//! 38 links, and `common` compiled 36 times, in every `clippy --all-targets`
//! too); one binary builds in a fraction of that and packs the tests onto
//! the cores without a tail per binary. `every_test_file_is_a_module` below
//! fails if a file in tests/it/ is not declared here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod acks;
mod audit_chain;
mod bounded_reader;
mod card_guard;
mod claim_fields;
mod collect_files;
mod config;
mod config_edges;
mod crypt;
mod daemon;
mod delivery;
mod delivery_faults;
mod fail_closed;
mod failover;
mod hostile_folder;
mod kind_groups;
mod ledger;
mod maps;
mod no_hooks_build;
mod openpgp;
mod outbox;
mod payer_money;
mod phi_redaction;
mod postgres;
mod property;
mod reconcile;
mod remit;
mod report;
mod report_spool;
mod retention;
mod sandbox;
mod schedule;
mod scrub_codes;
mod scrub_fields;
mod scrub_text;
mod sftp_login;
mod submit_guards;
mod systemd;
mod translate;
mod upload_styles;
mod x12_samples;
mod x12_types_crosscheck;

/// A file in tests/it/ that is not declared above would never be compiled
/// nor run: none is missing. A new suite goes in tests/it/, not beside it
/// (where it would be a binary of its own again): none is there.
#[test]
fn every_test_file_is_a_module() {
    let tests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let beside: Vec<_> = std::fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    assert!(
        beside.is_empty(),
        "move {beside:?} into tests/it/ (a `mod` in tests/it/main.rs, `use crate::common;`)"
    );
    let main = include_str!("main.rs");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".rs"))
        else {
            continue;
        };
        if name != "main" && !main.lines().any(|l| l == format!("mod {name};")) {
            missing.push(name.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "tests/it/main.rs lacks `mod` for {missing:?}"
    );
}

//! The ledger on PostgreSQL: a real server (tests/common/postgres.rs),
//! chosen by the ledger URL or a URL file, reported by `check` with its
//! engine, version and migration level, its password never shown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::postgres::{sweep_dead_templates, template, Postgres, TEMPLATE_PREFIX};
use common::said;
use common::workspace::Workspace;
use edi_courier::ledger::{ControlKind, Ledger};
use std::os::unix::fs::PermissionsExt;

/// Points the workspace's config at `url_file` instead of its own ledger.
fn use_url_file(ws: &Workspace, url: &str, mode: u32) -> std::path::PathBuf {
    let file = ws.path("ledger.url");
    std::fs::write(&file, format!("{url}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    let config = std::fs::read_to_string(&ws.config).unwrap();
    let config = config.replace(
        &format!("url = \"{}\"", ws.ledger_url),
        &format!("url_file = \"{}\"", file.display()),
    );
    std::fs::write(&ws.config, config).unwrap();
    file
}

#[test]
fn check_reports_the_ledger_engine_version_and_level_on_both_engines() {
    let ws = Workspace::offline();
    if ws.postgres.is_none() {
        // Regression: `check` made (and migrated) a ledger that was not
        // there; it says so and leaves it to the first run.
        let out = ws.run(&["check", "--offline"], &[]);
        let text = said(&out);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("ledger: SQLite, not created yet (it will be at the first run)"),
            "{text}"
        );
        assert!(!ws.path("ledger.sqlite").exists(), "check made the ledger");
        assert_eq!(ws.run(&["status"], &[]).status.code(), Some(0));
    }
    let out = ws.run(&["check", "--offline"], &[]);
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    if ws.postgres.is_none() {
        assert!(text.contains("ledger: SQLite 3."), "{text}");
    }
    assert!(text.contains("migration level 18"), "{text}");

    // The same workspace on PostgreSQL, its URL (with a password) in a
    // private file.
    let pg = Postgres::start();
    let url = pg
        .database()
        .replace("postgres@", "postgres:Hunter2-Not-Shown@");
    use_url_file(&ws, &url, 0o600);
    let out = ws.run(&["check", "--offline"], &[]);
    let text = said(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ledger: PostgreSQL 15."), "{text}");
    assert!(text.contains("migration level 18"), "{text}");
    assert!(text.contains("postgres:***@127.0.0.1"), "{text}");
    assert!(!text.contains("Hunter2"), "the password is shown: {text}");
}

#[test]
fn a_url_file_others_may_read_is_refused_and_not_quoted() {
    let ws = Workspace::offline();
    let pg = Postgres::start();
    let url = pg
        .database()
        .replace("postgres@", "postgres:Hunter2-Not-Shown@");
    use_url_file(&ws, &url, 0o644);
    let out = ws.run(&["check", "--offline"], &[]);
    let text = said(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("ledger.url_file"), "{text}");
    assert!(!text.contains("Hunter2"), "the password is shown: {text}");
}

#[tokio::test]
async fn two_daemons_on_one_postgres_ledger_never_get_the_same_number() {
    let pg = Postgres::start();
    let url = pg.database();
    let (a, b) = tokio::join!(Ledger::open(&url), Ledger::open(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    let take = |l: Ledger| async move {
        let mut got = Vec::new();
        for _ in 0..50 {
            got.push(
                l.reserve("US", "ACME", ControlKind::Interchange, 3)
                    .await
                    .unwrap(),
            );
        }
        l.close().await;
        got
    };
    let (x, y) = tokio::join!(take(a), take(b));
    let mut all: Vec<u32> = x.into_iter().chain(y).flatten().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=300).collect::<Vec<u32>>());
}

/// Regression: the initdb template lived in a `static` that is never
/// dropped, so every test binary that started PostgreSQL left its ~39 MB
/// template in /tmp. A test process of its own makes one and ends: its
/// template must be gone after it.
#[test]
fn the_template_cluster_goes_away_with_its_test_process() {
    const REPORT: &str = "EDI_COURIER_TEST_TEMPLATE_REPORT";
    if let Some(report) = std::env::var_os(REPORT) {
        // The child run: make the template, say where it is, end.
        std::fs::write(report, template().to_str().unwrap()).unwrap();
        return;
    }
    // This test's name as the harness knows it (its module path, less the
    // crate's name, then the function's).
    let name = match module_path!().split_once("::") {
        Some((_, module)) => {
            format!("{module}::the_template_cluster_goes_away_with_its_test_process")
        }
        None => "the_template_cluster_goes_away_with_its_test_process".to_owned(),
    };
    let scratch = tempfile::tempdir().unwrap();
    let report = scratch.path().join("template");
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--test-threads=1"])
        .env(REPORT, &report)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(child.status.success(), "{}", said(&child));
    assert!(
        String::from_utf8_lossy(&child.stdout).contains("1 passed"),
        "the child ran no test: {}",
        said(&child)
    );
    let template = std::path::PathBuf::from(std::fs::read_to_string(&report).unwrap());
    let name = template.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with(TEMPLATE_PREFIX), "{name}");
    let started = std::time::Instant::now();
    while template.exists() && started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !template.exists(),
        "{} outlived its test process",
        template.display()
    );
}

/// Template folders whose test process is gone (its reaper killed too) are
/// swept; a live process's are kept.
#[test]
fn templates_of_dead_test_processes_are_swept() {
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let tmp = std::env::temp_dir();
    let dead = tmp.join(format!("{TEMPLATE_PREFIX}{}-sweeptest", gone.id()));
    let live = tmp.join(format!("{TEMPLATE_PREFIX}{}-sweeptest", std::process::id()));
    for dir in [&dead, &live] {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/PG_VERSION"), "15\n").unwrap();
    }
    sweep_dead_templates();
    let (dead_left, live_left) = (dead.exists(), live.exists());
    std::fs::remove_dir_all(&live).ok();
    std::fs::remove_dir_all(&dead).ok();
    assert!(!dead_left, "{} of a dead process was kept", dead.display());
    assert!(live_left, "{} of a live process was swept", live.display());
}

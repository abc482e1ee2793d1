//! The daemon's scheduling, driven through its own code on an injected
//! clock (`EDI_COURIER_CLOCK=START*FACTOR`): local times across a DST
//! change, no overlapping runs, one catch-up run after downtime, two
//! daemons on one ledger running each tick once, and leases judged by the
//! database's clock: a daemon whose clock is far behind keeps its lease,
//! and a run whose lease is taken stops before its next step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::wait_for;
use common::workspace::Workspace;
use std::time::Duration;

/// A workspace whose partner is never contacted (check-deadlines and
/// digest jobs only talk to the ledger), its ledger created before the
/// daemons start.
fn workspace() -> Workspace {
    let ws = Workspace::offline();
    assert_eq!(ws.run(&["status"], &[]).status.code(), Some(0));
    ws
}

fn ticks(runs: &[(String, String, String)]) -> Vec<&str> {
    runs.iter().map(|(t, _, _)| t.as_str()).collect()
}

#[test]
fn an_18_00_new_york_job_runs_at_18_00_local_on_both_sides_of_the_dst_change() {
    let ws = workspace();
    ws.job(
        "evening",
        "kind = \"check-deadlines\"\nschedule = \"0 0 18 * * *\"\ntimezone = \"America/New_York\"\n",
    );
    // 2027-03-13 15:00 EST (the clock starts a little before, so the daemon
    // is up before 18:00); DST starts 2027-03-14 02:00. 20,000× real time.
    let mut d = ws.daemon(&[("EDI_COURIER_CLOCK", "2027-03-13T20:00:00Z*20000")]);
    assert!(
        wait_for(20, || ws.job_runs("evening").len() >= 3),
        "{}",
        d.log_text()
    );
    d.stop();
    let runs = ws.job_runs("evening");
    assert_eq!(
        &ticks(&runs)[..3],
        [
            "2027-03-13T23:00:00Z", // 18:00 EST (UTC−5)
            "2027-03-14T22:00:00Z", // 18:00 EDT (UTC−4), not 19:00
            "2027-03-15T22:00:00Z",
        ],
        "{runs:?}"
    );
    assert!(runs.iter().all(|(_, o, _)| o == "done"), "{runs:?}");
}

#[test]
fn a_tick_while_the_job_still_runs_is_skipped_and_recorded_never_overlapped() {
    let ws = workspace();
    // Submitting to a partner that does not answer takes seconds (timeouts
    // and retries); the job is due every second.
    ws.job(
        "busy",
        "kind = \"submit-claims\"\nschedule = \"* * * * * *\"\npartner = \"acme\"\n",
    );
    std::fs::write(
        ws.outbox().join("claims.csv"),
        std::fs::read(common::root().join("examples/clinic-claims.csv")).unwrap(),
    )
    .unwrap();
    // Port 9 (discard) refuses at once; make it slow instead: a listener that never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut p = ws.partner.clone();
    p.port = silent.local_addr().unwrap().port();
    ws.write_config(&p, "nobody");
    let mut d = ws.daemon(&[]);
    assert!(
        wait_for(30, || ws
            .job_runs("busy")
            .iter()
            .filter(|(_, o, _)| o == "skipped")
            .count()
            >= 2),
        "{:?}\n{}",
        ws.job_runs("busy"),
        d.log_text()
    );
    d.stop();
    drop(silent);
    let runs = ws.job_runs("busy");
    // Never two runs at once: the log shows starts and finishes alternating.
    let log = d.log_text();
    let mut open = 0;
    for line in log.lines() {
        if line.contains("run started") && line.contains("busy") {
            open += 1;
            assert_eq!(open, 1, "two runs of one job at once:\n{log}");
        }
        if line.contains("run finished") && line.contains("busy") {
            open -= 1;
        }
    }
    assert!(runs.iter().any(|(_, o, _)| o == "skipped"), "{runs:?}");
}

#[test]
fn a_catch_up_job_runs_once_for_the_ticks_missed_while_down_and_others_do_not() {
    let ws = workspace();
    ws.job(
        "hourly",
        "kind = \"digest\"\nschedule = \"0 0 * * * *\"\ncatch_up = true\n",
    );
    ws.job(
        "hourly-no-catch-up",
        "kind = \"digest\"\nschedule = \"0 0 * * * *\"\n",
    );
    // First life: 09:59:30 → past 10:00 and 11:00.
    let mut d = ws.daemon(&[("EDI_COURIER_CLOCK", "2027-01-05T09:59:30Z*3600")]);
    assert!(
        wait_for(20, || ws.job_runs("hourly").len() >= 2),
        "{}",
        d.log_text()
    );
    d.stop();
    let before = ws.job_runs("hourly").len();
    let last_before = ws.job_runs("hourly").last().unwrap().0.clone();
    // Down for most of a day; back at 18:30.
    let mut d = ws.daemon(&[("EDI_COURIER_CLOCK", "2027-01-05T18:30:00Z*1")]);
    assert!(
        wait_for(20, || ws.job_runs("hourly").len() > before),
        "{}",
        d.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    d.stop();
    let runs = ws.job_runs("hourly");
    let new: Vec<_> = runs
        .iter()
        .filter(|(t, _, _)| t.as_str() > last_before.as_str())
        .collect();
    assert_eq!(
        new.len(),
        1,
        "one catch-up run, not one per missed hour: {runs:?}"
    );
    assert_eq!(new[0].0, "2027-01-05T18:00:00Z", "the latest missed tick");
    let other = ws.job_runs("hourly-no-catch-up");
    assert!(
        other
            .iter()
            .all(|(t, _, _)| t.as_str() <= last_before.as_str()),
        "no catch-up without catch_up: {other:?}"
    );
}

#[test]
fn two_daemons_on_one_ledger_run_each_tick_once() {
    let ws = workspace();
    ws.job(
        "every-minute",
        "kind = \"check-deadlines\"\nschedule = \"0 * * * * *\"\n",
    );
    let clock = ("EDI_COURIER_CLOCK", "2027-02-01T08:00:30Z*120");
    let mut a = ws.daemon(&[clock]);
    let mut b = ws.daemon(&[clock]);
    assert!(
        wait_for(30, || ws.job_runs("every-minute").len() >= 8),
        "{}\n{}",
        a.log_text(),
        b.log_text()
    );
    a.stop();
    b.stop();
    let runs = ws.job_runs("every-minute");
    let mut seen = ticks(&runs);
    let n = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), n, "a tick ran twice: {runs:?}");
    // Consecutive minutes, none missing, whichever daemon ran each.
    for pair in runs.windows(2) {
        let t0 = chrono::DateTime::parse_from_rfc3339(&pair[0].0).unwrap();
        let t1 = chrono::DateTime::parse_from_rfc3339(&pair[1].0).unwrap();
        assert_eq!((t1 - t0).num_seconds(), 60, "{runs:?}");
    }
    assert!(runs.iter().all(|(_, o, _)| o == "done"), "{runs:?}");
}

#[test]
fn the_shipped_jobs_load_and_run_once_through_run() {
    let ws = workspace();
    for f in std::fs::read_dir(common::root().join("jobs"))
        .unwrap()
        .flatten()
    {
        if f.path().extension().is_some_and(|e| e == "toml") {
            std::fs::create_dir_all(ws.path("jobs")).unwrap();
            std::fs::copy(f.path(), ws.path("jobs").join(f.file_name())).unwrap();
        }
    }
    for job in ["check-deadlines", "daily-digest"] {
        let out = ws.run(&["run", job], &[]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.contains(&format!("{job} (")) && said.contains("done"),
            "{said}"
        );
    }
    let out = ws.run(&["run", "no-such-job"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no job named"));
}

#[test]
fn check_offline_refuses_a_bad_job_file_before_the_daemon_would_start() {
    let ws = workspace();
    ws.job("ok", "kind = \"digest\"\nschedule = \"0 0 7 * * *\"\n");
    let out = ws.run(&["check", "--offline"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("jobs in"));
    ws.job(
        "bad",
        "kind = \"digest\"\nschedule = \"0 0 25 * * *\"\ntimezone = \"Mars/Olympus\"\n",
    );
    let out = ws.run(&["check", "--offline"], &[]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("bad.toml: schedule"), "{said}");
}

/// Alert kinds waiting in the ledger (no `[smtp]`: nothing is mailed).
fn pending_alert_kinds(ws: &Workspace) -> Vec<String> {
    ws.pending_alerts().into_iter().map(|a| a.kind).collect()
}

fn outcomes(runs: &[(String, String, String)]) -> Vec<&str> {
    runs.iter().map(|(_, o, _)| o.as_str()).collect()
}

/// Regression: a job that panicked was never released — its run record
/// stayed `running` and every later tick was `skipped` until a restart.
#[test]
fn a_job_that_panics_is_recorded_failed_alerted_and_runs_again_at_its_next_tick() {
    let ws = workspace();
    ws.job(
        "deadlines",
        "kind = \"check-deadlines\"\nschedule = \"* * * * * *\"\n",
    );
    let mut d = ws.daemon(&[("EDI_COURIER_FAULT", "panic-job")]);
    let failed = || {
        outcomes(&ws.job_runs("deadlines"))
            .iter()
            .filter(|o| **o == "failed")
            .count()
    };
    let ran_again = wait_for(30, || failed() >= 3);
    d.stop();
    let runs = ws.job_runs("deadlines");
    assert!(ran_again, "{runs:?}\n{}", d.log_text());
    // Released every time: later ticks run (and fail) again. A tick that
    // comes while a slow run is still unwinding on a loaded machine may be
    // skipped, but the run is never left `running` for good.
    let outcomes = outcomes(&runs);
    assert!(
        outcomes.iter().filter(|o| **o == "running").count() <= 1
            && outcomes.last() != Some(&"skipped"),
        "never left busy: {runs:?}"
    );
    assert!(
        pending_alert_kinds(&ws).iter().any(|k| k == "job-failed"),
        "the admin hears of it"
    );
}

/// Regression: a submit job finding the partner's lock held by a manual
/// `submit` was a failed run with a "job failed" alert; it is `busy` now,
/// and nobody is alerted.
#[test]
fn a_run_that_finds_the_partner_locked_by_a_manual_run_is_busy_not_failed() {
    let ws = workspace();
    ws.job(
        "submit",
        "kind = \"submit-claims\"\nschedule = \"* * * * * *\"\npartner = \"acme\"\n",
    );
    let dir = ws.path("spool/out");
    std::fs::create_dir_all(&dir).unwrap();
    let held = std::fs::File::create(dir.join("acme.lock")).unwrap();
    held.lock().unwrap();
    let mut d = ws.daemon(&[]);
    let seen = wait_for(30, || {
        outcomes(&ws.job_runs("submit"))
            .iter()
            .filter(|o| **o == "busy")
            .count()
            >= 2
    });
    d.stop();
    drop(held);
    let runs = ws.job_runs("submit");
    assert!(seen, "{runs:?}\n{}", d.log_text());
    assert!(
        outcomes(&runs)
            .iter()
            .all(|o| *o == "busy" || *o == "running"),
        "{runs:?}"
    );
    assert!(
        !pending_alert_kinds(&ws).iter().any(|k| k == "job-failed"),
        "no job-failed alert: {:?}",
        pending_alert_kinds(&ws)
    );
}

/// Runs `f` on the workspace's ledger, as another daemon would.
fn with_ledger<T>(ws: &Workspace, f: impl AsyncFnOnce(&edi_courier::ledger::Ledger) -> T) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ledger = edi_courier::ledger::Ledger::open(&ws.ledger_url)
            .await
            .unwrap();
        let out = f(&ledger).await;
        ledger.close().await;
        out
    })
}

/// Lets every lease on `job` lapse, as the database's clock sees it.
fn expire_lease(ws: &Workspace, job: &str) {
    common::with_ledger_pool(&ws.ledger_url, async |pool| {
        let done =
            sqlx::query("UPDATE job_leases SET expires_at = '2000-01-01T00:00:00Z' WHERE job = $1")
                .bind(job)
                .execute(pool)
                .await
                .unwrap();
        assert_eq!(done.rows_affected(), 1, "the paused run holds the lease");
    })
}

/// Leases used to be stamped by the host: a daemon whose clock was behind
/// wrote a lease that had lapsed already, and another daemon took the job
/// while it ran. And a run whose lease was taken went on to its next step.
#[test]
fn a_lease_is_judged_by_the_database_clock_and_a_run_that_loses_it_stops_before_its_next_step() {
    let ws = workspace();
    ws.job("digest", "kind = \"digest\"\nschedule = \"* * * * * *\"\n");
    let flag = ws.path("paused");
    // This daemon's clock is 25 years behind the database's.
    let mut d = ws.daemon(&[
        ("EDI_COURIER_CLOCK", "2001-01-01T00:00:00Z*1"),
        (
            "EDI_COURIER_FAULT",
            &format!("pause-job={}", flag.display()),
        ),
        ("EDI_COURIER_LEASE_SECS", "3"),
    ]);
    assert!(wait_for(30, || flag.exists()), "{}", d.log_text());
    let other = "other-host:1";
    let year = Duration::from_secs(365 * 24 * 3600);
    // Held, whatever the holder's clock says.
    assert!(
        !with_ledger(&ws, async |l| l
            .take_lease("digest", other, year)
            .await
            .unwrap()),
        "another daemon took a lease that is held"
    );

    // The lease lapses in the database; another daemon takes the job.
    expire_lease(&ws, "digest");
    assert!(with_ledger(&ws, async |l| l
        .take_lease("digest", other, year)
        .await
        .unwrap()));
    let lost = wait_for(30, || {
        outcomes(&ws.job_runs("digest")).contains(&"lease-lost")
    });
    std::fs::remove_file(&flag).unwrap();
    assert!(lost, "{:?}\n{}", ws.job_runs("digest"), d.log_text());
    assert!(d.log_text().contains("lease lost"), "{}", d.log_text());
    // The run stopped where it was: the digest's report was never written
    // nor its mail queued, and the daemon leaves the job to its holder.
    let n = ws.job_runs("digest").len();
    assert!(wait_for(30, || ws.job_runs("digest").len() > n + 1));
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
    let runs = ws.job_runs("digest");
    assert!(
        outcomes(&runs)
            .iter()
            .all(|o| ["lease-lost", "skipped"].contains(o)),
        "{runs:?}"
    );
    assert!(!pending_alert_kinds(&ws).iter().any(|k| k == "digest"));
    // The admin is told, once however many times it happened.
    assert_eq!(
        pending_alert_kinds(&ws)
            .iter()
            .filter(|k| *k == "lease-lost")
            .count(),
        1,
        "{:?}",
        pending_alert_kinds(&ws)
    );
    let reports: Vec<_> = ws
        .all_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("report-"))
        .collect();
    assert!(reports.is_empty(), "{reports:?}");
    // The other daemon's lease was left alone.
    assert!(!with_ledger(&ws, async |l| l
        .take_lease("digest", "third-host:1", year)
        .await
        .unwrap()));
}

/// Regression (tester's finding): a schedule that parses but never fires
/// (30 February) passed `check`, daemon start and SIGHUP; the daemon then
/// only logged that the job stops, and nobody was told. It is a bad job
/// file now, refused wherever one is.
#[test]
fn a_schedule_that_never_fires_is_refused_by_check_daemon_start_and_reload() {
    let ws = workspace();
    let never = "kind = \"digest\"\nschedule = \"0 0 0 30 2 *\"\ntimezone = \"America/New_York\"\n";
    ws.job("feb30", never);
    let out = ws.run(&["check", "--offline"], &[]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("feb30.toml: schedule") && said.contains("never fires"),
        "{said}"
    );
    let out = ws.run_bounded(&["daemon"], 60);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("feb30.toml: schedule"), "{err}");

    // Running with a good job: a reload that brings the bad one in is refused.
    std::fs::remove_file(ws.path("jobs/feb30.toml")).unwrap();
    ws.job(
        "deadlines",
        "kind = \"check-deadlines\"\nschedule = \"* * * * * *\"\n",
    );
    let mut d = ws.daemon(&[]);
    assert!(
        wait_for(20, || !ws.job_runs("deadlines").is_empty()),
        "{}",
        d.log_text()
    );
    ws.job("feb30", never);
    d.signal("HUP");
    assert!(
        wait_for(10, || pending_alert_kinds(&ws)
            .iter()
            .any(|k| k == "config-refused")),
        "{}",
        d.log_text()
    );
    let log = d.log_text();
    assert!(
        log.contains("reload refused") && log.contains("feb30.toml: schedule"),
        "{log}"
    );
    let n = ws.job_runs("deadlines").len();
    assert!(
        wait_for(10, || ws.job_runs("deadlines").len() > n),
        "the old jobs still run"
    );
    assert!(d.is_running());
    d.stop();
}

/// A schedule that runs out while the daemon runs (croner looks no further
/// than the year 5000; a clock started there): the job stops, and the
/// admin is told by a `job-failed` alert, not by a log line alone.
#[test]
fn a_schedule_that_runs_out_while_the_daemon_runs_raises_job_failed() {
    let ws = workspace();
    ws.job("hourly", "kind = \"digest\"\nschedule = \"0 0 * * * *\"\n");
    let mut d = ws.daemon(&[("EDI_COURIER_CLOCK", "5000-01-01T00:00:00Z*1")]);
    let alerted = wait_for(20, || {
        pending_alert_kinds(&ws).iter().any(|k| k == "job-failed")
    });
    let log = d.log_text();
    d.stop();
    assert!(alerted, "{log}");
    assert!(log.contains("the schedule has no next time"), "{log}");
    assert!(ws.job_runs("hourly").is_empty(), "{log}");
}

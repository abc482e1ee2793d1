//! The daemon against real servers: OpenSSH sshd as the partner and
//! aiosmtpd receiving the alerts. Claims go out, responses come back, a
//! rejection and an overdue 835 each produce exactly one mail, the digest
//! arrives, a canary patient never shows in a log line or a mail; alerts
//! wait out an SMTP outage; SIGTERM mid-upload leaves the ledger whole; a
//! cut 835 is quarantined and mailed once, naming what to do next.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::proxy::Fault;
use common::smtp::SmtpSink;
use common::sshd::Sshd;
use common::tools::{age_decrypt, age_seal, run};
use common::workspace::{names_in, Workspace};
use common::*;
use edi_courier::model::response::{ClaimStatus, StatusCode};
use edi_courier::profile::Profile;
use edi_courier::sandbox::payer::{answer, read_837, Rules};
use edi_courier::x12::{write_277ca, Answer277, Sequential};
use std::time::Duration;

const CANARY_NAME: &str = "ZQXCANARYLAST";
const CANARY_MEMBER: &str = "CANARY4417MEMBER";

fn smtp_config(port: u16) -> String {
    format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         from = \"edi-courier@clinic.example\"\nto = [\"billing@clinic.example\"]\n"
    )
}

/// Seals with the age CLI into the partner's outbound folder.
fn drop_sealed(ws: &Workspace, name: &str, plain: &[u8]) {
    age_seal(&ws.our_recipient, plain, &ws.partner.inbound_dir.join(name));
}

/// The clinic's example export with a canary: a patient whose name and
/// member id appear nowhere else, so any leak of them can be told.
fn drop_canary_export(ws: &Workspace) {
    let export = std::fs::read_to_string(root().join("examples/clinic-claims.csv"))
        .unwrap()
        .replace("DOE,JANE", &format!("{CANARY_NAME},JANE"))
        .replace("XJH100200300", CANARY_MEMBER);
    std::fs::write(ws.outbox().join("clinic.csv"), &export).unwrap();
}

#[test]
fn the_daemon_sends_collects_alerts_once_and_never_mails_a_patient() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let smtp = SmtpSink::start();
    drop_canary_export(&ws);
    ws.append_config(&format!(
        "deadlines = {{ ta1_hours = 48, ack_999_hours = 48, ack_277ca_hours = 48, remit_835_hours = 1 }}\n{}",
        smtp_config(smtp.port)
    ));
    for (name, kind, schedule) in [
        ("submit", "submit-claims", "0 */5 * * * *"),
        ("collect", "collect-responses", "0 */5 * * * *"),
        ("deadlines", "check-deadlines", "0 */10 * * * *"),
        ("digest", "digest", "0 30 * * * *"),
    ] {
        let partner = if kind == "digest" {
            String::new()
        } else {
            "partner = \"acme\"\n".into()
        };
        ws.job(
            name,
            &format!("kind = \"{kind}\"\nschedule = \"{schedule}\"\n{partner}"),
        );
    }
    // 600× real time: five minutes pass every half second, an hour in six.
    let start = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let clock = format!("{start}*600");
    let mut d = ws.daemon(&[("EDI_COURIER_CLOCK", &clock)]);

    // The 837 arrives at the partner.
    let inbound = &ws.partner.outbound_dir;
    assert!(
        wait_for(30, || names_in(inbound)
            .iter()
            .any(|n| !n.ends_with(".part"))),
        "{}",
        d.log_text()
    );
    let name = names_in(inbound)
        .into_iter()
        .find(|n| !n.ends_with(".part"))
        .unwrap();
    let sent = age_decrypt(&ws.partner_identity, &inbound.join(&name));
    let received = read_837(&sent).unwrap();
    assert_eq!(received.claims.len(), 5);

    // The payer answers: its 999 accepts, its 277CA rejects the first claim.
    let env = Profile::sandbox().unwrap().envelope;
    let now = chrono::Local::now().naive_local();
    let quiet = Rules {
        reject_percent: 0,
        ..Rules::default()
    };
    let made = answer(
        &received,
        &quiet,
        &env,
        now,
        &mut Sequential::starting_at(1),
    )
    .unwrap();
    let claims: Vec<_> = received
        .claims
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let status = if i == 0 {
                StatusCode {
                    category: "A7".into(),
                    code: "562".into(),
                    entity: Some("85".into()),
                    ..StatusCode::default()
                }
            } else {
                StatusCode {
                    category: "A1".into(),
                    code: "19".into(),
                    entity: Some("PR".into()),
                    ..StatusCode::default()
                }
            };
            (
                &c.claim,
                ClaimStatus {
                    claim_id: c.claim.id.clone(),
                    statuses: vec![status],
                    ..ClaimStatus::default()
                },
            )
        })
        .collect();
    let mut status = Vec::new();
    write_277ca(
        &env.reply(),
        now,
        &mut Sequential::starting_at(50),
        &Answer277 {
            reference: "R1",
            payer_name: "ACME HEALTH PLAN",
            payer_id: "ACME01",
            submitter_name: "RIVERSIDE",
            submitter_id: "EDICOURIER",
            // 2200B TRN02: our BHT03, the batch it answers.
            batch_trace: &received.sets[0].reference,
            received: now.date(),
            claims: &claims,
        },
        &mut status,
    )
    .unwrap();
    drop_sealed(&ws, &format!("{name}.1.999"), &made.ack.unwrap());
    drop_sealed(&ws, &format!("{name}.2.277"), &status);

    // Exactly one mail for the rejection, however many collects run.
    assert!(
        wait_for(30, || !smtp.with_subject("rejected (277CA)").is_empty()),
        "{:?}\n{}",
        smtp.messages(),
        d.log_text()
    );
    // The four accepted claims get no 835 within the hour: one overdue mail.
    assert!(
        wait_for(40, || !smtp.with_subject("835 overdue").is_empty()),
        "{:?}\n{}",
        smtp.messages(),
        d.log_text()
    );
    assert!(
        wait_for(30, || !smtp.with_subject("daily digest").is_empty()),
        "{:?}",
        smtp.messages()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
    let rejected = smtp.with_subject("rejected (277CA)");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].contains("RFM-1001"), "{}", rejected[0]);
    assert_eq!(smtp.with_subject("835 overdue").len(), 1);
    assert!(
        names_in(&ws.partner.inbound_dir).is_empty(),
        "responses collected"
    );

    // The canary: in no log line and no mail.
    let log = d.log_text();
    assert!(log.contains("run finished"), "{log}");
    for text in std::iter::once(log).chain(smtp.readable_messages()) {
        assert!(!text.contains(CANARY_NAME), "patient name leaked:\n{text}");
        assert!(!text.contains(CANARY_MEMBER), "member id leaked:\n{text}");
    }
    let statuses = ws.claim_statuses();
    assert!(
        statuses.contains(&("rejected_277".into(), 1)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("accepted_277".into(), 4)),
        "{statuses:?}"
    );
}

fn unreachable_workspace() -> Workspace {
    let ws = Workspace::offline();
    std::fs::copy(
        root().join("examples/clinic-claims.csv"),
        ws.outbox().join("clinic.csv"),
    )
    .unwrap();
    ws
}

#[test]
fn alerts_wait_out_an_smtp_outage_and_all_arrive_once_it_is_back() {
    let ws = unreachable_workspace();
    let mut smtp = SmtpSink::down();
    ws.append_config(&smtp_config(smtp.port));
    ws.submit_job_every_2s();
    ws.job(
        "digest",
        "kind = \"digest\"\nschedule = \"*/3 * * * * *\"\n",
    );
    let mut d = ws.daemon(&[]);
    // Both kinds of alert are raised while no mail server listens.
    assert!(
        wait_for(20, || {
            let log = d.log_text();
            log.contains("unreachable after retries") && log.contains("daily digest")
        }),
        "{}",
        d.log_text()
    );
    assert!(
        wait_for(10, || d.log_text().contains("alert not mailed")),
        "{}",
        d.log_text()
    );
    assert!(smtp.messages().is_empty());
    smtp.up();
    assert!(
        wait_for(20, || !smtp.with_subject("unreachable").is_empty()
            && !smtp.with_subject("daily digest").is_empty()),
        "{:?}\n{}",
        smtp.messages(),
        d.log_text()
    );
    std::thread::sleep(Duration::from_secs(3));
    d.stop();
    // Repeats within the hour were coalesced into the one mail.
    assert_eq!(
        smtp.with_subject("unreachable").len(),
        1,
        "{:?}",
        smtp.messages()
    );
}

#[test]
fn sigterm_during_an_upload_leaves_the_ledger_whole_and_the_next_start_delivers_once() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    ws.big_export(9, 2000);
    let good = ws.behind_proxy(&sshd, 512 * 1024, Fault::Stall);
    ws.submit_job_every_2s();
    let mut d = ws.daemon(&[]);
    assert!(
        wait_for(30, || names_in(&ws.partner.outbound_dir)
            .iter()
            .any(|n| n.ends_with(".part"))),
        "{}",
        d.log_text()
    );
    // The temporary name is written while the file is sealed; the claims
    // are recorded once it is, the upload still stalled.
    assert!(
        wait_for(30, || ws.claim_statuses() == [("queued".to_owned(), 2000)]),
        "{:?}\n{}",
        ws.claim_statuses(),
        d.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    let started = std::time::Instant::now();
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the drain took {:?}",
        started.elapsed()
    );
    assert!(d.log_text().contains("still running"), "{}", d.log_text());
    let finals: Vec<String> = names_in(&ws.partner.outbound_dir)
        .into_iter()
        .filter(|n| !n.ends_with(".part"))
        .collect();
    assert!(finals.is_empty(), "never renamed: {finals:?}");
    assert_eq!(ws.claim_statuses(), [("queued".to_owned(), 2000)]);

    // The next start, with the partner reachable, delivers it once.
    ws.partner = good;
    ws.write_config(&ws.partner.clone(), &sshd.user);
    let mut d = ws.daemon(&[]);
    assert!(
        wait_for(30, || ws.claim_statuses() == [("sent".to_owned(), 2000)]),
        "{:?}\n{}",
        ws.claim_statuses(),
        d.log_text()
    );
    d.stop();
    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote.len(), 1, "{remote:?}");
    assert!(!remote[0].ends_with(".part"));
}

/// Regression: a daemon killed while a job ran held that job's lease
/// until it lapsed (a minute), so the daemon started again in its place
/// skipped every tick of it meanwhile, and the killed run's `NAME.part`
/// stayed on the partner's server that long. A lease held by a daemon of
/// this host whose process is gone is taken back at start.
#[test]
fn a_daemon_killed_mid_job_and_started_again_takes_its_job_back_at_once() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    ws.big_export(10, 2000);
    let good = ws.behind_proxy(&sshd, 512 * 1024, Fault::Stall);
    ws.submit_job_every_2s();
    let mut d = ws.daemon(&[]);
    assert!(
        wait_for(30, || ws.claim_statuses() == [("queued".to_owned(), 2000)]),
        "{:?}\n{}",
        ws.claim_statuses(),
        d.log_text()
    );
    d.kill();
    let killed: Vec<String> = ws
        .job_runs("submit")
        .into_iter()
        .filter(|(_, outcome, _)| outcome == "running")
        .map(|(_, _, daemon)| daemon)
        .collect();
    assert_eq!(killed.len(), 1, "the tick it was killed in");

    ws.partner = good;
    ws.write_config(&ws.partner.clone(), &sshd.user);
    let mut d = ws.daemon(&[]);
    // Well within the lease's 60 s.
    assert!(
        wait_for(20, || ws.claim_statuses() == [("sent".to_owned(), 2000)]),
        "{:?}\n{}",
        ws.claim_statuses(),
        d.log_text()
    );
    assert!(
        d.log_text()
            .contains("took back the job lease of a daemon of this host that is gone"),
        "{}",
        d.log_text()
    );
    assert!(
        !d.log_text().contains("another daemon holds the job"),
        "{}",
        d.log_text()
    );
    d.stop();
    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote.len(), 1, "{remote:?}");
    assert!(!remote[0].ends_with(".part"));
    // The killed daemon's tick is ended, not left `running` for good.
    let runs = ws.job_runs("submit");
    let of_killed: Vec<&str> = runs
        .iter()
        .filter(|(_, _, daemon)| *daemon == killed[0])
        .map(|(_, outcome, _)| outcome.as_str())
        .collect();
    assert!(
        of_killed.contains(&"lease-lost") && !of_killed.contains(&"running"),
        "{runs:?}"
    );
}

/// Regression (found by an independent tester): a SIGTERM whose grace ran
/// out while a file was going up a slow line made the run panic inside
/// tokio ("being shutdown") as the runtime was torn down around it. The
/// daemon now exits at once when a run is still going, as a kill would:
/// no panic, and the next start resumes the work.
#[test]
fn sigterm_past_the_grace_during_a_slow_upload_exits_without_a_panic() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    ws.big_export(12, 6000);
    ws.behind_proxy(&sshd, usize::MAX, Fault::Throttle(150 * 1024));
    ws.submit_job_every_2s();
    let mut d = ws.daemon(&[]);
    assert!(
        wait_for(40, || std::fs::read_dir(&ws.partner.outbound_dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".part")
                && e.metadata().is_ok_and(|m| m.len() > 512 * 1024))),
        "{}",
        d.log_text()
    );
    assert_eq!(d.stop(), Some(0), "{}", d.log_text());
    let log = d.log_text();
    assert!(log.contains("still running"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // Its leases were not let go under it: no lease said lost, no alert.
    assert!(!log.contains("lease lost"), "{log}");
}

#[test]
fn sighup_reloads_jobs_and_keeps_the_old_config_when_the_new_one_is_bad() {
    let ws = unreachable_workspace();
    ws.job(
        "first",
        "kind = \"check-deadlines\"\nschedule = \"* * * * * *\"\n",
    );
    let mut d = ws.daemon(&[]);
    assert!(
        wait_for(20, || !ws.job_runs("first").is_empty()),
        "{}",
        d.log_text()
    );
    // A broken job file: refused, the daemon goes on with what it had.
    ws.job(
        "broken",
        "kind = \"no-such-kind\"\nschedule = \"* * * * * *\"\n",
    );
    d.signal("HUP");
    assert!(
        wait_for(10, || d.log_text().contains("reload refused")),
        "{}",
        d.log_text()
    );
    assert!(d.is_running());
    let n = ws.job_runs("first").len();
    assert!(
        wait_for(10, || ws.job_runs("first").len() > n + 1),
        "still running the old jobs"
    );
    // The same mistake again is a repeat; another mistake (here in the
    // config) is a new alert, mailed at once (it was once merged into the
    // first as "config-refused", and never mailed).
    let refusals = |d: &common::workspace::Daemon| {
        d.log_text()
            .matches("reload refused; the running config stays")
            .count()
    };
    d.signal("HUP");
    assert!(wait_for(10, || refusals(&d) >= 2), "{}", d.log_text());
    std::fs::remove_file(ws.path("jobs/broken.toml")).unwrap();
    let config = std::fs::read_to_string(&ws.config).unwrap();
    ws.append_config("\n[smtp]\nhost = \"127.0.0.1\"\nport = 25\ntls = \"bogus\"\n");
    d.signal("HUP");
    assert!(wait_for(10, || refusals(&d) >= 3), "{}", d.log_text());
    // The alert is queued just after the log line (later on PostgreSQL).
    let refused = || -> Vec<(String, i64)> {
        queued_alerts(&ws)
            .into_iter()
            .filter(|(kind, _)| kind == "config-refused")
            .collect()
    };
    let expected = [
        ("config-refused".to_owned(), 1),
        ("config-refused".to_owned(), 0),
    ];
    wait_for(10, || refused() == expected);
    assert_eq!(refused(), expected);
    std::fs::write(&ws.config, config).unwrap();
    // Fixed: the new job runs after the next HUP.
    ws.job("second", "kind = \"digest\"\nschedule = \"* * * * * *\"\n");
    d.signal("HUP");
    assert!(
        wait_for(10, || !ws.job_runs("second").is_empty()),
        "{}",
        d.log_text()
    );
    // The reload that loaded says both refusals cleared, in one mail (a
    // refusal was once never said cleared: the admin was left to guess
    // whether the config on disk was the one running).
    let cleared = || -> Vec<(String, String, i64)> {
        with_ledger_pool(&ws.ledger_url, async |pool| {
            sqlx::query_as::<_, (String, String, i64)>(
                "SELECT kind, body, CAST(CASE WHEN cleared_at IS NULL THEN 0 ELSE 1 END AS BIGINT) FROM alerts ORDER BY id",
            )
            .fetch_all(pool)
            .await
            .unwrap()
        })
    };
    wait_for(10, || cleared().iter().any(|(k, ..)| k == "cleared"));
    let rows = cleared();
    let said: Vec<&(String, String, i64)> = rows.iter().filter(|(k, ..)| k == "cleared").collect();
    assert_eq!(said.len(), 1, "{rows:?}");
    assert!(
        said[0]
            .1
            .starts_with("The config and jobs were reloaded without these faults"),
        "{}",
        said[0].1
    );
    assert_eq!(
        said[0].1.matches("config reload refused").count(),
        2,
        "{}",
        said[0].1
    );
    // Each named by what was refused (a tester's finding: both lines read
    // "config reload refused", telling the admin nothing of which).
    assert!(
        said[0].1.contains("broken.toml") && said[0].1.contains("edi-courier.toml"),
        "{}",
        said[0].1
    );
    assert!(
        rows.iter()
            .filter(|(k, ..)| k == "config-refused")
            .all(|(.., cleared)| *cleared == 1),
        "{rows:?}"
    );
    // Another good reload says nothing more.
    d.signal("HUP");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        cleared().iter().filter(|(k, ..)| k == "cleared").count(),
        1,
        "{}",
        d.log_text()
    );
    assert_eq!(d.stop(), Some(0));
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl.
fn tls_files(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
        ],
    );
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("ext.cnf"),
            "-out",
            &p("server.pem"),
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn alerts_go_out_over_starttls_with_a_login_from_a_secret_file_and_never_in_clear() {
    let ws = unreachable_workspace();
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(certs.path());
    let smtp = SmtpSink::with_tls(&cert, &key, Some(("alerts", "s3cret-pass")));
    let password = ws.path("keys/smtp-password");
    std::fs::write(&password, "s3cret-pass\n").unwrap();
    common::tools::private(&password);
    ws.append_config(&format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nca_file = \"{}\"\n\
         username = \"alerts\"\npassword_file = \"{}\"\n\
         from = \"edi-courier@clinic.example\"\nto = [\"billing@clinic.example\"]\n",
        smtp.port,
        ca.display(),
        password.display()
    ));
    ws.job("digest", "kind = \"digest\"\nschedule = \"0 0 7 * * *\"\n");
    let out = ws.run(&["run", "digest"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        smtp.with_subject("daily digest").len(),
        1,
        "{:?}",
        smtp.messages()
    );
    assert_eq!(smtp.logins(), ["alerts"]);

    // Without the CA the server's certificate is not trusted: nothing is
    // sent in the clear, the alert waits in the queue.
    let text = std::fs::read_to_string(&ws.config)
        .unwrap()
        .replace(&format!("ca_file = \"{}\"\n", ca.display()), "");
    std::fs::write(&ws.config, text).unwrap();
    let out = ws.run(
        &["run", "digest"],
        &[("EDI_COURIER_NOW", "2026-11-22T10:00:00")],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alert not mailed") && err.contains("UnknownIssuer"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(smtp.with_subject("daily digest").len(), 1);
}

#[test]
fn a_wrong_host_key_is_alerted_once_and_the_daemon_keeps_running() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    let smtp = SmtpSink::start();
    std::fs::copy(
        root().join("examples/clinic-claims.csv"),
        ws.outbox().join("clinic.csv"),
    )
    .unwrap();
    // Pinned: a key the server does not have.
    ws.partner.host_key = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    ws.write_config(&ws.partner.clone(), &sshd.user);
    ws.append_config(&smtp_config(smtp.port));
    ws.job(
        "submit",
        "kind = \"submit-claims\"\nschedule = \"* * * * * *\"\npartner = \"acme\"\n",
    );
    let mut d = ws.daemon(&[]);
    assert!(
        wait_for(20, || ws
            .job_runs("submit")
            .iter()
            .filter(|(_, o, _)| o == "failed")
            .count()
            >= 3),
        "{}",
        d.log_text()
    );
    assert!(
        wait_for(10, || !smtp.with_subject("host key mismatch").is_empty()),
        "{:?}",
        smtp.messages()
    );
    assert!(d.is_running(), "a partner fault never stops the daemon");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(d.stop(), Some(0));
    assert_eq!(
        smtp.with_subject("host key mismatch").len(),
        1,
        "repeats coalesced: {:?}",
        smtp.messages()
    );
    assert!(
        names_in(&ws.partner.outbound_dir).is_empty(),
        "nothing sent"
    );
    assert_eq!(ws.claim_statuses(), [("queued".to_owned(), 5)]);
}

#[test]
fn a_cut_835_is_quarantined_left_on_the_server_and_mailed_once_without_the_patient() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let smtp = SmtpSink::start();
    drop_canary_export(&ws);
    ws.append_config(&smtp_config(smtp.port));
    submit_and_collect_jobs(&ws);
    let out = ws.run(&["run", "submit"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);

    // The payer pays every claim in one 835; it reaches us cut inside its
    // transaction set, after the canary's claim: no SE, GE or IEA.
    let sent = names_in(&ws.partner.outbound_dir);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let received = read_837(&age_decrypt(
        &ws.partner_identity,
        &ws.partner.outbound_dir.join(&sent[0]),
    ))
    .unwrap();
    let pay_all = Rules {
        reject_percent: 0,
        deny_percent: 0,
        reversal_percent: 0,
        ..Rules::default()
    };
    let now = chrono::NaiveDateTime::parse_from_str(NOW, "%Y-%m-%dT%H:%M:%S").unwrap();
    let made = answer(
        &received,
        &pay_all,
        &Profile::sandbox().unwrap().envelope,
        now,
        &mut Sequential::starting_at(1),
    )
    .unwrap();
    let remit = String::from_utf8(made.remit.unwrap()).unwrap();
    let canary_at = remit.find(CANARY_NAME).expect("the 835 names the patient");
    let cut_at = canary_at
        + remit[canary_at..]
            .find("CLP*")
            .or_else(|| remit[canary_at..].find("SE*"))
            .unwrap();
    let cut = &remit[..cut_at];
    assert!(cut.contains(CANARY_MEMBER) && !cut.contains("IEA*"));
    let file = "acme-remit-0001.835";
    drop_sealed(&ws, file, cut.as_bytes());

    let out = ws.run(&["run", "collect"], &[]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let mails = smtp.readable_messages();
    assert_eq!(
        mails.len(),
        1,
        "one mail, for the quarantine: {mails:?}\n{said}"
    );
    let mail = &mails[0];
    let subject = mail
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .unwrap_or_default();
    assert!(
        subject.contains(file) && subject.contains("quarantined"),
        "{mail}"
    );

    assert_eq!(out.status.code(), Some(1), "a file set aside: {said}");
    // Nothing applied, the file still on the partner's server, and the
    // inbound file number in the mail is the one `status` lists.
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)], "{said}");
    assert_eq!(names_in(&ws.partner.inbound_dir), [file]);
    let out = ws.run(&["status", "--json"], &[]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inbound = json["inbound"].as_array().unwrap();
    assert_eq!(inbound.len(), 1, "{json}");
    assert_eq!(inbound[0]["state"], "quarantined", "{json}");
    assert_eq!(inbound[0]["name"], file, "{json}");
    let id = inbound[0]["id"].as_i64().unwrap();
    for needed in [
        format!("inbound file #{id}"),
        format!("edi-courier inbound retry {id}"),
        format!("edi-courier inbound reviewed {id}"),
    ] {
        assert!(mail.contains(&needed), "{needed} missing:\n{mail}");
    }
    assert!(!mail.contains(CANARY_NAME), "patient name leaked:\n{mail}");
    assert!(!mail.contains(CANARY_MEMBER), "member id leaked:\n{mail}");

    // Hours later, past the hour in which repeats are coalesced: the file is
    // left alone, so there is nothing new to mail.
    let later = ws.run(
        &["run", "collect"],
        &[("EDI_COURIER_NOW", "2026-11-20T14:00:00")],
    );
    let said = String::from_utf8_lossy(&later.stderr);
    assert_eq!(later.status.code(), Some(0), "{said}");
    let ran = String::from_utf8_lossy(&later.stdout);
    assert!(
        ran.contains("collect (collect-responses): done"),
        "{ran}\n{said}"
    );
    assert_eq!(smtp.messages().len(), 1, "{:?}\n{said}", smtp.messages());
    assert_eq!(names_in(&ws.partner.inbound_dir), [file]);
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
}

/// The alerts queued in the ledger, oldest first: kind and repeats.
fn queued_alerts(ws: &Workspace) -> Vec<(String, i64)> {
    with_ledger_pool(&ws.ledger_url, async |pool| {
        sqlx::query_as::<_, (String, i64)>("SELECT kind, repeats FROM alerts ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap()
    })
}

/// Alerts are merged by the fault, not only by its kind and partner (a
/// tester's finding: a login refused after a connection refused, and a
/// second unknown host key after a first, were counted as repeats of the
/// first alert and never mailed). The same fault again is still a repeat.
#[test]
fn a_different_fault_of_one_kind_is_a_new_alert_and_the_same_one_a_repeat() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    std::fs::copy(
        root().join("examples/clinic-claims.csv"),
        ws.outbox().join("clinic.csv"),
    )
    .unwrap();
    ws.partner.attempts = 1;
    let good = ws.partner.clone();
    ws.job(
        "submit",
        "kind = \"submit-claims\"\nschedule = \"0 0 0 1 1 *\"\npartner = \"acme\"\n",
    );
    let submit_with = |p: &common::workspace::Partner| {
        ws.write_config(p, &sshd.user);
        let out = ws.run(&["run", "submit"], &[]);
        assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    };
    // (a) nothing listens on the port: unreachable, mailed.
    let mut closed = good.clone();
    closed.port = common::sshd::free_port();
    submit_with(&closed);
    submit_with(&closed);
    // (b) the server listens but refuses our key: another fault, mailed.
    let keys = tempfile::tempdir().unwrap();
    let mut refused = good.clone();
    refused.key_file = common::tools::ssh_key(keys.path(), "stranger");
    submit_with(&refused);
    // (c) a pin the server's key does not match.
    let mut pinned = good.clone();
    pinned.host_key = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    submit_with(&pinned);
    // (d) another server, presenting another key: another fault.
    pinned.port = other.port;
    submit_with(&pinned);
    submit_with(&pinned);
    assert_eq!(
        queued_alerts(&ws),
        [
            ("unreachable".to_owned(), 1),
            ("unreachable".to_owned(), 0),
            ("host-key".to_owned(), 0),
            ("host-key".to_owned(), 1),
        ]
    );
    assert!(
        names_in(&ws.partner.outbound_dir).is_empty(),
        "nothing sent"
    );
}

/// A fault only `collect` sees (here a host key that matches no pin) shows
/// in `status` and `status --json`, not only in a mail: no file carries it
/// (before, `status` showed only a submitted file's last error).
#[test]
fn a_fault_only_collect_saw_shows_in_status() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    ws.partner.host_key = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    ws.partner.attempts = 1;
    ws.write_config(&ws.partner.clone(), &sshd.user);
    ws.job(
        "collect",
        "kind = \"collect-responses\"\nschedule = \"0 0 0 1 1 *\"\npartner = \"acme\"\n",
    );
    let out = ws.run(&["run", "collect"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    let status = ws.run(&["status"], &[]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("alerts of the last 24 hours")
            && text.contains("host-key")
            && text.contains("acme: host key mismatch"),
        "{text}"
    );
    let json = ws.run(&["status", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["alerts"][0]["kind"], "host-key", "{v}");
    assert!(v["alerts"][0]["sent_at"].is_null(), "{v}");
}

/// Mails whose subject contains `text`, as their reader sees them.
fn mails_about(smtp: &SmtpSink, text: &str) -> Vec<String> {
    smtp.readable_messages()
        .into_iter()
        .filter(|m| {
            m.lines()
                .any(|l| l.starts_with("Subject:") && l.contains(text))
        })
        .collect()
}

/// A daemon that cannot start (here its spool, then its ledger) mails the
/// admin before it exits non-zero: under systemd nobody read its stderr
/// (before, nobody was told). Restarted with the same fault, it does not
/// mail again; a new fault is mailed at once; a mail that cannot be sent
/// either is said on stderr; once it starts, a `cleared` mail says so.
#[test]
fn a_daemon_that_cannot_start_mails_the_admin_and_exits_non_zero() {
    let ws = Workspace::offline();
    let smtp = SmtpSink::start();
    let down = SmtpSink::down();
    ws.append_config(&smtp_config(smtp.port));
    let config = std::fs::read_to_string(&ws.config).unwrap();
    // The spool cannot be made: a file stands where its folder would be.
    let spool = ws.config.parent().unwrap().join("spool");
    std::fs::write(&spool, b"").unwrap();
    let out = ws.run_bounded(&["daemon"], 120);
    assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not writable") && err.contains("mailed that the daemon did not start"),
        "{err}"
    );
    let mails = mails_about(&smtp, "did not start");
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains(&spool.display().to_string()),
        "{}",
        mails[0]
    );
    // Restarted by its supervisor, the same fault: not mailed again.
    let out = ws.run_bounded(&["daemon"], 120);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("not mailed again"), "{}", said(&out));
    assert_eq!(smtp.messages().len(), 1);
    // The ledger's folder cannot be: a file stands there. The mail server
    // is down too.
    std::fs::remove_file(&spool).unwrap();
    std::fs::write(ws.path("gone"), b"").unwrap();
    let dir = ws.dir.path().display().to_string();
    // On PostgreSQL: a server that is not there (a port nothing listens on).
    let (gone, named) = match ws.postgres {
        None => (
            ws.ledger_url.replace(&dir, &format!("{dir}/gone")),
            "/gone/".to_owned(),
        ),
        Some(_) => {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = closed.local_addr().unwrap().port();
            drop(closed);
            let at = ws.ledger_url.rfind("127.0.0.1:").unwrap() + "127.0.0.1:".len();
            let end = at + ws.ledger_url[at..].find('/').unwrap();
            let url = format!("{}{port}{}", &ws.ledger_url[..at], &ws.ledger_url[end..]);
            (url, format!("127.0.0.1:{port}"))
        }
    };
    assert_ne!(gone, ws.ledger_url, "the ledger is broken");
    let broken = config.replace(&ws.ledger_url, &gone);
    assert_ne!(broken, config, "the config names the broken ledger");
    let port = format!("port = {}\ntls", smtp.port);
    std::fs::write(
        &ws.config,
        broken.replace(&port, &format!("port = {}\ntls", down.port)),
    )
    .unwrap();
    let out = ws.run_bounded(&["daemon"], 120);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("ledger") && err.contains("could not be sent either"),
        "{err}"
    );
    // The mail server back: the new fault is mailed at once, naming the ledger.
    std::fs::write(&ws.config, &broken).unwrap();
    let out = ws.run_bounded(&["daemon"], 120);
    assert_ne!(out.status.code(), Some(0));
    let mails = mails_about(&smtp, "did not start");
    assert_eq!(mails.len(), 2, "{mails:?}\n{}", said(&out));
    assert!(mails[1].contains(&named), "{named} in {}", mails[1]);
    // Fixed: it starts, and says the fault cleared.
    std::fs::write(&ws.config, &config).unwrap();
    let mut d = ws.daemon(&[]);
    assert!(
        wait_for(20, || !mails_about(&smtp, "cleared: the daemon").is_empty()),
        "{}",
        d.log_text()
    );
    d.stop();
}

/// The mark that keeps a restarted daemon from mailing the same start
/// fault again is written 0600, and one that is not ours alone (another
/// user's, or opened up) holds no mail back.
#[test]
fn a_not_started_mark_that_is_not_ours_alone_does_not_silence_the_mail() {
    use std::os::unix::fs::PermissionsExt as _;
    let ws = Workspace::offline();
    let smtp = SmtpSink::start();
    ws.append_config(&smtp_config(smtp.port));
    let spool = ws.config.parent().unwrap().join("spool");
    std::fs::write(&spool, b"").unwrap();
    let out = ws.run_bounded(&["daemon"], 120);
    assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(mails_about(&smtp, "did not start").len(), 1);
    let mark = ws.config.parent().unwrap().join("edi-courier-not-started");
    let mode = std::fs::metadata(&mark).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", mark.display());
    // Opened up (as a mark another user planted would be): no longer ours alone.
    std::fs::set_permissions(&mark, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ws.run_bounded(&["daemon"], 120);
    assert_ne!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("not mailed again"), "{}", said(&out));
    assert_eq!(mails_about(&smtp, "did not start").len(), 2);
}

/// `job-failed` is keyed by the fault, not the job: a job failing for
/// another reason (here another map missing) is mailed at once, and the
/// first reason again is still a repeat (before, every failure of a job
/// within the hour was a repeat of the first, whatever its reason).
#[test]
fn a_job_failing_for_another_reason_is_mailed_at_once() {
    let ws = Workspace::offline();
    let smtp = SmtpSink::start();
    ws.append_config(&smtp_config(smtp.port));
    for map in ["no-such-map-a", "no-such-map-b", "no-such-map-a"] {
        ws.job(
            "submit",
            &format!(
                "kind = \"submit-claims\"\nschedule = \"0 0 0 1 1 *\"\npartner = \"acme\"\nmap = \"{map}\"\n"
            ),
        );
        let out = ws.run(&["run", "submit"], &[]);
        assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    }
    assert_eq!(
        queued_alerts(&ws),
        [("job-failed".to_owned(), 1), ("job-failed".to_owned(), 0)]
    );
    let mails = mails_about(&smtp, "job submit failed");
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails[0].contains("no-such-map-a"), "{}", mails[0]);
    assert!(mails[1].contains("no-such-map-b"), "{}", mails[1]);
}

/// Fifteen exports refused in one run are one mail naming each (before:
/// fifteen mails), each still its own alert; the same fifteen again are
/// repeats, not mailed; one new bad export is mailed on its own.
#[test]
fn many_bad_exports_in_one_run_are_one_mail_naming_each() {
    let ws = Workspace::offline();
    let smtp = SmtpSink::start();
    ws.append_config(&smtp_config(smtp.port));
    ws.job(
        "submit",
        "kind = \"submit-claims\"\nschedule = \"0 0 0 1 1 *\"\npartner = \"acme\"\n",
    );
    let example = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    let header = format!("{}\n", example.lines().next().unwrap());
    let bad = |i: usize| std::fs::write(ws.outbox().join(format!("bad-{i:02}.csv")), &header);
    for i in 1..=15 {
        bad(i).unwrap();
    }
    let export_rows = |ws: &Workspace| {
        queued_alerts(ws)
            .into_iter()
            .filter(|(k, _)| k == "export-failed")
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
    };
    let out = ws.run(&["run", "submit"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    let mails = mails_about(&smtp, "not sent");
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].contains("acme: 15 exports not sent"),
        "{}",
        mails[0]
    );
    for i in 1..=15 {
        assert!(
            mails[0].contains(&format!("- bad-{i:02}.csv: refused whole")),
            "{}",
            mails[0]
        );
    }
    assert_eq!(export_rows(&ws), [0; 15]);
    // The same fifteen again: repeats, no mail.
    ws.run(&["run", "submit"], &[]);
    assert_eq!(mails_about(&smtp, "not sent").len(), 1);
    assert_eq!(export_rows(&ws), [1; 15]);
    // One new bad export: a mail of its own.
    bad(16).unwrap();
    ws.run(&["run", "submit"], &[]);
    let mails = mails_about(&smtp, "not sent");
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails[1].contains("bad-16.csv not sent"), "{}", mails[1]);
    assert!(!mails[1].contains("bad-01.csv"), "{}", mails[1]);
}

/// A workspace whose submit job (`run submit`) can be pointed at the
/// partner (`good`) or at a port nothing listens on (`closed`), mails
/// going to `smtp`; the clinic export waits in the outbox.
struct Flapping<'s> {
    sshd: &'s Sshd,
    ws: Workspace,
    smtp: SmtpSink,
    good: common::workspace::Partner,
    closed: common::workspace::Partner,
}

impl<'s> Flapping<'s> {
    fn new(sshd: &'s Sshd) -> Self {
        let mut ws = Workspace::new(sshd);
        let smtp = SmtpSink::start();
        std::fs::copy(
            root().join("examples/clinic-claims.csv"),
            ws.outbox().join("clinic.csv"),
        )
        .unwrap();
        ws.partner.attempts = 1;
        let good = ws.partner.clone();
        let mut closed = good.clone();
        closed.port = common::sshd::free_port();
        ws.job(
            "submit",
            "kind = \"submit-claims\"\nschedule = \"0 0 0 1 1 *\"\npartner = \"acme\"\n",
        );
        Flapping {
            sshd,
            ws,
            smtp,
            good,
            closed,
        }
    }

    /// The submit job's run with the config pointing at `partner`.
    fn submit_with(&self, partner: &common::workspace::Partner) -> std::process::Output {
        self.submit_at(partner, None)
    }

    /// The submit job's run against the good partner, with these variables.
    fn submit_env(&self, env: &[(&str, &str)]) -> std::process::Output {
        self.ws.write_config(&self.good, &self.sshd.user);
        self.ws.append_config(&smtp_config(self.smtp.port));
        self.ws.run(&["run", "submit"], env)
    }

    /// The same, at the time `now` (`EDI_COURIER_NOW`) when given.
    fn submit_at(
        &self,
        partner: &common::workspace::Partner,
        now: Option<&str>,
    ) -> std::process::Output {
        self.ws.write_config(partner, &self.sshd.user);
        self.ws.append_config(&smtp_config(self.smtp.port));
        match now {
            Some(now) => self.ws.run(&["run", "submit"], &[("EDI_COURIER_NOW", now)]),
            None => self.ws.run(&["run", "submit"], &[]),
        }
    }
}

/// A fault that lasts past the hour in which its repeats are counted is
/// mailed again, and that mail tells the repeats that came after the first
/// mail (before, they were told by no mail at all; only a `cleared` mail,
/// if the fault ever stopped, counted them).
#[test]
fn a_fault_mailed_again_after_the_hour_tells_the_repeats_since_its_last_mail() {
    let sshd = Sshd::start();
    let f = Flapping::new(&sshd);
    for now in [
        "2026-11-20T10:00:00",
        "2026-11-20T10:20:00",
        "2026-11-20T10:40:00",
    ] {
        f.submit_at(&f.closed, Some(now));
    }
    assert_eq!(mails_about(&f.smtp, "unreachable").len(), 1);
    f.submit_at(&f.closed, Some("2026-11-20T11:30:00"));
    let mails = mails_about(&f.smtp, "unreachable");
    assert_eq!(mails.len(), 2, "{:?}", f.smtp.readable_messages());
    assert!(
        mails[1].contains("Before this, it came 2 more time(s) after its mail of"),
        "{}",
        mails[1]
    );
    // Told once: the fault stopping says no repeat since the last mail.
    let out = f.submit_at(&f.good, Some("2026-11-20T11:40:00"));
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let cleared = mails_about(&f.smtp, "cleared");
    assert_eq!(cleared.len(), 1, "{:?}", f.smtp.readable_messages());
    assert!(
        cleared[0].contains("0 repeat(s) since that mail"),
        "{}",
        cleared[0]
    );
}

/// A partner unreachable, mailed, then repeating: when the job next
/// reaches it and delivers, one `cleared` mail says so, with the repeats
/// that came after the mail (before, nobody heard that the fault stopped,
/// nor of the repeats after its mail). The fault coming back is mailed again.
#[test]
fn a_fault_that_stops_is_said_cleared_with_the_repeats_after_its_mail() {
    let sshd = Sshd::start();
    let f = Flapping::new(&sshd);
    for _ in 0..3 {
        f.submit_with(&f.closed);
    }
    assert_eq!(mails_about(&f.smtp, "unreachable").len(), 1);
    let out = f.submit_with(&f.good);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let cleared = mails_about(&f.smtp, "cleared");
    assert_eq!(cleared.len(), 1, "{:?}", f.smtp.readable_messages());
    assert!(
        cleared[0].contains("cleared: acme: unreachable after retries")
            && cleared[0].contains("2 repeat(s) since that mail"),
        "{}",
        cleared[0]
    );
    f.submit_with(&f.good);
    assert_eq!(mails_about(&f.smtp, "cleared").len(), 1, "cleared once");
    f.submit_with(&f.closed);
    assert_eq!(mails_about(&f.smtp, "unreachable").len(), 2);
}

/// A file that waited in the spool while the partner's key was replaced —
/// and ours, so it cannot be sealed again to the new key — is
/// held (`sealed_to_old_keys`), not uploaded: the submit job's run says so
/// in one alert, mailed once, and does not say the earlier `unreachable`
/// cleared while the file stays held (a tester's finding: no alert named
/// the hold, and a `cleared` mail went out with the claims still queued).
/// Once the old key is the partner's again and the file goes, it clears.
#[test]
fn a_held_file_is_alerted_once_and_nothing_is_said_cleared_while_it_stays() {
    let sshd = Sshd::start();
    let mut f = Flapping::new(&sshd);
    // Spooled, sealed to today's key, while the partner is unreachable.
    let out = f.submit_with(&f.closed);
    assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(mails_about(&f.smtp, "unreachable").len(), 1);
    // The partner's key is replaced; the partner is back: the file is held.
    let old = f.ws.partner_recipient.clone();
    let (_, new_recipient) = common::tools::age_key(f.ws.dir.path(), "partner-new-age.txt");
    f.ws.partner_recipient = new_recipient;
    std::fs::remove_file(&f.ws.our_identity).unwrap();
    let (ours, _) = common::tools::age_key(f.ws.dir.path(), "our-new-age.txt");
    std::fs::rename(&ours, &f.ws.our_identity).unwrap();
    for _ in 0..2 {
        let out = f.submit_with(&f.good);
        assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    }
    assert!(names_in(&f.ws.partner.outbound_dir).is_empty());
    let held = mails_about(&f.smtp, "held (sealed_to_old_keys)");
    assert_eq!(
        held.len(),
        1,
        "mailed once: {:?}",
        f.smtp.readable_messages()
    );
    assert!(
        held[0].contains("not delivered") && held[0].contains("claims stay queued"),
        "{}",
        held[0]
    );
    assert!(
        mails_about(&f.smtp, "cleared").is_empty(),
        "nothing cleared while the file is held: {:?}",
        f.smtp.readable_messages()
    );
    assert_eq!(f.ws.claim_statuses(), [("queued".to_owned(), 5)]);
    // The rotation undone: the file goes, and the faults are said cleared.
    f.ws.partner_recipient = old;
    let out = f.submit_with(&f.good);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(names_in(&f.ws.partner.outbound_dir).len(), 1);
    let cleared = mails_about(&f.smtp, "cleared");
    assert_eq!(cleared.len(), 1, "{:?}", f.smtp.readable_messages());
    assert!(
        cleared[0].contains("held (sealed_to_old_keys)"),
        "{}",
        cleared[0]
    );
}

/// A collect run killed after it applied an answer rejecting claims, before
/// the run's end: the rejection is mailed all the same (a tester's finding:
/// the alerts were raised only at the run's end, so a kill lost them, and
/// the next run found the file applied and raised nothing). They are queued
/// in the transaction that applies the answer.
#[test]
fn a_rejection_applied_by_a_collect_killed_before_its_end_is_still_mailed() {
    let sshd = Sshd::start();
    let (ws, smtp) = clinic_jobs_mailing(&sshd);
    let out = ws.run(&["run", "submit"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    std::fs::write(
        ws.partner.inbound_dir.join("ACK.999"),
        common::rejecting_999(at, 900),
    )
    .unwrap();
    let killed = ws.run(
        &["run", "collect"],
        &[("EDI_COURIER_FAULT", "collect-processed")],
    );
    assert_eq!(killed.status.code(), None, "killed: {}", said(&killed));
    assert_eq!(ws.claim_statuses(), [("rejected_999".to_owned(), 5)]);
    let out = ws.run(&["run", "collect"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let rejected = mails_about(&smtp, "transaction set rejected (999)");
    assert_eq!(rejected.len(), 1, "{:?}", smtp.readable_messages());
    assert!(rejected[0].contains("ACK.999"), "{}", rejected[0]);
    // Once: another run says nothing more of it.
    ws.run(&["run", "collect"], &[]);
    assert_eq!(
        mails_about(&smtp, "transaction set rejected (999)").len(),
        1,
        "{:?}",
        smtp.readable_messages()
    );
    // So for a damaged answer quarantined by a run killed just after: the
    // next run leaves it alone on the server, and its alert was queued with
    // the quarantine.
    drop_sealed(&ws, "CUT.999", b"ISA*00*          *00*    ");
    let killed = ws.run(
        &["run", "collect"],
        &[("EDI_COURIER_FAULT", "collect-processed")],
    );
    assert_eq!(killed.status.code(), None, "killed: {}", said(&killed));
    ws.run(&["run", "collect"], &[]);
    let quarantined = mails_about(&smtp, "CUT.999 quarantined");
    assert_eq!(quarantined.len(), 1, "{:?}", smtp.readable_messages());
    assert_eq!(names_in(&ws.partner.inbound_dir), ["CUT.999"]);
}

/// An export found sent but not archived by a daemon job's run killed just
/// after recording it: its `not-archived` alert is mailed all the same. It
/// was raised only at the run's end, so the kill lost it, and the next run,
/// finding the export recorded, said nothing; it is queued with the record.
#[test]
fn an_export_found_not_archived_by_a_run_killed_after_recording_it_is_still_mailed() {
    let sshd = Sshd::start();
    let (ws, smtp) = clinic_jobs_mailing(&sshd);
    // Killed once its claims were recorded, before the export was archived;
    // then the clinic writes another export under the same name.
    let killed = ws.run(&["run", "submit"], &[("EDI_COURIER_FAULT", "spooled")]);
    assert_eq!(killed.status.code(), None, "killed: {}", said(&killed));
    let other = std::fs::read_to_string(root().join("examples/clinic-claims.csv"))
        .unwrap()
        .replace("RFM-", "RFX-");
    std::fs::write(ws.outbox().join("clinic.csv"), other).unwrap();
    let killed = ws.run(
        &["run", "submit"],
        &[("EDI_COURIER_FAULT", "recovered-export")],
    );
    assert_eq!(killed.status.code(), None, "killed: {}", said(&killed));
    let out = ws.run(&["run", "submit"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let not_archived = mails_about(&smtp, "was sent but not archived");
    assert_eq!(not_archived.len(), 1, "{:?}", smtp.readable_messages());
    assert!(
        not_archived[0].contains("clinic.csv"),
        "{}",
        not_archived[0]
    );
    // Once: another run says nothing more of it.
    ws.run(&["run", "submit"], &[]);
    assert_eq!(
        mails_about(&smtp, "was sent but not archived").len(),
        1,
        "{:?}",
        smtp.readable_messages()
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 10)]);
}

/// An export not sent because the spool's disk was full is said cleared
/// once a later run sends it (a tester's finding: the `export-failed` alert
/// was mailed and then stayed open for good, no `cleared` ever came).
#[test]
fn an_export_not_sent_for_a_full_disk_is_said_cleared_once_it_goes() {
    let sshd = Sshd::start();
    let f = Flapping::new(&sshd);
    for _ in 0..2 {
        let out = f.submit_env(&[("EDI_COURIER_FAULT", "enospc-spool")]);
        assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    }
    let failed = mails_about(&f.smtp, "not sent");
    assert_eq!(failed.len(), 1, "{:?}", f.smtp.readable_messages());
    assert!(mails_about(&f.smtp, "cleared").is_empty());
    let out = f.submit_env(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert_eq!(f.ws.claim_statuses(), [("sent".to_owned(), 5)]);
    let cleared = mails_about(&f.smtp, "cleared");
    assert_eq!(cleared.len(), 1, "{:?}", f.smtp.readable_messages());
    assert!(cleared[0].contains("not sent"), "{}", cleared[0]);
    // A refused export, refused again by each run, stays open: nothing
    // more is said cleared while it is refused.
    let export = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    let header = export.lines().next().unwrap();
    std::fs::write(f.ws.outbox().join("empty.csv"), format!("{header}\n")).unwrap();
    for _ in 0..2 {
        f.submit_env(&[]);
    }
    assert_eq!(
        mails_about(&f.smtp, "empty.csv not sent").len(),
        1,
        "{:?}",
        f.smtp.readable_messages()
    );
    assert_eq!(
        mails_about(&f.smtp, "cleared").len(),
        1,
        "{:?}",
        f.smtp.readable_messages()
    );
}

/// A submit run killed just after it recorded an export with claims set
/// aside, before the run's end: the set-aside claims are mailed all the
/// same (the alert was raised at the run's end only, and the next run
/// found the export recorded and said nothing). It is queued in the
/// transaction that records the export.
#[test]
fn claims_set_aside_by_a_submit_killed_before_its_end_are_still_mailed() {
    let sshd = Sshd::start();
    let f = Flapping::new(&sshd);
    // RFM-1002's date of service is no date: that claim is set aside.
    let export = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    let bad: Vec<String> = export
        .lines()
        .map(|l| {
            if l.starts_with("RFM-1002,") {
                l.replace("11/05/2026", "13/45/2026")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(f.ws.outbox().join("clinic.csv"), bad.join("\n") + "\n").unwrap();
    let killed = f.submit_env(&[("EDI_COURIER_FAULT", "spooled")]);
    assert_eq!(killed.status.code(), None, "killed: {}", said(&killed));
    f.submit_env(&[]);
    assert_eq!(f.ws.claim_statuses(), [("sent".to_owned(), 4)]);
    let mails = mails_about(&f.smtp, "set aside");
    assert_eq!(mails.len(), 1, "{:?}", f.smtp.readable_messages());
    assert!(mails[0].contains("1 claim(s) of"), "{}", mails[0]);
}

/// An hourly submit job and collect job for the partner (run by hand with
/// `run submit`, `run collect`).
/// A workspace with the clinic export in its outbox, mailing its alerts
/// to an SMTP sink of its own, and its submit and collect jobs.
fn clinic_jobs_mailing(sshd: &Sshd) -> (Workspace, SmtpSink) {
    let ws = Workspace::new(sshd);
    let smtp = SmtpSink::start();
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    ws.append_config(&smtp_config(smtp.port));
    submit_and_collect_jobs(&ws);
    (ws, smtp)
}

fn submit_and_collect_jobs(ws: &Workspace) {
    for (name, kind) in [
        ("submit", "submit-claims"),
        ("collect", "collect-responses"),
    ] {
        ws.job(
            name,
            &format!("kind = \"{kind}\"\nschedule = \"0 0 * * * *\"\npartner = \"acme\"\n"),
        );
    }
}

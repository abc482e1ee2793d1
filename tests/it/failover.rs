//! Two daemons as two hosts — each its own spool, archive, state and jobs,
//! one shared outbox, one PostgreSQL ledger, one partner sshd — with
//! exports dropped over time, a payer answering what arrives (999 + 835),
//! and `kill -9` of either daemon at seeded random moments, 20 times, each
//! restarted at once. Checked on the partner's side: every 837 arrived
//! once and every claim once; and in the ledger: every response applied
//! once, every payment counted once, every claim at a final status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::sshd::Sshd;
use common::tools::{age_decrypt, age_seal};
use common::wait_for;
use common::workspace::{names_in, Daemon, Workspace};
use edi_courier::profile::Profile;
use edi_courier::sandbox::payer::{answer, read_837, Rules};
use edi_courier::x12::Sequential;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EXPORTS: usize = 10;
const CLAIMS_PER_EXPORT: usize = 6;
const KILLS: usize = 20;
/// The daemons' clock runs this much faster than real time.
const FACTOR: i64 = 10;

/// One clock for every daemon started, however late: the fake time is
/// `t0 + FACTOR × (real time since t0)`, so restarts agree on the ticks.
struct SharedClock {
    t0: chrono::DateTime<chrono::Utc>,
    real0: Instant,
}

impl SharedClock {
    fn now(&self) -> String {
        let elapsed = chrono::Duration::from_std(self.real0.elapsed() * FACTOR as u32).unwrap();
        format!(
            "{}*{FACTOR}",
            (self.t0 + elapsed).format("%Y-%m-%dT%H:%M:%SZ")
        )
    }

    fn start(&self, ws: &Workspace) -> Daemon {
        // A killed daemon's job leases lapse after three real seconds (they
        // are judged on the database's clock, not the fast one).
        ws.daemon(&[
            ("EDI_COURIER_CLOCK", &self.now()),
            ("EDI_COURIER_LEASE_SECS", "3"),
        ])
    }
}

/// A JSON export of claims whose ids no other export uses.
fn drop_export(ws: &Workspace, n: usize) {
    let mut claims = common::gen::batch(
        1400 + n as u64,
        CLAIMS_PER_EXPORT,
        edi_courier::model::ClaimKind::Professional,
        false,
    );
    for (i, c) in claims.iter_mut().enumerate() {
        c.id = format!("FO{n:02}C{i:02}");
    }
    let bytes = serde_json::to_vec(&edi_courier::model::ClaimFile {
        submitter: None,
        receiver: None,
        claims,
    })
    .unwrap();
    // Written aside and renamed, as an exporter does.
    let tmp = ws.outbox().join(format!(".export-{n:02}.json"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, ws.outbox().join(format!("export-{n:02}.json"))).unwrap();
}

/// Response sets in an X12 file (its `ST` segments).
fn sets_in(x12: &[u8]) -> usize {
    String::from_utf8_lossy(x12)
        .split('~')
        .filter(|s| s.trim_start().starts_with("ST*"))
        .count()
}

/// What the payer saw and sent.
#[derive(Default)]
struct PayerLog {
    /// 837 file name → its claim ids.
    files: BTreeMap<String, Vec<String>>,
    /// Response sets it sent back.
    sets: usize,
}

/// Answers every 837 that arrives with a 999 and an 835, sealed to us and
/// put in place atomically (hidden name, then renamed).
fn payer(ws: &Workspace, log: &Mutex<PayerLog>) {
    let env = Profile::sandbox().unwrap().envelope;
    let rules = Rules {
        reject_percent: 0,
        deny_percent: 20,
        reversal_percent: 0,
        second_277_percent: 0,
        ..Rules::default()
    };
    let arrived = &ws.partner.outbound_dir;
    for name in names_in(arrived) {
        if name.ends_with(".part") || log.lock().unwrap().files.contains_key(&name) {
            continue;
        }
        let received = read_837(&age_decrypt(&ws.partner_identity, &arrived.join(&name))).unwrap();
        let ids = received.claims.iter().map(|c| c.claim.id.clone()).collect();
        let control: u32 = received.isa.control.trim().parse().unwrap();
        let made = answer(
            &received,
            &rules,
            &env,
            chrono::Local::now().naive_local(),
            &mut Sequential::starting_at(control * 10),
        )
        .unwrap();
        let mut sets = 0;
        for (suffix, bytes) in [("999", made.ack), ("835", made.remit)] {
            let Some(bytes) = bytes else { continue };
            sets += sets_in(&bytes);
            let dir = &ws.partner.inbound_dir;
            let hidden = dir.join(format!(".{name}.{suffix}"));
            age_seal(&ws.our_recipient, &bytes, &hidden);
            std::fs::rename(&hidden, dir.join(format!("{name}.{suffix}"))).unwrap();
        }
        let mut log = log.lock().unwrap();
        log.files.insert(name, ids);
        log.sets += sets;
    }
}

/// A log line without its terminal colours.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ … m
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of `key=value` in a log line.
fn field<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// Runs a query on the shared ledger.
fn ledger_rows(url: &str, sql: &str) -> Vec<(String, i64)> {
    common::with_ledger_pool(url, async |pool| {
        sqlx::query_as(sql).fetch_all(pool).await.unwrap()
    })
}

#[test]
fn two_hosts_killed_twenty_times_deliver_every_claim_once_and_apply_every_answer_once() {
    let sshd = Sshd::start();
    let a = Workspace::on_postgres(&sshd);
    let b = a.another_host();
    for ws in [&a, &b] {
        for (name, kind, schedule) in [
            ("submit", "submit-claims", "*/10 * * * * *"),
            ("collect", "collect-responses", "*/10 * * * * *"),
            // Light jobs every (fast) second: the ticks the two daemons
            // contend for, well over a thousand in the run.
            ("deadlines-a", "check-deadlines", "* * * * * *"),
            ("deadlines-b", "check-deadlines", "* * * * * *"),
            ("deadlines-c", "check-deadlines", "* * * * * *"),
        ] {
            ws.job(
                name,
                &format!("kind = \"{kind}\"\nschedule = \"{schedule}\"\npartner = \"acme\"\n"),
            );
        }
    }
    let clock = SharedClock {
        t0: chrono::Utc::now(),
        real0: Instant::now(),
    };
    let mut daemons = [clock.start(&a), clock.start(&b)];

    // The payer answers in the background while the daemons are killed.
    let log = Arc::new(Mutex::new(PayerLog::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let answering = {
        let (log, stop) = (log.clone(), stop.clone());
        // The payer's own scratch folder, on the same partner.
        let partner = a.another_host();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                payer(&partner, &log);
                std::thread::sleep(Duration::from_millis(200));
            }
            payer(&partner, &log);
        })
    };

    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let mut dropped = 0;
    for kill in 0..KILLS {
        if kill % 2 == 0 && dropped < EXPORTS {
            drop_export(&a, dropped);
            dropped += 1;
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(800..3500)));
        let which = rng.gen_range(0..2);
        daemons[which].kill();
        daemons[which] = clock.start(if which == 0 { &a } else { &b });
    }
    while dropped < EXPORTS {
        drop_export(&a, dropped);
        dropped += 1;
    }

    // Everything settles: every claim paid or denied.
    let total = EXPORTS * CLAIMS_PER_EXPORT;
    let final_sql = "SELECT status, COUNT(*) FROM claims_now GROUP BY status ORDER BY status";
    let settled = wait_for(90, || {
        let by_status = ledger_rows(&a.ledger_url, final_sql);
        let done: i64 = by_status
            .iter()
            .filter(|(s, _)| ["paid", "partially_paid", "denied"].contains(&s.as_str()))
            .map(|(_, n)| n)
            .sum();
        done == total as i64
    });
    stop.store(true, Ordering::SeqCst);
    answering.join().unwrap();
    let logs = format!("{}\n---\n{}", daemons[0].log_text(), daemons[1].log_text());
    assert!(
        settled,
        "{:?}\n{logs}",
        ledger_rows(&a.ledger_url, final_sql),
    );
    for d in &mut daemons {
        assert_eq!(d.stop(), Some(0), "{logs}");
    }

    // The partner's side: each 837 once, each claim once, nothing left half-sent.
    let log = log.lock().unwrap();
    let names = names_in(&a.partner.outbound_dir);
    assert!(names.iter().all(|n| !n.ends_with(".part")), "{names:?}");
    let mut claims = BTreeSet::new();
    for (file, ids) in &log.files {
        for id in ids {
            assert!(
                claims.insert(id.clone()),
                "{id} arrived twice (again in {file})"
            );
        }
    }
    assert_eq!(claims.len(), total, "{claims:?}");
    let delivered = ledger_rows(
        &a.ledger_url,
        "SELECT state, COUNT(*) FROM files WHERE direction = 'out' AND state = 'delivered' GROUP BY state",
    );
    assert_eq!(
        delivered,
        [("delivered".to_owned(), log.files.len() as i64)]
    );

    // The ledger: every response applied once, every payment counted once.
    let responses = ledger_rows(
        &a.ledger_url,
        "SELECT kind, COUNT(*) FROM responses GROUP BY kind",
    );
    let applied: i64 = responses.iter().map(|(_, n)| n).sum();
    assert_eq!(applied, log.sets as i64, "{responses:?}");
    let paid_twice = ledger_rows(
        &a.ledger_url,
        "SELECT CAST(claim_id AS TEXT), COUNT(*) FROM claim_responses \
         WHERE status IN ('paid', 'partially_paid', 'denied') GROUP BY claim_id HAVING COUNT(*) > 1",
    );
    assert!(paid_twice.is_empty(), "{paid_twice:?}");
    let payments = ledger_rows(
        &a.ledger_url,
        "SELECT 'all', COUNT(*) FROM claim_responses WHERE status IN ('paid', 'partially_paid', 'denied')",
    );
    assert_eq!(payments, [("all".to_owned(), total as i64)]);
    // Every tick was claimed by one daemon and run at most once, by the
    // logs of every daemon that ever ran (the killed ones included).
    let ticks: i64 = ledger_rows(&a.ledger_url, "SELECT 'all', COUNT(*) FROM job_runs")[0].1;
    assert!(ticks >= 1000, "only {ticks} ticks recorded");
    let mut started = BTreeMap::new();
    for ws in [&a, &b] {
        for log in std::fs::read_dir(ws.path("")).unwrap() {
            let path = log.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.starts_with("daemon-") && name.ends_with(".log")) {
                continue;
            }
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let line = strip_ansi(line);
                if !line.contains("run started") {
                    continue;
                }
                let (Some(job), Some(tick)) = (field(&line, "job"), field(&line, "tick")) else {
                    panic!("a start without its job and tick: {line}");
                };
                let earlier = started.insert((job.to_owned(), tick.to_owned()), name.clone());
                assert!(
                    earlier.is_none(),
                    "{job} tick {tick} ran twice: in {} and in {name}",
                    earlier.unwrap_or_default()
                );
            }
        }
    }
    assert!(started.len() >= 500, "only {} runs started", started.len());

    // Nothing waits in the ledger's spool copies once delivered and read.
    let copies = ledger_rows(
        &a.ledger_url,
        "SELECT direction, COUNT(*) FROM spool_copies GROUP BY direction",
    );
    assert!(copies.is_empty(), "{copies:?}");
}

/// The host that sealed an 837 dies after recording it `spooled` and
/// loses its spool; the other host finishes the delivery from the ledger's
/// copy: the partner gets exactly the bytes the first host sealed, once.
#[test]
fn a_file_sealed_on_a_host_that_died_is_delivered_by_the_other_from_the_ledgers_copy() {
    let sshd = Sshd::start();
    let a = Workspace::on_postgres(&sshd);
    let b = a.another_host();
    drop_export(&a, 0);

    let killed = a.submit(&[("EDI_COURIER_FAULT", "spooled")]);
    assert_eq!(killed.status.code(), None, "killed at `spooled`");
    let spooled = names_in(&a.path("spool/out/acme"));
    assert_eq!(spooled.len(), 1, "{spooled:?}");
    let sealed = std::fs::read(a.path("spool/out/acme").join(&spooled[0])).unwrap();
    // Host a is gone with its disk; its run lease lapses.
    std::fs::remove_dir_all(a.path("spool")).unwrap();
    ledger_rows(
        &a.ledger_url,
        "UPDATE run_leases SET expires_at = '2000-01-01T00:00:00Z' RETURNING name, CAST(0 AS BIGINT)",
    );

    let out = b.submit(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let remote = names_in(&a.partner.outbound_dir);
    assert_eq!(remote, spooled, "one file, under its recorded name");
    assert_eq!(
        std::fs::read(a.partner.outbound_dir.join(&remote[0])).unwrap(),
        sealed,
        "the bytes host a sealed, restored from the ledger"
    );
    let opened = age_decrypt(
        &a.partner_identity,
        &a.partner.outbound_dir.join(&remote[0]),
    );
    assert_eq!(
        String::from_utf8_lossy(&opened).matches("CLM*").count(),
        CLAIMS_PER_EXPORT
    );
    assert_eq!(
        ledger_rows(
            &a.ledger_url,
            "SELECT status, COUNT(*) FROM claims_now GROUP BY status"
        ),
        [("sent".to_owned(), CLAIMS_PER_EXPORT as i64)]
    );
    // Delivered: the ledger's copy is gone, and a second run sends nothing.
    assert!(ledger_rows(
        &a.ledger_url,
        "SELECT direction, COUNT(*) FROM spool_copies GROUP BY direction"
    )
    .is_empty());
    assert_eq!(b.submit(&[]).status.code(), Some(0));
    assert_eq!(names_in(&a.partner.outbound_dir).len(), 1);
}

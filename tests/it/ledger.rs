//! Control numbers from the ledger: persisted before use, never reused —
//! across restarts, failed batches and two daemons on one ledger.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use edi_courier::ledger::{ControlKind, Ledger};
use edi_courier::x12::{ControlNumbers, Writer837};

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("ledger.sqlite").display())
}

#[tokio::test]
async fn numbers_continue_after_a_restart_and_a_failed_batch_burns_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&url(&dir)).await.unwrap();
    assert_eq!(
        ledger
            .reserve("US", "ACME", ControlKind::Interchange, 1)
            .await
            .unwrap(),
        1..2
    );
    // A batch reserves five set numbers, uses two, then fails.
    let burned = ledger
        .reserve("US", "ACME", ControlKind::TransactionSet, 5)
        .await
        .unwrap();
    assert_eq!(burned, 1..6);
    // Pairs and kinds count separately.
    assert_eq!(
        ledger
            .reserve("US", "OTHER", ControlKind::Interchange, 1)
            .await
            .unwrap(),
        1..2
    );
    ledger.close().await;

    let ledger = Ledger::open(&url(&dir)).await.unwrap();
    assert_eq!(
        ledger
            .reserve("US", "ACME", ControlKind::Interchange, 1)
            .await
            .unwrap(),
        2..3
    );
    assert_eq!(
        ledger
            .reserve("US", "ACME", ControlKind::TransactionSet, 1)
            .await
            .unwrap(),
        6..7
    );
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    assert_eq!(ledger.next_daily("acme", day).await.unwrap(), 1);
    assert_eq!(ledger.next_daily("acme", day).await.unwrap(), 2);
    assert_eq!(
        ledger
            .next_daily("acme", day.succ_opt().unwrap())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_ledger_never_get_the_same_number() {
    let dir = tempfile::tempdir().unwrap();
    let a = Ledger::open(&url(&dir)).await.unwrap();
    let b = Ledger::open(&url(&dir)).await.unwrap();
    let take = |l: Ledger| async move {
        let mut got = Vec::new();
        for _ in 0..100 {
            got.extend(
                l.reserve("US", "ACME", ControlKind::Interchange, 1)
                    .await
                    .unwrap(),
            );
        }
        got
    };
    let (x, y) = tokio::join!(tokio::spawn(take(a)), tokio::spawn(take(b)));
    let mut all: Vec<u32> = x.unwrap().into_iter().chain(y.unwrap()).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<u32>>());
}

#[tokio::test]
async fn the_writer_runs_on_a_reservation_and_stops_rather_than_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&url(&dir)).await.unwrap();
    let claims = common::gen::batch(11, 7, edi_courier::model::ClaimKind::Professional, false);
    let env = edi_courier::profile::Profile::sandbox().unwrap().envelope;
    let mut reserved = ledger
        .reserve_batch(
            (&env.sender_id, &env.receiver_id),
            (&env.gs_sender, &env.gs_receiver),
            1,
            7,
            3,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            reserved.interchange.clone(),
            reserved.group.clone(),
            reserved.set.clone()
        ),
        (1..2, 1..2, 1..5)
    );
    let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let mut out = Vec::new();
    let mut w = Writer837::begin(env.clone(), now, &mut reserved, &mut out)
        .unwrap()
        .with_max_claims_per_set(3);
    for c in &claims {
        w.write_claim(c, &mut reserved, &mut out).unwrap();
    }
    let summary = w.finish(&mut out).unwrap();
    let sets: Vec<u32> = summary.groups[0].sets.iter().map(|s| s.control).collect();
    assert_eq!(sets, [1, 2, 3]);
    // The next file starts after every reserved number, used or not.
    let next = ledger
        .reserve_batch(
            (&env.sender_id, &env.receiver_id),
            (&env.gs_sender, &env.gs_receiver),
            1,
            1,
            3,
        )
        .await
        .unwrap();
    assert_eq!((next.interchange.start, next.set.start), (2, 5));
    // Running out is an error, not a reuse.
    let mut tiny = next;
    tiny.set = 9..9;
    assert!(tiny.transaction_set().is_err());
}

/// Regression: sqlx does not lock SQLite while migrating, and two opens of
/// a new ledger at once (a daemon starting while `status` runs) failed with
/// "table control_numbers already exists".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_new_ledger_from_several_places_at_once_migrates_it_once() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = url(&dir);
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { Ledger::open(&url).await.map(|_| true) })
            })
            .collect();
        for o in opens {
            assert!(o.await.unwrap().unwrap());
        }
    }
}

/// A ledger file written by the release before PostgreSQL support (all nine
/// migrations applied) opens as it is: no migration runs again or fails its
/// checksum, its claims and control numbers carry on.
#[tokio::test]
async fn a_ledger_made_before_postgres_support_opens_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["ledger.sqlite", "ledger.sqlite.audit-head"] {
        std::fs::copy(
            common::fixture(&format!("ledger-0009/{f}")),
            dir.path().join(f),
        )
        .unwrap();
    }
    let ledger = Ledger::open(&url(&dir)).await.unwrap();
    assert_eq!(ledger.migration_level().await.unwrap(), 18);
    assert_eq!(ledger.dialect(), edi_courier::ledger::Dialect::Sqlite);
    let totals = ledger
        .claim_totals(chrono::DateTime::<chrono::Utc>::MIN_UTC)
        .await
        .unwrap();
    assert_eq!(totals.iter().map(|t| t.claims).sum::<i64>(), 30);
    // The demo sent one interchange: the next ISA13 is 2, not 1 again.
    assert_eq!(
        ledger
            .reserve("EDICOURIER", "SANDBOXPAYER", ControlKind::Interchange, 1)
            .await
            .unwrap(),
        2..3
    );
    ledger.close().await;
}

/// Every claim's `trace` timeline in the ledger at `url`, RFM-2001..2030.
async fn timelines(url: &str) -> Vec<Vec<(String, String, String)>> {
    let ledger = Ledger::open(url).await.unwrap();
    let mut all = Vec::new();
    for n in 2001..=2030 {
        let traces = ledger.trace(&format!("RFM-{n}")).await.unwrap();
        assert_eq!(traces.len(), 1);
        all.push(traces[0].timeline.clone());
    }
    ledger.close().await;
    all
}

/// A claim's `queued` and `sent` are its file's `spooled` and `delivered`:
/// this release writes no event row per claim for them, and `trace` shows
/// them from the file's events. A ledger of an older release has the rows;
/// its claims' timelines read the same as before — each line once — and
/// the same as when those rows are absent (this release's records) or half
/// there (spooled by an older release, delivered by this one).
#[tokio::test]
async fn trace_shows_queued_and_sent_once_whichever_release_recorded_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    for (name, gone) in [
        ("older", None),
        ("this", Some("'queued', 'sent'")),
        ("mixed", Some("'sent'")),
    ] {
        let at = dir.path().join(name);
        std::fs::create_dir(&at).unwrap();
        for f in ["ledger.sqlite", "ledger.sqlite.audit-head"] {
            std::fs::copy(common::fixture(&format!("ledger-0009/{f}")), at.join(f)).unwrap();
        }
        let url = format!("sqlite://{}", at.join("ledger.sqlite").display());
        if let Some(kinds) = gone {
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let removed = sqlx::query(&format!(
                "DELETE FROM events WHERE claim_id IS NOT NULL AND file_id IS NOT NULL \
                 AND kind IN ({kinds})"
            ))
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected();
            assert!(removed >= 30, "{name}: {removed}");
            pool.close().await;
        }
        seen.push((name, timelines(&url).await));
    }
    let (_, older) = &seen[0];
    for timeline in older {
        let what: Vec<&str> = timeline.iter().map(|(_, w, _)| w.as_str()).collect();
        assert_eq!(
            &what[..7],
            [
                "file picked_up",
                "queued",
                "file spooled",
                "file uploading",
                "file verified",
                "file delivered",
                "sent"
            ],
            "{timeline:?}"
        );
        assert_eq!(what.iter().filter(|w| **w == "queued").count(), 1);
        assert_eq!(what.iter().filter(|w| **w == "sent").count(), 1);
    }
    for (name, timelines) in &seen[1..] {
        assert_eq!(timelines, older, "{name}");
    }
}

/// A collected file recorded as downloaded; its number.
async fn collected(ledger: &Ledger, n: u8) -> i64 {
    let sha = format!("{n:064}");
    let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let recorded = ledger
        .record_inbound(
            &edi_courier::ledger::NewInbound {
                partner: "acme",
                remote_name: "answer.x12",
                remote_size: 1,
                remote_mtime: None,
                spool_path: "in/answer.x12",
                sha256: &sha,
            },
            at,
        )
        .await
        .unwrap();
    let edi_courier::ledger::Inbound::New(id) = recorded else {
        panic!("{recorded:?}")
    };
    id
}

#[tokio::test]
async fn a_settled_answer_is_never_moved_back_by_a_run_that_read_it_meanwhile() {
    use edi_courier::ledger::{InboundState, Moved};
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&url(&dir)).await.unwrap();
    let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let state = |id| {
        let ledger = &ledger;
        async move { ledger.inbound_file(id).await.unwrap().unwrap().3 }
    };
    // Applied by one run: another that found it unreadable meanwhile
    // neither quarantines it nor has an operator's review stick.
    let applied = collected(&ledger, 1).await;
    let sha = format!("{:064}", 1);
    ledger
        .record_responses("acme", applied, &sha, &[], at)
        .await
        .unwrap();
    assert_eq!(state(applied).await, InboundState::Processed);
    let moved = ledger
        .quarantine_inbound(applied, "cut short", at, &[], None)
        .await
        .unwrap();
    assert_eq!(moved, Moved::Settled(InboundState::Processed));
    let moved = ledger
        .set_inbound_state(applied, InboundState::Reviewed, None, at)
        .await
        .unwrap();
    assert_eq!(moved, Moved::Settled(InboundState::Processed));
    assert_eq!(state(applied).await, InboundState::Processed);
    // Quarantined, then reviewed: a late apply changes nothing.
    let reviewed = collected(&ledger, 2).await;
    let moved = ledger
        .quarantine_inbound(reviewed, "cut short", at, &[], None)
        .await
        .unwrap();
    assert_eq!(moved, Moved::Moved);
    let moved = ledger
        .set_inbound_state(reviewed, InboundState::Reviewed, None, at)
        .await
        .unwrap();
    assert_eq!(moved, Moved::Moved);
    let done = ledger
        .record_responses("acme", reviewed, &format!("{:064}", 2), &[], at)
        .await
        .unwrap();
    assert_eq!(done.responses, 0);
    assert_eq!(state(reviewed).await, InboundState::Reviewed);
    ledger.close().await;
}

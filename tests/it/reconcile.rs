//! Reconciliation against a ledger that really sent the claims: an export
//! submitted to a real sshd, then a 999, 277CAs and 835s (including a
//! reversal and a late acknowledgment) recorded against it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::root;
use common::sshd::Sshd;
use common::tools::age_decrypt;
use common::workspace::{names_in, Workspace, PARTNER};
use edi_courier::ledger::{Ledger, NewInbound};
use edi_courier::model::response::*;
use edi_courier::model::Claim;

fn at() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap()
}

async fn record(ledger: &Ledger, n: u8, responses: &[Response]) -> edi_courier::ledger::Reconciled {
    let sha = format!("{n:064}");
    let id = ledger
        .record_inbound(
            &NewInbound {
                partner: PARTNER,
                remote_name: "from-partner.x12",
                remote_size: 1,
                remote_mtime: None,
                spool_path: "spool/in/x",
                sha256: &sha,
            },
            at().and_utc(),
        )
        .await
        .unwrap();
    let edi_courier::ledger::Inbound::New(id) = id else {
        panic!("{id:?}")
    };
    ledger
        .record_responses(PARTNER, id, &sha, responses, at().and_utc())
        .await
        .unwrap()
}

fn stc(category: &str, code: &str) -> StatusCode {
    StatusCode {
        category: category.into(),
        code: code.into(),
        ..StatusCode::default()
    }
}

fn payment(c: &Claim, status: &str, paid: &str) -> ClaimPayment {
    ClaimPayment {
        claim_id: c.id.as_str().into(),
        status: status.into(),
        charge: c.total_charge,
        paid: paid.parse().unwrap(),
        ..ClaimPayment::default()
    }
}

/// Submits the example clinic export and returns the claims as the
/// partner received them (opened with the age CLI, read with our reader).
/// The BHT03 of the one set we sent: the batch a 277CA's 2200B names.
fn sent_reference(ws: &Workspace) -> String {
    let remote = names_in(&ws.partner.outbound_dir);
    let sent = age_decrypt(
        &ws.partner_identity,
        &ws.partner.outbound_dir.join(&remote[0]),
    );
    String::from_utf8_lossy(&sent)
        .split('~')
        .find(|s| s.starts_with("BHT*"))
        .and_then(|s| s.split('*').nth(3))
        .unwrap()
        .to_owned()
}

/// A 2200B naming our batch `reference`, with `claims` statuses below it.
fn below(reference: &str, claims: u32) -> Vec<ReceiverStatus> {
    vec![ReceiverStatus {
        trace: reference.to_owned(),
        claims,
        ..ReceiverStatus::default()
    }]
}

fn submit_example(ws: &Workspace) -> Vec<Claim> {
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    assert_eq!(ws.submit(&[]).status.code(), Some(0));
    let remote = names_in(&ws.partner.outbound_dir);
    let sent = age_decrypt(
        &ws.partner_identity,
        &ws.partner.outbound_dir.join(&remote[0]),
    );
    common::read_claims(&sent).1
}

#[test]
fn responses_move_each_sent_claim_to_the_right_status_and_keep_history() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let claims = submit_example(&ws);
    assert_eq!(claims.len(), 5);

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ledger = Ledger::open(&ws.ledger_url).await.unwrap();
        let status = |id: String| {
            let ledger = &ledger;
            async move {
                ledger
                    .claim_status(PARTNER, &id)
                    .await
                    .unwrap()
                    .unwrap()
                    .name()
            }
        };

        // The 999 accepts the one set (GS06 1, ST02 0001) of the interchange.
        let ack = Response::Ack999(Ack999 {
            envelope: common::from_payer(),
            functional_id: "HC".into(),
            group: "1".into(),
            sets: vec![SetAck {
                set_id: "837".into(),
                set: "0001".into(),
                status: "A".into(),
                ..SetAck::default()
            }],
            status: "A".into(),
            // AK902: our group held one set.
            sets_included: 1,
            ..Ack999::default()
        });
        let done = record(&ledger, 1, std::slice::from_ref(&ack)).await;
        assert_eq!(
            (done.responses, done.unmatched, done.changed.total()),
            (1, 0, 5)
        );
        for c in &claims {
            assert_eq!(status(c.id.clone()).await, "accepted_999");
        }

        // A 277CA accepts four and rejects the fifth; one status is for a claim we never sent.
        let mut statuses: Vec<ClaimStatus> = claims
            .iter()
            .enumerate()
            .map(|(i, c)| ClaimStatus {
                claim_id: c.id.clone(),
                payer_claim_number: Some(format!("PCN{i}")),
                statuses: vec![if i == 4 {
                    stc("A7", "562")
                } else {
                    stc("A2", "20")
                }],
                ..ClaimStatus::default()
            })
            .collect();
        statuses.push(ClaimStatus {
            claim_id: "NOT-OURS".into(),
            statuses: vec![stc("A2", "20")],
            ..ClaimStatus::default()
        });
        let s277 = Response::Status277(Status277 {
            envelope: common::from_payer(),
            reference: "R1".into(),
            receivers: below(&sent_reference(&ws), statuses.len() as u32),
            claims: statuses,
            ..Status277::default()
        });
        let unknown = Response::Status277(Status277 {
            envelope: EnvelopeRef {
                set: "2".into(),
                ..common::from_payer()
            },
            reference: "R2".into(),
            claims: vec![ClaimStatus {
                claim_id: "NOBODY".into(),
                statuses: vec![stc("A2", "20")],
                ..ClaimStatus::default()
            }],
            ..Status277::default()
        });
        let done = record(&ledger, 2, &[s277, unknown]).await;
        assert_eq!(
            (done.responses, done.unmatched),
            (2, 1),
            "the unknown 277CA is kept, unmatched"
        );
        assert_eq!(status(claims[0].id.clone()).await, "accepted_277");
        assert_eq!(status(claims[4].id.clone()).await, "rejected_277");

        // The 835: paid in full, partly, denied; then a later 835 reverses the first.
        let remit = |claims: Vec<ClaimPayment>| {
            Response::Remittance(Remittance {
                envelope: common::from_payer(),
                trace: "EFT1".into(),
                claims,
                ..Remittance::default()
            })
        };
        let half = (claims[1].total_charge / rust_decimal::Decimal::from(2)).to_string();
        record(
            &ledger,
            3,
            &[remit(vec![
                payment(&claims[0], "1", &claims[0].total_charge.to_string()),
                payment(&claims[1], "1", &half),
                payment(&claims[2], "4", "0"),
            ])],
        )
        .await;
        assert_eq!(status(claims[0].id.clone()).await, "paid");
        assert_eq!(status(claims[1].id.clone()).await, "partially_paid");
        assert_eq!(status(claims[2].id.clone()).await, "denied");
        let mut reversal = payment(&claims[0], "22", &(-claims[0].total_charge).to_string());
        reversal.charge = -claims[0].total_charge;
        let reversing = Response::Remittance(Remittance {
            envelope: common::from_payer(),
            trace: "EFT2".into(),
            claims: vec![reversal],
            ..Remittance::default()
        });
        record(&ledger, 4, &[reversing]).await;
        assert_eq!(status(claims[0].id.clone()).await, "reversed");

        // A late duplicate 999 does not undo what the 835 said.
        record(&ledger, 5, std::slice::from_ref(&ack)).await;
        assert_eq!(status(claims[1].id.clone()).await, "partially_paid");
        assert_eq!(status(claims[3].id.clone()).await, "accepted_277");
        ledger.close().await;
    });
}

/// The partner answers through its SFTP folder: a sealed 999, a plain
/// 277CA that rejects one claim, and a broken file. `collect` takes them,
/// reconciles, quarantines the broken one, removes them from the server
/// only after recording them, and a second run finds nothing to do.
#[test]
fn collect_takes_responses_from_the_partner_and_reconciles_them() {
    use edi_courier::model::response::{ClaimStatus, StatusCode};
    use edi_courier::profile::Profile;
    use edi_courier::x12::{write_277ca, Answer277, Sequential};

    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let claims = submit_example(&ws);

    let env = Profile::sandbox().unwrap().envelope.reply();
    let ack = common::accepting_999(at(), 500);
    // The 999 took 500 of each counter; the 277CA goes on from there.
    let mut numbers = Sequential::starting_at(501);
    common::tools::age_seal(
        &ws.our_recipient,
        &ack,
        &ws.partner.inbound_dir.join("ACK_001.999.age"),
    );

    let answered: Vec<_> = claims
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (category, code) = if i == 2 { ("A7", "562") } else { ("A2", "20") };
            (
                c,
                ClaimStatus {
                    claim_id: c.id.clone(),
                    payer_claim_number: Some(format!("PCN{i}")),
                    statuses: vec![StatusCode {
                        category: category.into(),
                        code: code.into(),
                        ..StatusCode::default()
                    }],
                    ..ClaimStatus::default()
                },
            )
        })
        .collect();
    let mut s277 = Vec::new();
    write_277ca(
        &env,
        at(),
        &mut numbers,
        &Answer277 {
            reference: "R277",
            payer_name: "SANDBOX PAYER",
            payer_id: "SANDBOX",
            submitter_name: "EDI COURIER",
            submitter_id: "EDICOURIER",
            batch_trace: &sent_reference(&ws),
            received: at().date(),
            claims: &answered,
        },
        &mut s277,
    )
    .unwrap();
    std::fs::write(ws.partner.inbound_dir.join("STATUS_001.277"), &s277).unwrap();
    std::fs::write(
        ws.partner.inbound_dir.join("BROKEN_001.999"),
        "this is not X12",
    )
    .unwrap();
    // A payer's 835 for claims that are not ours: kept unmatched, exported for posting.
    std::fs::copy(
        common::fixture("x12/835/tr3-multiple-claims-single-check.edi"),
        ws.partner.inbound_dir.join("REMIT_001.835"),
    )
    .unwrap();

    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a rejection and a quarantine: {said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&format!("{}: rejected_277", claims[2].id)),
        "{said}"
    );
    assert!(said.contains("BROKEN_001.999: QUARANTINED"), "{said}");
    assert_eq!(
        names_in(&ws.partner.inbound_dir),
        ["BROKEN_001.999"],
        "applied files are removed after recording; the quarantined one stays on the server"
    );
    let exports = names_in(&ws.path("remittances/acme"));
    assert_eq!(exports.len(), 2, "{exports:?}");
    let csv_export =
        std::fs::read_to_string(ws.path("remittances/acme").join(&exports[0])).unwrap();
    assert_eq!(
        csv_export.lines().filter(|l| l.contains(",claim,")).count(),
        9,
        "{csv_export}"
    );
    assert!(csv_export.starts_with("row,check_or_eft,payment_date,payer,claim_id"));

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ledger = Ledger::open(&ws.ledger_url).await.unwrap();
        for (i, c) in claims.iter().enumerate() {
            let s = ledger.claim_status(PARTNER, &c.id).await.unwrap().unwrap();
            assert_eq!(
                s.name(),
                if i == 2 {
                    "rejected_277"
                } else {
                    "accepted_277"
                },
                "{}",
                c.id
            );
        }
        ledger.close().await;
    });

    // trace: the whole chain for the rejected claim, with hashes and control numbers.
    let trace = ws.run(&["trace", &claims[2].id], &[]);
    let shown = String::from_utf8_lossy(&trace.stdout).into_owned();
    assert_eq!(trace.status.code(), Some(0), "{shown}");
    for expected in [
        "status rejected_277",
        "payer claim number PCN2",
        "ISA13 000000001, GS06 1, ST02 0001",
        "queued",
        "file delivered",
        "999 accepted_999",
        "277CA rejected_277",
        "STC A7:562",
        "STATUS_001.277 sha256",
    ] {
        assert!(
            shown.contains(expected),
            "trace shows {expected:?}:\n{shown}"
        );
    }
    assert!(
        !shown.contains(&claims[2].subscriber.last_name),
        "no patient name in trace"
    );
    let status_text = String::from_utf8_lossy(&ws.run(&["status"], &[]).stdout).into_owned();
    assert!(
        status_text.contains("835 answering 12345 from REMIT_001.835"),
        "{status_text}"
    );
    // match: the unmatched 835 is attached by hand to the fourth claim.
    let number = status_text
        .lines()
        .find(|l| l.contains("835 answering 12345"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    // It answers nine claims, none ours: name the one the payer meant.
    let matched = ws.run(
        &[
            "match",
            &number,
            &claims[3].id,
            "--partner",
            PARTNER,
            "--answer",
            "7722337",
        ],
        &[],
    );
    let said = String::from_utf8_lossy(&matched.stdout).into_owned();
    assert_eq!(matched.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("attached to claim {}", claims[3].id)),
        "{said}"
    );
    let trace =
        String::from_utf8_lossy(&ws.run(&["trace", &claims[3].id], &[]).stdout).into_owned();
    assert!(trace.contains("835 "), "{trace}");
    assert!(
        shown.contains("rejected: information invalid"),
        "codes are described:\n{shown}"
    );
    let status = String::from_utf8_lossy(&ws.run(&["status"], &[]).stdout).into_owned();
    assert!(
        status.contains("rejected and denied claims")
            && status.contains(&claims[2].id)
            && status.contains("STC A7:562 (rejected: information invalid)"),
        "{status}"
    );
    let missing = ws.run(&["trace", "NO-SUCH-CLAIM"], &[]);
    assert_eq!(missing.status.code(), Some(1));

    // The same 277CA dropped again is recognised; nothing new is processed.
    std::fs::write(ws.partner.inbound_dir.join("STATUS_001-again.277"), &s277).unwrap();
    let again = ws.run(&["collect", "--partner", PARTNER], &[]);
    let said = String::from_utf8_lossy(&again.stdout).into_owned();
    assert_eq!(again.status.code(), Some(0), "{said}");
    assert!(said.contains("applied before"), "{said}");
    let third = ws.run(&["collect", "--partner", PARTNER], &[]);
    assert!(String::from_utf8_lossy(&third.stdout).contains("nothing to collect"));
}

/// The example export submitted to a partner of its own (`tag`, with
/// `extra` partner settings), and a 999 rejecting it waiting on the
/// partner's server as `ACK.999` (its bytes).
fn rejected_on_the_server(sshd: &Sshd, tag: &str, extra: &str) -> (Workspace, Vec<u8>) {
    let mut ws = Workspace::new(sshd);
    ws.partner.outbound_dir = sshd.folder(&format!("in-{tag}"));
    ws.partner.inbound_dir = sshd.folder(&format!("out-{tag}"));
    ws.write_config(&ws.partner.clone(), &sshd.user);
    ws.append_config(extra);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    assert_eq!(ws.submit(&[]).status.code(), Some(0));
    let ack = common::rejecting_999(at(), 900);
    std::fs::write(ws.partner.inbound_dir.join("ACK.999"), &ack).unwrap();
    (ws, ack)
}

/// `kill -9` at each step of a collect, then a normal run: every response
/// processed exactly once, the remote file gone only after its record.
#[test]
fn kill_9_during_collect_loses_nothing_and_processes_nothing_twice() {
    let sshd = Sshd::start();
    for step in [
        "collect-downloaded",
        "collect-inserted",
        "collect-recorded",
        "collect-applied",
        "collect-processed",
    ] {
        let (ws, _) = rejected_on_the_server(&sshd, step, "");

        let killed = ws.run(
            &["collect", "--partner", PARTNER],
            &[("EDI_COURIER_FAULT", step)],
        );
        assert_eq!(killed.status.code(), None, "{step}: killed");
        assert_eq!(
            names_in(&ws.partner.inbound_dir),
            ["ACK.999"],
            "{step}: the remote file stays until it is recorded and processed"
        );
        let out = ws.run(&["collect", "--partner", PARTNER], &[]);
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            names_in(&ws.partner.inbound_dir).is_empty(),
            "{step}: {said}"
        );

        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let ledger = Ledger::open(&ws.ledger_url).await.unwrap();
            let counts = ledger
                .claim_totals(chrono::DateTime::<chrono::Utc>::MIN_UTC)
                .await
                .unwrap();
            assert_eq!(counts.len(), 1, "{step}: {counts:?}");
            assert_eq!(
                (counts[0].status.as_str(), counts[0].claims),
                ("rejected_999", 5),
                "{step}"
            );
            ledger.close().await;
        });
        let t = ws.run(&["trace", "RFM-1001"], &[]);
        let shown = String::from_utf8_lossy(&t.stdout).into_owned();
        // One 999: its AK9 (the group) and its IK5 (the set), each once.
        assert_eq!(
            shown.matches("AK9 R").count(),
            1,
            "{step}: processed once:\n{shown}"
        );
        assert_eq!(
            shown.matches("999 rejected_999").count(),
            2,
            "{step}: processed once:\n{shown}"
        );
        // The audit chain saw it downloaded and applied, once each (a run
        // killed between recording the file and its entry left none).
        let audit = ws.run(&["audit", "export"], &[]);
        let entries = String::from_utf8_lossy(&audit.stdout).into_owned();
        for action in ["response_downloaded", "response_applied"] {
            assert_eq!(
                entries
                    .lines()
                    .filter(|l| l.contains(&format!("\"action\":\"{action}\"")))
                    .count(),
                1,
                "{step}: {action}:\n{entries}"
            );
        }
        // The answer came plain: its one copy is kept sealed at rest, even
        // when the run that applied it was killed before sealing it.
        let kept: Vec<_> = ws
            .all_files()
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("ACK.999"))
            .collect();
        assert_eq!(kept.len(), 1, "{step}: {kept:?}");
        let bytes = std::fs::read(&kept[0]).unwrap();
        assert!(
            bytes.starts_with(b"age-encryption.org/v1"),
            "{step}: kept plain: {kept:?}"
        );
    }
}

/// Regression (an independent tester's finding): with answers left on the
/// partner's server (`inbound_after = "leave"`), a run killed after
/// recording a file and before settling it left it `received`; every
/// later run took it for known and skipped it (`nothing to collect`), and
/// `inbound retry` refused a file not quarantined: the answer was never
/// applied (a 277CA rejection lost, a payment never posted). A file never
/// settled is read again by the next run, and applied once.
#[test]
fn kill_9_during_collect_of_answers_left_on_the_server_loses_none() {
    let sshd = Sshd::start();
    for step in ["collect-recorded", "collect-applied", "collect-processed"] {
        let (ws, _) = rejected_on_the_server(
            &sshd,
            &format!("leave-{step}"),
            "inbound_after = \"leave\"\n",
        );
        let killed = ws.run(
            &["collect", "--partner", PARTNER],
            &[("EDI_COURIER_FAULT", step)],
        );
        assert_eq!(killed.status.code(), None, "{step}: killed");
        for run in 0..2 {
            let out = ws.run(&["collect", "--partner", PARTNER], &[]);
            let said = common::said(&out);
            // 1 when this run applied the rejection, 0 after.
            assert!(
                out.status.code().is_some_and(|c| c < 2),
                "{step} {run}: {said}"
            );
            assert_eq!(
                ws.claim_statuses(),
                [("rejected_999".to_owned(), 5)],
                "{step} {run}: {said}"
            );
        }
        assert_eq!(
            names_in(&ws.partner.inbound_dir),
            ["ACK.999"],
            "{step}: left there"
        );
        let t = ws.run(&["trace", "RFM-1001"], &[]);
        let shown = String::from_utf8_lossy(&t.stdout).into_owned();
        assert_eq!(
            shown.matches("AK9 R").count(),
            1,
            "{step}: applied once:\n{shown}"
        );
    }
}

/// A partner whose answers stay on its server (`inbound_after = "leave"`):
/// a file already recorded is not read again, so the run that next lists
/// it seals the copy a killed run left plain, and applies nothing twice.
#[test]
fn a_kept_answer_left_plain_by_a_killed_run_is_sealed_by_the_next() {
    let sshd = Sshd::start();
    let (ws, ack) = rejected_on_the_server(&sshd, "leave", "inbound_after = \"leave\"\n");
    let killed = ws.run(
        &["collect", "--partner", PARTNER],
        &[("EDI_COURIER_FAULT", "collect-applied")],
    );
    assert_eq!(killed.status.code(), None, "killed");
    let copies = || -> Vec<std::path::PathBuf> {
        ws.all_files()
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("ACK.999"))
            .collect()
    };
    let plain = copies();
    assert_eq!(plain.len(), 1, "{plain:?}");
    assert_eq!(
        std::fs::read(&plain[0]).unwrap(),
        ack,
        "the killed run's copy"
    );
    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}");
    let kept = copies();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        std::fs::read(&kept[0])
            .unwrap()
            .starts_with(b"age-encryption.org/v1"),
        "kept plain: {kept:?}"
    );
    assert_eq!(age_decrypt(&ws.our_identity, &kept[0]), ack);
    assert_eq!(names_in(&ws.partner.inbound_dir), ["ACK.999"], "left there");
    let t = ws.run(&["trace", "RFM-1001"], &[]);
    let shown = String::from_utf8_lossy(&t.stdout).into_owned();
    assert_eq!(shown.matches("AK9 R").count(), 1, "applied once:\n{shown}");
}

/// The same answers in any order, some of them twice, give the same
/// ledger: every claim's status and the sum it was paid.
#[test]
fn answers_in_any_order_and_repeated_give_the_same_statuses_and_sums() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use rust_decimal::Decimal;

    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let claims = submit_example(&ws);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Nobody has the ledger open now: closing the last connection folds
    // the WAL into the file, but that is not promised (the copy below takes
    // the WAL too, if one is left).
    rt.block_on(async { Ledger::open(&ws.ledger_url).await.unwrap().close().await });

    let env = |set: &str| EnvelopeRef {
        set: set.into(),
        ..common::from_payer()
    };
    let charge = |i: usize| claims[i].total_charge;
    let pay = |i: usize, status: &str, paid: Decimal| ClaimPayment {
        claim_id: claims[i].id.as_str().into(),
        status: status.into(),
        charge: if status == "22" {
            -charge(i)
        } else {
            charge(i)
        },
        paid,
        ..ClaimPayment::default()
    };
    let remit = |trace: &str, claims: Vec<ClaimPayment>| {
        Response::Remittance(Remittance {
            envelope: env(trace),
            trace: trace.into(),
            payer_trace_id: "1512345678".into(),
            claims,
            ..Remittance::default()
        })
    };
    let reference = sent_reference(&ws);
    let s277 = |set: &str, rejected: usize| {
        Response::Status277(Status277 {
            envelope: env(set),
            receivers: below(&reference, 5),
            claims: (0..5)
                .map(|i| ClaimStatus {
                    claim_id: claims[i].id.clone(),
                    statuses: vec![if i == rejected {
                        stc("A7", "562")
                    } else {
                        stc("A1", "19")
                    }],
                    ..ClaimStatus::default()
                })
                .collect(),
            ..Status277::default()
        })
    };
    let two = Decimal::from(2);
    let answers: Vec<Response> = vec![
        Response::Ta1(Ta1 {
            envelope: env(""),
            interchange: "000000001".into(),
            date: String::new(),
            time: String::new(),
            code: "A".into(),
            note: "000".into(),
        }),
        Response::Ack999(Ack999 {
            envelope: env("999"),
            functional_id: "HC".into(),
            group: "1".into(),
            sets: vec![SetAck {
                set_id: "837".into(),
                set: "0001".into(),
                status: "A".into(),
                ..SetAck::default()
            }],
            status: "A".into(),
            // AK902: our group held one set.
            sets_included: 1,
            ..Ack999::default()
        }),
        s277("277-1", 4),
        s277("277-2", 99),
        remit(
            "T1",
            vec![
                pay(0, "1", charge(0)),
                pay(1, "1", charge(1) / two),
                pay(2, "4", Decimal::ZERO),
            ],
        ),
        remit("T2", vec![pay(0, "22", -charge(0))]),
        remit(
            "T3",
            vec![pay(0, "1", charge(0) / two), pay(1, "1", charge(1) / two)],
        ),
        // Claim 1 reversed twice (two traces): its payments fall below zero.
        remit("T4", vec![pay(1, "22", -charge(1))]),
        remit("T5", vec![pay(1, "22", -charge(1))]),
        // Claim 0 adjudicated again, nothing paid, under ten times its
        // charge: a denial beside money kept, and another charge stated.
        remit(
            "T6",
            vec![ClaimPayment {
                charge: charge(0) * Decimal::TEN,
                ..pay(0, "1", Decimal::ZERO)
            }],
        ),
    ];

    type Doubts = Vec<(String, String, String, Option<String>)>;
    let outcome = |order: &[usize], n: usize| -> (Vec<(String, i64, String, String)>, Doubts) {
        // A copy of the ledger for each order: a copied file, or a database
        // made from the workspace's as a template.
        let copy = match &ws.postgres {
            Some(pg) => pg.copy_of(&ws.ledger_url),
            None => {
                // The file and its WAL, if any: a ledger whose WAL was not
                // folded into the file is the two of them. (Regression: the
                // file alone was copied, and once held no claim at all.)
                let copy = ws.path(&format!("perm-{n}.sqlite"));
                std::fs::copy(ws.path("ledger.sqlite"), &copy).unwrap();
                let wal = ws.path("ledger.sqlite-wal");
                if wal.exists() {
                    std::fs::copy(&wal, ws.path(&format!("perm-{n}.sqlite-wal"))).unwrap();
                }
                format!("sqlite://{}", copy.display())
            }
        };
        rt.block_on(async {
            let ledger = Ledger::open(&copy).await.unwrap();
            for (k, &i) in order.iter().enumerate() {
                record(&ledger, k as u8 + 1, std::slice::from_ref(&answers[i])).await;
            }
            let totals = ledger
                .claim_totals(chrono::DateTime::<chrono::Utc>::MIN_UTC)
                .await
                .unwrap();
            let doubts = ledger
                .payment_doubts(None, chrono::DateTime::<chrono::Utc>::MIN_UTC)
                .await
                .unwrap();
            ledger.close().await;
            let totals = totals
                .into_iter()
                .map(|t| {
                    (
                        t.status,
                        t.claims,
                        t.charges.to_string(),
                        t.paid.normalize().to_string(),
                    )
                })
                .collect();
            let doubts = doubts
                .into_iter()
                .map(|d| {
                    (
                        d.claim_id,
                        d.doubt.name().to_owned(),
                        d.paid.normalize().to_string(),
                        d.stated_charge.map(|s| s.normalize().to_string()),
                    )
                })
                .collect();
            (totals, doubts)
        })
    };
    let expected = outcome(&(0..answers.len()).collect::<Vec<_>>(), 0);
    let statuses: Vec<&str> = expected.0.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        statuses,
        [
            "accepted_277",
            "denied",
            "partially_paid",
            "rejected_277",
            "reversed"
        ],
        "{expected:?}"
    );
    let why: Vec<(&str, &str)> = expected
        .1
        .iter()
        .map(|d| (d.0.as_str(), d.1.as_str()))
        .collect();
    assert_eq!(
        why,
        [
            (claims[0].id.as_str(), "denied_and_paid"),
            (claims[0].id.as_str(), "charge_differs"),
            (claims[1].id.as_str(), "paid_below_zero"),
        ],
        "{expected:?}"
    );

    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    let n = std::cell::Cell::new(0);
    let strategy = (
        Just((0..answers.len()).collect::<Vec<_>>()).prop_shuffle(),
        proptest::collection::vec(0..answers.len(), 0..4),
    );
    runner
        .run(&strategy, |(mut order, repeats)| {
            order.extend(repeats);
            n.set(n.get() + 1);
            prop_assert_eq!(
                outcome(&order, n.get()),
                expected.clone(),
                "order {:?}",
                order
            );
            Ok(())
        })
        .unwrap();
}

//! What `collect` does with the partner's files themselves: where it reads
//! them from, and when it may take them off the server.

use crate::common;
use common::root;
use common::sshd::Sshd;
use common::tools::age_decrypt;
use common::workspace::{names_in, Workspace, PARTNER};
use edi_courier::ledger::Ledger;
use edi_courier::model::response::{ClaimStatus, StatusCode};
use edi_courier::model::Claim;
use std::process::Command;

fn at() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap()
}

/// Submits the clinic example; its claims and the batch's BHT03.
fn submit_example(ws: &Workspace) -> (Vec<Claim>, String) {
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::said(&out));
    let remote = names_in(&ws.partner.outbound_dir);
    let sent = age_decrypt(
        &ws.partner_identity,
        &ws.partner.outbound_dir.join(&remote[0]),
    );
    let text = String::from_utf8_lossy(&sent).into_owned();
    let bht03 = text
        .split('~')
        .map(|s| s.trim_start_matches(['\r', '\n']))
        .find(|s| s.starts_with("BHT*"))
        .and_then(|s| s.split('*').nth(3))
        .unwrap()
        .to_owned();
    (common::read_claims(&sent).1, bht03)
}

fn statuses(ws: &Workspace, claims: &[Claim]) -> Vec<String> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ledger = Ledger::open(&ws.ledger_url).await.unwrap();
        let mut out = Vec::new();
        for c in claims {
            let s = ledger.claim_status(PARTNER, &c.id).await.unwrap().unwrap();
            out.push(s.name().to_owned());
        }
        ledger.close().await;
        out
    })
}

/// A 277CA accepting every claim of the batch `bht03`.
fn accepting_277(claims: &[Claim], bht03: &str) -> Vec<u8> {
    use edi_courier::profile::Profile;
    use edi_courier::x12::{write_277ca, Answer277, Sequential};
    let answered: Vec<_> = claims
        .iter()
        .map(|c| {
            (
                c,
                ClaimStatus {
                    claim_id: c.id.clone(),
                    statuses: vec![StatusCode {
                        category: "A2".into(),
                        code: "20".into(),
                        ..StatusCode::default()
                    }],
                    ..ClaimStatus::default()
                },
            )
        })
        .collect();
    let mut out = Vec::new();
    write_277ca(
        &Profile::sandbox().unwrap().envelope.reply(),
        at(),
        &mut Sequential::starting_at(701),
        &Answer277 {
            reference: "R277",
            payer_name: "SANDBOX PAYER",
            payer_id: "SANDBOX",
            submitter_name: "EDI COURIER",
            submitter_id: "EDICOURIER",
            batch_trace: bht03,
            received: at().date(),
            claims: &answered,
        },
        &mut out,
    )
    .unwrap();
    out
}

/// Regression (found by an independent tester): with the configuration
/// found as `./edi-courier.toml` (or given by a relative `--config`) the
/// spool is relative, and `collect` read each downloaded file from the
/// spool joined to itself (`./spool/./spool/in/…`): every run failed, and
/// the third quarantined good answers as "interrupted 2 times".
#[test]
fn collect_with_a_relative_config_reads_what_it_downloaded() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let (claims, _) = submit_example(&ws);
    std::fs::write(
        ws.partner.inbound_dir.join("ACK_001.999"),
        common::accepting_999(at(), 500),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edi-courier"))
        .args([
            "--config",
            "edi-courier.toml",
            "collect",
            "--partner",
            PARTNER,
        ])
        .env("EDI_COURIER_NOW", common::NOW)
        .env_remove("EDI_COURIER_FAULT")
        .current_dir(ws.dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::said(&out));
    assert_eq!(statuses(&ws, &claims), vec!["accepted_999"; claims.len()]);
    assert!(
        names_in(&ws.partner.inbound_dir).is_empty(),
        "applied, removed"
    );
}

/// Regression (found by an independent tester): a payer that appends its
/// next answer to a file after we listed and read it had the file removed
/// once the first part was applied — the appended answer was lost, never
/// read, quarantined or listed. Now a file that changed on the server since
/// it was listed stays there; the next run reads it whole, the part applied
/// before is a repeat, and the rest is applied.
#[test]
fn a_file_that_grows_after_it_was_read_stays_on_the_server_and_is_read_whole_next_run() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let (claims, bht03) = submit_example(&ws);
    let file = ws.partner.inbound_dir.join("ANSWERS.x12");
    std::fs::write(&file, common::accepting_999(at(), 500)).unwrap();

    let flag = ws.path("paused");
    let run = Command::new(env!("CARGO_BIN_EXE_edi-courier"))
        .args(["collect", "--partner", PARTNER, "--config"])
        .arg(&ws.config)
        .env("EDI_COURIER_NOW", common::NOW)
        .env(
            "EDI_COURIER_FAULT",
            format!("pause-collect-processed={}", flag.display()),
        )
        .current_dir(ws.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !flag.exists() {
        assert!(started.elapsed().as_secs() < 60, "collect never paused");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The payer appends its 277CA while we hold the 999 applied.
    let mut grown = std::fs::read(&file).unwrap();
    grown.extend(accepting_277(&claims, &bht03));
    std::fs::write(&file, &grown).unwrap();
    std::fs::remove_file(&flag).unwrap();
    let out = run.wait_with_output().unwrap();
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("ANSWERS.x12: changed on the server"),
        "{said}"
    );
    assert_eq!(names_in(&ws.partner.inbound_dir), ["ANSWERS.x12"], "left");
    assert_eq!(statuses(&ws, &claims), vec!["accepted_999"; claims.len()]);

    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_eq!(
        statuses(&ws, &claims),
        vec!["accepted_277"; claims.len()],
        "the appended 277CA applied: {said}"
    );
    assert!(names_in(&ws.partner.inbound_dir).is_empty(), "{said}");
}

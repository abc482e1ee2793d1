//! What `collect` does with the partner's files themselves: where it reads
//! them from, and when it may take them off the server.

use crate::common;
use common::proxy::Fault;
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

/// `collect` started with `EDI_COURIER_FAULT=pause-collect-processed`:
/// returned once it has applied what it read and waits, before the file
/// leaves the server, until the flag file is removed.
fn collect_paused(ws: &Workspace) -> (std::process::Child, std::path::PathBuf) {
    ws.spawn_paused_at(&["collect", "--partner", PARTNER], "collect-processed")
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

    let (run, flag) = collect_paused(&ws);
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

/// An 835 from the sandbox payer paying `claim` `paid` on `charge` under
/// trace `trn` (check number), balanced at claim and payment level.
fn payment_835(control: u32, trn: &str, claim: &str, charge: &str, paid: &str) -> String {
    let body = [
        format!("BPR*I*{paid}*C*CHK************20261125"),
        format!("TRN*1*{trn}*1512345678"),
        "N1*PR*SANDBOX HEALTH PLAN".to_owned(),
        "N1*PE*CLINIC*XX*1234567893".to_owned(),
        "LX*1".to_owned(),
        format!("CLP*{claim}*1*{charge}*{paid}**12*PCN-{claim}"),
    ];
    let mut set = String::from("ST*835*0001*005010X221A1~");
    for s in &body {
        set += s;
        set += "~";
    }
    set += &format!("SE*{}*0001~", body.len() + 2);
    format!(
        "ISA*00*          *00*          *ZZ*SANDBOXPAYER   *ZZ*EDICOURIER     *261121*0900*^*00501*{control:09}*0*T*:~\
         GS*HP*SANDBOXPAYER*EDICOURIER*20261121*0900*{control}*X*005010X221A1~{set}GE*1*{control}~IEA*1*{control:09}~"
    )
}

/// Found by an independent tester: the same payment sent again under a
/// new trace number was posted twice (190.00 paid on a 95.00 claim), and
/// nothing said so. Both are kept (a second payment is not refused: the
/// trace makes it another one), but a claim whose payments now add up to
/// more than its charge is listed by `collect` (exit 1) and by `status`
/// (and alerted by the daemon: `alert::from_collect`).
#[test]
fn a_claim_paid_more_than_it_charged_is_listed() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let (claims, _) = submit_example(&ws);
    let claim = claims.iter().find(|c| c.id == "RFM-1002").unwrap();
    assert_eq!(claim.total_charge, rust_decimal::Decimal::new(95, 0));
    std::fs::write(
        ws.partner.inbound_dir.join("PAY_1.835"),
        payment_835(801, "CHK-1", "RFM-1002", "95", "95"),
    )
    .unwrap();
    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", common::said(&out));
    assert!(!common::said(&out).contains("paid more than charged"));

    std::fs::write(
        ws.partner.inbound_dir.join("PAY_2.835"),
        payment_835(802, "CHK-2", "RFM-1002", "95", "95"),
    )
    .unwrap();
    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("RFM-1002: paid 190.00 in all on a charge of 95.00: paid more than charged"),
        "{said}"
    );
    let status = ws.run(&["status", "--json"], &[]);
    let view: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        view["overpaid"],
        serde_json::json!([{ "partner": PARTNER, "claim": "RFM-1002", "charge": "95.00", "paid": "190.00" }])
    );
}

/// Found by the tester's second round: a 999 rewritten in place at the same
/// size within the same second (AK9 A turned to R) looked unchanged to the
/// listing — the server's times have one-second resolution — so the
/// acceptance was applied and the rejection deleted unread. A small file is
/// now read again before it leaves the server: this one stays, and the next
/// run finds its other content (and quarantines it: a repeat that differs).
#[test]
fn a_small_file_rewritten_at_the_same_size_and_time_stays_on_the_server() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let (claims, _) = submit_example(&ws);
    let file = ws.partner.inbound_dir.join("ACK.999");
    let accepting = common::accepting_999(at(), 500);
    std::fs::write(&file, &accepting).unwrap();

    let (run, flag) = collect_paused(&ws);
    // The same length, another answer, the same modification time.
    let text = String::from_utf8(accepting.clone()).unwrap();
    let rewritten = text
        .replace("IK5*A", "IK5*R")
        .replace("AK9*A*1*1*1", "AK9*R*1*1*0");
    assert_eq!(rewritten.len(), text.len());
    assert_ne!(rewritten, text);
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::fs::write(&file, &rewritten).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    std::fs::remove_file(&flag).unwrap();
    let out = run.wait_with_output().unwrap();
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("ACK.999: changed on the server"), "{said}");
    assert_eq!(names_in(&ws.partner.inbound_dir), ["ACK.999"], "left");
    assert_eq!(statuses(&ws, &claims), vec!["accepted_999"; claims.len()]);
}

/// Regression (found by an independent tester): a connection lost in the
/// middle of a download was said "not reached", as if the partner had never
/// answered. It is said as what it is, and the file stays on the server,
/// read whole by the next run.
#[test]
fn a_download_cut_short_is_said_as_a_lost_connection_and_the_file_stays() {
    let sshd = Sshd::start();
    let mut ws = Workspace::new(&sshd);
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(ws.partner.inbound_dir.join("BIG_001.835"), &big).unwrap();
    ws.behind_proxy(&sshd, usize::MAX, Fault::CutBack(1024 * 1024));
    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    let said = common::said(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("connection lost while collecting"), "{said}");
    assert!(!said.contains("not reached"), "{said}");
    assert_eq!(names_in(&ws.partner.inbound_dir), ["BIG_001.835"]);
}

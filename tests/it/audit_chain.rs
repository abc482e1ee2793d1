//! The audit chain after a real loop against OpenSSH: every movement of
//! the claims and every view of them is there, attributed and linked;
//! `audit verify` passes, and fails naming the entry after an edit, a
//! deletion, a swap, or a cut tail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::PathBuf;

use common::smtp::SmtpSink;
use common::sshd::Sshd;
use common::workspace::{Workspace, PARTNER};
use common::{root, said};
use serde_json::Value;

/// Runs SQL on the ledger as an intruder with `sqlite3` or `psql` would.
fn tamper(ws: &Workspace, sql: &str) {
    common::with_ledger_pool(&ws.ledger_url, async |pool| {
        sqlx::raw_sql(sql).execute(pool).await.unwrap();
    });
}

fn entries(ws: &Workspace) -> Vec<Value> {
    let out = ws.run(&["audit", "export"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The chain as it is (a copy in the ledger) and the head file beside an
/// SQLite ledger, to restore after each tamper.
struct Saved<'w> {
    ws: &'w Workspace,
    head: Option<(PathBuf, Vec<u8>)>,
}

impl Saved<'_> {
    fn take(ws: &Workspace) -> Saved<'_> {
        tamper(ws, "CREATE TABLE audit_saved AS SELECT * FROM audit_log");
        let head = ws.path("ledger.sqlite.audit-head");
        Saved {
            ws,
            head: head.exists().then(|| {
                let bytes = std::fs::read(&head).unwrap();
                (head, bytes)
            }),
        }
    }

    fn restore(&self) {
        tamper(
            self.ws,
            "DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM audit_saved",
        );
        if let Some((path, bytes)) = &self.head {
            std::fs::write(path, bytes).unwrap();
        }
    }
}

fn verify(ws: &Workspace) -> (Option<i32>, String) {
    let out = ws.run(&["audit", "verify"], &[]);
    (out.status.code(), said(&out))
}

#[test]
fn a_real_loop_is_audited_and_any_rewrite_of_history_is_named() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    // The payer answers: a 999 that rejects the set, and a damaged file.
    let ack = common::rejecting_999(
        chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
            .unwrap()
            .and_hms_opt(11, 0, 0)
            .unwrap(),
        900,
    );
    std::fs::write(ws.partner.inbound_dir.join("ACK.999"), &ack).unwrap();
    std::fs::write(
        ws.partner.inbound_dir.join("CUT.999"),
        &ack[..ack.len() / 2],
    )
    .unwrap();
    let out = ws.run(&["collect", "--partner", PARTNER], &[]);
    assert!(out.status.code().is_some(), "{}", said(&out));
    let out = ws.run(&["status"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let out = ws.run(&["trace", "RFM-1001"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    // The claim's `queued` and `sent` (its file's `spooled` and
    // `delivered`, on either engine): each once, beside those.
    let steps: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("  2"))
        .filter_map(|l| l.split_once("  "))
        .map(|(_, rest)| rest.get(..22).unwrap_or(rest).trim_end().to_owned())
        .collect();
    let at = |what: &str| -> usize {
        let found: Vec<usize> = (0..steps.len()).filter(|&i| steps[i] == what).collect();
        assert_eq!(found.len(), 1, "{what} once in {steps:?}");
        found[0]
    };
    assert_eq!(at("queued") + 1, at("file spooled"), "{steps:?}");
    assert_eq!(at("file delivered") + 1, at("sent"), "{steps:?}");

    // What a compliance reviewer sees.
    let log = entries(&ws);
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for (i, wanted) in [
        "export_read",
        "sealed",
        "uploading",
        "verified",
        "delivered",
        "export_archived",
        "response_downloaded",
        "response_applied",
        "response_quarantined",
        "viewed",
    ]
    .into_iter()
    .enumerate()
    {
        assert!(actions.contains(&wanted), "{i}: {wanted} in {actions:?}");
    }
    let sealed = log.iter().find(|e| e["action"] == "sealed").unwrap();
    assert_eq!(sealed["partner"], PARTNER);
    assert_eq!(sealed["sha256"].as_str().unwrap().len(), 64, "{sealed}");
    assert!(
        sealed["controls"].as_str().unwrap().starts_with("ISA13 "),
        "{sealed}"
    );
    assert!(
        sealed["actor"].as_str().unwrap().starts_with("user:")
            || sealed["actor"].as_str().unwrap().starts_with("uid:"),
        "{sealed}"
    );
    let held = log
        .iter()
        .find(|e| e["action"] == "response_quarantined")
        .unwrap();
    assert!(
        held["detail"].as_str().unwrap().starts_with("CUT.999"),
        "{held}"
    );
    assert_eq!(held["sha256"].as_str().unwrap().len(), 64, "{held}");
    let views: Vec<&str> = log
        .iter()
        .filter(|e| e["action"] == "viewed")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(views, ["status", "trace RFM-1001"]);
    for (n, e) in log.iter().enumerate() {
        assert_eq!(e["seq"], n as i64 + 1, "in order, from 1");
        if n > 0 {
            assert_eq!(
                e["prev"],
                log[n - 1]["hash"],
                "entry {} links to the one before",
                n + 1
            );
        }
    }

    let (code, text) = verify(&ws);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("whole"), "{text}");

    let last = log.len();
    let saved = Saved::take(&ws);
    let mut cases = vec![
        (
            "an edited entry",
            "UPDATE audit_log SET detail = 'nothing to see' WHERE seq = 3".to_owned(),
            "entry #3 was changed".to_owned(),
        ),
        (
            "a deleted entry",
            "DELETE FROM audit_log WHERE seq = 2".to_owned(),
            "entry #2 was removed".to_owned(),
        ),
        (
            "two entries swapped",
            "UPDATE audit_log SET seq = -1 WHERE seq = 2; \
             UPDATE audit_log SET seq = 2 WHERE seq = 3; \
             UPDATE audit_log SET seq = 3 WHERE seq = -1"
                .to_owned(),
            "entry #2 does not follow entry #1".to_owned(),
        ),
    ];
    // A cut tail shows against the head file kept beside an SQLite ledger;
    // a PostgreSQL ledger's outside copy is the head the digest mails.
    if saved.head.is_some() {
        cases.push((
            "a cut tail",
            format!("DELETE FROM audit_log WHERE seq >= {}", last - 1),
            format!("entries after #{} were removed", last - 2),
        ));
        // Every entry deleted leaves no chain to break: the head file
        // still names the last entry.
        cases.push((
            "every entry deleted",
            "DELETE FROM audit_log".to_owned(),
            format!("every entry was removed: the head file names entry #{last}"),
        ));
    }
    for (what, sql, named) in cases {
        tamper(&ws, &sql);
        let (code, text) = verify(&ws);
        assert_eq!(code, Some(1), "{what}: {text}");
        assert!(text.contains(&named), "{what}: want {named:?} in {text}");
        saved.restore();
        let (code, text) = verify(&ws);
        assert_eq!(code, Some(0), "{what}: restored: {text}");
    }
    // The head file removed along with what it would show: every entry,
    // or the tail (then a command appends, which must not make the head
    // file again from the cut chain).
    if let Some((head, _)) = &saved.head {
        tamper(&ws, "DELETE FROM audit_log");
        std::fs::remove_file(head).unwrap();
        let (code, text) = verify(&ws);
        assert_eq!(code, Some(1), "emptied, head gone: {text}");
        assert!(text.contains("every entry was removed"), "{text}");
        saved.restore();
        tamper(
            &ws,
            &format!("DELETE FROM audit_log WHERE seq >= {}", last - 1),
        );
        std::fs::remove_file(head).unwrap();
        assert_eq!(ws.run(&["status"], &[]).status.code(), Some(0));
        assert!(
            !head.exists(),
            "the head file was made again from a cut chain"
        );
        let (code, text) = verify(&ws);
        assert_eq!(code, Some(1), "tail cut, head gone: {text}");
        assert!(text.contains("is missing"), "{text}");
        saved.restore();
        let (code, text) = verify(&ws);
        assert_eq!(code, Some(0), "restored: {text}");
    }
}

#[test]
fn the_digest_mails_the_chains_head_which_the_ledger_must_still_show() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let smtp = SmtpSink::start();
    ws.append_config(&format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         from = \"edi-courier@clinic.example\"\nto = [\"billing@clinic.example\"]\n",
        smtp.port
    ));
    ws.job("digest", "kind = \"digest\"\nschedule = \"0 0 7 * * *\"\n");
    let out = ws.run(&["run", "digest"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let mails: Vec<String> = smtp
        .readable_messages()
        .into_iter()
        .filter(|m| m.contains("daily digest"))
        .collect();
    assert_eq!(mails.len(), 1, "{mails:?}");
    // The head as the ledger (and the head file beside an SQLite ledger)
    // has it now is in the mail.
    let mail = &mails[0];
    let at = mail
        .find("Audit chain head: entry ")
        .expect("the head is mailed")
        + 24;
    let (seq, rest) = mail[at..].split_once(", SHA-256 ").unwrap();
    let seq: i64 = seq.parse().unwrap();
    let hash = &rest[..64];
    if ws.postgres.is_none() {
        let head = std::fs::read_to_string(ws.path("ledger.sqlite.audit-head")).unwrap();
        assert_eq!(head.trim(), format!("{seq} {hash}"), "{mail}");
    }
    let log = entries(&ws);
    assert!(
        log.iter()
            .any(|e| e["seq"].as_i64() == Some(seq) && e["hash"].as_str() == Some(hash)),
        "the export shows the mailed entry with its hash"
    );
}

/// Regression (found by an independent tester): a ledger file of no bytes
/// made before the first run (`sqlite3 ledger.sqlite …` does it) was taken
/// for an existing ledger, so no audit head was made, and `audit verify`
/// failed for good. An empty file is a new ledger: it gets its head.
#[test]
fn an_empty_ledger_file_made_before_the_first_run_gets_its_audit_head() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    if !ws.ledger_url.starts_with("sqlite://") {
        return; // the head file is SQLite's; PostgreSQL keeps its head in the ledger
    }
    let ledger = ws.path("ledger.sqlite");
    std::fs::write(&ledger, b"").unwrap();
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(!said(&out).contains("audit head"), "{}", said(&out));
    let (code, text) = verify(&ws);
    assert_eq!(code, Some(0), "{text}");
}

//! The outbox and the outbound ledger after a crash: an export that only
//! shares a name with one already spooled is sent, not archived unsent; and
//! a ledger row that cannot be read is an error the run reports, never a
//! panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::root;
use common::sshd::Sshd;
use common::tools::age_decrypt;
use common::workspace::{names_in, Workspace};

fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Regression: `recover()` moved whatever it found at a spooled export's
/// old path into `processed/`. Killed after the export moved but before
/// that was recorded, a new export dropped under the same name was then
/// archived unsent.
#[test]
fn a_new_export_under_a_spooled_exports_name_is_sent_not_archived() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let monday = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    std::fs::write(ws.outbox().join("clinic.csv"), &monday).unwrap();
    let killed = ws.submit(&[("EDI_COURIER_FAULT", "moved")]);
    assert_eq!(killed.status.code(), None, "{}", text(&killed));
    assert_eq!(names_in(&ws.outbox().join("processed")), ["clinic.csv.age"]);

    // Tuesday's export, other claims, the same name.
    let tuesday = monday.replace("RFM-", "TUE-");
    std::fs::write(ws.outbox().join("clinic.csv"), &tuesday).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote.len(), 2, "Monday's file and Tuesday's: {remote:?}");
    let tuesday_sent = remote.iter().any(|name| {
        let opened = age_decrypt(&ws.partner_identity, &ws.partner.outbound_dir.join(name));
        String::from_utf8_lossy(&opened).matches("CLM*TUE-").count() == 5
    });
    assert!(tuesday_sent, "Tuesday's claims were delivered");
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 10)]);
    let processed = names_in(&ws.outbox().join("processed"));
    assert_eq!(processed, ["clinic.csv.1.age", "clinic.csv.age"]);
    let kept: Vec<String> = processed
        .iter()
        .map(|n| {
            let sealed = ws.outbox().join("processed").join(n);
            String::from_utf8(age_decrypt(&ws.our_identity, &sealed)).unwrap()
        })
        .collect();
    assert!(
        kept.contains(&monday) && kept.contains(&tuesday),
        "both kept, sealed to our archive key"
    );
}

/// Regression: the outbound ledger read columns with `row.get`, which
/// panics on a value of the wrong type. A damaged row is now an error the
/// run reports (exit 2, naming what was read), not a crash.
#[test]
fn a_damaged_ledger_row_is_reported_not_a_panic() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    ws.drop_export(&root().join("examples/clinic-claims.csv"), "clinic.csv");
    let killed = ws.submit(&[("EDI_COURIER_FAULT", "spooled")]);
    assert_eq!(killed.status.code(), None, "{}", text(&killed));

    // A text where a number belongs: SQLite stores it as it is; on
    // PostgreSQL the column has to be made text first.
    let damage = if ws.postgres.is_some() {
        "ALTER TABLE files ALTER COLUMN attempts TYPE TEXT; \
         UPDATE files SET attempts = 'several' WHERE direction = 'out'"
    } else {
        "UPDATE files SET attempts = 'several' WHERE direction = 'out'"
    };
    common::with_ledger_pool(&ws.ledger_url, async |pool| {
        sqlx::raw_sql(damage).execute(pool).await.unwrap();
    });

    for (args, what) in [
        (
            vec!["submit", "--partner", "acme"],
            "reading a file to send",
        ),
        (vec!["status"], "reading a recent file"),
    ] {
        let out = ws.run(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(what) && said.contains("attempts"),
            "{}",
            text(&out)
        );
        assert!(!said.contains("panicked"), "{}", text(&out));
    }
    // Nothing delivered: at most the temporary name written while the
    // claims were recorded (upload = "rename"), never a final name.
    let remote = names_in(&ws.partner.outbound_dir);
    assert!(remote.iter().all(|n| n.ends_with(".part")), "{remote:?}");
}

/// Regression: the set-aside copy was always `STEM.rejected.csv`, so a
/// later export of the same name replaced an earlier copy nobody had fixed
/// yet. Each copy now gets a name of its own, the run says which, and the
/// same export read again does not make a second copy.
#[test]
fn a_later_exports_set_aside_claims_never_overwrite_an_earlier_unfixed_copy() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let clinic = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    // RFM-1001's total no longer matches its lines: it is set aside.
    let monday = clinic.replace("RFM-1001,$185.00,", "RFM-1001,$186.00,");
    assert_ne!(monday, clinic);
    let tuesday = monday.replace("RFM-", "TUE-");
    let rejected = ws.outbox().join("rejected");

    std::fs::write(ws.outbox().join("clinic.csv"), &monday).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(names_in(&rejected), ["clinic.rejected.csv"]);
    let first = std::fs::read_to_string(rejected.join("clinic.rejected.csv")).unwrap();
    assert!(first.contains("RFM-1001,$186.00,") && !first.contains("RFM-1002"));

    std::fs::write(ws.outbox().join("clinic.csv"), &tuesday).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        names_in(&rejected),
        ["clinic.rejected.2.csv", "clinic.rejected.csv"]
    );
    assert_eq!(
        std::fs::read_to_string(rejected.join("clinic.rejected.csv")).unwrap(),
        first,
        "Monday's unfixed copy is untouched"
    );
    let second = std::fs::read_to_string(rejected.join("clinic.rejected.2.csv")).unwrap();
    assert!(second.contains("TUE-1001,$186.00,"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("clinic.rejected.2.csv"),
        "the run names the file the claims went to: {}",
        text(&out)
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 8)]);
}

/// Regression (found by an independent tester): a claim whose rows came
/// apart in the export (RFM-1001's second line moved after another claim)
/// went out with its first line alone — its later rows set aside, the
/// partial claim sent. Now nothing of such an export is sent: the run ends
/// 2 naming the claim, the server gets nothing, the export stays in the
/// outbox; dropped again unchanged it is refused again (not taken for a
/// duplicate), and once fixed it is sent whole.
///
/// Regression: each later run (each daemon tick) read the unchanged export
/// again, reserving control numbers and leaving an abandoned file each
/// time. Now the refusal is remembered with the map: the later runs say so
/// and use neither, and the fixed export gets the next control number.
#[test]
fn an_export_with_a_claims_rows_apart_is_not_sent_until_they_are_together() {
    let sshd = Sshd::start();
    let ws = Workspace::new(&sshd);
    let csv = std::fs::read_to_string(root().join("examples/clinic-claims.csv")).unwrap();
    let mut lines: Vec<&str> = csv.lines().collect();
    assert!(lines[1].starts_with("RFM-1001,") && lines[2].starts_with("RFM-1001,"));
    let second = lines.remove(2);
    lines.insert(3, second);
    let apart = lines.join("\n") + "\n";
    std::fs::write(ws.outbox().join("clinic.csv"), &apart).unwrap();

    for attempt in 1..=3 {
        let out = ws.submit(&[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "attempt {attempt}: {}",
            text(&out)
        );
        let said = text(&out);
        assert!(
            said.contains("rows apart from the rest of their claim (RFM-1001)"),
            "attempt {attempt}: {said}"
        );
        assert_eq!(
            said.contains("refused before"),
            attempt > 1,
            "attempt {attempt}: {said}"
        );
        assert_eq!(
            ws.out_files(),
            [("abandoned".to_owned(), 1)],
            "attempt {attempt}: one file named, by the first attempt only"
        );
        assert!(
            names_in(&ws.partner.outbound_dir).is_empty(),
            "attempt {attempt}: nothing sent"
        );
        assert!(ws.claim_statuses().is_empty(), "no claim recorded as sent");
        assert!(ws.outbox().join("clinic.csv").exists(), "the export waits");
        let rejected = ws.outbox().join("rejected");
        assert!(
            !rejected.exists() || names_in(&rejected).is_empty(),
            "attempt {attempt}: no copy of set-aside rows beside a refused export: {:?}",
            names_in(&rejected)
        );
    }

    // Under another map (here the same one with a comment added) the
    // export is read again: the map decides where a claim's rows are.
    let map = ws.dir.path().join("clinic-edited.toml");
    let shipped =
        std::fs::read_to_string(root().join("edi-maps/clinic-professional.toml")).unwrap();
    std::fs::write(&map, format!("# edited\n{shipped}")).unwrap();
    let config = std::fs::read_to_string(&ws.config).unwrap();
    let edited = config.replace(
        "map = \"clinic-professional\"",
        &format!("map = \"{}\"", map.display()),
    );
    assert_ne!(config, edited);
    std::fs::write(&ws.config, edited).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains("refused before"), "{}", text(&out));
    assert_eq!(ws.out_files(), [("abandoned".to_owned(), 2)]);

    std::fs::write(ws.outbox().join("clinic.csv"), &csv).unwrap();
    let out = ws.submit(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let remote = names_in(&ws.partner.outbound_dir);
    assert_eq!(remote.len(), 1, "{remote:?}");
    let opened = age_decrypt(
        &ws.partner_identity,
        &ws.partner.outbound_dir.join(&remote[0]),
    );
    let x12 = String::from_utf8_lossy(&opened);
    assert_eq!(x12.matches("CLM*").count(), 5);
    assert!(x12.contains("CLM*RFM-1001*185"), "RFM-1001 whole: {x12}");
    assert_eq!(
        x12.split('*').nth(13),
        Some("000000003"),
        "the control number after the two refusals', none burnt between: {x12}"
    );
    assert_eq!(ws.claim_statuses(), [("sent".to_owned(), 5)]);
}

//! Helpers shared by the integration tests: the pyx12 bridge, the binary,
//! fixtures, and a generator of varied, valid claims.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod gen;
pub mod postgres;
pub mod proxy;
pub mod smtp;
pub mod sshd;
pub mod tools;
pub mod workspace;

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// The fixed clock every test run of the binary uses.
pub const NOW: &str = "2026-11-20T10:00:00";

/// A run's exit status and everything it printed, for assertion messages.
pub fn said(out: &Output) -> String {
    format!(
        "status {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A 999 from the sandbox payer rejecting set 0001 of group 1 (IK5 R, AK9 R).
pub fn rejecting_999(at: chrono::NaiveDateTime, control: u32) -> Vec<u8> {
    ack_999(at, control, false)
}

/// A 999 from the sandbox payer accepting set 0001 of group 1 (IK5 A, AK9 A).
pub fn accepting_999(at: chrono::NaiveDateTime, control: u32) -> Vec<u8> {
    ack_999(at, control, true)
}

fn ack_999(at: chrono::NaiveDateTime, control: u32, accepted: bool) -> Vec<u8> {
    use edi_courier::model::response::{Ack999, SetAck};
    let status = if accepted { "A" } else { "R" };
    let mut ack = Vec::new();
    edi_courier::x12::write_999(
        &edi_courier::profile::Profile::sandbox()
            .unwrap()
            .envelope
            .reply(),
        at,
        &mut edi_courier::x12::Sequential::starting_at(control),
        &[Ack999 {
            functional_id: "HC".into(),
            group: "1".into(),
            version: "005010X222A1".into(),
            sets: vec![SetAck {
                set_id: "837".into(),
                set: "0001".into(),
                status: status.into(),
                codes: if accepted {
                    Vec::new()
                } else {
                    vec!["5".into()]
                },
                ..SetAck::default()
            }],
            status: status.into(),
            sets_included: 1,
            sets_received: 1,
            sets_accepted: u32::from(accepted),
            ..Ack999::default()
        }],
        &mut ack,
    )
    .unwrap();
    ack
}

/// Runs the edi-courier binary with a fixed clock.
pub fn edi_courier(args: &[&str]) -> Output {
    edi_courier_with(args, &[])
}

/// Runs the edi-courier binary with a fixed clock and these variables set
/// too (a fault to inject, a test limit).
pub fn edi_courier_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edi-courier"))
        .args(args)
        .env("EDI_COURIER_NOW", NOW)
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .expect("run edi-courier")
}

/// What a run printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[derive(Debug, Deserialize)]
pub struct Pyx12Counts {
    pub segments: u64,
    pub isa: u64,
    pub gs: u64,
    pub st: u64,
    pub clm: u64,
    pub clp: u64,
}

#[derive(Debug, Deserialize)]
pub struct Pyx12 {
    pub file: String,
    pub status: String,
    pub errors: Vec<String>,
    pub counts: Option<Pyx12Counts>,
}

/// Validates files with pyx12 4.0.0 in one Python process. pyx12 must be
/// installed (scripts/test installs it): a missing validator fails the test,
/// it never skips it.
pub fn pyx12(files: &[PathBuf]) -> Vec<Pyx12> {
    let out = Command::new("python3")
        .arg(root().join("tests/support/pyx12_check.py"))
        .args(files)
        .output()
        .expect("python3 must be installed to run the pyx12 checks (scripts/test installs it)");
    assert!(
        out.status.success(),
        "pyx12 check could not run (run scripts/test, which installs pyx12==4.0.0): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Pyx12> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("pyx12_check.py output"))
        .collect();
    assert_eq!(results.len(), files.len(), "pyx12 answered for every file");
    results
}

/// Asserts pyx12 finds zero errors in every file.
pub fn assert_pyx12_valid(files: &[PathBuf]) {
    let bad: Vec<String> = pyx12(files)
        .into_iter()
        .filter(|r| r.status != "OK")
        .map(|r| {
            format!(
                "{} {}: {:?}",
                r.status,
                r.file,
                r.errors.iter().take(5).collect::<Vec<_>>()
            )
        })
        .collect();
    assert!(bad.is_empty(), "pyx12 rejected:\n{}", bad.join("\n"));
}

pub fn file_bytes(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v
}

/// Reads an in-memory X12 file back into claims with the library's reader.
pub fn read_claims(
    bytes: &[u8],
) -> (
    edi_courier::inspect::FileSummary,
    Vec<edi_courier::model::Claim>,
) {
    let mut claims = Vec::new();
    let summary = edi_courier::inspect::read_x12(bytes, |c| claims.push(c)).unwrap();
    (summary, claims)
}

/// Writes claims as one 837 interchange with the sandbox profile's envelope.
pub fn write_837(claims: &[edi_courier::model::Claim], max_per_set: Option<usize>) -> Vec<u8> {
    use edi_courier::x12::{Sequential, Writer837};
    let profile = edi_courier::profile::Profile::sandbox().unwrap();
    let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let mut numbers = Sequential::starting_at(1);
    let mut out = Vec::new();
    let mut w = Writer837::begin(profile.envelope, now, &mut numbers, &mut out).unwrap();
    if let Some(n) = max_per_set {
        w = w.with_max_claims_per_set(n);
    }
    for c in claims {
        w.write_claim(c, &mut numbers, &mut out).unwrap();
    }
    w.finish(&mut out).unwrap();
    out
}

/// Manifest rows of tests/fixtures/x12: (relative file, type, pyx12 verdict).
pub fn manifest() -> Vec<(String, String, String)> {
    std::fs::read_to_string(fixture("x12/manifest.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0].to_owned(), cols[1].to_owned(), cols[2].to_owned())
        })
        .collect()
}

/// Runs `f` on a plain connection to the ledger at `url`, as an admin (or
/// an intruder) with `sqlite3` or `psql` would, then closes it.
pub fn with_ledger_pool<T>(url: &str, f: impl AsyncFnOnce(&sqlx::AnyPool) -> T) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        let out = f(&pool).await;
        pool.close().await;
        out
    })
}

/// Waits (real time) until `f` holds, at most `secs`; whether it did.
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    f()
}

/// The envelope of an answer from the sandbox-profile payer (ISA06/GS02
/// SANDBOXPAYER) to us (EDICOURIER): what a 999 must carry to match our
/// groups, which are matched on our whole envelope.
pub fn from_payer() -> edi_courier::model::response::EnvelopeRef {
    edi_courier::model::response::EnvelopeRef {
        sender: "SANDBOXPAYER".into(),
        receiver: "EDICOURIER".into(),
        interchange: "1".into(),
        group_sender: "SANDBOXPAYER".into(),
        group_receiver: "EDICOURIER".into(),
        ..Default::default()
    }
}

/// Every remittance CSV under `dir` ties to its deposit: Σ claim paid −
/// Σ PLB = the payment row's paid (BPR02). Returns how many files.
pub fn assert_remittances_tie(dir: &Path) -> usize {
    use rust_decimal::Decimal;
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("csv") {
            continue;
        }
        files += 1;
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let header = reader.headers().unwrap().clone();
        let at = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (row, paid) = (at("row"), at("paid"));
        let (mut claims, mut plb, mut payment) = (Decimal::ZERO, Decimal::ZERO, None);
        for record in reader.records() {
            let r = record.unwrap();
            let amount: Decimal = r[paid].parse().unwrap();
            match &r[row] {
                "claim" => claims += amount,
                "plb" => plb += amount,
                "payment" => payment = Some(amount),
                _ => {}
            }
        }
        assert_eq!(
            Some(claims - plb),
            payment,
            "{}: Σ claim paid − Σ PLB must equal BPR02",
            path.display()
        );
    }
    files
}

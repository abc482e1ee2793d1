//! The billing report of a big ledger: builds one of N claims (default one
//! million) with bulk INSERTs, then times `edi-courier report -o` on it — the
//! release binary, as a user runs it — and reads its peak memory (the
//! child's max RSS). Prints seconds and MiB.
//!
//! `cargo build --release && cargo run --release --example bench_report -- [N]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/report_ledger.rs"]
mod report_ledger;

use std::time::Instant;

#[tokio::main]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("N: a number of claims"));
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.sqlite");
    let url = format!("sqlite://{}", ledger.display());
    let start = Instant::now();
    report_ledger::build(&url, n, 5000, chrono::Utc::now()).await;
    let size = std::fs::metadata(&ledger).unwrap().len();
    println!(
        "ledger: {n} claims, {:.0} MiB, built in {:.1} s",
        size as f64 / 1048576.0,
        start.elapsed().as_secs_f64()
    );
    let config = dir.path().join("edi-courier.toml");
    std::fs::write(
        &config,
        format!("[ledger]\nurl = \"{url}\"\n[paths]\noutbox = \"outbox\"\n"),
    )
    .unwrap();
    let binary = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("edi-courier");
    let out = dir.path().join("report.html");
    let start = Instant::now();
    let child = std::process::Command::new(&binary)
        .args(["report", "--config"])
        .arg(&config)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let secs = start.elapsed().as_secs_f64();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    // The max RSS of the waited-for child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    print!("{}", String::from_utf8_lossy(&child.stdout));
    println!(
        "report: {secs:.2} s, peak RSS {:.0} MiB, {} KiB of HTML",
        usage.ru_maxrss as f64 / 1024.0,
        std::fs::metadata(&out).unwrap().len() / 1024
    );
}

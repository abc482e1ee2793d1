//! Upload throughput of edi-courier's SFTP client (russh + russh-sftp,
//! 256 KiB writes), for `scripts/bench`, which times OpenSSH `sftp -b` on
//! the same file and server beside it — and the cost of each proof of
//! receipt: `size` (a stat), `sha256` (the server's `check-file-name`) or
//! `readback` (the upload read back over SFTP and hashed here).
//!
//! ```text
//! bench_sftp PORT USER KEY PIN LOCAL REMOTE [size|sha256|readback]
//! ```
//! Prints one JSON line: bytes, seconds (connect + put + verify), the
//! verify step's own seconds, MB/s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edi_courier::config::{HostKeyPin, SftpTarget, VerifyMode};
use edi_courier::sftp::{Connection, Expected, Put};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    let target = SftpTarget {
        host: "127.0.0.1".into(),
        port: a[1].parse().unwrap(),
        user: a[2].clone(),
        key_file: Some(a[3].clone().into()),
        password_file: None,
        host_keys: vec![HostKeyPin::parse(&a[4]).unwrap()],
    };
    let mode = match a.get(7).map(String::as_str) {
        None | Some("size") => VerifyMode::Size,
        Some("sha256") => VerifyMode::Sha256,
        Some("readback") => VerifyMode::Readback,
        Some(other) => panic!("verify mode {other:?}: size, sha256 or readback"),
    };
    let local = Path::new(&a[5]);
    let mut hash = Sha256::new();
    let mut file = std::fs::File::open(local).unwrap();
    let bytes = std::io::copy(&mut file, &mut hash).unwrap();
    let expected = Expected {
        bytes,
        sha256: hash.finalize().into(),
    };
    let started = Instant::now();
    let conn = Connection::open(&target, Duration::from_secs(30))
        .await
        .unwrap();
    conn.put(local, &a[6], Put::Truncate, &|_| {})
        .await
        .unwrap();
    let verifying = Instant::now();
    let proof = conn.verify(&a[6], expected, Some(mode)).await.unwrap();
    let verify_secs = verifying.elapsed().as_secs_f64();
    conn.close().await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"what\":\"edi-courier upload (connect + put + verify {})\",\"proof\":\"{proof:?}\",\"bytes\":{bytes},\"seconds\":{secs:.3},\"verify_seconds\":{verify_secs:.3},\"mb_per_s\":{:.1}}}",
        mode.as_str(),
        bytes as f64 / secs / 1e6
    );
}

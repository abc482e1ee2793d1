//! Upload throughput of edi-courier's SFTP client (russh + russh-sftp,
//! 256 KiB writes, verified by size), for `scripts/bench`, which times
//! OpenSSH `sftp -b` on the same file and server beside it.
//!
//! ```text
//! bench_sftp PORT USER KEY PIN LOCAL REMOTE
//! ```
//! Prints one JSON line: bytes, seconds, MB/s, the cipher preference.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edi_courier::config::{HostKeyPin, SftpTarget};
use edi_courier::sftp::{Connection, Expected};
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
    let local = Path::new(&a[5]);
    let bytes = std::fs::read(local).unwrap();
    let expected = Expected {
        bytes: bytes.len() as u64,
        sha256: Sha256::digest(&bytes).into(),
    };
    drop(bytes);
    let started = Instant::now();
    let conn = Connection::open(&target, Duration::from_secs(30))
        .await
        .unwrap();
    let verified = conn
        .put_verified(local, &a[6], expected, &|_| {})
        .await
        .unwrap();
    conn.close().await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"what\":\"edi-courier upload (connect + put + size check)\",\"bytes\":{},\"seconds\":{secs:.3},\"mb_per_s\":{:.1}}}",
        verified.bytes,
        verified.bytes as f64 / secs / 1e6
    );
}

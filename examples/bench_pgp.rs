//! OpenPGP sealing and opening throughput and peak memory, for
//! `scripts/bench` (which times `gpg` on the same 256 MB file beside it).
//!
//! ```text
//! bench_pgp seal PARTNER_PUBLIC.asc OUR_SECRET.asc IN OUT   # encrypt + sign
//! bench_pgp open OUR_SECRET.asc PARTNER_PUBLIC.asc IN OUT   # decrypt + verify
//! ```
//!
//! Prints one JSON line: bytes of plaintext, seconds, MB/s, the CPU time of
//! all its threads (user + system: opening decrypts on a thread of its own,
//! so wall time can be less than CPU time when a second core is free) and
//! the process's peak RSS (getrusage), so memory that grew with the file
//! shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pump.rs"]
mod pump;
use pump::pump;

use edi_courier::crypt::{
    open_inbound, InboundKeys, PgpIdentity, PgpKeys, PgpRecipients, PgpVerifiers, Sealer,
};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Peak RSS in MiB and CPU seconds (user + system) so far.
fn usage() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        usage.ru_maxrss as f64 / 1024.0,
        secs(usage.ru_utime) + secs(usage.ru_stime),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, a, b, input, output) = (&args[1], &args[2], &args[3], &args[4], &args[5]);
    let mut file = std::fs::File::open(input).unwrap();
    let out = std::io::BufWriter::new(std::fs::File::create(output).unwrap());
    let bytes;
    let start;
    match mode.as_str() {
        "seal" => {
            let recipients = PgpRecipients::load(&[PathBuf::from(a)], true, false).unwrap();
            let id = Arc::new(PgpIdentity::load(&PathBuf::from(b), None).unwrap());
            start = (Instant::now(), usage().1);
            let mut sealer = Sealer::openpgp(&recipients, Some(id), out).unwrap();
            bytes = pump(&mut file, &mut sealer);
            sealer.finish().unwrap().0.flush().unwrap();
        }
        "open" => {
            let id = PgpIdentity::load(&PathBuf::from(a), None).unwrap();
            let verifiers = PgpVerifiers::load(&[PathBuf::from(b)]).unwrap();
            let keys = InboundKeys {
                age: None,
                openpgp: PgpKeys {
                    identity: Some(&id),
                    verify_with: Some(&verifiers),
                },
            };
            start = (Instant::now(), usage().1);
            let mut reader = open_inbound(&keys, std::io::BufReader::new(file)).unwrap();
            let mut out = out;
            bytes = pump(&mut reader, &mut out);
            reader.finish().unwrap();
            out.flush().unwrap();
        }
        _ => {
            eprintln!("usage: bench_pgp seal|open KEY KEY IN OUT");
            std::process::exit(2);
        }
    }
    let secs = start.0.elapsed().as_secs_f64();
    let (rss, cpu) = usage();
    let file = std::path::Path::new(input)
        .file_name()
        .unwrap()
        .to_string_lossy();
    println!(
        "{{\"what\":\"edi-courier OpenPGP {mode} {file}\",\"bytes\":{bytes},\"seconds\":{secs:.3},\"mb_per_s\":{:.1},\"cpu_seconds\":{:.3},\"peak_rss_mib\":{rss:.1}}}",
        bytes as f64 / secs / 1e6,
        cpu - start.1,
    );
}

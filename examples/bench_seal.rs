//! Sealing and opening throughput with our age wrapper, for `scripts/bench`
//! (which times the Go `age` CLI on the same file beside it).
//!
//! ```text
//! bench_seal seal RECIPIENT IN OUT
//! bench_seal open IDENTITY_FILE IN OUT
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/pump.rs"]
mod pump;
use pump::pump;

use edi_courier::crypt::{open, Identities, Recipients, Sealer};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, key, input, output) = (&args[1], &args[2], &args[3], &args[4]);
    let mut file = std::fs::File::open(input).unwrap();
    let out = std::io::BufWriter::new(std::fs::File::create(output).unwrap());
    let start = Instant::now();
    let bytes;
    match mode.as_str() {
        "seal" => {
            let recipients = Recipients::parse(std::slice::from_ref(key), false).unwrap();
            let mut sealer = Sealer::new(&recipients, out).unwrap();
            bytes = pump(&mut file, &mut sealer);
            sealer.finish().unwrap().0.flush().unwrap();
        }
        "open" => {
            let ids = Identities::load(&[PathBuf::from(key)]).unwrap();
            let mut reader = open(&ids, file).unwrap();
            let mut out = out;
            bytes = pump(&mut reader, &mut out);
            out.flush().unwrap();
        }
        _ => {
            eprintln!("usage: bench_seal seal|open KEY IN OUT");
            std::process::exit(2);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"what\":\"edi-courier {mode}\",\"bytes\":{bytes},\"seconds\":{secs:.3},\"mb_per_s\":{:.1}}}",
        bytes as f64 / secs / 1e6
    );
}

//! Throughput and peak memory of the 837 writer and reader, for
//! `scripts/bench` (which runs pyx12 on the same files beside it).
//!
//! ```text
//! bench_837 write N OUT     stream N generated claims into OUT as one interchange
//! bench_837 scan FILE       tokenize + envelope checks only
//! bench_837 model FILE      read every claim into the model
//! ```
//! Each prints one JSON line: bytes, claims, seconds, MB/s, claims/s and the
//! process's peak resident memory (VmHWM).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../tests/common/gen.rs"]
mod gen;

// The same allocator as the edi-courier binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use edi_courier::inspect::read_x12;
use edi_courier::model::ClaimKind;
use edi_courier::profile::Profile;
use edi_courier::x12::{EnvelopeReader, ReadError, Sequential, Tokenizer, Writer837};
use std::io::{Read, Write};
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn report(what: &str, bytes: u64, claims: u64, secs: f64) {
    println!(
        "{{\"what\":\"{what}\",\"bytes\":{bytes},\"claims\":{claims},\"seconds\":{secs:.3},\"mb_per_s\":{:.1},\"claims_per_s\":{:.0},\"peak_rss_mib\":{:.1}}}",
        bytes as f64 / secs / 1e6,
        claims as f64 / secs,
        peak_rss_kib() as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("write") => {
            let n: usize = args[2].parse().unwrap();
            let mut file = std::io::BufWriter::new(std::fs::File::create(&args[3]).unwrap());
            let profile = Profile::sandbox().unwrap();
            let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
                .unwrap()
                .and_hms_opt(10, 0, 0)
                .unwrap();
            // Generate claims ahead in chunks so the timing is the writer's, not the generator's.
            let mut rng = gen::Rng::new(42);
            let chunk: Vec<_> = (0..1000)
                .map(|i| gen::claim(&mut rng, ClaimKind::Professional, i + 1))
                .collect();
            let mut numbers = Sequential::starting_at(1);
            let mut buf = Vec::with_capacity(1 << 20);
            let start = Instant::now();
            let mut w = Writer837::begin(profile.envelope, now, &mut numbers, &mut buf).unwrap();
            let mut written = 0u64;
            for i in 0..n {
                // Ids repeat every 1000 claims; the writer does not care, and
                // the timing stays the writer's own.
                w.write_claim(&chunk[i % chunk.len()], &mut numbers, &mut buf)
                    .unwrap();
                if buf.len() >= 256 * 1024 {
                    file.write_all(&buf).unwrap();
                    written += buf.len() as u64;
                    buf.clear();
                }
            }
            w.finish(&mut buf).unwrap();
            file.write_all(&buf).unwrap();
            file.flush().unwrap();
            written += buf.len() as u64;
            report("write", written, n as u64, start.elapsed().as_secs_f64());
        }
        Some("scan") => {
            // Streams in 256 KiB chunks, as the daemon reads.
            let mut file = std::fs::File::open(&args[2]).unwrap();
            let bytes = file.metadata().unwrap().len();
            let start = Instant::now();
            let mut env = EnvelopeReader::new();
            let mut tok = Tokenizer::new();
            let mut claims = 0u64;
            let mut buf = Vec::with_capacity(1 << 20);
            loop {
                let kept = buf.len();
                buf.resize(kept + 256 * 1024, 0);
                let n = file.read(&mut buf[kept..]).unwrap();
                buf.truncate(kept + n);
                let used = tok
                    .feed::<ReadError>(&buf, n == 0, |s| {
                        claims += u64::from(s.is("CLM"));
                        env.segment(&s).map(|_| ())
                    })
                    .unwrap();
                buf.drain(..used);
                if n == 0 {
                    break;
                }
            }
            env.finish();
            assert!(env.problems.is_empty(), "{:?}", env.problems);
            report("scan", bytes, claims, start.elapsed().as_secs_f64());
        }
        Some("model") => {
            let mut file = std::fs::File::open(&args[2]).unwrap();
            let bytes = file.metadata().unwrap().len();
            let start = Instant::now();
            let mut claims = 0u64;
            let summary = read_x12(&mut file as &mut dyn Read, |_| claims += 1).unwrap();
            assert!(summary.is_valid(), "{:?}", summary.problems);
            report("model", bytes, claims, start.elapsed().as_secs_f64());
        }
        _ => {
            eprintln!("usage: bench_837 write N OUT | scan FILE | model FILE");
            std::process::exit(2);
        }
    }
}

//! The "no input slower than 50× its size at the benchmark rate" check of
//! the fuzzing runs: every input of a fuzz target's corpus is run through
//! the same code as the target (release build, no instrumentation), best of
//! three, and its time compared with what its size costs at the rate
//! BENCHMARKS.md measures plus the cost of an empty input (the fixed setup a
//! tiny input cannot be faster than).
//!
//! ```text
//! fuzz_rates x12_read FOLDER      the X12 reader (rate: 189 MB/s, the 835 read)
//! fuzz_rates csv_map FOLDER       an export through the physician group's map (rate: 28 MB/s, translate)
//! fuzz_rates sealed_open FOLDER   a collected file opened (rate: 237 MB/s, OpenPGP open)
//! ```
//! Prints one JSON line: inputs, the worst ratio (time ÷ allowed-at-1×)
//! and that input's name and size, and the slowest input in absolute time
//! (a sealed file's one public-key operation is a fixed cost that an empty
//! input, refused at once, does not pay).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A new 0700 folder for the key files (the key loaders refuse looser ones).
fn private_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edi-courier-fuzz-rates-{}", std::process::id()));
    edi_courier::atomic::private_dir(&dir).unwrap();
    dir
}

/// A 0600 key file holding `bytes`.
fn private_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    edi_courier::atomic::private_file(&path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
    path
}

/// One fuzz target's body.
type Run = Box<dyn Fn(&[u8])>;

fn best_of_three(mut run: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (target, folder) = (args[1].as_str(), PathBuf::from(&args[2]));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let keys_dir = private_dir();
    let (rate_mb_s, run): (f64, Run) = match target {
        "x12_read" => (
            189.0,
            Box::new(|data: &[u8]| {
                let _ = edi_courier::inspect::read_items_streaming(data, |_| {});
            }),
        ),
        "csv_map" => {
            let map = edi_courier::map::InputMap::load(&root.join("edi-maps/physician-group.toml"))
                .unwrap();
            (
                28.0,
                Box::new(move |data: &[u8]| {
                    if let Ok(claims) =
                        edi_courier::map::CsvClaims::new(map.clone(), data, Path::new("fuzz.csv"))
                    {
                        for _ in claims {}
                    }
                }),
            )
        }
        "sealed_open" => {
            let pgp = private_file(
                &keys_dir,
                "pgp.asc",
                &std::fs::read(root.join("fuzz/keys/fuzz-only-secret.asc")).unwrap(),
            );
            let pgp: &'static _ = Box::leak(Box::new(
                edi_courier::crypt::PgpIdentity::load(&pgp, None).unwrap(),
            ));
            let age_key = {
                use age::secrecy::ExposeSecret;
                age::x25519::Identity::generate()
                    .to_string()
                    .expose_secret()
                    .to_owned()
            };
            let age_path = private_file(&keys_dir, "age.txt", format!("{age_key}\n").as_bytes());
            let ids: &'static _ = Box::leak(Box::new(
                edi_courier::crypt::Identities::load(&[age_path]).unwrap(),
            ));
            (
                237.0,
                Box::new(move |data: &[u8]| {
                    let keys = edi_courier::crypt::InboundKeys {
                        age: Some(ids),
                        openpgp: edi_courier::crypt::PgpKeys {
                            identity: Some(pgp),
                            verify_with: None,
                        },
                    };
                    let input = std::io::BufReader::new(std::io::Cursor::new(data.to_vec()));
                    if let Ok(mut opened) = edi_courier::crypt::open_inbound(&keys, input) {
                        let mut sink = Vec::new();
                        let _ = opened.read_to_end(&mut sink);
                        let _ = opened.finish();
                    }
                }),
            )
        }
        other => panic!("unknown target {other}"),
    };
    let floor = best_of_three(|| run(b""));
    let mut inputs = 0usize;
    let mut worst = (0.0f64, String::new(), 0usize, Duration::ZERO);
    let mut slowest = Duration::ZERO;
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let took = best_of_three(|| run(&data));
        let allowed = floor.as_secs_f64() + data.len() as f64 / (rate_mb_s * 1e6);
        let ratio = took.as_secs_f64() / allowed;
        inputs += 1;
        slowest = slowest.max(took);
        let name = || path.file_name().unwrap().to_string_lossy().into_owned();
        if ratio > worst.0 {
            worst = (ratio, name(), data.len(), took);
        }
    }
    let _ = std::fs::remove_dir_all(&keys_dir);
    println!(
        "{{\"target\":\"{target}\",\"inputs\":{inputs},\"rate_mb_s\":{rate_mb_s},\"empty_input_us\":{:.1},\"worst_ratio\":{:.1},\"worst_input\":\"{}\",\"worst_bytes\":{},\"worst_ms\":{:.3},\"slowest_ms\":{:.3}}}",
        floor.as_secs_f64() * 1e6,
        worst.0,
        worst.1,
        worst.2,
        worst.3.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3
    );
}

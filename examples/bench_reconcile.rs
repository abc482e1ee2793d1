//! Reconciliation speed: a ledger holding N sent claims (ids `C00000000`…,
//! as `bench_835 write N` pays them), then the 835 recorded against it —
//! every CLP matched to its claim, every verdict kept, statuses moved — in
//! one transaction, as `collect` does. Prints claims per second.
//!
//! `cargo run --release --example bench_reconcile -- N FILE.835 [LEDGER-URL]`
//!
//! The ledger is a new SQLite file unless LEDGER-URL names an empty
//! PostgreSQL database (`postgres://…`).
//!
//! `bench_reconcile writers W N FILE.835 LEDGER-URL` runs W such writers
//! at once, as processes of their own on one ledger (each a partner of its
//! own), and prints the combined rates: every claim recorded, and every
//! claim reconciled, over the span from the first writer's start to the
//! last one's end — what one and two daemons sharing a ledger can do.
//!
//! `bench_reconcile collect N FILE.835` measures the whole of `collect`'s
//! work on that file instead, in a process of its own (so its peak memory
//! is the collect's alone): both passes — open, read and check, then read
//! again and apply in one transaction while the posting export is written
//! — as `Collect::process` does after the download. It prints the time and
//! the process's peak resident memory (VmHWM).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The allocator the binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use edi_courier::inspect::{read_items, Item};
use edi_courier::ledger::{
    Counts, Ledger, NewExport, NewInbound, SentClaim, SentClaims, SpooledFile,
};
use edi_courier::model::{Claim, ClaimFile};
use edi_courier::profile::Profile;
use edi_courier::x12::{Sequential, Writer837};
use std::path::Path;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a[1].as_str() {
        "collect" => return collect(a[2].parse().unwrap(), &a[3]).await,
        "collect-in" => return collect_in(Path::new(&a[2]), &a[3]).await,
        "writers" => {
            return writers(a[2].parse().unwrap(), a[3].parse().unwrap(), &a[4], &a[5]).await
        }
        "writer" => {
            let phases = measure(&a[2], a[3].parse().unwrap(), &a[4], &a[5]).await;
            println!("{} {} {} {}", phases[0], phases[1], phases[2], phases[3]);
            return;
        }
        _ => {}
    }
    let n: usize = a[1].parse().unwrap();
    let remit_file = &a[2];
    let dir = tempfile::tempdir().unwrap();
    let url = a
        .get(3)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("ledger.sqlite").display()));
    let ledger = Ledger::open(&url).await.unwrap();
    let engine = ledger.dialect();
    ledger.close().await;
    let [record0, record1, read1, reconcile1] = measure(&url, n, remit_file, "acme").await;
    let secs = reconcile1 - read1;
    let cpu = RECONCILE_CPU.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6;
    println!(
        "{{\"what\":\"edi-courier reconcile an 835 against the ledger\",\"claims\":{n},\"read_seconds\":{:.2},\"reconcile_seconds\":{secs:.2},\"claims_per_s\":{:.0},\"reconcile_cpu_seconds\":{cpu:.2},\"engine\":\"{}\",\"recorded_claims_per_s\":{:.0}}}",
        read1 - record1,
        n as f64 / secs,
        engine.name(),
        n as f64 / (record1 - record0),
    );
}

/// CPU seconds (user and system, every thread) this process has used: on
/// a machine shared with other work, wall time swings with the load, CPU
/// time much less.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// The CPU time the last reconciliation (`measure`) took, in microseconds.
static RECONCILE_CPU: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Seconds since 1970, to line up the phases of several processes.
fn epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One writer: N claims sent to `partner` recorded in one transaction (as
/// `submit` does), then the 835 paying them read and reconciled in one
/// transaction (as `collect` does). Returns when (epoch seconds) the
/// recording started and ended, and when the reading and the reconciling
/// ended.
async fn measure(url: &str, n: usize, remit_file: &str, partner: &str) -> [f64; 4] {
    let (ledger, record0, record1) = prepare(url, n, partner).await;
    let stamp = now().and_utc();
    // The 835, read whole as collect does, then reconciled in one transaction.
    let mut responses = Vec::new();
    read_items(
        std::io::BufReader::new(std::fs::File::open(remit_file).unwrap()),
        |i| {
            if let Item::Response(r) = i {
                responses.push(*r);
            }
        },
    )
    .unwrap();
    let read1 = epoch();
    let cpu0 = cpu_seconds();
    let inbound = ledger
        .record_inbound(
            &NewInbound {
                partner,
                remote_name: "bench.835",
                remote_size: 0,
                remote_mtime: None,
                spool_path: remit_file,
                sha256: "01",
            },
            stamp,
        )
        .await
        .unwrap();
    let edi_courier::ledger::Inbound::New(inbound_id) = inbound else {
        panic!("{inbound:?}")
    };
    let done = ledger
        .record_responses(partner, inbound_id, "01", &responses, stamp)
        .await
        .unwrap();
    let reconcile1 = epoch();
    let cpu1 = cpu_seconds();
    RECONCILE_CPU.store(
        ((cpu1 - cpu0) * 1e6) as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    assert_eq!(done.changed.total(), n as u64);
    assert_all_paid(&ledger, partner, n).await;
    ledger.close().await;
    [record0, record1, read1, reconcile1]
}

/// `writers W N FILE.835 URL`: W processes at once on one ledger, each a
/// partner of its own recording N claims and reconciling the 835 paying
/// them; prints the combined rates (all claims over the span from the
/// first start to the last end of each phase).
async fn writers(w: usize, n: usize, remit_file: &str, url: &str) {
    // Migrated once, before the writers race to it.
    Ledger::open(url).await.unwrap().close().await;
    let me = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..w)
        .map(|i| {
            std::process::Command::new(&me)
                .args([
                    "writer",
                    url,
                    &n.to_string(),
                    remit_file,
                    &format!("partner{i}"),
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let phases: Vec<Vec<f64>> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout)
                .unwrap()
                .split_whitespace()
                .map(|t| t.parse().unwrap())
                .collect()
        })
        .collect();
    let span = |from: usize, to: usize| {
        let start = phases.iter().map(|p| p[from]).fold(f64::MAX, f64::min);
        let end = phases.iter().map(|p| p[to]).fold(f64::MIN, f64::max);
        end - start
    };
    let total = (w * n) as f64;
    let engine = Ledger::open(url).await.unwrap().dialect();
    println!(
        "{{\"what\":\"edi-courier ledger, {w} writer process(es) at once\",\"engine\":\"{}\",\"claims_each\":{n},\"recorded_claims_per_s\":{:.0},\"reconciled_claims_per_s\":{:.0}}}",
        engine.name(),
        total / span(0, 1),
        total / span(2, 3),
    );
}

fn now() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap()
}

async fn assert_all_paid(ledger: &Ledger, partner: &str, n: usize) {
    let counts = ledger
        .claim_totals(chrono::DateTime::<chrono::Utc>::MIN_UTC)
        .await
        .unwrap();
    let paid: i64 = counts
        .iter()
        .filter(|r| r.partner == partner)
        .filter(|r| r.status == "partially_paid" || r.status == "paid")
        .map(|r| r.claims)
        .sum();
    assert_eq!(paid as usize, n, "every claim matched: {counts:?}");
}

/// A ledger holding N claims sent to `partner` (ids `C00000000`…),
/// recorded in one transaction as `submit` does; with when (epoch seconds)
/// the recording started and ended.
async fn prepare(url: &str, n: usize, partner: &str) -> (Ledger, f64, f64) {
    let ledger = Ledger::open(url).await.unwrap();
    let now = now();
    let stamp = now.and_utc();
    // N claims sent: written as an 837 for their placements, recorded and delivered.
    let file: ClaimFile =
        serde_json::from_slice(&std::fs::read("examples/claims.json").unwrap()).unwrap();
    let template: Claim = file.claims[0].clone();
    let env = Profile::sandbox().unwrap().envelope;
    // Writers on one ledger each send from their own control numbers.
    let writer: u32 = partner
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(0);
    let mut numbers = Sequential::starting_at(1 + writer * 10_000_000);
    let mut out = Vec::new();
    let mut w = Writer837::begin(env.clone(), now, &mut numbers, &mut out).unwrap();
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = template.clone();
        c.id = format!("C{i:08}");
        let placement = w.write_claim(&c, &mut numbers, &mut out).unwrap();
        out.clear();
        sent.push(SentClaim {
            claim_id: c.id.clone(),
            kind: c.kind,
            frequency: c.frequency_code.clone(),
            charge: c.total_charge,
            payer_id: c.payer.id.clone(),
            placement,
            line_controls: c
                .lines
                .iter()
                .map(|l| l.line_control_number.clone())
                .collect(),
        });
    }
    let sent: SentClaims = sent.into_iter().collect();
    let interchange = w.finish(&mut out).unwrap();
    let record0 = epoch();
    let (export_id, file_id) = ledger
        .begin_export(
            &NewExport {
                partner,
                path: "bench.csv",
                sha256: "00",
                size: 0,
                file_name: "bench.x12",
                spool_path: "bench.x12",
                sealed_to: "bench",
            },
            stamp,
        )
        .await
        .unwrap();
    ledger
        .record_spooled(
            &SpooledFile {
                export_id,
                file_id,
                partner,
                sha256: "00",
                size: 0,
                envelope: &env,
                interchange: &interchange,
                claims: &sent,
                counts: Counts {
                    read: n as u64,
                    accepted: n as u64,
                    set_aside: 0,
                },
                set_aside_copies: &[],
                alerts: (&[], None),
            },
            stamp,
        )
        .await
        .unwrap();
    ledger.delivered(file_id, "bench", stamp).await.unwrap();
    let record1 = epoch();
    (ledger, record0, record1)
}

/// Prepares a ledger and config in a temporary folder, then runs the
/// collect in a child process and prints what it measured.
async fn collect(n: usize, file: &str) {
    let dir = tempfile::tempdir().unwrap();
    prepare(
        &format!("sqlite://{}", dir.path().join("ledger.sqlite").display()),
        n,
        "acme",
    )
    .await
    .0
    .close()
    .await;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["collect-in", &dir.path().display().to_string(), file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// The collect of `file` against the ledger in `dir`: what
/// `Collect::process` does once the file is downloaded.
async fn collect_in(dir: &Path, file: &str) {
    let d = dir.display();
    let key = dir.join("key");
    std::fs::write(&key, "not used: nothing is downloaded").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config_path = dir.join("edi-courier.toml");
    let config = edi_courier::config::Config::parse(
        &format!(
            r#"[paths]
spool = "{d}/spool"
remittances = "{d}/remittances"
[ledger]
url = "sqlite://{d}/ledger.sqlite"
[partners.acme]
profile = "sandbox"
host = "127.0.0.1"
port = 22
user = "bench"
key_file = "{d}/key"
host_keys = ["SHA256:Hc9TSVdFpnLLNuSJW/9T1ZOajX3UGjAq64mnA9Tt+dk"]
outbound_dir = "/in"
inbound_dir = "/out"
seal = "none"
"#
        ),
        &config_path,
    )
    .unwrap();
    let ledger = Ledger::open(&config.ledger_url).await.unwrap();
    let started = Instant::now();
    let id = match ledger
        .record_inbound(
            &NewInbound {
                partner: "acme",
                remote_name: "big.835",
                remote_size: 0,
                remote_mtime: None,
                spool_path: file,
                sha256: "01",
            },
            now().and_utc(),
        )
        .await
        .unwrap()
    {
        edi_courier::ledger::Inbound::New(id) => id,
        other => panic!("{other:?}"),
    };
    let run = edi_courier::collect::Collect {
        config: &config,
        partner: config.partner("acme").unwrap(),
        ledger: &ledger,
        identities: None,
        now: now().and_utc(),
        alert_job: None,
    };
    let outcome = run.process(id, "big.835", Path::new(file)).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let edi_courier::collect::Collected::Processed { changed, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let n = changed.total() as usize;
    assert_all_paid(&ledger, "acme", n).await;
    ledger.close().await;
    let hwm_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let bytes = std::fs::metadata(file).unwrap().len();
    println!(
        "{{\"what\":\"edi-courier collect: an 835 checked, applied and exported (after the download)\",\"bytes\":{bytes},\"claims\":{n},\"seconds\":{secs:.2},\"claims_per_s\":{:.0},\"peak_rss_mib\":{:.1}}}",
        n as f64 / secs,
        hwm_kib / 1024.0
    );
}

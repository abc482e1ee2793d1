//! Reconciliation speed: a ledger holding N sent claims (ids `C00000000`…,
//! as `bench_835 write N` pays them), then the 835 recorded against it —
//! every CLP matched to its claim, every verdict kept, statuses moved — in
//! one transaction, as `collect` does. Prints claims per second.
//!
//! `cargo run --release --example bench_reconcile -- N FILE.835`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use edi_courier::inspect::{read_items, Item};
use edi_courier::ledger::{Counts, Ledger, NewExport, NewInbound, SentClaim, SpooledFile};
use edi_courier::model::{Claim, ClaimFile};
use edi_courier::profile::Profile;
use edi_courier::x12::{Sequential, Writer837};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    let n: usize = a[1].parse().unwrap();
    let remit_file = &a[2];
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&format!(
        "sqlite://{}",
        dir.path().join("ledger.sqlite").display()
    ))
    .await
    .unwrap();
    let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let stamp = now.and_utc();

    // N claims sent: written as an 837 for their placements, recorded and delivered.
    let file: ClaimFile =
        serde_json::from_slice(&std::fs::read("examples/claims.json").unwrap()).unwrap();
    let template: Claim = file.claims[0].clone();
    let env = Profile::sandbox().unwrap().envelope;
    let mut numbers = Sequential::starting_at(1);
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
    let interchange = w.finish(&mut out).unwrap();
    let (export_id, file_id) = ledger
        .begin_export(
            &NewExport {
                partner: "acme",
                path: "bench.csv",
                sha256: "00",
                size: 0,
                file_name: "bench.x12",
                spool_path: "bench.x12",
            },
            stamp,
        )
        .await
        .unwrap();
    let started = Instant::now();
    ledger
        .record_spooled(
            &SpooledFile {
                export_id,
                file_id,
                partner: "acme",
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
            },
            stamp,
        )
        .await
        .unwrap();
    ledger.delivered(file_id, "bench", stamp).await.unwrap();
    let record_secs = started.elapsed().as_secs_f64();

    // The 835, read whole as collect does, then reconciled in one transaction.
    let started = Instant::now();
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
    let read_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let inbound = ledger
        .record_inbound(
            &NewInbound {
                partner: "acme",
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
        .record_responses("acme", inbound_id, "01", &responses, stamp)
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let counts = ledger
        .claim_totals(chrono::DateTime::<chrono::Utc>::MIN_UTC)
        .await
        .unwrap();
    ledger.close().await;
    let paid: i64 = counts
        .iter()
        .filter(|r| r.status == "partially_paid" || r.status == "paid")
        .map(|r| r.claims)
        .sum();
    assert_eq!(paid as usize, n, "every claim matched: {counts:?}");
    println!(
        "{{\"what\":\"edi-courier reconcile an 835 against the ledger\",\"claims\":{n},\"record_sent_seconds\":{record_secs:.2},\"read_seconds\":{read_secs:.2},\"reconcile_seconds\":{secs:.2},\"claims_per_s\":{:.0},\"changed\":{}}}",
        n as f64 / secs,
        done.changed.len()
    );
}

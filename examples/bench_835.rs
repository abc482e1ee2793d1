//! Reading a large 835 into the remittance model, for `scripts/bench`
//! (which runs pyx12's readers on the same file beside it).
//!
//! ```text
//! bench_835 write N OUT   an 835 of N claims (two service lines each, CAS, REF*6R, AMT, LQ), balanced
//! bench_835 read FILE     read every remittance; one JSON line: MB/s, claims/s, peak memory
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use edi_courier::inspect::{read_items_streaming, Item};
use edi_courier::model::response::{ClaimTotals, Response};
use std::io::Write;
use std::time::Instant;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("write") => {
            let n: u64 = a[2].parse().unwrap();
            let mut out = std::io::BufWriter::new(std::fs::File::create(&a[3]).unwrap());
            // Each claim: billed 200, paid 150 (two lines of 100 billed, 75
            // paid: 15 contractual and 10 deductible each), balanced line by
            // line as `collect` checks it.
            let total = 150 * n;
            write!(out, "ISA*00*          *00*          *ZZ*SANDBOXPAYER   *ZZ*EDICOURIER     *261120*1000*^*00501*000000001*0*P*:~GS*HP*SANDBOXPAYER*EDICOURIER*20261120*1000*1*X*005010X221A1~ST*835*0001~BPR*I*{total}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*20261125~TRN*1*EFT0001*1512345678~DTM*405*20261120~N1*PR*ACME HEALTH PLAN~N3*1 PAYER WAY~N4*CHICAGO*IL*60601~PER*BL*EDI DESK*TE*8005551212~N1*PE*RIVERSIDE FAMILY MEDICINE*XX*1234567893~LX*1~").unwrap();
            let mut segments = 11u64; // ST through LX, and SE
            for i in 0..n {
                write!(out, "CLP*C{i:08}*1*200*150*20*12*PCN{i:010}*11*1~NM1*QC*1*DOE*JANE****MI*M{i:08}~DTM*232*20261101~DTM*233*20261101~").unwrap();
                for l in 1..=2 {
                    write!(out, "SVC*HC:99213*100*75**1~DTM*472*20261101~CAS*CO*45*15~CAS*PR*2*10~REF*6R*C{i:08}-{l}~AMT*B6*85~LQ*HE*N130~").unwrap();
                }
                segments += 4 + 14;
            }
            write!(out, "SE*{}*0001~GE*1*1~IEA*1*000000001~", segments).unwrap();
        }
        Some("read") => {
            let started = Instant::now();
            let file = std::fs::File::open(&a[2]).unwrap();
            let bytes = file.metadata().unwrap().len();
            // Streamed: each claim is handed over as it is read and
            // dropped; only the totals are kept, so memory stays flat.
            let mut claims = 0usize;
            let mut balanced = true;
            let mut running = ClaimTotals::default();
            read_items_streaming(std::io::BufReader::new(file), |item| match item {
                Item::Payment(c) => running.add(&c),
                Item::Response(r) => {
                    if let Response::Remittance(r) = *r {
                        let t = std::mem::take(&mut running);
                        claims += t.claims;
                        balanced &= t.expected_payment(&r) == Some(r.amount);
                    }
                }
                Item::Claim(_) => {}
            })
            .unwrap();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{{\"what\":\"edi-courier read 835 into the model\",\"bytes\":{bytes},\"claims\":{claims},\"balanced\":{balanced},\"seconds\":{secs:.3},\"mb_per_s\":{:.1},\"claims_per_s\":{:.0},\"peak_rss_mib\":{:.1}}}",
                bytes as f64 / secs / 1e6,
                claims as f64 / secs,
                peak_rss_mib()
            );
        }
        _ => eprintln!("usage: bench_835 write N OUT | read FILE"),
    }
}

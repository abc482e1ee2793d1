//! Criterion benchmarks of the X12 hot paths on 1000 generated claims:
//! writing an 837, scanning it (tokenizer + envelope checks), reading it into
//! the claim model, and scrubbing. `scripts/bench` runs the large-file
//! comparison with pyx12 and records peak memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../tests/common/gen.rs"]
mod gen;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edi_courier::inspect::read_x12;
use edi_courier::model::{Claim, ClaimKind};
use edi_courier::profile::Profile;
use edi_courier::scrub::Scrubber;
use edi_courier::x12::{EnvelopeReader, ReadError, Sequential, Tokenizer, Writer837};
use std::hint::black_box;

fn write(claims: &[Claim], profile: &Profile) -> Vec<u8> {
    let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 20)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    let mut numbers = Sequential::starting_at(1);
    let mut out = Vec::with_capacity(1 << 20);
    let mut w = Writer837::begin(profile.envelope.clone(), now, &mut numbers, &mut out).unwrap();
    for c in claims {
        w.write_claim(c, &mut numbers, &mut out).unwrap();
    }
    w.finish(&mut out).unwrap();
    out
}

fn benches(c: &mut Criterion) {
    let claims = gen::batch(42, 1000, ClaimKind::Professional, true);
    let profile = Profile::sandbox().unwrap();
    let bytes = write(&claims, &profile);

    let mut g = c.benchmark_group("837");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("write 1000 claims", |b| {
        b.iter(|| black_box(write(black_box(&claims), &profile)))
    });
    g.bench_function("scan with envelope checks", |b| {
        b.iter(|| {
            let mut env = EnvelopeReader::new();
            Tokenizer::new()
                .feed::<ReadError>(black_box(&bytes), true, |s| env.segment(&s).map(|_| ()))
                .unwrap();
            env.finish();
            assert!(env.problems.is_empty());
        })
    });
    g.bench_function("read into the claim model", |b| {
        b.iter(|| {
            let mut n = 0;
            read_x12(black_box(bytes.as_slice()), |_| n += 1).unwrap();
            assert_eq!(n, 1000);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("scrub");
    g.throughput(Throughput::Elements(claims.len() as u64));
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let scrubber = Scrubber::new(&profile, today);
    g.bench_function("1000 claims", |b| {
        b.iter_batched(
            || claims.clone(),
            |mut cs| {
                for c in &mut cs {
                    black_box(scrubber.scrub(c, "bench", None));
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(x12, benches);
criterion_main!(x12);

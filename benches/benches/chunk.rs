#![allow(clippy::unwrap_used, reason = "benchmark setup")]
//! Chunk codec throughput: sealed (encode/decode) and the head XOR codec, on TSBS-like CPU
//! gauges and on counters. Throughput is in samples.

use chronolith_engine::chunk::{decode_sealed, encode_sealed, XorDecoder, XorEncoder};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Random walk with uniform ±1.0 steps reflected into [0, 100], 2 decimals, every 10 s.
fn gauge(n: usize, seed: u64) -> (Vec<i64>, Vec<f64>) {
    let mut r = Rng(seed | 1);
    let mut x = r.unit() * 100.0;
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    for i in 0..n {
        x += r.unit() * 2.0 - 1.0;
        if x < 0.0 {
            x = -x;
        }
        if x > 100.0 {
            x = 200.0 - x;
        }
        ts.push(1_700_000_000_000 + 10_000 * i as i64);
        vs.push((x * 100.0).round() / 100.0);
    }
    (ts, vs)
}

/// Monotonic counter, increments 10..10000, with an occasional reset.
fn counter(n: usize, seed: u64) -> (Vec<i64>, Vec<f64>) {
    let mut r = Rng(seed | 1);
    let mut c = 0u64;
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    for i in 0..n {
        c += 10 + r.next() % 9991;
        if r.next() % 500 < 1 {
            c = 0;
        }
        ts.push(1_700_000_000_000 + 10_000 * i as i64);
        vs.push(c as f64);
    }
    (ts, vs)
}

fn codecs(c: &mut Criterion) {
    for (name, make) in [("gauge", gauge as fn(usize, u64) -> (Vec<i64>, Vec<f64>)), ("counter", counter)] {
        for n in [720usize, 8640] {
            let (ts, vs) = make(n, 12345);
            let mut g = c.benchmark_group(format!("chunk/{name}"));
            g.throughput(Throughput::Elements(n as u64));

            let mut out = Vec::with_capacity(n * 16);
            g.bench_function(BenchmarkId::new("sealed_encode", n), |b| {
                b.iter(|| {
                    out.clear();
                    black_box(encode_sealed(black_box(&ts), black_box(&vs), &mut out));
                });
            });
            let mut chunk = Vec::new();
            let codec = encode_sealed(&ts, &vs, &mut chunk);
            eprintln!("{name} n={n}: {codec:?}, {:.4} bytes/sample", chunk.len() as f64 / n as f64);
            let (mut t2, mut v2) = (Vec::with_capacity(n), Vec::with_capacity(n));
            g.bench_function(BenchmarkId::new("sealed_decode", n), |b| {
                b.iter(|| {
                    t2.clear();
                    v2.clear();
                    let r = decode_sealed(black_box(&chunk), &mut t2, &mut v2);
                    black_box(r.is_ok());
                });
            });

            g.bench_function(BenchmarkId::new("xor_append", n), |b| {
                b.iter(|| {
                    let mut e = XorEncoder::new();
                    for (&t, &v) in ts.iter().zip(&vs) {
                        e.append(t, v);
                    }
                    black_box(e.bytes().len())
                });
            });
            let mut e = XorEncoder::new();
            for (&t, &v) in ts.iter().zip(&vs) {
                e.append(t, v);
            }
            let bytes = e.bytes().to_vec();
            g.bench_function(BenchmarkId::new("xor_decode", n), |b| {
                b.iter(|| {
                    let mut acc = 0.0;
                    for (_, v) in XorDecoder::new(black_box(&bytes), n as u32).flatten() {
                        acc += v;
                    }
                    black_box(acc)
                });
            });
            g.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = codecs
}
criterion_main!(benches);

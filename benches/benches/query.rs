#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
//! Query inner loops: a window function over decoded samples (no I/O), one series'
//! decode + windowing from a sealed block, and the parallel full scan with a cross-series
//! aggregation. Throughput is in raw samples read.

use chronolith_engine::{Batch, Durability, Engine, Labels, Options, Sample};
use chronolith_query::{evaluate, parse_promql, Limits, TimeRange, WindowFn};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

const SERIES: usize = 100;
const POINTS: usize = 8_640; // one day at 10 s
const T0: i64 = 1_704_067_200_000;
const HOUR: i64 = 3_600_000;

/// A 2-decimal random walk per series, like the devops gauges.
fn sealed_engine(dir: &std::path::Path) -> Engine {
    let engine = Engine::open(dir, Options { durability: Durability::Never, ..Options::default() }).unwrap();
    let labels: Vec<Labels> =
        (0..SERIES).map(|i| Labels::metric("cpu", [("host", format!("h{i}"))]).unwrap()).collect();
    let mut x: Vec<i64> = (0..SERIES as i64).map(|i| (i * 37) % 10_000).collect();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for p in 0..POINTS {
        let mut batch = Batch::with_capacity(SERIES);
        for (i, l) in labels.iter().enumerate() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            x[i] = (x[i] + (state % 201) as i64 - 100).clamp(0, 10_000);
            batch.add_labels(l.clone(), T0 + p as i64 * 10_000, x[i] as f64 / 100.0);
        }
        engine.append(&batch).unwrap();
    }
    engine.seal_all().unwrap();
    engine
}

fn window_functions(c: &mut Criterion) {
    let samples: Vec<Sample> = (0..360).map(|i| Sample::new(i * 10_000, (i % 97) as f64 / 100.0)).collect();
    let mut g = c.benchmark_group("query/window_fn_360_samples");
    g.throughput(Throughput::Elements(samples.len() as u64));
    for f in [WindowFn::Max, WindowFn::Avg, WindowFn::Rate, WindowFn::Stddev, WindowFn::Quantile(0.9)] {
        g.bench_function(f.name(), |b| b.iter(|| black_box(f.apply(black_box(&samples), 3_600_000, HOUR))));
    }
    g.finish();
}

fn scans(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let engine = sealed_engine(dir.path());
    let day = TimeRange { start: T0 + HOUR, end: T0 + 24 * HOUR, step: HOUR };
    let mut g = c.benchmark_group("query/sealed_day");
    g.sample_size(20);

    let one = parse_promql(r#"max_over_time(cpu{host="h7"}[1h])"#).unwrap();
    g.throughput(Throughput::Elements(POINTS as u64));
    g.bench_function("one_series_max_1h", |b| b.iter(|| evaluate(&engine, &one, day, &Limits::unlimited()).unwrap()));

    let all = parse_promql("max(max_over_time(cpu[1h]))").unwrap();
    g.throughput(Throughput::Elements((POINTS * SERIES) as u64));
    g.bench_function("all_series_max_of_max_1h", |b| {
        b.iter(|| evaluate(&engine, &all, day, &Limits::unlimited()).unwrap())
    });
    g.finish();
}

criterion_group!(benches, window_functions, scans);
criterion_main!(benches);

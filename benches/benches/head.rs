//! Head append: one time-major batch of 10,000 samples (one per series, as a scrape of
//! 1,000 hosts x 10 gauges produces) into a head already holding those series, and the
//! WAL record encoding of the same batch. No I/O: this is the in-memory part of `append`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chronolith_engine::head::{Head, Placed};
use chronolith_engine::walrec::encode_samples;
use chronolith_engine::SeriesId;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const SERIES: u64 = 10_000;

fn batch(step: i64, state: &mut [i64]) -> (Vec<SeriesId>, Vec<i64>, Vec<f64>) {
    let ids: Vec<SeriesId> = (1..=SERIES).map(SeriesId).collect();
    let ts = vec![1_700_000_000_000 + step * 10_000; SERIES as usize];
    let vs = state
        .iter_mut()
        .enumerate()
        .map(|(i, h)| {
            *h = (*h + ((i as i64 * 7919 + step * 104_729) % 201) - 100).rem_euclid(10_001);
            *h as f64 / 100.0
        })
        .collect();
    (ids, ts, vs)
}

const WARM_SERIES: u64 = 20_000;
/// Scrapes per partition, and held in the head before the benchmark starts.
const WARM_SCRAPES: i64 = 150;
const SCRAPE_MS: i64 = 10_000;

fn scrape_t(step: i64) -> i64 {
    step * SCRAPE_MS
}

/// Half `half` of the series, one sample each at scrape `step`.
fn warm_batch(step: i64, half: u64) -> (Vec<SeriesId>, Vec<i64>, Vec<f64>) {
    let ids: Vec<SeriesId> = (1 + half * WARM_SERIES / 2..=(half + 1) * WARM_SERIES / 2).map(SeriesId).collect();
    let ts = vec![scrape_t(step); ids.len()];
    let vs = ids.iter().map(|id| ((id.0 as i64 * 7919 + step * 104_729) % 10_001) as f64 / 100.0).collect();
    (ids, ts, vs)
}

/// A head holding `WARM_SERIES` series with `WARM_SCRAPES` samples each, in partitions
/// of `WARM_SCRAPES` scrapes.
fn warm_head() -> Head {
    let head = Head::new(WARM_SCRAPES * SCRAPE_MS, 300_000, i64::MIN);
    let mut placed = Vec::new();
    for step in 0..WARM_SCRAPES {
        for half in 0..2 {
            let (ids, ts, vs) = warm_batch(step, half);
            head.append(&ids, &ts, &vs, true, &mut placed);
        }
    }
    head
}

fn head_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("head");
    // 60 scrapes of 10,000 series per iteration, into a fresh head.
    g.throughput(Throughput::Elements(SERIES * 60));
    let mut state = vec![5_000i64; SERIES as usize];
    let batches: Vec<_> = (0..60).map(|s| batch(s, &mut state)).collect();
    g.bench_function("append_10k_time_major", |b| {
        b.iter_batched(
            || Head::new(2 * 3600 * 1000, 300_000, i64::MIN),
            |head| {
                let mut placed = Vec::new();
                for (ids, ts, vs) in &batches[..60] {
                    head.append(ids, ts, vs, true, &mut placed);
                }
                assert!(placed.iter().all(|p| *p == Placed::Stored));
                head
            },
            BatchSize::PerIteration,
        );
    });
    // The shape of `chronolith bench remote-write`: 20,000 series already in the head,
    // and batches of 10,000 samples (one per series, half of the series per batch), so
    // each sample lands on a series not touched for a while. Whole partitions are
    // dropped (untimed) as they age, so the head stays at 150-300 samples per series
    // however many iterations criterion runs.
    g.throughput(Throughput::Elements(WARM_SERIES * 2));
    let warm = warm_head();
    let mut step = WARM_SCRAPES;
    g.bench_function("append_10k_of_20k_warm", |b| {
        let mut placed = Vec::new();
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iters {
                if step % WARM_SCRAPES == 0 {
                    warm.drop_before(scrape_t(step - WARM_SCRAPES));
                }
                let started = std::time::Instant::now();
                for half in 0..2 {
                    let (ids, ts, vs) = warm_batch(step, half);
                    warm.append(&ids, &ts, &vs, true, &mut placed);
                }
                spent += started.elapsed();
                step += 1;
            }
            spent
        });
    });
    g.throughput(Throughput::Elements(SERIES));
    let (ids, ts, vs) = &batches[0];
    g.bench_function("wal_record_encode_10k", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            encode_samples(ids, ts, vs, &mut out);
            out.len()
        });
    });
    g.finish();
}

criterion_group!(benches, head_append);
criterion_main!(benches);

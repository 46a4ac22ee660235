//! Property: for steps, windows and starts aligned to a rollup tier, a query answered
//! from rollups (with raw fallback where no rollup covers) equals the raw answer for
//! avg/min/max/sum/count/first/last over time, rate and increase: count, min, max, first
//! and last bit for bit, the summed ones to 1e-9 relative (they add the same terms,
//! grouped per bucket). The data has counter resets, jitter, gaps, NaN and stale markers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chronolith::query::{self, Limits, RangeQuery, Source, SourcePlanner, TierPlanner, WindowFn};
use chronolith::{Batch, CompactionOptions, Db, Durability, Labels, Matcher, Options, RollupTier};
use proptest::prelude::*;

const STALE: u64 = 0x7ff0_0000_0000_0002;
const HOUR: i64 = 3_600_000;

fn options() -> Options {
    Options {
        partition_ms: 600_000,
        ooo_window_ms: 5_000,
        durability: Durability::Never,
        compaction: CompactionOptions {
            background: false,
            merge_ranges_ms: vec![1_200_000],
            tiers: vec![
                RollupTier { resolution_ms: 10_000, after_ms: 900_000, span_ms: 600_000 },
                RollupTier { resolution_ms: 60_000, after_ms: 1_800_000, span_ms: 1_200_000 },
            ],
            ..CompactionOptions::default()
        },
        ..Options::default()
    }
}

#[derive(Clone, Debug)]
struct Data {
    /// Per series: (interval ms, jitter seed, reset every n samples, gap start sample).
    series: Vec<(i64, u64, u64, u64)>,
}

fn data() -> impl Strategy<Value = Data> {
    prop::collection::vec((500i64..9_000, any::<u64>(), 3u64..400, 0u64..2_000), 1..4)
        .prop_map(|series| Data { series })
}

fn fill(db: &Db, d: &Data) {
    let mut batch = Batch::new();
    for (i, (interval, seed, reset_every, gap)) in d.series.iter().enumerate() {
        let counter = Labels::metric("m", [("kind", "counter"), ("i", i.to_string().as_str())]).unwrap();
        let gauge = Labels::metric("m", [("kind", "gauge"), ("i", i.to_string().as_str())]).unwrap();
        let mut x = *seed | 1;
        let (mut t, mut n, mut c) = (1_i64, 0u64, 0.0f64);
        while t < HOUR {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            n += 1;
            if !(gap..&(gap + 40)).contains(&&n) {
                c = if n % reset_every == 0 { (x % 5) as f64 } else { c + (x % 100) as f64 };
                batch.add_labels(counter.clone(), t, c);
                let g = match x % 97 {
                    0 => f64::NAN,
                    1 => f64::from_bits(STALE),
                    _ => ((x % 20_000) as f64 - 10_000.0) / 100.0,
                };
                batch.add_labels(gauge.clone(), t, g);
            }
            t += interval + (x % 300) as i64;
        }
    }
    db.append(&batch).unwrap();
    db.seal().unwrap();
}

fn close_enough(a: f64, b: f64, exact: bool) -> bool {
    if a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) {
        return true;
    }
    !exact && (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

const FUNCS: [WindowFn; 9] = [
    WindowFn::Avg,
    WindowFn::Min,
    WindowFn::Max,
    WindowFn::Sum,
    WindowFn::Count,
    WindowFn::First,
    WindowFn::Last,
    WindowFn::Rate,
    WindowFn::Increase,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rollup_answers_equal_raw(d in data(), step_mult in 1i64..8, range_mult in 1i64..12, start_k in 0i64..20, coarse in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), options()).unwrap();
        fill(&db, &d);
        let report = db.compact();
        prop_assert_eq!(report.failures, 0);
        prop_assert!(db.engine().blocks().snapshot().rollup_resolutions() == vec![10_000, 60_000]);
        let res = if coarse { 60_000 } else { 10_000 };
        for func in FUNCS {
            let q = RangeQuery {
                matchers: vec![Matcher::metric("m")],
                start: start_k * res,
                end: HOUR + 120_000,
                step: step_mult * res,
                range: range_mult * res,
                func,
                agg: None,
            };
            let planner = TierPlanner::new(db.engine());
            let source = planner.source_for(&match q.plan() { query::Plan::Select(s) => s, _ => unreachable!() }, &q.time_range());
            prop_assert!(matches!(source, Source::Rollup { .. }), "{:?} -> {:?}", func, source);
            let raw = query::run(db.engine(), &q, &Limits::unlimited()).unwrap();
            let rolled = db.query(&q, &Limits::unlimited()).unwrap();
            prop_assert_eq!(raw.series.len(), rolled.series.len(), "{:?}", func);
            // Rollup buckets were read, not raw samples.
            prop_assert!(rolled.stats.samples_scanned < raw.stats.samples_scanned, "{:?} {:?}", raw.stats, rolled.stats);
            let exact = matches!(func, WindowFn::Min | WindowFn::Max | WindowFn::Count | WindowFn::First | WindowFn::Last);
            for (r, o) in raw.series.iter().zip(&rolled.series) {
                prop_assert_eq!(&r.labels, &o.labels);
                prop_assert_eq!(r.points.len(), o.points.len(), "{:?} {}", func, r.labels);
                for (a, b) in r.points.iter().zip(&o.points) {
                    prop_assert_eq!(a.0, b.0);
                    prop_assert!(close_enough(a.1, b.1, exact), "{:?} {} at {}: raw {} rollup {}", func, r.labels, a.0, a.1, b.1);
                }
            }
        }
        db.close().unwrap();
    }
}

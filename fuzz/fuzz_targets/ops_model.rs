//! Structure-aware: random operation sequences (append by labels or by ref, flush, seal,
//! compact = merge and downsample, drop = retention by age, crash = drop without close,
//! clean reopen, select over a random range, range query) against a `BTreeMap` model of
//! the acknowledged samples. The engine must return exactly the acknowledged samples
//! (less those in blocks retention dropped), before and after every crash and reopen; its
//! per-sample verdicts must agree with the model (a duplicate has a twin of the same value,
//! a conflict one of another value, a stored sample none); a range query must equal the
//! same aggregate computed from the model, and the rollup-tier planner's answer the raw
//! one wherever raw data is still held; and nothing may panic.
#![no_main]

use chronolith_compaction::{plan, run_job};
use chronolith_engine::{
    Batch, CompactionOptions, Durability, Engine, Labels, MatchOp, Matcher, Options, RejectReason, Retention,
    RollupTier, SeriesId,
};
use chronolith_query::{evaluate_with, run as run_query, Limits, RangeQuery, TierPlanner, WindowFn};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

const SERIES: u8 = 4;
const BASE_T: i64 = 1_000_000;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Samples at the model's newest time + `dt` (negative: out of order).
    Append {
        samples: Vec<(u8, i16, u8)>,
        by_ref: bool,
    },
    Flush,
    Seal,
    Crash,
    Reopen,
    Select {
        series: u8,
        from: i16,
        len: u16,
    },
    /// Merges, then downsampling, as the compactor plans them.
    Compact,
    /// Retention by age: raw blocks whose data ends more than `keep_s` seconds before the
    /// newest sample are dropped.
    Drop {
        keep_s: u16,
    },
    /// A range query ending at the newest sample: `func` over windows of `range_s`
    /// seconds every `step_s` seconds, `steps` steps.
    Query {
        func: u8,
        range_s: u8,
        step_s: u8,
        steps: u8,
    },
}

const FUNCS: [WindowFn; 5] = [WindowFn::Count, WindowFn::Sum, WindowFn::Max, WindowFn::Min, WindowFn::Last];

fn labels(s: u8) -> Labels {
    match Labels::metric("fz", [("s", (s % SERIES).to_string())]) {
        Ok(l) => l,
        Err(e) => panic!("labels: {e}"),
    }
}

fn options() -> Options {
    let compaction = CompactionOptions {
        background: false,
        merge_ranges_ms: vec![180_000],
        tiers: vec![RollupTier { resolution_ms: 10_000, after_ms: 0, span_ms: 120_000 }],
        ..CompactionOptions::default()
    };
    Options {
        partition_ms: 60_000,
        ooo_window_ms: 10_000,
        durability: Durability::Never,
        compaction,
        ..Options::default()
    }
}

struct Run {
    dir: tempfile::TempDir,
    engine: Option<Engine>,
    model: BTreeMap<(u8, i64), u64>,
    refs: BTreeMap<u8, SeriesId>,
    /// Newest timestamp of raw data retention dropped (rollups may still cover it).
    dropped_until: i64,
    /// Newest sample ever acknowledged: retention may drop the data, not the clock.
    newest: i64,
}

impl Run {
    fn engine(&self) -> &Engine {
        self.engine.as_ref().unwrap_or_else(|| panic!("engine closed"))
    }

    fn reopen(&mut self, clean: bool) {
        if let Some(e) = self.engine.take() {
            if clean {
                e.close().unwrap_or_else(|err| panic!("close: {err}"));
            }
        }
        let e = Engine::open(self.dir.path(), options()).unwrap_or_else(|err| panic!("reopen: {err}"));
        self.engine = Some(e);
        self.check_all();
    }

    fn max_t(&self) -> i64 {
        self.model.keys().map(|k| k.1).max().unwrap_or(BASE_T).max(self.newest)
    }

    fn append(&mut self, samples: &[(u8, i16, u8)], by_ref: bool) {
        let now = self.max_t();
        let mut batch = Batch::new();
        let mut sent = Vec::new();
        for &(s, dt, v) in samples.iter().take(64) {
            let s = s % SERIES;
            let t = now + i64::from(dt);
            let v = f64::from(v % 8);
            match self.refs.get(&s) {
                Some(&id) if by_ref => batch.add(id, t, v),
                _ => batch.add_labels(labels(s), t, v),
            }
            sent.push((s, t, v));
        }
        let report = match self.engine().append(&batch) {
            Ok(r) => r,
            Err(e) => panic!("append failed: {e}"),
        };
        for (i, id) in &report.series {
            self.refs.insert(sent[*i].0, *id);
        }
        let mut rejected = BTreeMap::new();
        for r in &report.rejected {
            rejected.insert(r.index, r.reason);
        }
        for (i, &(s, t, v)) in sent.iter().enumerate() {
            let twin = self.model.get(&(s, t)).copied();
            match rejected.get(&i) {
                None => match twin {
                    // A stored sample, or an exact duplicate of an acknowledged one.
                    None => {
                        assert!(t > self.dropped_until, "stored {s}@{t} inside a range retention dropped");
                        self.model.insert((s, t), v.to_bits());
                        self.newest = self.newest.max(t);
                    }
                    Some(bits) => assert_eq!(bits, v.to_bits(), "accepted a second value at {s}@{t}"),
                },
                Some(RejectReason::DuplicateTimestamp) => {
                    assert!(twin.is_some_and(|b| b != v.to_bits()), "conflict without a twin at {s}@{t}")
                }
                Some(RejectReason::OutOfBounds) => {
                    assert!(t <= now, "sample newer than everything rejected as out of bounds at {s}@{t}")
                }
                Some(other) => panic!("unexpected rejection {other:?} at {s}@{t}"),
            }
        }
        assert_eq!(report.stored + report.duplicates + report.rejected.len(), sent.len());
    }

    fn select(&self, series: u8, start: i64, end: i64) {
        let s = series % SERIES;
        let want: Vec<(i64, u64)> = self.model.range((s, start)..=(s, end)).map(|(k, v)| (k.1, *v)).collect();
        let matcher = match Matcher::new("s", MatchOp::Equal, s.to_string()) {
            Ok(m) => m,
            Err(e) => panic!("matcher: {e}"),
        };
        let mut got = Vec::new();
        for series in self.engine().select(&[Matcher::metric("fz"), matcher], start, end) {
            let series = series.unwrap_or_else(|e| panic!("select: {e}"));
            got.extend(series.samples.iter().map(|x| (x.t, x.v.to_bits())));
        }
        assert_eq!(got, want, "series {s} in [{start}, {end}]");
    }

    fn check_all(&self) {
        for s in 0..SERIES {
            self.select(s, i64::MIN, i64::MAX);
        }
    }

    fn compact(&mut self) {
        let e = self.engine();
        let opts = &e.options().compaction;
        let merges = plan::merges(&e.blocks().snapshot(), opts, e.head().sealed_until());
        for job in &merges {
            run_job(e, job).unwrap_or_else(|err| panic!("merge: {err}"));
        }
        if let Some(newest) = plan::newest_sample(e) {
            let downsamples = plan::downsamples(&e.blocks().snapshot(), opts, newest, e.head().sealed_until(), 16);
            for job in &downsamples {
                run_job(e, job).unwrap_or_else(|err| panic!("downsample: {err}"));
            }
        }
        self.check_all();
    }

    fn drop_expired(&mut self, keep_s: u16) {
        let e = self.engine();
        let Some(newest) = plan::newest_sample(e) else { return };
        let opts = CompactionOptions {
            retention: Retention { raw_ms: Some(i64::from(keep_s) * 1000 + 1), ..Retention::default() },
            ..e.options().compaction.clone()
        };
        let jobs = plan::retention(&e.blocks().snapshot(), &opts, newest);
        let mut gone = Vec::new();
        for job in &jobs {
            if let plan::Job::Drop { blocks, .. } = job {
                // Raw blocks never overlap and the head is newer than every block, so
                // a dropped raw block's time range holds exactly its samples.
                gone.extend(blocks.iter().filter(|b| !b.is_rollup()).map(|b| (b.meta().min_t, b.meta().max_t)));
            }
            run_job(e, job).unwrap_or_else(|err| panic!("retention: {err}"));
        }
        for (lo, hi) in gone {
            self.model.retain(|k, _| k.1 < lo || k.1 > hi);
            self.dropped_until = self.dropped_until.max(hi);
        }
        self.check_all();
    }

    fn query(&self, func: u8, range_s: u8, step_s: u8, steps: u8) {
        let func = FUNCS[usize::from(func) % FUNCS.len()];
        // Half the queries are aligned to the rollup tier (10 s), so the planner uses it.
        let (range, step, end) = if step_s & 0x80 == 0 {
            ((i64::from(range_s) + 1) * 1000, (i64::from(step_s % 60) + 1) * 1000, self.max_t())
        } else {
            let tier = 10_000;
            (
                (i64::from(range_s % 12) + 1) * tier,
                (i64::from(step_s % 6) + 1) * tier,
                (self.max_t() + tier - 1).div_euclid(tier) * tier,
            )
        };
        let start = end - i64::from(steps % 64) * step;
        let q = RangeQuery { matchers: vec![Matcher::metric("fz")], start, end, step, range, func, agg: None };
        let e = self.engine();
        let raw = run_query(e, &q, &Limits::unlimited()).unwrap_or_else(|err| panic!("query: {err}"));
        let mut got: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
        for s in &raw.series {
            got.insert(s.labels.get("s").to_string(), s.points.iter().map(|(t, v)| (*t, v.to_bits())).collect());
        }
        let mut want: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
        for s in 0..SERIES {
            let mut points = Vec::new();
            let mut t = start;
            while t <= end {
                let w: Vec<f64> =
                    self.model.range((s, t - range + 1)..=(s, t)).map(|(_, v)| f64::from_bits(*v)).collect();
                if let (Some(first), Some(last)) = (w.first(), w.last()) {
                    let v = match func {
                        WindowFn::Count => w.len() as f64,
                        WindowFn::Sum => w.iter().sum(),
                        WindowFn::Max => w.iter().copied().fold(*first, f64::max),
                        WindowFn::Min => w.iter().copied().fold(*first, f64::min),
                        _ => *last,
                    };
                    points.push((t, v.to_bits()));
                }
                t += step;
            }
            if !points.is_empty() {
                want.insert(s.to_string(), points);
            }
        }
        assert_eq!(got, want, "{} over {range} ms every {step} ms in [{start}, {end}]", func.name());
        // Rollup tiers answer like raw data wherever raw data is still held.
        if start - range > self.dropped_until {
            let planner = TierPlanner::new(e);
            let tiered = evaluate_with(e, &q.plan(), q.time_range(), &Limits::unlimited(), &planner)
                .unwrap_or_else(|err| panic!("tiered query: {err}"));
            assert_eq!(tiered.series, raw.series, "tiered {} differs from raw", func.name());
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let engine = Engine::open(dir.path(), options()).unwrap_or_else(|e| panic!("open: {e}"));
    let mut run = Run {
        dir,
        engine: Some(engine),
        model: BTreeMap::new(),
        refs: BTreeMap::new(),
        dropped_until: i64::MIN,
        newest: BASE_T,
    };
    for op in ops.iter().take(48) {
        match op {
            Op::Append { samples, by_ref } => run.append(samples, *by_ref),
            Op::Flush => run.engine().flush().unwrap_or_else(|e| panic!("flush: {e}")),
            Op::Seal => {
                run.engine().seal_all().unwrap_or_else(|e| panic!("seal: {e}"));
                run.check_all();
            }
            Op::Crash => run.reopen(false),
            Op::Reopen => run.reopen(true),
            Op::Select { series, from, len } => {
                let start = run.max_t() + i64::from(*from);
                run.select(*series, start, start + i64::from(*len));
            }
            Op::Compact => run.compact(),
            Op::Drop { keep_s } => run.drop_expired(*keep_s),
            Op::Query { func, range_s, step_s, steps } => run.query(*func, *range_s, *step_s, *steps),
        }
    }
    run.check_all();
    run.reopen(false);
});

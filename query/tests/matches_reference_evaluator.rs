//! Property test: random series (gaps, jitter, counter resets, NaN, stale markers, split
//! between a sealed block and the head) and random queries give the same answer as the
//! naive evaluator in `reference/`. Each case is generated from one u64 seed, which the
//! failure message prints; rerun one with `CHRONOLITH_QUERY_SEED=<seed>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod reference;

use chronolith_engine::{Batch, Labels, Matcher, Sample};
use chronolith_query::{
    evaluate, AggOp, Aggregation, ArithOp, Grouping, Limits, Plan, Selection, SeriesFn, TimeRange, WindowFn,
    DEFAULT_LOOKBACK_MS,
};
use common::STALE;
use proptest::prelude::*;
use reference::{RefQuery, RefSelect};
use std::collections::BTreeMap;

/// xorshift64*: the whole case follows from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn random_series(rng: &mut Rng) -> Vec<(Labels, Vec<Sample>)> {
    let count = 1 + rng.below(5);
    (0..count)
        .map(|i| {
            let labels =
                Labels::metric("m", [("i", i.to_string()), ("g", rng.pick(&["a", "b"]).to_string())]).expect("labels");
            let interval = rng.pick(&[1_000i64, 5_000, 10_000, 15_000]);
            let counter = rng.chance(50);
            // Half the series sit on a whole-second grid without jitter, so samples land
            // exactly on window edges (the left-open/closed distinction) often.
            let aligned = rng.chance(50);
            let mut t = if aligned { 1000 * rng.below(20) as i64 } else { rng.below(20_000) as i64 };
            let mut v = if counter { 0.0 } else { 10.0 };
            let mut samples: Vec<Sample> = Vec::new();
            for _ in 0..rng.below(60) {
                if rng.chance(10) {
                    t += interval * rng.below(6) as i64; // a gap
                }
                let jitter = if aligned { 0 } else { rng.below((interval / 2) as u64) as i64 - interval / 4 };
                let at = (t + jitter).max(samples.last().map_or(i64::MIN, |s| s.t + 1));
                v = if counter {
                    if rng.chance(5) {
                        rng.below(5) as f64
                    } else {
                        v + rng.below(10) as f64
                    }
                } else {
                    (rng.below(10_000) as f64 - 5_000.0) / 100.0
                };
                let value = match rng.below(100) {
                    0..=2 => f64::NAN,
                    3..=5 => STALE,
                    _ => v,
                };
                samples.push(Sample::new(at, value));
                t += interval;
            }
            (labels, samples)
        })
        .collect()
}

const FUNCS: [WindowFn; 17] = [
    WindowFn::Min,
    WindowFn::Max,
    WindowFn::Sum,
    WindowFn::Count,
    WindowFn::Avg,
    WindowFn::First,
    WindowFn::Last,
    WindowFn::Stddev,
    WindowFn::Stdvar,
    WindowFn::Changes,
    WindowFn::Resets,
    WindowFn::Rate,
    WindowFn::Increase,
    WindowFn::Delta,
    WindowFn::Irate,
    WindowFn::Idelta,
    WindowFn::Deriv,
];

fn random_query(rng: &mut Rng) -> (Plan, RefQuery) {
    let (func, select) = if rng.chance(15) {
        (SeriesFn::Instant { lookback_ms: DEFAULT_LOOKBACK_MS }, RefSelect::Instant)
    } else {
        let f = if rng.chance(8) {
            WindowFn::Quantile(rng.pick(&[-0.5, 0.0, 0.3, 0.5, 0.99, 1.0, 1.5]))
        } else {
            rng.pick(&FUNCS)
        };
        let range = rng.pick(&[1_000i64, 7_000, 10_000, 30_000, 60_000, 95_000, 300_000]);
        (SeriesFn::Window { func: f, range_ms: range }, RefSelect::Window(f, range))
    };
    let mut plan = Plan::Select(Selection { matchers: vec![Matcher::metric("m")], func });
    let mut agg = None;
    if rng.chance(40) {
        let op = match rng.below(8) {
            0 => AggOp::Sum,
            1 => AggOp::Min,
            2 => AggOp::Max,
            3 => AggOp::Avg,
            4 => AggOp::Count,
            5 => AggOp::Topk(rng.pick(&[0.0, 1.0, 2.0, 5.0])),
            6 => AggOp::Bottomk(rng.pick(&[1.0, 2.5])),
            _ => AggOp::Quantile(rng.pick(&[0.0, 0.5, 0.9])),
        };
        let grouping = match rng.below(3) {
            0 => Grouping::By(vec![]),
            1 => Grouping::By(vec!["g".into()]),
            _ => Grouping::Without(vec!["i".into()]),
        };
        plan = Plan::Aggregate { agg: Aggregation { op, grouping: grouping.clone() }, input: Box::new(plan) };
        agg = Some((op, grouping));
    }
    let mut arith = None;
    if rng.chance(15) {
        plan = Plan::Arith { op: ArithOp::Mul, scalar: -2.0, scalar_left: rng.chance(50), input: Box::new(plan) };
        arith = Some((-2.0, 0.0));
    }
    let step = rng.pick(&[1_000i64, 3_000, 10_000, 60_000]);
    let start = if rng.chance(50) { 1000 * rng.below(600) as i64 } else { rng.below(600_000) as i64 } - 20_000;
    let end = start + step * rng.below(100) as i64 + rng.below(step as u64) as i64;
    (plan, RefQuery { select, agg, arith, start, end, step })
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-7 * a.abs().max(b.abs()).max(1.0)
}

fn check(seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed | 1);
    let series = random_series(&mut rng);
    let db = common::open();
    // Everything before `split` goes to a sealed block, the rest stays in the head.
    let split = if rng.chance(50) { rng.below(900_000) as i64 } else { i64::MAX };
    let mut all: Vec<(i64, &Labels, f64)> =
        series.iter().flat_map(|(l, ss)| ss.iter().map(move |s| (s.t, l, s.v))).collect();
    all.sort_by_key(|x| x.0);
    for phase in [true, false] {
        let mut batch = Batch::new();
        for &(t, l, v) in all.iter().filter(|x| (x.0 < split) == phase) {
            batch.add_labels(l.clone(), t, v);
        }
        if !batch.is_empty() {
            let r = db.engine.append(&batch).map_err(|e| e.to_string())?;
            if !r.rejected.is_empty() {
                return Err(format!("rejected {:?}", r.rejected));
            }
        }
        if phase && split != i64::MAX {
            db.seal();
        }
    }
    for _ in 0..4 {
        let (plan, rq) = random_query(&mut rng);
        let range = TimeRange { start: rq.start, end: rq.end, step: rq.step };
        let got = evaluate(&db.engine, &plan, range, &Limits::unlimited()).map_err(|e| e.to_string())?;
        let got: BTreeMap<Labels, Vec<(i64, f64)>> = got.series.into_iter().map(|s| (s.labels, s.points)).collect();
        let want = reference::evaluate(&series, &rq);
        let agree = got.len() == want.len()
            && got.iter().zip(&want).all(|((gl, gp), (wl, wp))| {
                gl == wl && gp.len() == wp.len() && gp.iter().zip(wp).all(|(g, w)| g.0 == w.0 && same(g.1, w.1))
            });
        if !agree {
            return Err(format!("seed {seed}: plan {plan:?} over {range:?}\n got  {got:?}\n want {want:?}"));
        }
    }
    Ok(())
}

#[test]
fn replay_one_seed_from_the_environment() {
    if let Some(seed) = std::env::var("CHRONOLITH_QUERY_SEED").ok().and_then(|s| s.parse().ok()) {
        if let Err(e) = check(seed) {
            panic!("{e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_naive_reference(seed in any::<u64>()) {
        if let Err(e) = check(seed) {
            prop_assert!(false, "{}", e);
        }
    }
}

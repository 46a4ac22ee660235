//! The native API answers like its PromQL spelling, and the planner seam is honoured:
//! a planner that asks for a rollup tier gets a clear refusal until tiers exist.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chronolith_engine::{Batch, MatchOp, Matcher};
use chronolith_query::{
    evaluate_with, parse_promql, query_range, run, AggOp, Aggregation, Grouping, Limits, RangeQuery, Selection, Source,
    SourcePlanner, TimeRange, WindowFn,
};
use common::{labels, open, s};

const HOUR: i64 = 3_600_000;

#[test]
fn native_range_query_equals_promql() {
    let db = open();
    // Time-major, as a collector writes: the head refuses samples older than its
    // out-of-order window.
    let hosts = [("a", "x"), ("b", "x"), ("c", "y")];
    let mut batch = Batch::new();
    for i in 0..720 {
        for (host, dc) in hosts {
            let v = ((i * 7) % 101) as f64 + host.len() as f64;
            batch.add_labels(labels("cpu", &[("host", host), ("dc", dc)]), i * 10_000, v);
        }
    }
    assert!(db.engine.append(&batch).unwrap().rejected.is_empty());
    db.seal();
    let q = RangeQuery {
        matchers: vec![Matcher::metric("cpu"), Matcher::new("host", MatchOp::NotEqual, "c").unwrap()],
        start: HOUR,
        end: 2 * HOUR,
        step: 300_000,
        range: HOUR,
        func: WindowFn::Max,
        agg: Some(Aggregation { op: AggOp::Max, grouping: Grouping::By(vec!["dc".into()]) }),
    };
    let native = run(&db.engine, &q, &Limits::default()).unwrap();
    let promql = query_range(
        &db.engine,
        r#"max by (dc) (max_over_time(cpu{host!="c"}[1h]))"#,
        q.time_range(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(native.series, promql.series);
    assert_eq!(native.series.len(), 1);
    assert_eq!(native.series[0].points.len(), 13);
    assert_eq!(native.stats.series_touched, 2);
}

struct AlwaysRollup;

impl SourcePlanner for AlwaysRollup {
    fn source_for(&self, _: &Selection, _: &TimeRange) -> Source {
        Source::Rollup { resolution_ms: 300_000 }
    }
}

/// A planner may ask for a rollup tier the data does not have (yet): the answer comes
/// from raw data and equals the raw planner's.
#[test]
fn a_rollup_source_without_tiers_falls_back_to_raw() {
    let db = open();
    db.write(&labels("cpu", &[]), &[s(0, 1.0), s(HOUR / 2, 3.0), s(HOUR, 5.0)]);
    let plan = parse_promql("avg_over_time(cpu[1h])").unwrap();
    let range = TimeRange { start: 0, end: HOUR, step: HOUR };
    let rollup = evaluate_with(&db.engine, &plan, range, &Limits::default(), &AlwaysRollup).unwrap();
    let raw = query_range(&db.engine, "avg_over_time(cpu[1h])", range, &Limits::default()).unwrap();
    assert_eq!(rollup.series, raw.series);
    assert_eq!(rollup.series[0].points, vec![(0, 1.0), (HOUR, 4.0)]);
}

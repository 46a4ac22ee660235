//! The facade answers range queries: PromQL and the native API agree with values computed
//! by hand from the raw samples, across head and sealed blocks; bad PromQL is an error.

use chronolith::query::{AggOp, Aggregation, Grouping, Limits, RangeQuery, TimeRange, WindowFn};
use chronolith::{Batch, Db, Labels, Matcher, Options};

#[test]
fn promql_max_per_hour_matches_raw_samples() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Options::default())?;
    let hour = 3_600_000i64;
    let t0 = 1_700_000_000_000 / hour * hour;
    let mut batch = Batch::new();
    // Two hosts, a sample a minute for 6 hours; value = minute index (host b doubled).
    for m in 0..360i64 {
        batch.add_labels(Labels::metric("cpu", [("host", "a")])?, t0 + m * 60_000, m as f64);
        batch.add_labels(Labels::metric("cpu", [("host", "b")])?, t0 + m * 60_000, 2.0 * m as f64);
    }
    db.append(&batch)?;
    db.seal()?; // everything into blocks; then two more hours in the head
    batch.clear();
    for m in 360..480i64 {
        batch.add_labels(Labels::metric("cpu", [("host", "a")])?, t0 + m * 60_000, m as f64);
        batch.add_labels(Labels::metric("cpu", [("host", "b")])?, t0 + m * 60_000, 2.0 * m as f64);
    }
    db.append(&batch)?;

    let range = TimeRange { start: t0 + hour, end: t0 + 8 * hour, step: hour };
    let r = db.query_promql("max by (host) (max_over_time(cpu[1h]))", range, &Limits::default())?;
    assert_eq!(r.series.len(), 2);
    // Left-open windows (t - 1h, t]: the sample at t itself counts, so the window ending
    // h hours in holds minutes up to 60h (the data ends at minute 479).
    let expected =
        |k: f64| -> Vec<(i64, f64)> { (1..=8).map(|h| (t0 + h * hour, k * (h * 60).min(479) as f64)).collect() };
    for s in &r.series {
        let k = if s.labels.get("host") == "b" { 2.0 } else { 1.0 };
        assert_eq!(s.points, expected(k), "{}", s.labels);
    }
    // The native API gives the same answer.
    let native = RangeQuery {
        matchers: vec![Matcher::metric("cpu")],
        start: range.start,
        end: range.end,
        step: range.step,
        range: hour,
        func: WindowFn::Max,
        agg: Some(Aggregation { op: AggOp::Max, grouping: Grouping::By(vec!["host".into()]) }),
    };
    let n = db.query(&native, &Limits::default())?;
    assert_eq!(n.series.iter().map(|s| s.points.clone()).collect::<Vec<_>>(), vec![expected(1.0), expected(2.0)]);
    assert!(r.stats.samples_scanned > 0);

    let err = db.query_promql("cpu offset 5m", range, &Limits::default());
    assert!(err.is_err(), "offset is outside the subset and must be refused");
    Ok(())
}

//! Table tests of the exact semantics: left-open windows, lookback and staleness,
//! counter resets and extrapolation, empty ranges and single samples, head + blocks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chronolith_query::{query_range, Error, Limits, QueryResult, TimeRange};
use common::{labels, open, s, TestDb, STALE};

const S: i64 = 1000;

fn q(db: &TestDb, promql: &str, start: i64, end: i64, step: i64) -> QueryResult {
    query_range(&db.engine, promql, TimeRange { start, end, step }, &Limits::unlimited())
        .unwrap_or_else(|e| panic!("{promql}: {e}"))
}

/// The points of the only result series (empty when there is none).
fn points(db: &TestDb, promql: &str, start: i64, end: i64, step: i64) -> Vec<(i64, f64)> {
    let r = q(db, promql, start, end, step);
    assert!(r.series.len() <= 1, "{promql}: {} series", r.series.len());
    r.series.into_iter().next().map(|s| s.points).unwrap_or_default()
}

fn assert_close(got: &[(i64, f64)], want: &[(i64, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.0, w.0, "{what}: timestamps: got {got:?}, want {want:?}");
        assert!((g.1 - w.1).abs() <= 1e-9 * w.1.abs().max(1.0), "{what}: got {got:?}, want {want:?}");
    }
}

/// One sample every 10 s from 0 to 100 s, value = seconds.
fn regular() -> TestDb {
    let db = open();
    let samples: Vec<_> = (0..=10).map(|i| s(i * 10 * S, (i * 10) as f64)).collect();
    db.write(&labels("m", &[("host", "a")]), &samples);
    db
}

#[test]
fn sample_on_left_edge_is_excluded_and_on_right_edge_included() {
    let db = regular();
    // (10 s, 20 s] holds only the sample at 20 s.
    assert_close(&points(&db, "count_over_time(m[10s])", 20 * S, 20 * S, S), &[(20 * S, 1.0)], "10s window");
    assert_close(&points(&db, "min_over_time(m[10s])", 20 * S, 20 * S, S), &[(20 * S, 20.0)], "min");
    // (0, 20 s]: 10 s and 20 s; the sample at 0 sits on the left edge.
    assert_close(&points(&db, "count_over_time(m[20s])", 20 * S, 20 * S, S), &[(20 * S, 2.0)], "20s window");
    // One millisecond later the window (1 ms, 20.001 s] still holds 10 s and 20 s.
    assert_close(&points(&db, "sum_over_time(m[20s])", 20 * S + 1, 20 * S + 1, S), &[(20 * S + 1, 30.0)], "sum");
    // first/last pick the oldest/newest inside the window and keep the metric name.
    let r = q(&db, "first_over_time(m[30s])", 50 * S, 50 * S, S);
    assert_eq!(r.series[0].labels.metric_name(), "m");
    assert_close(&r.series[0].points, &[(50 * S, 30.0)], "first");
    let r = q(&db, "max_over_time(m[30s])", 50 * S, 50 * S, S);
    assert_eq!(r.series[0].labels.metric_name(), "", "max_over_time drops __name__");
}

#[test]
fn steps_walk_the_grid_and_gaps_give_no_point() {
    let db = open();
    let l = labels("g", &[]);
    db.write(&l, &[s(0, 1.0), s(10 * S, 2.0), s(60 * S, 3.0)]);
    let got = points(&db, "last_over_time(g[15s])", 0, 70 * S, 10 * S);
    let want = [(0, 1.0), (10 * S, 2.0), (20 * S, 2.0), (60 * S, 3.0), (70 * S, 3.0)];
    assert_close(&got, &want, "gaps");
}

#[test]
fn instant_selector_looks_back_five_minutes_left_open() {
    let db = open();
    db.write(&labels("up", &[]), &[s(0, 1.0)]);
    let five_min = 300 * S;
    let got = points(&db, "up", five_min - 1, five_min, 1);
    assert_close(&got, &[(five_min - 1, 1.0)], "a sample exactly 5 m old is out of the lookback");
    assert!(points(&db, "up", -1, -1, 1).is_empty(), "nothing before the first sample");
}

#[test]
fn stale_marker_ends_the_series_for_instant_selectors_and_is_skipped_in_windows() {
    let db = open();
    db.write(&labels("up", &[]), &[s(0, 1.0), s(10 * S, STALE), s(30 * S, 2.0)]);
    let got = points(&db, "up", 0, 40 * S, 5 * S);
    let want = [(0, 1.0), (5 * S, 1.0), (30 * S, 2.0), (35 * S, 2.0), (40 * S, 2.0)];
    assert_close(&got, &want, "staleness");
    // In a range the marker is dropped: (−1 s, 29 s] holds only the sample at 0.
    assert_close(&points(&db, "count_over_time(up[30s])", 29 * S, 29 * S, S), &[(29 * S, 1.0)], "count");
    // An ordinary NaN is a value, not a marker.
    db.write(&labels("not_a_number", &[]), &[s(0, f64::NAN)]);
    let got = points(&db, "not_a_number", 0, 0, 1);
    assert!(got.len() == 1 && got[0].1.is_nan(), "{got:?}");
}

#[test]
fn counter_resets_and_extrapolation_follow_prometheus() {
    let db = open();
    db.write(&labels("c", &[]), &[s(0, 10.0), s(10 * S, 20.0), s(20 * S, 5.0), s(30 * S, 15.0)]);
    // increase: 15 - 10 + 20 (the reset) = 25, extrapolated by (30 + 10 + 0) / 30.
    let inc = 25.0 * 40.0 / 30.0;
    assert_close(&points(&db, "increase(c[40s])", 30 * S, 30 * S, S), &[(30 * S, inc)], "increase");
    assert_close(&points(&db, "rate(c[40s])", 30 * S, 30 * S, S), &[(30 * S, inc / 40.0)], "rate");
    assert_close(&points(&db, "resets(c[40s])", 30 * S, 30 * S, S), &[(30 * S, 1.0)], "resets");
    assert_close(&points(&db, "changes(c[40s])", 30 * S, 30 * S, S), &[(30 * S, 3.0)], "changes");
    // irate after a reset uses the post-reset value: 5 / 10 s.
    assert_close(&points(&db, "irate(c[25s])", 20 * S, 20 * S, S), &[(20 * S, 0.5)], "irate");
    // delta does not correct resets: (15 - 10) * 40 / 30.
    assert_close(&points(&db, "delta(c[40s])", 30 * S, 30 * S, S), &[(30 * S, 5.0 * 40.0 / 30.0)], "delta");
}

#[test]
fn extrapolation_stops_half_an_interval_past_a_distant_edge_and_at_zero() {
    let db = open();
    db.write(&labels("g", &[]), &[s(10 * S, 1.0), s(20 * S, 3.0)]);
    // to_start 10 s < 1.1 x 10 s: full; to_end 40 s: half an interval (5 s).
    assert_close(&points(&db, "delta(g[60s])", 60 * S, 60 * S, S), &[(60 * S, 2.0 * 25.0 / 10.0)], "delta");
    // As a counter the zero point is 5 s before the first sample: start shortened to 5 s.
    assert_close(&points(&db, "increase(g[60s])", 60 * S, 60 * S, S), &[(60 * S, 2.0 * 20.0 / 10.0)], "increase");
}

#[test]
fn single_samples_and_empty_ranges() {
    let db = open();
    db.write(&labels("one", &[]), &[s(5 * S, 7.0)]);
    for f in ["rate", "increase", "delta", "irate", "idelta", "deriv"] {
        assert!(points(&db, &format!("{f}(one[1m])"), 10 * S, 10 * S, S).is_empty(), "{f} of one sample");
    }
    assert_close(&points(&db, "avg_over_time(one[1m])", 10 * S, 10 * S, S), &[(10 * S, 7.0)], "avg");
    assert_close(&points(&db, "stddev_over_time(one[1m])", 10 * S, 10 * S, S), &[(10 * S, 0.0)], "stddev");
    assert!(q(&db, "max_over_time(one[1m])", 100 * S, 200 * S, S).series.is_empty(), "after the data");
    assert!(q(&db, "max_over_time(nothing[1m])", 0, 200 * S, S).series.is_empty(), "no series");
}

#[test]
fn reads_span_sealed_blocks_and_the_head() {
    let db = open();
    let l = labels("m", &[]);
    db.write(&l, &[s(0, 1.0), s(10 * S, 2.0)]);
    db.seal();
    db.write(&l, &[s(20 * S, 3.0), s(30 * S, 4.0)]);
    assert_close(&points(&db, "sum_over_time(m[1m])", 30 * S, 30 * S, S), &[(30 * S, 10.0)], "sum");
    assert_close(&points(&db, "deriv(m[1m])", 30 * S, 30 * S, S), &[(30 * S, 0.1)], "deriv");
}

#[test]
fn aggregation_labels_and_arithmetic() {
    let db = open();
    for (host, dc, v) in [("a", "x", 1.0), ("b", "x", 2.0), ("c", "y", 4.0)] {
        db.write(&labels("m", &[("host", host), ("dc", dc)]), &[s(0, v)]);
    }
    let r = q(&db, "sum by (dc) (m)", 0, 0, 1);
    let got: Vec<_> = r.series.iter().map(|s| (s.labels.to_string(), s.points[0].1)).collect();
    assert_eq!(got, vec![(r#"{dc="x"}"#.to_string(), 3.0), (r#"{dc="y"}"#.to_string(), 4.0)]);
    let r = q(&db, "max without (host) (m)", 0, 0, 1);
    assert_eq!(r.series.len(), 2);
    assert_eq!(r.series[0].labels.to_string(), r#"{dc="x"}"#, "without drops __name__ too");
    let r = q(&db, "topk(1, m)", 0, 0, 1);
    assert_eq!(r.series.len(), 1);
    assert_eq!(r.series[0].labels.get("host"), "c");
    assert_eq!(r.series[0].labels.metric_name(), "m", "topk keeps the input labels");
    let r = q(&db, "bottomk by (dc) (1, m)", 0, 0, 1);
    let hosts: Vec<_> = r.series.iter().map(|s| s.labels.get("host").to_string()).collect();
    assert_eq!(hosts, ["a", "c"]);
    assert_close(&points(&db, "count(m)", 0, 0, 1), &[(0, 3.0)], "count");
    assert_close(&points(&db, "quantile(0.5, m)", 0, 0, 1), &[(0, 2.0)], "quantile");
    assert_close(&points(&db, "avg(m) * 2 - 1", 0, 0, 1), &[(0, 14.0 / 3.0 - 1.0)], "arith");
    assert_close(&points(&db, "10 / sum(m)", 0, 0, 1), &[(0, 10.0 / 7.0)], "scalar on the left");
    let r = q(&db, "m{host=\"a\"} * 60", 0, 0, 1);
    assert_eq!(r.series[0].labels.metric_name(), "", "arithmetic drops __name__");
}

#[test]
fn dropping_the_name_of_two_metrics_with_equal_labels_is_an_error() {
    let db = open();
    db.write(&labels("a", &[("h", "1")]), &[s(0, 1.0), s(10 * S, 2.0)]);
    db.write(&labels("b", &[("h", "1")]), &[s(0, 1.0), s(10 * S, 2.0)]);
    let r = query_range(
        &db.engine,
        r#"rate({__name__=~"a|b"}[1m])"#,
        TimeRange { start: 10 * S, end: 10 * S, step: S },
        &Limits::unlimited(),
    );
    assert!(matches!(r, Err(Error::DuplicateLabelSet(_))), "{r:?}");
    // last_over_time keeps the name, so the series stay apart.
    assert_eq!(q(&db, r#"last_over_time({__name__=~"a|b"}[1m])"#, 10 * S, 10 * S, S).series.len(), 2);
}

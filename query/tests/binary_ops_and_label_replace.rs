//! Operations between two vectors (one-to-one arithmetic with on/ignoring, and/or/unless)
//! and label_replace, checked against values worked out by hand with Prometheus's rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chronolith_query::{query_range, Error, Limits, QueryResult, TimeRange};
use common::{labels, open, s, TestDb};

const S: i64 = 1000;

fn q(db: &TestDb, promql: &str) -> Result<QueryResult, Error> {
    query_range(&db.engine, promql, TimeRange { start: 0, end: 20 * S, step: 10 * S }, &Limits::unlimited())
}

/// `(labels as text, points)` of every result series.
fn rows(db: &TestDb, promql: &str) -> Vec<(String, Vec<(i64, f64)>)> {
    let r = q(db, promql).unwrap_or_else(|e| panic!("{promql}: {e}"));
    r.series.into_iter().map(|s| (s.labels.to_string(), s.points)).collect()
}

/// used{host=a,b} and total{host=a,b}; `total{host="b"}` has no sample at 20 s;
/// `spare{host=c}` matches nothing on the other side.
fn db() -> TestDb {
    let db = open();
    db.write(&labels("used", &[("host", "a"), ("dc", "x")]), &[s(0, 1.0), s(10 * S, 2.0), s(20 * S, 3.0)]);
    db.write(&labels("used", &[("host", "b"), ("dc", "x")]), &[s(0, 5.0), s(10 * S, 6.0), s(20 * S, 7.0)]);
    db.write(&labels("total", &[("host", "a"), ("dc", "y")]), &[s(0, 10.0), s(10 * S, 10.0), s(20 * S, 10.0)]);
    db.write(&labels("total", &[("host", "b"), ("dc", "y")]), &[s(0, 20.0), s(10 * S, 20.0)]);
    db.write(&labels("spare", &[("host", "c"), ("dc", "x")]), &[s(0, 9.0)]);
    // The 5 min lookback would carry total{host="b"} to 20 s; a stale marker ends it.
    db.write(
        &labels("total", &[("host", "b"), ("dc", "y")]),
        &[s(15 * S, f64::from_bits(chronolith_query::STALE_NAN_BITS))],
    );
    db
}

#[test]
fn division_matches_on_the_named_labels_and_keeps_only_them() {
    let db = db();
    assert_eq!(
        rows(&db, "used / on(host) total"),
        vec![
            ("{host=\"a\"}".to_string(), vec![(0, 0.1), (10 * S, 0.2), (20 * S, 0.3)]),
            ("{host=\"b\"}".to_string(), vec![(0, 0.25), (10 * S, 0.3)]),
        ]
    );
    // ignoring(dc): the left side's labels minus dc and __name__.
    assert_eq!(
        rows(&db, "used - ignoring(dc) total")[0],
        ("{host=\"a\"}".to_string(), vec![(0, -9.0), (10 * S, -8.0), (20 * S, -7.0)])
    );
    // Without a clause, dc differs, so nothing pairs up.
    assert!(rows(&db, "used + total").is_empty());
}

#[test]
fn many_to_many_is_an_error_naming_the_fix() {
    let db = db();
    match q(&db, "used / on(dc) spare") {
        Err(Error::InvalidQuery(m)) => assert!(m.contains("many-to-many") && m.contains("on(...)"), "{m}"),
        other => panic!("expected many-to-many error, got {other:?}"),
    }
}

#[test]
fn set_operators_compare_signatures_step_by_step() {
    let db = db();
    let hosts = |r: Vec<(String, Vec<(i64, f64)>)>| r.into_iter().map(|(l, p)| (l, p.len())).collect::<Vec<_>>();
    // `and`: used where total (same host, ignoring dc) has a value at that step.
    assert_eq!(
        hosts(rows(&db, "used and ignoring(dc) total")),
        vec![("used{dc=\"x\", host=\"a\"}".into(), 3), ("used{dc=\"x\", host=\"b\"}".into(), 2)]
    );
    // `unless`: host b's step at 20 s only.
    assert_eq!(
        rows(&db, "used unless on(host) total"),
        vec![("used{dc=\"x\", host=\"b\"}".into(), vec![(20 * S, 7.0)])]
    );
    // `or`: all of the left, plus right-hand elements whose signature the left lacks.
    let or = rows(&db, "spare or on(host) used");
    assert_eq!(or.len(), 3, "{or:?}");
    assert_eq!(or[0].0, "spare{dc=\"x\", host=\"c\"}");
}

#[test]
fn label_replace_rewrites_with_captures_and_leaves_non_matches() {
    let db = db();
    let r = rows(&db, r#"label_replace(used, "site", "dc-$1", "dc", "(x)")"#);
    assert_eq!(r[0].0, "used{dc=\"x\", host=\"a\", site=\"dc-x\"}");
    let r = rows(&db, r#"label_replace(used, "site", "z", "dc", "nomatch")"#);
    assert_eq!(r[0].0, "used{dc=\"x\", host=\"a\"}");
    // An empty source matches `""`, as used in the shared benchmark's union queries.
    let r = rows(
        &db,
        r#"max(label_replace(max_over_time(used[1m]), "m", "u", "", "") or label_replace(max_over_time(total[1m]), "m", "t", "", ""))"#,
    );
    assert_eq!(r, vec![("{}".to_string(), vec![(0, 20.0), (10 * S, 20.0), (20 * S, 20.0)])]);
    assert!(matches!(q(&db, r#"label_replace(used, "1bad", "", "dc", "x")"#), Err(Error::InvalidQuery(_))));
    assert!(matches!(q(&db, r#"label_replace(used, "a", "", "dc", "(")"#), Err(Error::InvalidQuery(_))));
}

//! Found by probing `parse_promql` the way the `promql_eval` fuzz target does, with longer
//! inputs than the fuzzer had reached: a chain of 1,600 `+` (or 10,000 nested parentheses
//! or unary minuses) overflowed the stack inside the parser and aborted the whole process,
//! so one hostile query could take a server down. Such queries are now refused with a typed
//! error before parsing (`chronolith_query` `promql_depth`), on the test's 2 MiB thread
//! too, while queries at the bounds still parse.
#![allow(clippy::unwrap_used, clippy::panic)]

use chronolith::query::{parse_promql, Error, Limits, TimeRange};
use chronolith::{Batch, Db, Labels, Options};

fn chain(n: usize, op: &str) -> String {
    (0..=n).map(|_| "up").collect::<Vec<_>>().join(op)
}

#[test]
fn deep_or_long_queries_are_refused_not_a_crash() {
    for q in [
        chain(1_600, " + "),
        chain(100_000, "*"),
        chain(5_000, " or "),
        format!("{}up{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("{}up{}", "abs(".repeat(10_000), ")".repeat(10_000)),
        format!("{}up", "-".repeat(10_000)),
        format!("{}up", "-(".repeat(5_000)),
    ] {
        match parse_promql(&q) {
            Err(Error::InvalidQuery(m)) => assert!(m.contains("at most"), "{m}"),
            other => panic!("{} bytes: expected a refusal, got {other:?}", q.len()),
        }
    }
}

#[test]
fn queries_at_the_bounds_parse_and_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut b = Batch::new();
    for t in 0..20 {
        b.add_labels(Labels::metric("up", [("job", "a")]).unwrap(), t * 15_000, 1.0);
    }
    db.append(&b).unwrap();
    let range = TimeRange { start: 0, end: 285_000, step: 15_000 };
    let sum = db.query_promql(&chain(200, " + "), range, &Limits::default()).unwrap();
    assert_eq!(sum.series[0].points[0].1, 201.0);
    let nested = format!("{}up{}", "sum(".repeat(200), ")".repeat(200));
    assert_eq!(db.query_promql(&nested, range, &Limits::default()).unwrap().series.len(), 1);
    db.close().unwrap();
}

#[test]
fn queries_at_the_bounds_still_parse() {
    assert!(parse_promql(&chain(200, " + ")).is_ok());
    assert!(parse_promql(&format!("{}up{}", "(".repeat(200), ")".repeat(200))).is_ok());
    let nested_sums = format!("{}up{}", "sum(".repeat(200), ")".repeat(200));
    assert!(parse_promql(&nested_sums).is_ok(), "{:?}", parse_promql(&nested_sums).err());
}

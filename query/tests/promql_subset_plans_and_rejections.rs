//! Parser tests: every supported construct lowers to the expected plan; everything else
//! is refused with an error naming the construct and where it is.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chronolith_engine::MatchOp;
use chronolith_query::{parse_promql, AggOp, ArithOp, Error, Grouping, Plan, SeriesFn, WindowFn, DEFAULT_LOOKBACK_MS};

fn plan(q: &str) -> Plan {
    parse_promql(q).unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn selection(p: &Plan) -> (&SeriesFn, Vec<(String, MatchOp, String)>) {
    match p {
        Plan::Select(s) => (&s.func, s.matchers.iter().map(|m| (m.name.clone(), m.op, m.value.clone())).collect()),
        other => panic!("not a selection: {other:?}"),
    }
}

#[test]
fn window_functions_lower_to_a_windowed_selection() {
    let cases = [
        ("min_over_time(m[5m])", WindowFn::Min),
        ("max_over_time(m[1h])", WindowFn::Max),
        ("sum_over_time(m[5m])", WindowFn::Sum),
        ("count_over_time(m[5m])", WindowFn::Count),
        ("avg_over_time(m[5m])", WindowFn::Avg),
        ("first_over_time(m[5m])", WindowFn::First),
        ("last_over_time(m[5m])", WindowFn::Last),
        ("stddev_over_time(m[5m])", WindowFn::Stddev),
        ("stdvar_over_time(m[5m])", WindowFn::Stdvar),
        ("quantile_over_time(0.9, m[5m])", WindowFn::Quantile(0.9)),
        ("changes(m[5m])", WindowFn::Changes),
        ("resets(m[5m])", WindowFn::Resets),
        ("rate(m[5m])", WindowFn::Rate),
        ("increase(m[5m])", WindowFn::Increase),
        ("delta(m[5m])", WindowFn::Delta),
        ("irate(m[5m])", WindowFn::Irate),
        ("idelta(m[5m])", WindowFn::Idelta),
        ("deriv(m[5m])", WindowFn::Deriv),
    ];
    for (q, want) in cases {
        let p = plan(q);
        let (func, _) = selection(&p);
        let SeriesFn::Window { func, range_ms } = func else { panic!("{q}: {func:?}") };
        assert_eq!(*func, want, "{q}");
        let want_range = if q.contains("[1h]") { 3_600_000 } else { 300_000 };
        assert_eq!(*range_ms, want_range, "{q}");
    }
}

#[test]
fn selectors_keep_every_matcher_kind() {
    let p = plan(r#"cpu{host="a", dc!="b", rack=~"r.*", os!~"win.*"}"#);
    let (func, matchers) = selection(&p);
    assert_eq!(*func, SeriesFn::Instant { lookback_ms: DEFAULT_LOOKBACK_MS });
    let ops: Vec<_> = matchers.iter().map(|m| (m.0.as_str(), m.1)).collect();
    assert_eq!(
        ops,
        [
            ("__name__", MatchOp::Equal),
            ("host", MatchOp::Equal),
            ("dc", MatchOp::NotEqual),
            ("rack", MatchOp::RegexMatch),
            ("os", MatchOp::RegexNoMatch)
        ]
    );
}

#[test]
fn aggregations_with_grouping_and_parameters() {
    let cases = [
        ("sum by (host) (rate(m[5m]))", AggOp::Sum, Grouping::By(vec!["host".into()])),
        ("max without (cpu) (m)", AggOp::Max, Grouping::Without(vec!["cpu".into()])),
        ("min(m)", AggOp::Min, Grouping::By(vec![])),
        ("avg(m) by (a, b)", AggOp::Avg, Grouping::By(vec!["a".into(), "b".into()])),
        ("count(m)", AggOp::Count, Grouping::By(vec![])),
        ("topk(3, m)", AggOp::Topk(3.0), Grouping::By(vec![])),
        ("bottomk by (x) (2, m)", AggOp::Bottomk(2.0), Grouping::By(vec!["x".into()])),
        ("quantile(0.5, m)", AggOp::Quantile(0.5), Grouping::By(vec![])),
        ("max(max_over_time(m[1h]))", AggOp::Max, Grouping::By(vec![])),
    ];
    for (q, op, grouping) in cases {
        let Plan::Aggregate { agg, .. } = plan(q) else { panic!("{q}") };
        assert_eq!((agg.op, agg.grouping), (op, grouping), "{q}");
    }
}

#[test]
fn scalar_arithmetic_folds_constants() {
    let Plan::Arith { op, scalar, scalar_left, .. } = plan("rate(m[1m]) * (60 * 2)") else { panic!() };
    assert_eq!((op, scalar, scalar_left), (ArithOp::Mul, 120.0, false));
    let Plan::Arith { op, scalar, scalar_left, .. } = plan("100 - avg(m)") else { panic!() };
    assert_eq!((op, scalar, scalar_left), (ArithOp::Sub, 100.0, true));
    let Plan::Arith { op, scalar, .. } = plan("-m") else { panic!() };
    assert_eq!((op, scalar), (ArithOp::Mul, -1.0));
    assert!(matches!(plan("(m) ^ 2 % 3"), Plan::Arith { op: ArithOp::Mod, .. }));
}

#[test]
fn unsupported_constructs_are_named_with_their_position() {
    let cases: [(&str, &str, usize); 13] = [
        ("a / on(x) group_left b", "group_left/group_right", 10),
        ("abs(m)", "function `abs`", 0),
        ("sum(histogram_quantile(0.9, m))", "function `histogram_quantile`", 4),
        ("m offset 5m", "offset modifier", 2),
        ("m @ 100", "@ modifier", 2),
        ("max_over_time(m[5m:1m])", "subquery", 18),
        ("m > 5", "binary operator `>`", 2),
        ("stdvar(m)", "aggregation `stdvar`", 0),
        ("stddev(m)", "aggregation `stddev`", 0),
        ("count_values(\"v\", m)", "aggregation `count_values`", 0),
        ("m[5m]", "a range vector as the query result", 1),
        ("1 + 2", "a scalar-only expression", 0),
        ("rate(abs(m)[5m:])", "subquery", 14),
    ];
    for (q, construct, position) in cases {
        match parse_promql(q) {
            Err(Error::Unsupported { construct: c, position: p }) => {
                assert_eq!((c.as_str(), p), (construct, Some(position)), "{q}")
            }
            other => panic!("{q}: expected unsupported {construct}, got {other:?}"),
        }
    }
}

#[test]
fn syntax_errors_are_parse_errors() {
    for q in ["sum(", "rate(m)", "m{", "max_over_time(m[5x])"] {
        assert!(matches!(parse_promql(q), Err(Error::Parse(_))), "{q}: {:?}", parse_promql(q));
    }
}

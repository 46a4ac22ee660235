//! Each limit, when crossed, is its own typed error saying which and by how much.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chronolith_query::{query_range, Error, Limit, Limits, TimeRange};
use common::{labels, open, s, TestDb};
use std::time::Duration;

fn db() -> TestDb {
    let db = open();
    for host in ["a", "b", "c"] {
        let samples: Vec<_> = (0..100).map(|i| s(i * 1000, i as f64)).collect();
        db.write(&labels("m", &[("host", host)]), &samples);
    }
    db
}

fn run(db: &TestDb, q: &str, limits: Limits) -> Result<u64, Error> {
    query_range(&db.engine, q, TimeRange { start: 0, end: 99_000, step: 1000 }, &limits)
        .map(|r| r.stats.points_returned)
}

#[test]
fn every_limit_names_itself_and_the_overshoot() {
    let db = db();
    assert_eq!(run(&db, "m", Limits::unlimited()).ok(), Some(300));

    let r = run(&db, "m", Limits { series_touched_max: 2, ..Limits::unlimited() });
    assert!(matches!(r, Err(Error::LimitExceeded { limit: Limit::SeriesTouched, max: 2, seen: 3 })), "{r:?}");

    let r = run(&db, "max_over_time(m[1m])", Limits { samples_scanned_max: 150, ..Limits::unlimited() });
    match r {
        Err(e @ Error::LimitExceeded { limit: Limit::SamplesScanned, max: 150, seen }) => {
            assert!(seen > 150, "{seen}");
            assert!(e.to_string().contains("samples_scanned_max = 150 exceeded by at least"), "{e}");
        }
        other => panic!("{other:?}"),
    }

    let r = run(&db, "m", Limits { points_returned_max: 299, ..Limits::unlimited() });
    assert!(matches!(r, Err(Error::LimitExceeded { limit: Limit::PointsReturned, max: 299, seen: 300 })), "{r:?}");
    assert_eq!(run(&db, "sum(m)", Limits { points_returned_max: 100, ..Limits::unlimited() }).ok(), Some(100));

    let r = run(&db, "m", Limits { steps_max: 99, ..Limits::unlimited() });
    assert!(matches!(r, Err(Error::LimitExceeded { limit: Limit::Steps, max: 99, seen: 100 })), "{r:?}");

    let r = run(&db, "m", Limits { deadline: Some(Duration::ZERO), ..Limits::unlimited() });
    assert!(matches!(r, Err(Error::DeadlineExceeded { deadline_ms: 0, .. })), "{r:?}");
}

#[test]
fn bad_grids_are_invalid_queries() {
    let db = db();
    for (start, end, step) in [(0, 10, 0), (10, 0, 1), (0, 10, -5)] {
        let r = query_range(&db.engine, "m", TimeRange { start, end, step }, &Limits::unlimited());
        assert!(matches!(r, Err(Error::InvalidQuery(_))), "{r:?}");
    }
}

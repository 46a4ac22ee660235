//! PromQL parsing and evaluation on arbitrary query text over a small engine built once
//! (three metrics: a counter with resets, a gauge with NaN and a stale marker, a sparse
//! series, over a few label values), with a time range taken from the input and tight
//! limits. Parsing returns a plan or a typed error; evaluation returns a result or a
//! typed error (limits included), never a panic.
#![no_main]

use chronolith_engine::{Batch, Durability, Engine, Labels, Options};
use chronolith_query::{evaluate, parse_promql, Limits, TimeRange, STALE_NAN_BITS};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::Duration;

const BASE: i64 = 1_700_000_000_000;
const STEP: i64 = 15_000;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<(tempfile::TempDir, Engine)> = OnceLock::new();
    &ENGINE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
            let opts = Options { durability: Durability::Never, ..Options::default() };
            let e = Engine::open(dir.path(), opts).unwrap_or_else(|e| panic!("open: {e}"));
            let mut b = Batch::new();
            for i in 0..240i64 {
                let t = BASE + i * STEP;
                for host in ["a", "b", "c"] {
                    let l = |m: &str, extra: (&str, &str)| {
                        Labels::metric(m, [("host", host), extra]).unwrap_or_else(|e| panic!("labels: {e}"))
                    };
                    b.add_labels(l("requests_total", ("code", "200")), t, ((i * 7) % 100) as f64);
                    let gauge = match i % 50 {
                        13 => f64::NAN,
                        49 => f64::from_bits(STALE_NAN_BITS),
                        _ => (i as f64).sin() * 10.0,
                    };
                    b.add_labels(l("temperature", ("room", "x")), t, gauge);
                    if i % 17 == 0 {
                        b.add_labels(l("sparse", ("k", "v")), t, i as f64);
                    }
                }
            }
            e.append(&b).unwrap_or_else(|e| panic!("append: {e}"));
            (dir, e)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<3>() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let Ok(plan) = parse_promql(text) else { return };
    let start = BASE + (i64::from(head[0]) - 64) * STEP;
    let end = start + i64::from(head[1]) * STEP;
    let step = (i64::from(head[2]) + 1) * 1_000;
    let limits = Limits {
        series_touched_max: 64,
        samples_scanned_max: 200_000,
        points_returned_max: 100_000,
        steps_max: 2_000,
        deadline: Some(Duration::from_secs(2)),
    };
    let _ = evaluate(engine(), &plan, TimeRange { start, end, step }, &limits);
});

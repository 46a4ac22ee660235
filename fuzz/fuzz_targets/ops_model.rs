//! Structure-aware: random operation sequences (append by labels or by ref, flush, seal,
//! crash = drop without close, clean reopen, select over a random range) against a
//! `BTreeMap` model of the acknowledged samples. The engine must return exactly the
//! acknowledged samples, before and after every crash and reopen; its per-sample verdicts
//! must agree with the model (a duplicate has a twin of the same value, a conflict one of
//! another value, a stored sample none); and nothing may panic.
#![no_main]

use chronolith_engine::{Batch, Durability, Engine, Labels, MatchOp, Matcher, Options, RejectReason, SeriesId};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

const SERIES: u8 = 4;
const BASE_T: i64 = 1_000_000;

#[derive(Arbitrary, Debug)]
enum Op {
    /// Samples at the model's newest time + `dt` (negative: out of order).
    Append { samples: Vec<(u8, i16, u8)>, by_ref: bool },
    Flush,
    Seal,
    Crash,
    Reopen,
    Select { series: u8, from: i16, len: u16 },
}

fn labels(s: u8) -> Labels {
    match Labels::metric("fz", [("s", (s % SERIES).to_string())]) {
        Ok(l) => l,
        Err(e) => panic!("labels: {e}"),
    }
}

fn options() -> Options {
    Options { partition_ms: 60_000, ooo_window_ms: 10_000, durability: Durability::Never, ..Options::default() }
}

struct Run {
    dir: tempfile::TempDir,
    engine: Option<Engine>,
    model: BTreeMap<(u8, i64), u64>,
    refs: BTreeMap<u8, SeriesId>,
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
        self.model.keys().map(|k| k.1).max().unwrap_or(BASE_T)
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
                        self.model.insert((s, t), v.to_bits());
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
}

fuzz_target!(|ops: Vec<Op>| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let engine = Engine::open(dir.path(), options()).unwrap_or_else(|e| panic!("open: {e}"));
    let mut run = Run { dir, engine: Some(engine), model: BTreeMap::new(), refs: BTreeMap::new() };
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
        }
    }
    run.check_all();
    run.reopen(false);
});

//! Helpers for the fault tests: an engine on a directory, a ledger of what was
//! acknowledged and what was merely tried, and the check that a reopened engine holds
//! every acknowledged sample and nothing that was never sent.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)]

use chronolith_engine::{Batch, Engine, Error, Labels, Matcher, Options};
use std::collections::BTreeMap;
use std::path::Path;

pub const SERIES: usize = 6;

/// A scratch directory for a fault test. The faults are injected, not real, so these
/// tests need no real disk: on tmpfs (`/dev/shm`, when writable) their many fsyncs cost
/// nothing and the cases run in a fraction of the time.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let on_shm = if shm.is_dir() { tempfile::tempdir_in(shm).ok() } else { None };
    on_shm.unwrap_or_else(|| tempfile::tempdir().unwrap())
}

pub fn options() -> Options {
    Options { partition_ms: 60_000, ooo_window_ms: 10_000, ..Options::default() }
}

pub fn open(dir: &Path) -> Engine {
    Engine::open(dir, options()).unwrap()
}

pub fn labels(s: usize) -> Labels {
    Labels::metric("fault_metric", [("series", s.to_string())]).unwrap()
}

/// Samples acknowledged (append returned `Ok` and stored or deduplicated them) and
/// samples tried (sent in any append, acknowledged or not), by (series, t) → value bits.
#[derive(Default, Debug)]
pub struct Ledger {
    pub acked: BTreeMap<(usize, i64), u64>,
    pub tried: BTreeMap<(usize, i64), u64>,
    pub failures: usize,
}

impl Ledger {
    /// Appends one sample per series at `t` (value derived from both) by labels, so a
    /// failure also exercises series creation. Returns the error, if any.
    pub fn append_round(&mut self, e: &Engine, t: i64) -> Result<(), Error> {
        let mut batch = Batch::new();
        for s in 0..SERIES {
            let v = value(s, t);
            batch.add_labels(labels(s), t, v);
            self.tried.insert((s, t), v.to_bits());
        }
        match e.append(&batch) {
            Ok(r) => {
                assert!(r.rejected.is_empty(), "{:?}", r.rejected);
                for s in 0..SERIES {
                    self.acked.insert((s, t), value(s, t).to_bits());
                }
                Ok(())
            }
            Err(err) => {
                self.failures += 1;
                Err(err)
            }
        }
    }

    /// Every acknowledged sample is there with its value; nothing was read that was never
    /// sent (a failed append's samples may or may not be there: they were never acknowledged).
    pub fn verify(&self, e: &Engine) {
        let got = read_all(e);
        for (k, v) in &self.acked {
            assert_eq!(got.get(k), Some(v), "acknowledged sample {k:?} lost");
        }
        for (k, v) in &got {
            assert_eq!(self.tried.get(k), Some(v), "read {k:?} = {v:#x}, which was never sent");
        }
    }
}

pub fn value(s: usize, t: i64) -> f64 {
    (s as f64) * 1000.0 + (t as f64) / 7.0
}

/// Everything the engine returns for the test metric; panics on a duplicate or a read error.
pub fn read_all(e: &Engine) -> BTreeMap<(usize, i64), u64> {
    let mut out = BTreeMap::new();
    for series in e.select(&[Matcher::metric("fault_metric")], i64::MIN, i64::MAX) {
        let series = series.unwrap();
        let s: usize = series.labels.get("series").parse().unwrap();
        for sample in &series.samples {
            assert!(out.insert((s, sample.t), sample.v.to_bits()).is_none(), "duplicate sample {s} @ {}", sample.t);
        }
    }
    out
}

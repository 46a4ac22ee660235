//! Ingest faster than the disk can take it. A slow disk is injected through the I/O seam
//! (`Fault::Delay`): every fsync and directory fsync of the data directory (WAL and
//! blocks) waits 10 ms and every block write 1 ms, so sealing drains the head far slower
//! than four writers fill it under the default durability (fsync per batch, group
//! commit). Then:
//!
//! - `append` answers `Error::Overloaded` (never anything else), each time only after
//!   waiting the configured `overload_wait_ms`;
//! - the head never holds more than its bound plus the batches in flight (one per
//!   writer, each at most the largest growth one such batch was measured to cause);
//! - every acknowledged sample is there after the fault clears and the database is
//!   reopened, and nothing that was refused or never sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fault_common;

use chronolith::{Batch, CompactionOptions, Db, Error, Labels, Matcher, Options, SeriesId};
use chronolith_wal::fault::{self, Fault, Op, Rule};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WRITERS: usize = 4;
const SERIES_PER_WRITER: usize = 250;
/// Timestamps per batch, 1 s apart.
const STEPS_PER_BATCH: i64 = 10;
const WAIT_MS: u64 = 150;
const HEAD_MAX: usize = 4 << 20;
const RUN: Duration = Duration::from_secs(3);

fn options() -> Options {
    Options {
        partition_ms: 60_000,
        ooo_window_ms: 120_000,
        head_bytes_max: HEAD_MAX,
        overload_wait_ms: WAIT_MS,
        compaction: CompactionOptions { background: false, ..CompactionOptions::default() },
        ..Options::default()
    }
}

fn labels(w: usize, s: usize) -> Labels {
    Labels::metric("load", [("writer", w.to_string()), ("s", s.to_string())]).unwrap()
}

fn value(w: usize, s: usize, t: i64) -> f64 {
    ((t / 1000 + (w * 31 + s) as i64) % 1000) as f64 * 0.25
}

/// One writer's batch at `t0`: all its series, `STEPS_PER_BATCH` timestamps.
fn batch(w: usize, refs: &[SeriesId], t0: i64) -> Batch {
    let mut b = Batch::with_capacity(refs.len() * STEPS_PER_BATCH as usize);
    for i in 0..STEPS_PER_BATCH {
        let t = t0 + i * 1000;
        for (s, id) in refs.iter().enumerate() {
            b.add(*id, t, value(w, s, t));
        }
    }
    b
}

fn create_series(db: &Db) -> Vec<Vec<SeriesId>> {
    (0..WRITERS).map(|w| (0..SERIES_PER_WRITER).map(|s| db.series_ref(&labels(w, s)).unwrap()).collect()).collect()
}

/// The largest head growth one writer's batch causes, appended alone on a fast disk.
fn batch_growth_max(dir: &Path) -> usize {
    let db = Db::open(dir, Options { head_bytes_max: usize::MAX / 2, ..options() }).unwrap();
    let refs = create_series(&db);
    let mut max = 0;
    for n in 0..120 {
        let before = db.stats().engine.head_bytes;
        db.append(&batch(0, &refs[0], n * STEPS_PER_BATCH * 1000)).unwrap();
        max = max.max(db.stats().engine.head_bytes.saturating_sub(before));
    }
    max as usize
}

#[derive(Default)]
struct Outcome {
    writer: usize,
    /// Acknowledged samples: (series, t).
    acked: Vec<(usize, i64)>,
    batches_acked: u64,
    overloaded: u64,
    /// Samples of acknowledged batches rejected one by one (out of bounds: a writer that
    /// waited fell behind the others by more than the out-of-order window).
    out_of_bounds: u64,
}

#[test]
fn slow_disk_turns_into_overloaded_answers_and_loses_nothing() {
    let root = fault_common::scratch_dir();
    let growth = batch_growth_max(&root.path().join("calibrate")) as u64;
    let dir = root.path().join("db");
    let db = Arc::new(Db::open(&dir, options()).unwrap());
    let refs = Arc::new(create_series(&db));
    let slow: Vec<_> = [(Op::Fsync, 10), (Op::SyncDir, 10)]
        .into_iter()
        .map(|(op, ms)| fault::inject(Rule::new(&dir, op, Fault::Delay { ms })))
        .chain([fault::inject(Rule::new(&dir.join("blocks"), Op::Write, Fault::Delay { ms: 1 }))])
        .collect();

    let clock = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let monitor = {
        let (db, stop, peak) = (db.clone(), stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                peak.fetch_max(db.stats().engine.head_bytes, Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, refs, clock, outcomes) = (db.clone(), refs.clone(), clock.clone(), outcomes.clone());
            std::thread::spawn(move || {
                let mut out = Outcome { writer: w, ..Outcome::default() };
                let started = Instant::now();
                while started.elapsed() < RUN {
                    let t0 = clock.fetch_add(STEPS_PER_BATCH * 1000, Relaxed);
                    let asked = Instant::now();
                    match db.append(&batch(w, &refs[w], t0)) {
                        Ok(r) => {
                            let n = refs[w].len();
                            let mut rejected = r.rejected.iter().map(|x| x.index).peekable();
                            for i in 0..n * STEPS_PER_BATCH as usize {
                                if rejected.peek() == Some(&i) {
                                    rejected.next();
                                    continue;
                                }
                                out.acked.push((i % n, t0 + (i / n) as i64 * 1000));
                            }
                            for x in &r.rejected {
                                assert_eq!(x.reason, chronolith::RejectReason::OutOfBounds, "writer {w} at {t0}");
                            }
                            out.out_of_bounds += r.rejected.len() as u64;
                            out.batches_acked += 1;
                        }
                        Err(Error::Overloaded { head_bytes, head_bytes_max, waited_ms }) => {
                            assert!(asked.elapsed() >= Duration::from_millis(WAIT_MS), "refused before waiting");
                            assert_eq!((head_bytes_max, waited_ms), (HEAD_MAX, WAIT_MS));
                            assert!(head_bytes > head_bytes_max);
                            out.overloaded += 1;
                        }
                        Err(e) => panic!("writer {w}: {e}"),
                    }
                }
                outcomes.lock().unwrap().push(out);
            })
        })
        .collect();
    for h in writers {
        h.join().unwrap();
    }
    stop.store(true, Relaxed);
    monitor.join().unwrap();
    drop(slow);

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    let overloaded: u64 = outcomes.iter().map(|o| o.overloaded).sum();
    let acked: u64 = outcomes.iter().map(|o| o.batches_acked).sum();
    let out_of_bounds: u64 = outcomes.iter().map(|o| o.out_of_bounds).sum();
    let peak = peak.load(Relaxed);
    let bound = HEAD_MAX as u64 + WRITERS as u64 * growth;
    eprintln!(
        "{acked} batches acknowledged ({out_of_bounds} samples of them out of bounds), {overloaded} refused as \
         overloaded; head peak {peak} bytes, bound {HEAD_MAX} + {WRITERS} x {growth} = {bound}"
    );
    assert!(overloaded > 0, "the slow disk never pushed back");
    assert!(acked > 0, "nothing got through");
    assert_eq!(db.stats().engine.overloaded, overloaded);
    assert!(peak <= bound, "head peaked at {peak} bytes, over {bound}");

    // Nothing acknowledged lost, nothing refused stored: after a seal and a reopen.
    db.seal().unwrap();
    Arc::into_inner(db).unwrap().close().unwrap();
    let db = Db::open(&dir, options()).unwrap();
    let mut got: BTreeMap<(usize, usize), Vec<(i64, u64)>> = BTreeMap::new();
    for s in db.select(&[Matcher::metric("load")], i64::MIN, i64::MAX) {
        let s = s.unwrap();
        let key = (s.labels.get("writer").parse().unwrap(), s.labels.get("s").parse().unwrap());
        got.insert(key, s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect());
    }
    let mut want: BTreeMap<(usize, usize), Vec<(i64, u64)>> = BTreeMap::new();
    for o in &outcomes {
        for &(s, t) in &o.acked {
            want.entry((o.writer, s)).or_default().push((t, value(o.writer, s, t).to_bits()));
        }
    }
    for v in want.values_mut() {
        v.sort_unstable();
    }
    let samples: usize = want.values().map(Vec::len).sum();
    assert_eq!(got.len(), want.len(), "series with samples");
    for (k, w) in &want {
        assert_eq!(got.get(k), Some(w), "writer {} series {}: acknowledged samples lost or extra ones read", k.0, k.1);
    }
    eprintln!("{samples} acknowledged samples verified after reopen");
    db.close().unwrap();
}

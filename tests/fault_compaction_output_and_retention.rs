//! ENOSPC, EIO and torn writes at every filesystem call of every compaction job: a merge
//! (temporary directory, `chunks`/`index`/`meta` create, every chunk write, fsyncs,
//! rename, directory fsyncs, then the parents' rename to `.deleted` and removal), a
//! downsample (the same for a rollup block) and a retention drop (rename, directory
//! fsync, removal). The fault fires once at the n-th call of its kind, for n = 0, 1, ...
//! until a pass no longer reaches an n-th call, so every call site is hit.
//!
//! Each time: the job returns a typed `Error::Io` (`is_storage_full()` for ENOSPC), no raw
//! sample is lost or stored twice (raw blocks never overlap, their sample counts add up
//! to the model), rollup tiers never cover a span twice, the next pass (fault cleared)
//! finishes the work, and after a crash the reopened directory reads the same, with no
//! `.tmp` or `.deleted` left behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod fault_common;

use chronolith::query::{self, Limits, RangeQuery, WindowFn};
use chronolith::{Batch, CompactionOptions, Db, Durability, Error, Labels, Matcher, Options, Retention, RollupTier};
use chronolith_compaction::{plan, run_job};
use chronolith_wal::fault::{self, Fault, Op, Rule};
use std::collections::BTreeMap;
use std::path::Path;

const STEP_MS: i64 = 10_000;
const END_MS: i64 = 600_000;
const SERIES: usize = 4;
const KEEP_RAW_MS: i64 = 300_000;

type Dump = BTreeMap<(usize, i64), u64>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Merge,
    Downsample,
    Retention,
}

fn options(kind: Kind) -> Options {
    let mut c = CompactionOptions { background: false, merge_ranges_ms: vec![], tiers: vec![], ..Default::default() };
    match kind {
        Kind::Merge => c.merge_ranges_ms = vec![180_000],
        Kind::Downsample => c.tiers = vec![RollupTier { resolution_ms: 10_000, after_ms: 0, span_ms: 300_000 }],
        Kind::Retention => c.retention = Retention { raw_ms: Some(KEEP_RAW_MS), ..Retention::default() },
    }
    Options {
        partition_ms: 60_000,
        ooo_window_ms: 5_000,
        durability: Durability::Never,
        compaction: c,
        ..Default::default()
    }
}

fn labels(s: usize) -> Labels {
    Labels::metric("m", [("s", s.to_string())]).unwrap()
}

fn value(s: usize, t: i64) -> f64 {
    if s == 0 {
        ((t / STEP_MS) % 37) as f64
    } else {
        (t % 7919) as f64 / 100.0 + s as f64
    }
}

/// Ten one-minute blocks of four series, sealed.
fn build(dir: &Path) -> Dump {
    let db = Db::open(dir, options(Kind::Merge)).unwrap();
    let mut model = Dump::new();
    let mut batch = Batch::new();
    for t in (0..END_MS).step_by(STEP_MS as usize) {
        for s in 0..SERIES {
            batch.add_labels(labels(s), t, value(s, t));
            model.insert((s, t), value(s, t).to_bits());
        }
    }
    db.append(&batch).unwrap();
    db.seal().unwrap();
    db.close().unwrap();
    std::fs::remove_file(dir.join("LOCK")).ok();
    model
}

fn dump(db: &Db) -> Dump {
    let mut out = Dump::new();
    for s in db.select(&[Matcher::metric("m")], i64::MIN, i64::MAX) {
        let s = s.unwrap();
        let k: usize = s.labels.get("s").parse().unwrap();
        for x in &s.samples {
            assert!(out.insert((k, x.t), x.v.to_bits()).is_none(), "duplicate read {k}@{}", x.t);
        }
    }
    out
}

/// Samples a finished retention keeps: those of partitions whose newest sample is at most
/// `KEEP_RAW_MS` older than the newest sample held.
fn retained(model: &Dump) -> Dump {
    let newest = END_MS - STEP_MS;
    let partition_max = |t: i64| t / 60_000 * 60_000 + 60_000 - STEP_MS;
    model.iter().filter(|((_, t), _)| partition_max(*t) >= newest - KEEP_RAW_MS).map(|(k, v)| (*k, *v)).collect()
}

/// The block set holds every raw sample once: raw blocks do not overlap and their sample
/// counts add up to what is read; rollup spans of one tier are disjoint.
fn check_block_set(db: &Db) {
    let set = db.engine().blocks().snapshot();
    let mut raw: Vec<(i64, i64, u64)> = set.raw().map(|b| (b.meta().min_t, b.meta().max_t, b.meta().samples)).collect();
    raw.sort_unstable();
    assert!(raw.windows(2).all(|w| w[0].1 < w[1].0), "raw blocks overlap: {raw:?}");
    let stored: u64 = raw.iter().map(|r| r.2).sum();
    assert_eq!(stored, dump(db).len() as u64, "raw blocks hold a sample twice or one the reads miss");
    for r in set.rollup_resolutions() {
        let mut covers: Vec<(i64, i64)> = set.rollups(r).map(|b| (b.meta().covers_from, b.meta().covers_to)).collect();
        covers.sort_unstable();
        assert!(covers.windows(2).all(|w| w[0].1 <= w[1].0), "tier {r} covers a span twice: {covers:?}");
    }
}

fn check_no_leftovers(dir: &Path) {
    for e in std::fs::read_dir(dir.join("blocks")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains('.'), "leftover {name} after open");
    }
}

/// Runs the first job the policy plans for `kind` now (every job of a kind makes the
/// same calls; the others are left to the passes that follow).
fn run_first_job(db: &Db, kind: Kind) -> Result<(), Error> {
    let e = db.engine();
    let set = e.blocks().snapshot();
    let opts = &e.options().compaction;
    let sealed = e.head().sealed_until();
    let newest = plan::newest_sample(e).unwrap();
    let jobs = match kind {
        Kind::Merge => plan::merges(&set, opts, sealed),
        Kind::Downsample => plan::downsamples(&set, opts, newest, sealed, 64),
        Kind::Retention => plan::retention(&set, opts, newest),
    };
    let job = jobs.first().unwrap_or_else(|| panic!("{kind:?}: nothing planned"));
    run_job(e, job).map(|_| ())
}

fn finish(db: &Db) {
    loop {
        let r = db.compact();
        assert_eq!(r.failures, 0, "{:?}", db.stats().compaction);
        if r.merges + r.downsamples + r.drops == 0 {
            break;
        }
    }
}

/// What must hold while the database is open: every sample the job must not remove is
/// read, nothing else, nothing twice.
fn check_reads(db: &Db, kind: Kind, model: &Dump, what: &str) {
    let got = dump(db);
    let must = if kind == Kind::Retention { retained(model) } else { model.clone() };
    for (k, v) in &must {
        assert_eq!(got.get(k), Some(v), "{what}: sample {k:?} lost");
    }
    for (k, v) in &got {
        assert_eq!(model.get(k), Some(v), "{what}: read {k:?}, which was never written");
    }
    check_block_set(db);
}

/// After the work is done: exactly what the policy keeps; rollups answer like raw data.
fn check_finished(db: &Db, kind: Kind, model: &Dump, what: &str) {
    let want = if kind == Kind::Retention { retained(model) } else { model.clone() };
    assert_eq!(dump(db), want, "{what}: reads after finishing");
    check_block_set(db);
    let set = db.engine().blocks().snapshot();
    match kind {
        Kind::Merge => assert_eq!(set.raw().count(), 4, "{what}: 3 merged blocks + 1 unmerged"),
        Kind::Downsample => {
            assert_eq!(set.rollups(10_000).count(), 2, "{what}: one rollup block per closed 5-minute span");
            let q = RangeQuery {
                matchers: vec![Matcher::metric("m")],
                start: 0,
                end: 300_000,
                step: 60_000,
                range: 60_000,
                func: WindowFn::Max,
                agg: None,
            };
            let raw = query::run(db.engine(), &q, &Limits::unlimited()).unwrap();
            let rolled = db.query(&q, &Limits::unlimited()).unwrap();
            assert_eq!(raw.series, rolled.series, "{what}: rollup answer differs from raw");
        }
        Kind::Retention => assert_eq!(set.raw().count(), 6, "{what}: the newest 6 partitions are kept"),
    }
}

fn faults(op: Op) -> Vec<Fault> {
    let mut v = vec![Fault::NoSpace, Fault::Eio];
    if op == Op::Write {
        v.push(Fault::Torn { keep: 5 });
    }
    v
}

fn every_call_of(kind: Kind) -> usize {
    let root = fault_common::scratch_dir();
    let pristine = root.path().join("pristine");
    let model = build(&pristine);
    let mut cases = 0;
    for op in [Op::Create, Op::Write, Op::Fsync, Op::Rename, Op::SyncDir, Op::Remove] {
        for fault in faults(op) {
            for skip in 0.. {
                let what = format!("{kind:?}: {op:?} {fault:?} at call {skip}");
                let dir = root.path().join(format!("case{cases}"));
                common::copy_dir(&pristine, &dir);
                let db = Db::open(&dir, options(kind)).unwrap();
                let guard = fault::inject(Rule::new(&dir.join("blocks"), op, fault).after(skip).times(1));
                let result = run_first_job(&db, kind);
                let fired = guard.failures() == 1;
                drop(guard);
                if !fired {
                    // The pass made fewer calls of this kind: every one has been tried.
                    assert!(result.is_ok(), "{what}: {result:?}");
                    finish(&db);
                    check_finished(&db, kind, &model, &what);
                    drop(db);
                    std::fs::remove_dir_all(&dir).unwrap();
                    break;
                }
                cases += 1;
                let err = result.expect_err(&what);
                assert!(matches!(err, Error::Io { .. }), "{what}: untyped error {err:?}");
                assert_eq!(err.is_storage_full(), fault != Fault::Eio, "{what}: {err}");
                check_reads(&db, kind, &model, &format!("{what}, after the failure"));
                // The engine goes on: the next passes finish the work.
                finish(&db);
                check_finished(&db, kind, &model, &format!("{what}, finished"));
                drop(db); // crash: no close
                let db = Db::open(&dir, options(kind)).unwrap();
                check_no_leftovers(&dir);
                check_finished(&db, kind, &model, &format!("{what}, reopened"));
                drop(db);
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
    }
    // Crash right after the failure, before any retry: the reopened set is the old or new.
    for (i, op) in [Op::Write, Op::Rename, Op::SyncDir, Op::Remove].into_iter().enumerate() {
        let what = format!("{kind:?}: {op:?} ENOSPC, crash before any retry");
        let dir = root.path().join(format!("crash{i}"));
        common::copy_dir(&pristine, &dir);
        let db = Db::open(&dir, options(kind)).unwrap();
        let guard = fault::inject(Rule::new(&dir.join("blocks"), op, Fault::NoSpace).times(1));
        let fired = run_first_job(&db, kind).is_err();
        drop(guard);
        drop(db);
        if !fired {
            continue;
        }
        cases += 1;
        let db = Db::open(&dir, options(kind)).unwrap();
        check_no_leftovers(&dir);
        check_reads(&db, kind, &model, &what);
        finish(&db);
        check_finished(&db, kind, &model, &what);
    }
    cases
}

#[test]
fn merge_fails_at_every_call_and_goes_on() {
    let n = every_call_of(Kind::Merge);
    eprintln!("merge: {n} injected failures");
    assert!(n > 40, "{n}");
}

#[test]
fn downsample_fails_at_every_call_and_goes_on() {
    let n = every_call_of(Kind::Downsample);
    eprintln!("downsample: {n} injected failures");
    assert!(n > 30, "{n}");
}

#[test]
fn retention_fails_at_every_call_and_goes_on() {
    let n = every_call_of(Kind::Retention);
    eprintln!("retention: {n} injected failures");
    assert!(n >= 12, "{n}");
}

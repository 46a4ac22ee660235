//! SIGKILL during compaction (merges at three levels and downsampling into two tiers),
//! at random points, each time on a fresh copy of the same sealed data directory: the
//! reopened directory holds every raw sample exactly once (no loss, no double read from
//! a merge's output and its parents), raw blocks never overlap, rollup blocks of one
//! tier never cover a span twice, no `.tmp`/`.deleted` survives open, and a finished
//! compaction afterwards answers rollup queries as raw does.
//!
//! The test re-runs its own binary as a child (`CHRONOLITH_COMPACTION_CRASH_CHILD=<dir>`)
//! that opens the copy and runs compaction passes; the parent kills it after a random
//! delay. `CHRONOLITH_CRASH_CYCLES=N` sets the number of kills (default 8).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chronolith::query::{self, Limits, RangeQuery, WindowFn};
use chronolith::{Batch, CompactionOptions, Db, Durability, Labels, Matcher, Options, RollupTier};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "CHRONOLITH_COMPACTION_CRASH_CHILD";
const TEST_NAME: &str = "kill9_during_compaction_leaves_old_or_new_block_set";
const HOUR: i64 = 3_600_000;

type Dump = BTreeMap<String, Vec<(i64, u64)>>;

fn options() -> Options {
    Options {
        partition_ms: 60_000,
        ooo_window_ms: 2_000,
        durability: Durability::Never,
        compaction: CompactionOptions {
            background: false,
            merge_ranges_ms: vec![300_000, 1_200_000, HOUR],
            tiers: vec![
                RollupTier { resolution_ms: 10_000, after_ms: 0, span_ms: 600_000 },
                RollupTier { resolution_ms: 60_000, after_ms: 0, span_ms: 1_200_000 },
            ],
            ..CompactionOptions::default()
        },
        ..Options::default()
    }
}

fn build(dir: &Path) -> Dump {
    let db = Db::open(dir, options()).unwrap();
    let mut model = Dump::new();
    let mut batch = Batch::new();
    for t in (1..HOUR).step_by(2_000) {
        for s in 0..6 {
            let l = Labels::metric("m", [("s", s.to_string().as_str())]).unwrap();
            let v = ((t / 2_000 * (s + 3)) % 1_000) as f64;
            model.entry(l.to_string()).or_default().push((t, v.to_bits()));
            batch.add_labels(l, t, v);
        }
    }
    db.append(&batch).unwrap();
    db.seal().unwrap();
    db.close().unwrap();
    model
}

fn child(dir: &Path) {
    let db = Db::open(dir, options()).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").unwrap();
    out.flush().unwrap();
    loop {
        let r = db.compact();
        assert_eq!(r.failures, 0);
        if r.merges + r.downsamples + r.drops == 0 {
            break;
        }
    }
    writeln!(out, "DONE").unwrap();
    out.flush().unwrap();
    db.close().unwrap();
}

fn dump(db: &Db) -> Dump {
    let mut out = Dump::new();
    for s in db.select(&[Matcher::metric("m")], i64::MIN, i64::MAX) {
        let s = s.unwrap();
        assert!(s.samples.windows(2).all(|w| w[0].t < w[1].t), "{}: not strictly ascending", s.labels);
        out.insert(s.labels.to_string(), s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect());
    }
    out
}

fn check_block_set(db: &Db, dir: &Path) {
    let set = db.engine().blocks().snapshot();
    let mut raw: Vec<(i64, i64)> = set.raw().map(|b| (b.meta().min_t, b.meta().max_t)).collect();
    raw.sort_unstable();
    assert!(raw.windows(2).all(|w| w[0].1 < w[1].0), "raw blocks overlap: {raw:?}");
    for r in set.rollup_resolutions() {
        let mut covers: Vec<(i64, i64)> = set.rollups(r).map(|b| (b.meta().covers_from, b.meta().covers_to)).collect();
        covers.sort_unstable();
        assert!(covers.windows(2).all(|w| w[0].1 <= w[1].0), "tier {r} covers a span twice: {covers:?}");
    }
    for e in std::fs::read_dir(dir.join("blocks")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains('.'), "leftover {name} after open");
    }
}

#[test]
fn kill9_during_compaction_leaves_old_or_new_block_set() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let cycles: u64 = std::env::var("CHRONOLITH_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let root = tempfile::tempdir().unwrap();
    let pristine = root.path().join("pristine");
    let model = build(&pristine);
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(std::process::id());
    println!("seed {seed:#x}");
    let (mut killed_mid_work, mut budget_ms) = (0, 40u64);
    for cycle in 0..cycles {
        let dir = root.path().join(format!("c{cycle}"));
        common::copy_dir(&pristine, &dir);
        let mut child = Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(Ok(l)) = lines.next() {
            if l.contains("READY") {
                break;
            }
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = seed % budget_ms;
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        let finished = lines.any(|l| l.is_ok_and(|l| l.contains("DONE")));
        if finished {
            // Too late: aim earlier next time.
            budget_ms = (budget_ms / 2).max(5);
        } else {
            killed_mid_work += 1;
            budget_ms = (budget_ms + started.elapsed().as_millis() as u64).min(2_000);
        }
        let db = Db::open(&dir, options()).unwrap();
        check_block_set(&db, &dir);
        assert_eq!(dump(&db), model, "cycle {cycle} (killed after {delay} ms): raw samples differ");
        // Finish the work and compare rollup-backed answers with raw ones.
        loop {
            let r = db.compact();
            if r.merges + r.downsamples == 0 {
                break;
            }
        }
        check_block_set(&db, &dir);
        assert_eq!(dump(&db), model, "cycle {cycle}: raw samples differ after finishing");
        let q = RangeQuery {
            matchers: vec![Matcher::metric("m")],
            start: 0,
            end: HOUR,
            step: 60_000,
            range: 300_000,
            func: WindowFn::Max,
            agg: None,
        };
        let raw = query::run(db.engine(), &q, &Limits::unlimited()).unwrap();
        let rolled = db.query(&q, &Limits::unlimited()).unwrap();
        assert_eq!(raw.series, rolled.series, "cycle {cycle}: rollup answer differs");
        assert!(rolled.stats.samples_scanned < raw.stats.samples_scanned);
        db.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
    println!("{killed_mid_work} of {cycles} kills landed before the compaction finished");
    assert!(killed_mid_work * 2 >= cycles, "only {killed_mid_work} of {cycles} kills landed mid-compaction");
}

//! Kill -9 mid-write, many times on the same directory: every acknowledged batch must be
//! there after reopen, exactly, and nothing that was never sent.
//!
//! The test re-runs its own binary as a child (`CHRONOLITH_CRASH_CHILD=<dir>`), which opens
//! the database with the default durability (`Always`), appends batch after batch and
//! prints `ACK <n>` after each successful append. Batch `n` holds one sample at
//! `T0 + n * STEP_MS` for each of the first `series_in(n)` series, with a value derived
//! from (series, t), so the parent can check without any other state. Partitions are one
//! minute (60 batches) so background seals happen during the run, and kills land during
//! sealing and during recovery too. The parent SIGKILLs the child after a random delay,
//! reopens, checks, and starts the next child on the same directory.
//!
//! `CHRONOLITH_CRASH_CYCLES=N` sets the number of kills (default 20),
//! `CHRONOLITH_CRASH_SEED=S` the seed of the kill delays.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kill9_common;

use chronolith::{Batch, Db, Labels, Options, SeriesId};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "CHRONOLITH_CRASH_CHILD";
const TEST_NAME: &str = "acknowledged_batches_survive_kill9";
const T0: i64 = 1_600_000_000_000;
const STEP_MS: i64 = 1_000;
const METRIC: &str = "crash_test";

fn options() -> Options {
    Options { partition_ms: 60_000, ooo_window_ms: 2_000, ..Options::default() }
}

/// Series written by batch `n`: a few at first, more over time (new ones by labels).
fn series_in(n: u64) -> usize {
    3 + (n / 25).min(29) as usize
}

fn labels(k: usize) -> Labels {
    Labels::metric(METRIC, [("series", format!("s{k}")), ("shard", format!("{}", k % 3))]).unwrap()
}

fn value(k: usize, t: i64) -> f64 {
    let n = (t - T0) / STEP_MS;
    match (n + k as i64) % 11 {
        0 => -((k as f64) + 0.5),
        1 => (n as f64) * 1e-3,
        _ => ((k as i64 * 7_919 + n * 31) % 100_000) as f64 / 100.0,
    }
}

fn batch_t(n: u64) -> i64 {
    T0 + n as i64 * STEP_MS
}

// ---------------------------------------------------------------- child

fn child(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let db = Db::open(dir, options())?;
    // Continue after the newest batch present (acknowledged or not). The newest sample is
    // always in the head (a partition is sealed only once newer samples exist) unless a
    // full seal took it; either way the stats know it without reading everything.
    let st = db.stats().engine;
    let newest = st.head_max_t.max(st.sealed_until.map(|s| s - 1));
    let mut n = newest.map_or(0, |t| ((t - T0) / STEP_MS + 1) as u64);
    let mut refs: Vec<Option<SeriesId>> = Vec::new();
    let mut out = std::io::stdout().lock();
    writeln!(out, "START {n}")?;
    out.flush()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut b = Batch::new();
    while Instant::now() < deadline {
        let t = batch_t(n);
        let k_max = series_in(n);
        refs.resize(k_max, None);
        b.clear();
        for (k, r) in refs.iter().enumerate() {
            match r {
                Some(id) => b.add(*id, t, value(k, t)),
                None => b.add_labels(labels(k), t, value(k, t)),
            }
        }
        let rep = db.append(&b)?;
        if rep.stored != k_max || !rep.rejected.is_empty() {
            return Err(format!("batch {n}: stored {} of {k_max}, rejected {:?}", rep.stored, rep.rejected).into());
        }
        for (i, id) in rep.series {
            refs[i] = Some(id);
        }
        writeln!(out, "ACK {n}")?;
        out.flush()?;
        n += 1;
    }
    Ok(())
}

// ---------------------------------------------------------------- parent

/// Opens the directory and checks that batches `from_batch..=N` are all present and exact,
/// with `N >= acked`, and nothing else is there. Returns the number of batches present.
fn verify(dir: &Path, acked: Option<u64>, from_batch: u64) -> Result<u64, String> {
    let db = Db::open(dir, options()).map_err(|e| format!("open after kill: {e}"))?;
    let mut per_batch: Vec<usize> = Vec::new();
    let mut samples = 0u64;
    for s in db.select(&[], batch_t(from_batch), i64::MAX) {
        let s = s.map_err(|e| format!("select: {e}"))?;
        let name = s.labels.get("series");
        let k: usize =
            name.strip_prefix('s').and_then(|x| x.parse().ok()).ok_or(format!("stray series {}", s.labels))?;
        if *s.labels != labels(k) {
            return Err(format!("series {} has unexpected labels", s.labels));
        }
        for x in &s.samples {
            let off = x.t - T0;
            if off < 0 || off % STEP_MS != 0 {
                return Err(format!("series s{k}: sample at t={} was never sent", x.t));
            }
            let n = (off / STEP_MS) as u64;
            if k >= series_in(n) {
                return Err(format!("series s{k}: sample of batch {n} was never sent"));
            }
            if x.v.to_bits() != value(k, x.t).to_bits() {
                return Err(format!("series s{k} batch {n}: value {} != sent {}", x.v, value(k, x.t)));
            }
            if per_batch.len() <= n as usize {
                per_batch.resize(n as usize + 1, 0);
            }
            per_batch[n as usize] += 1;
            samples += 1;
        }
    }
    for (n, &c) in per_batch.iter().enumerate().skip(from_batch as usize) {
        if c != series_in(n as u64) {
            return Err(format!(
                "batch {n} has {c} of {} samples (present batches: 0..{})",
                series_in(n as u64),
                per_batch.len()
            ));
        }
    }
    let present = per_batch.len() as u64;
    if let Some(a) = acked {
        if a >= present {
            return Err(format!("acknowledged batch {a} lost: only batches 0..{present} present ({samples} samples)"));
        }
    }
    db.close().map_err(|e| format!("close: {e}"))?;
    Ok(present)
}

fn parent() {
    let cycles: u64 = std::env::var("CHRONOLITH_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed = kill9_common::seed("CHRONOLITH_CRASH_SEED");
    let mut rng = kill9_common::Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let mut acked: Option<u64> = None;
    let mut cycles_with_acks = 0;
    let mut killed_before_start = 0;
    let mut present: u64 = 0;
    for cycle in 0..cycles {
        let kill_during_open = rng.below(6) == 0;
        let delay = Duration::from_millis(if kill_during_open { rng.below(40) } else { 20 + rng.below(281) });
        let stderr_path = tmp.path().join(format!("child-{cycle}.stderr"));
        let stderr_file = Stdio::from(std::fs::File::create(&stderr_path).unwrap());
        // Most kills count from the moment the child has opened the directory (so a slow
        // machine still makes progress); some from the spawn, to land inside recovery.
        let heard = kill9_common::run_and_kill(TEST_NAME, CHILD_ENV, &dir, stderr_file, delay, kill_during_open);
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        assert!(
            heard.killed_cleanly(),
            "cycle {cycle} (seed {seed}): child stopped by itself or failed: {heard:?}\n{stderr}"
        );
        let (last_ack, started) = (heard.last_ack, heard.started);
        if !started {
            killed_before_start += 1;
        }
        if let Some(a) = last_ack {
            cycles_with_acks += 1;
            assert!(acked.is_none_or(|p| a > p), "cycle {cycle}: child acknowledged batch {a} twice");
            acked = Some(a);
        }
        // Every sample is checked after each kill at first; on long runs, every 10th kill
        // checks everything and the others the newest 200 batches (the check reads it all).
        let from_batch = if cycle < 50 || cycle % 10 == 0 { 0 } else { present.saturating_sub(200) };
        present = match verify(&dir, acked, from_batch) {
            Ok(p) => p,
            Err(e) => panic!("cycle {cycle} (seed {seed}, killed after {delay:?}): {e}\nchild stderr:\n{stderr}"),
        };
    }
    eprintln!(
        "{cycles} kills (seed {seed}): {present} batches present, last acknowledged {acked:?}, \
         {cycles_with_acks} cycles acknowledged something, {killed_before_start} killed before opening"
    );
    assert!(cycles_with_acks * 2 >= cycles, "children made too little progress: {cycles_with_acks} of {cycles}");
    assert!(present > 0);
    // The run sealed blocks in the background and recovered across them.
    let db = Db::open(&dir, options()).unwrap();
    assert!(db.stats().engine.blocks > 0 || present < 120, "no block sealed in {present} batches");
}

#[test]
fn acknowledged_batches_survive_kill9() {
    kill9_common::child_or_parent(CHILD_ENV, child, parent);
}

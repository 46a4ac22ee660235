//! Crash torture: SIGKILL cycled through ingest, sealing, compaction (merge, downsample)
//! and retention, on one data directory, thousands of times when asked:
//!
//! ```sh
//! CHRONOLITH_TORTURE_CYCLES=2000 cargo test --release --test torture_kill9_cycles -- --nocapture
//! ```
//!
//! (The default run, which CI does, makes a few cycles only: `CHRONOLITH_TORTURE_CYCLES`
//! is how many; `CHRONOLITH_TORTURE_SEED` fixes the kill delays.)
//!
//! The test re-runs its own binary as a child (`CHRONOLITH_TORTURE_CHILD=<dir>`) that opens
//! the database with the default durability and recovery, and loops: append batches,
//! printing `ACK <n>` after each acknowledged one; seal the closed partitions; run the
//! merges, then the downsampling, then the retention the policy plans, printing `PHASE
//! <name>` before each. Data time runs fast (5 s a batch, 1-minute partitions, merges to
//! 3 and 9 minutes, 10 s and 1 min rollups, 30 minutes of raw data kept, series `s1` only
//! 10 minutes by a selector rule, so retention also rewrites blocks), so every phase
//! has work in every cycle. The background sealer runs as well. The parent kills the child
//! after a random delay (some during recovery itself), reopens the directory and checks:
//!
//! - open finds no damage but torn WAL tails (a kill never corrupts anything);
//! - **lost**: acknowledged samples missing, among those retention must keep (newer than
//!   the newest sample held minus the raw retention): must be 0;
//! - **duplicated**: samples stored twice (raw blocks and head hold more samples than the
//!   distinct ones read; raw blocks overlap; a rollup span covered twice): must be 0;
//! - every sample read was sent, with its value, and batches are whole (one WAL record
//!   each: all of a batch or none of it).
//!
//! It prints cycles, acknowledged samples verified, lost, duplicated and where the kills
//! landed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kill9_common;

use chronolith::{Batch, CompactionOptions, Db, Labels, Options, Retention, RollupTier, SeriesId};
use chronolith_compaction::{plan, run_job};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "CHRONOLITH_TORTURE_CHILD";
const TEST_NAME: &str = "kill9_cycles_through_ingest_seal_compaction_retention";
const T0: i64 = 1_600_000_000_000;
const STEP_MS: i64 = 5_000;
const RAW_KEEP_MS: i64 = 1_800_000;
/// Retention of series `s1` (a selector rule): its old blocks are rewritten without it.
const S1_KEEP_MS: i64 = 600_000;
const BATCHES_PER_ROUND: u64 = 6;
const PHASES: [&str; 6] = ["open", "ingest", "seal", "merge", "downsample", "retention"];

fn options() -> Options {
    let compaction = CompactionOptions {
        background: false,
        merge_ranges_ms: vec![180_000, 540_000],
        tiers: vec![
            RollupTier { resolution_ms: 10_000, after_ms: 0, span_ms: 180_000 },
            RollupTier { resolution_ms: 60_000, after_ms: 0, span_ms: 540_000 },
        ],
        // Raw 30 min, rollups 1 h and 2 h, and series s1 only 10 min (retention by selector).
        retention: Retention::parse(r#"raw=30m, 10s=1h, 1m=2h, {series="s1"}=10m"#).unwrap(),
        ..CompactionOptions::default()
    };
    Options { partition_ms: 60_000, ooo_window_ms: 2_000, compaction, ..Options::default() }
}

/// Series written by batch `n`: a few at first, more over time (new ones by labels).
fn series_in(n: u64) -> usize {
    4 + (n / 50).min(16) as usize
}

fn labels(k: usize) -> Labels {
    Labels::metric("torture", [("series", format!("s{k}"))]).unwrap()
}

fn value(k: usize, n: u64) -> f64 {
    match (n + k as u64) % 9 {
        0 => -(k as f64) - 0.5,
        1 => n as f64 * 1e-3,
        _ => ((k as u64 * 7_919 + n * 31) % 100_000) as f64 / 100.0,
    }
}

fn batch_t(n: u64) -> i64 {
    T0 + n as i64 * STEP_MS
}

// ---------------------------------------------------------------- child

fn say(out: &mut impl Write, line: &str) -> std::io::Result<()> {
    writeln!(out, "{line}")?;
    out.flush()
}

fn child(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let db = Db::open(dir, options())?;
    let e = db.engine();
    let mut n = plan::newest_sample(e).map_or(0, |t| ((t - T0) / STEP_MS + 1) as u64);
    let mut refs: Vec<Option<SeriesId>> = Vec::new();
    let mut out = std::io::stdout().lock();
    say(&mut out, &format!("START {n}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut b = Batch::new();
    while Instant::now() < deadline {
        say(&mut out, "PHASE ingest")?;
        for _ in 0..BATCHES_PER_ROUND {
            let k_max = series_in(n);
            refs.resize(k_max, None);
            b.clear();
            for (k, r) in refs.iter().enumerate() {
                match r {
                    Some(id) => b.add(*id, batch_t(n), value(k, n)),
                    None => b.add_labels(labels(k), batch_t(n), value(k, n)),
                }
            }
            let rep = db.append(&b)?;
            if rep.stored != k_max || !rep.rejected.is_empty() {
                return Err(format!("batch {n}: stored {} of {k_max}, rejected {:?}", rep.stored, rep.rejected).into());
            }
            for (i, id) in rep.series {
                refs[i] = Some(id);
            }
            say(&mut out, &format!("ACK {n}"))?;
            n += 1;
        }
        say(&mut out, "PHASE seal")?;
        e.seal_closed()?;
        let opts = &e.options().compaction;
        say(&mut out, "PHASE merge")?;
        for job in plan::merges(&e.blocks().snapshot(), opts, e.head().sealed_until()) {
            run_job(e, &job)?;
        }
        say(&mut out, "PHASE downsample")?;
        let newest = plan::newest_sample(e).unwrap_or(T0);
        let mut jobs = plan::downsamples(&e.blocks().snapshot(), opts, newest, e.head().sealed_until(), 16);
        jobs.sort_by_key(|j| j.resolution_ms());
        for job in jobs {
            run_job(e, &job)?;
        }
        say(&mut out, "PHASE retention")?;
        let set = e.blocks().snapshot();
        let drops = plan::retention(&set, opts, newest);
        let purges = plan::purges(&set, opts, newest, e.registry(), &drops);
        drop(set);
        for job in drops.into_iter().chain(purges) {
            run_job(e, &job)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- parent

#[derive(Default, Debug)]
struct Totals {
    verified: u64,
    lost: u64,
    duplicated: u64,
    torn_tails: u64,
}

/// Opens the directory and checks it against the acknowledged batches `..=acked`.
/// Returns the number of the newest batch present.
fn verify(dir: &Path, acked: Option<u64>, totals: &mut Totals) -> Result<Option<u64>, String> {
    let db = Db::open(dir, options()).map_err(|e| format!("open after kill: {e}"))?;
    let rep = db.stats().engine.recovery;
    if let Some(d) = rep.damage.iter().find(|d| !d.torn_tail) {
        return Err(format!("a kill left damage: {d:?}"));
    }
    totals.torn_tails += rep.torn_tails.len() as u64;
    // Samples per batch of every series but s1, and the batches s1 still has.
    let mut per_batch: BTreeMap<u64, usize> = BTreeMap::new();
    let mut s1 = std::collections::BTreeSet::new();
    let mut distinct = 0u64;
    for s in db.select(&[], i64::MIN, i64::MAX) {
        let s = s.map_err(|e| format!("select: {e}"))?;
        let k: usize = s.labels.get("series").strip_prefix('s').and_then(|x| x.parse().ok()).ok_or("stray series")?;
        for x in &s.samples {
            let off = x.t - T0;
            if off < 0 || off % STEP_MS != 0 {
                return Err(format!("s{k}: sample at t={} was never sent", x.t));
            }
            let n = (off / STEP_MS) as u64;
            if k >= series_in(n) || x.v.to_bits() != value(k, n).to_bits() {
                return Err(format!("s{k} batch {n}: {} was never sent", x.v));
            }
            if k == 1 {
                s1.insert(n);
            } else {
                *per_batch.entry(n).or_default() += 1;
            }
            distinct += 1;
        }
    }
    if let Some((n, c)) = per_batch.iter().find(|(n, c)| **c != series_in(**n) - 1) {
        return Err(format!("batch {n} is partly there: {c} of {} samples besides s1", series_in(*n) - 1));
    }
    // Only s1's own retention removes s1 alone; whole-block drops take all series.
    if let Some(n) = s1.iter().find(|n| !per_batch.contains_key(n)) {
        return Err(format!("batch {n}: s1 is there without the other series"));
    }
    // Stored twice: raw blocks and head hold more than what is read, or overlap.
    let set = db.engine().blocks().snapshot();
    let stored: u64 = set.raw().map(|b| b.meta().samples).sum::<u64>() + db.stats().engine.head_samples;
    totals.duplicated += stored.saturating_sub(distinct);
    let mut raw: Vec<(i64, i64)> = set.raw().map(|b| (b.meta().min_t, b.meta().max_t)).collect();
    raw.sort_unstable();
    if let Some(w) = raw.windows(2).find(|w| w[0].1 >= w[1].0) {
        return Err(format!("raw blocks overlap: {w:?}"));
    }
    for r in set.rollup_resolutions() {
        let mut covers: Vec<(i64, i64)> = set.rollups(r).map(|b| (b.meta().covers_from, b.meta().covers_to)).collect();
        covers.sort_unstable();
        if let Some(w) = covers.windows(2).find(|w| w[0].1 > w[1].0) {
            return Err(format!("tier {r} covers a span twice: {w:?}"));
        }
    }
    drop(set);
    let newest = per_batch.keys().next_back().copied();
    if let (Some(a), Some(newest)) = (acked, newest) {
        // Retention may drop raw data older than the newest sample minus its age, and s1's
        // samples older than its own (shorter) age. The newest sample only grows, so what
        // is newer than these cutoffs now was newer at every earlier retention run too.
        let keep_from = batch_t(newest) - RAW_KEEP_MS;
        let s1_keep_from = batch_t(newest) - S1_KEEP_MS;
        for n in (0..=a).filter(|n| batch_t(*n) >= keep_from) {
            let have = per_batch.get(&n).copied().unwrap_or(0) as u64;
            totals.lost += series_in(n) as u64 - 1 - have;
            totals.verified += have;
            if batch_t(n) >= s1_keep_from {
                let has_s1 = u64::from(s1.contains(&n));
                totals.lost += 1 - has_s1;
                totals.verified += has_s1;
            }
        }
    } else if acked.is_some() {
        totals.lost += 1;
    }
    db.close().map_err(|e| format!("close: {e}"))?;
    Ok(newest)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn parent() {
    let cycles = env_u64("CHRONOLITH_TORTURE_CYCLES").unwrap_or(4);
    let seed = kill9_common::seed("CHRONOLITH_TORTURE_SEED");
    let mut rng = kill9_common::Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let mut totals = Totals::default();
    let mut acked: Option<u64> = None;
    let mut kills_in: BTreeMap<String, u64> = BTreeMap::new();
    let started = Instant::now();
    for cycle in 0..cycles {
        let in_open = rng.below(8) == 0;
        let delay = Duration::from_millis(if in_open { rng.below(40) } else { 10 + rng.below(400) });
        let heard = kill9_common::run_and_kill(TEST_NAME, CHILD_ENV, &dir, Stdio::null(), delay, in_open);
        assert!(heard.killed_cleanly(), "cycle {cycle} (seed {seed}): child stopped or failed: {heard:?}");
        let (last_ack, phase) = (heard.last_ack, heard.phase);
        assert!(PHASES.contains(&phase.as_str()), "cycle {cycle}: phase {phase}");
        *kills_in.entry(phase.clone()).or_default() += 1;
        if let Some(a) = last_ack {
            assert!(acked.is_none_or(|p| a > p), "cycle {cycle}: batch {a} acknowledged twice");
            acked = Some(a);
        }
        if let Err(e) = verify(&dir, acked, &mut totals) {
            panic!("cycle {cycle} (seed {seed}, killed in {phase} after {delay:?}): {e}");
        }
        assert_eq!(
            (totals.lost, totals.duplicated),
            (0, 0),
            "cycle {cycle} (seed {seed}, killed in {phase}): {totals:?}"
        );
    }
    let kills: Vec<String> = kills_in.iter().map(|(p, n)| format!("{p} {n}")).collect();
    println!(
        "torture: {cycles} cycles in {:.0?} (seed {seed}); acknowledged samples verified {} (each cycle re-checks \
         all that retention keeps), lost {}, duplicated {}; \
         newest acknowledged batch {acked:?}; torn WAL tails cut {}; kills landed in: {}",
        started.elapsed(),
        totals.verified,
        totals.lost,
        totals.duplicated,
        totals.torn_tails,
        kills.join(", ")
    );
    assert!(totals.verified > 0 && acked.is_some(), "children made no progress");
}

#[test]
fn kill9_cycles_through_ingest_seal_compaction_retention() {
    kill9_common::child_or_parent(CHILD_ENV, child, parent);
}

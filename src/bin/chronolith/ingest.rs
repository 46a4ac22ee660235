//! Drives generated devops data through the embedded API, as a collector would:
//! series created by labels in the first batches, then the ref hot path, batches of a
//! fixed size, one writer thread per core kept within a minute of each other.

use crate::devops::{self, SeriesGen};
use chronolith::{Batch, Db, SeriesId};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Plan {
    pub hosts: usize,
    pub counters: usize,
    pub start_ms: i64,
    pub points: usize,
    pub interval_ms: i64,
    pub batch: usize,
    pub writers: usize,
    pub seed: u64,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub series: usize,
    /// Writer threads actually used (see `BATCH_SPAN_POINTS_MAX`).
    pub writers: usize,
    pub samples: u64,
    pub rejected: u64,
}

/// A writer waits when it is this many points ahead of the slowest writer. Writers are
/// otherwise free-running, so one's fsync overlaps another's work.
const LEAD_POINTS_MAX: usize = 12;
/// The most points one writer's batch may span. Batches of different writers interleave,
/// so a sample can trail the newest appended one by the lead plus a batch's span; 12 + 12
/// points (4 min at 10 s) stays inside the default 5-minute out-of-order window. With few
/// series per batch this caps the writer count (one writer never interleaves).
const BATCH_SPAN_POINTS_MAX: usize = 12;

/// Paces the appends of the ref path (all points after the first), for a collector that
/// offers a steady rate rather than all it can.
pub trait Pace: Sync {
    /// Called before appending `samples`: waits until they are due; returns when they were.
    fn wait(&self, samples: usize) -> Instant;
    /// The append of a batch due at `due` started at `started` and was acknowledged at
    /// `done` (after any retries on back-pressure).
    fn record(&self, due: Instant, started: Instant, done: Instant);
}

/// Ingests the plan; `progress` is bumped by the samples of each acknowledged batch.
pub fn run(db: &Db, plan: &Plan, progress: &AtomicU64) -> Result<Outcome, chronolith::Error> {
    run_paced(db, plan, progress, None)
}

/// [`run`], with the appends after the first point paced by `pace`.
pub fn run_paced(
    db: &Db,
    plan: &Plan,
    progress: &AtomicU64,
    pace: Option<&dyn Pace>,
) -> Result<Outcome, chronolith::Error> {
    let mut gens = devops::series(plan.hosts, plan.counters, plan.seed)?;
    let n = gens.len();
    let writers_max = (BATCH_SPAN_POINTS_MAX * n / plan.batch.max(1)).max(1);
    let writers = plan.writers.clamp(1, n.max(1)).min(writers_max);
    // Labels depend on the seed alone; values also on the start, so a later day of the
    // same hosts is new data rather than a replay of the first.
    let value_seed = plan.seed ^ (plan.start_ms as u64).rotate_left(17);
    let mut rng = devops::Rng::new(value_seed ^ 0xD1CE);
    let mut outcome = Outcome { series: n, writers, ..Outcome::default() };
    if plan.points == 0 || n == 0 {
        return Ok(outcome);
    }

    // Point 0 names every series by labels; the reports hand back the refs.
    let mut refs = vec![SeriesId(0); n];
    let mut batch = Batch::with_capacity(plan.batch);
    for chunk_start in (0..n).step_by(plan.batch.max(1)) {
        batch.clear();
        let chunk_end = (chunk_start + plan.batch.max(1)).min(n);
        for g in &mut gens[chunk_start..chunk_end] {
            let v = g.next(&mut rng);
            batch.add_labels(g.labels.clone(), plan.start_ms, v);
        }
        let report = db.append(&batch)?;
        for (i, id) in report.series {
            refs[chunk_start + i] = id;
        }
        outcome.rejected += report.rejected.len() as u64;
        outcome.samples += (report.stored + report.duplicates) as u64;
        progress.fetch_add(batch.len() as u64, Relaxed);
    }

    // Points 1.. on the ref path, the series split into one contiguous range per writer.
    let per = n.div_ceil(writers);
    let progress_of: Vec<AtomicUsize> = (0..writers).map(|_| AtomicUsize::new(0)).collect();
    let progress_of = &progress_of;
    let results: Vec<Result<(u64, u64), chronolith::Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = gens
            .chunks_mut(per)
            .zip(refs.chunks(per))
            .enumerate()
            .map(|(w, (gens, refs))| {
                let mut rng = devops::Rng::new(value_seed.wrapping_add(w as u64 + 1));
                s.spawn(move || {
                    let r = write_range(db, plan, gens, refs, &mut rng, (w, progress_of), (progress, pace));
                    // Finished or failed: never hold the others back.
                    progress_of[w].store(usize::MAX, Relaxed);
                    r
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Err(chronolith::Error::Closed))).collect()
    });
    for r in results {
        let (stored, rejected) = r?;
        outcome.samples += stored;
        outcome.rejected += rejected;
    }
    Ok(outcome)
}

fn write_range(
    db: &Db,
    plan: &Plan,
    gens: &mut [SeriesGen],
    refs: &[SeriesId],
    rng: &mut devops::Rng,
    (me, progress_of): (usize, &[AtomicUsize]),
    (progress, pace): (&AtomicU64, Option<&dyn Pace>),
) -> Result<(u64, u64), chronolith::Error> {
    let mut batch = Batch::with_capacity(plan.batch);
    let (mut stored, mut rejected) = (0u64, 0u64);
    let mut send = |batch: &mut Batch| -> Result<(), chronolith::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let due = pace.map(|p| p.wait(batch.len()));
        let started = Instant::now();
        let report = loop {
            match db.append(batch) {
                // Back-pressure is an expected answer: wait for sealing and retry.
                Err(chronolith::Error::Overloaded { .. }) => std::thread::sleep(Duration::from_millis(10)),
                other => break other?,
            }
        };
        if let (Some(p), Some(due)) = (pace, due) {
            p.record(due, started, Instant::now());
        }
        stored += (report.stored + report.duplicates) as u64;
        rejected += report.rejected.len() as u64;
        progress.fetch_add(batch.len() as u64, Relaxed);
        batch.clear();
        Ok(())
    };
    for p in 1..plan.points {
        while progress_of.iter().map(|a| a.load(Relaxed)).min().unwrap_or(usize::MAX) + LEAD_POINTS_MAX < p {
            std::thread::sleep(Duration::from_micros(200));
        }
        let t = plan.start_ms + p as i64 * plan.interval_ms;
        for (g, id) in gens.iter_mut().zip(refs) {
            batch.add(*id, t, g.next(rng));
            if batch.len() >= plan.batch {
                send(&mut batch)?;
            }
        }
        progress_of[me].store(p, Relaxed);
    }
    send(&mut batch)?;
    Ok((stored, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronolith::{Durability, Options};

    /// Regression: with few series per batch, interleaved batches of several writers
    /// spanned more than the out-of-order window and samples were rejected.
    #[test]
    fn no_sample_is_rejected_whatever_the_writer_count() -> Result<(), Box<dyn std::error::Error>> {
        for (hosts, batch, writers) in [(10, 1_000, 4), (10, 100, 4), (40, 1_000, 4)] {
            let dir = tempfile::tempdir()?;
            let db = Db::open(dir.path(), Options { durability: Durability::Never, ..Options::default() })?;
            let plan = Plan {
                hosts,
                counters: 1,
                start_ms: devops::START_MS,
                points: 400,
                interval_ms: 10_000,
                batch,
                writers,
                seed: 7,
            };
            let out = run(&db, &plan, &AtomicU64::new(0))?;
            assert_eq!(out.rejected, 0, "{hosts} hosts, batch {batch}, {} writers", out.writers);
            assert_eq!(out.samples, (hosts * 11 * 400) as u64);
            assert!(out.writers * batch <= BATCH_SPAN_POINTS_MAX * out.series);
            db.close()?;
        }
        Ok(())
    }
}

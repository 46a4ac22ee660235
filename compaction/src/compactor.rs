//! The compaction worker: one background thread that, every `interval_ms` or when
//! triggered, plans and runs merges, downsampling and retention, one job at a time.
//! It never blocks writers or readers: jobs read immutable blocks through a snapshot and
//! publish with one swap of the block set. Triggers go through a bounded queue of one
//! (they coalesce); `run_now` runs a pass on the caller's thread under the same lock.

use crate::clock::Clock;
use crate::jobs::run_job;
use crate::plan::{self, DropReason, Job};
use crate::status::{CompactionStatus, JobKind};
use chronolith_engine::{CompactionOptions, Engine, Result};
use crossbeam::channel::{bounded, select, Receiver, Sender};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Downsampling jobs planned per pass, so a large backlog does not hold the pass (and a
/// `close`) for long; the next pass continues.
const DOWNSAMPLE_JOBS_PER_PASS: usize = 64;
/// Bound on planning rounds in one pass (each round runs the jobs it planned).
const ROUNDS_MAX: usize = 64;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub merges: u64,
    pub downsamples: u64,
    pub drops: u64,
    /// Blocks rewritten without the series a selector's retention expired.
    pub purges: u64,
    pub failures: u64,
}

#[derive(Debug)]
struct Shared {
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    opts: CompactionOptions,
    status: Mutex<CompactionStatus>,
    /// One pass at a time, whether from the thread or `run_now`.
    pass: Mutex<()>,
    stopping: AtomicBool,
}

#[derive(Debug)]
pub struct Compactor {
    shared: Arc<Shared>,
    trigger: Sender<()>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Compactor {
    /// A compactor without a thread: passes run only through [`Compactor::run_now`].
    pub fn manual(engine: Arc<Engine>, clock: Arc<dyn Clock>) -> Self {
        let opts = engine.options().compaction.clone();
        let shared = Arc::new(Shared {
            engine,
            clock,
            opts,
            status: Mutex::new(CompactionStatus::default()),
            pass: Mutex::new(()),
            stopping: AtomicBool::new(false),
        });
        let (trigger, _) = bounded(1);
        Self { shared, trigger, stop: None, thread: None }
    }

    /// Starts the background thread.
    pub fn spawn(engine: Arc<Engine>, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        let mut c = Self::manual(engine, clock);
        let (trigger_tx, trigger_rx) = bounded::<()>(1);
        let (stop_tx, stop_rx) = bounded::<()>(1);
        let shared = c.shared.clone();
        let interval = Duration::from_millis(shared.opts.interval_ms.max(1));
        c.thread = Some(
            std::thread::Builder::new()
                .name("chronolith-compactor".into())
                .spawn(move || worker(&shared, &trigger_rx, &stop_rx, interval))?,
        );
        c.trigger = trigger_tx;
        c.stop = Some(stop_tx);
        Ok(c)
    }

    /// Asks the thread for a pass soon (coalesces with one already asked for).
    pub fn trigger(&self) {
        let _ = self.trigger.try_send(());
    }

    /// Runs one pass now on this thread (waits for a pass in progress to end).
    pub fn run_now(&self) -> PassReport {
        pass(&self.shared)
    }

    pub fn status(&self) -> CompactionStatus {
        self.shared.status.lock().clone()
    }

    /// Stops the thread after its current job.
    pub fn stop(&mut self) {
        self.shared.stopping.store(true, Relaxed);
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Compactor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn worker(shared: &Shared, trigger: &Receiver<()>, stop: &Receiver<()>, interval: Duration) {
    loop {
        select! {
            recv(stop) -> _ => return,
            recv(trigger) -> _ => {},
            default(interval) => {},
        }
        pass(shared);
    }
}

/// Plans and runs jobs until there is nothing left (or the bounds are reached):
/// merges first (lowest level first), then downsampling, then retention.
fn pass(shared: &Shared) -> PassReport {
    let _one = shared.pass.lock();
    let mut report = PassReport::default();
    let engine = &shared.engine;
    for _ in 0..ROUNDS_MAX {
        if shared.stopping.load(Relaxed) {
            break;
        }
        let set = engine.blocks().snapshot();
        let sealed_until = engine.head().sealed_until();
        let Some(newest) = plan::newest_sample(engine) else { break };
        let mut jobs = plan::merges(&set, &shared.opts, sealed_until);
        if jobs.is_empty() {
            jobs = plan::downsamples(&set, &shared.opts, newest, sealed_until, DOWNSAMPLE_JOBS_PER_PASS);
            // Finest tier first: the next round can build the coarser one from it.
            let finest = jobs.iter().filter_map(plan::Job::resolution_ms).min();
            jobs.retain(|j| j.resolution_ms() == finest);
        }
        if jobs.is_empty() {
            jobs = plan::retention(&set, &shared.opts, newest);
            let purges = plan::purges(&set, &shared.opts, newest, engine.registry(), &jobs);
            jobs.extend(purges);
        }
        if jobs.is_empty() {
            break;
        }
        for job in &jobs {
            if shared.stopping.load(Relaxed) {
                break;
            }
            let failed = run_recorded(shared, job).is_err();
            report.failures += u64::from(failed);
            match job {
                Job::Merge { .. } => report.merges += 1,
                Job::Downsample { .. } => report.downsamples += 1,
                Job::Drop { .. } => report.drops += 1,
                Job::Purge { .. } => report.purges += 1,
            }
        }
        // A failed job would be planned again at once; leave it to the next pass.
        if report.failures > 0 {
            break;
        }
    }
    shared.status.lock().passes += 1;
    report
}

fn run_recorded(shared: &Shared, job: &Job) -> Result<()> {
    let kind = match job {
        Job::Merge { .. } => JobKind::Merge,
        Job::Downsample { .. } => JobKind::Downsample,
        Job::Drop { reason: DropReason::Age | DropReason::Size, .. } | Job::Purge { .. } => JobKind::Retention,
    };
    let started = Instant::now();
    let result = run_job(&shared.engine, job);
    let took = started.elapsed();
    let now = shared.clock.now_ms();
    let summary = result.as_ref().map(|o| *o).map_err(ToString::to_string);
    shared.status.lock().job_mut(kind).record(took, &summary, now);
    result.map(|_| ())
}

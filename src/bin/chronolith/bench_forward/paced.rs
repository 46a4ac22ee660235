//! The collector's case of `bench forward`: appends offered at a steady rate (a global
//! schedule shared by the writers: the batch that brings the total to `n` samples is due
//! `n / rate` seconds after the first), with each append's latency recorded; and a
//! sampler of the forwarder's backlog while ingest runs.

use crate::ingest::Pace;
use chronolith::Db;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Pacer {
    rate: f64,
    start: OnceLock<Instant>,
    claimed: AtomicU64,
    /// Per append: (service time, how late it started), in microseconds.
    seen: Mutex<Vec<(u64, u64)>>,
}

impl Pacer {
    pub fn new(samples_per_sec: f64) -> Pacer {
        Pacer {
            rate: samples_per_sec,
            start: OnceLock::new(),
            claimed: AtomicU64::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Append latencies: p50, p99 and max of the service time, and the most an append
    /// started behind its schedule (ms).
    pub fn summary(&self) -> serde_json::Value {
        let seen = self.seen.lock();
        let mut service: Vec<u64> = seen.iter().map(|s| s.0).collect();
        service.sort_unstable();
        let pct = |p: f64| -> f64 {
            let i = ((service.len() as f64 * p).ceil() as usize).clamp(1, service.len().max(1)) - 1;
            service.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        serde_json::json!({
            "offered_samples_per_sec": self.rate,
            "appends": service.len(),
            "append_ms_p50": pct(0.50),
            "append_ms_p99": pct(0.99),
            "append_ms_max": service.last().copied().unwrap_or(0) as f64 / 1000.0,
            "behind_schedule_ms_max": seen.iter().map(|s| s.1).max().unwrap_or(0) as f64 / 1000.0,
        })
    }
}

impl Pace for Pacer {
    fn wait(&self, samples: usize) -> Instant {
        let start = *self.start.get_or_init(Instant::now);
        let before = self.claimed.fetch_add(samples as u64, Relaxed);
        let due = start + Duration::from_secs_f64(before as f64 / self.rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        due
    }

    fn record(&self, due: Instant, started: Instant, done: Instant) {
        let us = |d: Duration| d.as_micros() as u64;
        self.seen.lock().push((us(done - started), us(started.saturating_duration_since(due))));
    }
}

/// The largest backlog seen while ingest ran.
#[derive(Debug, Default)]
pub struct Backlog {
    /// Acknowledged locally, not yet confirmed (nor refused, nor dropped) by the target.
    pub samples_max: u64,
    /// The target's WAL backlog (measured by the forwarder every 200 ms).
    pub bytes_max: u64,
}

/// Samples the first target's backlog every 50 ms until `stop`.
pub fn watch_backlog(db: &Db, acked: &AtomicU64, stop: &AtomicBool) -> Backlog {
    let mut b = Backlog::default();
    while !stop.load(Relaxed) {
        if let Some(f) = db.stats().forward.first() {
            let done = f.samples_sent + f.samples_failed + f.samples_dropped;
            b.samples_max = b.samples_max.max(acked.load(Relaxed).saturating_sub(done));
            b.bytes_max = b.bytes_max.max(f.backlog_bytes);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    b
}

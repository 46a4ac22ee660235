//! Per-target counters, kept as atomics by the sender threads and read as a
//! [`TargetStats`] snapshot through `Db::stats()`. The names follow what a `/metrics`
//! page would call them (`samples_sent` → `chronolith_forward_samples_sent_total`).

use super::backoff::BreakerState;
use chronolith_wal::Position;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Upper bounds (seconds) of the request latency histogram buckets; a last `+Inf` bucket
/// is implied (its count is `request_latency.count`).
pub const LATENCY_BUCKETS_SECONDS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Request latencies, Prometheus-histogram shaped (cumulative buckets).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencyStats {
    /// Requests answered or failed (each attempt counts).
    pub count: u64,
    pub sum_seconds: f64,
    /// Cumulative: attempts that took at most [`LATENCY_BUCKETS_SECONDS`]`[i]`.
    pub buckets: [u64; 12],
}

/// One target's figures.
#[derive(Clone, Debug, Default)]
pub struct TargetStats {
    pub name: String,
    pub url: String,
    /// Samples the receiver confirmed (2xx).
    pub samples_sent: u64,
    /// Samples the receiver refused for good (a 4xx other than 429), not retried.
    pub samples_failed: u64,
    /// Samples in attempts that failed and were retried (counted per retry).
    pub samples_retried: u64,
    /// Samples never sent because the backlog went past its bound (or their WAL
    /// segments were gone when the target started).
    pub samples_dropped: u64,
    /// Samples of series the label filters leave out.
    pub samples_filtered: u64,
    /// `TimeSeries` messages in confirmed requests: a series with several samples in one
    /// request counts once (`samples_sent / timeseries_sent` is the samples per series a
    /// request carried, on average).
    pub timeseries_sent: u64,
    /// Request bodies (snappy-compressed) confirmed, in bytes.
    pub bytes_sent: u64,
    pub requests_sent: u64,
    pub requests_failed: u64,
    pub requests_retried: u64,
    /// Times the backlog bound dropped data.
    pub drops: u64,
    /// WAL bytes from the confirmed position to the end of the log.
    pub backlog_bytes: u64,
    /// Newest sample held minus newest sample confirmed, in data time (0 when caught up).
    pub backlog_age_ms: i64,
    /// Unix milliseconds of the last confirmed request.
    pub last_success_ms: Option<u64>,
    pub request_latency: LatencyStats,
    pub breaker: BreakerState,
    pub breaker_opened: u64,
    /// The durable position: the next WAL record this target needs.
    pub position: Position,
    /// The last failure or refusal, with its reason.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub samples_sent: AtomicU64,
    pub samples_failed: AtomicU64,
    pub samples_retried: AtomicU64,
    pub samples_dropped: AtomicU64,
    pub samples_filtered: AtomicU64,
    pub timeseries_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub requests_sent: AtomicU64,
    pub requests_failed: AtomicU64,
    pub requests_retried: AtomicU64,
    pub drops: AtomicU64,
    pub backlog_bytes: AtomicU64,
    pub backlog_age_ms: AtomicI64,
    pub last_success_ms: AtomicU64,
    pub latency: Mutex<LatencyStats>,
    pub last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn observe_latency(&self, seconds: f64) {
        let mut l = self.latency.lock();
        l.count += 1;
        l.sum_seconds += seconds;
        for (b, bound) in l.buckets.iter_mut().zip(LATENCY_BUCKETS_SECONDS) {
            if seconds <= bound {
                *b += 1;
            }
        }
    }

    pub(crate) fn snapshot(
        &self,
        name: &str,
        url: &str,
        breaker: (BreakerState, u64),
        position: Position,
    ) -> TargetStats {
        let last = self.last_success_ms.load(Relaxed);
        TargetStats {
            name: name.to_owned(),
            url: url.to_owned(),
            samples_sent: self.samples_sent.load(Relaxed),
            samples_failed: self.samples_failed.load(Relaxed),
            samples_retried: self.samples_retried.load(Relaxed),
            samples_dropped: self.samples_dropped.load(Relaxed),
            samples_filtered: self.samples_filtered.load(Relaxed),
            timeseries_sent: self.timeseries_sent.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            requests_sent: self.requests_sent.load(Relaxed),
            requests_failed: self.requests_failed.load(Relaxed),
            requests_retried: self.requests_retried.load(Relaxed),
            drops: self.drops.load(Relaxed),
            backlog_bytes: self.backlog_bytes.load(Relaxed),
            backlog_age_ms: self.backlog_age_ms.load(Relaxed),
            last_success_ms: (last > 0).then_some(last),
            request_latency: self.latency.lock().clone(),
            breaker: breaker.0,
            breaker_opened: breaker.1,
            position,
            last_error: self.last_error.lock().clone(),
        }
    }
}

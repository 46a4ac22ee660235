//! Bounds that turn a runaway query into a typed error instead of memory growth.

use std::time::Duration;

/// Limits for one query. `None`/`u64::MAX` means unbounded for that dimension.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Series selected by the matchers (checked before any sample is read).
    pub series_touched_max: u64,
    /// Raw samples decoded across all series (checked after each series is read, so
    /// at most one series per worker thread is read past the limit).
    pub samples_scanned_max: u64,
    /// Points in the final result.
    pub points_returned_max: u64,
    /// Evaluation steps per series; with `series_touched_max` this bounds the memory
    /// of intermediate step values (Prometheus uses the same 11,000 bound).
    pub steps_max: u64,
    /// Wall-clock budget, checked between series.
    pub deadline: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            series_touched_max: 100_000,
            samples_scanned_max: 500_000_000,
            points_returned_max: 10_000_000,
            steps_max: 11_000,
            deadline: Some(Duration::from_secs(120)),
        }
    }
}

impl Limits {
    /// No bounds at all (tests, tools).
    pub fn unlimited() -> Self {
        Self {
            series_touched_max: u64::MAX,
            samples_scanned_max: u64::MAX,
            points_returned_max: u64::MAX,
            steps_max: u64::MAX,
            deadline: None,
        }
    }
}

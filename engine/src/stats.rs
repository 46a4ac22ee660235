//! Counters the engine keeps about itself, readable at any time through `stats()`.

use crate::error::RejectReason;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Per-reason rejection counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RejectCounts {
    pub out_of_bounds: u64,
    pub duplicate_timestamp: u64,
    pub unknown_series: u64,
    pub invalid_labels: u64,
    pub series_limit: u64,
}

/// What the last open had to repair. Empty after a clean shutdown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Torn WAL tails cut back to the last valid record (unacknowledged writes).
    pub torn_tails: Vec<String>,
    /// Damaged WAL segments and blocks moved aside by salvage recovery, and why.
    pub moved_aside: Vec<String>,
    /// Temporary or half-removed block directories deleted.
    pub leftovers_removed: usize,
    /// Samples dropped because the series log lost their series (salvage only).
    pub samples_dropped: u64,
    /// Every damaged part found, one entry each: the structured form of `torn_tails` and
    /// `moved_aside`.
    pub damage: Vec<Damage>,
}

/// One damaged part of one file, and what open did about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The file as it was named when open found it.
    pub file: std::path::PathBuf,
    /// Byte offset of the first damaged byte in that file.
    pub offset: u64,
    /// Damaged bytes from `offset`, when known (0: unknown, or the file ends there).
    pub len: u64,
    /// What was expected and what was found.
    pub detail: String,
    /// A torn WAL tail (a write cut short; never acknowledged under `Durability::Always`
    /// unless a bit flip hit the last record, which looks the same).
    pub torn_tail: bool,
    /// Where the original bytes are kept (never deleted), if anywhere.
    pub kept_at: Option<std::path::PathBuf>,
    /// What left the live data because of it.
    pub dropped: String,
}

#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    /// Samples stored (accepted and not exact duplicates) since open, replay excluded.
    pub samples_appended: u64,
    /// Exact duplicates accepted and dropped.
    pub duplicates_dropped: u64,
    pub rejected: RejectCounts,
    pub samples_replayed: u64,
    /// Time spent replaying the sample log on open.
    pub replay_micros: u64,
    /// Time the whole open took (blocks, series log, sample log).
    pub open_micros: u64,
    /// What the open repaired.
    pub recovery: RecoveryReport,
    pub series: u64,
    pub head_series: u64,
    pub head_samples: u64,
    pub head_bytes: u64,
    pub head_min_t: Option<i64>,
    pub head_max_t: Option<i64>,
    /// Everything before this timestamp is sealed into blocks.
    pub sealed_until: Option<i64>,
    pub blocks: u64,
    pub block_bytes: u64,
    pub block_samples: u64,
    pub seals: u64,
    pub last_seal_ms: u64,
    pub overloaded: u64,
    pub wal_bytes_written: u64,
    pub wal_fsyncs: u64,
    pub wal_fsync_nanos_max: u64,
    pub wal_fsync_nanos_total: u64,
    pub wal_disk_bytes: u64,
    pub wal_segments: u64,
}

/// Live counters (atomics), folded into [`EngineStats`] on demand.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub samples_appended: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    pub out_of_bounds: AtomicU64,
    pub duplicate_timestamp: AtomicU64,
    pub unknown_series: AtomicU64,
    pub invalid_labels: AtomicU64,
    pub series_limit: AtomicU64,
    pub samples_replayed: AtomicU64,
    pub replay_micros: AtomicU64,
    pub open_micros: AtomicU64,
    pub seals: AtomicU64,
    pub last_seal_ms: AtomicU64,
    pub overloaded: AtomicU64,
}

impl Counters {
    pub fn reject(&self, reason: RejectReason) {
        let c = match reason {
            RejectReason::OutOfBounds => &self.out_of_bounds,
            RejectReason::DuplicateTimestamp => &self.duplicate_timestamp,
            RejectReason::UnknownSeries => &self.unknown_series,
            RejectReason::InvalidLabels => &self.invalid_labels,
            RejectReason::SeriesLimit => &self.series_limit,
        };
        c.fetch_add(1, Relaxed);
    }

    pub fn rejects(&self) -> RejectCounts {
        RejectCounts {
            out_of_bounds: self.out_of_bounds.load(Relaxed),
            duplicate_timestamp: self.duplicate_timestamp.load(Relaxed),
            unknown_series: self.unknown_series.load(Relaxed),
            invalid_labels: self.invalid_labels.load(Relaxed),
            series_limit: self.series_limit.load(Relaxed),
        }
    }
}

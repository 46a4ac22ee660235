//! Engine options with the defaults a collector gets when it sets nothing.

use crate::error::{Error, Result};
use crate::labels::LabelLimits;
use chronolith_wal::{Durability, RecoveryMode};

#[derive(Clone, Debug)]
pub struct Options {
    /// Width of a time partition: the head is sealed into one block per partition.
    pub partition_ms: i64,
    /// How far behind the newest sample a sample may arrive and still be accepted.
    /// A partition is sealed once the newest sample is past its end plus this window.
    pub ooo_window_ms: i64,
    /// When `append` returns: after fsync (`Always`, default), after write(2) with a
    /// background fsync (`Periodic`), or after write(2) only (`Never`). In every mode an
    /// acknowledged sample survives a process kill; only `Always` survives power loss.
    pub durability: Durability,
    pub wal_segment_bytes_max: u64,
    /// What to do with a damaged WAL on open: truncate a torn tail (default) and fail on
    /// damage elsewhere, or salvage what is valid and move damaged segments aside.
    pub recovery_mode: RecoveryMode,
    /// Bound on head memory. Past it, `append` waits for sealing up to
    /// `overload_wait_ms` and then returns `Error::Overloaded`.
    pub head_bytes_max: usize,
    pub overload_wait_ms: u64,
    pub label_limits: LabelLimits,
    /// Bound on distinct series (cardinality). An append or `series_ref` that would create
    /// series past it fails with `Error::SeriesLimit` and writes nothing; appends naming
    /// only existing series go on. `None` (default): unlimited.
    pub series_max: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            partition_ms: 2 * 3600 * 1000,
            ooo_window_ms: 5 * 60 * 1000,
            durability: Durability::Always,
            wal_segment_bytes_max: 64 << 20,
            recovery_mode: RecoveryMode::TruncateTornTail,
            head_bytes_max: 512 << 20,
            overload_wait_ms: 1000,
            label_limits: LabelLimits::default(),
            series_max: None,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<()> {
        if self.partition_ms < 60_000 {
            return Err(Error::InvalidOptions(format!("partition_ms {} is below one minute", self.partition_ms)));
        }
        if self.ooo_window_ms < 0 {
            return Err(Error::InvalidOptions("ooo_window_ms must not be negative".into()));
        }
        if self.wal_segment_bytes_max < 64 * 1024 {
            return Err(Error::InvalidOptions("wal_segment_bytes_max below 64 KiB".into()));
        }
        if self.head_bytes_max < 1 << 20 {
            return Err(Error::InvalidOptions("head_bytes_max below 1 MiB".into()));
        }
        Ok(())
    }
}

//! Core value types shared by every layer.

use std::fmt;

/// Milliseconds since the Unix epoch (may be negative for historic data).
pub type Timestamp = i64;

/// Stable numeric identity of a series, assigned on first sight and logged before any of
/// its samples. Ids are dense and start at 1; they double as the hot-path "series ref".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesId(pub u64);

impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One observation of a series.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub t: Timestamp,
    pub v: f64,
}

impl Sample {
    pub fn new(t: Timestamp, v: f64) -> Self {
        Self { t, v }
    }

    /// Exact identity: same timestamp and the same bits (so NaN equals the same NaN and
    /// `0.0` differs from `-0.0`). This is the duplicate rule of the write path.
    pub fn same_as(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

impl PartialEq for Sample {
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other)
    }
}

//! Options, ids, positions and reports.

use std::fmt;
use std::path::PathBuf;

/// Identifies one segment file (`<20-digit id>.wal`). Ids only grow.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SegmentId(pub u64);

impl SegmentId {
    /// The id after this one.
    #[must_use]
    pub fn next(self) -> SegmentId {
        SegmentId(self.0.saturating_add(1))
    }
}

impl fmt::Display for SegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08}", self.0)
    }
}

/// Where a record's frame starts: segment and byte offset in the segment file.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// The segment holding the record.
    pub segment: SegmentId,
    /// Byte offset of the record's frame header in the segment file.
    pub offset: u64,
}

/// When appended bytes are made durable (fdatasync).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// `append` returns only after its bytes are fsynced. Concurrent appenders share fsyncs.
    #[default]
    Always,
    /// `append` returns after write(2); a background thread fsyncs every `interval_ms`.
    Periodic {
        /// Interval between background fsyncs, in milliseconds (0 is treated as 1).
        interval_ms: u64,
    },
    /// `append` returns after write(2); fsync only on `sync`, `cut`, segment rotation and
    /// `close`.
    Never,
}

/// What `open` does with bytes that do not validate. See `FORMAT.md`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// A torn tail of the last segment is truncated away; any other damage is
    /// [`crate::Error::Corruption`].
    #[default]
    TruncateTornTail,
    /// Keep every valid record: skip each damaged range up to the next frame that
    /// validates, move the damaged file to `damaged/` (never deleted), rewrite its valid
    /// records under the same id, and continue with later segments.
    Salvage,
}

/// Options for [`crate::Wal::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment is started when an append would grow the current one past this size.
    /// A single append larger than this still goes into one (oversized) segment.
    pub segment_bytes_max: u64,
    /// Durability policy for `append`.
    pub durability: Durability,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_bytes_max: 64 * 1024 * 1024, durability: Durability::Always }
    }
}

/// What `open` found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Segment files replayed.
    pub segments: u64,
    /// Valid records handed to the callback.
    pub records: u64,
    /// Valid bytes replayed: segment headers plus record frames.
    pub bytes: u64,
    /// A torn tail that was cut: (segment, offset cut at, bytes dropped).
    pub truncated_tail: Option<(SegmentId, u64, u64)>,
    /// Where the bytes that cut dropped are kept (`damaged/<segment>.wal.torn`), unless
    /// they were all zeros.
    pub torn_tail_kept_at: Option<PathBuf>,
    /// Damaged segments moved aside in [`RecoveryMode::Salvage`].
    pub salvaged: Vec<SalvageEvent>,
}

/// One damaged byte range of a segment, cut out by [`RecoveryMode::Salvage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalvageEvent {
    /// The damaged segment.
    pub segment: SegmentId,
    /// Offset of the first bad byte (in the original file).
    pub offset: u64,
    /// Bytes dropped from `offset` (up to the next valid frame or the end of the file).
    pub bytes: u64,
    /// Where the original, untouched file now lives (under `dir/damaged/`).
    pub moved_to: PathBuf,
    /// Why the bytes at `offset` did not validate.
    pub reason: String,
}

/// Counters since `open`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Record-frame bytes written (headers included, segment headers not).
    pub bytes_written: u64,
    /// Records appended and written.
    pub records_written: u64,
    /// fdatasync calls on segment files.
    pub fsyncs: u64,
    /// Total time spent in those fdatasync calls.
    pub fsync_nanos_total: u64,
    /// Longest single fdatasync.
    pub fsync_nanos_max: u64,
    /// Segment files currently in the directory (including the current one).
    pub segments: u64,
    /// Their total size in bytes.
    pub disk_bytes: u64,
    /// The segment new appends go to.
    pub current_segment: SegmentId,
}

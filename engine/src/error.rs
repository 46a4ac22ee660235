//! The engine's one error enum. Expected outcomes a caller acts on (overload, bad labels)
//! are their own variants; per-sample rejections are not errors at all but
//! [`RejectReason`]s in the append report, so one bad sample never fails a batch.

use crate::types::SeriesId;
use std::fmt;
use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem call failed.
    Io { path: PathBuf, op: &'static str, source: std::io::Error },
    /// The write-ahead log failed (I/O, corruption found on replay, or poisoned).
    Wal(chronolith_wal::Error),
    /// A file does not check out: wrong magic or version, checksum mismatch, or a
    /// structure that does not decode. Carries the file, the byte offset and what differs.
    Corruption { path: PathBuf, offset: u64, detail: String },
    /// A label set breaks the label rules or limits.
    InvalidLabels(String),
    /// A matcher's regex does not compile or is too large.
    InvalidMatcher(String),
    /// Options that cannot work together.
    InvalidOptions(String),
    /// Head memory stayed above its bound for the whole wait: the caller should slow
    /// down or retry later. Nothing from the batch was written.
    Overloaded { head_bytes: usize, head_bytes_max: usize, waited_ms: u64 },
    /// Another process holds the data directory.
    Locked(PathBuf),
    /// `series_ref` would create a series beyond `Options::series_max`. (In an append,
    /// such samples are rejected one by one with [`RejectReason::SeriesLimit`] instead.)
    SeriesLimit { limit: usize, series: usize, new: usize },
    /// A series ref that this database never issued.
    UnknownSeries(SeriesId),
    /// The engine was closed, or a previous WAL failure poisoned it: reopen to recover.
    Closed,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), op, source }
    }

    /// True when the disk is full (ENOSPC), directly or inside the WAL: nothing of the
    /// operation was acknowledged, and it can be retried once space is freed.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Self::Io { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            Self::Wal(e) => e.is_storage_full(),
            _ => false,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, offset: u64, detail: impl Into<String>) -> Self {
        Self::Corruption { path: path.into(), offset, detail: detail.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
            Self::Wal(e) => write!(f, "write-ahead log: {e}"),
            Self::Corruption { path, offset, detail } => {
                write!(f, "corruption in {} at byte {offset}: {detail}", path.display())
            }
            Self::InvalidLabels(m) => write!(f, "invalid labels: {m}"),
            Self::InvalidMatcher(m) => write!(f, "invalid matcher: {m}"),
            Self::InvalidOptions(m) => write!(f, "invalid options: {m}"),
            Self::Overloaded { head_bytes, head_bytes_max, waited_ms } => write!(
                f,
                "overloaded: head holds {head_bytes} bytes, limit {head_bytes_max}; waited {waited_ms} ms for sealing to catch up"
            ),
            Self::Locked(p) => write!(f, "data directory {} is locked by another process", p.display()),
            Self::SeriesLimit { limit, series, new } => write!(
                f,
                "series limit reached: {series} series exist, the limit is {limit}, and this would add {new} new ones"
            ),
            Self::UnknownSeries(id) => write!(f, "unknown series ref {id}"),
            Self::Closed => write!(f, "database is closed or poisoned by an earlier write failure; reopen it"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Wal(e) => Some(e),
            _ => None,
        }
    }
}

impl From<chronolith_wal::Error> for Error {
    fn from(e: chronolith_wal::Error) -> Self {
        Self::Wal(e)
    }
}

/// Why one sample of a batch was not stored. The rest of the batch is unaffected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Older than the out-of-order window, or inside a time range already sealed.
    OutOfBounds,
    /// The same series and timestamp already hold a different value.
    DuplicateTimestamp,
    /// The batch named a series ref this database never issued.
    UnknownSeries,
    /// The batch named the series by a label set that breaks the label rules.
    InvalidLabels,
    /// The sample names a new series, and creating it would pass `Options::series_max`.
    SeriesLimit,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OutOfBounds => "out of bounds",
            Self::DuplicateTimestamp => "duplicate timestamp with a different value",
            Self::UnknownSeries => "unknown series ref",
            Self::InvalidLabels => "invalid labels",
            Self::SeriesLimit => "new series over the series limit",
        })
    }
}

//! The crate's single error type.

use std::fmt;
use std::path::PathBuf;

use crate::SegmentId;

/// Everything that can go wrong in the WAL.
#[derive(Debug)]
pub enum Error {
    /// A filesystem call failed. `op` names the call (`"open"`, `"write"`, `"fdatasync"`, ...).
    Io {
        /// The file or directory the call was made on.
        path: PathBuf,
        /// The operation that failed.
        op: &'static str,
        /// The underlying OS error.
        source: std::io::Error,
    },
    /// Bytes on disk do not validate and the recovery mode does not allow skipping them.
    Corruption {
        /// Segment holding the bad bytes.
        segment: SegmentId,
        /// Byte offset in that segment file where the bad header or frame starts.
        offset: u64,
        /// What was wrong, e.g. `crc mismatch: expected 0x1234abcd found 0x00000000`.
        reason: String,
    },
    /// An fsync failed earlier (or a failed write could not be rolled back); the state of
    /// the file is unknown. Reopen the WAL to recover (replay shows exactly what reached
    /// the disk). A failed write that was rolled back does not poison: the append that hit
    /// it returns [`Error::Io`] and later appends go on.
    Poisoned,
    /// A record's payload is larger than the format allows.
    RecordTooLarge {
        /// The payload length asked for.
        len: usize,
        /// The largest payload accepted ([`crate::MAX_RECORD_BYTES`]).
        max: usize,
    },
    /// Record type 0 is reserved for the WAL's own seal frames; use 1..=255.
    ReservedRecordType {
        /// The type asked for.
        record_type: u8,
    },
    /// The WAL was closed.
    Closed,
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), op, source }
    }

    /// The same error again, for every appender of a failed batch (`io::Error` is not
    /// `Clone`; the OS error code or kind is kept).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Error::Io { path, op, source } => {
                let source = match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                };
                Error::Io { path: path.clone(), op, source }
            }
            Error::Corruption { segment, offset, reason } => {
                Error::Corruption { segment: *segment, offset: *offset, reason: reason.clone() }
            }
            Error::Poisoned => Error::Poisoned,
            Error::RecordTooLarge { len, max } => Error::RecordTooLarge { len: *len, max: *max },
            Error::ReservedRecordType { record_type } => Error::ReservedRecordType { record_type: *record_type },
            Error::Closed => Error::Closed,
        }
    }

    /// True for an ENOSPC ("no space left on device") I/O error: retry once space is freed.
    #[must_use]
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull)
    }

    /// A failed fsync: the file's state is unknown, so the WAL poisons itself.
    pub(crate) fn is_sync_failure(&self) -> bool {
        matches!(self, Error::Io { op: "fdatasync" | "fsync" | "fsync_dir", .. })
    }

    pub(crate) fn corruption(segment: SegmentId, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption { segment, offset, reason: reason.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, op, source } => {
                write!(f, "wal i/o error: {op} {}: {source}", path.display())
            }
            Error::Corruption { segment, offset, reason } => {
                write!(f, "wal corruption in segment {segment} at offset {offset}: {reason}")
            }
            Error::Poisoned => f.write_str("wal is poisoned: an earlier write or fsync failed; reopen to recover"),
            Error::RecordTooLarge { len, max } => {
                write!(f, "wal record too large: {len} bytes, max {max}")
            }
            Error::ReservedRecordType { record_type } => {
                write!(f, "wal record type {record_type} is reserved")
            }
            Error::Closed => f.write_str("wal is closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

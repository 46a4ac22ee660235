//! Chronolith's storage mechanism: the data model, the series registry and label index,
//! the in-memory head, chunk codecs, the sealed block format and the block set, and
//! recovery on open. All on-disk formats of the engine live here (see `FORMAT.md`).
//!
//! The engine provides mechanism (append, seal a time range into a block, swap the block
//! set, read a consistent view); the `chronolith-compaction` crate decides when.

pub mod block;
pub mod blockset;
pub mod chunk;
mod engine;
mod error;
mod fsutil;
pub mod head;
mod labels;
mod matcher;
mod options;
mod registry;
mod salvage;
mod stats;
mod types;
mod varint;
pub mod walrec;

pub use engine::{AppendReport, Batch, Engine, Rejection, Select, SeriesSamples, WalSegment};
pub use engine::{BLOCKS_DIR, SAMPLE_LOG_DIR, SERIES_LOG_DIR};
pub use error::{Error, RejectReason, Result};
pub use labels::{LabelLimits, Labels};
pub use matcher::{parse_selector, MatchOp, Matcher};
pub use options::{parse_duration_ms, CompactionOptions, Options, Retention, RollupTier, SelectorRetention};
pub use registry::Registry;
pub use salvage::DAMAGED_DIR;
pub use stats::{Damage, EngineStats, RecoveryReport, RejectCounts};
pub use types::{Sample, SeriesId, Timestamp};

pub use chronolith_wal::{Durability, RecoveryMode};

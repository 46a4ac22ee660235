//! Chronolith's background policies. The engine provides mechanism (write a block, swap
//! the block set atomically, read a snapshot); this crate decides what and when:
//! - the [`Sealer`] turns closed head partitions into blocks;
//! - the [`Compactor`] merges adjacent partitions into larger blocks, downsamples old
//!   data into rollup tiers, and drops blocks past their retention (by age, counted
//!   from the newest sample held, and optionally by total size).

mod clock;
mod compactor;
mod jobs;
pub mod plan;
mod sealer;
mod status;

pub use clock::{Clock, ManualClock, SystemClock};
pub use compactor::{Compactor, PassReport};
pub use jobs::run_job;
pub use sealer::{Sealer, SealerStatus};
pub use status::{CompactionStatus, JobKind, JobOutcome, JobStats};

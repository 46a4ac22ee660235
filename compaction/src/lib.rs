//! Chronolith's background policies. The engine provides mechanism (seal a range, swap
//! the block set); this crate decides when. Today: the sealer, which turns closed head
//! partitions into blocks. Merging, downsampling and retention arrive here next.

mod sealer;

pub use sealer::{Sealer, SealerStatus};

//! Sealed blocks: immutable directories of one time partition (`FORMAT.md` beside this
//! file specifies every byte). Written by [`BlockWriter`], read by [`Block`] through a
//! read-only memory map.

mod index;
mod meta;
mod mmap;
mod reader;
pub mod rollup;
mod writer;

pub use index::{decode as decode_index, ChunkRef, Index};
pub use meta::{BlockMeta, META_VERSION, META_VERSION_ROLLUP};
pub use reader::{Block, ChunkDamage};
pub use writer::{BlockWriter, SEALED_CHUNK_SAMPLES_MAX};

pub const CHUNKS_FILE: &str = "chunks";
pub const INDEX_FILE: &str = "index";
pub const META_FILE: &str = "meta";
pub const CHUNKS_MAGIC: [u8; 4] = *b"CHBC";
pub const CHUNKS_VERSION: u32 = 1;
/// The `chunks` file of a rollup block: same framing, rollup chunk payloads.
pub const CHUNKS_VERSION_ROLLUP: u32 = 2;

/// `b` + 16 hex digits of the sequence number: sorts by sequence.
pub fn block_dir_name(seq: u64) -> String {
    format!("b{seq:016x}")
}

/// The sequence number of a block directory name, if it is one (not a `.tmp`).
pub fn parse_block_dir_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix('b')?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

//! Chunk codecs: the streaming XOR codec used by the in-memory head (open chunks) and the
//! sealed-chunk codec family written into blocks. The byte layouts are specified in
//! `FORMAT.md` beside this file.
//!
//! Chunks carry no checksum of their own: the block writer frames every chunk with a length
//! and a CRC. Decoders still never panic, never loop forever and allocate at most a bounded
//! amount on any input, so a corrupted chunk is always reported as a [`ChunkDecodeError`].

mod bitpack;
mod bits;
mod decimal;
mod intcol;
pub mod sealed;
mod varint;
pub mod xor;

#[cfg(test)]
mod tests;

use std::fmt;

pub use sealed::{decode_sealed, encode_sealed, encode_sealed_fast, SealedCodec, MAX_SAMPLES_PER_CHUNK};
pub use xor::{XorDecoder, XorEncoder};

/// A chunk that does not decode. Carries the byte offset inside the chunk (where the decoder
/// was when it gave up) and a static reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkDecodeError {
    /// Byte offset inside the chunk bytes handed to the decoder.
    pub offset: usize,
    /// What was wrong there.
    pub reason: &'static str,
}

impl ChunkDecodeError {
    pub(crate) const fn new(offset: usize, reason: &'static str) -> Self {
        Self { offset, reason }
    }
}

impl fmt::Display for ChunkDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt chunk at byte {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for ChunkDecodeError {}

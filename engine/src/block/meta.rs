//! `meta`: a block's identity and summary. Layout in `block/FORMAT.md`.

use crate::error::{Error, Result};
use std::path::Path;

pub const META_MAGIC: [u8; 4] = *b"CHBM";
/// Raw blocks are written as version 1 (unchanged since the first release); rollup
/// blocks as version 2, which adds the covered range. Both are read.
pub const META_VERSION: u32 = 1;
pub const META_VERSION_ROLLUP: u32 = 2;
/// Fixed part of a v1 meta, before the parents list and the CRC.
const META_FIXED_BYTES: usize = 88;
/// Fixed part of a v2 meta: v1's plus `covers_from` and `covers_to`.
const META_V2_FIXED_BYTES: usize = META_FIXED_BYTES + 16;
/// A block merged from more than this many parents is refused (corrupt count guard).
const PARENTS_MAX: usize = 1 << 16;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BlockMeta {
    /// Unique, increasing sequence number; also the directory name.
    pub seq: u64,
    pub min_t: i64,
    pub max_t: i64,
    pub series: u64,
    pub chunks: u64,
    pub samples: u64,
    /// 0 for raw samples; the window width for rollups.
    pub resolution_ms: u64,
    /// 0 for a block sealed from the head; higher for merged blocks.
    pub level: u32,
    pub chunks_bytes: u64,
    pub index_bytes: u64,
    pub index_crc: u32,
    /// Blocks this one replaces (a merge's inputs): on open, those are deleted if they
    /// are still around, so a crash mid-merge never reads data twice.
    pub parents: Vec<u64>,
    /// Rollup blocks only (v2): the block summarises every sample with
    /// `covers_from < t <= covers_to` (bucket ends in that range); both are multiples of
    /// `resolution_ms`. Zero for raw blocks.
    pub covers_from: i64,
    pub covers_to: i64,
}

impl BlockMeta {
    pub fn is_rollup(&self) -> bool {
        self.resolution_ms > 0
    }

    fn version(&self) -> u32 {
        if self.is_rollup() {
            META_VERSION_ROLLUP
        } else {
            META_VERSION
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(META_V2_FIXED_BYTES + 8 * self.parents.len() + 8);
        b.extend_from_slice(&META_MAGIC);
        b.extend_from_slice(&self.version().to_le_bytes());
        for v in [self.seq, self.min_t as u64, self.max_t as u64, self.series, self.chunks, self.samples] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&self.resolution_ms.to_le_bytes());
        b.extend_from_slice(&self.level.to_le_bytes());
        b.extend_from_slice(&self.chunks_bytes.to_le_bytes());
        b.extend_from_slice(&self.index_bytes.to_le_bytes());
        b.extend_from_slice(&self.index_crc.to_le_bytes());
        debug_assert_eq!(b.len(), META_FIXED_BYTES);
        if self.is_rollup() {
            b.extend_from_slice(&self.covers_from.to_le_bytes());
            b.extend_from_slice(&self.covers_to.to_le_bytes());
        }
        b.extend_from_slice(&(self.parents.len() as u32).to_le_bytes());
        for p in &self.parents {
            b.extend_from_slice(&p.to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let corrupt = |off: usize, d: String| Error::corrupt(path, off as u64, d);
        if bytes.len() < META_FIXED_BYTES + 8 {
            return Err(corrupt(
                0,
                format!("meta is {} bytes, expected at least {}", bytes.len(), META_FIXED_BYTES + 8),
            ));
        }
        let (body, crc_bytes) = bytes.split_at(bytes.len() - 4);
        let found = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        let expected = crc32fast::hash(body);
        if found != expected {
            return Err(corrupt(body.len(), format!("crc mismatch: computed {expected:#010x}, stored {found:#010x}")));
        }
        if body[0..4] != META_MAGIC {
            return Err(corrupt(0, format!("bad magic {:?}", &body[0..4])));
        }
        let u32_at = |o: usize| u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&body[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let version = u32_at(4);
        let fixed = match version {
            META_VERSION => META_FIXED_BYTES,
            META_VERSION_ROLLUP if body.len() >= META_V2_FIXED_BYTES + 4 => META_V2_FIXED_BYTES,
            META_VERSION_ROLLUP => return Err(corrupt(0, format!("v2 meta is only {} bytes", bytes.len()))),
            _ => return Err(corrupt(4, format!("unsupported meta version {version}"))),
        };
        let parents_len = u32_at(fixed) as usize;
        if parents_len > PARENTS_MAX || body.len() != fixed + 4 + 8 * parents_len {
            return Err(corrupt(fixed, format!("parents count {parents_len} does not fit the file")));
        }
        let meta = Self {
            seq: u64_at(8),
            min_t: u64_at(16) as i64,
            max_t: u64_at(24) as i64,
            series: u64_at(32),
            chunks: u64_at(40),
            samples: u64_at(48),
            resolution_ms: u64_at(56),
            level: u32_at(64),
            chunks_bytes: u64_at(68),
            index_bytes: u64_at(76),
            index_crc: u32_at(84),
            parents: (0..parents_len).map(|i| u64_at(fixed + 4 + 8 * i)).collect(),
            covers_from: if fixed == META_V2_FIXED_BYTES { u64_at(88) as i64 } else { 0 },
            covers_to: if fixed == META_V2_FIXED_BYTES { u64_at(96) as i64 } else { 0 },
        };
        if (version == META_VERSION_ROLLUP) != meta.is_rollup() {
            return Err(corrupt(56, format!("meta v{version} with resolution {} ms", meta.resolution_ms)));
        }
        if meta.is_rollup() && meta.covers_from > meta.covers_to {
            return Err(corrupt(88, format!("covers ({}, {}] is backwards", meta.covers_from, meta.covers_to)));
        }
        if meta.min_t > meta.max_t && meta.samples > 0 {
            return Err(corrupt(16, format!("min_t {} after max_t {}", meta.min_t, meta.max_t)));
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_detects_flips() {
        let m = BlockMeta { seq: 7, min_t: -5, max_t: 99, samples: 3, parents: vec![1, 2], ..Default::default() };
        let b = m.encode();
        let p = Path::new("meta");
        assert_eq!(BlockMeta::decode(&b, p).ok(), Some(m));
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(BlockMeta::decode(&c, p).is_err(), "flip at {i} undetected");
        }
        assert!(BlockMeta::decode(&b[..b.len() - 1], p).is_err());
    }

    #[test]
    fn rollup_meta_is_v2_and_round_trips() {
        let m = BlockMeta {
            seq: 9,
            resolution_ms: 300_000,
            covers_from: 0,
            covers_to: 86_400_000,
            parents: vec![3],
            ..Default::default()
        };
        let b = m.encode();
        assert_eq!(b[4..8], META_VERSION_ROLLUP.to_le_bytes());
        let p = Path::new("meta");
        assert_eq!(BlockMeta::decode(&b, p).ok(), Some(m));
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(BlockMeta::decode(&c, p).is_err(), "flip at {i} undetected");
        }
    }
}

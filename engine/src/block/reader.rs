//! Opens a sealed block: checks meta and index, maps `chunks` read-only, and decodes
//! chunks on demand, verifying each chunk's CRC before decoding it.

use super::index::{self, ChunkRef, Index};
use super::meta::BlockMeta;
use super::mmap::map_readonly;
use super::rollup::{decode_rollup_chunk, Buckets, ColumnSet};
use super::{CHUNKS_FILE, CHUNKS_MAGIC, CHUNKS_VERSION, CHUNKS_VERSION_ROLLUP, INDEX_FILE, META_FILE};
use crate::chunk::decode_sealed;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::labels::Labels;
use crate::types::{Sample, SeriesId};
use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// One damaged part of a block's `chunks` file, as found by [`Block::open_lenient`] (the
/// whole file: wrong size, bad header) or [`Block::damaged_chunks`] (one chunk frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkDamage {
    pub file: PathBuf,
    pub offset: u64,
    /// What was expected and what was found.
    pub detail: String,
    /// For a damaged chunk: its series and its index entry.
    pub series: Option<SeriesId>,
    pub chunk: Option<ChunkRef>,
}

impl ChunkDamage {
    fn file(path: &Path, offset: u64, detail: String) -> Self {
        Self { file: path.to_path_buf(), offset, detail, series: None, chunk: None }
    }
}

#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: Index,
    chunks: Mmap,
}

impl Block {
    /// Opens and checks a block; `on_series` receives every series' labels (the engine
    /// registers them).
    pub fn open(dir: &Path, on_series: impl FnMut(SeriesId, Labels)) -> Result<Self> {
        let (block, damage) = Self::open_inner(dir, on_series)?;
        match damage.into_iter().next() {
            Some(d) => Err(Error::corrupt(d.file, d.offset, d.detail)),
            None => Ok(block),
        }
    }

    /// Opens a block whose `meta` and `index` check out, tolerating a `chunks` file of the
    /// wrong size or with a bad header: those are returned as damage (the chunk frames
    /// are still checked one by one by [`Block::damaged_chunks`]). For salvage and
    /// `chronolith check`.
    pub fn open_lenient(dir: &Path, on_series: impl FnMut(SeriesId, Labels)) -> Result<(Self, Vec<ChunkDamage>)> {
        Self::open_inner(dir, on_series)
    }

    fn open_inner(dir: &Path, on_series: impl FnMut(SeriesId, Labels)) -> Result<(Self, Vec<ChunkDamage>)> {
        let meta_path = dir.join(META_FILE);
        let meta = BlockMeta::decode(&fsutil::read(&meta_path)?, &meta_path)?;
        let index_path = dir.join(INDEX_FILE);
        let index_bytes = fsutil::read(&index_path)?;
        if index_bytes.len() as u64 != meta.index_bytes {
            return Err(Error::corrupt(
                &index_path,
                index_bytes.len() as u64,
                format!("index is {} bytes, meta says {}", index_bytes.len(), meta.index_bytes),
            ));
        }
        let index = index::decode(&index_bytes, &index_path, on_series)?;
        let chunks_path = dir.join(CHUNKS_FILE);
        let f = File::open(&chunks_path).map_err(|e| Error::io(&chunks_path, "open", e))?;
        let chunks = map_readonly(&f).map_err(|e| Error::io(&chunks_path, "mmap", e))?;
        let mut damage = Vec::new();
        if chunks.len() as u64 != meta.chunks_bytes {
            damage.push(ChunkDamage::file(
                &chunks_path,
                chunks.len().min(meta.chunks_bytes as usize) as u64,
                format!("chunks file is {} bytes, meta says {}", chunks.len(), meta.chunks_bytes),
            ));
        }
        let version = if meta.is_rollup() { CHUNKS_VERSION_ROLLUP } else { CHUNKS_VERSION };
        let expected: Vec<u8> = [CHUNKS_MAGIC, version.to_le_bytes()].concat();
        if chunks.get(0..8) != Some(&expected[..]) {
            let found = &chunks[..chunks.len().min(8)];
            damage.push(ChunkDamage::file(
                &chunks_path,
                0,
                format!("bad chunks header: expected {expected:02x?}, found {found:02x?}"),
            ));
        }
        Ok((Self { dir: dir.to_path_buf(), meta, index, chunks }, damage))
    }

    /// Every chunk whose frame is out of the file, fails its CRC, or (with `decode`) does
    /// not decode to what the index says. Without `decode` this reads each byte once and
    /// computes CRCs only: the check open runs in salvage mode.
    pub fn damaged_chunks(&self, decode: bool) -> Vec<ChunkDamage> {
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        let mut buckets = Buckets::default();
        let mut out = Vec::new();
        for e in &self.index.series {
            for c in self.index.chunks.get(e.chunks_from as usize..e.chunks_to as usize).unwrap_or(&[]) {
                let res = match (decode, self.is_rollup()) {
                    (false, _) => self.chunk_bytes(c).map(|_| ()),
                    (true, false) => {
                        ts.clear();
                        vs.clear();
                        self.decode_chunk(c, &mut ts, &mut vs)
                    }
                    (true, true) => {
                        buckets.clear();
                        self.decode_rollup_chunk(c, ColumnSet::ALL, &mut buckets)
                    }
                };
                if let Err(Error::Corruption { path, offset, detail }) = res {
                    out.push(ChunkDamage { file: path, offset, detail, series: Some(e.id), chunk: Some(*c) });
                }
            }
        }
        out
    }

    /// The frame (length, CRC, payload) of one chunk as stored, for copying it verbatim.
    pub fn chunk_frame(&self, c: &ChunkRef) -> Result<&[u8]> {
        let body = self.chunk_bytes(c)?;
        let off = c.offset as usize;
        Ok(&self.chunks[off..off + 8 + body.len()])
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn series_ids(&self) -> impl Iterator<Item = SeriesId> + '_ {
        self.index.series.iter().map(|e| e.id)
    }

    pub fn chunks_of(&self, id: SeriesId) -> &[ChunkRef] {
        self.index.chunks_of(id)
    }

    /// A rollup block (`meta.resolution_ms > 0`): its chunks hold buckets, not samples.
    pub fn is_rollup(&self) -> bool {
        self.meta.is_rollup()
    }

    /// Decodes the columns `want` of one rollup chunk onto the end of `out`, checking it
    /// against its ref.
    pub fn decode_rollup_chunk(&self, c: &ChunkRef, want: ColumnSet, out: &mut Buckets) -> Result<()> {
        let body = self.chunk_bytes(c)?;
        let mark = out.end_t.len();
        decode_rollup_chunk(body, want, out)
            .map_err(|e| Error::corrupt(self.dir.join(CHUNKS_FILE), c.offset + 8 + e.offset as u64, e.reason))?;
        let got = &out.end_t[mark..];
        if got.len() != c.samples as usize || got.first() != Some(&c.min_t) || got.last() != Some(&c.max_t) {
            return Err(Error::corrupt(
                self.dir.join(CHUNKS_FILE),
                c.offset,
                format!(
                    "rollup chunk holds {} buckets, index says {} in [{}, {}]",
                    got.len(),
                    c.samples,
                    c.min_t,
                    c.max_t
                ),
            ));
        }
        Ok(())
    }

    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.meta.samples > 0 && self.meta.min_t <= end && self.meta.max_t >= start
    }

    /// The checked bytes of one chunk.
    pub fn chunk_bytes(&self, c: &ChunkRef) -> Result<&[u8]> {
        let path = || self.dir.join(CHUNKS_FILE);
        let off = usize::try_from(c.offset).map_err(|_| Error::corrupt(path(), c.offset, "offset"))?;
        let header = self
            .chunks
            .get(off..off.saturating_add(8))
            .ok_or_else(|| Error::corrupt(path(), c.offset, "chunk frame past end of file"))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let body = self
            .chunks
            .get(off + 8..(off + 8).saturating_add(len))
            .ok_or_else(|| Error::corrupt(path(), c.offset, format!("chunk length {len} past end of file")))?;
        let computed = crc32fast::hash(body);
        if computed != stored {
            return Err(Error::corrupt(
                path(),
                c.offset,
                format!("chunk crc mismatch: computed {computed:#010x}, stored {stored:#010x}"),
            ));
        }
        Ok(body)
    }

    /// Decodes one chunk into `out` (whole, unfiltered), checking it against its ref.
    pub fn decode_chunk(&self, c: &ChunkRef, ts: &mut Vec<i64>, vs: &mut Vec<f64>) -> Result<()> {
        let body = self.chunk_bytes(c)?;
        let mark = ts.len();
        decode_sealed(body, ts, vs)
            .map_err(|e| Error::corrupt(self.dir.join(CHUNKS_FILE), c.offset + 8 + e.offset as u64, e.reason))?;
        let got = &ts[mark..];
        if got.len() != c.samples as usize || got.first() != Some(&c.min_t) || got.last() != Some(&c.max_t) {
            return Err(Error::corrupt(
                self.dir.join(CHUNKS_FILE),
                c.offset,
                format!("chunk holds {} samples, index says {} in [{}, {}]", got.len(), c.samples, c.min_t, c.max_t),
            ));
        }
        Ok(())
    }

    /// Appends the samples of `id` in `[start, end]` to `out`, in time order.
    pub fn read(&self, id: SeriesId, start: i64, end: i64, out: &mut Vec<Sample>) -> Result<()> {
        if self.is_rollup() {
            return Ok(());
        }
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        for c in self.chunks_of(id).iter().filter(|c| c.min_t <= end && c.max_t >= start) {
            ts.clear();
            vs.clear();
            self.decode_chunk(c, &mut ts, &mut vs)?;
            out.extend(
                ts.iter().zip(&vs).filter(|(t, _)| **t >= start && **t <= end).map(|(t, v)| Sample::new(*t, *v)),
            );
        }
        Ok(())
    }

    /// Every series of the block with its chunk references, ascending by id.
    pub fn series_chunks(&self) -> impl Iterator<Item = (SeriesId, &[ChunkRef])> + '_ {
        self.index
            .series
            .iter()
            .map(|e| (e.id, self.index.chunks.get(e.chunks_from as usize..e.chunks_to as usize).unwrap_or(&[])))
    }

    /// Decodes every chunk and checks every checksum; returns the samples seen.
    pub fn verify(&self) -> Result<u64> {
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        let mut buckets = Buckets::default();
        let mut n = 0;
        for c in &self.index.chunks {
            if self.is_rollup() {
                buckets.clear();
                self.decode_rollup_chunk(c, ColumnSet::ALL, &mut buckets)?;
                n += buckets.len() as u64;
                continue;
            }
            ts.clear();
            vs.clear();
            self.decode_chunk(c, &mut ts, &mut vs)?;
            n += ts.len() as u64;
        }
        if n != self.meta.samples {
            return Err(Error::corrupt(
                self.dir.join(META_FILE),
                48,
                format!("meta says {} samples, chunks hold {n}", self.meta.samples),
            ));
        }
        Ok(n)
    }

    /// Bytes on disk of this block's files.
    pub fn disk_bytes(&self) -> u64 {
        self.meta.chunks_bytes + self.meta.index_bytes + 100 + 8 * self.meta.parents.len() as u64
    }
}

//! Writes one block: chunks streamed to `chunks` as series arrive, then `index` and
//! `meta`, all under `<seq>.tmp/`, fsynced, renamed into place, directory fsynced.

use super::index::{self, ChunkRef};
use super::meta::BlockMeta;
use super::rollup::{encode_rollup_chunk, Buckets};
use super::{block_dir_name, CHUNKS_FILE, CHUNKS_MAGIC, CHUNKS_VERSION, CHUNKS_VERSION_ROLLUP, INDEX_FILE, META_FILE};
use crate::chunk::encode_sealed;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::labels::Labels;
use crate::types::SeriesId;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Sealed chunks are cut at this many samples: large enough to compress well, small
/// enough that a narrow query decodes little.
pub const SEALED_CHUNK_SAMPLES_MAX: usize = 4096;

#[derive(Debug)]
pub struct BlockWriter {
    blocks_dir: PathBuf,
    tmp_dir: PathBuf,
    chunks_path: PathBuf,
    chunks: BufWriter<File>,
    offset: u64,
    series: Vec<(SeriesId, Arc<Labels>, Vec<ChunkRef>)>,
    meta: BlockMeta,
    scratch: Vec<u8>,
}

impl BlockWriter {
    pub fn create(blocks_dir: &Path, seq: u64, resolution_ms: u64, level: u32, parents: Vec<u64>) -> Result<Self> {
        let tmp_dir = blocks_dir.join(format!("{}.tmp", block_dir_name(seq)));
        fsutil::remove_dir_all(&tmp_dir)?;
        fsutil::create_dir_all(&tmp_dir)?;
        let chunks_path = tmp_dir.join(CHUNKS_FILE);
        let f = fsutil::create_file(&chunks_path)?;
        let mut chunks = BufWriter::with_capacity(1 << 20, f);
        let version = if resolution_ms > 0 { CHUNKS_VERSION_ROLLUP } else { CHUNKS_VERSION };
        let header = [CHUNKS_MAGIC, version.to_le_bytes()].concat();
        fsutil::write_parts(&mut chunks, &chunks_path, &[&header])?;
        Ok(Self {
            blocks_dir: blocks_dir.to_path_buf(),
            tmp_dir,
            chunks_path,
            chunks,
            offset: header.len() as u64,
            series: Vec::new(),
            meta: BlockMeta {
                seq,
                min_t: i64::MAX,
                max_t: i64::MIN,
                resolution_ms,
                level,
                parents,
                ..BlockMeta::default()
            },
            scratch: Vec::new(),
        })
    }

    /// Adds one series' samples (`ts` strictly increasing). Series must come in
    /// ascending id order; empty series are skipped.
    pub fn add_series(&mut self, id: SeriesId, labels: Arc<Labels>, ts: &[i64], vs: &[f64]) -> Result<()> {
        if ts.is_empty() {
            return Ok(());
        }
        if self.series.last().is_some_and(|(last, _, _)| *last >= id) {
            return Err(Error::InvalidOptions(format!("block series out of order at {id}")));
        }
        debug_assert!(ts.windows(2).all(|w| w[0] < w[1]), "timestamps must increase");
        let mut refs = Vec::with_capacity(ts.len().div_ceil(SEALED_CHUNK_SAMPLES_MAX));
        for (cts, cvs) in ts.chunks(SEALED_CHUNK_SAMPLES_MAX).zip(vs.chunks(SEALED_CHUNK_SAMPLES_MAX)) {
            self.scratch.clear();
            encode_sealed(cts, cvs, &mut self.scratch);
            let len = self.write_frame()?;
            let (min_t, max_t) = (cts[0], cts[cts.len() - 1]);
            refs.push(ChunkRef { min_t, max_t, offset: self.offset, samples: cts.len() as u32 });
            self.offset += 8 + u64::from(len);
            self.meta.min_t = self.meta.min_t.min(min_t);
            self.meta.max_t = self.meta.max_t.max(max_t);
            self.meta.samples += cts.len() as u64;
            self.meta.chunks += 1;
        }
        self.series.push((id, labels, refs));
        Ok(())
    }

    /// Adds one series' chunks copied verbatim from another block of the same kind:
    /// `chunks` pairs each chunk's index entry with its whole frame (length, CRC, payload,
    /// already checked). Salvage uses it to rewrite a block without its damaged chunks.
    pub fn add_series_frames(&mut self, id: SeriesId, labels: Arc<Labels>, chunks: &[(ChunkRef, &[u8])]) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        if self.series.last().is_some_and(|(last, _, _)| *last >= id) {
            return Err(Error::InvalidOptions(format!("block series out of order at {id}")));
        }
        let mut refs = Vec::with_capacity(chunks.len());
        for (c, frame) in chunks {
            fsutil::write_parts(&mut self.chunks, &self.chunks_path, &[frame])?;
            refs.push(ChunkRef { offset: self.offset, ..*c });
            self.offset += frame.len() as u64;
            if !self.meta.is_rollup() {
                self.meta.min_t = self.meta.min_t.min(c.min_t);
                self.meta.max_t = self.meta.max_t.max(c.max_t);
            }
            self.meta.samples += u64::from(c.samples);
            self.meta.chunks += 1;
        }
        self.series.push((id, labels, refs));
        Ok(())
    }

    /// Rollup blocks: the range of bucket ends `(from, to]` this block summarises.
    pub fn set_covers(&mut self, from: i64, to: i64) {
        self.meta.covers_from = from;
        self.meta.covers_to = to;
    }

    /// Adds one series' rollup buckets (a block created with `resolution_ms > 0`), cut
    /// into chunks of at most [`SEALED_CHUNK_SAMPLES_MAX`] buckets. A chunk ref's
    /// `min_t`/`max_t` are its first and last bucket ends, `samples` its bucket count;
    /// the meta's `min_t`/`max_t` are the oldest and newest raw sample summarised.
    pub fn add_rollup_series(&mut self, id: SeriesId, labels: Arc<Labels>, b: &Buckets) -> Result<()> {
        if b.is_empty() {
            return Ok(());
        }
        if self.meta.resolution_ms == 0 {
            return Err(Error::InvalidOptions("rollup series added to a raw block".into()));
        }
        if self.series.last().is_some_and(|(last, _, _)| *last >= id) {
            return Err(Error::InvalidOptions(format!("block series out of order at {id}")));
        }
        let mut refs = Vec::with_capacity(b.len().div_ceil(SEALED_CHUNK_SAMPLES_MAX));
        let mut from = 0;
        while from < b.len() {
            let to = (from + SEALED_CHUNK_SAMPLES_MAX).min(b.len());
            self.scratch.clear();
            encode_rollup_chunk(b, from, to, &mut self.scratch);
            let len = self.write_frame()?;
            refs.push(ChunkRef {
                min_t: b.end_t[from],
                max_t: b.end_t[to - 1],
                offset: self.offset,
                samples: (to - from) as u32,
            });
            self.offset += 8 + u64::from(len);
            self.meta.min_t = self.meta.min_t.min(b.first_t[from]);
            self.meta.max_t = self.meta.max_t.max(b.last_t[to - 1]);
            self.meta.samples += (to - from) as u64;
            self.meta.chunks += 1;
            from = to;
        }
        self.series.push((id, labels, refs));
        Ok(())
    }

    /// Copies the chunks of series `id` from `src` (a block of the same kind and
    /// resolution) as they are: frames re-checked and re-written, nothing decoded. Series
    /// must come in ascending id order. For a raw block the meta's time range follows the
    /// copied chunks; a rollup block's stays the source's (a superset of what is copied:
    /// its chunk refs hold bucket ends, not sample times).
    pub fn copy_series(&mut self, id: SeriesId, labels: Arc<Labels>, src: &super::Block) -> Result<()> {
        if src.meta().resolution_ms != self.meta.resolution_ms {
            return Err(Error::InvalidOptions("chunks copied between blocks of different resolutions".into()));
        }
        if self.series.last().is_some_and(|(last, _, _)| *last >= id) {
            return Err(Error::InvalidOptions(format!("block series out of order at {id}")));
        }
        let chunks = src.chunks_of(id);
        if chunks.is_empty() {
            return Ok(());
        }
        let mut refs = Vec::with_capacity(chunks.len());
        for c in chunks {
            self.scratch.clear();
            self.scratch.extend_from_slice(src.chunk_bytes(c)?);
            let len = self.write_frame()?;
            refs.push(ChunkRef { offset: self.offset, ..*c });
            self.offset += 8 + u64::from(len);
            if self.meta.resolution_ms == 0 {
                self.meta.min_t = self.meta.min_t.min(c.min_t);
                self.meta.max_t = self.meta.max_t.max(c.max_t);
            } else {
                self.meta.min_t = self.meta.min_t.min(src.meta().min_t);
                self.meta.max_t = self.meta.max_t.max(src.meta().max_t);
            }
            self.meta.samples += u64::from(c.samples);
            self.meta.chunks += 1;
        }
        self.series.push((id, labels, refs));
        Ok(())
    }

    /// Writes `scratch` as one frame (length, CRC, payload); returns its length.
    fn write_frame(&mut self) -> Result<u32> {
        let len = u32::try_from(self.scratch.len()).map_err(|_| Error::InvalidOptions("chunk over 4 GiB".into()))?;
        let crc = crc32fast::hash(&self.scratch);
        // Through the I/O seam like every other write (the buffer holds at most 1 MiB).
        fsutil::write_parts(
            &mut self.chunks,
            &self.chunks_path,
            &[&len.to_le_bytes(), &crc.to_le_bytes(), &self.scratch],
        )?;
        Ok(len)
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Gives up on the block: removes its temporary directory (best effort; open removes
    /// any `.tmp` left behind).
    pub fn abandon(self) {
        let Self { tmp_dir, chunks, .. } = self;
        drop(chunks);
        let _ = fsutil::remove_dir_all(&tmp_dir);
    }

    /// Writes index and meta, publishes the block, and returns its final directory and meta.
    /// On failure the temporary directory is removed.
    pub fn finish(self) -> Result<(PathBuf, BlockMeta)> {
        let tmp_dir = self.tmp_dir.clone();
        self.publish().inspect_err(|_| {
            let _ = fsutil::remove_dir_all(&tmp_dir);
        })
    }

    fn publish(self) -> Result<(PathBuf, BlockMeta)> {
        let Self { blocks_dir, tmp_dir, chunks_path, chunks, offset, series, mut meta, .. } = self;
        let file = chunks.into_inner().map_err(|e| Error::io(&chunks_path, "write", e.into_error()))?;
        fsutil::sync_file(&file, &chunks_path)?;
        drop(file);
        let entries: Vec<(SeriesId, &Labels, &[ChunkRef])> =
            series.iter().map(|(id, l, c)| (*id, l.as_ref(), c.as_slice())).collect();
        let index_bytes = index::encode(&entries);
        fsutil::write_synced(&tmp_dir.join(INDEX_FILE), &index_bytes)?;
        meta.series = series.len() as u64;
        meta.chunks_bytes = offset;
        meta.index_bytes = index_bytes.len() as u64;
        meta.index_crc = crc32fast::hash(&index_bytes);
        if meta.samples == 0 {
            meta.min_t = 0;
            meta.max_t = 0;
        }
        fsutil::write_synced(&tmp_dir.join(META_FILE), &meta.encode())?;
        fsutil::sync_dir(&tmp_dir)?;
        let final_dir = blocks_dir.join(block_dir_name(meta.seq));
        fsutil::rename(&tmp_dir, &final_dir)?;
        if let Err(e) = fsutil::sync_dir(&blocks_dir) {
            // Never trust a failed fsync: the block is not published. Renamed back to its
            // temporary name (removed by `finish`, or by open after a crash), it cannot be
            // written a second time by the retry.
            let _ = fsutil::rename(&final_dir, &tmp_dir);
            return Err(e);
        }
        Ok((final_dir, meta))
    }
}

//! Salvage of damaged blocks on open (`RecoveryMode::Salvage`, the default): keep what
//! checks out, quarantine the rest in `<data>/damaged/` (moved or hard-linked there,
//! never deleted), and say exactly what was found and what left the live data.
//!
//! What counts as the damaged part, per file kind:
//! - a **chunk** of a raw block (CRC mismatch, frame cut off by a short `chunks` file):
//!   that chunk. The block is rewritten without it (frames copied verbatim, so nothing
//!   is re-encoded) under a new sequence number naming the old block as its parent; the
//!   original is hard-linked into `damaged/` first. Every other chunk stays readable.
//! - a bad `chunks` header (magic, version): nothing is lost; the rewrite fixes it.
//! - **`index` or `meta`**: the whole block. The index is the only map from chunk to
//!   series and carries one CRC for the whole file, so a damaged index cannot say which
//!   of its entries are still right (a wrong chunk offset could even land on another
//!   series' valid chunk); the meta is the block's identity (sequence, time range, the
//!   blocks it replaced). Serving either would risk reading wrong data.
//! - any damage to a **rollup block**: the whole block. Rollups are derived data; with
//!   the block gone its span is no longer covered, so the next compaction pass rebuilds
//!   it from the raw data if that is still held (and queries read raw data meanwhile).

use crate::block::{Block, BlockMeta, BlockWriter, ChunkDamage, ChunkRef, META_FILE};
use crate::blockset::remove_block_dir;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::labels::Labels;
use crate::stats::Damage;
use crate::types::SeriesId;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Name of the quarantine folder in a data directory.
pub const DAMAGED_DIR: &str = "damaged";

/// What salvage made of one block directory.
pub(crate) enum Salvaged {
    /// Nothing wrong: the block as opened, with its series.
    Clean(Block, Vec<(SeriesId, Labels)>),
    /// Rewritten without its damaged parts (a new directory), with its series.
    Repaired(Block, Vec<(SeriesId, Labels)>, Vec<Damage>),
    /// Moved to `damaged/` whole (or nothing in it was left to keep).
    Quarantined(Vec<Damage>),
}

/// Opens `path`, checking every chunk's CRC, and repairs or quarantines what fails.
/// `next_seq` is the sequence number a repaired copy gets (then incremented).
pub(crate) fn open_salvaging(blocks_dir: &Path, path: &Path, next_seq: &mut u64) -> Result<Salvaged> {
    let mut series = Vec::new();
    let (block, file_damage) = match Block::open_lenient(path, |id, l| series.push((id, l))) {
        Ok(x) => x,
        Err(e) if is_damage(&e) => {
            let (file, offset, detail) = match e {
                Error::Corruption { path, offset, detail } => (path, offset, detail),
                Error::Io { path: file, op, source } => (file, 0, format!("{op}: {source}")),
                other => (path.to_path_buf(), 0, other.to_string()),
            };
            let dropped = describe_whole(path);
            let kept_at = move_aside(blocks_dir, path)?;
            let kept_file = if file == path { kept_at } else { kept_at.join(file.file_name().unwrap_or_default()) };
            let d = damage(file, offset, detail, Some(kept_file), dropped);
            return Ok(Salvaged::Quarantined(vec![d]));
        }
        Err(e) => return Err(e),
    };
    let bad = block.damaged_chunks(false);
    if file_damage.is_empty() && bad.is_empty() {
        return Ok(Salvaged::Clean(block, series));
    }
    let labels: HashMap<SeriesId, Arc<Labels>> = series.iter().map(|(id, l)| (*id, Arc::new(l.clone()))).collect();
    let describe = |c: &ChunkDamage| match (c.series, c.chunk) {
        (Some(id), Some(r)) => {
            let l = labels.get(&id).map_or_else(|| format!("series {id}"), ToString::to_string);
            let what = if block.is_rollup() { "buckets" } else { "samples" };
            format!("{} {what} of {l} in [{}, {}]", r.samples, r.min_t, r.max_t)
        }
        _ => "nothing by itself (the chunks it affects are listed on their own)".to_string(),
    };
    if block.is_rollup() {
        let dropped =
            format!("{} (rollup data: rebuilt from raw data by the next compaction pass)", describe_whole(path));
        drop(block);
        let kept_at = move_aside(blocks_dir, path)?;
        let out = file_damage
            .into_iter()
            .chain(bad)
            .map(|c| {
                let kept = kept_at.join(c.file.file_name().unwrap_or_default());
                damage(c.file, c.offset, c.detail, Some(kept), dropped.clone())
            })
            .collect();
        return Ok(Salvaged::Quarantined(out));
    }
    let kept_at = link_aside(blocks_dir, path)?;
    let entries: Vec<Damage> = file_damage
        .iter()
        .chain(&bad)
        .map(|c| {
            let kept = kept_at.join(c.file.file_name().unwrap_or_default());
            damage(c.file.clone(), c.offset, c.detail.clone(), Some(kept), describe(c))
        })
        .collect();
    let bad_offsets: HashSet<u64> = bad.iter().filter_map(|c| c.chunk.map(|r| r.offset)).collect();
    let rewritten = rewrite_without(blocks_dir, &block, &labels, &bad_offsets, next_seq)?;
    let old_dir = block.dir().to_path_buf();
    drop(block);
    // The rewrite names the old block as its parent, so from here a crash is finished
    // on open: the old block is removed (its files are kept in `damaged/`).
    remove_block_dir(blocks_dir, &old_dir)?;
    match rewritten {
        Some(dir) => {
            let mut series = Vec::new();
            let b = Block::open(&dir, |id, l| series.push((id, l)))?;
            Ok(Salvaged::Repaired(b, series, entries))
        }
        None => Ok(Salvaged::Quarantined(entries)),
    }
}

/// A check failed, or one of the block's files is missing: the block is damaged (as
/// opposed to the disk failing a read, which fails the open).
fn is_damage(e: &Error) -> bool {
    match e {
        Error::Corruption { .. } => true,
        Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

fn damage(file: PathBuf, offset: u64, detail: String, kept_at: Option<PathBuf>, dropped: String) -> Damage {
    Damage { file, offset, len: 0, detail, torn_tail: false, kept_at, dropped }
}

/// Writes a copy of `block` without the chunks at `bad` offsets; `None` if nothing is
/// left to copy.
fn rewrite_without(
    blocks_dir: &Path,
    block: &Block,
    labels: &HashMap<SeriesId, Arc<Labels>>,
    bad: &HashSet<u64>,
    next_seq: &mut u64,
) -> Result<Option<PathBuf>> {
    let m = block.meta();
    let mut parents = m.parents.clone();
    parents.push(m.seq);
    let seq = *next_seq;
    *next_seq += 1;
    let mut w = BlockWriter::create(blocks_dir, seq, m.resolution_ms, m.level, parents)?;
    let filled = (|| {
        for (id, refs) in block.series_chunks() {
            let good: Vec<(ChunkRef, &[u8])> = refs
                .iter()
                .filter(|c| !bad.contains(&c.offset))
                .map(|c| block.chunk_frame(c).map(|f| (*c, f)))
                .collect::<Result<_>>()?;
            let l = labels.get(&id).cloned().ok_or_else(|| Error::corrupt(block.dir(), 0, format!("series {id}")))?;
            w.add_series_frames(id, l, &good)?;
        }
        Ok::<(), Error>(())
    })();
    if let Err(e) = filled {
        w.abandon();
        return Err(e);
    }
    if w.is_empty() {
        w.abandon();
        return Ok(None);
    }
    w.finish().map(|(dir, _)| Some(dir))
}

/// What a block held, from its meta if that still reads.
fn describe_whole(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let meta_path = path.join(META_FILE);
    match fsutil::read(&meta_path).and_then(|b| BlockMeta::decode(&b, &meta_path)) {
        Ok(m) => format!(
            "block {name} whole: {} {} of {} series in [{}, {}]",
            m.samples,
            if m.is_rollup() { "buckets" } else { "samples" },
            m.series,
            m.min_t,
            m.max_t
        ),
        Err(_) => format!("block {name} whole (its meta is damaged: what it held is unknown)"),
    }
}

/// `<data>/damaged/<name>`, or with a `.1`, `.2`, ... suffix if taken.
fn free_aside_name(blocks_dir: &Path, block_dir: &Path) -> Result<PathBuf> {
    let damaged = blocks_dir.parent().unwrap_or(blocks_dir).join(DAMAGED_DIR);
    fsutil::create_dir_all(&damaged)?;
    let name = block_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut to = damaged.join(&name);
    let mut n = 1u32;
    while to.exists() {
        to = damaged.join(format!("{name}.{n}"));
        n = n.saturating_add(1);
    }
    Ok(to)
}

/// Moves a damaged block to `<data>/damaged/` (never deletes it).
pub(crate) fn move_aside(blocks_dir: &Path, block_dir: &Path) -> Result<PathBuf> {
    let to = free_aside_name(blocks_dir, block_dir)?;
    fsutil::rename(block_dir, &to)?;
    fsutil::sync_dir(blocks_dir)?;
    if let Some(d) = to.parent() {
        fsutil::sync_dir(d)?;
    }
    Ok(to)
}

/// Hard-links (or copies) every file of a block into `<data>/damaged/<name>/`.
fn link_aside(blocks_dir: &Path, block_dir: &Path) -> Result<PathBuf> {
    let to = free_aside_name(blocks_dir, block_dir)?;
    fsutil::create_dir_all(&to)?;
    let entries = std::fs::read_dir(block_dir).map_err(|e| Error::io(block_dir, "list", e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(block_dir, "list", e))?;
        fsutil::link_or_copy(&e.path(), &to.join(e.file_name()))?;
    }
    fsutil::sync_dir(&to)?;
    if let Some(d) = to.parent() {
        fsutil::sync_dir(d)?;
    }
    Ok(to)
}

//! The set of published blocks. Readers clone an `Arc` of the current set and are never
//! blocked; a change (publish, replace, drop) builds a new set and swaps it in one step.
//!
//! On disk, a block exists once its directory has its final name. Removal first renames
//! the directory to `<name>.deleted` (one atomic step), then deletes it; open finishes
//! any such removal, deletes `.tmp` leftovers, and deletes blocks that a newer block
//! names as its parents. So a crash at any point leaves the old set or the new one.

use crate::block::{block_dir_name, parse_block_dir_name, Block};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::labels::Labels;
use crate::salvage::{self, Salvaged};
use crate::stats::Damage;
use crate::types::SeriesId;
use chronolith_wal::RecoveryMode;
use parking_lot::{Mutex, RwLock};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const DELETED_SUFFIX: &str = ".deleted";
const TMP_SUFFIX: &str = ".tmp";

/// An immutable list of blocks, ordered by `(min_t, seq)`.
#[derive(Debug, Default)]
pub struct BlockSet {
    blocks: Vec<Arc<Block>>,
}

impl BlockSet {
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Block>> {
        self.blocks.iter()
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Raw blocks with samples in `[start, end]`. Rollup blocks are never part of a raw
    /// read: they summarise samples that raw blocks (or nothing, after retention) hold.
    pub fn overlapping(&self, start: i64, end: i64) -> impl Iterator<Item = &Arc<Block>> {
        self.blocks.iter().filter(move |b| !b.is_rollup() && b.overlaps(start, end))
    }

    /// Raw blocks, ordered by `(min_t, seq)`.
    pub fn raw(&self) -> impl Iterator<Item = &Arc<Block>> {
        self.blocks.iter().filter(|b| !b.is_rollup())
    }

    /// Rollup blocks of one resolution, ordered by `(min_t, seq)`.
    pub fn rollups(&self, resolution_ms: i64) -> impl Iterator<Item = &Arc<Block>> {
        self.blocks.iter().filter(move |b| b.is_rollup() && b.meta().resolution_ms as i64 == resolution_ms)
    }

    /// The resolutions of the rollup blocks present, ascending.
    pub fn rollup_resolutions(&self) -> Vec<i64> {
        let mut r: Vec<i64> =
            self.blocks.iter().filter(|b| b.is_rollup()).map(|b| b.meta().resolution_ms as i64).collect();
        r.sort_unstable();
        r.dedup();
        r
    }
}

/// What opening the block directory found and did.
#[derive(Debug, Default)]
pub struct BlocksReport {
    pub opened: usize,
    pub removed_leftovers: Vec<PathBuf>,
    /// Blocks that failed their checks and were repaired or moved aside (salvage only).
    pub moved_aside: Vec<(PathBuf, String)>,
    /// Every damaged part found in them (salvage only).
    pub damage: Vec<Damage>,
}

#[derive(Debug)]
pub struct Blocks {
    dir: PathBuf,
    current: RwLock<Arc<BlockSet>>,
    next_seq: AtomicU64,
    /// Serialises changes so two writers never build sets from the same base.
    change: Mutex<()>,
    /// Directories out of the set whose removal failed; retried by the next change.
    pending: Mutex<Vec<PathBuf>>,
}

impl Blocks {
    pub fn open(
        dir: &Path,
        mode: RecoveryMode,
        mut on_series: impl FnMut(SeriesId, Labels) -> Result<()>,
    ) -> Result<(Self, BlocksReport)> {
        fsutil::create_dir_all(dir)?;
        let mut report = BlocksReport::default();
        let mut seqs = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "list", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, "list", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETED_SUFFIX) {
                fsutil::remove_dir_all(&entry.path())?;
                report.removed_leftovers.push(entry.path());
            } else if let Some(seq) = parse_block_dir_name(&name) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let mut next = seqs.last().map_or(1, |s| s + 1);
        // Newest first: a merge (or a salvage rewrite) publishes its output before it
        // deletes its inputs, and the output always has the higher sequence number, so
        // its inputs are known to be replaced before they are reached, and are deleted
        // without being opened (or salvaged a second time). Only a block that opened
        // replaces anything: the inputs of a quarantined one stay.
        let mut replaced: HashSet<u64> = HashSet::new();
        let mut kept = Vec::new();
        for &seq in seqs.iter().rev() {
            let path = dir.join(block_dir_name(seq));
            if replaced.contains(&seq) {
                remove_block_dir(dir, &path)?;
                report.removed_leftovers.push(path);
                continue;
            }
            let (block, series) = if mode == RecoveryMode::Salvage {
                // Salvage (the default) checks every chunk's CRC at open, so damage is
                // found and quarantined here rather than failing reads later.
                match salvage::open_salvaging(dir, &path, &mut next)? {
                    Salvaged::Clean(b, series) => (b, series),
                    Salvaged::Repaired(b, series, damage) => {
                        report.moved_aside.push((path.clone(), format!("repaired as {}", b.dir().display())));
                        report.damage.extend(damage);
                        (b, series)
                    }
                    Salvaged::Quarantined(damage) => {
                        let why = damage.first().map(|d| d.detail.clone()).unwrap_or_default();
                        report.moved_aside.push((path.clone(), why));
                        report.damage.extend(damage);
                        continue;
                    }
                }
            } else {
                let mut series = Vec::new();
                let b = Block::open(&path, |id, l| series.push((id, l)))?;
                (b, series)
            };
            for (id, l) in series {
                on_series(id, l)?;
            }
            replaced.extend(block.meta().parents.iter().copied());
            kept.push(Arc::new(block));
        }
        kept.sort_by_key(|b| (b.meta().min_t, b.meta().seq));
        report.opened = kept.len();
        Ok((
            Self {
                dir: dir.to_path_buf(),
                current: RwLock::new(Arc::new(BlockSet { blocks: kept })),
                next_seq: AtomicU64::new(next),
                change: Mutex::new(()),
                pending: Mutex::new(Vec::new()),
            },
            report,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn snapshot(&self) -> Arc<BlockSet> {
        self.current.read().clone()
    }

    /// A fresh sequence number for a block about to be written.
    pub fn allocate_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Opens blocks already renamed into place, and swaps in a set that has them and
    /// lacks `remove` (and any block an added one names as a parent); then deletes the
    /// removed directories. Readers holding the old set keep reading it (unlinked files
    /// stay mapped).
    ///
    /// Memory follows the disk, so a failed call leaves nothing for a retry to do twice:
    /// if an added block does not open, it is taken off the disk again and nothing
    /// changes; a block to remove leaves the set only once its rename to `.deleted`
    /// succeeded (a merge's parents leave it in any case: open deletes them, since the
    /// merged block names them). A failed rename, directory fsync or removal is returned
    /// as the error; what could not be removed is retried by the next call.
    pub fn apply(&self, add: &[PathBuf], remove: &[u64]) -> Result<()> {
        let _g = self.change.lock();
        let mut failure = self.retry_pending_removals().err();
        let mut opened = Vec::with_capacity(add.len());
        for p in add {
            match Block::open(p, |_, _| {}) {
                Ok(b) => opened.push(Arc::new(b)),
                Err(e) => {
                    for p in add {
                        self.unpublish(p);
                    }
                    return Err(e);
                }
            }
        }
        let base = self.snapshot();
        let replaced: HashSet<u64> = opened.iter().flat_map(|b| b.meta().parents.iter().copied()).collect();
        // All renames, one directory fsync, then the deletions: a drop of any number of
        // blocks costs one fsync, not one per block.
        let mut gone = replaced.clone();
        let mut doomed = Vec::new();
        for b in base.blocks.iter().filter(|b| remove.contains(&b.meta().seq) || replaced.contains(&b.meta().seq)) {
            if failure.is_none() {
                match rename_deleted(&self.dir, b.dir()) {
                    Ok(d) => {
                        gone.insert(b.meta().seq);
                        doomed.push(d);
                        continue;
                    }
                    Err(e) => failure = Some(e),
                }
            }
            if replaced.contains(&b.meta().seq) {
                self.pending.lock().push(b.dir().to_path_buf());
            }
        }
        let mut blocks: Vec<Arc<Block>> =
            base.blocks.iter().filter(|b| !gone.contains(&b.meta().seq)).cloned().collect();
        blocks.extend(opened);
        blocks.sort_by_key(|b| (b.meta().min_t, b.meta().seq));
        *self.current.write() = Arc::new(BlockSet { blocks });
        if !doomed.is_empty() {
            if let Err(e) = fsutil::sync_dir(&self.dir) {
                failure.get_or_insert(e);
            }
        }
        for d in doomed {
            if let Err(e) = fsutil::remove_dir_all(&d) {
                self.pending.lock().push(d);
                failure.get_or_insert(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Takes a published block that never made it into the set off the disk again (best
    /// effort: if even that fails, open finds it, which is the state a crash would leave).
    fn unpublish(&self, block_dir: &Path) {
        match rename_deleted(&self.dir, block_dir) {
            Ok(d) => {
                let _ = fsutil::sync_dir(&self.dir);
                if fsutil::remove_dir_all(&d).is_err() {
                    self.pending.lock().push(d);
                }
            }
            Err(_) => self.pending.lock().push(block_dir.to_path_buf()),
        }
    }

    /// Removes directories an earlier change could not (no longer in the set).
    fn retry_pending_removals(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.pending.lock());
        let mut first_err = None;
        for d in pending {
            let is_deleted = d.to_string_lossy().ends_with(DELETED_SUFFIX);
            let res = if is_deleted { fsutil::remove_dir_all(&d) } else { remove_block_dir(&self.dir, &d) };
            if let Err(e) = res {
                self.pending.lock().push(d);
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Rename to `.deleted` (atomic, fsynced), then delete.
pub(crate) fn remove_block_dir(blocks_dir: &Path, block_dir: &Path) -> Result<()> {
    let doomed = rename_deleted(blocks_dir, block_dir)?;
    fsutil::sync_dir(blocks_dir)?;
    fsutil::remove_dir_all(&doomed)
}

/// Renames a block directory to `<name>.deleted` (not yet fsynced); returns the new path.
fn rename_deleted(blocks_dir: &Path, block_dir: &Path) -> Result<PathBuf> {
    let mut name = block_dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(DELETED_SUFFIX);
    let doomed = blocks_dir.join(name);
    fsutil::rename(block_dir, &doomed)?;
    Ok(doomed)
}

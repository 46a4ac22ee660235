//! The engine: registry + head + WALs + block set, and the operations that move data
//! between them. Split by data path: `open` (recovery), `append`, `seal`, `read`.

mod append;
mod open;
mod read;
mod seal;
mod wal_hold;

pub use append::{AppendReport, Batch, Rejection};
pub use read::{Select, SeriesSamples};
pub use wal_hold::WalSegment;

use crate::blockset::Blocks;
use crate::head::Head;
use crate::options::Options;
use crate::registry::Registry;
use crate::stats::{Counters, EngineStats, RecoveryReport};
use chronolith_wal::{SegmentId, Wal};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

/// Sub-directories of a data directory.
pub const SERIES_LOG_DIR: &str = "series";
pub const SAMPLE_LOG_DIR: &str = "wal";
pub const BLOCKS_DIR: &str = "blocks";
pub const LOCK_FILE: &str = "LOCK";

type SealHook = Box<dyn Fn() + Send + Sync>;

pub struct Engine {
    dir: PathBuf,
    opts: Options,
    /// Held (flock) for the engine's life so two processes never share a directory.
    _lock: File,
    registry: Registry,
    /// Serialises series creation (lookup, id, log, insert) so labels get one id.
    create_series: Mutex<()>,
    series_log: Wal,
    sample_log: Wal,
    /// Appenders hold it shared across (WAL append, segment bookkeeping); truncation
    /// takes it exclusively so it never misses a record that is being logged.
    wal_gate: RwLock<()>,
    /// Newest sample timestamp in each sample-log segment.
    segment_max_t: Mutex<BTreeMap<SegmentId, i64>>,
    /// Retention floors of WAL consumers (the forwarder's targets): holder → the oldest
    /// sample-log segment it still needs. Truncation keeps every segment from the lowest
    /// floor on. Locked after `segment_max_t`, never before.
    wal_holds: Mutex<BTreeMap<String, SegmentId>>,
    head: Head,
    blocks: Blocks,
    counters: Counters,
    /// One seal at a time.
    seal_lock: Mutex<()>,
    /// Signalled whenever sealing frees head memory (appenders waiting on overload).
    head_freed: (Mutex<()>, Condvar),
    /// Set by the background sealer; called when a partition may have closed.
    seal_hook: Mutex<Option<SealHook>>,
    /// The highest partition end for which the hook was called.
    seal_hinted: AtomicI64,
    /// Set after a WAL failure: appends are refused until reopen.
    poisoned: AtomicBool,
    /// What open repaired.
    recovery: RecoveryReport,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Engine {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn blocks(&self) -> &Blocks {
        &self.blocks
    }

    /// Registers the function the background sealer wants called when there may be
    /// something to seal (a partition closed, or the head is over its memory bound).
    pub fn set_seal_hook(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.seal_hook.lock() = Some(Box::new(hook));
    }

    fn hint_seal(&self) {
        if let Some(h) = self.seal_hook.lock().as_ref() {
            h();
        }
    }

    /// Makes every appended sample durable (fsync both logs), whatever the durability mode.
    pub fn flush(&self) -> crate::Result<()> {
        self.series_log.sync()?;
        self.sample_log.sync()?;
        Ok(())
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.counters;
        let blocks = self.blocks.snapshot();
        let wal = self.sample_log.stats();
        let sealed = self.head.sealed_until();
        EngineStats {
            samples_appended: c.samples_appended.load(Relaxed),
            duplicates_dropped: c.duplicates_dropped.load(Relaxed),
            rejected: c.rejects(),
            samples_replayed: c.samples_replayed.load(Relaxed),
            replay_micros: c.replay_micros.load(Relaxed),
            open_micros: c.open_micros.load(Relaxed),
            recovery: self.recovery.clone(),
            series: self.registry.len() as u64,
            head_series: self.head.series_count() as u64,
            head_samples: self.head.samples(),
            head_bytes: self.head.bytes() as u64,
            head_min_t: self.head.min_t(),
            head_max_t: self.head.max_t(),
            sealed_until: (sealed != i64::MIN).then_some(sealed),
            blocks: blocks.len() as u64,
            block_bytes: blocks.iter().map(|b| b.disk_bytes()).sum(),
            block_samples: blocks.iter().map(|b| b.meta().samples).sum(),
            seals: c.seals.load(Relaxed),
            last_seal_ms: c.last_seal_ms.load(Relaxed),
            overloaded: c.overloaded.load(Relaxed),
            wal_bytes_written: wal.bytes_written,
            wal_fsyncs: wal.fsyncs,
            wal_fsync_nanos_max: wal.fsync_nanos_max,
            wal_fsync_nanos_total: wal.fsync_nanos_total,
            wal_disk_bytes: wal.disk_bytes + self.series_log.stats().disk_bytes,
            wal_segments: wal.segments,
        }
    }

    /// Syncs both logs. The engine stays usable until dropped; dropping releases the
    /// directory lock. Unsealed samples are replayed from the WAL on the next open.
    pub fn close(&self) -> crate::Result<()> {
        self.flush()
    }
}

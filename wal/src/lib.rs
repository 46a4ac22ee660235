//! Chronolith's segmented write-ahead log.
//!
//! Records are `(type: u8, payload)`; the crate knows nothing about series. Appends from many
//! threads share writes and fsyncs (group commit, see [`Durability`]); `open` replays every
//! segment and applies a named [`RecoveryMode`]. The byte layout is specified in `FORMAT.md`.
//!
//! ```no_run
//! # fn main() -> chronolith_wal::Result<()> {
//! use chronolith_wal::{RecoveryMode, Wal, WalOptions};
//! let (wal, report) = Wal::open(
//!     std::path::Path::new("/tmp/wal"),
//!     WalOptions::default(),
//!     RecoveryMode::TruncateTornTail,
//!     |pos, kind, payload| println!("{pos:?} {kind} {} bytes", payload.len()),
//! )?;
//! println!("replayed {} records", report.records);
//! let pos = wal.append(&[(1, b"hello".as_slice())])?;
//! println!("written at {pos:?}");
//! wal.close()
//! # }
//! ```

mod error;
pub mod fault;
mod frame;
mod io;
mod options;
mod replay;
mod segment;
mod tail;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

pub use error::{Error, Result};
pub use frame::{FRAME_HEADER_BYTES, MAX_RECORD_BYTES, SEAL_FRAME_BYTES, SEAL_RECORD_TYPE};
pub use options::{Durability, Position, RecoveryMode, ReplayReport, SalvageEvent, SegmentId, WalOptions, WalStats};
pub use replay::{verify, DamagedRange, SegmentHealth, DAMAGED_DIR};
pub use segment::{FORMAT_VERSION, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC};
pub use tail::{TailGap, TailRead, TailReader};

use writer::Writer;

/// A write-ahead log over one directory. `Send + Sync`: share it through an `Arc`.
#[derive(Debug)]
pub struct Wal {
    writer: Arc<Writer>,
    syncer: Option<Syncer>,
}

/// The `Durability::Periodic` background thread and its stop switch.
#[derive(Debug)]
struct Syncer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: JoinHandle<()>,
}

impl Wal {
    /// Creates `dir` if missing; replays all existing segments in order, calling
    /// `on_record(position, record_type, payload)` for every valid record; applies `mode`;
    /// then starts a new segment (id = last + 1, or 1) for appends.
    ///
    /// If an error is returned, `on_record` may already have seen a prefix of the records.
    ///
    /// # Errors
    /// [`Error::Io`] on filesystem failures, [`Error::Corruption`] for damage `mode` does not
    /// repair.
    pub fn open(
        dir: &Path,
        opts: WalOptions,
        mode: RecoveryMode,
        mut on_record: impl FnMut(Position, u8, &[u8]),
    ) -> Result<(Wal, ReplayReport)> {
        let fs = io::Fs;
        fs.create_dir_all(dir)?;
        let (sealed, last, report) = replay::replay(&fs, dir, mode, &mut on_record)?;
        let id = last.map_or(SegmentId(1), SegmentId::next);
        let always = opts.durability == Durability::Always;
        let writer = Arc::new(Writer::create(fs, dir.to_path_buf(), id, sealed, opts.segment_bytes_max, always)?);
        let syncer = match opts.durability {
            Durability::Periodic { interval_ms } => Some(spawn_syncer(&writer, interval_ms)?),
            Durability::Always | Durability::Never => None,
        };
        Ok((Wal { writer, syncer }, report))
    }

    /// Appends `records` contiguously in one segment and returns the position of the first.
    /// The bytes are in the OS when this returns (and fsynced under [`Durability::Always`]).
    ///
    /// # Errors
    /// [`Error::RecordTooLarge`] (nothing written); [`Error::Io`] when the write failed: if
    /// it was not an fsync, the batch was rolled back (none of it will replay) and later
    /// appends go on; a failed fsync poisons, and then every call is [`Error::Poisoned`]
    /// until reopen.
    pub fn append(&self, records: &[(u8, &[u8])]) -> Result<Position> {
        self.writer.append(records)
    }

    /// Makes everything appended so far durable.
    ///
    /// # Errors
    /// [`Error::Poisoned`] or the [`Error::Io`] that poisons.
    pub fn sync(&self) -> Result<()> {
        self.writer.sync()
    }

    /// Finishes the current segment (fsynced) and starts the next; returns the new current id.
    ///
    /// # Errors
    /// [`Error::Poisoned`] or the [`Error::Io`] that poisons.
    pub fn cut(&self) -> Result<SegmentId> {
        self.writer.cut()
    }

    /// True once the WAL is poisoned (a failed fsync, or a failed write that could not be
    /// rolled back): every call fails with [`Error::Poisoned`] until reopen.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.writer.is_poisoned()
    }

    /// The end of the acknowledged log: every record before this position was written by
    /// an `append` that returned `Ok` (fsynced, under [`Durability::Always`]), and the
    /// frames before it are whole. It only grows. A [`TailReader`] reads up to it.
    #[must_use]
    pub fn committed_end(&self) -> Position {
        self.writer.committed()
    }

    /// The segment files on disk, oldest first, with their sizes in bytes; the current
    /// segment (the one appends go to) is last. A snapshot: segments come and go.
    #[must_use]
    pub fn segments(&self) -> Vec<(SegmentId, u64)> {
        self.writer.segments()
    }

    /// The segment new appends go to.
    #[must_use]
    pub fn current_segment(&self) -> SegmentId {
        self.writer.current_segment()
    }

    /// Deletes whole finished segments with an id below `id` (never the current one), then
    /// fsyncs the directory. Returns the bytes removed.
    ///
    /// # Errors
    /// [`Error::Io`] if an unlink or the directory fsync fails (the WAL stays usable).
    pub fn remove_segments_before(&self, id: SegmentId) -> Result<u64> {
        self.writer.remove_segments_before(id)
    }

    /// Counters since `open`.
    #[must_use]
    pub fn stats(&self) -> WalStats {
        self.writer.stats()
    }

    /// Syncs, stops the background thread and releases the files.
    ///
    /// # Errors
    /// As [`Wal::sync`]; the WAL is released either way.
    pub fn close(mut self) -> Result<()> {
        let result = self.writer.close();
        self.stop_syncer();
        result
    }

    fn stop_syncer(&mut self) {
        if let Some(syncer) = self.syncer.take() {
            let (lock, cond) = &*syncer.stop;
            *lock.lock() = true;
            cond.notify_all();
            // A panicked syncer has nothing left to clean up; ignore it.
            let _ = syncer.handle.join();
        }
    }
}

impl Drop for Wal {
    /// Stops the background thread. Does not fsync: call [`Wal::close`] for that.
    fn drop(&mut self) {
        self.stop_syncer();
    }
}

fn spawn_syncer(writer: &Arc<Writer>, interval_ms: u64) -> Result<Syncer> {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let interval = Duration::from_millis(interval_ms.max(1));
    let (w, s) = (Arc::clone(writer), Arc::clone(&stop));
    let handle = std::thread::Builder::new()
        .name("chronolith-wal-sync".to_owned())
        .spawn(move || {
            let (lock, cond) = &*s;
            let mut stopped = lock.lock();
            while !*stopped {
                let _ = cond.wait_for(&mut stopped, interval);
                if *stopped {
                    break;
                }
                parking_lot::MutexGuard::unlocked(&mut stopped, || w.background_sync());
            }
        })
        .map_err(|e| Error::io(writer.dir.clone(), "spawn_thread", e))?;
    Ok(Syncer { stop, handle })
}

#[cfg(test)]
mod tests;

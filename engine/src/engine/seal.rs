//! Sealing: cut the head into immutable blocks, one per time partition, then drop the
//! sealed samples from the head and the WAL segments they wholly cover.
//!
//! Order, so that a reader or a crash never loses data:
//! 1. raise the head's seal boundary (new samples below it are refused from now on);
//! 2. write the block under a temporary name, fsync, rename, fsync the directory;
//! 3. swap it into the block set;
//! 4. drop the sealed samples from the head (readers read the head before the block
//!    set, so they see the samples in one place or the other, never in neither);
//! 5. remove WAL segments whose every sample is older than the boundary.

use super::Engine;
use crate::block::BlockWriter;
use crate::error::{Error, Result};
use crate::types::Sample;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

impl Engine {
    /// Seals every partition that has closed: its end plus the out-of-order window is
    /// behind the newest sample. Returns the number of blocks written.
    pub fn seal_closed(&self) -> Result<usize> {
        let _g = self.seal_lock.lock();
        let mut written = 0;
        while let (Some(min_t), Some(max_t)) = (self.head.min_t(), self.head.max_t()) {
            let end = self.partition_end(min_t);
            // `end <= min_t` only when the partition end saturates at i64::MAX, which
            // appends never reach (they refuse t = i64::MAX); guard the loop anyway.
            if max_t < end.saturating_add(self.opts.ooo_window_ms) || end <= min_t {
                break;
            }
            written += self.seal_until_locked(end)?;
        }
        Ok(written)
    }

    /// Seals everything in the head, including the open partition. Afterwards samples
    /// at or before the newest one sealed are out of bounds. Returns blocks written.
    pub fn seal_all(&self) -> Result<usize> {
        let _g = self.seal_lock.lock();
        let Some(max_t) = self.head.max_t() else { return Ok(0) };
        self.seal_until_locked(max_t.saturating_add(1))
    }

    fn partition_end(&self, t: i64) -> i64 {
        (self.head.partition_of(t) + 1).saturating_mul(self.opts.partition_ms)
    }

    /// Seals all head samples older than `until`, one block per partition.
    fn seal_until_locked(&self, until: i64) -> Result<usize> {
        self.head.begin_seal(until);
        let mut written = 0;
        while let Some(min_t) = self.head.min_t().filter(|t| *t < until) {
            let start = self.head.partition_of(min_t).saturating_mul(self.opts.partition_ms);
            let end = self.partition_end(min_t).min(until);
            if self.write_block(start, end)? {
                written += 1;
            }
            self.head.drop_before(end);
            let (lock, cv) = &self.head_freed;
            drop(lock.lock());
            cv.notify_all();
        }
        self.truncate_wal(until)?;
        self.counters.seals.fetch_add(1, Relaxed);
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        self.counters.last_seal_ms.store(now_ms, Relaxed);
        Ok(written)
    }

    /// Writes and publishes one block of the head samples in `[start, end)`.
    fn write_block(&self, start: i64, end: i64) -> Result<bool> {
        let seq = self.blocks.allocate_seq();
        let mut w = BlockWriter::create(self.blocks.dir(), seq, 0, 0, Vec::new())?;
        match self.fill_block(&mut w, start, end) {
            Ok(()) if !w.is_empty() => {}
            // Nothing to write, or a failure (say, a full disk): the samples stay in the
            // head and the WAL; only the temporary directory goes.
            other => {
                w.abandon();
                return other.map(|()| false);
            }
        }
        let (dir, _meta) = w.finish()?;
        self.blocks.apply(&[dir], &[])?;
        Ok(true)
    }

    fn fill_block(&self, w: &mut BlockWriter, start: i64, end: i64) -> Result<()> {
        let mut buf: Vec<Sample> = Vec::new();
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        for id in self.head.series_ids() {
            buf.clear();
            self.head.read(id, start, end - 1, &mut buf);
            if buf.is_empty() {
                continue;
            }
            let labels = self
                .registry
                .labels(id)
                .ok_or_else(|| Error::corrupt(self.dir.clone(), 0, format!("head holds unregistered series {id}")))?;
            ts.clear();
            vs.clear();
            ts.extend(buf.iter().map(|s| s.t));
            vs.extend(buf.iter().map(|s| s.v));
            w.add_series(id, labels, &ts, &vs)?;
        }
        Ok(())
    }

    /// Removes sample-log segments whose every sample is older than `until`. The current
    /// segment is cut first when it too is covered (a full seal), so it can go as well.
    pub(super) fn truncate_wal(&self, until: i64) -> Result<()> {
        let _gate = self.wal_gate.write();
        let mut m = self.segment_max_t.lock();
        let current = self.sample_log.current_segment();
        let current_covered = m.get(&current).is_none_or(|t| *t < until);
        let current = if current_covered && m.contains_key(&current) { self.sample_log.cut()? } else { current };
        let keep_from = m.iter().find(|(_, t)| **t >= until).map_or(current, |(s, _)| (*s).min(current));
        // A WAL consumer that has not confirmed older segments keeps them (bounded by its
        // own backlog limit, which moves its floor).
        let keep_from = self.wal_holds.lock().values().min().map_or(keep_from, |floor| keep_from.min(*floor));
        self.sample_log.remove_segments_before(keep_from)?;
        m.retain(|s, _| *s >= keep_from);
        Ok(())
    }
}

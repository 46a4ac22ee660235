//! The append path: group commit, rotation, fsync policy and poisoning.
//!
//! Appenders encode their frames into one shared pending buffer under `state` and get a
//! sequence number. The first appender that finds no leader becomes the leader: it takes the
//! whole pending buffer, releases `state` (so others keep filling the next batch), writes the
//! batch with one `write(2)` per segment it touches, fdatasyncs once if the policy asks, then
//! publishes `written_seq` / `durable_seq` and wakes everyone. Followers whose sequence
//! number is covered return; one of the rest becomes the next leader.
//!
//! Fast path: an appender that finds nothing queued and no leader leads a batch of just its
//! own records and writes them with `writev(2)` straight from its buffers, skipping the copy
//! into the pending buffer. Appenders arriving meanwhile queue up as usual.
//!
//! Failures. A failed fsync poisons the writer: the file's state is unknown until reopen
//! replays it. Any other failure of a batch (a write, a segment create, a seal frame, say
//! ENOSPC or EIO) is rolled back: segments the batch started are removed, the segment it
//! started in is truncated to where the batch began and fsynced, and every appender of the
//! batch, and every appender queued behind it (their positions assumed the batch), gets
//! the error. New appenders wait until all of those have seen it ("draining"), then go on
//! as if the batch had never been. If the roll-back itself fails, the writer is poisoned.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::IoSlice;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::frame::{self, FRAME_HEADER_BYTES, MAX_RECORD_BYTES};
use crate::io::{join, Fs};
use crate::segment::{self, SEGMENT_HEADER_BYTES};
use crate::{Position, SegmentId, WalStats};

/// A pending buffer grown past this is dropped after its batch instead of being reused.
const SPARE_CAPACITY_MAX: usize = 16 * 1024 * 1024;

/// Appenders' shared view: what is queued and how far it has got.
#[derive(Debug, Default)]
struct State {
    /// Encoded frames not yet handed to a leader.
    buf: Vec<u8>,
    /// Segment starts inside `buf`: (byte index, new segment id).
    cuts: Vec<(usize, SegmentId)>,
    /// Records in `buf`.
    records: u64,
    spare_buf: Vec<u8>,
    spare_cuts: Vec<(usize, SegmentId)>,
    /// Segment the next appended record goes to, and its offset there.
    segment: SegmentId,
    offset: u64,
    /// Last sequence number handed out / written to the OS / fsynced.
    next_seq: u64,
    written_seq: u64,
    durable_seq: u64,
    /// A leader is doing I/O right now.
    leader: bool,
    closed: bool,
    /// Appenders (and `sync`/`cut` callers) inside `commit`.
    waiting: u64,
    /// Set when a batch failed and was rolled back; cleared when `waiting` drops to 0.
    /// Sequence numbers in `(failed_after, failed_upto]` were discarded.
    draining: bool,
    failed_after: u64,
    failed_upto: u64,
    failure: Option<Error>,
    /// End of the last batch written (and, under `always`, fsynced): every frame before
    /// it is whole and acknowledged. Only grows; a rolled-back batch never moved it.
    committed: Position,
}

/// Where the current segment stood when a batch started: what a failed batch rolls back to.
#[derive(Clone, Copy, Debug)]
struct Mark {
    id: SegmentId,
    bytes: u64,
    bytes_written: u64,
    disk_bytes: u64,
    segments: u64,
}

/// A failed batch: the error, and where appends go on if it was rolled back (`None`: the
/// writer is poisoned).
#[derive(Debug)]
struct Failed {
    error: Error,
    rolled_back: Option<(SegmentId, u64)>,
}

/// The open segment file; only the leader, `sync` and the background syncer touch it.
#[derive(Debug)]
struct Current {
    file: File,
    path: PathBuf,
    id: SegmentId,
    bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    bytes_written: AtomicU64,
    records_written: AtomicU64,
    fsyncs: AtomicU64,
    fsync_nanos_total: AtomicU64,
    fsync_nanos_max: AtomicU64,
    segments: AtomicU64,
    disk_bytes: AtomicU64,
}

/// Everything the `Wal` handle and its background thread share.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) dir: PathBuf,
    pub(crate) fs: Fs,
    segment_bytes_max: u64,
    always: bool,
    state: Mutex<State>,
    cond: Condvar,
    current: Mutex<Current>,
    /// Finished segments still on disk: id → size.
    sealed: Mutex<BTreeMap<SegmentId, u64>>,
    poisoned: AtomicBool,
    counters: Counters,
}

impl Writer {
    /// Creates segment `id` (header, fsync file, fsync dir) and a writer appending to it.
    pub(crate) fn create(
        fs: Fs,
        dir: PathBuf,
        id: SegmentId,
        sealed: BTreeMap<SegmentId, u64>,
        segment_bytes_max: u64,
        always: bool,
    ) -> Result<Writer> {
        let current = create_segment(&fs, &dir, id)?;
        let counters = Counters::default();
        counters.segments.store(sealed.len() as u64 + 1, Ordering::Relaxed);
        let disk: u64 = sealed.values().sum::<u64>() + current.bytes;
        counters.disk_bytes.store(disk, Ordering::Relaxed);
        let committed = Position { segment: id, offset: current.bytes };
        let state = State { segment: id, offset: current.bytes, committed, ..State::default() };
        Ok(Writer {
            dir,
            fs,
            segment_bytes_max,
            always,
            state: Mutex::new(state),
            cond: Condvar::new(),
            current: Mutex::new(current),
            sealed: Mutex::new(sealed),
            poisoned: AtomicBool::new(false),
            counters,
        })
    }

    /// Waits out a roll-back in progress, then checks the writer can take appends.
    fn check_usable(&self, st: &mut MutexGuard<'_, State>) -> Result<()> {
        while st.draining && !self.poisoned.load(Ordering::Acquire) {
            self.cond.wait(st);
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        if st.closed {
            return Err(Error::Closed);
        }
        Ok(())
    }

    pub(crate) fn append(&self, records: &[(u8, &[u8])]) -> Result<Position> {
        let mut total = 0u64;
        let mut headers = Vec::with_capacity(records.len());
        for &(record_type, payload) in records {
            if record_type == frame::SEAL_RECORD_TYPE {
                return Err(Error::ReservedRecordType { record_type });
            }
            if payload.len() > MAX_RECORD_BYTES {
                return Err(Error::RecordTooLarge { len: payload.len(), max: MAX_RECORD_BYTES });
            }
            total += (FRAME_HEADER_BYTES + payload.len()) as u64;
            headers.push(frame::encode_header(record_type, payload));
        }
        let mut st = self.state.lock();
        self.check_usable(&mut st)?;
        if records.is_empty() {
            return Ok(Position { segment: st.segment, offset: st.offset });
        }
        if st.offset > SEGMENT_HEADER_BYTES as u64 && st.offset + total > self.segment_bytes_max {
            let next = st.segment.next();
            let at = st.buf.len();
            st.cuts.push((at, next));
            st.segment = next;
            st.offset = SEGMENT_HEADER_BYTES as u64;
        }
        let pos = Position { segment: st.segment, offset: st.offset };
        if !st.leader && st.buf.is_empty() && st.cuts.is_empty() {
            // Nothing queued and no one writing: write straight from the caller's slices.
            st.offset += total;
            st.next_seq += 1;
            self.lead_direct(st, &headers, records)?;
            return Ok(pos);
        }
        st.buf.reserve(usize::try_from(total).unwrap_or(0));
        for (header, &(_, payload)) in headers.iter().zip(records) {
            st.buf.extend_from_slice(header);
            st.buf.extend_from_slice(payload);
        }
        st.offset += total;
        st.records += records.len() as u64;
        st.next_seq += 1;
        let seq = st.next_seq;
        self.commit(st, seq, self.always)?;
        Ok(pos)
    }

    pub(crate) fn sync(&self) -> Result<()> {
        let mut st = self.state.lock();
        self.check_usable(&mut st)?;
        let seq = st.next_seq;
        self.commit(st, seq, true)
    }

    pub(crate) fn cut(&self) -> Result<SegmentId> {
        let mut st = self.state.lock();
        self.check_usable(&mut st)?;
        let next = st.segment.next();
        let at = st.buf.len();
        st.cuts.push((at, next));
        st.segment = next;
        st.offset = SEGMENT_HEADER_BYTES as u64;
        st.next_seq += 1;
        let seq = st.next_seq;
        self.commit(st, seq, true)?;
        Ok(next)
    }

    pub(crate) fn close(&self) -> Result<()> {
        let r = self.sync();
        self.state.lock().closed = true;
        r
    }

    /// True once an fsync (or a roll-back) failed: every call fails until reopen.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    pub(crate) fn committed(&self) -> Position {
        self.state.lock().committed
    }

    /// Segments on disk, oldest first, with their sizes (the current one last).
    pub(crate) fn segments(&self) -> Vec<(SegmentId, u64)> {
        // Lock order as in `rotate`: current, then sealed.
        let cur = self.current.lock();
        let mut out: Vec<(SegmentId, u64)> = self.sealed.lock().iter().map(|(id, b)| (*id, *b)).collect();
        out.push((cur.id, cur.bytes));
        out
    }

    pub(crate) fn current_segment(&self) -> SegmentId {
        self.state.lock().segment
    }

    /// Waits until `seq` is written (or fsynced, if `durable`), leading a batch if no one else
    /// is.
    fn commit(&self, mut st: MutexGuard<'_, State>, seq: u64, durable: bool) -> Result<()> {
        st.waiting += 1;
        let result = self.commit_inner(&mut st, seq, durable);
        st.waiting -= 1;
        if st.draining && st.waiting == 0 {
            st.draining = false;
            st.failure = None;
            self.cond.notify_all();
        }
        result
    }

    fn commit_inner(&self, st: &mut MutexGuard<'_, State>, seq: u64, durable: bool) -> Result<()> {
        loop {
            // Checked first: a later batch may have succeeded since ours was discarded.
            if st.draining && seq > st.failed_after && seq <= st.failed_upto {
                return Err(st.failure.as_ref().map_or(Error::Poisoned, Error::duplicate));
            }
            // A batch that completed before a later failure still counts.
            let done = if durable { st.durable_seq >= seq } else { st.written_seq >= seq };
            if done {
                return Ok(());
            }
            if self.poisoned.load(Ordering::Acquire) {
                return Err(Error::Poisoned);
            }
            if st.leader {
                self.cond.wait(st);
                continue;
            }
            st.leader = true;
            let spare_buf = std::mem::take(&mut st.spare_buf);
            let batch = std::mem::replace(&mut st.buf, spare_buf);
            let spare_cuts = std::mem::take(&mut st.spare_cuts);
            let cuts = std::mem::replace(&mut st.cuts, spare_cuts);
            let records = std::mem::take(&mut st.records);
            let end_seq = st.next_seq;
            let end = Position { segment: st.segment, offset: st.offset };
            let result = MutexGuard::unlocked(st, || self.write_batch(&batch, &cuts, records, durable));
            st.leader = false;
            if let Err(failed) = result {
                return Err(self.fail(st, failed));
            }
            st.written_seq = end_seq;
            st.committed = end;
            if durable {
                st.durable_seq = end_seq;
            }
            if batch.capacity() <= SPARE_CAPACITY_MAX {
                let mut batch = batch;
                batch.clear();
                st.spare_buf = batch;
            }
            let mut cuts = cuts;
            cuts.clear();
            st.spare_cuts = cuts;
            self.cond.notify_all();
        }
    }

    /// Records a failed batch: poisons, or (after a roll-back) discards everything queued
    /// and starts draining. Returns the error for the caller.
    fn fail(&self, st: &mut State, failed: Failed) -> Error {
        match failed.rolled_back {
            None => self.poisoned.store(true, Ordering::Release),
            Some((segment, offset)) => {
                st.failed_after = st.written_seq;
                st.failed_upto = st.next_seq;
                st.draining = true;
                st.failure = Some(failed.error.duplicate());
                st.buf.clear();
                st.cuts.clear();
                st.records = 0;
                st.segment = segment;
                st.offset = offset;
            }
        }
        self.cond.notify_all();
        failed.error
    }

    /// Leads a batch of just `records`, written with `writev(2)` from the caller's buffers
    /// (no copy into the pending buffer). Requires: no leader, nothing queued, and the
    /// records' sequence number already taken as `st.next_seq`.
    fn lead_direct(
        &self,
        mut st: MutexGuard<'_, State>,
        headers: &[[u8; FRAME_HEADER_BYTES]],
        records: &[(u8, &[u8])],
    ) -> Result<()> {
        st.leader = true;
        let seq = st.next_seq;
        let end = Position { segment: st.segment, offset: st.offset };
        let durable = self.always;
        let result = MutexGuard::unlocked(&mut st, || {
            let mut slices = Vec::with_capacity(records.len() * 2);
            let mut total = 0u64;
            for (header, &(_, payload)) in headers.iter().zip(records) {
                slices.push(IoSlice::new(header));
                slices.push(IoSlice::new(payload));
                total += (FRAME_HEADER_BYTES + payload.len()) as u64;
            }
            let mut guard = self.current.lock();
            let cur = &mut *guard;
            let mark = self.mark(cur);
            let io = self.fs.write_all_vectored(&mut cur.file, &cur.path, &mut slices).and_then(|()| {
                self.wrote(cur, total);
                if durable {
                    self.fsync(cur)?;
                }
                Ok(())
            });
            match io {
                Ok(()) => {
                    self.counters.records_written.fetch_add(records.len() as u64, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => Err(self.roll_back(cur, mark, mark.id, e)),
            }
        });
        st.leader = false;
        self.cond.notify_all();
        if let Err(failed) = result {
            let e = self.fail(&mut st, failed);
            // The direct leader is not counted in `waiting`: with no one queued behind it
            // there is nothing to drain.
            if st.waiting == 0 {
                st.draining = false;
                st.failure = None;
            }
            return Err(e);
        }
        // Everything before `seq` was written when this batch started (nothing was queued).
        st.written_seq = seq;
        st.committed = end;
        if durable {
            st.durable_seq = seq;
        }
        Ok(())
    }

    /// The leader's I/O: one write per segment touched, rotations, and the fsync. A failure
    /// is rolled back (see the module comment).
    fn write_batch(
        &self,
        batch: &[u8],
        cuts: &[(usize, SegmentId)],
        records: u64,
        sync: bool,
    ) -> std::result::Result<(), Failed> {
        let mut cur = self.current.lock();
        let mark = self.mark(&cur);
        let mut created = mark.id;
        let mut io = || -> Result<()> {
            let mut start = 0;
            for &(at, next) in cuts {
                self.write(&mut cur, &batch[start..at])?;
                created = next;
                self.rotate(&mut cur, next)?;
                start = at;
            }
            self.write(&mut cur, &batch[start..])?;
            if sync {
                self.fsync(&cur)?;
            }
            Ok(())
        };
        match io() {
            Ok(()) => {
                self.counters.records_written.fetch_add(records, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(self.roll_back(&mut cur, mark, created, e)),
        }
    }

    fn mark(&self, cur: &Current) -> Mark {
        let c = &self.counters;
        Mark {
            id: cur.id,
            bytes: cur.bytes,
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            disk_bytes: c.disk_bytes.load(Ordering::Relaxed),
            segments: c.segments.load(Ordering::Relaxed),
        }
    }

    /// Undoes a failed batch unless an fsync failed: removes the segments it created (up
    /// to `created`), truncates the segment it started in back to `mark` and fsyncs it.
    fn roll_back(&self, cur: &mut Current, mark: Mark, created: SegmentId, error: Error) -> Failed {
        if error.is_sync_failure() {
            return Failed { error, rolled_back: None };
        }
        match self.undo(cur, mark, created) {
            Ok(()) => Failed { error, rolled_back: Some((cur.id, cur.bytes)) },
            // The roll-back failed too: nothing about the files can be trusted now.
            Err(_) => Failed { error, rolled_back: None },
        }
    }

    fn undo(&self, cur: &mut Current, mark: Mark, created: SegmentId) -> Result<()> {
        if created != mark.id {
            let mut id = mark.id.next();
            while id <= created {
                match self.fs.remove(&join(&self.dir, &segment::file_name(id))) {
                    Ok(()) => {}
                    Err(Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                id = id.next();
            }
            self.fs.sync_dir(&self.dir)?;
            self.sealed.lock().split_off(&mark.id);
            if cur.id != mark.id {
                let path = join(&self.dir, &segment::file_name(mark.id));
                let file = self.fs.open_append(&path)?;
                *cur = Current { file, path, id: mark.id, bytes: mark.bytes };
            }
        }
        self.fs.truncate_file(&cur.file, &cur.path, mark.bytes)?;
        cur.bytes = mark.bytes;
        // Stats only: take back what this batch added.
        let c = &self.counters;
        for (counter, then) in
            [(&c.bytes_written, mark.bytes_written), (&c.disk_bytes, mark.disk_bytes), (&c.segments, mark.segments)]
        {
            let now = counter.load(Ordering::Relaxed);
            counter.fetch_sub(now.saturating_sub(then), Ordering::Relaxed);
        }
        Ok(())
    }

    fn write(&self, cur: &mut Current, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.fs.write_all(&mut cur.file, &cur.path, bytes)?;
        self.wrote(cur, bytes.len() as u64);
        Ok(())
    }

    fn wrote(&self, cur: &mut Current, n: u64) {
        cur.bytes += n;
        self.counters.bytes_written.fetch_add(n, Ordering::Relaxed);
        self.counters.disk_bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn fsync(&self, cur: &Current) -> Result<()> {
        let nanos = self.fs.sync_data(&cur.file, &cur.path)?;
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.counters.fsync_nanos_total.fetch_add(nanos, Ordering::Relaxed);
        self.counters.fsync_nanos_max.fetch_max(nanos, Ordering::Relaxed);
        Ok(())
    }

    /// Finishes the current segment (seal frame, fsync) and starts segment `next`.
    fn rotate(&self, cur: &mut Current, next: SegmentId) -> Result<()> {
        let seal = frame::encode_seal(next.0);
        self.fs.write_all(&mut cur.file, &cur.path, &seal)?;
        cur.bytes += seal.len() as u64;
        self.counters.disk_bytes.fetch_add(seal.len() as u64, Ordering::Relaxed);
        self.fsync(cur)?;
        let new = create_segment(&self.fs, &self.dir, next)?;
        let old = std::mem::replace(cur, new);
        self.sealed.lock().insert(old.id, old.bytes);
        self.counters.segments.fetch_add(1, Ordering::Relaxed);
        self.counters.disk_bytes.fetch_add(SEGMENT_HEADER_BYTES as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Background fsync for `Durability::Periodic`: makes everything written so far durable.
    pub(crate) fn background_sync(&self) {
        if self.poisoned.load(Ordering::Acquire) {
            return;
        }
        let written = {
            let st = self.state.lock();
            if st.durable_seq >= st.written_seq {
                return;
            }
            st.written_seq
        };
        let result = {
            let cur = self.current.lock();
            self.fsync(&cur)
        };
        let mut st = self.state.lock();
        if result.is_err() {
            self.poisoned.store(true, Ordering::Release);
        } else if written > st.durable_seq {
            st.durable_seq = written;
        }
        self.cond.notify_all();
    }

    pub(crate) fn remove_segments_before(&self, id: SegmentId) -> Result<u64> {
        let victims = {
            let mut sealed = self.sealed.lock();
            let keep = sealed.split_off(&id);
            std::mem::replace(&mut *sealed, keep)
        };
        if victims.is_empty() {
            return Ok(0);
        }
        let mut removed = 0u64;
        let mut result = Ok(());
        let mut left = BTreeMap::new();
        for (victim, bytes) in victims {
            if result.is_err() {
                left.insert(victim, bytes);
                continue;
            }
            match self.fs.remove(&join(&self.dir, &segment::file_name(victim))) {
                Ok(()) => {}
                Err(Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    result = Err(e);
                    left.insert(victim, bytes);
                    continue;
                }
            }
            removed += bytes;
            self.counters.segments.fetch_sub(1, Ordering::Relaxed);
            self.counters.disk_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
        self.sealed.lock().append(&mut left);
        result?;
        self.fs.sync_dir(&self.dir)?;
        Ok(removed)
    }

    pub(crate) fn stats(&self) -> WalStats {
        let c = &self.counters;
        WalStats {
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            records_written: c.records_written.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            fsync_nanos_total: c.fsync_nanos_total.load(Ordering::Relaxed),
            fsync_nanos_max: c.fsync_nanos_max.load(Ordering::Relaxed),
            segments: c.segments.load(Ordering::Relaxed),
            disk_bytes: c.disk_bytes.load(Ordering::Relaxed),
            current_segment: self.current_segment(),
        }
    }
}

/// Creates a segment file: header, fsync file, fsync directory.
fn create_segment(fs: &Fs, dir: &std::path::Path, id: SegmentId) -> Result<Current> {
    let path = join(dir, &segment::file_name(id));
    let file = fs.create_synced(&path, &segment::encode_header(id))?;
    fs.sync_dir(dir)?;
    Ok(Current { file, path, id, bytes: SEGMENT_HEADER_BYTES as u64 })
}

//! The head: every unsealed sample, in memory, sharded by series id so writers on
//! different series do not contend on one lock.
//!
//! Invariants: nothing older than `sealed_until` is ever stored (checked under the shard
//! lock, so it cannot race with a seal); `max_t` only grows.

mod prefetch;
mod series;

use series::HeadSeries;
pub use series::Outcome;

use crate::types::{Sample, SeriesId};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, AtomicIsize, AtomicU64, Ordering};

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;
const _: () = assert!(SHARDS == 64, "Part is a 64-bit shard mask");

#[derive(Debug, Default)]
struct Shard {
    /// Indexed by `id >> SHARD_BITS`; ids are dense so this stays compact.
    series: Vec<Option<HeadSeries>>,
}

impl Shard {
    fn get_mut(&mut self, id: SeriesId) -> &mut HeadSeries {
        let idx = (id.0 >> SHARD_BITS) as usize;
        if self.series.len() <= idx {
            self.series.resize_with(idx + 1, || None);
        }
        self.series[idx].get_or_insert_with(HeadSeries::default)
    }

    fn get(&self, id: SeriesId) -> Option<&HeadSeries> {
        self.series.get((id.0 >> SHARD_BITS) as usize)?.as_ref()
    }

    /// Prefetches the slot of `id` (all of its cache lines).
    #[inline]
    fn prefetch_slot(&self, id: SeriesId) {
        if let Some(slot) = self.series.get((id.0 >> SHARD_BITS) as usize) {
            let p: *const u8 = (slot as *const Option<HeadSeries>).cast();
            let mut off = 0;
            while off < std::mem::size_of::<Option<HeadSeries>>() {
                prefetch::prefetch(p.wrapping_add(off));
                off += 64;
            }
        }
    }

    /// Prefetches where the next append to `id` writes (reads the slot: prefetch it
    /// first).
    #[inline]
    fn prefetch_tail(&self, id: SeriesId) {
        if let Some(s) = self.get(id) {
            prefetch::prefetch(s.tail_ptr());
        }
    }
}

/// How many samples ahead the append loop prefetches a series' slot, and its chunk's
/// tail (which needs the slot's contents, so it comes later).
const PREFETCH_SLOT_AHEAD: usize = 12;
const PREFETCH_TAIL_AHEAD: usize = 6;

/// A subset of the shards, as a bit mask (bit `s` = shard `s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part(pub u64);

impl Part {
    pub const ALL: Part = Part(u64::MAX);

    /// The first `n` shards, and the rest: a split of one batch between two threads
    /// that need not be even (the thread that also decodes takes fewer).
    pub fn split(n: u32) -> (Part, Part) {
        let low = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        (Part(low), Part(!low))
    }

    fn has(self, shard: usize) -> bool {
        self.0 >> shard & 1 == 1
    }
}

/// How one sample of a batch fared in the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    Stored,
    Duplicate,
    Conflict,
    OutOfBounds,
}

#[derive(Debug)]
pub struct Head {
    shards: Box<[Mutex<Shard>]>,
    partition_ms: i64,
    ooo_window_ms: i64,
    max_t: AtomicI64,
    sealed_until: AtomicI64,
    bytes: AtomicIsize,
    samples: AtomicU64,
}

impl Head {
    pub fn new(partition_ms: i64, ooo_window_ms: i64, sealed_until: i64) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            partition_ms,
            ooo_window_ms,
            max_t: AtomicI64::new(i64::MIN),
            sealed_until: AtomicI64::new(sealed_until),
            bytes: AtomicIsize::new(0),
            samples: AtomicU64::new(0),
        }
    }

    pub fn partition_of(&self, t: i64) -> i64 {
        t.div_euclid(self.partition_ms)
    }

    /// The newest timestamp ever stored, if any.
    pub fn max_t(&self) -> Option<i64> {
        Some(self.max_t.load(Ordering::Acquire)).filter(|t| *t != i64::MIN)
    }

    pub fn sealed_until(&self) -> i64 {
        self.sealed_until.load(Ordering::Acquire)
    }

    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed).max(0) as usize
    }

    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    /// Places a batch. `placed[i]` receives the fate of sample `i`. With `bounded`, samples
    /// older than the out-of-order window are refused (replay passes false: what the WAL
    /// holds was accepted once and must come back).
    pub fn append(&self, ids: &[SeriesId], ts: &[i64], vs: &[f64], bounded: bool, placed: &mut Vec<Placed>) {
        self.append_part(ids, ts, vs, bounded, placed, Part::ALL);
    }

    /// [`Head::append`] restricted to the shards of one part: threads that each take
    /// one part of the same batch never touch the same series, and each series still
    /// sees its samples in batch order. Samples of other parts are left `OutOfBounds`
    /// in `placed` and must be ignored by the caller.
    pub fn append_part(
        &self,
        ids: &[SeriesId],
        ts: &[i64],
        vs: &[f64],
        bounded: bool,
        placed: &mut Vec<Placed>,
        part: Part,
    ) {
        let n = ids.len().min(ts.len()).min(vs.len());
        placed.clear();
        placed.resize(n, Placed::OutOfBounds);
        let window_floor =
            if bounded { self.max_t.load(Ordering::Acquire).saturating_sub(self.ooo_window_ms) } else { i64::MIN };
        // Group sample indices by shard (counting sort) so each shard is locked once.
        let mut counts = [0u32; SHARDS + 1];
        for id in &ids[..n] {
            counts[shard_of(*id) + 1] += 1;
        }
        for i in 0..SHARDS {
            counts[i + 1] += counts[i];
        }
        let mut order = vec![0u32; n];
        let mut next = counts;
        for (i, id) in ids[..n].iter().enumerate() {
            let s = shard_of(*id);
            order[next[s] as usize] = i as u32;
            next[s] += 1;
        }
        let mut max_stored = i64::MIN;
        let mut stored = 0u64;
        let mut bytes_delta = 0isize;
        for s in (0..SHARDS).filter(|s| part.has(*s)) {
            let group = &order[counts[s] as usize..counts[s + 1] as usize];
            if group.is_empty() {
                continue;
            }
            let mut shard = self.shards[s].lock();
            // Read under the lock: a seal raises this before it visits the shard.
            let floor = window_floor.max(self.sealed_until.load(Ordering::Acquire));
            for (k, &i) in group.iter().enumerate() {
                if let Some(&a) = group.get(k + PREFETCH_SLOT_AHEAD) {
                    shard.prefetch_slot(ids[a as usize]);
                }
                if let Some(&a) = group.get(k + PREFETCH_TAIL_AHEAD) {
                    shard.prefetch_tail(ids[a as usize]);
                }
                let i = i as usize;
                let t = ts[i];
                // i64::MAX is refused: seal ranges are half-open, `[start, end)`, so a
                // sample there could never be sealed.
                if t < floor || t == i64::MAX {
                    continue;
                }
                let (outcome, delta) = shard.get_mut(ids[i]).insert(t, vs[i], self.partition_of(t));
                bytes_delta += delta;
                placed[i] = match outcome {
                    Outcome::Stored => {
                        stored += 1;
                        max_stored = max_stored.max(t);
                        Placed::Stored
                    }
                    Outcome::Duplicate => Placed::Duplicate,
                    Outcome::Conflict => Placed::Conflict,
                };
            }
        }
        self.bytes.fetch_add(bytes_delta, Ordering::Relaxed);
        self.samples.fetch_add(stored, Ordering::Relaxed);
        if stored > 0 {
            self.max_t.fetch_max(max_stored, Ordering::AcqRel);
        }
    }

    /// Appends the samples of `id` in `[start, end]` to `out`, in time order.
    pub fn read(&self, id: SeriesId, start: i64, end: i64, out: &mut Vec<Sample>) {
        if let Some(s) = self.shards[shard_of(id)].lock().get(id) {
            s.read(start, end, out);
        }
    }

    /// Ids of series holding data, ascending.
    pub fn series_ids(&self) -> Vec<SeriesId> {
        let mut ids = Vec::new();
        for (s, shard) in self.shards.iter().enumerate() {
            let g = shard.lock();
            for (idx, hs) in g.series.iter().enumerate() {
                if hs.as_ref().is_some_and(|h| !h.is_empty()) {
                    ids.push(SeriesId(((idx as u64) << SHARD_BITS) | s as u64));
                }
            }
        }
        ids.sort_unstable();
        ids
    }

    pub fn series_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().series.iter().filter(|h| h.as_ref().is_some_and(|h| !h.is_empty())).count())
            .sum()
    }

    /// The oldest timestamp held, if any.
    pub fn min_t(&self) -> Option<i64> {
        self.shards.iter().filter_map(|s| s.lock().series.iter().flatten().filter_map(HeadSeries::min_t).min()).min()
    }

    /// Raises the seal boundary: from now on nothing older than `until` is accepted.
    /// Returns the previous boundary.
    pub fn begin_seal(&self, until: i64) -> i64 {
        self.sealed_until.fetch_max(until, Ordering::AcqRel)
    }

    /// Removes everything older than `until` (called once it is durable in a block).
    pub fn drop_before(&self, until: i64) {
        let mut delta = 0isize;
        let mut removed = 0u64;
        for shard in self.shards.iter() {
            let mut g = shard.lock();
            for slot in g.series.iter_mut() {
                if let Some(hs) = slot {
                    let before = hs.samples();
                    delta += hs.drop_before(until);
                    removed += (before - hs.samples()) as u64;
                    if hs.is_empty() {
                        *slot = None;
                    }
                }
            }
        }
        self.bytes.fetch_add(delta, Ordering::Relaxed);
        self.samples.fetch_sub(removed.min(self.samples()), Ordering::Relaxed);
    }
}

fn shard_of(id: SeriesId) -> usize {
    (id.0 as usize) & (SHARDS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_seal_boundary_are_enforced() {
        let head = Head::new(1000, 100, i64::MIN);
        let mut placed = Vec::new();
        let ids = [SeriesId(1), SeriesId(2), SeriesId(1)];
        head.append(&ids, &[500, 500, 600], &[1.0, 2.0, 3.0], true, &mut placed);
        assert_eq!(placed, [Placed::Stored; 3]);
        // max_t is 600; the window floor is 500.
        head.append(&ids, &[499, 550, 600], &[1.0, 2.0, 4.0], true, &mut placed);
        assert_eq!(placed, [Placed::OutOfBounds, Placed::Stored, Placed::Conflict]);
        head.begin_seal(560);
        head.append(&ids[..1], &[555], &[1.0], true, &mut placed);
        assert_eq!(placed, [Placed::OutOfBounds]);
        assert_eq!(head.series_ids(), [SeriesId(1), SeriesId(2)]);
        head.drop_before(560);
        assert_eq!(head.series_ids(), [SeriesId(1)]);
        assert_eq!(head.min_t(), Some(600));
        assert_eq!(head.samples(), 1);
        // Parts split the shards: series 1 is in shard 1, series 2 in shard 2.
        let (first_two, _) = Part::split(2);
        head.append_part(&[SeriesId(1), SeriesId(2)], &[700, 700], &[1.0, 1.0], true, &mut placed, first_two);
        assert_eq!(placed, [Placed::Stored, Placed::OutOfBounds]);
        let (_, rest) = Part::split(2);
        head.append_part(&[SeriesId(1), SeriesId(2)], &[800, 800], &[1.0, 1.0], true, &mut placed, rest);
        assert_eq!(placed, [Placed::OutOfBounds, Placed::Stored]);
    }
}

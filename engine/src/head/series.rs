//! One series in the head: in-order open chunks (streaming XOR codec), plus a small
//! sorted buffer for samples that arrive out of order within the window.

use crate::chunk::{XorDecoder, XorEncoder};
use crate::types::Sample;

/// A head chunk is cut at this many samples so reads and out-of-order duplicate checks
/// never decode much; sealing re-encodes everything anyway.
pub(crate) const HEAD_CHUNK_SAMPLES_MAX: u32 = 1024;

/// Initial room of a series' first chunk: skips the smallest reallocations at little
/// cost per series.
const HEAD_CHUNK_FIRST_BYTES: usize = 128;

/// Where an incoming sample went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    /// Same timestamp and same value bits as a stored sample: accepted, dropped.
    Duplicate,
    /// Same timestamp, different value: rejected.
    Conflict,
}

#[derive(Debug)]
struct HeadChunk {
    partition: i64,
    enc: XorEncoder,
}

impl HeadChunk {
    fn last_t(&self) -> i64 {
        self.enc.last().map_or(i64::MIN, |(t, _)| t)
    }

    fn first_t(&self) -> i64 {
        self.enc.first_t().unwrap_or(i64::MAX)
    }

    fn decode_into(&self, out: &mut Vec<Sample>) {
        // Head chunks are built in memory by this process; a decode error would be a bug, and
        // stopping at it is the safe reading.
        out.extend(
            XorDecoder::new(self.enc.bytes(), self.enc.len()).map_while(Result::ok).map(|(t, v)| Sample::new(t, v)),
        );
    }
}

/// The open chunk lives inline and full chunks in a vector: appends touch one place,
/// which matters when a time-major batch visits thousands of series in turn.
#[derive(Debug, Default)]
pub(crate) struct HeadSeries {
    open: Option<HeadChunk>,
    /// Full chunks, oldest first, all older than `open`.
    full: Vec<HeadChunk>,
    /// Sorted by timestamp; every entry is older than the in-order tail was when it came.
    ooo: Vec<Sample>,
}

impl HeadSeries {
    /// All in-order chunks, oldest first.
    fn chunks(&self) -> impl Iterator<Item = &HeadChunk> {
        self.full.iter().chain(self.open.as_ref())
    }

    /// Where the next in-order append writes (a prefetch hint; see `prefetch.rs`).
    pub fn tail_ptr(&self) -> *const u8 {
        self.open.as_ref().map_or(std::ptr::null(), |c| c.enc.tail_ptr())
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_none() && self.full.is_empty() && self.ooo.is_empty()
    }

    pub fn samples(&self) -> usize {
        self.chunks().map(|c| c.enc.len() as usize).sum::<usize>() + self.ooo.len()
    }

    pub fn memory_bytes(&self) -> usize {
        self.chunks().map(|c| c.enc.memory_bytes() + 16).sum::<usize>()
            + self.ooo.capacity() * std::mem::size_of::<Sample>()
            + 64
    }

    pub fn min_t(&self) -> Option<i64> {
        let c = self.chunks().next().map(HeadChunk::first_t);
        let o = self.ooo.first().map(|s| s.t);
        match (c, o) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Inserts one sample; returns the outcome and the change in memory bytes.
    /// The caller has already checked the sample against the out-of-order bound.
    pub fn insert(&mut self, t: i64, v: f64, partition: i64) -> (Outcome, isize) {
        let Some(last) = self.open.as_mut() else {
            return self.push_chunk(t, v, partition);
        };
        let Some((lt, lv)) = last.enc.last() else {
            return self.push_chunk(t, v, partition);
        };
        if t > lt {
            if last.partition == partition && last.enc.len() < HEAD_CHUNK_SAMPLES_MAX {
                let before = last.enc.memory_bytes();
                last.enc.append(t, v);
                return (Outcome::Stored, last.enc.memory_bytes() as isize - before as isize);
            }
            return self.push_chunk(t, v, partition);
        }
        if t == lt {
            return (same_or_conflict(lv, v), 0);
        }
        self.insert_ooo(t, v)
    }

    fn push_chunk(&mut self, t: i64, v: f64, partition: i64) -> (Outcome, isize) {
        // Size the new chunk like the last one (plus a little), when there was one.
        let guess = self.open.as_ref().map_or(HEAD_CHUNK_FIRST_BYTES, |c| c.enc.bytes().len() + 64);
        let mut enc = XorEncoder::with_capacity(guess);
        enc.append(t, v);
        let bytes = enc.memory_bytes() + 16;
        if let Some(full) = self.open.replace(HeadChunk { partition, enc }) {
            self.full.push(full);
        }
        (Outcome::Stored, bytes as isize)
    }

    fn insert_ooo(&mut self, t: i64, v: f64) -> (Outcome, isize) {
        let pos = self.ooo.partition_point(|s| s.t < t);
        if let Some(s) = self.ooo.get(pos).filter(|s| s.t == t) {
            return (same_or_conflict(s.v, v), 0);
        }
        // The slow path: look for the timestamp inside an in-order chunk covering it.
        let mut scratch = Vec::new();
        for c in self.chunks().filter(|c| c.first_t() <= t && t <= c.last_t()) {
            scratch.clear();
            c.decode_into(&mut scratch);
            if let Ok(i) = scratch.binary_search_by_key(&t, |s| s.t) {
                return (same_or_conflict(scratch[i].v, v), 0);
            }
        }
        let before = self.ooo.capacity();
        self.ooo.insert(pos, Sample::new(t, v));
        let grown = (self.ooo.capacity() - before) * std::mem::size_of::<Sample>();
        (Outcome::Stored, grown as isize)
    }

    /// Appends the samples with `start <= t <= end` to `out`, in time order.
    pub fn read(&self, start: i64, end: i64, out: &mut Vec<Sample>) {
        let from = out.len();
        for c in self.chunks().filter(|c| c.first_t() <= end && c.last_t() >= start) {
            let mark = out.len();
            c.decode_into(out);
            retain_range(out, mark, start, end);
        }
        let ooo = self.ooo.iter().filter(|s| s.t >= start && s.t <= end);
        if self.ooo.is_empty() {
            return;
        }
        out.extend(ooo);
        // Chunks are in order and disjoint; only the out-of-order samples need merging.
        out[from..].sort_by_key(|s| s.t);
    }

    /// Removes every sample with `t < until` (already sealed into a block); returns the
    /// change in memory bytes (negative).
    pub fn drop_before(&mut self, until: i64) -> isize {
        let before = self.memory_bytes() as isize;
        self.full.retain(|c| c.last_t() >= until);
        if self.open.as_ref().is_some_and(|c| c.last_t() < until) {
            self.open = None;
        }
        // Only a forced seal cuts inside a chunk: re-encode the part that stays.
        let straddling = self.full.first_mut().or(self.open.as_mut()).filter(|c| c.first_t() < until);
        if let Some(c) = straddling {
            let mut s = Vec::new();
            c.decode_into(&mut s);
            let mut enc = XorEncoder::new();
            for x in s.iter().filter(|x| x.t >= until) {
                enc.append(x.t, x.v);
            }
            c.enc = enc;
        }
        if self.open.is_none() {
            self.open = self.full.pop();
        }
        self.ooo.retain(|s| s.t >= until);
        if self.ooo.is_empty() {
            self.ooo = Vec::new();
        }
        self.memory_bytes() as isize - before
    }
}

fn same_or_conflict(stored: f64, v: f64) -> Outcome {
    if stored.to_bits() == v.to_bits() {
        Outcome::Duplicate
    } else {
        Outcome::Conflict
    }
}

/// Keeps only `out[mark..]` entries inside `[start, end]` (they are sorted).
fn retain_range(out: &mut Vec<Sample>, mark: usize, start: i64, end: i64) {
    let tail = &out[mark..];
    let lo = tail.partition_point(|s| s.t < start);
    let hi = tail.partition_point(|s| s.t <= end).max(lo);
    if lo > 0 {
        out.copy_within(mark + lo..mark + hi, mark);
    }
    out.truncate(mark + (hi - lo));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(s: &HeadSeries) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        s.read(i64::MIN, i64::MAX, &mut out);
        out.into_iter().map(|s| (s.t, s.v)).collect()
    }

    #[test]
    fn in_order_ooo_duplicates_and_conflicts() {
        let mut s = HeadSeries::default();
        for t in [10, 20, 30] {
            assert_eq!(s.insert(t, t as f64, 0).0, Outcome::Stored);
        }
        assert_eq!(s.insert(30, 30.0, 0).0, Outcome::Duplicate);
        assert_eq!(s.insert(30, 31.0, 0).0, Outcome::Conflict);
        assert_eq!(s.insert(20, 20.0, 0).0, Outcome::Duplicate);
        assert_eq!(s.insert(20, 2.0, 0).0, Outcome::Conflict);
        assert_eq!(s.insert(15, 15.0, 0).0, Outcome::Stored);
        assert_eq!(s.insert(15, 15.0, 0).0, Outcome::Duplicate);
        assert_eq!(read_all(&s), vec![(10, 10.0), (15, 15.0), (20, 20.0), (30, 30.0)]);
        let mut part = Vec::new();
        s.read(12, 20, &mut part);
        assert_eq!(part.iter().map(|x| x.t).collect::<Vec<_>>(), vec![15, 20]);
    }

    #[test]
    fn chunks_are_cut_per_partition_and_size() {
        let mut s = HeadSeries::default();
        for t in 0..3000i64 {
            s.insert(t, 1.0, t / 2000);
        }
        let chunks: Vec<&HeadChunk> = s.chunks().collect();
        assert_eq!(chunks.len(), 3, "1024 + 976 in partition 0, 1000 in partition 1");
        assert!(chunks.windows(2).all(|w| w[0].last_t() < w[1].first_t()));
        s.drop_before(1500);
        assert_eq!(read_all(&s).first().map(|x| x.0), Some(1500));
        assert_eq!(s.samples(), 1500);
        s.drop_before(i64::MAX);
        assert!(s.is_empty());
    }
}

//! Label bytes as a client sent them → series ref. Almost every series of a write was
//! seen before; for those the server skips building, validating and hashing a label set
//! and appends by ref. The key is the exact bytes (the protobuf label fields of a
//! remote-write series, or the series text of a line), compared in full, so a hit can
//! only be the series those bytes name. Bounded by bytes: when full it starts over.
//!
//! Keys live one after another in one arena, in the order they were first seen, and the
//! table holds (hash, offset, length, ref). A sender repeats its series in much the same
//! order request after request, so the key comparisons of one request walk the arena
//! mostly forward, which the CPU prefetches; a map of boxed keys would take a cache miss
//! per series on a scattered allocation.

use chronolith::SeriesId;
use hashbrown::HashTable;
use parking_lot::RwLock;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bytes a cache entry costs besides its key (the table slot and its control byte).
const ENTRY_OVERHEAD_BYTES: usize = 32;

#[derive(Clone, Copy, Debug)]
struct Entry {
    hash: u64,
    offset: u32,
    len: u32,
    id: SeriesId,
}

#[derive(Debug)]
pub struct SeriesCache {
    inner: RwLock<Inner>,
    hasher: foldhash::fast::RandomState,
    bytes_max: usize,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    table: HashTable<Entry>,
    arena: Vec<u8>,
}

impl Inner {
    fn find(&self, hash: u64, key: &[u8]) -> Option<SeriesId> {
        let arena = &self.arena;
        self.table
            .find(hash, |e| e.hash == hash && &arena[e.offset as usize..(e.offset + e.len) as usize] == key)
            .map(|e| e.id)
    }

    fn bytes(&self) -> usize {
        self.arena.len() + self.table.len() * ENTRY_OVERHEAD_BYTES
    }
}

impl SeriesCache {
    pub fn new(bytes_max: usize) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            hasher: foldhash::fast::RandomState::default(),
            // Offsets are u32.
            bytes_max: bytes_max.min(u32::MAX as usize),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Looks up every key under one read lock: `out[i]` is the ref of `keys(i)`, if known.
    pub fn lookup_all<'k>(&self, n: usize, keys: impl Fn(usize) -> &'k [u8], out: &mut Vec<Option<SeriesId>>) {
        out.clear();
        let g = self.inner.read();
        out.extend((0..n).map(|i| {
            let key = keys(i);
            g.find(self.hasher.hash_one(key), key)
        }));
        drop(g);
        let hits = out.iter().filter(|x| x.is_some()).count() as u64;
        self.hits.fetch_add(hits, Relaxed);
        self.misses.fetch_add(n as u64 - hits, Relaxed);
    }

    /// Remembers refs the engine handed out, under one write lock.
    pub fn insert_all(&self, entries: impl IntoIterator<Item = (Box<[u8]>, SeriesId)>) {
        let mut g = self.inner.write();
        for (key, id) in entries {
            let cost = key.len() + ENTRY_OVERHEAD_BYTES;
            if cost > self.bytes_max {
                continue;
            }
            let hash = self.hasher.hash_one(&*key);
            if g.find(hash, &key).is_some() {
                continue;
            }
            if g.bytes() + cost > self.bytes_max {
                g.table.clear();
                g.arena.clear();
            }
            let offset = g.arena.len() as u32;
            g.arena.extend_from_slice(&key);
            let entry = Entry { hash, offset, len: key.len() as u32, id };
            g.table.insert_unique(hash, entry, |e| e.hash);
        }
    }

    pub fn bytes(&self) -> usize {
        self.inner.read().bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_and_start_over_when_full() {
        let c = SeriesCache::new(2 * (ENTRY_OVERHEAD_BYTES + 3));
        c.insert_all([(b"abc".to_vec().into_boxed_slice(), SeriesId(1))]);
        c.insert_all([(b"def".to_vec().into_boxed_slice(), SeriesId(2))]);
        c.insert_all([(b"def".to_vec().into_boxed_slice(), SeriesId(2))]);
        let keys: [&[u8]; 4] = [b"abc", b"def", b"xyz", b"ab"];
        let mut out = Vec::new();
        c.lookup_all(4, |i| keys[i], &mut out);
        assert_eq!(out, vec![Some(SeriesId(1)), Some(SeriesId(2)), None, None]);
        assert_eq!(c.bytes(), 2 * (ENTRY_OVERHEAD_BYTES + 3));
        c.insert_all([(b"xyz".to_vec().into_boxed_slice(), SeriesId(3))]);
        c.lookup_all(4, |i| keys[i], &mut out);
        assert_eq!(out, vec![None, None, Some(SeriesId(3)), None], "a full cache starts over");
        assert_eq!(c.bytes(), ENTRY_OVERHEAD_BYTES + 3);
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// This thread's CPU time: wall time means little on a shared, loaded machine.
    #[allow(unsafe_code)]
    fn cpu_ns() -> f64 {
        let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes into the struct we own.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        t.tv_sec as f64 * 1e9 + t.tv_nsec as f64
    }

    /// `cargo test --release --bin chronolith speed -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn lookup_speed() {
        const N_KEYS: usize = 20_000;
        let keys: Vec<Vec<u8>> = (0..N_KEYS)
            .map(|i| {
                format!("\n\x10\n\x08__name__\x12\x04cpu_{}hostname=host_{i}-region=eu-west-1-datacenter=eu-west-1a-rack=42-os=Ubuntu16.04LTS-arch=x64-team=SF-service=7-service_version=1-service_environment=production-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i % 10).into_bytes()
            })
            .collect();
        let c = SeriesCache::new(64 << 20);
        c.insert_all(keys.iter().enumerate().map(|(i, k)| (k.clone().into_boxed_slice(), SeriesId(i as u64 + 1))));
        let mut out = Vec::new();
        let t = cpu_ns();
        let rounds = 200;
        for r in 0..rounds {
            let half = (r % 2) * (N_KEYS / 2);
            c.lookup_all(N_KEYS / 2, |i| &keys[half + i], &mut out);
        }
        let ns = (cpu_ns() - t) / (rounds * N_KEYS / 2) as f64;
        eprintln!("{ns:.1} ns per lookup of {} bytes", keys[0].len());
        let t = cpu_ns();
        let mut x = 0u64;
        for r in 0..rounds {
            let half = (r % 2) * (N_KEYS / 2);
            for k in &keys[half..half + N_KEYS / 2] {
                x ^= c.hasher.hash_one(&k[..]);
            }
        }
        let ns = (cpu_ns() - t) / (rounds * N_KEYS / 2) as f64;
        eprintln!("{ns:.1} ns per hash ({x})");
        assert!(out.iter().all(Option::is_some));
    }
}

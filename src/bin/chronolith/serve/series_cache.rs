//! Label bytes as a client sent them → series ref. Almost every series of a write was
//! seen before; for those the server skips building, validating and hashing a label set
//! and appends by ref. The key is the exact bytes (the protobuf label fields of a
//! remote-write series, or the series text of a line), compared in full, so a hit can
//! only be the series those bytes name. Bounded by bytes: when full it starts over.
//!
//! Keys live one after another in one arena, in the order they were first seen, with
//! their refs in a vector in the same order; the hash table maps a key's hash to its
//! position there. A sender repeats its series in much the same order request after
//! request, so each lookup first tries the entry after the previous hit: one comparison
//! against memory the CPU is already streaming through, no hashing and no random probe.
//! Only when that guess is wrong does it hash the key and probe the table.

use chronolith::SeriesId;
use hashbrown::HashTable;
use parking_lot::RwLock;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bytes a cache entry costs besides its key (its slot, table entry and control byte).
const ENTRY_OVERHEAD_BYTES: usize = 32;

#[derive(Clone, Copy, Debug)]
struct Slot {
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
    /// Positions in `slots`, by hash.
    table: HashTable<u32>,
    /// In insertion order.
    slots: Vec<Slot>,
    arena: Vec<u8>,
}

impl Inner {
    fn key(&self, s: &Slot) -> &[u8] {
        &self.arena[s.offset as usize..(s.offset + s.len) as usize]
    }

    /// Tries slot `guess` first, then the table. Returns the slot's position and ref.
    #[inline]
    fn find(&self, hasher: &foldhash::fast::RandomState, key: &[u8], guess: usize) -> Option<(usize, SeriesId)> {
        if let Some(s) = self.slots.get(guess) {
            if self.key(s) == key {
                return Some((guess, s.id));
            }
        }
        self.find_hashed(hasher.hash_one(key), key)
    }

    fn find_hashed(&self, hash: u64, key: &[u8]) -> Option<(usize, SeriesId)> {
        let pos = *self.table.find(hash, |&p| {
            let s = &self.slots[p as usize];
            s.hash == hash && self.key(s) == key
        })? as usize;
        Some((pos, self.slots[pos].id))
    }

    fn bytes(&self) -> usize {
        self.arena.len() + self.slots.len() * ENTRY_OVERHEAD_BYTES
    }

    fn clear(&mut self) {
        self.table.clear();
        self.slots.clear();
        self.arena.clear();
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
        // Guess the entry after the last one found, but after two wrong guesses in a
        // row only every 16th time: keys in another order pay little for guessing.
        let (mut next, mut wrong) = (usize::MAX, 0u32);
        out.extend((0..n).map(|i| {
            let guess = if wrong < 2 || i % 16 == 0 { next } else { usize::MAX };
            let found = g.find(&self.hasher, keys(i), guess);
            match found {
                Some((pos, _)) if pos == guess => wrong = 0,
                _ if guess != usize::MAX => wrong += 1,
                _ => {}
            }
            next = found.map_or(usize::MAX, |(pos, _)| pos + 1);
            found.map(|(_, id)| id)
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
            if g.find_hashed(hash, &key).is_some() {
                continue;
            }
            if g.bytes() + cost > self.bytes_max {
                g.clear();
            }
            let slot = Slot { hash, offset: g.arena.len() as u32, len: key.len() as u32, id };
            g.arena.extend_from_slice(&key);
            let pos = g.slots.len() as u32;
            g.slots.push(slot);
            let Inner { table, slots, .. } = &mut *g;
            table.insert_unique(hash, pos, |&p| slots[p as usize].hash);
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
        eprintln!("{ns:.1} ns per lookup of {} bytes, keys in the order first seen", keys[0].len());
        let shuffled: Vec<&[u8]> = (0..N_KEYS).map(|i| &keys[(i * 7919) % N_KEYS][..]).collect();
        let t = cpu_ns();
        for r in 0..rounds {
            let half = (r % 2) * (N_KEYS / 2);
            c.lookup_all(N_KEYS / 2, |i| shuffled[half + i], &mut out);
        }
        let ns = (cpu_ns() - t) / (rounds * N_KEYS / 2) as f64;
        eprintln!("{ns:.1} ns per lookup, keys in another order");
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

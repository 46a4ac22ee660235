//! Label bytes as a client sent them → series ref. Almost every series of a write was
//! seen before; for those the server skips building, validating and hashing a label set
//! and appends by ref. The key is the exact bytes (the protobuf label fields of a
//! remote-write series, or the series text of a line), compared in full, so a hit can
//! only be the series those bytes name. Bounded by bytes: when full it starts over.

use chronolith::SeriesId;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

type Map = HashMap<Box<[u8]>, SeriesId, foldhash::fast::RandomState>;

/// Bytes a cache entry costs besides its key (the map's slot, the box's header).
const ENTRY_OVERHEAD_BYTES: usize = 48;

#[derive(Debug)]
pub struct SeriesCache {
    inner: RwLock<Inner>,
    bytes_max: usize,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    map: Map,
    bytes: usize,
}

impl SeriesCache {
    pub fn new(bytes_max: usize) -> Self {
        Self { inner: RwLock::new(Inner::default()), bytes_max, hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// Looks up every key under one read lock: `out[i]` is the ref of `keys(i)`, if known.
    pub fn lookup_all<'k>(&self, n: usize, keys: impl Fn(usize) -> &'k [u8], out: &mut Vec<Option<SeriesId>>) {
        out.clear();
        let g = self.inner.read();
        out.extend((0..n).map(|i| g.map.get(keys(i)).copied()));
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
            if g.bytes + cost > self.bytes_max {
                g.map.clear();
                g.bytes = 0;
            }
            if g.map.insert(key, id).is_none() {
                g.bytes += cost;
            }
        }
    }

    pub fn bytes(&self) -> usize {
        self.inner.read().bytes
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
        let keys: [&[u8]; 3] = [b"abc", b"def", b"xyz"];
        let mut out = Vec::new();
        c.lookup_all(3, |i| keys[i], &mut out);
        assert_eq!(out, vec![Some(SeriesId(1)), Some(SeriesId(2)), None]);
        c.insert_all([(b"xyz".to_vec().into_boxed_slice(), SeriesId(3))]);
        c.lookup_all(3, |i| keys[i], &mut out);
        assert_eq!(out, vec![None, None, Some(SeriesId(3))], "a full cache starts over");
        assert_eq!(c.bytes(), ENTRY_OVERHEAD_BYTES + 3);
    }
}

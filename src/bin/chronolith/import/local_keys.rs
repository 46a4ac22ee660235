//! A parse worker's own map from series keys to refs, filled from the shared [`Known`]
//! map so the fast path takes no lock.
//!
//! Exposition dumps and line protocol files list their series in the same order at
//! every timestamp, so the series of a line is nearly always the one that followed the
//! previous line's series last time. Each entry remembers that successor; when the
//! line's key equals the successor's key (one comparison), the hash and the probe are
//! skipped. A wrong guess costs one comparison and falls back to the map; the answer
//! is always a key's own ref, as the map would give it.

use super::worker::{KeyMap, Known};
use chronolith::SeriesId;

const NONE: u32 = u32::MAX;

#[derive(Debug, Default)]
pub struct LocalKeys {
    index: KeyMap<u32>,
    entries: Vec<Entry>,
    prev: Option<u32>,
}

#[derive(Debug)]
struct Entry {
    key: Box<[u8]>,
    id: SeriesId,
    /// The entry looked up right after this one, last time.
    next: u32,
}

impl LocalKeys {
    /// The ref of `key`: predicted, from this map, or from `known` (then kept here).
    pub fn get(&mut self, known: &Known, key: &[u8]) -> Option<SeriesId> {
        if let Some(prev) = self.prev {
            let next = self.entries[prev as usize].next;
            if let Some(e) = self.entries.get(next as usize).filter(|e| *e.key == *key) {
                self.prev = Some(next);
                return Some(e.id);
            }
        }
        let i = match self.index.get(key) {
            Some(&i) => i,
            None => {
                let id = known.get(key)?;
                let i = u32::try_from(self.entries.len()).ok().filter(|&i| i != NONE)?;
                self.entries.push(Entry { key: key.into(), id, next: NONE });
                self.index.insert(key.into(), i);
                i
            }
        };
        if let Some(prev) = self.prev {
            self.entries[prev as usize].next = i;
        }
        self.prev = Some(i);
        Some(self.entries[i as usize].id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the order of lookups, each key gets its own ref (or none if unknown).
    #[test]
    fn predicted_or_not_every_key_gets_its_own_ref() {
        let known = Known::default();
        let keys: Vec<Vec<u8>> = (0..50).map(|i| format!("m{{s=\"{i}\"}}").into_bytes()).collect();
        for (i, k) in keys.iter().enumerate().take(40) {
            known.insert(k.clone().into_boxed_slice(), SeriesId(i as u64 + 1));
        }
        let mut local = LocalKeys::default();
        // A steady rotation (predictions hit), then a shuffled order (they miss).
        let mut order: Vec<usize> = (0..5).flat_map(|_| 0..50).collect();
        order.extend((0..500).map(|i| (i * 37 + i / 7) % 50));
        for i in order {
            let want = (i < 40).then(|| SeriesId(i as u64 + 1));
            assert_eq!(local.get(&known, &keys[i]), want, "key {i}");
        }
    }
}

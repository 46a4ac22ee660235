//! The series registry: stable ids for label sets, and the inverted label index
//! (label name → value → sorted ids) that answers matchers.
//!
//! The registry does no I/O. The engine logs a new series to the series log before it
//! inserts it here, so an id is never handed out that a crash could forget.

use crate::labels::Labels;
use crate::matcher::{MatchOp, Matcher};
use crate::types::SeriesId;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// The registry's maps hash label strings on every series creation and lookup: foldhash
/// is several times faster than std's SipHash there, and its per-map random seed keeps
/// the keys' placement unpredictable to clients.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
pub struct Registry {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_labels: Map<Arc<Labels>, SeriesId>,
    /// Indexed by id; ids are dense, so a vector beats a map.
    by_id: Vec<Option<Arc<Labels>>>,
    /// name → value → ids, ascending (ids are inserted in increasing order or sorted in).
    postings: Map<String, Map<String, Vec<SeriesId>>>,
    count: usize,
    max_id: u64,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn lookup(&self, labels: &Labels) -> Option<SeriesId> {
        self.inner.read().by_labels.get(labels).copied()
    }

    pub fn labels(&self, id: SeriesId) -> Option<Arc<Labels>> {
        let i = usize::try_from(id.0).ok()?;
        self.inner.read().by_id.get(i).cloned().flatten()
    }

    pub fn len(&self) -> usize {
        self.inner.read().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next unused id.
    pub fn next_id(&self) -> SeriesId {
        SeriesId(self.inner.read().max_id + 1)
    }

    /// Never hands out ids up to `id` (ids a damaged series log lost: samples may still
    /// name them).
    pub fn reserve_through(&self, id: SeriesId) {
        let mut g = self.inner.write();
        g.max_id = g.max_id.max(id.0);
    }

    /// Whether `id` names a known series.
    pub fn contains(&self, id: SeriesId) -> bool {
        self.labels(id).is_some()
    }

    /// True when some id below the highest is unknown (a damaged series log lost it), so
    /// a ref below the next id is not necessarily a series.
    pub fn has_holes(&self) -> bool {
        let g = self.inner.read();
        (g.count as u64) < g.max_id
    }

    /// One flag per id (index = id): is it a known series.
    pub fn known_ids(&self) -> Vec<bool> {
        self.inner.read().by_id.iter().map(Option::is_some).collect()
    }

    /// Inserts `id → labels`. Returns false (and changes nothing) when the id is taken by
    /// a different label set or the labels already have another id: the caller decides
    /// whether that is corruption.
    pub fn insert(&self, id: SeriesId, labels: Labels) -> bool {
        self.insert_shared(id, Arc::new(labels))
    }

    /// [`Registry::insert`] of labels already shared (the write path's, without a copy).
    pub fn insert_shared(&self, id: SeriesId, labels: Arc<Labels>) -> bool {
        let Ok(idx) = usize::try_from(id.0) else { return false };
        if id.0 == 0 {
            return false;
        }
        let mut g = self.inner.write();
        if let Some(existing) = g.by_labels.get(&labels) {
            return *existing == id;
        }
        if g.by_id.get(idx).is_some_and(Option::is_some) {
            return false;
        }
        if g.by_id.len() <= idx {
            g.by_id.resize(idx + 1, None);
        }
        g.by_id[idx] = Some(labels.clone());
        for (n, v) in labels.iter() {
            // Names and values repeat across series: allocate a key only the first time.
            let values = match g.postings.get_mut(n) {
                Some(values) => values,
                None => g.postings.entry(n.to_string()).or_default(),
            };
            let list = match values.get_mut(v) {
                Some(list) => list,
                None => values.entry(v.to_string()).or_default(),
            };
            match list.last() {
                Some(last) if *last > id => {
                    let pos = list.partition_point(|x| *x < id);
                    list.insert(pos, id);
                }
                _ => list.push(id),
            }
        }
        g.by_labels.insert(labels, id);
        g.count += 1;
        g.max_id = g.max_id.max(id.0);
        true
    }

    /// Ids of every series matching all `matchers`, ascending.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<SeriesId> {
        let g = self.inner.read();
        let mut candidates: Option<Vec<SeriesId>> = None;
        // Narrow by the matchers that need the label to be present, most selective first.
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let Some(values) = g.postings.get(&m.name) else { return Vec::new() };
            let ids = match m.op {
                MatchOp::Equal => values.get(&m.value).cloned().unwrap_or_default(),
                _ => {
                    let mut ids: Vec<SeriesId> = values
                        .iter()
                        .filter(|(v, _)| m.matches_value(v))
                        .flat_map(|(_, ids)| ids.iter().copied())
                        .collect();
                    ids.sort_unstable();
                    ids
                }
            };
            candidates = Some(match candidates {
                None => ids,
                Some(c) => intersect(&c, &ids),
            });
            if candidates.as_ref().is_some_and(Vec::is_empty) {
                return Vec::new();
            }
        }
        let all = || {
            g.by_id.iter().enumerate().filter(|(_, l)| l.is_some()).map(|(i, _)| SeriesId(i as u64)).collect::<Vec<_>>()
        };
        let candidates = candidates.unwrap_or_else(all);
        candidates
            .into_iter()
            .filter(|id| {
                let Some(Some(l)) = usize::try_from(id.0).ok().and_then(|i| g.by_id.get(i)) else {
                    return false;
                };
                matchers.iter().all(|m| m.matches(l))
            })
            .collect()
    }

    /// Every label name, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.read().postings.keys().cloned().collect();
        v.sort();
        v
    }

    /// Every value of one label, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> =
            self.inner.read().postings.get(name).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        v.sort();
        v
    }
}

fn intersect(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;

    fn reg() -> Result<Registry> {
        let r = Registry::new();
        for (i, (host, dc)) in [("a", "x"), ("b", "x"), ("c", "y")].into_iter().enumerate() {
            r.insert(SeriesId(i as u64 + 1), Labels::metric("cpu", [("host", host), ("dc", dc)])?);
        }
        r.insert(SeriesId(4), Labels::metric("mem", [("host", "a")])?);
        Ok(r)
    }

    #[test]
    fn matchers_select_expected_series() -> Result<()> {
        let r = reg()?;
        let ids = |m: &[Matcher]| r.select(m).into_iter().map(|s| s.0).collect::<Vec<_>>();
        assert_eq!(ids(&[Matcher::metric("cpu")]), [1, 2, 3]);
        assert_eq!(ids(&[Matcher::metric("cpu"), Matcher::eq("dc", "x")]), [1, 2]);
        assert_eq!(ids(&[Matcher::metric("cpu"), Matcher::new("host", MatchOp::NotEqual, "a")?]), [2, 3]);
        assert_eq!(ids(&[Matcher::new("host", MatchOp::RegexMatch, "a|c")?]), [1, 3, 4]);
        assert_eq!(ids(&[Matcher::new("dc", MatchOp::RegexNoMatch, "x")?]), [3, 4]);
        assert_eq!(ids(&[Matcher::eq("dc", "")]), [4]);
        assert_eq!(ids(&[Matcher::eq("nope", "z")]), Vec::<u64>::new());
        Ok(())
    }

    #[test]
    fn conflicting_insert_is_refused() -> Result<()> {
        let r = reg()?;
        assert!(!r.insert(SeriesId(1), Labels::metric("other", [("a", "b")])?));
        assert!(r.insert(SeriesId(1), Labels::metric("cpu", [("host", "a"), ("dc", "x")])?));
        assert!(!r.insert(SeriesId(9), Labels::metric("cpu", [("host", "a"), ("dc", "x")])?));
        assert_eq!(r.len(), 4);
        assert_eq!(r.next_id(), SeriesId(5));
        Ok(())
    }
}

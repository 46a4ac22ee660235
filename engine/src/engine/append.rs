//! The write path: resolve series (new ones logged first), place samples in the head,
//! log what was stored as one WAL record, and return once the durability mode is met.
//!
//! The head is written before the WAL so that the log holds exactly the samples that
//! were accepted, in an order that replays to the same head. A sample is visible to
//! readers slightly before it is durable; it is acknowledged only after.
//!
//! A failed WAL write (ENOSPC, EIO) is rolled back by the WAL and the append returns the
//! error; the engine goes on. The batch's samples may stay in the head unlogged, but they
//! were never acknowledged, and a retry of the same batch finds them as exact duplicates,
//! which are logged too (below), so the retry's acknowledgement is durable. A failed
//! fsync poisons the WAL and then the engine: appends fail until reopen, which rebuilds
//! the head from what the WAL holds.

use super::Engine;
use crate::error::{Error, RejectReason, Result};
use crate::head::Placed;
use crate::labels::Labels;
use crate::types::SeriesId;
use crate::walrec::{self, RECORD_SAMPLES, RECORD_SERIES};
use std::collections::HashMap;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A batch of samples, each naming its series by a ref returned earlier (the hot path)
/// or by labels (resolved, and created if new, at append).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    ids: Vec<SeriesId>,
    ts: Vec<i64>,
    vs: Vec<f64>,
    /// Entries named by labels: (index in the batch, labels). Shared so that a new
    /// series' labels move into the registry without a copy.
    by_labels: Vec<(usize, Arc<Labels>)>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self { ids: Vec::with_capacity(n), ts: Vec::with_capacity(n), vs: Vec::with_capacity(n), by_labels: Vec::new() }
    }

    /// Adds a sample for a series ref returned by an earlier append or `series_ref`.
    pub fn add(&mut self, series: SeriesId, t: i64, v: f64) {
        self.ids.push(series);
        self.ts.push(t);
        self.vs.push(v);
    }

    /// Adds a sample for a series named by labels.
    pub fn add_labels(&mut self, labels: Labels, t: i64, v: f64) {
        self.by_labels.push((self.ids.len(), Arc::new(labels)));
        self.add(SeriesId(0), t, v);
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The timestamp of the `i`th sample (for reporting a rejection by index).
    pub fn timestamp(&self, i: usize) -> Option<i64> {
        self.ts.get(i).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn clear(&mut self) {
        self.ids.clear();
        self.ts.clear();
        self.vs.clear();
        self.by_labels.clear();
    }
}

/// One sample the engine did not store, by its index in the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub index: usize,
    pub reason: RejectReason,
}

/// What happened to a batch. Everything counted in `stored` and `duplicates` is durable
/// under the configured durability mode when `append` returns.
#[derive(Clone, Debug, Default)]
pub struct AppendReport {
    pub stored: usize,
    /// Exact duplicates of stored samples: accepted and dropped (safe retries).
    pub duplicates: usize,
    pub rejected: Vec<Rejection>,
    /// The series ref of each entry that was named by labels: (index, ref).
    pub series: Vec<(usize, SeriesId)>,
}

impl Engine {
    /// The ref of a series, creating (and durably logging) it if new.
    pub fn series_ref(&self, labels: &Labels) -> Result<SeriesId> {
        labels.check(&self.opts.label_limits)?;
        if let Some(id) = self.registry.lookup(labels) {
            return Ok(id);
        }
        let ids = self.create_series(&[&Arc::new(labels.clone())])?;
        match ids.first() {
            Some(Some(id)) => Ok(*id),
            _ => Err(Error::SeriesLimit {
                limit: self.opts.series_max.unwrap_or(usize::MAX),
                series: self.registry.len(),
                new: 1,
            }),
        }
    }

    /// Looks up or creates each label set; new series are logged durably before any of
    /// their samples. Returns ids in the same order; `None` for a new series beyond
    /// `Options::series_max` (the first new ones in batch order are created up to it).
    fn create_series(&self, wanted: &[&Arc<Labels>]) -> Result<Vec<Option<SeriesId>>> {
        self.check_open()?;
        // Common case: every series exists; no need to queue behind creators.
        let known: Option<Vec<Option<SeriesId>>> = wanted.iter().map(|l| self.registry.lookup(l).map(Some)).collect();
        if let Some(ids) = known {
            return Ok(ids);
        }
        let _g = self.create_series.lock();
        let mut next = self.registry.next_id().0;
        let room = self.opts.series_max.map_or(usize::MAX, |m| m.saturating_sub(self.registry.len()));
        let mut out = Vec::with_capacity(wanted.len());
        let mut fresh: Vec<(SeriesId, &Arc<Labels>)> = Vec::new();
        let mut fresh_by_labels: HashMap<&Labels, SeriesId, foldhash::fast::RandomState> = HashMap::default();
        for &shared in wanted {
            let l: &Labels = shared;
            let id = match self.registry.lookup(l).or_else(|| fresh_by_labels.get(l).copied()) {
                Some(id) => Some(id),
                None if fresh.len() >= room => None,
                None => {
                    let id = SeriesId(next);
                    next += 1;
                    fresh.push((id, shared));
                    fresh_by_labels.insert(l, id);
                    Some(id)
                }
            };
            out.push(id);
        }
        if !fresh.is_empty() {
            let mut payload = Vec::new();
            let entries: Vec<(SeriesId, &Labels)> = fresh.iter().map(|(id, l)| (*id, &***l)).collect();
            walrec::encode_series(&entries, &mut payload);
            // A rolled-back failure leaves no trace of these ids on disk, so they are
            // simply handed out again next time.
            if let Err(e) = self.series_log.append(&[(RECORD_SERIES, &payload)]) {
                if self.series_log.is_poisoned() {
                    self.poisoned.store(true, Release);
                }
                return Err(e.into());
            }
            for (id, l) in fresh {
                self.registry.insert_shared(id, Arc::clone(l));
            }
        }
        Ok(out)
    }

    fn check_open(&self) -> Result<()> {
        if self.poisoned.load(Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Appends a batch. Per-sample problems are reported in [`AppendReport::rejected`]
    /// and never fail the rest; an `Err` means nothing of the batch was acknowledged.
    pub fn append(&self, batch: &Batch) -> Result<AppendReport> {
        self.check_open()?;
        self.wait_for_head_room()?;
        let mut report = AppendReport::default();
        let n = batch.len();
        let mut ids: Option<Vec<SeriesId>> = None;
        let mut pre_rejected: Vec<Rejection> = Vec::new();
        if !batch.by_labels.is_empty() {
            let mut resolved = batch.ids.clone();
            let valid: Vec<&(usize, Arc<Labels>)> = batch
                .by_labels
                .iter()
                .filter(|(i, l)| {
                    let ok = l.check(&self.opts.label_limits).is_ok();
                    if !ok {
                        pre_rejected.push(Rejection { index: *i, reason: RejectReason::InvalidLabels });
                    }
                    ok
                })
                .collect();
            let labels: Vec<&Arc<Labels>> = valid.iter().map(|(_, l)| l).collect();
            let got = self.create_series(&labels)?;
            for ((i, _), id) in valid.iter().zip(got) {
                match id {
                    Some(id) => {
                        resolved[*i] = id;
                        report.series.push((*i, id));
                    }
                    None => pre_rejected.push(Rejection { index: *i, reason: RejectReason::SeriesLimit }),
                }
            }
            ids = Some(resolved);
        }
        let ids: &[SeriesId] = ids.as_deref().unwrap_or(&batch.ids);
        let max_id = self.registry.next_id().0 - 1;
        // Ids are dense unless salvage lost some series: only then is a lookup needed.
        let holes = self.registry.has_holes();
        let rejected_already: std::collections::HashSet<usize> = pre_rejected.iter().map(|r| r.index).collect();
        for (i, id) in ids.iter().enumerate() {
            let unknown = id.0 == 0 || id.0 > max_id || (holes && !self.registry.contains(*id));
            if unknown && !rejected_already.contains(&i) {
                pre_rejected.push(Rejection { index: i, reason: RejectReason::UnknownSeries });
            }
        }

        // Place in the head. Pre-rejected entries are filtered out first (rare path).
        let mut placed = Vec::with_capacity(n);
        let filtered;
        let (ids_in, ts_in, vs_in, map) = if pre_rejected.is_empty() {
            (ids, &batch.ts[..], &batch.vs[..], None)
        } else {
            filtered = Filtered::new(n, &pre_rejected, ids, &batch.ts, &batch.vs);
            (&filtered.ids[..], &filtered.ts[..], &filtered.vs[..], Some(&filtered.index[..]))
        };
        self.head.append(ids_in, ts_in, vs_in, true, &mut placed);

        // Log stored samples and exact duplicates: a duplicate is acknowledged, so it
        // must be durable even if its twin from a concurrent append is not yet logged;
        // replay drops it again as a duplicate.
        let mut payload = Vec::new();
        let mut max_t = i64::MIN;
        let logged = |p: &Placed| matches!(p, Placed::Stored | Placed::Duplicate);
        if placed.iter().all(logged) {
            walrec::encode_samples(ids_in, ts_in, vs_in, &mut payload);
            max_t = ts_in.iter().copied().max().unwrap_or(i64::MIN);
        } else {
            let (mut si, mut st, mut sv) = (Vec::new(), Vec::new(), Vec::new());
            for j in (0..placed.len()).filter(|&j| logged(&placed[j])) {
                si.push(ids_in[j]);
                st.push(ts_in[j]);
                sv.push(vs_in[j]);
                max_t = max_t.max(ts_in[j]);
            }
            if !si.is_empty() {
                walrec::encode_samples(&si, &st, &sv, &mut payload);
            }
        }
        for (j, p) in placed.iter().enumerate() {
            let index = map.map_or(j, |m| m[j]);
            match p {
                Placed::Stored => report.stored += 1,
                Placed::Duplicate => report.duplicates += 1,
                Placed::Conflict => report.rejected.push(Rejection { index, reason: RejectReason::DuplicateTimestamp }),
                Placed::OutOfBounds => report.rejected.push(Rejection { index, reason: RejectReason::OutOfBounds }),
            }
        }
        report.rejected.extend(pre_rejected);
        report.rejected.sort_by_key(|r| r.index);
        if !payload.is_empty() {
            self.log_samples(&payload, max_t)?;
        }
        let c = &self.counters;
        c.samples_appended.fetch_add(report.stored as u64, Relaxed);
        c.duplicates_dropped.fetch_add(report.duplicates as u64, Relaxed);
        for r in &report.rejected {
            c.reject(r.reason);
        }
        self.maybe_hint_seal();
        Ok(report)
    }

    fn log_samples(&self, payload: &[u8], max_t: i64) -> Result<()> {
        let _gate = self.wal_gate.read();
        let pos = match self.sample_log.append(&[(RECORD_SAMPLES, payload)]) {
            Ok(p) => p,
            Err(e) => {
                if self.sample_log.is_poisoned() {
                    self.poisoned.store(true, Release);
                }
                return Err(e.into());
            }
        };
        let mut m = self.segment_max_t.lock();
        let e = m.entry(pos.segment).or_insert(max_t);
        *e = (*e).max(max_t);
        Ok(())
    }

    /// Calls the seal hook once per partition that becomes closable, and whenever the
    /// head is over its memory bound.
    fn maybe_hint_seal(&self) {
        let Some(max_t) = self.head.max_t() else { return };
        let closable = max_t.saturating_sub(self.opts.ooo_window_ms);
        let boundary = self.head.partition_of(closable);
        let prev = self.seal_hinted.load(Acquire);
        let over = self.head.bytes() > self.opts.head_bytes_max;
        if (boundary > prev && self.seal_hinted.compare_exchange(prev, boundary, AcqRel, Acquire).is_ok()) || over {
            self.hint_seal();
        }
    }

    /// Back-pressure: past the head bound, wait for sealing up to `overload_wait_ms`.
    fn wait_for_head_room(&self) -> Result<()> {
        let limit = self.opts.head_bytes_max;
        if self.head.bytes() <= limit {
            return Ok(());
        }
        self.hint_seal();
        let wait = Duration::from_millis(self.opts.overload_wait_ms);
        let deadline = Instant::now() + wait;
        let (lock, cv) = &self.head_freed;
        let mut g = lock.lock();
        while self.head.bytes() > limit {
            if cv.wait_until(&mut g, deadline).timed_out() && self.head.bytes() > limit {
                self.counters.overloaded.fetch_add(1, Relaxed);
                return Err(Error::Overloaded {
                    head_bytes: self.head.bytes(),
                    head_bytes_max: limit,
                    waited_ms: self.opts.overload_wait_ms,
                });
            }
        }
        Ok(())
    }
}

/// The entries of a batch that survived the pre-checks, with their original indices.
struct Filtered {
    ids: Vec<SeriesId>,
    ts: Vec<i64>,
    vs: Vec<f64>,
    index: Vec<usize>,
}

impl Filtered {
    fn new(n: usize, rejected: &[Rejection], ids: &[SeriesId], ts: &[i64], vs: &[f64]) -> Self {
        let mut drop = vec![false; n];
        for r in rejected {
            if let Some(d) = drop.get_mut(r.index) {
                *d = true;
            }
        }
        let index: Vec<usize> = (0..n).filter(|&i| !drop[i]).collect();
        Self {
            ids: index.iter().map(|&i| ids[i]).collect(),
            ts: index.iter().map(|&i| ts[i]).collect(),
            vs: index.iter().map(|&i| vs[i]).collect(),
            index,
        }
    }
}

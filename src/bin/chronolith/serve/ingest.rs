//! From decoded samples to one append: samples of known series go by ref, new series by
//! labels (validated here so a refusal can say what is wrong), and what the engine or
//! the checks refused is collected per reason for the answer. One request is one
//! `Db::append`, so it costs one WAL record and (under `Always`) shares one fsync.

use super::series_cache::SeriesCache;
use chronolith::{Batch, Db, Error, Labels, RejectReason, SeriesId};
use chronolith_engine::LabelLimits;
use std::collections::BTreeMap;

/// Why a sample was not stored, as reported and counted (`reason` label of metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    OutOfBounds,
    DuplicateTimestamp,
    InvalidLabels,
    SeriesLimit,
    Malformed,
    NativeHistogram,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Self::OutOfBounds => "out_of_bounds",
            Self::DuplicateTimestamp => "duplicate_timestamp",
            Self::InvalidLabels => "invalid_labels",
            Self::SeriesLimit => "series_limit",
            Self::Malformed => "malformed",
            Self::NativeHistogram => "native_histogram",
        }
    }

    fn explain(self) -> &'static str {
        match self {
            Self::OutOfBounds => {
                "out of bounds (older than the out-of-order window behind the newest sample, or in already sealed time)"
            }
            Self::DuplicateTimestamp => "duplicate timestamp with a different value",
            Self::InvalidLabels => "invalid labels",
            Self::SeriesLimit => "new series past the series limit",
            Self::Malformed => "malformed",
            Self::NativeHistogram => "native histogram samples (not supported; float samples only)",
        }
    }
}

/// Examples kept per reason for the answer; the counts are always complete.
const EXAMPLES_PER_REASON: usize = 5;

/// What was refused, per reason: a count and the first few examples.
#[derive(Debug, Default)]
pub struct Rejections {
    by_reason: BTreeMap<Reason, (usize, Vec<String>)>,
}

impl Rejections {
    pub fn add(&mut self, reason: Reason, count: usize, example: impl FnOnce() -> String) {
        let e = self.by_reason.entry(reason).or_default();
        e.0 += count;
        if e.1.len() < EXAMPLES_PER_REASON {
            e.1.push(example());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_reason.is_empty()
    }

    pub fn total(&self) -> usize {
        self.by_reason.values().map(|(n, _)| n).sum()
    }

    pub fn counts(&self) -> impl Iterator<Item = (Reason, usize)> + '_ {
        self.by_reason.iter().map(|(r, (n, _))| (*r, *n))
    }

    /// `"3 out of bounds (...): a; b; c. 1 malformed: line 4: ..."`
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (reason, (n, examples)) in &self.by_reason {
            let more = if *n > examples.len() { format!("; and {} more", n - examples.len()) } else { String::new() };
            parts.push(format!("{n} {}: {}{more}", reason.explain(), examples.join("; ")));
        }
        parts.join(". ")
    }
}

/// A sample of a series new to this request: the `k`th of `Pending::new_series`.
#[derive(Clone, Copy, Debug)]
struct NewEntry {
    k: u32,
    t: i64,
    v: f64,
    origin: u32,
}

/// One request's samples on their way to the engine. Samples of known series go
/// straight into a batch by ref (the hot path copies nothing else); samples of new
/// series wait aside, so a series-limit refusal can still append the known ones.
#[derive(Debug, Default)]
pub struct Pending {
    refs: Batch,
    /// What the answer calls each sample of `refs`: a series index (remote write) or
    /// a line number.
    ref_origins: Vec<u32>,
    new_entries: Vec<NewEntry>,
    /// New series: labels and the cache key they are remembered under.
    new_series: Vec<(Labels, Box<[u8]>)>,
    pub rejections: Rejections,
}

/// What one write request achieved.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stored: usize,
    pub duplicates: usize,
    pub rejections: Rejections,
}

impl Pending {
    pub fn with_capacity(n: usize) -> Self {
        Self { refs: Batch::with_capacity(n), ref_origins: Vec::with_capacity(n), ..Self::default() }
    }

    #[inline]
    pub fn add_ref(&mut self, id: SeriesId, t: i64, v: f64, origin: u32) {
        self.refs.add(id, t, v);
        self.ref_origins.push(origin);
    }

    /// Registers a new series of this request; samples then go to it with `add_new`.
    pub fn new_series(&mut self, labels: Labels, key: &[u8]) -> u32 {
        self.new_series.push((labels, key.into()));
        (self.new_series.len() - 1) as u32
    }

    pub fn add_new(&mut self, k: u32, t: i64, v: f64, origin: u32) {
        self.new_entries.push(NewEntry { k, t, v, origin });
    }

    /// Appends everything in one `Db::append`, remembers the refs of new series in
    /// `cache`, and folds the engine's per-sample rejections into the outcome. Past the
    /// series limit the engine creates the first new series up to it and refuses the
    /// samples of the rest, so samples of known series are always stored.
    pub fn append(mut self, db: &Db, cache: &SeriesCache, describe: &dyn Fn(u32) -> String) -> Result<Outcome, Error> {
        let mut outcome = Outcome { rejections: std::mem::take(&mut self.rejections), ..Outcome::default() };
        let n_refs = self.refs.len();
        let report = if self.new_entries.is_empty() {
            if n_refs == 0 {
                return Ok(outcome);
            }
            db.append(&self.refs)?
        } else {
            let mut all = std::mem::take(&mut self.refs);
            // Each new series' labels go to the batch with its last sample, moved; the
            // samples before it (rare: one series twice in a request) take copies.
            let mut uses = vec![0u32; self.new_series.len()];
            for e in &self.new_entries {
                uses[e.k as usize] += 1;
            }
            for e in &self.new_entries {
                let k = e.k as usize;
                uses[k] -= 1;
                let labels = &mut self.new_series[k].0;
                let labels = if uses[k] == 0 { std::mem::take(labels) } else { labels.clone() };
                all.add_labels(labels, e.t, e.v);
            }
            let report = db.append(&all)?;
            self.refs = all;
            report
        };
        outcome.stored = report.stored;
        outcome.duplicates = report.duplicates;
        let mut learned = Vec::new();
        let mut seen = vec![false; self.new_series.len()];
        for &(bi, id) in &report.series {
            if let Some(e) = bi.checked_sub(n_refs).and_then(|j| self.new_entries.get(j)) {
                if !std::mem::replace(&mut seen[e.k as usize], true) {
                    learned.push((std::mem::take(&mut self.new_series[e.k as usize].1), id));
                }
            }
        }
        if !learned.is_empty() {
            cache.insert_all(learned);
        }
        for r in &report.rejected {
            let (origin, t) = match r.index.checked_sub(n_refs) {
                None => (self.ref_origins[r.index], self.refs_t(r.index)),
                Some(j) => (self.new_entries[j].origin, Some(self.new_entries[j].t)),
            };
            let reason = match r.reason {
                RejectReason::OutOfBounds => Reason::OutOfBounds,
                RejectReason::DuplicateTimestamp => Reason::DuplicateTimestamp,
                RejectReason::InvalidLabels | RejectReason::UnknownSeries => Reason::InvalidLabels,
                RejectReason::SeriesLimit => Reason::SeriesLimit,
            };
            let series_max = db.engine().options().series_max;
            outcome.rejections.add(reason, 1, || {
                let mut s = describe(origin);
                if let Some(t) = t {
                    s.push_str(&format!(" @ {t}"));
                }
                if let (Reason::SeriesLimit, Some(limit)) = (reason, series_max) {
                    s.push_str(&format!(" (limit {limit} series)"));
                }
                s
            });
        }
        Ok(outcome)
    }

    /// The timestamp of the `i`th ref sample, for messages.
    fn refs_t(&self, i: usize) -> Option<i64> {
        self.refs.timestamp(i)
    }
}

/// Builds and checks a new series' label set: `Err` says what is wrong with it.
pub fn new_labels<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    limits: &LabelLimits,
) -> Result<Labels, String> {
    let labels = Labels::new(pairs).map_err(|e| e.to_string())?;
    labels.check(limits).map_err(|e| e.to_string())?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_describe_counts_and_examples() {
        let mut r = Rejections::default();
        for i in 0..7 {
            r.add(Reason::OutOfBounds, 1, || format!("s{i}"));
        }
        r.add(Reason::Malformed, 2, || "line 3: bad".into());
        assert_eq!(r.total(), 9);
        let d = r.describe();
        assert!(d.starts_with("7 out of bounds"), "{d}");
        assert!(d.contains("s0; s1; s2; s3; s4; and 2 more"), "{d}");
        assert!(d.contains("2 malformed: line 3: bad"), "{d}");
    }
}

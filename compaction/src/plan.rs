//! Policy: which jobs the current block set calls for. Pure functions of a snapshot, the
//! newest sample time and the options, so they are tested without threads or disks.

use chronolith_engine::block::{rollup::bucket_end, Block};
use chronolith_engine::blockset::BlockSet;
use chronolith_engine::{CompactionOptions, Engine, Registry, SeriesId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One unit of work.
#[derive(Clone, Debug)]
pub enum Job {
    /// Merge these raw blocks (one aligned range of a level) into one block of `level`.
    Merge { level: u32, range: (i64, i64), parents: Vec<Arc<Block>> },
    /// Build the rollup block of `resolution_ms` covering `(from, to]`, from raw blocks or
    /// (when it covers the span) the finer tier.
    Downsample { resolution_ms: i64, from: i64, to: i64, source: Source },
    /// Remove these blocks from the set (expired by age or over the size budget).
    Drop { blocks: Vec<Arc<Block>>, reason: DropReason },
    /// Rewrite `block` without the series in `series` (their selector's retention has
    /// passed), or drop it if they are all it holds.
    Purge { block: Arc<Block>, series: Vec<SeriesId> },
}

impl Job {
    /// The tier a downsampling job builds.
    pub fn resolution_ms(&self) -> Option<i64> {
        match self {
            Job::Downsample { resolution_ms, .. } => Some(*resolution_ms),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Raw,
    Rollup { resolution_ms: i64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    Age,
    Size,
}

/// The newest sample time the engine holds (head or any block), or `None` when empty.
pub fn newest_sample(engine: &Engine) -> Option<i64> {
    let blocks = engine.blocks().snapshot();
    let block_max = blocks.iter().filter(|b| b.meta().samples > 0).map(|b| b.meta().max_t).max();
    block_max.max(engine.head().max_t())
}

/// The time a block's data ends, for ages: the last raw sample, or for a rollup the end
/// of the span it covers (so an empty rollup block ages like its span).
pub fn data_end(b: &Block) -> i64 {
    if b.is_rollup() {
        b.meta().covers_to
    } else {
        b.meta().max_t
    }
}

/// Merges: raw blocks of lower levels inside one aligned range of a level that is closed
/// (everything before `sealed_until` is sealed), two or more per range. Levels are
/// planned highest first and a block goes to the highest level whose range is closed, so
/// a sealed partition is rewritten once, not once per level; no two jobs share a parent.
pub fn merges(set: &BlockSet, opts: &CompactionOptions, sealed_until: i64) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut taken: std::collections::HashSet<u64> = std::collections::HashSet::new();
    for (i, &range) in opts.merge_ranges_ms.iter().enumerate().rev() {
        let level = i as u32 + 1;
        let mut groups: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
        for b in set.raw() {
            let m = b.meta();
            if m.samples == 0 || m.level > level || taken.contains(&m.seq) {
                continue;
            }
            let w = m.min_t.div_euclid(range);
            if m.max_t.div_euclid(range) != w {
                continue;
            }
            groups.entry(w).or_default().push(b.clone());
        }
        for (w, mut parents) in groups {
            let end = (w + 1).saturating_mul(range);
            if end > sealed_until || parents.len() < 2 {
                continue;
            }
            parents.sort_by_key(|b| b.meta().min_t);
            taken.extend(parents.iter().map(|b| b.meta().seq));
            jobs.push(Job::Merge { level, range: (w * range, end), parents });
        }
    }
    jobs
}

/// Spans `(k·span, (k+1)·span]` of a tier that hold data in `[min_t, max_t]`.
fn spans_of(min_t: i64, max_t: i64, span: i64) -> impl Iterator<Item = i64> {
    let first = bucket_end(min_t, span) / span - 1;
    let last = bucket_end(max_t, span) / span - 1;
    first..=last
}

/// Whether `(from, to]` is covered by the union of these covers.
fn covered(covers: &[(i64, i64)], from: i64, to: i64) -> bool {
    let mut sorted: Vec<(i64, i64)> = covers.iter().copied().filter(|(f, t)| *t > from && *f < to).collect();
    sorted.sort_unstable();
    let mut reached = from;
    for (f, t) in sorted {
        if f > reached {
            return false;
        }
        reached = reached.max(t);
    }
    reached >= to
}

/// Downsampling: per tier, the spans that are old enough, sealed, hold data, and have no
/// rollup block yet. At most `max_jobs` in total, oldest first.
pub fn downsamples(
    set: &BlockSet,
    opts: &CompactionOptions,
    newest: i64,
    sealed_until: i64,
    max_jobs: usize,
) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut finer: Option<i64> = None;
    for tier in &opts.tiers {
        let (res, span) = (tier.resolution_ms, tier.span_ms);
        let ready_until = newest.saturating_sub(tier.after_ms);
        let have: Vec<(i64, i64)> = set.rollups(res).map(|b| (b.meta().covers_from, b.meta().covers_to)).collect();
        let finer_covers: Vec<(i64, i64)> = finer
            .map(|f| set.rollups(f).map(|b| (b.meta().covers_from, b.meta().covers_to)).collect())
            .unwrap_or_default();
        let mut spans: Vec<i64> = Vec::new();
        for b in set.raw().chain(finer.into_iter().flat_map(|f| set.rollups(f))) {
            let m = b.meta();
            if m.samples > 0 {
                spans.extend(spans_of(m.min_t, m.max_t, span));
            }
        }
        spans.sort_unstable();
        spans.dedup();
        for k in spans {
            let (from, to) = (k.saturating_mul(span), (k + 1).saturating_mul(span));
            if to > ready_until || to >= sealed_until || covered(&have, from, to) {
                continue;
            }
            let source = match finer {
                Some(f) if covered(&finer_covers, from, to) => Source::Rollup { resolution_ms: f },
                _ => Source::Raw,
            };
            jobs.push(Job::Downsample { resolution_ms: res, from, to, source });
            if jobs.len() >= max_jobs {
                return jobs;
            }
        }
        finer = Some(res);
    }
    jobs
}

/// Retention: blocks past their resolution's age, then (if a size budget is set) the
/// oldest blocks until the rest fits. One job per reason, so each is one atomic swap.
pub fn retention(set: &BlockSet, opts: &CompactionOptions, newest: i64) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut expired: Vec<Arc<Block>> = Vec::new();
    for b in set.iter() {
        let keep = opts.retention.keep_ms(b.meta().resolution_ms as i64);
        if let Some(keep) = keep {
            if data_end(b) < newest.saturating_sub(keep) {
                expired.push(b.clone());
            }
        }
    }
    if let Some(max) = opts.retention_bytes_max {
        let mut rest: Vec<&Arc<Block>> =
            set.iter().filter(|b| !expired.iter().any(|e| e.meta().seq == b.meta().seq)).collect();
        let mut total: u64 = rest.iter().map(|b| b.disk_bytes()).sum();
        rest.sort_by_key(|b| (data_end(b), b.meta().resolution_ms));
        let mut over = Vec::new();
        for b in rest {
            if total <= max {
                break;
            }
            total -= b.disk_bytes();
            over.push(b.clone());
        }
        if !over.is_empty() {
            jobs.push(Job::Drop { blocks: over, reason: DropReason::Size });
        }
    }
    if !expired.is_empty() {
        jobs.insert(0, Job::Drop { blocks: expired, reason: DropReason::Age });
    }
    jobs
}

/// Retention by selector: for each block (not in `dropping`) whose data ends before a
/// selector's age, the series it holds that the selector matches, one job per block.
pub fn purges(
    set: &BlockSet,
    opts: &CompactionOptions,
    newest: i64,
    registry: &Registry,
    dropping: &[Job],
) -> Vec<Job> {
    let rules = &opts.retention.selectors;
    if rules.is_empty() {
        return Vec::new();
    }
    let doomed: std::collections::HashSet<u64> = dropping
        .iter()
        .flat_map(|j| match j {
            Job::Drop { blocks, .. } => blocks.iter().map(|b| b.meta().seq).collect(),
            _ => Vec::new(),
        })
        .collect();
    // Matching ids per rule, once (the registry's inverted index), sorted for lookups.
    let matching: Vec<(i64, Vec<SeriesId>)> = rules
        .iter()
        .map(|r| {
            let mut ids = registry.select(&r.matchers);
            ids.sort_unstable();
            (newest.saturating_sub(r.keep_ms), ids)
        })
        .collect();
    let mut jobs = Vec::new();
    for b in set.iter().filter(|b| !doomed.contains(&b.meta().seq)) {
        let end = data_end(b);
        let mut series: Vec<SeriesId> = b
            .series_ids()
            .filter(|id| matching.iter().any(|(cutoff, ids)| end < *cutoff && ids.binary_search(id).is_ok()))
            .collect();
        if !series.is_empty() {
            series.sort_unstable();
            jobs.push(Job::Purge { block: b.clone(), series });
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covered_needs_the_whole_span() {
        assert!(covered(&[(0, 10), (10, 20)], 0, 20));
        assert!(!covered(&[(0, 10), (12, 20)], 0, 20));
        assert!(!covered(&[], 0, 20));
        assert!(covered(&[(-10, 30)], 0, 20));
    }

    #[test]
    fn spans_are_left_open() {
        assert_eq!(spans_of(1, 10, 10).collect::<Vec<_>>(), vec![0]);
        assert_eq!(spans_of(10, 11, 10).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(spans_of(0, 0, 10).collect::<Vec<_>>(), vec![-1]);
    }
}

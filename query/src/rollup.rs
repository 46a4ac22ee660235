//! Rollup-backed evaluation. [`TierPlanner`] picks the coarsest rollup tier whose
//! resolution divides the step, the window and the start (so every window `(t - range, t]`
//! is a whole run of buckets) and whose blocks cover part of the range; evaluation reads
//! that tier's buckets where it covers and buckets raw samples at the same resolution
//! where it does not (recent data, or a span not yet downsampled). The answer equals the
//! raw one: count, min, max, first and last exactly; sum, avg, rate and increase add the
//! same terms, grouped per bucket (bit-exact when sums are exact, as for integers).

use crate::error::Result;
use crate::eval::{drop_metric_name, StepSeries};
use crate::plan::{Selection, SeriesFn, Source, SourcePlanner, TimeRange};
use crate::window::WindowFn;
use chronolith_engine::block::rollup::{BucketBuilder, Buckets, Column, ColumnSet};
use chronolith_engine::blockset::BlockSet;
use chronolith_engine::{Engine, Sample, SeriesId};
use rayon::prelude::*;
use std::sync::Arc;

/// Chooses a rollup tier per selection from the tiers present when it was made.
#[derive(Clone, Debug, Default)]
pub struct TierPlanner {
    /// `(resolution_ms, covered (from, to] spans)`, coarsest first.
    tiers: Vec<(i64, Vec<(i64, i64)>)>,
}

impl TierPlanner {
    pub fn new(engine: &Engine) -> Self {
        let set = engine.blocks().snapshot();
        let mut tiers: Vec<(i64, Vec<(i64, i64)>)> = set
            .rollup_resolutions()
            .into_iter()
            .map(|r| (r, set.rollups(r).map(|b| (b.meta().covers_from, b.meta().covers_to)).collect()))
            .collect();
        tiers.reverse();
        Self { tiers }
    }
}

/// The functions a bucket run answers exactly.
pub fn rollup_computable(f: &WindowFn) -> bool {
    matches!(
        f,
        WindowFn::Min
            | WindowFn::Max
            | WindowFn::Sum
            | WindowFn::Count
            | WindowFn::Avg
            | WindowFn::First
            | WindowFn::Last
            | WindowFn::Rate
            | WindowFn::Increase
    )
}

impl SourcePlanner for TierPlanner {
    fn source_for(&self, sel: &Selection, range: &TimeRange) -> Source {
        let SeriesFn::Window { func, range_ms } = sel.func else { return Source::Raw };
        if !rollup_computable(&func) || range_ms <= 0 {
            return Source::Raw;
        }
        let (from, to) = (range.start.saturating_sub(range_ms), range.end);
        for (res, covers) in &self.tiers {
            let aligned = range.step % res == 0 && range_ms % res == 0 && range.start.rem_euclid(*res) == 0;
            if aligned && covers.iter().any(|(f, t)| *t > from && *f < to) {
                return Source::Rollup { resolution_ms: *res };
            }
        }
        Source::Raw
    }
}

fn columns_for(f: WindowFn) -> ColumnSet {
    match f {
        WindowFn::Min => ColumnSet::of(&[Column::Min]),
        WindowFn::Max => ColumnSet::of(&[Column::Max]),
        WindowFn::Sum => ColumnSet::of(&[Column::Sum]),
        WindowFn::Count => ColumnSet::of(&[Column::Count]),
        WindowFn::Avg => ColumnSet::of(&[Column::Sum, Column::Count]),
        WindowFn::First => ColumnSet::of(&[Column::FirstValue]),
        WindowFn::Last => ColumnSet::of(&[Column::LastValue]),
        _ => ColumnSet::of(&[
            Column::Count,
            Column::FirstValue,
            Column::LastValue,
            Column::Resets,
            Column::FirstOffset,
            Column::LastOffset,
        ]),
    }
}

/// Copies buckets `[from, to)` of `src` (all columns) into `dst`, keeping only `want`.
fn copy_columns(src: &Buckets, from: usize, to: usize, want: ColumnSet, dst: &mut Buckets) {
    dst.end_t.extend_from_slice(&src.end_t[from..to]);
    let pairs: [(Column, &Vec<f64>, &mut Vec<f64>); 7] = [
        (Column::Count, &src.count, &mut dst.count),
        (Column::Sum, &src.sum, &mut dst.sum),
        (Column::Min, &src.min, &mut dst.min),
        (Column::Max, &src.max, &mut dst.max),
        (Column::FirstValue, &src.first_v, &mut dst.first_v),
        (Column::LastValue, &src.last_v, &mut dst.last_v),
        (Column::Resets, &src.resets, &mut dst.resets),
    ];
    for (c, s, d) in pairs {
        if want.has(c) {
            d.extend_from_slice(&s[from..to]);
        }
    }
    if want.has(Column::FirstOffset) {
        dst.first_t.extend_from_slice(&src.first_t[from..to]);
    }
    if want.has(Column::LastOffset) {
        dst.last_t.extend_from_slice(&src.last_t[from..to]);
    }
}

/// Per-worker buffers.
#[derive(Debug)]
struct Scratch {
    buckets: Buckets,
    builder: BucketBuilder,
    samples: Vec<Sample>,
    ts: Vec<i64>,
    vs: Vec<f64>,
}

/// Evaluates a window selection from the tier of `resolution_ms` for these series;
/// returns the step series and the number of buckets read.
pub(crate) fn select(
    engine: &Engine,
    sel: &Selection,
    range: &TimeRange,
    steps: usize,
    resolution_ms: i64,
    ids: &[SeriesId],
) -> Result<(Vec<StepSeries>, u64)> {
    let SeriesFn::Window { func, range_ms } = sel.func else { return Ok((Vec::new(), 0)) };
    let set = engine.blocks().snapshot();
    let want = columns_for(func);
    let read_from = range.start - range_ms;
    let read_to = range.start + (steps as i64 - 1) * range.step;
    let per_series: Vec<Option<(StepSeries, u64)>> = ids
        .par_iter()
        .map_init(
            || Scratch {
                buckets: Buckets::default(),
                builder: BucketBuilder::new(resolution_ms),
                samples: Vec::new(),
                ts: Vec::new(),
                vs: Vec::new(),
            },
            |sc, id| -> Result<Option<(StepSeries, u64)>> {
                gather(engine, &set, *id, resolution_ms, read_from, read_to, want, sc)?;
                let values = steps_of(&sc.buckets, func, range, steps, range_ms);
                if values.iter().all(Option::is_none) {
                    return Ok(None);
                }
                let Some(labels) = engine.registry().labels(*id) else { return Ok(None) };
                let labels = if func.keeps_metric_name() { (*labels).clone() } else { drop_metric_name(&labels)? };
                Ok(Some((StepSeries { labels, values }, sc.buckets.len() as u64)))
            },
        )
        .collect::<Result<_>>()?;
    let mut scanned = 0;
    let series = per_series
        .into_iter()
        .flatten()
        .map(|(s, n)| {
            scanned += n;
            s
        })
        .collect();
    Ok((series, scanned))
}

/// Fills `sc.buckets` with the buckets of `id` ending in `(from, to]`: from the tier's
/// blocks where they cover, from raw samples bucketed here elsewhere.
#[allow(clippy::too_many_arguments)]
fn gather(
    engine: &Engine,
    set: &Arc<BlockSet>,
    id: SeriesId,
    res: i64,
    from: i64,
    to: i64,
    want: ColumnSet,
    sc: &mut Scratch,
) -> Result<()> {
    sc.buckets.clear();
    let mut blocks: Vec<_> =
        set.rollups(res).filter(|b| b.meta().covers_to > from && b.meta().covers_from < to).collect();
    blocks.sort_by_key(|b| b.meta().covers_from);
    let mut cursor = from;
    for b in blocks {
        let (cf, ct) = (b.meta().covers_from.max(cursor), b.meta().covers_to.min(to));
        if ct <= cursor {
            continue;
        }
        if cf > cursor {
            raw_buckets(engine, id, cursor, cf, want, sc)?;
        }
        for c in b.chunks_of(id).iter().filter(|c| c.max_t > cf && c.min_t <= ct) {
            let mark = sc.buckets.len();
            b.decode_rollup_chunk(c, want, &mut sc.buckets)?;
            trim_tail(&mut sc.buckets, mark, cf, ct);
        }
        cursor = ct;
    }
    if cursor < to {
        raw_buckets(engine, id, cursor, to, want, sc)?;
    }
    Ok(())
}

/// Drops the buckets from `mark` on whose end is outside `(lo, hi]`.
fn trim_tail(b: &mut Buckets, mark: usize, lo: i64, hi: i64) {
    let ends = &b.end_t[mark..];
    let skip = ends.partition_point(|t| *t <= lo);
    let keep = ends.partition_point(|t| *t <= hi);
    if skip == 0 && keep == ends.len() {
        return;
    }
    let cut = |v: &mut Vec<f64>| {
        if v.len() > mark {
            v.truncate(mark + keep);
            v.drain(mark..mark + skip);
        }
    };
    for v in [&mut b.count, &mut b.sum, &mut b.min, &mut b.max, &mut b.first_v, &mut b.last_v, &mut b.resets] {
        cut(v);
    }
    for v in [&mut b.end_t, &mut b.first_t, &mut b.last_t] {
        if v.len() > mark {
            v.truncate(mark + keep);
            v.drain(mark..mark + skip);
        }
    }
}

/// Buckets the raw samples with `lo < t <= hi` and appends them.
fn raw_buckets(engine: &Engine, id: SeriesId, lo: i64, hi: i64, want: ColumnSet, sc: &mut Scratch) -> Result<()> {
    sc.samples.clear();
    engine.read_series(id, lo.saturating_add(1), hi, &mut sc.samples)?;
    if sc.samples.is_empty() {
        return Ok(());
    }
    sc.ts.clear();
    sc.vs.clear();
    sc.ts.extend(sc.samples.iter().map(|s| s.t));
    sc.vs.extend(sc.samples.iter().map(|s| s.v));
    sc.builder.reset();
    sc.builder.push_samples(&sc.ts, &sc.vs);
    let built = sc.builder.finish();
    copy_columns(built, 0, built.len(), want, &mut sc.buckets);
    Ok(())
}

/// One value per step from the bucket runs `(t - range, t]`.
fn steps_of(b: &Buckets, func: WindowFn, range: &TimeRange, steps: usize, range_ms: i64) -> Vec<Option<f64>> {
    let mut out = Vec::with_capacity(steps);
    let (mut lo, mut hi) = (0usize, 0usize);
    for i in 0..steps {
        let t = range.start + i as i64 * range.step;
        while hi < b.len() && b.end_t[hi] <= t {
            hi += 1;
        }
        while lo < hi && b.end_t[lo] <= t - range_ms {
            lo += 1;
        }
        out.push(if lo < hi { window_value(b, lo, hi, func, t, range_ms) } else { None });
    }
    out
}

fn fold_min(m: f64, v: f64) -> f64 {
    if v < m || m.is_nan() {
        v
    } else {
        m
    }
}

fn fold_max(m: f64, v: f64) -> f64 {
    if v > m || m.is_nan() {
        v
    } else {
        m
    }
}

fn window_value(b: &Buckets, lo: usize, hi: usize, func: WindowFn, t: i64, range_ms: i64) -> Option<f64> {
    let v = match func {
        WindowFn::Min => b.min[lo..hi].iter().fold(f64::NAN, |m, v| fold_min(m, *v)),
        WindowFn::Max => b.max[lo..hi].iter().fold(f64::NAN, |m, v| fold_max(m, *v)),
        WindowFn::Sum => crate::window::kahan_sum(b.sum[lo..hi].iter().copied()),
        WindowFn::Count => b.count[lo..hi].iter().sum(),
        WindowFn::Avg => crate::window::kahan_sum(b.sum[lo..hi].iter().copied()) / b.count[lo..hi].iter().sum::<f64>(),
        WindowFn::First => b.first_v[lo],
        WindowFn::Last => b.last_v[hi - 1],
        WindowFn::Rate | WindowFn::Increase => {
            let count: f64 = b.count[lo..hi].iter().sum();
            if count < 2.0 {
                return None;
            }
            let mut result = b.last_v[hi - 1] - b.first_v[lo];
            for j in lo..hi {
                if j > lo && b.first_v[j] < b.last_v[j - 1] {
                    result += b.last_v[j - 1];
                }
                if b.resets[j] != 0.0 {
                    result += b.resets[j];
                }
            }
            let first = Sample::new(b.first_t[lo], b.first_v[lo]);
            let last = Sample::new(b.last_t[hi - 1], b.last_v[hi - 1]);
            extrapolate(result, first, last, count, t, range_ms, matches!(func, WindowFn::Rate))
        }
        _ => return None,
    };
    Some(v)
}

/// Prometheus's `extrapolatedRate` for a counter, from the run's first and last sample,
/// sample count and reset-corrected difference (the same arithmetic as the raw path in
/// `window.rs`, which takes these from the samples themselves).
fn extrapolate(result: f64, first: Sample, last: Sample, count: f64, t: i64, range_ms: i64, is_rate: bool) -> f64 {
    let range_start = t - range_ms;
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (t - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_interval = sampled / (count - 1.0);
    let threshold = avg_interval * 1.1;
    if to_start >= threshold {
        to_start = avg_interval / 2.0;
    }
    if result > 0.0 && first.v >= 0.0 {
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_interval / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    result * factor
}

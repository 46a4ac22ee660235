//! Evaluation: selections are read and reduced to step values series by series, in
//! parallel (rayon, one task per series, a reused sample buffer per worker); the
//! aggregation and arithmetic above them work on those step values.

use crate::aggregate::aggregate;
use crate::error::{Error, Limit, Result};
use crate::limits::Limits;
use crate::plan::{Plan, RawOnly, Selection, SeriesFn, Source, SourcePlanner, TimeRange};
use crate::read::Scratch;
use crate::stepper::Stepper;
use chronolith_engine::{Engine, Labels, SeriesId};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// One output series: its labels and `(timestamp ms, value)` points in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesResult {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// What a query cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    pub series_touched: u64,
    pub samples_scanned: u64,
    pub points_returned: u64,
}

#[derive(Clone, Debug)]
pub struct QueryResult {
    /// Sorted by labels.
    pub series: Vec<SeriesResult>,
    pub stats: QueryStats,
}

/// A series reduced to one optional value per step of the query's time grid.
#[derive(Clone, Debug)]
pub(crate) struct StepSeries {
    pub labels: Labels,
    pub values: Vec<Option<f64>>,
}

/// Evaluates `plan` over `range` against the engine's current data, raw data only.
pub fn evaluate(engine: &Engine, plan: &Plan, range: TimeRange, limits: &Limits) -> Result<QueryResult> {
    evaluate_with(engine, plan, range, limits, &RawOnly)
}

/// Like [`evaluate`] with a chosen [`SourcePlanner`].
pub fn evaluate_with(
    engine: &Engine,
    plan: &Plan,
    range: TimeRange,
    limits: &Limits,
    planner: &dyn SourcePlanner,
) -> Result<QueryResult> {
    let steps = step_count(&range)?;
    if steps > limits.steps_max {
        return Err(Error::LimitExceeded { limit: Limit::Steps, max: limits.steps_max, seen: steps });
    }
    let ctx = Context {
        engine,
        limits,
        planner,
        range,
        steps: steps as usize,
        started: Instant::now(),
        series_touched: AtomicU64::new(0),
        samples_scanned: AtomicU64::new(0),
    };
    let out = ctx.eval(plan)?;
    let series = into_results(out, &range)?;
    let points: u64 = series.iter().map(|s| s.points.len() as u64).sum();
    if points > limits.points_returned_max {
        return Err(Error::LimitExceeded {
            limit: Limit::PointsReturned,
            max: limits.points_returned_max,
            seen: points,
        });
    }
    let stats = QueryStats {
        series_touched: ctx.series_touched.load(Relaxed),
        samples_scanned: ctx.samples_scanned.load(Relaxed),
        points_returned: points,
    };
    Ok(QueryResult { series, stats })
}

fn step_count(r: &TimeRange) -> Result<u64> {
    if r.step <= 0 {
        return Err(Error::InvalidQuery(format!("step must be positive, got {} ms", r.step)));
    }
    if r.end < r.start {
        return Err(Error::InvalidQuery(format!("end {} is before start {}", r.end, r.start)));
    }
    let span = i128::from(r.end) - i128::from(r.start);
    Ok(u64::try_from(span / i128::from(r.step) + 1).unwrap_or(u64::MAX))
}

struct Context<'a> {
    engine: &'a Engine,
    limits: &'a Limits,
    planner: &'a dyn SourcePlanner,
    range: TimeRange,
    steps: usize,
    started: Instant,
    series_touched: AtomicU64,
    samples_scanned: AtomicU64,
}

impl Context<'_> {
    fn eval(&self, plan: &Plan) -> Result<Vec<StepSeries>> {
        match plan {
            Plan::Select(sel) => self.select(sel),
            Plan::Aggregate { agg, input } => aggregate(agg, self.eval(input)?, self.steps),
            Plan::Arith { op, scalar, scalar_left, input } => {
                let mut series = self.eval(input)?;
                for s in &mut series {
                    s.labels = drop_metric_name(&s.labels)?;
                    for v in s.values.iter_mut().flatten() {
                        *v = if *scalar_left { op.apply(*scalar, *v) } else { op.apply(*v, *scalar) };
                    }
                }
                Ok(series)
            }
            Plan::VectorArith { op, matching, lhs, rhs } => {
                let (l, r) = (self.eval(lhs)?, self.eval(rhs)?);
                crate::binary::vector_arith(*op, matching, l, r, self.steps)
            }
            Plan::Set { op, matching, lhs, rhs } => {
                let (l, r) = (self.eval(lhs)?, self.eval(rhs)?);
                Ok(crate::binary::set_op(*op, matching, l, r, self.steps))
            }
            Plan::LabelReplace { replace, input } => crate::binary::label_replace(replace, self.eval(input)?),
        }
    }

    fn select(&self, sel: &Selection) -> Result<Vec<StepSeries>> {
        let source = self.planner.source_for(sel, &self.range);
        let span_ms = match sel.func {
            SeriesFn::Window { range_ms, .. } => range_ms,
            SeriesFn::Instant { lookback_ms } => lookback_ms,
        };
        if span_ms <= 0 {
            return Err(Error::InvalidQuery(format!("window must be positive, got {span_ms} ms")));
        }
        let ids = self.engine.registry().select(&sel.matchers);
        let touched = self.series_touched.fetch_add(ids.len() as u64, Relaxed) + ids.len() as u64;
        if touched > self.limits.series_touched_max {
            return Err(Error::LimitExceeded {
                limit: Limit::SeriesTouched,
                max: self.limits.series_touched_max,
                seen: touched,
            });
        }
        if let Source::Rollup { resolution_ms } = source {
            let (series, buckets) =
                crate::rollup::select(self.engine, sel, &self.range, self.steps, resolution_ms, &ids)?;
            self.samples_scanned.fetch_add(buckets, Relaxed);
            return Ok(series);
        }
        // Left-open windows: the oldest sample that can matter is just after start - span.
        let read_from = self.range.start.saturating_sub(span_ms).saturating_add(1);
        let per_series: Vec<Option<StepSeries>> = ids
            .par_iter()
            .map_init(Scratch::default, |scratch, id| self.select_one(sel, *id, read_from, scratch))
            .collect::<Result<_>>()?;
        Ok(per_series.into_iter().flatten().collect())
    }

    fn select_one(
        &self,
        sel: &Selection,
        id: SeriesId,
        read_from: i64,
        scratch: &mut Scratch,
    ) -> Result<Option<StepSeries>> {
        self.check_deadline()?;
        let mut stepper = Stepper::new(&self.range, &sel.func, self.steps, std::mem::take(&mut scratch.window));
        let read = scratch.stream(self.engine, id, read_from, self.range.end, &mut stepper);
        let (values, window) = stepper.finish();
        scratch.window = window;
        let samples = read?;
        let scanned = self.samples_scanned.fetch_add(samples, Relaxed) + samples;
        if scanned > self.limits.samples_scanned_max {
            return Err(Error::LimitExceeded {
                limit: Limit::SamplesScanned,
                max: self.limits.samples_scanned_max,
                seen: scanned,
            });
        }
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let Some(labels) = self.engine.registry().labels(id) else { return Ok(None) };
        let keeps_name = match sel.func {
            SeriesFn::Window { func, .. } => func.keeps_metric_name(),
            SeriesFn::Instant { .. } => true,
        };
        let labels = if keeps_name { (*labels).clone() } else { drop_metric_name(&labels)? };
        Ok(Some(StepSeries { labels, values }))
    }

    fn check_deadline(&self) -> Result<()> {
        if let Some(d) = self.limits.deadline {
            let elapsed = self.started.elapsed();
            if elapsed > d {
                return Err(Error::DeadlineExceeded {
                    deadline_ms: d.as_millis() as u64,
                    over_ms: (elapsed - d).as_millis() as u64,
                });
            }
        }
        Ok(())
    }
}

pub(crate) fn drop_metric_name(labels: &Labels) -> Result<Labels> {
    Ok(labels.without(crate::METRIC_NAME))
}

/// Step values to points, merging series whose labels became equal (dropping
/// `__name__` can do that) as long as they never both have a value at one step.
fn into_results(mut series: Vec<StepSeries>, range: &TimeRange) -> Result<Vec<SeriesResult>> {
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut merged: Vec<StepSeries> = Vec::with_capacity(series.len());
    for s in series {
        match merged.last_mut() {
            Some(prev) if prev.labels == s.labels => {
                for (slot, v) in prev.values.iter_mut().zip(s.values) {
                    match (slot.is_some(), v) {
                        (true, Some(_)) => return Err(Error::DuplicateLabelSet(s.labels.to_string())),
                        (false, Some(v)) => *slot = Some(v),
                        _ => {}
                    }
                }
            }
            _ => merged.push(s),
        }
    }
    Ok(merged
        .into_iter()
        .map(|s| SeriesResult {
            labels: s.labels,
            points: s
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (range.start + i as i64 * range.step, v)))
                .collect(),
        })
        .collect())
}

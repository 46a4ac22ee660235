//! Turns one series' samples, pushed in time order, into one optional value per step,
//! keeping only the samples a step still to come can need: memory per series is bounded
//! by what one window (plus one step's gap) holds, not by the query range.

use crate::plan::{SeriesFn, TimeRange};
use crate::STALE_NAN_BITS;
use chronolith_engine::Sample;

/// Compact the buffer once this many dead samples sit at its front.
const COMPACT_AFTER: usize = 4096;

pub(crate) struct Stepper<'a> {
    range: &'a TimeRange,
    func: &'a SeriesFn,
    steps: usize,
    /// Live samples are `buf[front..]`, all at or before the next step's time.
    buf: Vec<Sample>,
    front: usize,
    pub values: Vec<Option<f64>>,
}

impl<'a> Stepper<'a> {
    pub fn new(range: &'a TimeRange, func: &'a SeriesFn, steps: usize, mut buf: Vec<Sample>) -> Self {
        buf.clear();
        Self { range, func, steps, buf, front: 0, values: Vec::with_capacity(steps) }
    }

    fn step_time(&self, i: usize) -> i64 {
        self.range.start + i as i64 * self.range.step
    }

    /// Accepts the next sample (strictly after the previous one).
    pub fn push(&mut self, s: Sample) {
        // Every step before this sample's time has seen all of its samples.
        while self.values.len() < self.steps && self.step_time(self.values.len()) < s.t {
            self.eval_next();
        }
        if self.values.len() == self.steps {
            return;
        }
        // Prometheus removes stale markers from range selections; an instant selector
        // needs them, since a marker ends the series.
        if matches!(self.func, SeriesFn::Window { .. }) && s.v.to_bits() == STALE_NAN_BITS {
            return;
        }
        self.buf.push(s);
    }

    /// Accepts a run of samples in columns (ascending, after every earlier sample): the
    /// samples up to each step's time are copied in one go, so the per-sample cost is a
    /// copy rather than a step check.
    pub fn push_columns(&mut self, ts: &[i64], vs: &[f64]) {
        let skip_stale = matches!(self.func, SeriesFn::Window { .. });
        let n = ts.len().min(vs.len());
        let (ts, vs) = (&ts[..n], &vs[..n]);
        let mut i = 0;
        while i < ts.len() && self.values.len() < self.steps {
            let step_t = self.step_time(self.values.len());
            let j = i + ts[i..].partition_point(|t| *t <= step_t);
            let run = ts[i..j].iter().zip(&vs[i..j]).map(|(t, v)| Sample::new(*t, *v));
            if skip_stale {
                self.buf.extend(run.filter(|s| s.v.to_bits() != STALE_NAN_BITS));
            } else {
                self.buf.extend(run);
            }
            i = j;
            if i < ts.len() {
                // A sample after this step's time exists: the step has all its samples.
                self.eval_next();
            }
        }
    }

    /// Evaluates the remaining steps; returns the step values and the buffer for reuse.
    pub fn finish(mut self) -> (Vec<Option<f64>>, Vec<Sample>) {
        while self.values.len() < self.steps {
            self.eval_next();
        }
        (self.values, self.buf)
    }

    fn eval_next(&mut self) {
        let t = self.step_time(self.values.len());
        let span = match self.func {
            SeriesFn::Window { range_ms, .. } => *range_ms,
            SeriesFn::Instant { lookback_ms } => *lookback_ms,
        };
        // Left-open window (t - span, t]: a sample on the left edge is out, and no later
        // step (larger t) can need it again.
        let left = t.saturating_sub(span);
        while self.front < self.buf.len() && self.buf[self.front].t <= left {
            self.front += 1;
        }
        let window = &self.buf[self.front..];
        let value = match self.func {
            _ if window.is_empty() => None,
            SeriesFn::Window { func, range_ms } => func.apply(window, t, *range_ms),
            SeriesFn::Instant { .. } => window.last().filter(|s| s.v.to_bits() != STALE_NAN_BITS).map(|s| s.v),
        };
        self.values.push(value);
        if self.front >= COMPACT_AFTER && self.front * 2 >= self.buf.len() {
            self.buf.drain(..self.front);
            self.front = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowFn;

    /// Pushing one sample at a time and pushing columns split at arbitrary points give
    /// the same step values (chunk boundaries must not matter).
    #[test]
    fn column_runs_and_single_samples_agree() {
        let samples: Vec<Sample> = (0..500)
            .map(|i| {
                let v = if i % 37 == 0 { f64::from_bits(STALE_NAN_BITS) } else { ((i * 7919) % 101) as f64 };
                Sample::new(i * 1_000 + (i * 31) % 700, v)
            })
            .collect();
        let funcs = [
            SeriesFn::Window { func: WindowFn::Sum, range_ms: 7_000 },
            SeriesFn::Window { func: WindowFn::Rate, range_ms: 60_000 },
            SeriesFn::Instant { lookback_ms: 5_000 },
        ];
        for func in &funcs {
            for (start, step) in [(-5_000, 3_000), (10_000, 250), (0, 100_000), (499_000, 1)] {
                let range = TimeRange { start, end: start + 200 * step, step };
                let mut one = Stepper::new(&range, func, 201, Vec::new());
                for s in &samples {
                    one.push(*s);
                }
                let (want, _) = one.finish();
                for split in [1usize, 7, 64, 499] {
                    let mut cols = Stepper::new(&range, func, 201, Vec::new());
                    for part in samples.chunks(split) {
                        let ts: Vec<i64> = part.iter().map(|s| s.t).collect();
                        let vs: Vec<f64> = part.iter().map(|s| s.v).collect();
                        cols.push_columns(&ts, &vs);
                    }
                    let (got, _) = cols.finish();
                    let same = got.len() == want.len()
                        && got.iter().zip(&want).all(|(a, b)| match (a, b) {
                            (Some(a), Some(b)) => a.to_bits() == b.to_bits(),
                            (None, None) => true,
                            _ => false,
                        });
                    assert!(same, "{func:?} start {start} step {step} split {split}");
                }
            }
        }
    }
}

//! Functions over one step's window of raw samples, with Prometheus 3 semantics: the
//! window at step `t` is left-open, `(t - range, t]`; stale markers are removed before
//! a function sees the window; an empty window gives no point.

use chronolith_engine::Sample;

/// The function applied to each step window of each series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WindowFn {
    Min,
    Max,
    Sum,
    Count,
    Avg,
    /// Oldest sample in the window (`first_over_time`).
    First,
    /// Newest sample in the window (`last_over_time`).
    Last,
    Stddev,
    Stdvar,
    /// `quantile_over_time(phi, ...)`.
    Quantile(f64),
    Changes,
    Resets,
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    /// Per-second slope of a least-squares line through the window.
    Deriv,
}

impl WindowFn {
    /// The PromQL name, also used for plan printing.
    pub fn name(&self) -> &'static str {
        match self {
            WindowFn::Min => "min_over_time",
            WindowFn::Max => "max_over_time",
            WindowFn::Sum => "sum_over_time",
            WindowFn::Count => "count_over_time",
            WindowFn::Avg => "avg_over_time",
            WindowFn::First => "first_over_time",
            WindowFn::Last => "last_over_time",
            WindowFn::Stddev => "stddev_over_time",
            WindowFn::Stdvar => "stdvar_over_time",
            WindowFn::Quantile(_) => "quantile_over_time",
            WindowFn::Changes => "changes",
            WindowFn::Resets => "resets",
            WindowFn::Rate => "rate",
            WindowFn::Increase => "increase",
            WindowFn::Delta => "delta",
            WindowFn::Irate => "irate",
            WindowFn::Idelta => "idelta",
            WindowFn::Deriv => "deriv",
        }
    }

    /// Prometheus keeps `__name__` only for functions that pick a sample unchanged.
    pub fn keeps_metric_name(&self) -> bool {
        matches!(self, WindowFn::First | WindowFn::Last)
    }

    /// Evaluates the function over `window` (samples in `(t - range_ms, t]`, ascending,
    /// no stale markers). `None` when the window has too few samples for the function.
    pub fn apply(&self, window: &[Sample], t: i64, range_ms: i64) -> Option<f64> {
        let first = window.first()?;
        let last = window.last()?;
        let v = match self {
            WindowFn::Min => window.iter().fold(f64::NAN, |m, s| if s.v < m || m.is_nan() { s.v } else { m }),
            WindowFn::Max => window.iter().fold(f64::NAN, |m, s| if s.v > m || m.is_nan() { s.v } else { m }),
            WindowFn::Sum => kahan_sum(window.iter().map(|s| s.v)),
            WindowFn::Count => window.len() as f64,
            WindowFn::Avg => kahan_sum(window.iter().map(|s| s.v)) / window.len() as f64,
            WindowFn::First => first.v,
            WindowFn::Last => last.v,
            WindowFn::Stddev => variance(window).sqrt(),
            WindowFn::Stdvar => variance(window),
            WindowFn::Quantile(phi) => {
                let mut vs: Vec<f64> = window.iter().map(|s| s.v).collect();
                quantile(*phi, &mut vs)
            }
            WindowFn::Changes => window.windows(2).filter(|p| changed(p[0].v, p[1].v)).count() as f64,
            WindowFn::Resets => window.windows(2).filter(|p| p[1].v < p[0].v).count() as f64,
            WindowFn::Rate => extrapolated_delta(window, t, range_ms, true, true)?,
            WindowFn::Increase => extrapolated_delta(window, t, range_ms, true, false)?,
            WindowFn::Delta => extrapolated_delta(window, t, range_ms, false, false)?,
            WindowFn::Irate => instant_delta(window, true)?,
            WindowFn::Idelta => instant_delta(window, false)?,
            WindowFn::Deriv => {
                if window.len() < 2 {
                    return None;
                }
                least_squares_slope(window)
            }
        };
        Some(v)
    }
}

fn changed(prev: f64, cur: f64) -> bool {
    cur != prev && !(cur.is_nan() && prev.is_nan())
}

/// Kahan–Babuška (Neumaier) summation, as Prometheus's `kahanSumInc`, so long windows of
/// large values do not lose the small ones.
pub(crate) fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for v in values {
        let t = sum + v;
        if t.is_infinite() {
            c = 0.0;
        } else if sum.abs() >= v.abs() {
            c += (sum - t) + v;
        } else {
            c += (v - t) + sum;
        }
        sum = t;
    }
    sum + c
}

/// Population variance by Welford's method (numerically stable in one pass).
fn variance(window: &[Sample]) -> f64 {
    let (mut n, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
    for s in window {
        n += 1.0;
        let delta = s.v - mean;
        mean += delta / n;
        m2 += delta * (s.v - mean);
    }
    m2 / n
}

/// Prometheus's quantile: linear interpolation between the closest ranks; `phi` outside
/// [0, 1] gives -Inf/+Inf, NaN `phi` gives NaN. NaN values sort first, as in Go.
pub(crate) fn quantile(phi: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = phi * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `rate`, `increase` and `delta`: Prometheus's `extrapolatedRate`. The difference
/// between the first and last sample (plus every counter reset's pre-reset value for
/// counters) is extrapolated to the window's edges when the first/last sample lies
/// within 1.1 average sample intervals of them, otherwise by half an interval; a
/// counter is never extrapolated below zero.
fn extrapolated_delta(w: &[Sample], t: i64, range_ms: i64, is_counter: bool, is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.v - first.v;
    if is_counter {
        for p in w.windows(2) {
            if p[1].v < p[0].v {
                result += p[0].v;
            }
        }
    }
    let range_start = t - range_ms;
    let mut to_start = (first.t - range_start) as f64 / 1000.0;
    let mut to_end = (t - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_interval = sampled / (w.len() - 1) as f64;
    let threshold = avg_interval * 1.1;
    if to_start >= threshold {
        to_start = avg_interval / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
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
    Some(result * factor)
}

/// `irate`/`idelta`: from the last two samples only.
fn instant_delta(w: &[Sample], is_rate: bool) -> Option<f64> {
    let [.., prev, last] = w else { return None };
    let mut v = if is_rate && last.v < prev.v { last.v } else { last.v - prev.v };
    let interval_ms = last.t - prev.t;
    if interval_ms == 0 {
        return None;
    }
    if is_rate {
        v /= interval_ms as f64 / 1000.0;
    }
    Some(v)
}

/// Prometheus's `linearRegression` slope with x in seconds relative to the first sample;
/// a constant series has slope 0 (NaN if the constant is infinite).
fn least_squares_slope(w: &[Sample]) -> f64 {
    let t0 = w[0].t;
    let y0 = w[0].v;
    if w.iter().all(|s| s.v == y0) {
        return if y0.is_infinite() { f64::NAN } else { 0.0 };
    }
    let n = w.len() as f64;
    let xs = || w.iter().map(|s| (s.t - t0) as f64 / 1000.0);
    let sum_x = kahan_sum(xs());
    let sum_y = kahan_sum(w.iter().map(|s| s.v));
    let sum_xy = kahan_sum(xs().zip(w).map(|(x, s)| x * s.v));
    let sum_x2 = kahan_sum(xs().map(|x| x * x));
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    cov_xy / var_x
}

//! A naive evaluator written for clarity, not speed: every step filters the raw samples
//! of every series afresh, and each function is computed straight from its definition.
//! It shares no code with the crate.

use chronolith_engine::{Labels, Sample};
use chronolith_query::{AggOp, Grouping, WindowFn, STALE_NAN_BITS};
use std::collections::BTreeMap;

pub type Points = Vec<(i64, f64)>;

pub enum RefSelect {
    Window(WindowFn, i64),
    Instant,
}

pub struct RefQuery {
    pub select: RefSelect,
    pub agg: Option<(AggOp, Grouping)>,
    /// `result * factor + offset`, when set.
    pub arith: Option<(f64, f64)>,
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

pub fn evaluate(series: &[(Labels, Vec<Sample>)], q: &RefQuery) -> BTreeMap<Labels, Points> {
    let mut steps = Vec::new();
    let mut t = q.start;
    while t <= q.end {
        steps.push(t);
        t += q.step;
    }
    // One value per step per series, before aggregation.
    let mut per_series: Vec<(Labels, Vec<Option<f64>>)> = Vec::new();
    for (labels, samples) in series {
        let values: Vec<Option<f64>> = steps
            .iter()
            .map(|&t| match q.select {
                RefSelect::Window(f, range) => {
                    let window: Vec<Sample> =
                        samples.iter().filter(|s| s.t > t - range && s.t <= t && !is_stale(s.v)).copied().collect();
                    if window.is_empty() {
                        None
                    } else {
                        window_fn(f, &window, t, range)
                    }
                }
                RefSelect::Instant => {
                    let newest = samples.iter().rfind(|s| s.t <= t);
                    match newest {
                        Some(s) if s.t > t - 300_000 && !is_stale(s.v) => Some(s.v),
                        _ => None,
                    }
                }
            })
            .collect();
        let keep_name = matches!(q.select, RefSelect::Instant | RefSelect::Window(WindowFn::First | WindowFn::Last, _));
        let labels = if keep_name { labels.clone() } else { without(labels, &[]) };
        per_series.push((labels, values));
    }
    let mut out: Vec<(Labels, Vec<Option<f64>>)> = match &q.agg {
        None => per_series,
        Some((op, grouping)) => aggregate(*op, grouping, per_series, steps.len()),
    };
    if let Some((factor, offset)) = q.arith {
        for (labels, values) in &mut out {
            *labels = without(labels, &[]);
            for v in values.iter_mut().flatten() {
                *v = *v * factor + offset;
            }
        }
    }
    let mut result = BTreeMap::new();
    for (labels, values) in out {
        let points: Points = steps.iter().zip(values).filter_map(|(t, v)| v.map(|v| (*t, v))).collect();
        if !points.is_empty() {
            result.insert(labels, points);
        }
    }
    result
}

fn without(labels: &Labels, names: &[String]) -> Labels {
    Labels::new(labels.iter().filter(|(n, _)| *n != "__name__" && !names.iter().any(|x| x == n))).expect("labels")
}

fn group_key(labels: &Labels, g: &Grouping) -> Labels {
    match g {
        Grouping::By(names) => Labels::new(names.iter().map(|n| (n.as_str(), labels.get(n)))).expect("labels"),
        Grouping::Without(names) => without(labels, names),
    }
}

#[expect(clippy::needless_range_loop, reason = "a step indexes every member")]
fn aggregate(
    op: AggOp,
    g: &Grouping,
    mut input: Vec<(Labels, Vec<Option<f64>>)>,
    steps: usize,
) -> Vec<(Labels, Vec<Option<f64>>)> {
    input.sort_by(|a, b| a.0.cmp(&b.0));
    let mut groups: BTreeMap<Labels, Vec<usize>> = BTreeMap::new();
    for (i, (labels, _)) in input.iter().enumerate() {
        groups.entry(group_key(labels, g)).or_default().push(i);
    }
    if let AggOp::Topk(k) | AggOp::Bottomk(k) = op {
        let top = matches!(op, AggOp::Topk(_));
        let k = if k >= 1.0 { k as usize } else { 0 };
        let mut chosen = vec![vec![None; steps]; input.len()];
        for members in groups.values() {
            for step in 0..steps {
                let mut present: Vec<(usize, f64)> =
                    members.iter().filter_map(|&m| input[m].1[step].map(|v| (m, v))).collect();
                // Best first; NaN never beats a number; ties in label order.
                present.sort_by(|a, b| {
                    let key = |v: f64| {
                        if v.is_nan() {
                            f64::NEG_INFINITY
                        } else if top {
                            v
                        } else {
                            -v
                        }
                    };
                    let (ka, kb) = (key(a.1), key(b.1));
                    let nan_order = a.1.is_nan().cmp(&b.1.is_nan());
                    nan_order.then(kb.partial_cmp(&ka).expect("no NaN keys")).then(a.0.cmp(&b.0))
                });
                for (m, v) in present.into_iter().take(k) {
                    chosen[m][step] = Some(v);
                }
            }
        }
        return input.into_iter().zip(chosen).map(|((l, _), v)| (l, v)).collect();
    }
    groups
        .into_iter()
        .map(|(key, members)| {
            let values = (0..steps)
                .map(|step| {
                    let vs: Vec<f64> = members.iter().filter_map(|&m| input[m].1[step]).collect();
                    if vs.is_empty() {
                        return None;
                    }
                    let n = vs.len() as f64;
                    Some(match op {
                        AggOp::Sum => vs.iter().sum(),
                        AggOp::Avg => vs.iter().sum::<f64>() / n,
                        AggOp::Count => n,
                        AggOp::Min => min_ignoring_nan(&vs),
                        AggOp::Max => max_ignoring_nan(&vs),
                        AggOp::Quantile(phi) => quantile(phi, vs),
                        AggOp::Topk(_) | AggOp::Bottomk(_) => unreachable!(),
                    })
                })
                .collect();
            (key, values)
        })
        .collect()
}

fn min_ignoring_nan(vs: &[f64]) -> f64 {
    vs.iter().copied().filter(|v| !v.is_nan()).reduce(f64::min).unwrap_or(f64::NAN)
}

fn max_ignoring_nan(vs: &[f64]) -> f64 {
    vs.iter().copied().filter(|v| !v.is_nan()).reduce(f64::max).unwrap_or(f64::NAN)
}

fn quantile(phi: f64, vs: Vec<f64>) -> f64 {
    if phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    // NaNs first (Go's sort order), then ascending.
    let mut sorted: Vec<f64> = vs.iter().copied().filter(|v| v.is_nan()).collect();
    let mut numbers: Vec<f64> = vs.iter().copied().filter(|v| !v.is_nan()).collect();
    numbers.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    sorted.extend(numbers);
    let rank = phi * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let w = rank - rank.floor();
    sorted[lo] * (1.0 - w) + sorted[hi] * w
}

fn window_fn(f: WindowFn, w: &[Sample], t: i64, range: i64) -> Option<f64> {
    let vs: Vec<f64> = w.iter().map(|s| s.v).collect();
    let n = vs.len() as f64;
    let mean = vs.iter().sum::<f64>() / n;
    let var = vs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    Some(match f {
        WindowFn::Min => min_ignoring_nan(&vs),
        WindowFn::Max => max_ignoring_nan(&vs),
        WindowFn::Sum => vs.iter().sum(),
        WindowFn::Count => n,
        WindowFn::Avg => mean,
        WindowFn::First => vs[0],
        WindowFn::Last => vs[vs.len() - 1],
        WindowFn::Stddev => var.sqrt(),
        WindowFn::Stdvar => var,
        WindowFn::Quantile(phi) => quantile(phi, vs),
        WindowFn::Changes => {
            let mut c = 0;
            for i in 1..vs.len() {
                let both_nan = vs[i].is_nan() && vs[i - 1].is_nan();
                if vs[i] != vs[i - 1] && !both_nan {
                    c += 1;
                }
            }
            c as f64
        }
        WindowFn::Resets => (1..vs.len()).filter(|&i| vs[i] < vs[i - 1]).count() as f64,
        WindowFn::Rate => extrapolate(w, t, range, true)? / (range as f64 / 1000.0),
        WindowFn::Increase => extrapolate(w, t, range, true)?,
        WindowFn::Delta => extrapolate(w, t, range, false)?,
        WindowFn::Irate | WindowFn::Idelta => {
            if w.len() < 2 {
                return None;
            }
            let (a, b) = (w[w.len() - 2], w[w.len() - 1]);
            let seconds = (b.t - a.t) as f64 / 1000.0;
            if f == WindowFn::Idelta {
                b.v - a.v
            } else if b.v < a.v {
                b.v / seconds
            } else {
                (b.v - a.v) / seconds
            }
        }
        WindowFn::Deriv => {
            if w.len() < 2 {
                return None;
            }
            if vs.iter().all(|v| *v == vs[0]) {
                return Some(0.0);
            }
            // Two-pass least squares.
            let xs: Vec<f64> = w.iter().map(|s| (s.t - w[0].t) as f64 / 1000.0).collect();
            let mx = xs.iter().sum::<f64>() / n;
            let cov: f64 = xs.iter().zip(&vs).map(|(x, y)| (x - mx) * (y - mean)).sum();
            let varx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
            cov / varx
        }
    })
}

/// The increase (counter: summing the rises, a reset counting as a rise from zero) or
/// plain difference, extended towards the window's edges as Prometheus documents it.
fn extrapolate(w: &[Sample], t: i64, range: i64, counter: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    // The difference between the last and first sample; for a counter, each reset
    // (a drop) means the counter restarted from zero, so the value before the drop is
    // added back.
    let mut total = w[w.len() - 1].v - w[0].v;
    if counter {
        for pair in w.windows(2) {
            if pair[1].v < pair[0].v {
                total += pair[0].v;
            }
        }
    }
    let first = w[0];
    let last = w[w.len() - 1];
    let covered = (last.t - first.t) as f64 / 1000.0;
    let average_gap = covered / (w.len() - 1) as f64;
    let gap_before = (first.t - (t - range)) as f64 / 1000.0;
    let gap_after = (t - last.t) as f64 / 1000.0;
    let mut extend_before = if gap_before < average_gap * 1.1 { gap_before } else { average_gap / 2.0 };
    let extend_after = if gap_after < average_gap * 1.1 { gap_after } else { average_gap / 2.0 };
    if counter && total > 0.0 && first.v >= 0.0 {
        // A counter does not go below zero: stop where the line would cross it.
        extend_before = extend_before.min(covered * first.v / total);
    }
    Some(total * (covered + extend_before + extend_after) / covered)
}

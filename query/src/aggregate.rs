//! Cross-series aggregation per step, grouped `by`/`without` labels, with Prometheus's
//! output labels: `by` keeps the listed labels, `without` drops them and `__name__`;
//! `topk`/`bottomk` return the chosen input series with their labels unchanged.

use crate::error::Result;
use crate::eval::StepSeries;
use crate::plan::{AggOp, Aggregation, Grouping};
use crate::window::{kahan_sum, quantile};
use chronolith_engine::Labels;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::HashMap;

#[expect(clippy::needless_range_loop, reason = "a step indexes every member's values, not one array")]
pub(crate) fn aggregate(agg: &Aggregation, mut input: Vec<StepSeries>, steps: usize) -> Result<Vec<StepSeries>> {
    // Label order makes group membership order, and so topk/bottomk's choice among
    // equal values, deterministic (the series arrive in parallel-evaluation order).
    input.sort_by(|a, b| a.labels.cmp(&b.labels));
    let groups = group(&agg.grouping, &input)?;
    let mut out = Vec::with_capacity(groups.len());
    match agg.op {
        AggOp::Topk(k) | AggOp::Bottomk(k) => {
            let top = matches!(agg.op, AggOp::Topk(_));
            // Prometheus truncates k toward zero; k < 1 selects nothing.
            let k = if k.is_nan() || k < 1.0 { 0 } else { k.min(usize::MAX as f64) as usize };
            let mut chosen: Vec<Vec<Option<f64>>> = vec![vec![None; steps]; input.len()];
            for (_, members) in &groups {
                for step in 0..steps {
                    let mut present: Vec<(usize, f64)> =
                        members.iter().filter_map(|&m| input[m].values[step].map(|v| (m, v))).collect();
                    present.sort_by(|a, b| rank(a.1, b.1, top).then(a.0.cmp(&b.0)));
                    for (m, v) in present.into_iter().take(k) {
                        chosen[m][step] = Some(v);
                    }
                }
            }
            for (s, values) in input.into_iter().zip(chosen) {
                if values.iter().any(Option::is_some) {
                    out.push(StepSeries { labels: s.labels, values });
                }
            }
        }
        AggOp::Quantile(_) => {
            let mut scratch = Vec::new();
            for (labels, members) in groups {
                let values = (0..steps)
                    .map(|step| {
                        scratch.clear();
                        scratch.extend(members.iter().filter_map(|&m| input[m].values[step]));
                        reduce(agg.op, &mut scratch)
                    })
                    .collect();
                out.push(StepSeries { labels, values });
            }
        }
        op => {
            // Groups fold independently: in parallel, each over its members' rows.
            let folded: Vec<Vec<Option<f64>>> = groups
                .par_iter()
                .map(|(_, members)| fold_rows(op, members.iter().map(|&m| input[m].values.as_slice()), steps))
                .collect();
            for ((labels, _), values) in groups.into_iter().zip(folded) {
                out.push(StepSeries { labels, values });
            }
        }
    }
    Ok(out)
}

/// Output labels of each group and the indexes of its input series, in input order.
fn group(grouping: &Grouping, input: &[StepSeries]) -> Result<Vec<(Labels, Vec<usize>)>> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<usize>)> = Vec::new();
    for (i, s) in input.iter().enumerate() {
        let key = match grouping {
            // Repeated names (`by (a, a)`) are harmless in PromQL: keep each once.
            Grouping::By(names) => Labels::new(
                names
                    .iter()
                    .enumerate()
                    .filter(|(i, n)| !names[..*i].contains(n))
                    .map(|(_, n)| (n.as_str(), s.labels.get(n))),
            )?,
            Grouping::Without(names) => {
                Labels::new(s.labels.iter().filter(|(n, _)| *n != crate::METRIC_NAME && !names.iter().any(|x| x == n)))?
            }
        };
        match index.get(&key) {
            Some(&g) => groups[g].1.push(i),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![i]));
            }
        }
    }
    Ok(groups)
}

/// Order for topk (descending) or bottomk (ascending); NaN always ranks last, so it is
/// chosen only when there are not k other values.
fn rank(a: f64, b: f64, top: bool) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) if top => b.total_cmp(&a),
        (false, false) => a.total_cmp(&b),
    }
}

/// `sum`, `avg`, `count`, `min`, `max` of the members at each step, folding one member's
/// row after another (sequential memory, no per-step gathering). Each step sees its values
/// in member order with the same arithmetic as [`reduce`], so the results are identical.
fn fold_rows<'a>(op: AggOp, rows: impl Iterator<Item = &'a [Option<f64>]>, steps: usize) -> Vec<Option<f64>> {
    let mut n = vec![0u64; steps];
    let mut acc = vec![0.0f64; steps];
    let mut comp = vec![0.0f64; steps];
    for row in rows {
        let cells = n.iter_mut().zip(acc.iter_mut()).zip(comp.iter_mut());
        for (v, ((n, acc), comp)) in row.iter().zip(cells) {
            let Some(v) = *v else { continue };
            match op {
                AggOp::Sum | AggOp::Avg => neumaier_add(acc, comp, v),
                // As `reduce`'s fold from NaN: the first value, then smaller/larger ones,
                // NaN only replaced.
                AggOp::Min if *n == 0 || v < *acc || acc.is_nan() => *acc = v,
                AggOp::Max if *n == 0 || v > *acc || acc.is_nan() => *acc = v,
                _ => {}
            }
            *n += 1;
        }
    }
    (0..steps)
        .map(|i| match (n[i], op) {
            (0, _) => None,
            (_, AggOp::Sum) => Some(acc[i] + comp[i]),
            (k, AggOp::Avg) => Some((acc[i] + comp[i]) / k as f64),
            (k, AggOp::Count) => Some(k as f64),
            _ => Some(acc[i]),
        })
        .collect()
}

/// One step of [`kahan_sum`] (Neumaier's variant).
#[inline]
fn neumaier_add(sum: &mut f64, c: &mut f64, v: f64) {
    let t = *sum + v;
    if t.is_infinite() {
        *c = 0.0;
    } else if sum.abs() >= v.abs() {
        *c += (*sum - t) + v;
    } else {
        *c += (v - t) + *sum;
    }
    *sum = t;
}

fn reduce(op: AggOp, values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let v = match op {
        AggOp::Sum => kahan_sum(values.iter().copied()),
        AggOp::Avg => kahan_sum(values.iter().copied()) / values.len() as f64,
        AggOp::Count => values.len() as f64,
        AggOp::Min => values.iter().fold(f64::NAN, |m, &v| if v < m || m.is_nan() { v } else { m }),
        AggOp::Max => values.iter().fold(f64::NAN, |m, &v| if v > m || m.is_nan() { v } else { m }),
        AggOp::Quantile(phi) => quantile(phi, values),
        // Handled by the caller; unreachable here.
        AggOp::Topk(_) | AggOp::Bottomk(_) => return None,
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row-wise folding gives bit-identical results to gathering each step's values and
    /// reducing them, also with gaps, NaN, infinities and cancellation.
    #[test]
    fn fold_rows_equals_reduce_per_step() {
        let specials = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e308, -1e308, 0.1, -0.0, 3.0];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let (members, steps) = (1 + next() as usize % 6, 1 + next() as usize % 5);
            let rows: Vec<Vec<Option<f64>>> = (0..members)
                .map(|_| {
                    (0..steps)
                        .map(|_| match next() % 4 {
                            0 => None,
                            1 => Some(specials[next() as usize % specials.len()]),
                            _ => Some((next() % 10_000) as f64 / 7.0 - 700.0),
                        })
                        .collect()
                })
                .collect();
            for op in [AggOp::Sum, AggOp::Avg, AggOp::Count, AggOp::Min, AggOp::Max] {
                let folded = fold_rows(op, rows.iter().map(Vec::as_slice), steps);
                for (step, got) in folded.iter().enumerate() {
                    let mut values: Vec<f64> = rows.iter().filter_map(|r| r[step]).collect();
                    let want = reduce(op, &mut values);
                    assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{op:?} at {step} of {rows:?}");
                }
            }
        }
    }
}

//! Operations between two instant vectors, step by step, with Prometheus's matching
//! rules: series pair up by their signature (the labels `on(...)` names, or all but
//! `ignoring(...)`'s and `__name__`), one-to-one for arithmetic; set operations keep or
//! drop whole elements of one side. Also `label_replace`, which rewrites labels.

use crate::error::{Error, Result};
use crate::eval::{drop_metric_name, StepSeries};
use crate::plan::{ArithOp, LabelReplace, SetOp, VectorMatching};
use crate::METRIC_NAME;
use chronolith_engine::Labels;
use std::collections::HashMap;

/// The labels that pair series across the operator.
fn signature(labels: &Labels, matching: &VectorMatching) -> Vec<(String, String)> {
    match matching {
        VectorMatching::On(names) => {
            let mut sig: Vec<(String, String)> =
                names.iter().map(|n| (n.clone(), labels.get(n).to_string())).filter(|(_, v)| !v.is_empty()).collect();
            sig.sort();
            sig
        }
        VectorMatching::Ignoring(names) => labels
            .iter()
            .filter(|(n, _)| *n != METRIC_NAME && !names.iter().any(|x| x == n))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

/// Indices of the series of `side`, grouped by signature.
fn by_signature(side: &[StepSeries], matching: &VectorMatching) -> HashMap<Vec<(String, String)>, Vec<usize>> {
    let mut groups: HashMap<Vec<(String, String)>, Vec<usize>> = HashMap::new();
    for (i, s) in side.iter().enumerate() {
        groups.entry(signature(&s.labels, matching)).or_default().push(i);
    }
    groups
}

/// `lhs and|or|unless rhs`.
pub(crate) fn set_op(
    op: SetOp,
    matching: &VectorMatching,
    mut lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    steps: usize,
) -> Vec<StepSeries> {
    let rhs_groups = by_signature(&rhs, matching);
    // Whether any series of `group` has a value at `step`.
    let present = |group: Option<&Vec<usize>>, side: &[StepSeries], step: usize| {
        group.is_some_and(|g| g.iter().any(|&i| side[i].values[step].is_some()))
    };
    match op {
        SetOp::And | SetOp::Unless => {
            let keep_if_matched = op == SetOp::And;
            for s in &mut lhs {
                let group = rhs_groups.get(&signature(&s.labels, matching));
                for step in 0..steps {
                    if present(group, &rhs, step) != keep_if_matched {
                        s.values[step] = None;
                    }
                }
            }
            lhs.retain(|s| s.values.iter().any(Option::is_some));
            lhs
        }
        SetOp::Or => {
            let lhs_groups = by_signature(&lhs, matching);
            let mut out_rhs = Vec::with_capacity(rhs.len());
            for mut s in rhs {
                let group = lhs_groups.get(&signature(&s.labels, matching));
                for step in 0..steps {
                    if present(group, &lhs, step) {
                        s.values[step] = None;
                    }
                }
                if s.values.iter().any(Option::is_some) {
                    out_rhs.push(s);
                }
            }
            lhs.extend(out_rhs);
            lhs
        }
    }
}

/// `lhs op rhs`, one-to-one: at each step every signature may have at most one series
/// with a value on each side; the result carries the left series' labels without
/// `__name__` (only the `on` labels with `on(...)`, without the `ignoring` ones with
/// `ignoring(...)`), as Prometheus's one-to-one matching does.
pub(crate) fn vector_arith(
    op: ArithOp,
    matching: &VectorMatching,
    lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    steps: usize,
) -> Result<Vec<StepSeries>> {
    let rhs_groups = by_signature(&rhs, matching);
    let lhs_groups = by_signature(&lhs, matching);
    let mut out = Vec::new();
    for (sig, lhs_members) in &lhs_groups {
        let Some(rhs_members) = rhs_groups.get(sig) else { continue };
        for &li in lhs_members {
            let mut values = vec![None; steps];
            for (step, slot) in values.iter_mut().enumerate() {
                let Some(l) = lhs[li].values[step] else { continue };
                if lhs_members.iter().filter(|&&i| lhs[i].values[step].is_some()).count() > 1 {
                    return Err(many_to_many("left", &lhs[li].labels));
                }
                let mut right = rhs_members.iter().filter_map(|&i| rhs[i].values[step]);
                let Some(r) = right.next() else { continue };
                if right.next().is_some() {
                    return Err(many_to_many("right", &rhs[rhs_members[0]].labels));
                }
                *slot = Some(op.apply(l, r));
            }
            if values.iter().any(Option::is_some) {
                out.push(StepSeries { labels: result_labels(&lhs[li].labels, matching)?, values });
            }
        }
    }
    Ok(out)
}

fn many_to_many(side: &str, labels: &Labels) -> Error {
    Error::InvalidQuery(format!(
        "many-to-many matching not allowed: found duplicate series on the {side} hand side of the operation, e.g. {labels}; use on(...) or ignoring(...) to match one-to-one"
    ))
}

fn result_labels(labels: &Labels, matching: &VectorMatching) -> Result<Labels> {
    let kept = labels.iter().filter(|(n, _)| match matching {
        VectorMatching::On(names) => names.iter().any(|x| x == n),
        VectorMatching::Ignoring(names) => !names.iter().any(|x| x == n),
    });
    drop_metric_name(&Labels::new(kept)?)
}

/// `label_replace` on every series.
pub(crate) fn label_replace(r: &LabelReplace, mut input: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
    for s in &mut input {
        let Some(caps) = r.regex.captures(s.labels.get(&r.src)) else { continue };
        let mut value = String::new();
        caps.expand(&r.replacement, &mut value);
        let others = s.labels.iter().filter(|(n, _)| *n != r.dst);
        s.labels = Labels::new(others.chain(std::iter::once((r.dst.as_str(), value.as_str()))))?;
    }
    Ok(input)
}

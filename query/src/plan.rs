//! What to evaluate: a small expression tree that both the native API ([`RangeQuery`])
//! and the PromQL front end ([`crate::parse_promql`]) produce, and the planner seam that
//! decides where each selector's samples come from.

use crate::window::WindowFn;
use chronolith_engine::Matcher;

/// Prometheus's default lookback for instant vector selectors.
pub const DEFAULT_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// The time grid of a range query: steps at `start, start + step, ..., <= end` (ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

/// How each selected series becomes one value per step.
#[derive(Clone, Debug, PartialEq)]
pub enum SeriesFn {
    /// `fn(selector[range])`: a function over the left-open window `(t - range, t]`.
    Window { func: WindowFn, range_ms: i64 },
    /// A bare selector: the newest sample in `(t - lookback, t]`, none if that sample
    /// is a stale marker.
    Instant { lookback_ms: i64 },
}

/// Reads matching series and turns each into step values.
#[derive(Clone, Debug)]
pub struct Selection {
    pub matchers: Vec<Matcher>,
    pub func: SeriesFn,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AggOp {
    Sum,
    Min,
    Max,
    Avg,
    Count,
    Topk(f64),
    Bottomk(f64),
    Quantile(f64),
}

impl AggOp {
    pub fn name(&self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Avg => "avg",
            AggOp::Count => "count",
            AggOp::Topk(_) => "topk",
            AggOp::Bottomk(_) => "bottomk",
            AggOp::Quantile(_) => "quantile",
        }
    }
}

/// `by (labels)` keeps only those labels; `without (labels)` drops them and `__name__`.
/// No clause is `By(vec![])`: everything in one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grouping {
    By(Vec<String>),
    Without(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Aggregation {
    pub op: AggOp,
    pub grouping: Grouping,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl ArithOp {
    pub fn apply(&self, lhs: f64, rhs: f64) -> f64 {
        match self {
            ArithOp::Add => lhs + rhs,
            ArithOp::Sub => lhs - rhs,
            ArithOp::Mul => lhs * rhs,
            ArithOp::Div => lhs / rhs,
            // Go's math.Mod: result has the sign of the dividend, like Rust's `%`.
            ArithOp::Mod => lhs % rhs,
            ArithOp::Pow => lhs.powf(rhs),
        }
    }
}

/// `and`, `or`, `unless` between two vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOp {
    And,
    Or,
    Unless,
}

/// Which labels pair series of the two sides of a binary operation: `on(...)` lists
/// them, `ignoring(...)` (and no clause, with an empty list) uses all but those and
/// `__name__`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VectorMatching {
    On(Vec<String>),
    Ignoring(Vec<String>),
}

/// `label_replace(v, dst, replacement, src, regex)`: where `regex` (anchored) matches
/// the value of `src`, `dst` becomes `replacement` with `$1`/`${name}` expanded.
#[derive(Clone, Debug)]
pub struct LabelReplace {
    pub dst: String,
    pub replacement: String,
    pub src: String,
    pub regex: regex::Regex,
}

/// An evaluable expression over instant vectors.
#[derive(Clone, Debug)]
pub enum Plan {
    Select(Selection),
    Aggregate {
        agg: Aggregation,
        input: Box<Plan>,
    },
    /// `input op scalar` (or `scalar op input` when `scalar_left`); drops `__name__`.
    Arith {
        op: ArithOp,
        scalar: f64,
        scalar_left: bool,
        input: Box<Plan>,
    },
    /// `lhs op rhs` between two vectors, one-to-one matching; drops `__name__`.
    VectorArith {
        op: ArithOp,
        matching: VectorMatching,
        lhs: Box<Plan>,
        rhs: Box<Plan>,
    },
    /// `lhs and|or|unless rhs`; labels are kept as they are.
    Set {
        op: SetOp,
        matching: VectorMatching,
        lhs: Box<Plan>,
        rhs: Box<Plan>,
    },
    LabelReplace {
        replace: LabelReplace,
        input: Box<Plan>,
    },
}

/// The native range query: a selector, a window function, an optional aggregation.
#[derive(Clone, Debug)]
pub struct RangeQuery {
    pub matchers: Vec<Matcher>,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    /// The window length (`[range]` in PromQL).
    pub range: i64,
    pub func: WindowFn,
    pub agg: Option<Aggregation>,
}

impl RangeQuery {
    pub fn plan(&self) -> Plan {
        let select = Plan::Select(Selection {
            matchers: self.matchers.clone(),
            func: SeriesFn::Window { func: self.func, range_ms: self.range },
        });
        match &self.agg {
            Some(agg) => Plan::Aggregate { agg: agg.clone(), input: Box::new(select) },
            None => select,
        }
    }

    pub fn time_range(&self) -> TimeRange {
        TimeRange { start: self.start, end: self.end, step: self.step }
    }
}

/// Where a selection's samples are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Raw samples from head and blocks.
    Raw,
    /// A downsampled tier of this resolution (count/sum/min/max/last/increase per
    /// window). Not produced yet: the evaluator refuses it until the compaction issue
    /// provides tiers and a reader for them.
    Rollup { resolution_ms: i64 },
}

/// The planner seam for rollup tiers. A later implementation returns
/// `Source::Rollup { resolution_ms }` when a tier's resolution divides both the step
/// and the window (so every window is a whole number of rollup buckets and the answer
/// equals the raw one) and the function is computable from the tier's aggregates
/// (min, max, sum, count, avg, last, increase/rate); everything else stays raw.
pub trait SourcePlanner: Send + Sync {
    fn source_for(&self, selection: &Selection, range: &TimeRange) -> Source;
}

/// Today's planner: always raw data.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawOnly;

impl SourcePlanner for RawOnly {
    fn source_for(&self, _: &Selection, _: &TimeRange) -> Source {
        Source::Raw
    }
}

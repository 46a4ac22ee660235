//! Range-aggregate queries over a Chronolith engine: a native API ([`RangeQuery`]) and a
//! PromQL subset ([`parse_promql`]) that both lower to a [`Plan`], evaluated series by
//! series in parallel with Prometheus 3 semantics (left-open windows `(t - range, t]`,
//! 5-minute lookback for instant selectors, stale markers, `rate` extrapolation), under
//! [`Limits`]. See `README.md` in this crate for the supported subset.

mod aggregate;
mod binary;
mod error;
mod eval;
mod limits;
mod plan;
mod promql;
mod promql_depth;
mod read;
mod rollup;
mod stepper;
mod window;

pub use error::{Error, Limit, Result};
pub use eval::{evaluate, evaluate_with, QueryResult, QueryStats, SeriesResult};
pub use limits::Limits;
pub use plan::{
    AggOp, Aggregation, ArithOp, Grouping, LabelReplace, Plan, RangeQuery, RawOnly, Selection, SeriesFn, SetOp, Source,
    SourcePlanner, TimeRange, VectorMatching, DEFAULT_LOOKBACK_MS,
};
pub use promql::{parse_promql, parse_promql_expr, Parsed};
pub use rollup::{rollup_computable, TierPlanner};
pub use window::WindowFn;

use chronolith_engine::Engine;

/// The bit pattern Prometheus writes to mark a series stale (a NaN distinct from the
/// ordinary one): it ends the series for instant selectors and is skipped in windows.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Name of the label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Evaluates a native range query.
pub fn run(engine: &Engine, query: &RangeQuery, limits: &Limits) -> Result<QueryResult> {
    evaluate(engine, &query.plan(), query.time_range(), limits)
}

/// Parses and evaluates a PromQL range query (`start`/`end`/`step` in ms).
pub fn query_range(engine: &Engine, promql: &str, range: TimeRange, limits: &Limits) -> Result<QueryResult> {
    evaluate(engine, &parse_promql(promql)?, range, limits)
}

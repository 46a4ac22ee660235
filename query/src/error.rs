//! The one error type of the query crate. Expected outcomes a caller can act on (a limit
//! hit, an unsupported construct) are their own variants, apart from storage failures.

use std::fmt;

pub type Result<T> = std::result::Result<T, Error>;

/// Which limit of [`crate::Limits`] a query exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    SeriesTouched,
    SamplesScanned,
    PointsReturned,
    Steps,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::SeriesTouched => "series_touched_max",
            Limit::SamplesScanned => "samples_scanned_max",
            Limit::PointsReturned => "points_returned_max",
            Limit::Steps => "steps_max",
        })
    }
}

#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading from the engine failed (I/O, corruption).
    Engine(chronolith_engine::Error),
    /// The PromQL text does not parse.
    Parse(String),
    /// Valid PromQL outside the supported subset. `position` is the byte offset of the
    /// construct in the query text, when it could be located.
    Unsupported { construct: String, position: Option<usize> },
    /// A request that cannot be answered as asked (bad step, bad range, bad parameter).
    InvalidQuery(String),
    /// A count limit was exceeded: `seen` is at least `max + 1`, so `seen - max` is by
    /// how much (a lower bound: evaluation stops as soon as the limit is crossed).
    LimitExceeded { limit: Limit, max: u64, seen: u64 },
    /// The deadline passed; `over_ms` is how far past it evaluation noticed.
    DeadlineExceeded { deadline_ms: u64, over_ms: u64 },
    /// Two output series ended up with the same labels at the same step (as when
    /// `__name__` is dropped from series that differed only by name); Prometheus
    /// refuses these too.
    DuplicateLabelSet(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Engine(e) => write!(f, "storage: {e}"),
            Error::Parse(m) => write!(f, "parse error: {m}"),
            Error::Unsupported { construct, position: Some(p) } => {
                write!(f, "unsupported: {construct} at byte {p}")
            }
            Error::Unsupported { construct, position: None } => write!(f, "unsupported: {construct}"),
            Error::InvalidQuery(m) => write!(f, "invalid query: {m}"),
            Error::LimitExceeded { limit, max, seen } => {
                write!(f, "limit {limit} = {max} exceeded by at least {}", seen.saturating_sub(*max))
            }
            Error::DeadlineExceeded { deadline_ms, over_ms } => {
                write!(f, "deadline of {deadline_ms} ms exceeded by {over_ms} ms")
            }
            Error::DuplicateLabelSet(l) => write!(f, "vector cannot contain series with the same labels: {l}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Engine(e) => Some(e),
            _ => None,
        }
    }
}

impl From<chronolith_engine::Error> for Error {
    fn from(e: chronolith_engine::Error) -> Self {
        Error::Engine(e)
    }
}

//! Scale-out through remote write: forwards what Chronolith ingests to Prometheus remote
//! write 1.0 receivers (Mimir, Thanos Receive, Cortex, VictoriaMetrics, Prometheus),
//! straight from Chronolith's own WAL (no second copy of the data).
//!
//! ```no_run
//! use chronolith::forward::RemoteWriteConfig;
//! use chronolith::{Db, Options};
//! # fn main() -> chronolith::Result<()> {
//! let target = RemoteWriteConfig::parse("http://127.0.0.1:8428/api/v1/write;label=replica=a")?;
//! let db = Db::open_with_remote_write("./data", Options::default(), vec![target])?;
//! // ... append as usual; db.stats().forward has the per-target figures.
//! db.close()?;
//! # Ok(()) }
//! ```
//!
//! Per target: a coordinator thread follows the sample log from the target's durable
//! position (never past what appends acknowledged), resolves series ids to labels through
//! the registry, applies the label filters and splits samples by series over `shards`
//! sender threads, gathering them over many WAL records (up to `max_samples_per_request`
//! per shard, for at most `batch_send_deadline_ms`); each shard groups its samples by
//! series (one `TimeSeries` per series, labels encoded once and cached), sends protobuf +
//! snappy requests, retries 5xx, 429 and network
//! errors with exponential back-off and jitter (honouring `Retry-After`), refuses to retry
//! other 4xx (the request is split by series so only what the receiver refuses is lost,
//! counted and logged), and shares a circuit breaker. The confirmed position is saved
//! atomically in `<data>/forward/<name>/position` (`FORMAT.md` here) and the engine keeps
//! every WAL segment from it on (a named WAL hold), up to the target's backlog bounds;
//! past them the oldest whole segments are dropped for that target, counted in
//! `samples_dropped` and logged at error level. Local appends and queries never wait for
//! a target.
//!
//! Log lines go through the `log` crate (target `chronolith::forward::target`); a
//! program without a logger can call [`log_to_stderr`].

mod backoff;
mod batch;
mod client;
mod config;
mod encode;
mod position;
mod stats;
mod target;

pub use backoff::BreakerState;
pub use config::{Auth, RemoteWriteConfig};
pub use stats::{LatencyStats, TargetStats, LATENCY_BUCKETS_SECONDS};

use chronolith_engine::Engine;
use std::sync::Arc;
use target::Target;

/// Directory of the targets' state inside a data directory.
pub const STATE_DIR: &str = "forward";

/// The running targets of one database.
#[derive(Debug, Default)]
pub(crate) struct Forwarder {
    targets: Vec<Target>,
}

impl Forwarder {
    /// Starts every target (their WAL holds are set before this returns).
    pub(crate) fn start(engine: &Arc<Engine>, configs: Vec<RemoteWriteConfig>) -> crate::Result<Forwarder> {
        let mut names = std::collections::HashSet::new();
        for c in &configs {
            if !names.insert(c.name.clone()) {
                return Err(crate::Error::InvalidOptions(format!(
                    "remote write: two targets named `{}`; give one a `name`",
                    c.name
                )));
            }
        }
        let mut f = Forwarder::default();
        for c in configs {
            f.targets.push(Target::start(engine.clone(), c)?);
        }
        Ok(f)
    }

    pub(crate) fn stats(&self) -> Vec<TargetStats> {
        self.targets.iter().map(Target::stats).collect()
    }

    /// Stops every target and persists its position.
    pub(crate) fn stop(&mut self) {
        for t in &mut self.targets {
            t.stop();
        }
    }
}

/// Installs a minimal `log` logger that writes warnings and errors (of every crate) to
/// stderr, for programs that have none. Does nothing if a logger is already set.
pub fn log_to_stderr() {
    static LOGGER: StderrLogger = StderrLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{} {}", r.level(), r.args());
        }
    }

    fn flush(&self) {}
}

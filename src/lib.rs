//! Chronolith: an append-only time-series storage engine to embed in a metrics collector.
//!
//! ```no_run
//! use chronolith::{Batch, Db, Labels, Matcher, Options};
//! # fn main() -> chronolith::Result<()> {
//! let db = Db::open("./chronolith-data", Options::default())?;
//! let mut batch = Batch::new();
//! batch.add_labels(Labels::metric("cpu_usage", [("host", "a")])?, 1_700_000_000_000, 43.27);
//! let report = db.append(&batch)?; // durable (fsynced) when it returns, by default
//! let cpu = report.series[0].1;    // the series ref: use it on the hot path
//! batch.clear();
//! batch.add(cpu, 1_700_000_010_000, 43.31);
//! db.append(&batch)?;
//! for series in db.select(&[Matcher::metric("cpu_usage")], 0, i64::MAX) {
//!     let series = series?;
//!     println!("{} has {} samples", series.labels, series.samples.len());
//! }
//! db.close()?;
//! # Ok(()) }
//! ```

pub mod formats;
#[cfg(feature = "forward")]
pub mod forward;
pub mod remote_write;

use chronolith_compaction::{Clock, Compactor, Sealer, SystemClock};
use chronolith_engine::Engine;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use chronolith_compaction::{CompactionStatus, JobKind, JobStats, ManualClock, PassReport, SealerStatus};
pub use chronolith_engine::{
    AppendReport, Batch, CompactionOptions, Durability, EngineStats, Error, Labels, MatchOp, Matcher, Options,
    RecoveryMode, RecoveryReport, RejectReason, Rejection, Result, Retention, RollupTier, Sample, Select, SeriesId,
    SeriesSamples,
};
/// Range-aggregate queries (native and PromQL); also reachable as [`Db::query`].
pub use chronolith_query as query;

/// How often the sealer looks for closed partitions even without a hint.
const SEAL_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// An open database: the engine plus its background workers.
#[derive(Debug)]
pub struct Db {
    engine: Arc<Engine>,
    sealer: Sealer,
    compactor: Compactor,
    #[cfg(feature = "forward")]
    forwarder: forward::Forwarder,
}

/// Everything `stats()` reports.
#[derive(Clone, Debug)]
pub struct Stats {
    pub engine: EngineStats,
    pub sealer: SealerStatus,
    /// Merge, downsample and retention jobs: runs, durations, bytes in and out,
    /// partitions dropped, time of the last success.
    pub compaction: CompactionStatus,
    /// Remote-write targets: samples sent, failed, retried, dropped, backlog, latency.
    #[cfg(feature = "forward")]
    pub forward: Vec<forward::TargetStats>,
}

impl Db {
    /// Opens (creating if needed) the database in `dir`, recovering from the WAL.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        Self::open_with_clock(dir, options, Arc::new(SystemClock))
    }

    /// Like [`Db::open`] with an injected clock (it stamps compaction results; ages are
    /// always counted from the newest sample held, not from any clock).
    pub fn open_with_clock(dir: impl AsRef<Path>, options: Options, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::open_inner(dir.as_ref(), options, clock, Vec::new())
    }

    /// Like [`Db::open`], forwarding everything ingested (from the WAL) to remote-write
    /// targets; see [`forward`]. Each target resumes from its saved position in
    /// `<dir>/forward/<name>/`; its WAL hold is set before any background seal can run.
    #[cfg(feature = "forward")]
    pub fn open_with_remote_write(
        dir: impl AsRef<Path>,
        options: Options,
        targets: Vec<forward::RemoteWriteConfig>,
    ) -> Result<Self> {
        Self::open_inner(dir.as_ref(), options, Arc::new(SystemClock), targets)
    }

    #[cfg(feature = "forward")]
    fn open_inner(
        dir: &Path,
        options: Options,
        clock: Arc<dyn Clock>,
        targets: Vec<forward::RemoteWriteConfig>,
    ) -> Result<Self> {
        let engine = Arc::new(Engine::open(dir, options)?);
        // Holds first, so the sealer's first truncation keeps what the targets need.
        let forwarder = forward::Forwarder::start(&engine, targets)?;
        Self::with_workers(dir, engine, clock, forwarder)
    }

    #[cfg(not(feature = "forward"))]
    fn open_inner(dir: &Path, options: Options, clock: Arc<dyn Clock>, _targets: Vec<()>) -> Result<Self> {
        let engine = Arc::new(Engine::open(dir, options)?);
        Self::with_workers(dir, engine, clock)
    }

    fn with_workers(
        dir: &Path,
        engine: Arc<Engine>,
        clock: Arc<dyn Clock>,
        #[cfg(feature = "forward")] forwarder: forward::Forwarder,
    ) -> Result<Self> {
        let background = engine.options().compaction.background;
        let spawn_err = |op: &'static str| {
            let path = dir.to_path_buf();
            move |e| Error::Io { path, op, source: e }
        };
        let sealer = Sealer::spawn(engine.clone(), SEAL_POLL_INTERVAL).map_err(spawn_err("spawn sealer thread"))?;
        let compactor = if background {
            Compactor::spawn(engine.clone(), clock).map_err(spawn_err("spawn compactor thread"))?
        } else {
            Compactor::manual(engine.clone(), clock)
        };
        Ok(Self {
            engine,
            sealer,
            compactor,
            #[cfg(feature = "forward")]
            forwarder,
        })
    }

    /// Appends a batch; see [`AppendReport`] for per-sample outcomes.
    pub fn append(&self, batch: &Batch) -> Result<AppendReport> {
        self.engine.append(batch)
    }

    /// The ref of a series (created and logged if new), for [`Batch::add`].
    pub fn series_ref(&self, labels: &Labels) -> Result<SeriesId> {
        self.engine.series_ref(labels)
    }

    /// Raw samples in `[start, end]` (ms, inclusive) of every series matching all matchers.
    pub fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Select<'_> {
        self.engine.select(matchers, start, end)
    }

    /// Evaluates a native range query (selector, range, step, window function,
    /// aggregation) under `limits`. Reads the coarsest rollup tier whose resolution
    /// divides the step, window and start where one exists, raw data elsewhere.
    pub fn query(
        &self,
        q: &query::RangeQuery,
        limits: &query::Limits,
    ) -> std::result::Result<query::QueryResult, query::Error> {
        let planner = query::TierPlanner::new(&self.engine);
        query::evaluate_with(&self.engine, &q.plan(), q.time_range(), limits, &planner)
    }

    /// Evaluates a PromQL range query (the supported subset is listed in the query
    /// crate's README); anything outside it is an error naming the construct.
    pub fn query_promql(
        &self,
        promql: &str,
        range: query::TimeRange,
        limits: &query::Limits,
    ) -> std::result::Result<query::QueryResult, query::Error> {
        let planner = query::TierPlanner::new(&self.engine);
        query::evaluate_with(&self.engine, &query::parse_promql(promql)?, range, limits, &planner)
    }

    /// Makes everything appended so far durable, whatever the durability mode.
    pub fn flush(&self) -> Result<()> {
        self.engine.flush()
    }

    /// Seals the whole head into blocks now, including the open partition. Afterwards,
    /// samples at or before the newest sealed one are rejected as out of bounds.
    pub fn seal(&self) -> Result<usize> {
        self.engine.seal_all()
    }

    /// Runs one compaction pass now (merges, downsampling, retention) on this thread.
    pub fn compact(&self) -> PassReport {
        self.compactor.run_now()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            engine: self.engine.stats(),
            sealer: self.sealer.status(),
            compaction: self.compactor.status(),
            #[cfg(feature = "forward")]
            forward: self.forwarder.stats(),
        }
    }

    /// The engine underneath, for the query layer and tools.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stops background work and syncs the logs. Unsealed samples come back from the
    /// WAL on the next open.
    pub fn close(mut self) -> Result<()> {
        self.compactor.stop();
        self.sealer.stop();
        // Waits for requests in flight (bounded by each target's timeout) and saves
        // each target's position.
        #[cfg(feature = "forward")]
        self.forwarder.stop();
        self.engine.close()
    }
}

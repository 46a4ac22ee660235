//! What one request may cost: body sizes, samples, label sets, query work, and how many
//! writes and queries run at once. Every limit answers with a 4xx (or a 503 for the
//! in-flight bounds) naming the limit, and nothing of a refused request is stored.

use chronolith::query::Limits;
use chronolith_engine::LabelLimits;
use std::time::Duration;

#[derive(clap::Args, Clone, Debug)]
pub struct ServerLimits {
    /// Largest request body as sent (compressed or not), in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub body_bytes_max: usize,
    /// Largest request body after snappy or gzip decompression, in bytes.
    #[arg(long, default_value_t = 256 << 20)]
    pub decompressed_bytes_max: usize,
    /// Most samples in one write request; a larger request is refused whole (413).
    #[arg(long, default_value_t = 2_000_000)]
    pub samples_per_request_max: usize,
    /// Most labels of one series, `__name__` included; a series with more is rejected.
    #[arg(long, default_value_t = 64)]
    pub labels_per_series_max: usize,
    /// Longest label name, in bytes.
    #[arg(long, default_value_t = 256)]
    pub label_name_bytes_max: usize,
    /// Longest label value, in bytes.
    #[arg(long, default_value_t = 4096)]
    pub label_value_bytes_max: usize,
    /// Most distinct series the database takes; samples of new series past it are
    /// refused (reason series_limit), existing series keep ingesting. Default: no limit.
    #[arg(long)]
    pub series_max: Option<usize>,
    /// Most series one query may select.
    #[arg(long, default_value_t = 100_000)]
    pub query_series_max: u64,
    /// Most raw samples one query may read.
    #[arg(long, default_value_t = 500_000_000)]
    pub query_samples_max: u64,
    /// Most points one query may return.
    #[arg(long, default_value_t = 10_000_000)]
    pub query_points_max: u64,
    /// Longest a query may run, in seconds (a `timeout` parameter can only shorten it).
    #[arg(long, default_value_t = 120.0)]
    pub query_timeout_s: f64,
    /// Write requests decoded and appended at once; more wait for a slot.
    #[arg(long, default_value_t = 16)]
    pub writes_in_flight_max: usize,
    /// Queries evaluated at once; more wait for a slot.
    #[arg(long, default_value_t = 8)]
    pub queries_in_flight_max: usize,
    /// How long a request waits for a write or query slot before a 503.
    #[arg(long, default_value_t = 10.0)]
    pub slot_wait_s: f64,
    /// Memory for the remote-write and text caches of label bytes to series ref; when
    /// full, a cache starts over (costing one registry lookup per series).
    #[arg(long, default_value_t = 64 << 20)]
    pub series_cache_bytes_max: usize,
}

/// Prometheus's bound on points per series in a range query.
pub const STEPS_MAX: u64 = 11_000;

impl ServerLimits {
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("--body-bytes-max", self.body_bytes_max),
            ("--decompressed-bytes-max", self.decompressed_bytes_max),
            ("--samples-per-request-max", self.samples_per_request_max),
            ("--labels-per-series-max", self.labels_per_series_max),
            ("--label-name-bytes-max", self.label_name_bytes_max),
            ("--label-value-bytes-max", self.label_value_bytes_max),
            ("--writes-in-flight-max", self.writes_in_flight_max),
            ("--queries-in-flight-max", self.queries_in_flight_max),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        if !(self.query_timeout_s > 0.0 && self.query_timeout_s.is_finite()) {
            return Err("--query-timeout-s must be a positive number".into());
        }
        if !(self.slot_wait_s >= 0.0 && self.slot_wait_s.is_finite()) {
            return Err("--slot-wait-s must be a non-negative number".into());
        }
        Ok(())
    }

    /// The engine's label limits (it rejects series that break them, per sample).
    pub fn label_limits(&self) -> LabelLimits {
        LabelLimits {
            labels_per_series_max: self.labels_per_series_max,
            name_bytes_max: self.label_name_bytes_max,
            value_bytes_max: self.label_value_bytes_max,
            ..LabelLimits::default()
        }
    }

    /// The query crate's limits, with the request's `timeout` when it is shorter.
    pub fn query_limits(&self, timeout: Option<Duration>) -> Limits {
        let max = Duration::from_secs_f64(self.query_timeout_s);
        Limits {
            series_touched_max: self.query_series_max,
            samples_scanned_max: self.query_samples_max,
            points_returned_max: self.query_points_max,
            steps_max: STEPS_MAX,
            deadline: Some(timeout.map_or(max, |t| t.min(max))),
        }
    }

    pub fn slot_wait(&self) -> Duration {
        Duration::from_secs_f64(self.slot_wait_s)
    }
}

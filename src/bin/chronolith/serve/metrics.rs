//! `/metrics`: the server's and the engine's own figures in the Prometheus text format
//! (0.0.4), through `prometheus-client`. Request, write and query figures are counted
//! as they happen; the engine's (`Db::stats()`: appends, rejections, WAL, head, blocks,
//! compaction) are read at scrape time by a collector.

use super::{AppState, Shared};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::fmt::Error as FmtError;
use std::sync::Weak;
use std::time::Duration;

type L1 = [(&'static str, String); 1];
type L2 = [(&'static str, String); 2];

fn histogram() -> Histogram {
    // 1 ms, 4 ms, ... 65 s.
    Histogram::new(exponential_buckets(0.001, 4.0, 9))
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<L2, Counter>,
    http_duration: Family<L1, Histogram, fn() -> Histogram>,
    query_duration: Family<L1, Histogram, fn() -> Histogram>,
    samples_stored: Family<L1, Counter>,
    samples_duplicate: Family<L1, Counter>,
    samples_rejected: Family<L2, Counter>,
    writes_failed: Family<L2, Counter>,
    overloaded: Family<L1, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(state: Weak<AppState>) -> Self {
        let mut m = Self {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(histogram),
            query_duration: Family::new_with_constructor(histogram),
            samples_stored: Family::default(),
            samples_duplicate: Family::default(),
            samples_rejected: Family::default(),
            writes_failed: Family::default(),
            overloaded: Family::default(),
        };
        let r = &mut m.registry;
        r.register("chronolith_http_requests", "HTTP requests by handler and status code", m.http_requests.clone());
        r.register(
            "chronolith_http_request_duration_seconds",
            "HTTP request latency by handler",
            m.http_duration.clone(),
        );
        r.register(
            "chronolith_query_duration_seconds",
            "Query API latency (parse, evaluate, encode)",
            m.query_duration.clone(),
        );
        r.register(
            "chronolith_write_samples_stored",
            "Samples stored by write requests, by protocol",
            m.samples_stored.clone(),
        );
        r.register(
            "chronolith_write_samples_duplicate",
            "Exact duplicates accepted and dropped, by protocol",
            m.samples_duplicate.clone(),
        );
        r.register(
            "chronolith_write_samples_rejected",
            "Samples of write requests refused, by protocol and reason",
            m.samples_rejected.clone(),
        );
        r.register(
            "chronolith_write_requests_failed",
            "Write requests refused whole (nothing stored), by protocol and status code",
            m.writes_failed.clone(),
        );
        r.register(
            "chronolith_overloaded",
            "Requests answered 503 because no write or query slot freed in time",
            m.overloaded.clone(),
        );
        r.register_collector(Box::new(EngineCollector(state)));
        m
    }

    pub fn http_request(&self, handler: &'static str, code: u16, took: Duration) {
        self.http_requests.get_or_create(&[("handler", handler.into()), ("code", code.to_string())]).inc();
        self.http_duration.get_or_create(&[("handler", handler.into())]).observe(took.as_secs_f64());
    }

    pub fn query_done(&self, endpoint: &'static str, took: Duration) {
        self.query_duration.get_or_create(&[("endpoint", endpoint.into())]).observe(took.as_secs_f64());
    }

    pub fn samples_written(
        &self,
        protocol: &'static str,
        stored: usize,
        duplicates: usize,
        r: &super::ingest::Rejections,
    ) {
        self.samples_stored.get_or_create(&[("protocol", protocol.into())]).inc_by(stored as u64);
        self.samples_duplicate.get_or_create(&[("protocol", protocol.into())]).inc_by(duplicates as u64);
        for (reason, n) in r.counts() {
            self.samples_rejected
                .get_or_create(&[("protocol", protocol.into()), ("reason", reason.label().into())])
                .inc_by(n as u64);
        }
    }

    pub fn write_failed(&self, protocol: &'static str, code: u16) {
        self.writes_failed.get_or_create(&[("protocol", protocol.into()), ("code", code.to_string())]).inc();
    }

    pub fn overloaded(&self, what: &'static str) {
        self.overloaded.get_or_create(&[("slots", what.into())]).inc();
    }
}

/// The handler label: the route pattern, which is bounded (unmatched paths are "other").
pub fn handler_name(route: &str) -> &'static str {
    const ROUTES: [&str; 18] = [
        "/api/v1/write",
        "/write",
        "/api/v2/write",
        "/api/v1/import/prometheus",
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/series",
        "/api/v1/labels",
        "/api/v1/label/{name}/values",
        "/api/v1/metadata",
        "/api/v1/query_exemplars",
        "/api/v1/rules",
        "/api/v1/status/buildinfo",
        "/metrics",
        "/ping",
        "/-/healthy",
        "/-/ready",
        "other",
    ];
    ROUTES.iter().find(|r| **r == route).copied().unwrap_or("other")
}

pub async fn handler(State(st): State<Shared>) -> Response {
    let mut out = String::new();
    match prometheus_client::encoding::prometheus_text::encode(&mut out, &st.metrics.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics failed: {e}\n")).into_response(),
    }
}

/// Reads `Db::stats()` at scrape time.
#[derive(Debug)]
struct EngineCollector(Weak<AppState>);

impl Collector for EngineCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), FmtError> {
        let Some(st) = self.0.upgrade() else { return Ok(()) };
        let db = st.db.read().clone();
        let ready = db.is_some() && !st.draining.load(std::sync::atomic::Ordering::Relaxed);
        gauge_one(
            &mut enc,
            "chronolith_ready",
            "1 once the database is open and no shutdown is under way",
            u64::from(ready),
        )?;
        cache_figures(&mut enc, &st)?;
        let Some(db) = db else { return Ok(()) };
        let s = db.stats();
        let e = &s.engine;
        counter(
            &mut enc,
            "chronolith_samples_appended",
            "Samples stored by the engine since open (replay excluded)",
            e.samples_appended,
        )?;
        counter(
            &mut enc,
            "chronolith_samples_duplicates_dropped",
            "Exact duplicates accepted and dropped",
            e.duplicates_dropped,
        )?;
        let rej = &e.rejected;
        labelled_counter(
            &mut enc,
            "chronolith_samples_rejected",
            "Samples the engine refused, by reason",
            "reason",
            &[
                ("out_of_bounds", rej.out_of_bounds),
                ("duplicate_timestamp", rej.duplicate_timestamp),
                ("unknown_series", rej.unknown_series),
                ("invalid_labels", rej.invalid_labels),
                ("series_limit", rej.series_limit),
            ],
        )?;
        counter(
            &mut enc,
            "chronolith_appends_overloaded",
            "Appends refused with Overloaded (head memory full)",
            e.overloaded,
        )?;
        gauge_one(
            &mut enc,
            "chronolith_wal_replayed_samples",
            "Samples replayed from the WAL by the last open",
            e.samples_replayed,
        )?;
        gauge_one(
            &mut enc,
            "chronolith_open_duration_seconds",
            "How long the last open took",
            e.open_micros as f64 / 1e6,
        )?;
        counter(&mut enc, "chronolith_wal_written_bytes", "Bytes written to the sample WAL", e.wal_bytes_written)?;
        counter(&mut enc, "chronolith_wal_fsyncs", "fsync calls on the sample WAL", e.wal_fsyncs)?;
        float_counter(
            &mut enc,
            "chronolith_wal_fsync_duration_seconds",
            "Time spent in WAL fsync (divide by chronolith_wal_fsyncs_total for the mean)",
            e.wal_fsync_nanos_total as f64 / 1e9,
        )?;
        gauge_one(
            &mut enc,
            "chronolith_wal_fsync_duration_max_seconds",
            "Slowest WAL fsync since open",
            e.wal_fsync_nanos_max as f64 / 1e9,
        )?;
        gauge_one(
            &mut enc,
            "chronolith_wal_disk_bytes",
            "Bytes of WAL segments on disk (samples and series)",
            e.wal_disk_bytes,
        )?;
        gauge_one(&mut enc, "chronolith_wal_segments", "Sample WAL segments on disk", e.wal_segments)?;
        gauge_one(&mut enc, "chronolith_series", "Series known to the database", e.series)?;
        gauge_one(&mut enc, "chronolith_head_series", "Series with samples in the in-memory head", e.head_series)?;
        gauge_one(&mut enc, "chronolith_head_samples", "Samples in the in-memory head", e.head_samples)?;
        gauge_one(&mut enc, "chronolith_head_bytes", "Memory held by the head's chunks", e.head_bytes)?;
        counter(&mut enc, "chronolith_seals", "Partitions sealed from the head into blocks", e.seals)?;
        block_figures(&mut enc, &db)?;
        compaction_figures(&mut enc, &s.compaction)?;
        super::metrics_forward::forward_figures(&mut enc, &s.forward)?;
        Ok(())
    }
}

fn cache_figures(enc: &mut DescriptorEncoder, st: &AppState) -> Result<(), FmtError> {
    let c = &st.caches;
    let caches = [("remote_write", &c.remote_write), ("influx", &c.influx), ("prometheus_text", &c.prometheus_text)];
    let load = |f: &dyn Fn(&super::series_cache::SeriesCache) -> u64| -> Vec<(&'static str, u64)> {
        caches.iter().map(|(n, c)| (*n, f(c))).collect()
    };
    use std::sync::atomic::Ordering::Relaxed;
    labelled_counter(
        enc,
        "chronolith_series_cache_hits",
        "Series found in the label-bytes cache",
        "protocol",
        &load(&|c| c.hits.load(Relaxed)),
    )?;
    labelled_counter(
        enc,
        "chronolith_series_cache_misses",
        "Series not in the label-bytes cache",
        "protocol",
        &load(&|c| c.misses.load(Relaxed)),
    )?;
    let bytes: Vec<(&str, u64)> = caches.iter().map(|(n, c)| (*n, c.bytes() as u64)).collect();
    let mut m = enc.encode_descriptor(
        "chronolith_series_cache_bytes",
        "Memory of the label-bytes cache",
        None,
        MetricType::Gauge,
    )?;
    for (n, v) in bytes {
        m.encode_family(&[("protocol", n)])?.encode_gauge(&v)?;
    }
    Ok(())
}

fn block_figures(enc: &mut DescriptorEncoder, db: &chronolith::Db) -> Result<(), FmtError> {
    // Per tier: raw blocks and each rollup resolution.
    let mut tiers: BTreeMap<u64, (u64, u64, u64)> = BTreeMap::new();
    tiers.entry(0).or_default();
    for b in db.engine().blocks().snapshot().iter() {
        let t = tiers.entry(b.meta().resolution_ms).or_default();
        t.0 += 1;
        t.1 += b.disk_bytes();
        t.2 += b.meta().samples;
    }
    let name = |res: u64| if res == 0 { "raw".to_string() } else { crate::timeparse::format_duration(res as i64) };
    let rows: Vec<(String, (u64, u64, u64))> = tiers.into_iter().map(|(r, v)| (name(r), v)).collect();
    for (metric, help, pick) in [
        ("chronolith_blocks", "Sealed blocks, by tier (raw or rollup resolution)", 0),
        ("chronolith_block_bytes", "Bytes of sealed blocks on disk, by tier", 1),
        ("chronolith_block_samples", "Samples (raw) or buckets (rollups) in sealed blocks, by tier", 2),
    ] {
        let mut m = enc.encode_descriptor(metric, help, None, MetricType::Gauge)?;
        for (tier, v) in &rows {
            let x = [v.0, v.1, v.2][pick];
            m.encode_family(&[("tier", tier.as_str())])?.encode_gauge(&x)?;
        }
    }
    Ok(())
}

fn compaction_figures(enc: &mut DescriptorEncoder, c: &chronolith::CompactionStatus) -> Result<(), FmtError> {
    use chronolith::JobKind;
    let kinds = [JobKind::Merge, JobKind::Downsample, JobKind::Retention];
    let per = |f: &dyn Fn(&chronolith::JobStats) -> u64| -> Vec<(&'static str, u64)> {
        kinds.iter().map(|k| (k.name(), f(c.job(*k)))).collect()
    };
    labelled_counter(enc, "chronolith_compaction_jobs", "Compaction jobs run, by kind", "kind", &per(&|j| j.runs))?;
    labelled_counter(
        enc,
        "chronolith_compaction_failures",
        "Compaction jobs that failed, by kind",
        "kind",
        &per(&|j| j.failures),
    )?;
    labelled_counter(
        enc,
        "chronolith_compaction_read_bytes",
        "Bytes of blocks read (merge, downsample) or dropped (retention)",
        "kind",
        &per(&|j| j.bytes_in),
    )?;
    labelled_counter(
        enc,
        "chronolith_compaction_written_bytes",
        "Bytes of blocks written, by kind",
        "kind",
        &per(&|j| j.bytes_out),
    )?;
    labelled_counter(
        enc,
        "chronolith_compaction_partitions_dropped",
        "Blocks removed from the set (merge inputs, expired)",
        "kind",
        &per(&|j| j.partitions_dropped),
    )?;
    let mut m = enc.encode_descriptor(
        "chronolith_compaction_last_duration_seconds",
        "Duration of the last job, by kind",
        None,
        MetricType::Gauge,
    )?;
    for k in kinds {
        m.encode_family(&[("kind", k.name())])?.encode_gauge(&c.job(k).last_duration.as_secs_f64())?;
    }
    let mut m = enc.encode_descriptor(
        "chronolith_compaction_busy_seconds",
        "Time spent in jobs, by kind",
        None,
        MetricType::Counter,
    )?;
    for k in kinds {
        m.encode_family(&[("kind", k.name())])?
            .encode_counter::<NoLabelSet, _, f64>(&c.job(k).busy.as_secs_f64(), None)?;
    }
    let mut m = enc.encode_descriptor(
        "chronolith_compaction_last_success_timestamp_seconds",
        "Clock time of the last successful job, by kind (0: none yet)",
        None,
        MetricType::Gauge,
    )?;
    for k in kinds {
        let t = c.job(k).last_success_ms.map_or(0.0, |ms| ms as f64 / 1e3);
        m.encode_family(&[("kind", k.name())])?.encode_gauge(&t)?;
    }
    counter(enc, "chronolith_compaction_passes", "Compaction worker passes", c.passes)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Result<(), FmtError> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    encode_counter(m, v)
}

fn encode_counter(mut m: MetricEncoder, v: u64) -> Result<(), FmtError> {
    m.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn float_counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Result<(), FmtError> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    m.encode_counter::<NoLabelSet, _, f64>(&v, None)
}

fn labelled_counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    rows: &[(&str, u64)],
) -> Result<(), FmtError> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, v) in rows {
        encode_counter(m.encode_family(&[(label, *value)])?, *v)?;
    }
    Ok(())
}

fn gauge_one(enc: &mut DescriptorEncoder, name: &str, help: &str, v: impl EncodeGaugeValue) -> Result<(), FmtError> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    m.encode_gauge(&v)
}

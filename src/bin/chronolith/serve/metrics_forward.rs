//! `/metrics` figures of the remote-write forwarder, one label set per target
//! (`target="<name>"`), from `Db::stats().forward`.

use chronolith::forward::{TargetStats, LATENCY_BUCKETS_SECONDS};
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use std::fmt::Error as FmtError;

/// One figure: metric name, help text, and how to read it from a target's stats.
type Figure<T> = (&'static str, &'static str, fn(&TargetStats) -> T);

pub(super) fn forward_figures(enc: &mut DescriptorEncoder, targets: &[TargetStats]) -> Result<(), FmtError> {
    if targets.is_empty() {
        return Ok(());
    }
    let counters: [Figure<u64>; 9] = [
        ("chronolith_forward_samples_sent", "Samples the receiver confirmed", |t| t.samples_sent),
        ("chronolith_forward_samples_failed", "Samples the receiver refused for good (4xx other than 429)", |t| {
            t.samples_failed
        }),
        ("chronolith_forward_samples_retried", "Samples in attempts that failed and were retried", |t| {
            t.samples_retried
        }),
        (
            "chronolith_forward_samples_dropped",
            "Samples never sent: the backlog passed its bound, or their WAL was gone",
            |t| t.samples_dropped,
        ),
        ("chronolith_forward_samples_filtered", "Samples of series the target's filters leave out", |t| {
            t.samples_filtered
        }),
        ("chronolith_forward_requests_sent", "Requests the receiver confirmed", |t| t.requests_sent),
        ("chronolith_forward_requests_failed", "Requests refused for good", |t| t.requests_failed),
        ("chronolith_forward_requests_retried", "Requests retried (5xx, 429, network errors)", |t| t.requests_retried),
        ("chronolith_forward_backlog_drops", "Times the backlog bound dropped data (also logged)", |t| t.drops),
    ];
    for (name, help, get) in counters {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for t in targets {
            m.encode_family(&[("target", t.name.as_str())])?.encode_counter::<NoLabelSet, _, u64>(&get(t), None)?;
        }
    }
    let gauges: [Figure<f64>; 5] = [
        ("chronolith_forward_backlog_bytes", "WAL bytes from the confirmed position to the end of the log", |t| {
            t.backlog_bytes as f64
        }),
        (
            "chronolith_forward_backlog_age_seconds",
            "Newest sample held minus newest sample confirmed (data time)",
            |t| t.backlog_age_ms as f64 / 1e3,
        ),
        (
            "chronolith_forward_last_success_timestamp_seconds",
            "Unix time of the last confirmed request (0: none)",
            |t| t.last_success_ms.map_or(0.0, |ms| ms as f64 / 1e3),
        ),
        ("chronolith_forward_breaker_open", "1 while the target's circuit breaker is not closed", |t| {
            f64::from(u8::from(!matches!(t.breaker, chronolith::forward::BreakerState::Closed)))
        }),
        ("chronolith_forward_breaker_opened", "Times the circuit breaker opened", |t| t.breaker_opened as f64),
    ];
    for (name, help, get) in gauges {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for t in targets {
            m.encode_family(&[("target", t.name.as_str())])?.encode_gauge(&get(t))?;
        }
    }
    let mut m = enc.encode_descriptor(
        "chronolith_forward_request_duration_seconds",
        "Remote-write request latency, every attempt",
        None,
        MetricType::Histogram,
    )?;
    for t in targets {
        let l = &t.request_latency;
        // The stats keep cumulative counts; the encoder wants each bucket's own.
        let mut buckets: Vec<(f64, u64)> = Vec::with_capacity(LATENCY_BUCKETS_SECONDS.len() + 1);
        let mut below = 0;
        for (le, cum) in LATENCY_BUCKETS_SECONDS.iter().zip(l.buckets) {
            buckets.push((*le, cum.saturating_sub(below)));
            below = cum;
        }
        buckets.push((f64::INFINITY, l.count.saturating_sub(below)));
        m.encode_family(&[("target", t.name.as_str())])?.encode_histogram::<NoLabelSet>(
            l.sum_seconds,
            l.count,
            &buckets,
            None,
        )?;
    }
    Ok(())
}

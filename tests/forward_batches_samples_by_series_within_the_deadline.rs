//! The sender groups samples by series over many appends: each request carries every
//! series at most once, with several samples in time order, never more samples than
//! `max_samples_per_request`, and a series' samples arrive in time order across
//! requests. A batch that does not fill up waits for `batch_send_deadline`, not longer
//! than that (within a loose bound) and never less.
#![cfg(feature = "forward")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod forward_common;

use chronolith::forward::RemoteWriteConfig;
use chronolith::{Batch, Db, Durability, Labels, Matcher, Options};
use forward_common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per request, in arrival order: when it arrived and, per series, its timestamps.
type Requests = Arc<Mutex<Vec<(Instant, Vec<(String, Vec<i64>)>)>>>;

#[test]
fn forward_batches_samples_by_series_within_the_deadline() {
    let requests: Requests = Arc::default();
    let r = requests.clone();
    let rx = FakeReceiver::start(Arc::new(move |req| {
        let series = req
            .timeseries
            .iter()
            .map(|ts| {
                let name = ts.labels.iter().map(|l| format!("{}={}", l.name, l.value)).collect::<Vec<_>>().join(",");
                (name, ts.samples.iter().map(|s| s.timestamp).collect())
            })
            .collect();
        r.lock().unwrap().push((Instant::now(), series));
        (204, Vec::new(), String::new())
    }));
    let mut cfg = RemoteWriteConfig::new(rx.url());
    cfg.shards = 2;
    cfg.max_samples_per_request = 600;
    cfg.batch_send_deadline_ms = 400;
    let tmp = tempfile::tempdir().unwrap();
    // No fsync per append: the appends come quickly, as a busy collector's do.
    let opts = Options { durability: Durability::Never, ..Options::default() };
    let db = Db::open_with_remote_write(tmp.path(), opts, vec![cfg]).unwrap();

    // 30 series, one sample each per append, 200 appends.
    let t0 = 1_700_000_000_000;
    let labels: Vec<Labels> = (0..30).map(|k| Labels::metric("fwd_grouped", [("k", k.to_string())]).unwrap()).collect();
    let mut b = Batch::new();
    for step in 0..200i64 {
        b.clear();
        for l in &labels {
            b.add_labels(l.clone(), t0 + step * 1_000, step as f64 * 0.5);
        }
        db.append(&b).unwrap();
    }
    let total = 30 * 200;
    assert!(wait_until(Duration::from_secs(30), || db.stats().forward[0].samples_sent >= total));
    let st = db.stats().forward[0].clone();
    assert_eq!(st.samples_sent, total);
    assert!(
        st.samples_sent >= 5 * st.timeseries_sent,
        "a series' samples share its labels: {} samples in {} TimeSeries",
        st.samples_sent,
        st.timeseries_sent
    );

    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for (_, series) in requests.lock().unwrap().iter() {
        let names: BTreeSet<&String> = series.iter().map(|s| &s.0).collect();
        assert_eq!(names.len(), series.len(), "a series appears once per request");
        let samples: usize = series.iter().map(|s| s.1.len()).sum();
        assert!(samples <= 600, "{samples} samples in a request");
        for (name, ts) in series {
            assert!(ts.windows(2).all(|w| w[0] < w[1]), "{name}: {ts:?} out of order within a request");
            let prev = last.insert(name.clone(), *ts.last().unwrap());
            assert!(prev.is_none_or(|p| p < ts[0]), "{name}: {prev:?} then {} across requests", ts[0]);
        }
    }
    assert_eq!(rx.held(), chronolith_held(&db, &[Matcher::metric("fwd_grouped")], &[]), "exactly what was appended");

    // One small append: it waits for the deadline, then goes.
    let before = requests.lock().unwrap().len();
    b.clear();
    b.add_labels(labels[0].clone(), t0 + 200_000, 1.0);
    db.append(&b).unwrap();
    let appended = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || db.stats().forward[0].samples_sent > total));
    let arrived = requests.lock().unwrap()[before].0;
    let waited = arrived - appended;
    assert!(waited >= Duration::from_millis(400), "sent after {waited:?}, before the deadline");
    db.close().unwrap();
}

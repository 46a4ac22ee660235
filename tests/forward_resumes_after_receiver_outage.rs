//! The receiver (a real VictoriaMetrics) goes away while Chronolith keeps ingesting, and a
//! seal runs meanwhile (which, without the forwarder's WAL hold, would remove the WAL
//! segments not yet sent). When it comes back on the same port and data, everything
//! arrives. Retries are counted, the circuit breaker opened, and local ingest never
//! failed.
#![cfg(feature = "forward")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod forward_common;

use chronolith::forward::{BreakerState, RemoteWriteConfig};
use chronolith::{Batch, Db, Labels, Matcher, Options};
use forward_common::*;
use std::time::{Duration, Instant};

const TEST: &str = "forward_resumes_after_receiver_outage";

fn ingest(db: &Db, t0: i64, steps: std::ops::Range<i64>) -> u64 {
    let mut b = Batch::new();
    let mut n = 0;
    for step in steps {
        b.clear();
        for k in 0..20 {
            let l = Labels::metric("fwd_outage", [("k", k.to_string())]).unwrap();
            b.add_labels(l, t0 + step * 1_000, ((k * 31 + step) % 1000) as f64 / 4.0);
        }
        let started = Instant::now();
        n += db.append(&b).unwrap().stored as u64;
        assert!(started.elapsed() < Duration::from_secs(2), "local ingest waited on the receiver");
    }
    n
}

#[test]
fn forward_resumes_after_receiver_outage() {
    let Some(bin) = binary_or_skip(VM_BIN, TEST) else { return };
    capture_logs();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let vm_data = tmp.path().join("vm");
    let mut vm = start_victoria_metrics(&bin, &vm_data, port);
    let mut cfg = RemoteWriteConfig::new(vm.url("/api/v1/write"));
    cfg.breaker_failures = 3;
    cfg.breaker_probe_interval_ms = 300;
    cfg.max_backoff_ms = 200;
    cfg.timeout_ms = 2_000;
    let opts = Options { wal_segment_bytes_max: 64 << 10, ..Options::default() };
    let db = Db::open_with_remote_write(tmp.path().join("db"), opts, vec![cfg]).unwrap();

    let t0 = now_ms() - 40 * 60_000;
    let mut total = ingest(&db, t0, 0..100);
    assert!(wait_until(Duration::from_secs(30), || db.stats().forward[0].samples_sent == total));

    vm.stop_gracefully();
    total += ingest(&db, t0, 100..1_100);
    // Seal everything: the sealed WAL segments stay because the target holds them.
    db.seal().unwrap();
    let st = db.stats();
    assert!(st.engine.wal_segments > 2, "WAL kept for the target: {} segments", st.engine.wal_segments);
    assert!(wait_until(Duration::from_secs(10), || db.stats().forward[0].breaker == BreakerState::Open));
    std::thread::sleep(Duration::from_millis(500));
    let during = db.stats().forward[0].clone();
    assert!(during.samples_sent < total);
    assert!(during.requests_retried >= 3 && during.breaker_opened >= 1, "{during:?}");
    assert!(during.backlog_bytes > 0, "{during:?}");

    let vm = start_victoria_metrics(&bin, &vm_data, port);
    let done = wait_until(Duration::from_secs(60), || db.stats().forward[0].samples_sent >= total);
    let after = db.stats().forward[0].clone();
    assert!(done, "sent {} of {total} after the receiver came back: {after:?}", after.samples_sent);
    assert_eq!((after.samples_failed, after.samples_dropped), (0, 0));
    assert_eq!(after.breaker, BreakerState::Closed);
    // Confirmed segments are released: the WAL shrinks back to what the seal left.
    assert!(wait_until(Duration::from_secs(10), || db.stats().engine.wal_segments <= 2), "{:?}", db.stats().engine);

    let got = victoria_metrics_export(&vm, "{__name__=\"fwd_outage\"}");
    let want = chronolith_held(&db, &[Matcher::metric("fwd_outage")], &[]);
    assert_eq!(want.values().map(Vec::len).sum::<usize>() as u64, total);
    for (labels, samples) in &want {
        let mut g = got.get(labels).cloned().unwrap_or_default();
        g.dedup();
        let first_diff = g.iter().zip(samples).position(|(a, b)| a != b);
        assert!(
            &g == samples,
            "{labels:?}: VictoriaMetrics holds {} samples, Chronolith {}; first difference at {first_diff:?}",
            g.len(),
            samples.len()
        );
    }
    assert!(logged().iter().any(|l| l.contains("circuit breaker open")), "{:?}", logged());
    db.close().unwrap();
}

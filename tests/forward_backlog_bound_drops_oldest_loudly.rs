//! The receiver is down (answers 503) while more than the target's backlog bound is
//! ingested: the oldest whole WAL segments are dropped for that target, counted in
//! `samples_dropped` and logged at error level; local ingest never waits and the WAL stays
//! bounded. When the receiver recovers, the newest data arrives, and every forwarded
//! sample is either sent or counted as dropped — the dropped ones are the oldest.
#![cfg(feature = "forward")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod forward_common;

use chronolith::forward::RemoteWriteConfig;
use chronolith::{Batch, Db, Durability, Labels, Options};
use forward_common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn forward_backlog_bound_drops_oldest_loudly() {
    capture_logs();
    let up = Arc::new(AtomicBool::new(false));
    let u = up.clone();
    let rx = FakeReceiver::start(Arc::new(move |_| {
        if u.load(Ordering::Relaxed) {
            (200, Vec::new(), String::new())
        } else {
            (503, Vec::new(), "ingesters unavailable".into())
        }
    }));
    let mut cfg = RemoteWriteConfig::new(rx.url());
    cfg.backlog_bytes_max = 256 << 10;
    cfg.max_backoff_ms = 50;
    cfg.breaker_probe_interval_ms = 50;
    let tmp = tempfile::tempdir().unwrap();
    // No fsync per append: this test is about the forwarder, not durability.
    let opts = Options { wal_segment_bytes_max: 64 << 10, durability: Durability::Never, ..Options::default() };
    let db = Db::open_with_remote_write(tmp.path(), opts, vec![cfg]).unwrap();

    // About 2 MB of WAL: raw (non-decimal) values, 100 series.
    let t0 = 1_700_000_000_000;
    let mut b = Batch::new();
    let mut total = 0u64;
    for step in 0..1_500i64 {
        b.clear();
        for k in 0..100 {
            let v = f64::from_bits(0x4000_0000_0000_0000 ^ ((k * 7_919 + step * 104_729) as u64));
            b.add_labels(Labels::metric("fwd_backlog", [("k", k.to_string())]).unwrap(), t0 + step * 1_000, v);
        }
        total += db.append(&b).unwrap().stored as u64;
    }
    assert!(db.stats().engine.wal_bytes_written > 1 << 20);
    // The two counters are bumped one after the other: wait for both.
    let dropped = wait_until(Duration::from_secs(20), || {
        let st = &db.stats().forward[0];
        st.samples_dropped > 0 && st.drops >= 1
    });
    let st = db.stats().forward[0].clone();
    assert!(dropped && st.drops >= 1, "{st:?}");
    let bounded =
        wait_until(Duration::from_secs(10), || db.stats().forward[0].backlog_bytes <= (256 << 10) + (64 << 10) * 2);
    assert!(bounded, "backlog bounded: {:?}", db.stats().forward[0]);
    assert!(
        logged().iter().any(|l| l.starts_with("ERROR") && l.contains("backlog over its bound")),
        "the drop is logged: {:?}",
        logged()
    );
    // Unsealed data keeps its WAL whatever the target does; once sealed, the WAL shrinks to
    // what the target still holds: its bound, a segment of slack and the current one.
    db.seal().unwrap();
    let wal = db.stats().engine.wal_disk_bytes;
    assert!(wal < 700 << 10, "WAL {wal} bytes after the seal");

    up.store(true, Ordering::Relaxed);
    let done = wait_until(Duration::from_secs(30), || {
        let f = &db.stats().forward[0];
        f.samples_sent + f.samples_dropped >= total
    });
    let st = db.stats().forward[0].clone();
    assert!(done, "{st:?}");
    assert_eq!(st.samples_sent + st.samples_dropped, total, "every sample sent or counted as dropped: {st:?}");
    let held = rx.held();
    let received: usize = held.values().map(Vec::len).sum();
    assert_eq!(received as u64, st.samples_sent);
    // What arrived is the newest part: each series' samples are a suffix of its history.
    for (labels, samples) in &held {
        let first = samples[0].0;
        let n = ((t0 + 1_499_000 - first) / 1_000 + 1) as usize;
        assert_eq!(samples.len(), n, "{labels:?}: holes in what arrived");
    }
    db.close().unwrap();
}

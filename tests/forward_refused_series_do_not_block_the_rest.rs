//! A receiver that refuses (HTTP 400) every request holding one poisoned series, as
//! Prometheus refuses a whole request for one out-of-order sample: the refused series is
//! counted as failed and logged with the receiver's reason, never retried as is, and every
//! other series still arrives, bit for bit. The same receiver first answers 429 with
//! `Retry-After: 1`: the sender waits at least that long and then delivers.
#![cfg(feature = "forward")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod forward_common;

use chronolith::forward::RemoteWriteConfig;
use chronolith::{Batch, Db, Labels, MatchOp, Matcher, Options};
use forward_common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn forward_refused_series_do_not_block_the_rest() {
    capture_logs();
    let throttled = Arc::new(AtomicU64::new(0));
    let t = throttled.clone();
    let rx = FakeReceiver::start(Arc::new(move |req| {
        if t.fetch_add(1, Ordering::Relaxed) < 2 {
            return (429, vec![("Retry-After".into(), "1".into())], "slow down".into());
        }
        let poisoned = req.timeseries.iter().any(|ts| ts.labels.iter().any(|l| l.name == "poison"));
        if poisoned {
            (400, Vec::new(), "out of order sample for series with poison label".into())
        } else {
            (204, Vec::new(), String::new())
        }
    }));
    let mut cfg = RemoteWriteConfig::new(rx.url());
    cfg.shards = 2;
    cfg.max_samples_per_request = 300;
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let db = Db::open_with_remote_write(tmp.path(), Options::default(), vec![cfg]).unwrap();

    let t0 = 1_700_000_000_000;
    let mut b = Batch::new();
    let mut poisoned = 0u64;
    let mut total = 0u64;
    for step in 0..50i64 {
        b.clear();
        for k in 0..40 {
            let mut pairs = vec![("k", k.to_string())];
            if k % 13 == 5 {
                pairs.push(("poison", "yes".to_owned()));
                poisoned += 1;
            }
            b.add_labels(Labels::metric("fwd_refused", pairs).unwrap(), t0 + step * 1_000, (k * step) as f64 + 0.25);
            total += 1;
        }
        db.append(&b).unwrap();
    }
    let done = wait_until(Duration::from_secs(30), || {
        let f = &db.stats().forward[0];
        f.samples_sent + f.samples_failed >= total
    });
    let st = db.stats().forward[0].clone();
    assert!(done, "{st:?}");
    assert_eq!(st.samples_failed, poisoned, "exactly the poisoned series' samples fail");
    assert_eq!(st.samples_sent, total - poisoned);
    assert!(st.requests_retried >= 2 && st.samples_retried > 0, "the 429s were retried: {st:?}");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    assert!(st.last_error.as_deref().is_some_and(|e| e.contains("poison")), "{:?}", st.last_error);

    let want = chronolith_held(&db, &[Matcher::new("poison", MatchOp::Equal, "").unwrap()], &[]);
    assert_eq!(want.len(), 40 - 3);
    assert_eq!(rx.held(), want, "every series but the poisoned ones arrived, exactly once");
    let refusals = logged().iter().filter(|l| l.contains("refused (HTTP 400)") && l.contains("poison")).count();
    assert!(refusals >= 1, "refusals are logged with the reason: {:?}", logged());
    db.close().unwrap();
}

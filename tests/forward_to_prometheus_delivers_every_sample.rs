//! Ingest into Chronolith with a remote-write target at a real Prometheus (its
//! remote-write receiver): Prometheus ends up holding exactly the samples Chronolith holds,
//! bit for bit (NaN and awkward floats included), read back through its query API.
#![cfg(feature = "forward")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod forward_common;

use chronolith::forward::RemoteWriteConfig;
use chronolith::{Batch, Db, Labels, Options};
use forward_common::*;
use std::time::Duration;

const TEST: &str = "forward_to_prometheus_delivers_every_sample";

#[test]
fn forward_to_prometheus_delivers_every_sample() {
    let Some(bin) = binary_or_skip(PROM_BIN, TEST) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let prom = start_prometheus(&bin, tmp.path(), free_port());
    let mut cfg = RemoteWriteConfig::new(prom.url("/api/v1/write"));
    cfg.extra_labels = vec![("replica".into(), "p1".into())];
    cfg.max_samples_per_request = 700;
    let db = Db::open_with_remote_write(tmp.path().join("db"), Options::default(), vec![cfg]).unwrap();

    let t0 = now_ms() - 20 * 60_000;
    let values = [0.1 + 0.2, -1.5e-300, 1e300, f64::MIN_POSITIVE, 12_345.678_9, -0.0, 7.0];
    let mut b = Batch::new();
    let mut total = 0u64;
    for step in 0..150i64 {
        b.clear();
        for k in 0..40usize {
            let l = Labels::metric("fwd_prom", [("series", format!("s{k}")), ("zone", format!("z{}", k % 3))]).unwrap();
            let v = if (k + step as usize).is_multiple_of(13) {
                f64::NAN
            } else {
                values[(k + step as usize) % values.len()] * (k + 1) as f64
            };
            b.add_labels(l, t0 + step * 2_000, v);
        }
        total += db.append(&b).unwrap().stored as u64;
    }
    let done = wait_until(Duration::from_secs(60), || db.stats().forward[0].samples_sent >= total);
    let st = db.stats().forward[0].clone();
    assert!(done, "sent {} of {total}: {st:?}", st.samples_sent);
    assert_eq!((st.samples_sent, st.samples_failed, st.samples_dropped), (total, 0, 0));

    let want = chronolith_held(&db, &[chronolith::Matcher::metric("fwd_prom")], &[("replica", "p1")]);
    let got = prometheus_raw(&prom, "{__name__=\"fwd_prom\"}", t0 + 150 * 2_000, 3_600);
    assert_eq!(got.len(), 40);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (labels, samples) in &want {
        let g = &got[labels];
        let same = g.len() == samples.len()
            && g.iter().zip(samples).all(|(a, b)| {
                a.0 == b.0 && (a.1 == b.1 || (f64::from_bits(a.1).is_nan() && f64::from_bits(b.1).is_nan()))
            });
        assert!(
            same,
            "{labels:?}: Prometheus holds {} samples, Chronolith {}: first difference {:?}",
            g.len(),
            samples.len(),
            g.iter().zip(samples).find(|(a, b)| a != b)
        );
    }
    db.close().unwrap();
}

//! Ingest into Chronolith with a remote-write target at a real VictoriaMetrics: the
//! receiver ends up holding exactly the samples Chronolith holds for the forwarded series
//! (read back through VictoriaMetrics' own export API), with the extra label added and
//! the filtered-out series absent. Timestamps compare exactly; values to 12 significant
//! digits, because VictoriaMetrics stores floats as decimals of that precision (and -0 as
//! 0): `forward_to_prometheus_delivers_every_sample` compares bits.
#![cfg(feature = "forward")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod forward_common;

use chronolith::forward::RemoteWriteConfig;
use chronolith::{Batch, Db, Labels, Matcher, Options};
use forward_common::*;
use std::time::Duration;

const TEST: &str = "forward_to_victoria_metrics_delivers_every_sample";

#[test]
fn forward_to_victoria_metrics_delivers_every_sample() {
    let Some(bin) = binary_or_skip(VM_BIN, TEST) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let vm = start_victoria_metrics(&bin, &tmp.path().join("vm"), free_port());
    let cfg = RemoteWriteConfig::parse(&format!(
        "{};label=replica=r1;match={{__name__=~\"fwd_.+\", job!=\"skip\"}};shards=3;max_samples_per_request=500",
        vm.url("/api/v1/write")
    ))
    .unwrap();
    let db = Db::open_with_remote_write(tmp.path().join("db"), Options::default(), vec![cfg]).unwrap();

    // 60 series (10 of them filtered out by job="skip"), 200 points each, in batches that
    // mix series.
    let t0 = now_ms() - 30 * 60_000;
    let mut b = Batch::new();
    for step in 0..200i64 {
        b.clear();
        for k in 0..60 {
            let job = if k % 6 == 0 { "skip" } else { "node" };
            let l = Labels::metric(&format!("fwd_metric_{}", k % 4), [("job", job.to_owned()), ("k", k.to_string())])
                .unwrap();
            // Gauges of two decimals, as most are (VictoriaMetrics shares one decimal exponent
            // per block, so mixed magnitudes in one series would lose digits there).
            let v = ((k * 7_919 + step * 31) % 100_000 - 50_000) as f64 / 100.0;
            b.add_labels(l, t0 + step * 1_000, v);
        }
        assert_eq!(db.append(&b).unwrap().stored, 60);
    }
    // An unrelated metric the selector leaves out.
    b.clear();
    b.add_labels(Labels::metric("other_metric", [("job", "node")]).unwrap(), t0, 1.0);
    db.append(&b).unwrap();

    let forwarded = 50 * 200;
    let caught_up = wait_until(Duration::from_secs(60), || {
        let f = &db.stats().forward[0];
        f.samples_sent >= forwarded && f.samples_filtered > 10 * 200
    });
    let st = db.stats().forward[0].clone();
    assert!(caught_up, "sent {} of {forwarded}: {st:?}", st.samples_sent);
    assert_eq!(st.samples_sent, forwarded);
    assert_eq!(st.samples_failed, 0);
    assert_eq!(st.samples_dropped, 0);
    assert_eq!(st.samples_filtered, 10 * 200 + 1);
    assert!(st.requests_sent >= forwarded / 500, "requests bounded by max_samples_per_request");
    assert!(st.last_success_ms.is_some() && st.request_latency.count >= st.requests_sent);

    let want = chronolith_held(
        &db,
        &[
            Matcher::new("job", chronolith::MatchOp::NotEqual, "skip").unwrap(),
            Matcher::new("__name__", chronolith::MatchOp::RegexMatch, "fwd_.+").unwrap(),
        ],
        &[("replica", "r1")],
    );
    assert_eq!(want.len(), 50);
    let got = victoria_metrics_export(&vm, "{__name__=~\".+\"}");
    assert_eq!(got.len(), want.len(), "series in VictoriaMetrics: {:?}", got.keys().take(3).collect::<Vec<_>>());
    for (labels, samples) in &want {
        let g = got.get(labels).unwrap_or_else(|| panic!("{labels:?} missing in VictoriaMetrics"));
        let mut g = g.clone();
        g.dedup();
        assert_eq!(g.len(), samples.len(), "{labels:?}");
        for (a, b) in g.iter().zip(samples) {
            let (x, y) = (f64::from_bits(a.1), f64::from_bits(b.1));
            let close = x == y || (x - y).abs() <= 1e-11 * x.abs().max(y.abs());
            assert!(a.0 == b.0 && close, "{labels:?}: VictoriaMetrics has {a:?} = {x}, Chronolith {b:?} = {y}");
        }
    }
    db.close().unwrap();
}

//! `chronolith serve --remote-write URL`: what the server ingests (here InfluxDB line
//! protocol) reaches a real VictoriaMetrics, sample for sample, with the target's extra
//! label; `/metrics` reports the target; a bad target spec refuses to start. Skips loudly
//! only when `/usr/bin/victoria-metrics` is absent (`.ci/run` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "forward_common/mod.rs"]
mod forward_common;
mod serve_common;

use forward_common::{binary_or_skip, start_victoria_metrics, victoria_metrics_export, wait_until, VM_BIN};
use serve_common::{get, post, Server, BIN};
use std::time::Duration;

const TEST: &str = "serve_remote_write_forwards_to_victoria_metrics";

#[test]
fn serve_remote_write_forwards_to_victoria_metrics() {
    let Some(vm_bin) = binary_or_skip(VM_BIN, TEST) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let vm = start_victoria_metrics(&vm_bin, &tmp.path().join("vm"), forward_common::free_port());
    let target = format!("{};name=vm;label=replica=a", vm.url("/api/v1/write"));
    let server = Server::start(&tmp.path().join("data"), &["--remote-write", &target]);

    // 3 hosts x 2 fields x 200 points, one line per host and time, ms precision.
    let t0 = forward_common::now_ms() - 3_600_000;
    let mut body = String::new();
    for i in 0..200i64 {
        for h in 0..3 {
            body.push_str(&format!("cpu,host=h{h} user={}.25,system={}i {}\n", i + h, 2 * i, t0 + i * 10_000));
        }
    }
    let (code, text) = post(&server.url("/write?precision=ms"), &[], body.as_bytes());
    assert_eq!(code, 204, "{text}");

    let want: usize = 3 * 2 * 200;
    let arrived = wait_until(Duration::from_secs(30), || {
        let (_, m) = get(&server.url("/metrics"));
        m.lines().any(|l| {
            l.starts_with("chronolith_forward_samples_sent_total{target=\"vm\"}") && l.ends_with(&format!(" {want}"))
        })
    });
    assert!(arrived, "forwarded count on /metrics:\n{}", get(&server.url("/metrics")).1);
    let held = victoria_metrics_export(&vm, r#"{__name__=~"cpu_.*"}"#);
    assert_eq!(held.len(), 6, "{:?}", held.keys().collect::<Vec<_>>());
    for (labels, samples) in &held {
        assert!(labels.contains(&("replica".to_string(), "a".to_string())), "{labels:?}");
        assert_eq!(samples.len(), 200, "{labels:?}");
        let host: i64 = labels.iter().find(|(n, _)| n == "host").unwrap().1[1..].parse().unwrap();
        let user = labels.iter().any(|(n, v)| n == "__name__" && v == "cpu_user");
        for (i, (t, v)) in samples.iter().enumerate() {
            let i = i as i64;
            assert_eq!(*t, t0 + i * 10_000);
            let expect = if user { (i + host) as f64 + 0.25 } else { (2 * i) as f64 };
            assert_eq!(f64::from_bits(*v), expect, "{labels:?} at {t}");
        }
    }
    let (_, metrics) = get(&server.url("/metrics"));
    for name in [
        "chronolith_forward_backlog_bytes{target=\"vm\"}",
        "chronolith_forward_request_duration_seconds_count{target=\"vm\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(server.terminate().success());

    // A target that does not parse is a startup error naming the setting.
    let out = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--remote-write",
            "http://127.0.0.1:1/api/v1/write;shards=many",
            "--data-dir",
        ])
        .arg(tmp.path().join("other"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("shards"), "{stderr}");
    assert!(!stderr.contains("listening on"), "refused before listening: {stderr}");
}

//! `promtool query range` (Debian's Prometheus 2.42, client_golang's API client: POST
//! form, JSON decoding) against `chronolith serve` returns the values the data set
//! implies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_common;

use serve_common::*;
use std::process::Command;

const TEST: &str = "prometheus_promtool_queries_serve";

/// `promtool query range -o json` → (labels, points).
fn promtool_range(
    server: &Server,
    q: &str,
    start: i64,
    end: i64,
    step: &str,
) -> Vec<(serde_json::Value, Vec<(f64, f64)>)> {
    let out = Command::new("promtool")
        .args(["query", "range", "-o", "json"])
        .arg(format!("--start={start}"))
        .arg(format!("--end={end}"))
        .arg(format!("--step={step}"))
        .arg(format!("http://{}", server.addr))
        .arg(q)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "promtool {q}: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    // promtool prints the API answer's `result`.
    matrix(&serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": v}}))
}

#[test]
fn prometheus_promtool_queries_serve() {
    if !have_binary("promtool", TEST) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // 60 samples 10 s apart, 3 s past each 10 s mark, for pt{i="1"} (value k) and
    // pt{i="2"} (value 2k), in the last 20 minutes.
    let t0_s = now_ms() / 1000 / 60 * 60 - 1200;
    let samples = |i: i64| (0..60).map(|k| ((t0_s + 3 + k * 10) * 1000, (i * k) as f64)).collect::<Vec<_>>();
    let body = rw_body(vec![
        series(&[("__name__", "pt"), ("i", "1")], &samples(1)),
        series(&[("__name__", "pt"), ("i", "2")], &samples(2)),
    ]);
    assert_eq!(remote_write(&server, &body).0, 204);

    let (start, end) = (t0_s + 60, t0_s + 540);
    // At step t the newest sample is k = (t - t0 - 3) / 10, rounded down.
    let k_at = |t: i64| (t - t0_s - 3) / 10;
    let steps: Vec<i64> = (start..=end).step_by(60).collect();
    let expect = |f: &dyn Fn(i64) -> f64| steps.iter().map(|&t| (t as f64, f(k_at(t)))).collect::<Vec<_>>();

    let r = promtool_range(&server, "pt{i=\"2\"}", start, end, "1m");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, serde_json::json!({"__name__": "pt", "i": "2"}));
    assert_eq!(r[0].1, expect(&|k| 2.0 * k as f64));

    let r = promtool_range(&server, "sum(pt)", start, end, "1m");
    assert_eq!(r[0].0, serde_json::json!({}));
    assert_eq!(r[0].1, expect(&|k| 3.0 * k as f64));

    // Six samples per minute window: k-5..k, so the mean is k - 2.5.
    let r = promtool_range(&server, "avg_over_time(pt{i=\"1\"}[1m])", start, end, "60s");
    assert_eq!(r[0].0, serde_json::json!({"i": "1"}));
    assert_eq!(r[0].1, expect(&|k| k as f64 - 2.5));

    let r = promtool_range(&server, "max by (i) (max_over_time(pt[5m]))", start, end, "2m");
    assert_eq!(r.len(), 2);
    let steps2: Vec<i64> = (start..=end).step_by(120).collect();
    assert_eq!(r[1].1, steps2.iter().map(|&t| (t as f64, 2.0 * k_at(t) as f64)).collect::<Vec<_>>());

    // A bad query is reported by promtool, from our error answer.
    let out = Command::new("promtool")
        .args(["query", "range", &format!("--start={start}"), &format!("--end={end}"), "--step=1m"])
        .arg(format!("http://{}", server.addr))
        .arg("sum((")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad_data") || stderr.contains("parse error"), "{stderr}");
}

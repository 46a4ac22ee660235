//! One fixed data set loaded into a real Prometheus (Debian's 2.42, through `promtool
//! tsdb create-blocks-from openmetrics`) and into `chronolith serve` (through
//! `/api/v1/import/prometheus`): a list of PromQL range queries must give the same
//! series, timestamps and values from both.
//!
//! Prometheus 2.42 closes range windows on the left (`[t - r, t]`); Chronolith follows
//! Prometheus 3 (`(t - r, t]`). The two differ only for a sample exactly on a window's
//! left edge, so every sample here sits 7 s past a 15 s mark and every query's step,
//! start and window are whole minutes: no sample is ever on an edge (nor on the edge of
//! the 5-minute lookback of instant selectors), and both rules select the same samples.
//! (Without the 7 s offset the comparison does fail, first at `avg_over_time(g[5m])`:
//! the test can tell the two window rules apart.) Comparison operators (`>`) are outside
//! Chronolith's PromQL subset and not listed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_common;

use serve_common::*;
use std::fmt::Write;
use std::process::Command;

const TEST: &str = "prometheus_and_serve_agree_on_range_queries";
const HOSTS: usize = 4;
const POINTS: i64 = 480; // 2 h at 15 s
const QUERIES: &[&str] = &[
    "g",
    "g * 2 + 1",
    "-g",
    "sum(g)",
    "avg(g)",
    "max by (host) (g)",
    "min without (host) (g)",
    "count(g)",
    "quantile(0.9, g)",
    "topk(2, g)",
    "bottomk(1, g)",
    "avg_over_time(g[5m])",
    "max_over_time(g[5m])",
    "min_over_time(g[1m])",
    "sum_over_time(g[2m])",
    "count_over_time(g[5m])",
    "last_over_time(g[1m])",
    "stddev_over_time(g[10m])",
    "quantile_over_time(0.5, g[10m])",
    "changes(g[5m])",
    "delta(g[5m])",
    "deriv(g[10m])",
    "idelta(g[5m])",
    "rate(c_total[5m])",
    "increase(c_total[10m])",
    "irate(c_total[5m])",
    "resets(c_total[30m])",
    "sum by (host) (rate(c_total[1m]))",
    "sum(rate(c_total[5m])) / sum(g)",
    "rate(c_total[5m]) * on(host) g",
    "g or c_total",
    "g unless on(host) g{host=\"h0\"}",
    "max(max_over_time(g[1h]))",
    r#"label_replace(g, "h", "$1", "host", "h(.*)")"#,
    r#"max(label_replace(max_over_time(g{host="h0"}[1h]), "m", "g", "", "") or label_replace(max_over_time(c_total{host="h0"}[1h]), "m", "c", "", ""))"#,
];

/// The data set: per host a gauge random walk (2 decimals) and a counter that resets
/// once on h1, at `base + 7 s + 15 s k`.
fn data(base_s: i64) -> Vec<(String, Vec<(i64, f64)>)> {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut out = Vec::new();
    for h in 0..HOSTS {
        let (mut g, mut c) = (next(10_000) as i64, next(1_000_000) as f64);
        let (mut gs, mut cs) = (Vec::new(), Vec::new());
        for k in 0..POINTS {
            let t = (base_s + 7 + 15 * k) * 1000;
            g = (g + next(401) as i64 - 200).clamp(0, 10_000);
            gs.push((t, g as f64 / 100.0));
            c = if h == 1 && k == POINTS / 2 { next(100) as f64 } else { c + next(5000) as f64 };
            cs.push((t, c));
        }
        out.push((format!("g{{host=\"h{h}\"}}"), gs));
        out.push((format!("c_total{{host=\"h{h}\"}}"), cs));
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// `(labels as text, points)` sorted by labels.
fn answer(url: &str) -> Vec<(String, Vec<(f64, f64)>)> {
    let (status, v) = get_json(url);
    assert_eq!(status, 200, "{url}: {v}");
    let mut m: Vec<(String, Vec<(f64, f64)>)> = matrix(&v).into_iter().map(|(l, p)| (l.to_string(), p)).collect();
    m.sort_by(|a, b| a.0.cmp(&b.0));
    m
}

#[test]
fn prometheus_and_serve_agree_on_range_queries() {
    if !have_binary("prometheus", TEST) || !have_binary("promtool", TEST) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let base_s = now_ms() / 1000 / 3600 * 3600 - 3 * 3600;
    let set = data(base_s);

    // Prometheus: OpenMetrics (seconds), series by series, backfilled into blocks.
    let mut om = String::new();
    for (series, points) in &set {
        for (t, v) in points {
            let _ = writeln!(om, "{series} {v} {}", *t as f64 / 1000.0);
        }
    }
    om.push_str("# EOF\n");
    let om_path = work.path().join("data.om");
    std::fs::write(&om_path, &om).unwrap();
    let blocks = work.path().join("prometheus-data");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om_path)
        .arg(&blocks)
        .output()
        .unwrap();
    assert!(out.status.success(), "promtool: {}", String::from_utf8_lossy(&out.stderr));
    let prom = Prometheus::start(work.path(), "global: {scrape_interval: 1m}\n", &blocks);

    // Chronolith: Prometheus text (milliseconds), time by time.
    let server = Server::start(&work.path().join("chronolith"), &[]);
    let mut text = String::new();
    for k in 0..POINTS as usize {
        for (series, points) in &set {
            let _ = writeln!(text, "{series} {} {}", points[k].1, points[k].0);
        }
    }
    let (status, body) = post(&server.url("/api/v1/import/prometheus"), &[], text.as_bytes());
    assert_eq!((status, body.as_str()), (204, ""));

    let (start, end) = (base_s + 600, base_s + 2 * 3600);
    let mut compared = 0;
    for q in QUERIES {
        for step in [60, 300] {
            let args = format!("query={}&start={start}&end={end}&step={step}", percent_encode(q));
            let want = answer(&prom.url(&format!("/api/v1/query_range?{args}")));
            let got = answer(&server.url(&format!("/api/v1/query_range?{args}")));
            assert!(!want.is_empty(), "{q}: Prometheus has no answer (data not loaded?)\n{}", prom.log());
            let labels = |m: &[(String, Vec<(f64, f64)>)]| m.iter().map(|s| s.0.clone()).collect::<Vec<_>>();
            assert_eq!(labels(&got), labels(&want), "{q} step {step}: series differ");
            for ((l, g), (_, w)) in got.iter().zip(&want) {
                let ts = |p: &[(f64, f64)]| p.iter().map(|x| x.0).collect::<Vec<_>>();
                assert_eq!(ts(g), ts(w), "{q} step {step} {l}: timestamps differ");
                for (a, b) in g.iter().zip(w) {
                    assert!(close(a.1, b.1), "{q} step {step} {l} at {}: chronolith {} prometheus {}", a.0, a.1, b.1);
                }
                compared += g.len();
            }
        }
    }
    eprintln!("{} queries x 2 steps, {compared} points equal", QUERIES.len());
}

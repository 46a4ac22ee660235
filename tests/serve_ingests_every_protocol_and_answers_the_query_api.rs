//! Every endpoint of `chronolith serve` through the built binary: remote write, InfluxDB
//! line protocol (v1 and v2 paths, precisions, gzip), Prometheus text import, then the
//! query API (instant, range by GET and POST form, series, labels, label values,
//! buildinfo, scalar), /metrics, health and readiness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_common;

use serve_common::*;

#[test]
fn serve_ingests_every_protocol_and_answers_the_query_api() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // Whole minutes in the past, so step grids line up with the samples.
    let t0 = (now_ms() / 60_000 - 10) * 60_000;

    // Remote write: two series, three samples each, 10 s apart.
    let samples = |base: f64| (0..3).map(|i| (t0 + i * 10_000, base + i as f64)).collect::<Vec<_>>();
    let body = rw_body(vec![
        series(&[("__name__", "rw_metric"), ("host", "a")], &samples(1.0)),
        series(&[("__name__", "rw_metric"), ("host", "b")], &samples(10.0)),
    ]);
    assert_eq!(remote_write(&server, &body), (204, String::new()));
    // The same request again: exact duplicates, accepted (a retry is safe).
    assert_eq!(remote_write(&server, &body).0, 204);

    // InfluxDB line protocol, v1 path with seconds, v2 path gzipped with nanoseconds.
    let t0_s = t0 / 1000;
    let lines = format!("cpu,host=a usage_user=1,usage_system=2i {t0_s}\ncpu,host=a usage_user=3 {}\n", t0_s + 10);
    let (status, body) = post(&server.url("/write?db=x&precision=s"), &[], lines.as_bytes());
    assert_eq!((status, body.as_str()), (204, ""));
    let lines = format!("cpu,host=b usage_user=7 {}\n", t0 * 1_000_000);
    let (status, _) =
        post(&server.url("/api/v2/write?org=o&bucket=b"), &[("Content-Encoding", "gzip")], &gzip(lines.as_bytes()));
    assert_eq!(status, 204);
    assert_eq!(post(&server.url("/ping"), &[], b"").0, 405, "/ping is GET");
    assert_eq!(get(&server.url("/ping")).0, 204);

    // Prometheus text with millisecond timestamps, gzipped.
    let text = format!("# TYPE up gauge\nup{{job=\"node\"}} 1 {t0}\nup{{job=\"node\"}} 0 {}\n", t0 + 10_000);
    let (status, _) =
        post(&server.url("/api/v1/import/prometheus"), &[("Content-Encoding", "gzip")], &gzip(text.as_bytes()));
    assert_eq!(status, 204);

    // Instant query at t0 + 20 s: the newest sample of each series.
    let at = (t0 + 20_000) as f64 / 1000.0;
    let (status, v) = get_json(&server.url(&format!("/api/v1/query?query=rw_metric&time={at}")));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    assert_eq!(result[0]["metric"], serde_json::json!({"__name__": "rw_metric", "host": "a"}));
    assert_eq!(result[0]["value"][0].as_f64(), Some(at));
    assert_eq!(result[0]["value"][1], "3");
    assert_eq!(result[1]["value"][1], "12");

    // Range query by GET: max across hosts of the influx series.
    let start = t0 as f64 / 1000.0;
    let m = query_range(&server, "max(cpu_usage_user)", start, start + 10.0, 10.0);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].1, vec![(start, 7.0), (start + 10.0, 7.0)]);
    let m = query_range(&server, "cpu_usage_system", start, start, 1.0);
    assert_eq!(m[0].1, vec![(start, 2.0)], "integer field 2i");
    // The same by POST form, as promtool and Grafana send it.
    let mut r = agent()
        .post(&server.url("/api/v1/query_range"))
        .send_form([
            ("query", "sum by (job) (up)"),
            ("start", &start.to_string()),
            ("end", &(start + 10.0).to_string()),
            ("step", "10s"),
        ])
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let m = matrix(&v);
    assert_eq!(m[0].0, serde_json::json!({"job": "node"}));
    assert_eq!(m[0].1, vec![(start, 1.0), (start + 10.0, 0.0)]);

    // The queries the shared bench scripts send.
    let q = r#"max(label_replace(max_over_time(rw_metric[1m]), "m", "x", "", "") or label_replace(avg_over_time(cpu_usage_user[1m]), "m", "y", "", ""))"#;
    let m = query_range(&server, q, start + 20.0, start + 20.0, 60.0);
    assert_eq!(m[0].1, vec![(start + 20.0, 12.0)]);

    // A scalar (Grafana's health check).
    let (_, v) = get_json(&server.url("/api/v1/query?query=1%2B1&time=100"));
    assert_eq!(v["data"], serde_json::json!({"resultType": "scalar", "result": [100, "2"]}));

    // Series, labels, label values.
    let (_, v) = get_json(&server.url("/api/v1/series?match[]=rw_metric&match[]=up"));
    assert_eq!(v["data"].as_array().unwrap().len(), 3, "{v}");
    let (_, v) = get_json(&server.url("/api/v1/labels"));
    assert_eq!(v["data"], serde_json::json!(["__name__", "host", "job"]));
    let (_, v) = get_json(&server.url("/api/v1/labels?match[]=up"));
    assert_eq!(v["data"], serde_json::json!(["__name__", "job"]));
    let (_, v) = get_json(&server.url("/api/v1/label/__name__/values"));
    assert_eq!(v["data"], serde_json::json!(["cpu_usage_system", "cpu_usage_user", "rw_metric", "up"]));
    let (_, v) = get_json(&server.url("/api/v1/label/host/values?match[]=cpu_usage_user"));
    assert_eq!(v["data"], serde_json::json!(["a", "b"]));
    let (status, v) = get_json(&server.url("/api/v1/status/buildinfo"));
    assert_eq!(status, 200);
    assert!(v["data"]["version"].is_string());

    // /metrics names what happened.
    let (status, metrics) = get(&server.url("/metrics"));
    assert_eq!(status, 200);
    for want in [
        "chronolith_write_samples_stored_total{protocol=\"remote_write\"} 6",
        "chronolith_write_samples_duplicate_total{protocol=\"remote_write\"} 6",
        "chronolith_write_samples_stored_total{protocol=\"influx\"} 4",
        "chronolith_write_samples_stored_total{protocol=\"prometheus_text\"} 2",
        "chronolith_samples_appended_total 12",
        "chronolith_http_requests_total{handler=\"/api/v1/write\",code=\"204\"} 2",
        "chronolith_head_series 6",
        "chronolith_blocks{tier=\"raw\"} 0",
        "chronolith_compaction_jobs_total{kind=\"merge\"} 0",
        "chronolith_wal_fsyncs_total",
        "chronolith_query_duration_seconds_count{endpoint=\"query_range\"}",
        "chronolith_ready 1",
    ] {
        assert!(metrics.contains(want), "/metrics lacks {want:?}:\n{metrics}");
    }
    assert_eq!(get(&server.url("/-/healthy")).0, 200);
    assert_eq!(get(&server.url("/-/ready")).0, 200);
    assert_eq!(get(&server.url("/nope")).0, 404);
}

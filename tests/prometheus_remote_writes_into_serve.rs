//! A real Prometheus (Debian's 2.42) scrapes `chronolith serve`'s /metrics and itself,
//! and remote-writes what it scrapes into the same `chronolith serve`: the samples
//! arrive and answer queries, and the exposition Prometheus parsed is Chronolith's own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_common;

use serve_common::*;
use std::time::{Duration, Instant};

const TEST: &str = "prometheus_remote_writes_into_serve";

#[test]
fn prometheus_remote_writes_into_serve() {
    if !have_binary("prometheus", TEST) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(&work.path().join("chronolith"), &[]);
    let prom_port = free_port();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: chronolith
    static_configs: [{{targets: ["{chronolith}"]}}]
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{prom_port}"]}}]
remote_write:
  - url: http://{chronolith}/api/v1/write
    queue_config: {{batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 500ms}}
"#,
        chronolith = server.addr
    );
    // Prometheus picks its own port from the config's target, so start it there.
    let prom = start_on(work.path(), &config, prom_port);

    // Wait until both jobs' `up` arrived through remote write (bounded).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = get_json(&server.url("/api/v1/query?query=up"));
        assert_eq!(status, 200, "{v}");
        let jobs: Vec<String> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["value"][1] == "1")
            .map(|s| s["metric"]["job"].as_str().unwrap().to_string())
            .collect();
        if jobs.contains(&"chronolith".to_string()) && jobs.contains(&"prometheus".to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "up never arrived: {v}\nprometheus log:\n{}", prom.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Chronolith's own figures went through Prometheus's parser and back (a scrape
    // after the first remote write shows it).
    let q = percent_encode(r#"chronolith_write_samples_stored_total{job="chronolith",protocol="remote_write"}"#);
    loop {
        let (_, v) = get_json(&server.url(&format!("/api/v1/query?query={q}")));
        let stored: f64 = v["data"]["result"][0]["value"][1].as_str().unwrap_or("0").parse().unwrap();
        if stored > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "own metrics never arrived: {v}\nprometheus log:\n{}", prom.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Prometheus's own metrics arrived too, with the labels it attached.
    let (_, v) = get_json(&server.url("/api/v1/series?match[]=prometheus_build_info"));
    let s = &v["data"][0];
    assert_eq!((s["job"].as_str(), s["version"].as_str()), (Some("prometheus"), Some("2.42.0+ds")), "{v}");
    // And the sender reports no failed samples.
    let (_, v) = get_json(&prom.url("/api/v1/query?query=sum(prometheus_remote_storage_samples_failed_total)"));
    assert_eq!(v["data"]["result"][0]["value"][1], "0", "{v}");
}

fn start_on(work: &std::path::Path, config: &str, port: u16) -> Prometheus {
    let storage = work.join("prometheus-data");
    Prometheus::start_at(work, config, &storage, port)
}

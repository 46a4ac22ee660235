//! With `--series-max`, a remote write that would create series past the limit still
//! stores the samples of known series, and answers 400 naming the refused ones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_common;

use serve_common::*;

#[test]
fn serve_series_limit_refuses_new_series_keeps_known() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--series-max", "2"]);
    let t = now_ms();
    let body = rw_body(vec![series(&[("__name__", "a")], &[(t, 1.0)]), series(&[("__name__", "b")], &[(t, 1.0)])]);
    assert_eq!(remote_write(&server, &body).0, 204);
    let body =
        rw_body(vec![series(&[("__name__", "a")], &[(t + 1, 2.0)]), series(&[("__name__", "c")], &[(t + 1, 1.0)])]);
    let (status, msg) = remote_write(&server, &body);
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains(&format!("1 new series past the series limit: c{{}} @ {} (limit 2 series)", t + 1)), "{msg}");
    assert!(msg.starts_with("stored 1 samples"), "{msg}");
    let (_, v) = get_json(&server.url(&format!("/api/v1/query?query=a&time={}", (t + 1) as f64 / 1000.0)));
    assert_eq!(v["data"]["result"][0]["value"][1], "2", "{v}");
    let (_, v) = get_json(&server.url("/api/v1/series?match[]=c"));
    assert_eq!(v["data"], serde_json::json!([]));
    let (_, metrics) = get(&server.url("/metrics"));
    assert!(
        metrics
            .contains("chronolith_write_samples_rejected_total{protocol=\"remote_write\",reason=\"series_limit\"} 1"),
        "{metrics}"
    );
}

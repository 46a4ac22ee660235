//! With a bearer token configured (file or environment), every endpoint but the health
//! checks answers 401 without it or with a wrong one, and works with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_common;

use serve_common::*;

fn status(url: &str, auth: Option<&str>) -> u16 {
    let mut req = agent().get(url);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    req.call().unwrap().status().as_u16()
}

#[test]
fn serve_bearer_token_guards_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--bearer-token-file", token_file.to_str().unwrap()]);
    let ok = Some("Bearer s3cret-token");
    for path in ["/api/v1/query?query=up", "/api/v1/labels", "/metrics", "/api/v1/status/buildinfo"] {
        let url = server.url(path);
        assert_eq!(status(&url, None), 401, "{path} without a token");
        assert_eq!(status(&url, Some("Bearer wrong")), 401, "{path} with a wrong token");
        assert_eq!(status(&url, Some("Basic czNjcmV0")), 401, "{path} with basic auth");
        assert_eq!(status(&url, ok), 200, "{path} with the token");
    }
    // Writes too: refused without the token, and nothing is stored.
    let body = rw_body(vec![series(&[("__name__", "m")], &[(now_ms(), 1.0)])]);
    let (code, msg) = remote_write(&server, &body);
    assert_eq!(code, 401);
    assert!(msg.contains("missing Authorization"), "{msg}");
    let (code, _) = post(
        &server.url("/api/v1/write"),
        &[("Authorization", "Bearer s3cret-token"), ("Content-Encoding", "snappy")],
        &body,
    );
    assert_eq!(code, 204);
    // Health checks are for probes, which carry no token.
    assert_eq!(status(&server.url("/-/healthy"), None), 200);
    assert_eq!(status(&server.url("/-/ready"), None), 200);
    drop(server);

    // The environment variable works the same way.
    let server = Server::start_env(&data, &[], &[("CHRONOLITH_BEARER_TOKEN", "from-env")]);
    assert_eq!(status(&server.url("/api/v1/labels"), None), 401);
    assert_eq!(status(&server.url("/api/v1/labels"), Some("Bearer from-env")), 200);
}

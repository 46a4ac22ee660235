//! Bad input of every kind gets the right 4xx with a message saying what is wrong, the
//! good part of a partially bad write is stored, nothing of a request refused whole is,
//! and the server keeps serving (no panic, still ready, still answering).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_common;

use serve_common::*;
use std::io::{Read, Write};

fn expect(got: (u16, String), status: u16, needle: &str) {
    assert_eq!(got.0, status, "wanted {status} with {needle:?}, got {got:?}");
    assert!(got.1.contains(needle), "wanted {needle:?} in {:?}", got.1);
}

/// Sends `request` as is and returns the status and body of the answer.
fn raw_http(server: &Server, request: &str) -> (u16, String) {
    let mut sock = std::net::TcpStream::connect(&server.addr).unwrap();
    sock.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = sock.read_to_string(&mut answer);
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn series_count(server: &Server, selector: &str) -> usize {
    let (status, v) = get_json(&server.url(&format!("/api/v1/series?match[]={}", percent_encode(selector))));
    assert_eq!(status, 200, "{v}");
    v["data"].as_array().unwrap().len()
}

#[test]
fn serve_rejects_malformed_requests_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            "--body-bytes-max",
            "1000000",
            "--decompressed-bytes-max",
            "4000000",
            "--samples-per-request-max",
            "100",
            "--query-series-max",
            "3",
        ],
    );
    let t = now_ms();

    // --- remote write ---
    expect(remote_write(&server, b"\xff\xff\xff\xff\xff\xff"), 400, "invalid snappy");
    let not_proto = snap::raw::Encoder::new().compress_vec(&[0x0a, 0xff, 0xff, 0xff, 0x0f]).unwrap();
    expect(remote_write(&server, &not_proto), 400, "invalid WriteRequest protobuf");
    // A body over --body-bytes-max is refused on its Content-Length, before it is sent
    // (a client still sending then sees the connection close, so this speaks raw HTTP).
    expect(
        raw_http(
            &server,
            "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000001\r\n\r\n",
        ),
        413,
        "over the limit of 1000000 bytes",
    );
    // A snappy header announcing 10 MB: refused before decompressing.
    let big = snap::raw::Encoder::new().compress_vec(&vec![0u8; 5_000_000]).unwrap();
    expect(remote_write(&server, &big), 413, "--decompressed-bytes-max");
    let gz_rw = post(&server.url("/api/v1/write"), &[("Content-Encoding", "gzip")], &gzip(b"x"));
    expect(gz_rw, 415, "snappy");
    let v2 = [
        ("Content-Type", "application/x-protobuf;proto=io.prometheus.write.v2.Request"),
        ("Content-Encoding", "snappy"),
    ];
    expect(post(&server.url("/api/v1/write"), &v2, b"x"), 415, "only remote write 1.0");

    // Over the per-request sample limit: refused whole, nothing stored.
    let many: Vec<(i64, f64)> = (0..101).map(|i| (t - 101 + i, 1.0)).collect();
    expect(
        remote_write(&server, &rw_body(vec![series(&[("__name__", "too_many")], &many)])),
        413,
        "more than 100 samples",
    );
    assert_eq!(series_count(&server, "too_many"), 0);

    // Absurd label sets are refused per series; the good series of the request is stored.
    let names: Vec<String> = (0..70).map(|i| format!("l{i:02}")).collect();
    let mut wide: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    wide.push(("__name__", "wide"));
    let long_value = "x".repeat(5000);
    let body = rw_body(vec![
        series(&wide, &[(t, 1.0)]),
        series(&[("__name__", "long"), ("v", &long_value)], &[(t, 1.0)]),
        series(&[("__name__", "bad_name"), ("1abc", "v")], &[(t, 1.0)]),
        series(&[("__name__", "dup"), ("a", "1"), ("a", "2")], &[(t, 1.0)]),
        series(&[("__name__", "good")], &[(t, 1.0), (t + 1, 2.0)]),
    ]);
    let got = remote_write(&server, &body);
    expect(got.clone(), 400, "4 invalid labels");
    for needle in [
        "71 labels, limit is 64",
        "has 5000 bytes, limit is 4096",
        "invalid label name \"1abc\"",
        "duplicate label name",
    ] {
        assert!(got.1.contains(needle), "{needle:?} not in {got:?}");
    }
    assert!(got.1.starts_with("stored 2 samples"), "{got:?}");
    assert_eq!(series_count(&server, "good"), 1);
    assert_eq!(series_count(&server, "{__name__=~\"wide|long|bad_name|dup\"}"), 0);

    // Invalid UTF-8 in a label value (hand-made: prost would refuse to encode it).
    let label = |n: &[u8], v: &[u8]| {
        [&[0x0a, (n.len() + v.len() + 4) as u8, 0x0a, n.len() as u8][..], n, &[0x12, v.len() as u8], v].concat()
    };
    let ts_body = [label(b"__name__", b"utf8"), label(b"k", b"\xff\xfe")].concat();
    let raw = [&[0x0a, ts_body.len() as u8][..], &ts_body].concat();
    // Without samples there is nothing to refuse; with one (value 1.0, timestamp 5),
    // the series is refused.
    let sample = [0x12, 11, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x05];
    let ts_full = [ts_body.clone(), sample.to_vec()].concat();
    let raw_full = [&[0x0a, ts_full.len() as u8][..], &ts_full].concat();
    assert_eq!(remote_write(&server, &snap::raw::Encoder::new().compress_vec(&raw).unwrap()).0, 204);
    expect(remote_write(&server, &snap::raw::Encoder::new().compress_vec(&raw_full).unwrap()), 400, "not valid UTF-8");
    // A native histogram (field 4) is not stored, and the answer says so.
    let ts_hist = [label(b"__name__", b"hist"), vec![0x22, 0x00]].concat();
    let raw_hist = [&[0x0a, ts_hist.len() as u8][..], &ts_hist].concat();
    expect(remote_write(&server, &snap::raw::Encoder::new().compress_vec(&raw_hist).unwrap()), 400, "native histogram");

    // Partial rejection by the engine: out of bounds and a conflicting duplicate.
    let body = rw_body(vec![
        series(&[("__name__", "good")], &[(t, 5.0)]), // other value at t: conflict
        series(&[("__name__", "good")], &[(t - 3_600_000, 1.0)]), // an hour behind: out of bounds
        series(&[("__name__", "good")], &[(t + 2, 3.0), (t + 1, 2.0)]), // new, and an exact duplicate
    ]);
    let got = remote_write(&server, &body);
    expect(got.clone(), 400, "1 out of bounds");
    assert!(got.1.contains("1 duplicate timestamp with a different value"), "{got:?}");
    assert!(got.1.starts_with("stored 2 samples (1 exact duplicates dropped), rejected 2"), "{got:?}");
    let tq = (t + 2) as f64 / 1000.0;
    let (_, v) = get_json(&server.url(&format!("/api/v1/query?query=good&time={tq}")));
    assert_eq!(v["data"]["result"][0]["value"][1], "3", "{v}");

    // --- text protocols ---
    let lines = format!("cpu,host=a v=1 {t}\ncpu,host=a v=oops {t}\nnot a line\ncpu,host=b v=2 {t}\n");
    let got = post(&server.url("/write?precision=ms"), &[], lines.as_bytes());
    expect(got.clone(), 400, "2 malformed: line 2:");
    assert!(got.1.contains("line 3:") && got.1.starts_with("{\"error\":\"stored 2 samples"), "{got:?}");
    let got = post(&server.url("/api/v2/write?precision=ms"), &[], b"cpu v=\n");
    expect(got, 400, "\"code\":\"invalid\"");
    expect(post(&server.url("/write?precision=h"), &[], b"cpu v=1\n"), 400, "unsupported precision");
    expect(post(&server.url("/write"), &[("Content-Encoding", "gzip")], b"definitely not gzip"), 400, "invalid gzip");
    expect(
        post(&server.url("/write"), &[("Content-Encoding", "gzip")], &gzip(&vec![b'#'; 5_000_000])),
        413,
        "--decompressed-bytes-max",
    );
    expect(post(&server.url("/write"), &[("Content-Encoding", "br")], b"x"), 415, "Content-Encoding");
    let text = format!("m{{a=\"b\"}} 1 {t}\nm{{a=\"b}} 2 {t}\n{{}} 3\n");
    expect(post(&server.url("/api/v1/import/prometheus"), &[], text.as_bytes()), 400, "2 malformed: line 2:");
    let invalid_utf8 = [b"m 1 ".as_slice(), &t.to_string().into_bytes(), b"\n\xff\xfe 2\n"].concat();
    expect(post(&server.url("/api/v1/import/prometheus"), &[], &invalid_utf8), 400, "line 2: not valid UTF-8");

    // --- queries ---
    let bad = |q: &str| get_json(&server.url(&format!("/api/v1/query?query={}", percent_encode(q))));
    for (q, status, kind) in [
        ("sum((", 400, "bad_data"),
        ("rate(good[5m] offset 1m)", 400, "bad_data"),
        ("{__name__=~\".+\"}", 422, "execution"),
    ] {
        let (s, v) = bad(q);
        assert_eq!((s, v["status"].as_str(), v["errorType"].as_str()), (status, Some("error"), Some(kind)), "{q}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let range = |args: &str| get_json(&server.url(&format!("/api/v1/query_range?query=good&{args}")));
    for (args, needle) in [
        ("start=10&end=5&step=1", "end timestamp must not be before start time"),
        ("start=0&end=5&step=0", "zero or negative query resolution step"),
        ("start=0&end=100000&step=1", "exceeded maximum resolution of 11000 points"),
        ("start=yesterday&end=5&step=1", "invalid parameter \"start\""),
        ("end=5&step=1", "missing parameter \"start\""),
    ] {
        let (s, v) = range(args);
        assert_eq!((s, v["errorType"].as_str()), (400, Some("bad_data")), "{args}: {v}");
        assert!(v["error"].as_str().unwrap().contains(needle), "{args}: {v}");
    }
    let (s, v) = get_json(&server.url("/api/v1/query"));
    assert_eq!((s, v["error"].as_str()), (400, Some("missing parameter \"query\"")));
    let (s, _) = get_json(&server.url("/api/v1/series"));
    assert_eq!(s, 400);
    let (s, _) = get_json(&server.url("/api/v1/series?match[]=sum(good)"));
    assert_eq!(s, 400);
    let (s, _) = get_json(&server.url("/api/v1/label/1bad/values"));
    assert_eq!(s, 400);

    // Garbage on the socket: the connection is refused, the server is not.
    let mut sock = std::net::TcpStream::connect(&server.addr).unwrap();
    sock.write_all(b"\x16\x03\x01 this is not HTTP\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer);

    // Still serving, and nothing above broke the data.
    assert_eq!(get(&server.url("/-/ready")).0, 200);
    assert_eq!(remote_write(&server, &rw_body(vec![series(&[("__name__", "after")], &[(t, 9.0)])])).0, 204);
    let (_, v) = get_json(&server.url(&format!("/api/v1/query?query=after&time={}", t as f64 / 1000.0)));
    assert_eq!(v["data"]["result"][0]["value"][1], "9");
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(!log.contains("panicked"), "{log}");
}

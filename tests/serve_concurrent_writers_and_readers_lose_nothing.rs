//! Several writers and readers against one server for a bounded time: every answer is
//! a success or the documented overload (503 with Retry-After, then retried), readers
//! are never refused, and every acknowledged sample is there, before and after a
//! restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_common;

use serve_common::*;
use std::time::{Duration, Instant};

const WRITERS: usize = 3;
const READERS: usize = 2;
const SERIES_PER_WRITER: usize = 50;
const SAMPLES_PER_SERIES: i64 = 20;
const STEP_MS: i64 = 10;
const RUN: Duration = Duration::from_secs(3);

#[test]
fn serve_concurrent_writers_and_readers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let t0 = now_ms() - 120_000;
    let url = server.url("/api/v1/write");
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let a = agent();
                let (mut requests, mut overloaded) = (0i64, 0u64);
                while started.elapsed() < RUN {
                    let k = requests;
                    let w_s = w.to_string();
                    let names: Vec<String> = (0..SERIES_PER_WRITER).map(|s| s.to_string()).collect();
                    let ts: Vec<_> = names
                        .iter()
                        .map(|s| {
                            let samples: Vec<(i64, f64)> = (0..SAMPLES_PER_SERIES)
                                .map(|j| {
                                    (t0 + (k * SAMPLES_PER_SERIES + j) * STEP_MS, (k * SAMPLES_PER_SERIES + j) as f64)
                                })
                                .collect();
                            series(&[("__name__", "conc"), ("w", &w_s), ("s", s)], &samples)
                        })
                        .collect();
                    let body = rw_body(ts);
                    loop {
                        let mut r = a.post(&url).header("Content-Encoding", "snappy").send(&body[..]).unwrap();
                        match r.status().as_u16() {
                            204 => break,
                            503 if r.headers().contains_key("retry-after") => {
                                overloaded += 1;
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            other => panic!("writer {w}: {other} {}", r.body_mut().read_to_string().unwrap()),
                        }
                    }
                    requests += 1;
                }
                (requests, overloaded)
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let base = server.url("");
            std::thread::spawn(move || {
                let mut answered = 0;
                while started.elapsed() < RUN {
                    let end = (now_ms() as f64) / 1000.0;
                    let q = if r == 0 {
                        format!("/api/v1/query_range?query=sum%20by%20(w)%20(count_over_time(conc[1m]))&start={}&end={end}&step=5", end - 180.0)
                    } else {
                        format!("/api/v1/query?query=max(conc)&time={end}")
                    };
                    let (status, v) = get_json(&format!("{base}{q}"));
                    assert_eq!((status, v["status"].as_str()), (200, Some("success")), "reader {r}: {v}");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    let written: Vec<(i64, u64)> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    let reads: Vec<usize> = readers.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(written.iter().all(|(n, _)| *n > 0), "a writer got nothing through: {written:?}");
    assert!(reads.iter().all(|n| *n > 0), "a reader got nothing through: {reads:?}");
    eprintln!("requests per writer (acknowledged, overload retries): {written:?}; reads per reader: {reads:?}");

    let check = |server: &Server| {
        for (w, (requests, _)) in written.iter().enumerate() {
            let n = requests * SAMPLES_PER_SERIES;
            let end_s = (t0 + n * STEP_MS) as f64 / 1000.0;
            let q = format!("count_over_time(conc{{w=\"{w}\"}}[1h])");
            let (status, v) =
                get_json(&server.url(&format!("/api/v1/query?query={}&time={end_s}", percent_encode(&q))));
            assert_eq!(status, 200, "{v}");
            let result = v["data"]["result"].as_array().unwrap();
            assert_eq!(result.len(), SERIES_PER_WRITER, "{v}");
            for s in result {
                assert_eq!(s["value"][1].as_str().unwrap(), n.to_string(), "writer {w}: {s}");
            }
        }
    };
    check(&server);
    assert!(server.terminate().success());
    let server = Server::start(dir.path(), &[]);
    check(&server);
}

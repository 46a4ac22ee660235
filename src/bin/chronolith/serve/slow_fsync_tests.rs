//! A write waiting on fsync never holds up a query: writes run in place on executor
//! workers (`block_in_place`), and this checks tokio really moves the other work off
//! them. Every fsync of the data directory is held up by an injected delay while more
//! writes than the runtime has worker threads are in flight; a query must be answered
//! while none of those writes has been. In-process, because fault rules live in this
//! process (`chronolith_wal::fault`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{InProcess, ServeArgs};
use chronolith::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use chronolith_wal::fault::{self, Fault, Op, Rule};
use clap::{Args, FromArgMatches};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Long enough that a query held behind the writes could not finish inside it.
const FSYNC_DELAY_MS: u64 = 3_000;

fn serve_args(dir: &std::path::Path) -> ServeArgs {
    let cmd = ServeArgs::augment_args(clap::Command::new("serve"));
    let m =
        cmd.try_get_matches_from(["serve", "--data-dir", &dir.to_string_lossy(), "--listen", "127.0.0.1:0"]).unwrap();
    ServeArgs::from_arg_matches(&m).unwrap()
}

fn write_body(writer: usize, t: i64) -> Vec<u8> {
    let ts = (0..100)
        .map(|s| TimeSeries {
            labels: vec![
                Label { name: "__name__".into(), value: "slow_fsync_test".into() },
                Label { name: "writer".into(), value: writer.to_string() },
                Label { name: "s".into(), value: s.to_string() },
            ],
            samples: vec![Sample { value: s as f64, timestamp: t }],
        })
        .collect();
    remote_write::encode(&WriteRequest { timeseries: ts, metadata: vec![] })
}

fn post(url: &str, writer: usize, t: i64) -> Result<u16, String> {
    ureq::post(url)
        .header("Content-Type", remote_write::CONTENT_TYPE)
        .header("Content-Encoding", remote_write::CONTENT_ENCODING)
        .send(&write_body(writer, t)[..])
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

fn ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&format!("{base}/-/ready")).call().is_err() {
        assert!(Instant::now() < deadline, "server not ready after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn query_is_answered_while_writes_wait_on_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcess::start(serve_args(dir.path())).unwrap();
    let base = format!("http://{}", server.addr);
    ready(&base);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let writers = std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
    // The series exist first, so only the sample WAL's fsyncs (shared by concurrent
    // writes) are held up, not one series-log fsync per writer in turn.
    let url = format!("{base}/api/v1/write");
    for w in 0..writers {
        let resp = post(&url, w, t - 1_000).unwrap();
        assert_eq!(resp, 204);
    }
    let guard = fault::inject(Rule::new(dir.path(), Op::Fsync, Fault::Delay { ms: FSYNC_DELAY_MS }));
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (url, done) = (url.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let resp = post(&url, w, t);
                done.fetch_add(1, SeqCst);
                resp
            })
        })
        .collect();
    // At least one write is now inside an fsync (the rest queue behind it).
    let deadline = Instant::now() + Duration::from_secs(30);
    while guard.failures() == 0 {
        assert!(Instant::now() < deadline, "no write reached fsync");
        std::thread::sleep(Duration::from_millis(5));
    }
    let answer = ureq::get(&format!("{base}/api/v1/query?query=slow_fsync_test")).call().unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(done.load(SeqCst), 0, "the query was answered only after a write: writes held it up");
    for h in handles {
        assert_eq!(h.join().unwrap(), Ok(204), "every write is acknowledged once its fsync ends");
    }
    drop(guard);
    server.stop().unwrap();
}

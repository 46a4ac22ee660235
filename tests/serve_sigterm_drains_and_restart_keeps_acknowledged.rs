//! SIGTERM while writers are busy: in-flight requests finish, the process closes the
//! database and exits 0, and after a restart every acknowledged (204) sample is there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_common;

use serve_common::*;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn serve_sigterm_drains_and_restart_keeps_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let t0 = now_ms();
    let acked: Arc<Mutex<Vec<(usize, usize)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url("/api/v1/write");
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (acked, stop, url) = (acked.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                let a = agent();
                for i in 0.. {
                    if stop.load(Relaxed) {
                        break;
                    }
                    let w_s = w.to_string();
                    let i_s = i.to_string();
                    let body =
                        rw_body(vec![series(&[("__name__", "drain"), ("w", &w_s), ("i", &i_s)], &[(t0, i as f64)])]);
                    let r = a.post(&url).header("Content-Encoding", "snappy").send(&body[..]);
                    match r {
                        Ok(r) if r.status() == 204 => acked.lock().unwrap().push((w, i)),
                        // Refused or cut off by the shutdown: not acknowledged.
                        _ => {
                            if stop.load(Relaxed) {
                                break;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let before = acked.lock().unwrap().len();
    assert!(before > 0, "no write was acknowledged before SIGTERM");
    let status = server.terminate();
    stop.store(true, Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let acked = acked.lock().unwrap().clone();

    let server = Server::start(dir.path(), &[]);
    let log = server.stderr.lock().unwrap().join("\n");
    assert!(log.contains("samples replayed from the WAL"), "{log}");
    let (status, v) = get_json(&server.url(&format!("/api/v1/query?query=drain&time={}", t0 as f64 / 1000.0)));
    assert_eq!(status, 200);
    let present: std::collections::HashSet<(usize, usize)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let w: usize = s["metric"]["w"].as_str().unwrap().parse().unwrap();
            let i: usize = s["metric"]["i"].as_str().unwrap().parse().unwrap();
            assert_eq!(s["value"][1].as_str().unwrap(), i.to_string());
            (w, i)
        })
        .collect();
    let missing: Vec<_> = acked.iter().filter(|k| !present.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged samples missing after restart: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
}

//! Chronolith killed with SIGKILL while it ingests and forwards to a real VictoriaMetrics,
//! several times, then restarted: every sample Chronolith holds arrives, nothing it does
//! not hold does, and what is sent twice (the batches in flight at each kill) is the same
//! sample again — no different value at a timestamp.
//!
//! The test re-runs its own binary as a child (`FWD_KILL9_CHILD=<dir>`), which opens the
//! database with the target, appends batch after batch (default durability) and prints
//! `ACK <n>`; the parent kills it after a random delay and starts the next one.
#![cfg(feature = "forward")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod forward_common;

use chronolith::forward::RemoteWriteConfig;
use chronolith::{Batch, Db, Labels, Matcher, Options};
use forward_common::*;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TEST: &str = "forward_kill9_mid_send_loses_nothing";
const CHILD_ENV: &str = "FWD_KILL9_CHILD";
const SERIES: usize = 30;

fn target(url: &str) -> RemoteWriteConfig {
    let mut c = RemoteWriteConfig::new(url);
    c.name = "vm".into();
    c.max_samples_per_request = 200;
    c
}

fn child(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FWD_KILL9_URL")?;
    let t0: i64 = std::env::var("FWD_KILL9_T0")?.parse()?;
    let db = Db::open_with_remote_write(dir, Options::default(), vec![target(&url)])?;
    let st = db.stats().engine;
    let mut n = st.head_max_t.map_or(0, |t| (t - t0) / 1_000 + 1);
    let mut out = std::io::stdout().lock();
    writeln!(out, "START {n}")?;
    out.flush()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut b = Batch::new();
    while Instant::now() < deadline {
        b.clear();
        for k in 0..SERIES {
            let l = Labels::metric("fwd_kill9", [("k", k.to_string())])?;
            b.add_labels(l, t0 + n * 1_000, ((k as i64 * 7 + n) % 10_000) as f64 / 8.0);
        }
        db.append(&b)?;
        writeln!(out, "ACK {n}")?;
        out.flush()?;
        n += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

#[test]
fn forward_kill9_mid_send_loses_nothing() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        if let Err(e) = child(Path::new(&dir)) {
            println!("ERR {e}");
            std::process::exit(3);
        }
        return;
    }
    let Some(bin) = binary_or_skip(VM_BIN, TEST) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let vm = start_victoria_metrics(&bin, &tmp.path().join("vm"), free_port());
    let url = vm.url("/api/v1/write");
    let dir = tmp.path().join("db");
    let t0 = now_ms() - 30 * 60_000;
    let exe = std::env::current_exe().unwrap();
    let mut seed = (now_ms() as u64) | 1;
    let mut acked: Option<i64> = None;
    for cycle in 0..4 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(150 + seed % 350);
        let mut c = Command::new(&exe)
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &dir)
            .env("FWD_KILL9_URL", &url)
            .env("FWD_KILL9_T0", t0.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = c.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("START") {
                    let _ = tx.send(());
                }
                if let Some(n) = line.strip_prefix("ACK ") {
                    last = n.trim().parse::<i64>().ok();
                }
                assert!(!line.starts_with("ERR"), "child failed: {line}");
            }
            last
        });
        rx.recv_timeout(Duration::from_secs(30)).expect("child started");
        std::thread::sleep(delay);
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
        let last = reader.join().unwrap();
        assert!(last.is_some(), "cycle {cycle}: nothing acknowledged");
        acked = last.max(acked);
    }

    // Restart once more, here, and let the forwarder catch up.
    let db = Db::open_with_remote_write(&dir, Options::default(), vec![target(&url)]).unwrap();
    let want = chronolith_held(&db, &[Matcher::metric("fwd_kill9")], &[]);
    let held: usize = want.values().map(Vec::len).sum();
    let acked = acked.unwrap();
    assert!(want.values().all(|s| s.len() as i64 > acked), "every acknowledged batch is held");
    let caught_up = wait_until(Duration::from_secs(60), || {
        let f = &db.stats().forward[0];
        f.position >= db.engine().wal_committed_end() && f.backlog_bytes == 0
    });
    assert!(caught_up, "{:?}", db.stats().forward[0]);
    let got = victoria_metrics_export(&vm, "{__name__=\"fwd_kill9\"}");
    let mut resent = 0usize;
    for (labels, samples) in &want {
        let mut g = got.get(labels).cloned().unwrap_or_default();
        let raw = g.len();
        g.dedup();
        resent += raw - g.len();
        let first_diff = g.iter().zip(samples).position(|(a, b)| a != b);
        assert!(
            &g == samples,
            "{labels:?}: VictoriaMetrics holds {} distinct samples, Chronolith {}; first difference at {first_diff:?}",
            g.len(),
            samples.len()
        );
    }
    assert_eq!(got.len(), want.len(), "no stray series");
    eprintln!("{TEST}: {held} samples held and delivered, {resent} delivered twice (identical), last acknowledged batch {acked}");
    db.close().unwrap();
}

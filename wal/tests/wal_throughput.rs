//! Throughput figures, not a pass/fail test. Run with
//! `cargo test -p chronolith-wal --release --test wal_throughput -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chronolith_wal::{Durability, RecoveryMode, Wal, WalOptions};

const RECORD_BYTES: usize = 60 * 1024;

fn appends(durability: Durability, threads: usize, run: Duration) {
    appends_with(WalOptions { durability, ..WalOptions::default() }, threads, run);
}

fn appends_with(opts: WalOptions, threads: usize, run: Duration) {
    let durability = opts.durability;
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), opts, RecoveryMode::TruncateTornTail, |_, _, _| {}).unwrap();
    let wal = Arc::new(wal);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let payload = vec![7u8; RECORD_BYTES];
                let mut n = 0u64;
                while start.elapsed() < run {
                    wal.append(&[(1, payload.as_slice())]).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let n: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let secs = start.elapsed().as_secs_f64();
    let s = wal.stats();
    println!(
        "{durability:?} threads={threads}: {:.0} appends/s, {:.1} MB/s, {} fsyncs ({:.0} us avg, {:.0} us max), {:.2} appends/fsync",
        n as f64 / secs,
        (n as usize * RECORD_BYTES) as f64 / secs / 1e6,
        s.fsyncs,
        s.fsync_nanos_total as f64 / s.fsyncs.max(1) as f64 / 1e3,
        s.fsync_nanos_max as f64 / 1e3,
        n as f64 / s.fsyncs.max(1) as f64,
    );
}

#[test]
#[ignore = "measurement"]
fn measure_append_throughput() {
    let run = Duration::from_secs(2);
    for threads in [1, 2, 8] {
        appends(Durability::Always, threads, run);
    }
    appends(Durability::Periodic { interval_ms: 100 }, 1, run);
    appends(Durability::Never, 1, run);
    appends(Durability::Never, 2, run);
    // Without segment rotation (whose fsync of 64 MiB dominates `Never` above).
    let opts = WalOptions { durability: Durability::Never, segment_bytes_max: 4 << 30 };
    appends_with(opts, 1, Duration::from_millis(500));
}

#[test]
#[ignore = "measurement"]
fn measure_replay_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { durability: Durability::Never, ..WalOptions::default() };
    let (wal, _) = Wal::open(dir.path(), opts.clone(), RecoveryMode::TruncateTornTail, |_, _, _| {}).unwrap();
    let payload = vec![3u8; RECORD_BYTES];
    for _ in 0..(512 * 1024 * 1024 / RECORD_BYTES) {
        wal.append(&[(1, payload.as_slice())]).unwrap();
    }
    wal.close().unwrap();
    for _ in 0..3 {
        let start = Instant::now();
        let mut sum = 0u64;
        let (_wal, report) = Wal::open(dir.path(), opts.clone(), RecoveryMode::TruncateTornTail, |_, t, p| {
            sum += u64::from(t) + p.len() as u64;
        })
        .unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "replay: {} records, {} segments, {:.0} MB in {:.3} s = {:.2} GB/s (checksum {sum})",
            report.records,
            report.segments,
            report.bytes as f64 / 1e6,
            secs,
            report.bytes as f64 / secs / 1e9
        );
    }
}

#[test]
#[ignore = "measurement"]
fn measure_crc_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let data = vec![5u8; 64 << 20];
    std::fs::write(&path, &data).unwrap();
    let start = Instant::now();
    let c = crc32fast::hash(&data);
    println!("crc32fast: {:.2} GB/s ({c})", data.len() as f64 / start.elapsed().as_secs_f64() / 1e9);
    let mut buf = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        buf.clear();
        std::io::Read::read_to_end(&mut std::fs::File::open(&path).unwrap(), &mut buf).unwrap();
        println!("read: {:.2} GB/s", buf.len() as f64 / start.elapsed().as_secs_f64() / 1e9);
    }
}

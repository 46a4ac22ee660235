#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chronolith_wal::{Durability, RecoveryMode, WalOptions};
use common::open;

#[test]
fn eight_threads_under_always_share_fsyncs_and_all_records_replay() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { segment_bytes_max: 64 * 1024, durability: Durability::Always };
    let (wal, _, _) = open(dir.path(), opts.clone(), RecoveryMode::TruncateTornTail).unwrap();
    let wal = Arc::new(wal);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let payload = [t.to_le_bytes(), i.to_le_bytes()].concat();
                    wal.append(&[(1, payload.as_slice())]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.records_written, THREADS * PER_THREAD);
    assert!(stats.fsyncs < THREADS * PER_THREAD, "no fsync was shared: {stats:?}");
    Arc::into_inner(wal).unwrap().close().unwrap();

    let (_wal, report, seen) = open(dir.path(), opts, RecoveryMode::TruncateTornTail).unwrap();
    assert_eq!(report.records, THREADS * PER_THREAD);
    let got: BTreeSet<(u64, u64)> = seen
        .iter()
        .map(|(_, _, p)| {
            (u64::from_le_bytes(p[..8].try_into().unwrap()), u64::from_le_bytes(p[8..].try_into().unwrap()))
        })
        .collect();
    assert_eq!(got.len() as u64, THREADS * PER_THREAD);
    // Each thread's records replay in the order it appended them.
    for t in 0..THREADS {
        let mine: Vec<u64> = seen
            .iter()
            .filter(|(_, _, p)| p[..8] == t.to_le_bytes())
            .map(|(_, _, p)| u64::from_le_bytes(p[8..].try_into().unwrap()))
            .collect();
        assert_eq!(mine, (0..PER_THREAD).collect::<Vec<_>>());
    }
}

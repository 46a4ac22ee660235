#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use chronolith_wal::{Durability, RecoveryMode, WalOptions};
use common::open;

fn run(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { segment_bytes_max: 8192, durability };
    let (wal, _, _) = open(dir.path(), opts.clone(), RecoveryMode::TruncateTornTail).unwrap();
    for i in 0u32..200 {
        wal.append(&[(2, i.to_le_bytes().as_slice())]).unwrap();
    }
    wal.sync().unwrap();
    // Dropped without close: every append was in the OS before it returned.
    for i in 200u32..300 {
        wal.append(&[(2, i.to_le_bytes().as_slice())]).unwrap();
    }
    drop(wal);
    let (wal, report, seen) = open(dir.path(), opts, RecoveryMode::TruncateTornTail).unwrap();
    assert_eq!(report.records, 300, "{durability:?}");
    let got: Vec<u32> = seen.iter().map(|r| u32::from_le_bytes(r.2[..].try_into().unwrap())).collect();
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    wal.close().unwrap();
}

#[test]
fn always_round_trips() {
    run(Durability::Always);
}

#[test]
fn periodic_round_trips_and_background_thread_syncs() {
    run(Durability::Periodic { interval_ms: 5 });
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions { segment_bytes_max: 1 << 20, durability: Durability::Periodic { interval_ms: 1 } };
    let (wal, _, _) = open(dir.path(), opts, RecoveryMode::TruncateTornTail).unwrap();
    wal.append(&[(1, b"x".as_slice())]).unwrap();
    let mut synced = false;
    for _ in 0..2000 {
        if wal.stats().fsyncs > 0 {
            synced = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(synced, "background thread never fsynced");
    wal.close().unwrap();
}

#[test]
fn never_round_trips() {
    run(Durability::Never);
}

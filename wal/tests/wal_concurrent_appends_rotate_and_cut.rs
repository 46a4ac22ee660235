#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chronolith_wal::{Durability, Position, RecoveryMode, WalOptions};
use common::open;

#[test]
fn positions_returned_under_concurrent_rotation_and_cuts_match_replay() {
    let dir = tempfile::tempdir().unwrap();
    // Fewer appends under Always: every fsync costs milliseconds on a busy disk.
    for (durability, per_thread) in [(Durability::Never, 150u32), (Durability::Always, 25)] {
        let opts = WalOptions { segment_bytes_max: 2048, durability };
        let (wal, _, before) = open(dir.path(), opts.clone(), RecoveryMode::TruncateTornTail).unwrap();
        let wal = Arc::new(wal);
        let stop = Arc::new(AtomicBool::new(false));
        let cutter = {
            let (wal, stop) = (Arc::clone(&wal), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    wal.cut().unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            })
        };
        let writers: Vec<_> = (0..4u8)
            .map(|t| {
                let wal = Arc::clone(&wal);
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..per_thread {
                        let a = [vec![t; (i as usize * 13) % 700], i.to_le_bytes().to_vec()].concat();
                        let b = i.to_le_bytes();
                        let pos = wal.append(&[(t + 1, a.as_slice()), (100, b.as_slice())]).unwrap();
                        mine.push((pos, t + 1, a));
                    }
                    mine
                })
            })
            .collect();
        let mut expected: BTreeMap<Position, (u8, Vec<u8>)> = BTreeMap::new();
        for w in writers {
            for (pos, t, a) in w.join().unwrap() {
                assert!(expected.insert(pos, (t, a)).is_none(), "position {pos:?} handed out twice");
            }
        }
        stop.store(true, Ordering::Relaxed);
        cutter.join().unwrap();
        Arc::into_inner(wal).unwrap().close().unwrap();

        let (_wal, report, seen) = open(dir.path(), opts, RecoveryMode::TruncateTornTail).unwrap();
        assert_eq!(report.records as usize, before.len() + 2 * 4 * per_thread as usize);
        let seen: BTreeMap<Position, (u8, Vec<u8>)> = seen.into_iter().map(|r| (r.0, (r.1, r.2))).collect();
        for (pos, rec) in &expected {
            assert_eq!(seen.get(pos), Some(rec), "record appended at {pos:?}");
        }
    }
}

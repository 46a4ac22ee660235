//! WAL replay over an arbitrary segment file (and, half the time, a valid one behind it),
//! in both recovery modes: opening returns a typed error or a log, never panics. Strict
//! recovery returns a prefix of what salvage returns; salvage returns exactly the records
//! `verify` counts, and the salvaged log reopens cleanly (nothing left to repair) with the
//! same records.
#![no_main]

use chronolith_wal::{Durability, RecoveryMode, SegmentHealth, Wal, WalOptions};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

type Records = Vec<(u8, Vec<u8>)>;

fn open(dir: &Path, mode: RecoveryMode) -> Option<(Records, chronolith_wal::ReplayReport)> {
    let opts = WalOptions { durability: Durability::Never, ..WalOptions::default() };
    let mut seen = Vec::new();
    let (wal, report) = Wal::open(dir, opts, mode, |_, t, p| seen.push((t, p.to_vec()))).ok()?;
    let _ = wal.close();
    Some((seen, report))
}

fn setup(data: &[u8], with_next: bool) -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().ok()?;
    std::fs::write(dir.path().join("00000000000000000001.wal"), data).ok()?;
    if with_next {
        // A valid second segment: the fuzzed one is then never the last.
        let opts = WalOptions { durability: Durability::Never, ..WalOptions::default() };
        let next = tempfile::tempdir().ok()?;
        let (wal, _) = Wal::open(next.path(), opts, RecoveryMode::TruncateTornTail, |_, _, _| {}).ok()?;
        wal.append(&[(7, b"after".as_slice())]).ok()?;
        wal.close().ok()?;
        std::fs::copy(next.path().join("00000000000000000001.wal"), dir.path().join("00000000000000000002.wal"))
            .ok()?;
    }
    Some(dir)
}

fuzz_target!(|data: &[u8]| {
    let with_next = data.first().is_some_and(|b| b & 1 == 1);
    let Some(strict_dir) = setup(data, with_next) else { return };
    let strict = open(strict_dir.path(), RecoveryMode::TruncateTornTail);
    let Some(dir) = setup(data, with_next) else { return };
    let verified = chronolith_wal::verify(dir.path()).ok();
    let Some((salvaged, _)) = open(dir.path(), RecoveryMode::Salvage) else { return };
    if let Some((prefix, _)) = &strict {
        assert!(salvaged.starts_with(prefix), "strict recovery returned records salvage did not");
    }
    if let Some(v) = verified {
        let counted: u64 = v
            .iter()
            .map(|(_, h)| match h {
                SegmentHealth::Clean { records }
                | SegmentHealth::TornTail { records, .. }
                | SegmentHealth::Damaged { records, .. } => *records,
            })
            .sum();
        assert_eq!(counted, salvaged.len() as u64, "verify and salvage disagree on the valid records");
    }
    match open(dir.path(), RecoveryMode::TruncateTornTail) {
        Some((again, report)) => {
            assert!(report.salvaged.is_empty() && report.truncated_tail.is_none(), "salvage left damage: {report:?}");
            assert_eq!(again, salvaged, "the salvaged log reads differently");
        }
        None => panic!("the salvaged log does not reopen in strict mode"),
    }
});

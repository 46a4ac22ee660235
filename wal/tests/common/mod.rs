//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};

use chronolith_wal::{Position, RecoveryMode, ReplayReport, Result, Wal, WalOptions};

/// One replayed record.
pub type Rec = (Position, u8, Vec<u8>);

/// Opens `dir`, collecting every replayed record.
pub fn open(dir: &Path, opts: WalOptions, mode: RecoveryMode) -> Result<(Wal, ReplayReport, Vec<Rec>)> {
    let mut seen = Vec::new();
    let (wal, report) = Wal::open(dir, opts, mode, |p, t, b| seen.push((p, t, b.to_vec())))?;
    Ok((wal, report, seen))
}

/// Options with a small segment size and no fsync per append (fast tests).
pub fn small(segment_bytes_max: u64) -> WalOptions {
    WalOptions { segment_bytes_max, durability: chronolith_wal::Durability::Never }
}

/// A deterministic payload for record `i`.
pub fn payload(i: usize) -> Vec<u8> {
    let len = (i * 37) % 300;
    (0..len).map(|j| (i.wrapping_mul(31) ^ j) as u8).collect()
}

/// Record type for record `i` (1..=200).
pub fn rtype(i: usize) -> u8 {
    (i % 200) as u8 + 1
}

/// Segment files in `dir`, sorted.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// Writes `n` records (one per append), closes, and returns what was written with positions.
pub fn write_records(dir: &Path, opts: WalOptions, n: usize) -> Vec<Rec> {
    let (wal, _, _) = open(dir, opts, RecoveryMode::TruncateTornTail).unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let p = payload(i);
        let pos = wal.append(&[(rtype(i), p.as_slice())]).unwrap();
        out.push((pos, rtype(i), p));
    }
    wal.close().unwrap();
    out
}

//! The data directory the corruption tests damage: two sealed raw blocks (and, when
//! asked, rollup blocks over them), a sealed WAL segment and the last, unsealed one, and
//! two series-log segments (series `e` is defined only in the second), with the expected
//! contents and helpers to find every frame.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use chronolith::{Batch, CompactionOptions, Db, Labels, Options, RecoveryMode, RollupTier};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const STEP_MS: i64 = 2_000;
/// Batches below this time are sealed into blocks (partitions [0, 60 s) and [60 s, 120 s)).
pub const SEALED_END: i64 = 120_000;
/// Batches from here on are in the last WAL segment (the second session).
pub const TAIL_START: i64 = 150_000;
pub const END: i64 = 170_000;
pub const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];
/// The rollup tier built when asked: 10 s buckets in 1-minute blocks.
pub const TIER_MS: i64 = 10_000;

pub fn options(mode: RecoveryMode) -> Options {
    let compaction = CompactionOptions {
        background: false,
        merge_ranges_ms: vec![],
        tiers: vec![RollupTier { resolution_ms: TIER_MS, after_ms: 0, span_ms: 60_000 }],
        ..CompactionOptions::default()
    };
    Options { partition_ms: 60_000, ooo_window_ms: 10_000, recovery_mode: mode, compaction, ..Options::default() }
}

pub fn labels(k: usize) -> Labels {
    Labels::metric("corrupt_test", [("series", NAMES[k])]).unwrap()
}

/// Series `e` only exists in the second session.
pub fn series_at(t: i64) -> std::ops::Range<usize> {
    if t >= TAIL_START {
        0..5
    } else {
        0..4
    }
}

pub fn value(k: usize, t: i64) -> f64 {
    match (t / STEP_MS + k as i64) % 7 {
        0 => (k as f64) * 100.0 + (t as f64) / 1000.0,
        1 => -1.25,
        2 => f64::NAN,
        _ => ((t / STEP_MS) * 37 % 1000) as f64 * 0.25 + k as f64,
    }
}

/// series index -> (t -> value bits)
pub type Data = BTreeMap<usize, BTreeMap<i64, u64>>;

pub fn expected() -> Data {
    let mut d = Data::new();
    let mut t = 0;
    while t < END {
        for k in series_at(t) {
            d.entry(k).or_default().insert(t, value(k, t).to_bits());
        }
        t += STEP_MS;
    }
    d
}

fn write_batches(db: &Db, from: i64, to: i64) {
    let mut t = from;
    while t < to {
        let mut b = Batch::new();
        for k in series_at(t) {
            b.add_labels(labels(k), t, value(k, t));
        }
        let r = db.append(&b).unwrap();
        assert!(r.rejected.is_empty());
        t += STEP_MS;
    }
}

/// Two sealed blocks (plus rollup blocks over them with `rollups`), a sealed WAL segment
/// (first session's tail), and the second session's segment left unsealed by a close,
/// holding one batch per record.
pub fn build_pristine(dir: &Path, rollups: bool) {
    let db = Db::open(dir, options(RecoveryMode::TruncateTornTail)).unwrap();
    write_batches(&db, 0, SEALED_END);
    db.seal().unwrap();
    if rollups {
        let r = db.compact();
        assert!(r.downsamples > 0 && r.failures == 0, "{r:?}");
    }
    write_batches(&db, SEALED_END, TAIL_START);
    db.close().unwrap();
    let db = Db::open(dir, options(RecoveryMode::TruncateTornTail)).unwrap();
    write_batches(&db, TAIL_START, END);
    db.close().unwrap();
    std::fs::remove_file(dir.join("LOCK")).ok();
}

pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

/// Every block directory (raw and rollup), by sequence number.
pub fn block_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('b') && n.len() == 17))
        .collect();
    v.sort();
    v
}

/// `(start, end)` of every record frame of a WAL segment (32-byte header, then frames of
/// crc u32, len u32, type u8, payload; see wal/FORMAT.md), the seal frame included.
pub fn wal_frames(seg: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut at = 32;
    while at + 9 <= seg.len() {
        let len = u32::from_le_bytes(seg[at + 4..at + 8].try_into().unwrap()) as usize;
        frames.push((at, at + 9 + len));
        at += 9 + len;
    }
    assert_eq!(at, seg.len(), "whole frames");
    frames
}

/// `(start, end)` of every chunk frame of a block's `chunks` file (8-byte header, then
/// frames of len u32, crc u32, payload; see engine/src/block/FORMAT.md).
pub fn chunk_frames(chunks: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut at = 8;
    while at + 8 <= chunks.len() {
        let len = u32::from_le_bytes(chunks[at..at + 4].try_into().unwrap()) as usize;
        frames.push((at, at + 8 + len));
        at += 8 + len;
    }
    assert_eq!(at, chunks.len(), "whole frames");
    frames
}

//! Retention by age per resolution: blocks whose data ends more than the kept age before
//! the newest sample held are dropped whole (their files are never rewritten: the blocks
//! kept have the same inodes), the age ignores the wall clock (a clock 80 years ahead
//! drops nothing extra), and size-based retention drops the oldest blocks first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chronolith::{
    Batch, CompactionOptions, Db, Durability, Labels, ManualClock, Matcher, Options, Retention, RollupTier,
};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

fn options(retention: &str, bytes_max: Option<u64>) -> Options {
    Options {
        partition_ms: 60_000,
        ooo_window_ms: 5_000,
        durability: Durability::Never,
        compaction: CompactionOptions {
            background: false,
            merge_ranges_ms: vec![],
            tiers: vec![RollupTier { resolution_ms: 10_000, after_ms: 600_000, span_ms: 300_000 }],
            retention: Retention::parse(retention).unwrap(),
            retention_bytes_max: bytes_max,
            ..CompactionOptions::default()
        },
        ..Options::default()
    }
}

fn fill(db: &Db) {
    let mut batch = Batch::new();
    for t in (1_000..3_600_000).step_by(5_000) {
        batch.clear();
        for s in 0..3 {
            batch.add_labels(Labels::metric("m", [("s", s.to_string().as_str())]).unwrap(), t, t as f64);
        }
        db.append(&batch).unwrap();
    }
    db.seal().unwrap();
}

fn inodes(blocks: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(blocks).unwrap() {
        let e = e.unwrap();
        for f in ["chunks", "index", "meta"] {
            let p = e.path().join(f);
            if let Ok(m) = std::fs::metadata(&p) {
                out.insert(format!("{}/{f}", e.file_name().to_string_lossy()), m.ino());
            }
        }
    }
    out
}

#[test]
fn age_retention_drops_whole_blocks_from_the_newest_sample() {
    let dir = tempfile::tempdir().unwrap();
    // The wall clock is far ahead: if ages were counted from it, everything would go.
    let clock = Arc::new(ManualClock::new(4_102_444_800_000));
    let db = Db::open_with_clock(dir.path(), options("raw=20m, 10s=40m", None), clock).unwrap();
    fill(&db);
    let before = inodes(&dir.path().join("blocks"));
    let report = db.compact();
    assert_eq!(report.failures, 0);
    let set = db.engine().blocks().snapshot();
    let newest = 3_596_000;
    for b in set.raw() {
        assert!(b.meta().max_t >= newest - 1_200_000, "raw block past 20m kept: {:?}", b.meta());
    }
    for b in set.rollups(10_000) {
        assert!(b.meta().covers_to >= newest - 2_400_000, "rollup past 40m kept: {:?}", b.meta());
    }
    assert!(set.rollups(10_000).count() > 0, "rollups younger than 40 m stay");
    // Raw samples from 20 minutes before the newest on are all there.
    let kept: usize =
        db.select(&[Matcher::metric("m")], newest - 1_200_000, i64::MAX).map(|s| s.unwrap().samples.len()).sum();
    assert_eq!(kept, 3 * 241);
    let st = db.stats().compaction;
    assert!(st.retention.partitions_dropped >= 30, "{st:?}");
    assert_eq!(st.retention.last_success_ms, Some(4_102_444_800_000), "stamped by the injected clock");
    // Blocks kept were not rewritten: same inodes as before the drop.
    let after = inodes(&dir.path().join("blocks"));
    for (name, ino) in &after {
        if let Some(old) = before.get(name) {
            assert_eq!(old, ino, "{name} was rewritten");
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("blocks"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    db.close().unwrap();
}

#[test]
fn size_retention_drops_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options("", None)).unwrap();
    fill(&db);
    db.close().unwrap();
    let total: u64 = {
        let db = Db::open(dir.path(), options("", None)).unwrap();
        let b = db.stats().engine.block_bytes;
        db.close().unwrap();
        b
    };
    let db = Db::open(dir.path(), options("", Some(total / 2))).unwrap();
    db.compact();
    let st = db.stats();
    assert!(st.engine.block_bytes <= total / 2, "{} > {}", st.engine.block_bytes, total / 2);
    // What remains is the newest data: the newest sample is still there.
    let newest: i64 = db
        .select(&[Matcher::metric("m")], 0, i64::MAX)
        .filter_map(|s| s.unwrap().samples.last().map(|x| x.t))
        .max()
        .unwrap();
    assert_eq!(newest, 3_596_000);
    db.close().unwrap();
}

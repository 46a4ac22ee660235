//! Retention by selector (`{job="debug"}=20m`): blocks whose data ends more than 20
//! minutes before the newest sample lose the `job="debug"` series, raw and rollup blocks
//! alike; every other series keeps every sample; blocks without debug series are not
//! rewritten (same inodes); a block holding only debug series is dropped whole; and the
//! result survives a reopen (the replaced blocks do not come back).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chronolith::{Batch, CompactionOptions, Db, Durability, Labels, Matcher, Options, Retention, RollupTier};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const MINUTE: i64 = 60_000;
const NEWEST: i64 = 3_596_000;

fn options() -> Options {
    Options {
        partition_ms: MINUTE,
        ooo_window_ms: 5_000,
        durability: Durability::Never,
        compaction: CompactionOptions {
            background: false,
            merge_ranges_ms: vec![],
            tiers: vec![RollupTier { resolution_ms: 10_000, after_ms: 0, span_ms: 300_000 }],
            retention: Retention::parse(r#"{job="debug"}=20m"#).unwrap(),
            ..CompactionOptions::default()
        },
        ..Options::default()
    }
}

/// `m{job="app",s}` for s in 0..2 and `m{job="debug"}`, every 5 s for an hour.
fn fill(db: &Db) {
    let mut batch = Batch::new();
    for t in (1_000..=NEWEST).step_by(5_000) {
        batch.clear();
        for s in 0..2 {
            batch.add_labels(Labels::metric("m", [("job", "app"), ("s", &s.to_string())]).unwrap(), t, t as f64);
        }
        batch.add_labels(Labels::metric("m", [("job", "debug")]).unwrap(), t, -(t as f64));
        db.append(&batch).unwrap();
    }
    db.seal().unwrap();
}

fn samples(db: &Db, matchers: &[Matcher]) -> BTreeMap<String, Vec<i64>> {
    db.select(matchers, i64::MIN, i64::MAX)
        .map(|s| s.unwrap())
        .map(|s| (s.labels.to_string(), s.samples.iter().map(|x| x.t).collect()))
        .collect()
}

fn inodes(blocks: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(blocks)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            Some((e.file_name().to_string_lossy().into_owned(), std::fs::metadata(e.path().join("chunks")).ok()?.ino()))
        })
        .collect()
}

#[test]
fn selector_retention_removes_only_matching_series_from_old_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    fill(&db);
    let app_before = samples(&db, &[Matcher::eq("job", "app")]);
    assert_eq!(app_before.len(), 2);
    let debug_ids = db.engine().registry().select(&[Matcher::eq("job", "debug")]);

    // One pass downsamples first (so rollup blocks hold debug series too), then applies
    // retention to raw and rollup blocks.
    let report = db.compact();
    assert!(report.downsamples > 0, "{report:?}");
    assert_eq!(report.failures, 0, "{report:?}");
    assert!(report.purges > 0, "{report:?}");
    let cutoff = NEWEST - 20 * MINUTE;
    let set = db.engine().blocks().snapshot();
    assert!(set.rollups(10_000).any(|b| b.series_ids().any(|id| debug_ids.contains(&id))));
    for b in set.iter() {
        let end = if b.is_rollup() { b.meta().covers_to } else { b.meta().max_t };
        let holds_debug = b.series_ids().any(|id| debug_ids.contains(&id));
        assert_eq!(holds_debug, end >= cutoff, "block {:?} (ends {end}, cutoff {cutoff})", b.meta());
    }
    // Debug samples older than the cutoff are gone (those in blocks ending before it);
    // the newer ones and every app sample are all there.
    let debug = samples(&db, &[Matcher::eq("job", "debug")]);
    let kept = &debug[r#"m{job="debug"}"#];
    assert!(kept.first().is_some_and(|t| *t >= cutoff - MINUTE), "oldest debug sample left: {:?}", kept.first());
    assert_eq!(kept.last(), Some(&NEWEST));
    assert!(kept.windows(2).all(|w| w[1] - w[0] == 5_000), "no gap in what is kept");
    assert_eq!(samples(&db, &[Matcher::eq("job", "app")]), app_before);
    let st = db.stats().compaction.retention;
    assert!(st.blocks_written > 0 && st.bytes_out < st.bytes_in, "{st:?}");

    // A second pass finds nothing to do and rewrites nothing.
    let blocks = dir.path().join("blocks");
    let before = inodes(&blocks);
    assert_eq!(db.compact().purges, 0);
    assert_eq!(inodes(&blocks), before);
    db.close().unwrap();

    // Reopen: the replaced blocks stay replaced.
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(samples(&db, &[Matcher::eq("job", "debug")]), debug);
    assert_eq!(samples(&db, &[Matcher::eq("job", "app")]), app_before);
    let names: Vec<String> = inodes(&blocks).into_keys().collect();
    assert!(names.iter().all(|n| !n.contains('.')), "leftovers: {names:?}");
    db.close().unwrap();
}

#[test]
fn a_block_holding_only_matching_series_is_dropped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let mut batch = Batch::new();
    for t in (1_000..=NEWEST).step_by(5_000) {
        batch.clear();
        let job = if t < 30 * MINUTE { "debug" } else { "app" };
        batch.add_labels(Labels::metric("m", [("job", job)]).unwrap(), t, 1.0);
        db.append(&batch).unwrap();
    }
    db.seal().unwrap();
    let raw_before = db.engine().blocks().snapshot().raw().count();
    let report = db.compact();
    assert_eq!(report.failures, 0);
    let set = db.engine().blocks().snapshot();
    assert!(set.raw().count() < raw_before, "debug-only partitions dropped");
    assert!(samples(&db, &[Matcher::eq("job", "debug")]).is_empty());
    assert_eq!(
        samples(&db, &[Matcher::eq("job", "app")])[r#"m{job="app"}"#].len(),
        ((NEWEST - 30 * MINUTE) / 5_000 + 1) as usize
    );
    assert!(db.stats().compaction.retention.partitions_dropped > 0);
    db.close().unwrap();
}

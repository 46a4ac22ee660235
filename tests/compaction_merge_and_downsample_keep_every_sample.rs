//! Merging adjacent partitions and downsampling them into rollup tiers keeps every raw
//! sample readable exactly once (before and after reopen), reduces the block count, and
//! writes rollup blocks for the spans old enough; a second pass finds nothing to do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chronolith::{Batch, CompactionOptions, Db, Durability, Labels, Matcher, Options, RollupTier};
use std::collections::BTreeMap;

type Dump = BTreeMap<String, Vec<(i64, u64)>>;

pub fn options() -> Options {
    Options {
        partition_ms: 60_000,
        ooo_window_ms: 5_000,
        durability: Durability::Never,
        compaction: CompactionOptions {
            background: false,
            merge_ranges_ms: vec![300_000, 1_200_000],
            tiers: vec![
                RollupTier { resolution_ms: 10_000, after_ms: 600_000, span_ms: 300_000 },
                RollupTier { resolution_ms: 60_000, after_ms: 1_200_000, span_ms: 600_000 },
            ],
            ..CompactionOptions::default()
        },
        ..Options::default()
    }
}

fn dump(db: &Db) -> Dump {
    let mut out = Dump::new();
    for s in db.select(&[Matcher::metric("m")], i64::MIN, i64::MAX) {
        let s = s.unwrap();
        let prev = out.insert(s.labels.to_string(), s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect());
        assert!(prev.is_none());
    }
    out
}

#[test]
fn merge_and_downsample_keep_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    let mut model = Dump::new();
    let mut batch = Batch::new();
    for t in (1_000..3_600_000).step_by(1_000) {
        batch.clear();
        for s in 0..4 {
            let labels = Labels::metric("m", [("s", s.to_string().as_str())]).unwrap();
            // Counters with a reset every 10 minutes, and a gauge with decimals.
            let v = if s == 0 { ((t / 1000) % 600) as f64 } else { (t % 7919) as f64 / 100.0 + f64::from(s) };
            model.entry(labels.to_string()).or_default().push((t, v.to_bits()));
            batch.add_labels(labels, t, v);
        }
        db.append(&batch).unwrap();
    }
    db.seal().unwrap();
    let blocks_before = db.stats().engine.blocks;
    assert!(blocks_before >= 59, "one block per minute: {blocks_before}");
    let report = db.compact();
    assert_eq!(report.failures, 0, "{:?}", db.stats().compaction);
    assert!(report.merges > 0 && report.downsamples > 0, "{report:?}");
    let st = db.stats();
    let c = &st.compaction;
    assert!(c.merge.partitions_dropped >= 50, "{c:?}");
    assert!(c.merge.samples_in == c.merge.samples_out && c.merge.bytes_out > 0 && c.merge.last_success_ms.is_some());
    assert!(c.downsample.blocks_written > 0 && c.downsample.samples_in > 0, "{c:?}");
    let set = db.engine().blocks().snapshot();
    assert!(
        set.raw().count() <= 10,
        "raw blocks after merging (the last open windows stay unmerged): {}",
        set.raw().count()
    );
    assert_eq!(set.rollup_resolutions(), vec![10_000, 60_000]);
    // 5-minute spans of the 10 s tier end at or before newest - 10 min.
    let tier1: Vec<(i64, i64)> = set.rollups(10_000).map(|b| (b.meta().covers_from, b.meta().covers_to)).collect();
    assert!(tier1.iter().all(|(f, t)| t - f == 300_000 && *t <= 3_599_000 - 600_000), "{tier1:?}");
    assert_eq!(tier1.len(), 9, "{tier1:?}");
    assert_eq!(dump(&db), model, "raw reads after compaction");
    let again = db.compact();
    assert_eq!((again.merges, again.downsamples, again.drops), (0, 0, 0), "{again:?}");
    db.close().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    assert_eq!(dump(&db), model, "raw reads after reopen");
    assert_eq!(db.engine().blocks().snapshot().rollup_resolutions(), vec![10_000, 60_000]);
    db.close().unwrap();
}

//! When blocks overlap in time (as during a merge, before the parents are removed), a
//! series' samples are gathered, ordered and de-duplicated by timestamp instead of
//! streamed chunk by chunk; the answer is the same as from one block.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chronolith_engine::block::BlockWriter;
use chronolith_engine::BLOCKS_DIR;
use chronolith_query::{query_range, Limits, TimeRange};
use common::{labels, open, s};
use std::sync::Arc;

#[test]
fn an_overlapping_block_adds_its_samples_once() {
    let db = open();
    let l = labels("m", &[]);
    // Sealed block: samples at 0, 20, 40, 60 s.
    db.write(&l, &[s(0, 1.0), s(20_000, 3.0), s(40_000, 5.0), s(60_000, 7.0)]);
    db.seal();
    // A second block over the same time: the odd 10 s marks plus two duplicates.
    let id = db.engine.registry().lookup(&l).unwrap();
    let blocks_dir = db.engine.dir().join(BLOCKS_DIR);
    let mut w = BlockWriter::create(&blocks_dir, db.engine.blocks().allocate_seq(), 0, 1, vec![]).unwrap();
    let ts = [0, 10_000, 20_000, 30_000, 50_000];
    let vs = [1.0, 2.0, 3.0, 4.0, 6.0];
    w.add_series(id, Arc::new(l.clone()), &ts, &vs).unwrap();
    let (path, _) = w.finish().unwrap();
    db.engine.blocks().apply(&[path], &[]).unwrap();
    assert_eq!(db.engine.blocks().snapshot().len(), 2);

    let range = TimeRange { start: 60_000, end: 60_000, step: 1 };
    let r = query_range(&db.engine, "count_over_time(m[2m])", range, &Limits::unlimited()).unwrap();
    assert_eq!(r.series[0].points, vec![(60_000, 7.0)], "0..60 s every 10 s, each once");
    let r = query_range(&db.engine, "changes(m[2m])", range, &Limits::unlimited()).unwrap();
    assert_eq!(r.series[0].points, vec![(60_000, 6.0)], "strictly rising in time order");
    assert_eq!(r.stats.samples_scanned, 7);
}

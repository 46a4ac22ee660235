//! High cardinality: many distinct series (200,000 by default; set
//! `CHRONOLITH_CARDINALITY=1000000` for the full million) ingested in batches of 10,000,
//! one sample each, with head memory (the engine's own `head_bytes`) and the process's
//! resident memory measured; every series must come back after a reopen. Prints the
//! figures; asserts a generous bound per series so a leak shows up.
#![allow(clippy::unwrap_used, clippy::panic, clippy::cast_precision_loss)]

use chronolith_engine::{Batch, Durability, Engine, Labels, Options};
use std::time::Instant;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

#[test]
fn many_series_ingest_with_head_memory_measured() {
    let n: usize = std::env::var("CHRONOLITH_CARDINALITY").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let opts =
        Options { durability: Durability::Never, series_max: Some(n), head_bytes_max: 4 << 30, ..Options::default() };
    let e = Engine::open(dir.path(), opts.clone()).unwrap();
    let rss_before = rss_bytes();
    let started = Instant::now();
    let mut batch = Batch::with_capacity(10_000);
    for chunk in 0..n.div_ceil(10_000) {
        batch.clear();
        for i in chunk * 10_000..((chunk + 1) * 10_000).min(n) {
            let l = Labels::metric("card", [("host", format!("h{}", i % 1000)), ("id", i.to_string())]).unwrap();
            batch.add_labels(l, 1_000_000, i as f64);
        }
        assert_eq!(e.append(&batch).unwrap().stored, batch.len());
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = e.stats();
    assert_eq!(stats.series, n as u64);
    let rss = rss_bytes().saturating_sub(rss_before);
    eprintln!(
        "cardinality: {n} series in {secs:.1} s ({:.0} series/s); head_bytes {} ({:.0} B/series); RSS growth {} ({:.0} B/series)",
        n as f64 / secs,
        stats.head_bytes,
        stats.head_bytes as f64 / n as f64,
        rss,
        rss as f64 / n as f64
    );
    // Bounds far above what is measured (see RELIABILITY.md), low enough to catch a leak.
    assert!(stats.head_bytes as f64 / (n as f64) < 4096.0, "head bytes per series {}", stats.head_bytes / n as u64);
    assert!(rss as f64 / (n as f64) < 8192.0, "RSS per series {}", rss / n as u64);
    // The limit holds at n.
    let one_more = Labels::metric("card", [("id", "one-more")]).unwrap();
    assert!(matches!(e.series_ref(&one_more), Err(chronolith_engine::Error::SeriesLimit { .. })));
    e.close().unwrap();
    drop(e);
    let started = Instant::now();
    let e = Engine::open(dir.path(), opts).unwrap();
    eprintln!("cardinality: reopen with {n} series took {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(e.stats().series, n as u64);
    assert_eq!(e.stats().head_samples, n as u64);
}

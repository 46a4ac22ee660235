//! A metrics collector embedding Chronolith: it scrapes (here: simulates) a few targets
//! every 10 s, resolves each series once by labels, then appends by ref on the hot path,
//! and answers a range read at the end.
//!
//! Run: `cargo run --release --example collector [DATA_DIR]`

use chronolith::{Batch, Db, Labels, Matcher, Options, SeriesId};
use std::collections::HashMap;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "./collector-data".to_string());
    let db = Db::open(&dir, Options::default())?;

    // Continue after whatever an earlier run stored, so the example can run repeatedly.
    let stats = db.stats().engine;
    let start = stats.head_max_t.max(stats.sealed_until).map_or(1_700_000_000_000, |t| t + 10_000);

    let targets = ["web-1", "web-2", "db-1"];
    let mut refs: HashMap<(&str, &str), SeriesId> = HashMap::new();
    let mut batch = Batch::new();
    for scrape in 0..360 {
        let t = start + scrape * 10_000;
        batch.clear();
        let mut named = Vec::new();
        for host in targets {
            for (metric, value) in [("cpu_usage", 40.0 + (scrape % 17) as f64 * 0.25), ("up", 1.0)] {
                match refs.get(&(host, metric)) {
                    Some(id) => batch.add(*id, t, value),
                    None => {
                        named.push((host, metric));
                        batch.add_labels(Labels::metric(metric, [("host", host), ("job", "node")])?, t, value);
                    }
                }
            }
        }
        let report = db.append(&batch)?; // fsynced before it returns (default durability)
        for ((_, id), key) in report.series.iter().zip(named) {
            refs.insert(key, *id);
        }
        for r in &report.rejected {
            eprintln!("sample {} rejected: {}", r.index, r.reason);
        }
    }

    let end = start + 360 * 10_000;
    for series in db.select(&[Matcher::metric("cpu_usage"), Matcher::eq("host", "web-1")], start, end) {
        let s = series?;
        let avg = s.samples.iter().map(|x| x.v).sum::<f64>() / s.samples.len() as f64;
        println!("{}: {} samples over the last hour, avg {avg:.2}", s.labels, s.samples.len());
    }
    let st = db.stats().engine;
    println!(
        "{} series, {} samples appended, {} in the head, {} blocks; data in {dir}",
        st.series, st.samples_appended, st.head_samples, st.blocks
    );
    db.close()?;
    Ok(())
}

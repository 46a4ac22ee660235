//! WAL segments whose every sample is sealed into blocks are removed; the ones still
//! holding head samples stay, and reopening replays exactly the unsealed samples.

use chronolith::{Batch, Db, Durability, Labels, Matcher, Options};
use std::path::Path;

fn wal_segments(dir: &Path) -> Result<usize, std::io::Error> {
    Ok(std::fs::read_dir(dir.join("wal"))?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
        .count())
}

#[test]
fn sealing_removes_covered_segments_and_keeps_the_rest() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opts = Options {
        partition_ms: 60_000,
        ooo_window_ms: 1_000,
        wal_segment_bytes_max: 64 * 1024,
        durability: Durability::Never,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts.clone())?;
    let mut batch = Batch::new();
    for s in 0..20 {
        batch.add_labels(Labels::metric("m", [("s", s.to_string())])?, 0, 0.0);
    }
    let refs: Vec<_> = db.append(&batch)?.series.into_iter().map(|(_, id)| id).collect();
    // Ten minutes at 100 ms: 6,000 points x 20 series, many 64 KiB segments.
    for step in 1..6_000i64 {
        batch.clear();
        for (i, id) in refs.iter().enumerate() {
            batch.add(*id, step * 100, (step as f64) * 0.5 + i as f64);
        }
        db.append(&batch)?;
    }
    // The background sealer seals closed partitions while we write; sealing whatever is
    // left closed makes the end state deterministic.
    db.engine().seal_closed()?;
    let st = db.stats().engine;
    let sealed_until = st.sealed_until.ok_or("nothing was sealed")?;
    assert!(sealed_until >= 540_000, "partitions up to 9 min are closed; sealed until {sealed_until}");
    // About 11 minutes of samples went through the log; at most the open partition (and
    // the segment it started in) may still be on disk.
    assert!(
        st.wal_disk_bytes * 4 < st.wal_bytes_written,
        "{} bytes on disk of {} written",
        st.wal_disk_bytes,
        st.wal_bytes_written
    );
    assert!(wal_segments(dir.path())? <= 4);
    let head_samples = st.head_samples;
    assert!(head_samples > 0);
    db.close()?;

    // The kept segments replay exactly the head.
    let db = Db::open(dir.path(), opts)?;
    assert_eq!(db.stats().engine.samples_replayed, head_samples);
    let total: usize =
        db.select(&[Matcher::metric("m")], 0, i64::MAX).map(|s| s.map(|s| s.samples.len())).sum::<Result<_, _>>()?;
    assert_eq!(total, 20 * 6_000);

    // A full seal leaves no sample in the WAL.
    db.seal()?;
    db.close()?;
    let db = Db::open(dir.path(), Options { ..Options::default() })?;
    assert_eq!(db.stats().engine.samples_replayed, 0);
    assert!(wal_segments(dir.path())? <= 2);
    Ok(())
}

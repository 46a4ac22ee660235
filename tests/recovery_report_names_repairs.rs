//! `stats().engine.recovery` says what open repaired: nothing after a clean shutdown, a
//! torn WAL tail when the last write was cut, a damaged block moved aside by salvage (the
//! default), with file, offset and what left the live data.

use chronolith::{Batch, Db, Labels, Matcher, Options, RecoveryMode, RecoveryReport};
use std::io::Write;
use std::path::{Path, PathBuf};

fn newest_segment(dir: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segs.sort();
    segs.pop().ok_or_else(|| "no segment".into())
}

fn count(db: &Db) -> Result<usize, chronolith::Error> {
    db.select(&[Matcher::metric("m")], 0, i64::MAX).map(|s| s.map(|s| s.samples.len())).sum()
}

#[test]
fn recovery_report_is_empty_when_clean_and_names_repairs() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opts = Options { partition_ms: 60_000, ooo_window_ms: 1_000, ..Options::default() };
    {
        let db = Db::open(dir.path(), opts.clone())?;
        let mut b = Batch::new();
        for t in 0..100i64 {
            b.add_labels(Labels::metric("m", [("k", "v")])?, t * 1_000, t as f64);
        }
        db.append(&b)?;
        db.close()?;
    }
    let db = Db::open(dir.path(), opts.clone())?;
    assert_eq!(db.stats().engine.recovery, RecoveryReport::default());
    db.close()?;

    // A torn write at the end of the sample log: a frame header that promises more bytes.
    let seg = newest_segment(&dir.path().join("wal"))?;
    std::fs::OpenOptions::new().append(true).open(&seg)?.write_all(&[200, 0, 0, 0, 2, 1, 2, 3])?;
    let db = Db::open(dir.path(), opts.clone())?;
    let r = db.stats().engine.recovery;
    assert_eq!(r.torn_tails.len(), 1, "{r:?}");
    assert!(r.torn_tails[0].starts_with("wal/"), "{r:?}");
    assert_eq!(count(&db)?, 100);
    db.seal()?;
    db.close()?;

    // A damaged block: strict recovery refuses it; the default (salvage) moves it aside
    // and reports the file, the offset and what left the live data.
    let block = std::fs::read_dir(dir.path().join("blocks"))?.filter_map(Result::ok).next().ok_or("no block")?.path();
    let meta = block.join("meta");
    let mut bytes = std::fs::read(&meta)?;
    bytes[20] ^= 0xff;
    std::fs::write(&meta, bytes)?;
    let strict = Options { recovery_mode: RecoveryMode::TruncateTornTail, ..opts.clone() };
    assert!(Db::open(dir.path(), strict).is_err(), "strict recovery refuses a damaged block");
    let db = Db::open(dir.path(), opts)?;
    let r = db.stats().engine.recovery;
    assert_eq!(r.moved_aside.len(), 1, "{r:?}");
    assert_eq!(r.damage.len(), 1, "{r:?}");
    let d = &r.damage[0];
    assert_eq!((d.file.as_path(), d.offset), (meta.as_path(), 92), "{d:?}");
    assert!(d.detail.contains("crc mismatch") && d.dropped.contains("whole"), "{d:?}");
    let aside = dir.path().join("damaged").join(block.file_name().ok_or("name")?);
    assert_eq!(d.kept_at.as_deref(), Some(aside.join("meta").as_path()));
    assert!(aside.is_dir());
    assert_eq!(count(&db)?, 40, "the damaged block's 60 samples are quarantined, the other block's 40 read");
    Ok(())
}

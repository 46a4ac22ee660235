//! A committed data directory of on-disk format version 1 (`tests/fixtures/v1/`: two
//! sealed blocks, a series log and a sample log with unsealed samples) must keep opening
//! and reading exactly. If a format change breaks this test, the change needs a version
//! bump and a migration, not a new fixture.
//!
//! Regenerate (only when adding a new format version, into a new directory):
//! `cargo test -p chronolith --test fixture_v1_opens -- --ignored write_fixture`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use chronolith::{Batch, Db, Labels, Matcher, Options, RejectReason};
use common::copy_dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Aligned to a one-minute partition.
const T0: i64 = 1_699_999_980_000;
const STEP_MS: i64 = 5_000;
const SAMPLES: usize = 50;
/// Samples `0..SEALED` of each series are in blocks, the rest only in the WAL.
const SEALED: usize = 24;
const SERIES: usize = 5;
/// The last series is created after the seal, so it lives in the series log only.
const LATE_SERIES_FROM: usize = 30;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

/// Large window: no background seal while writing or checking.
fn options() -> Options {
    Options { partition_ms: 60_000, ooo_window_ms: 600_000, ..Options::default() }
}

fn labels(k: usize) -> Labels {
    if k == SERIES - 1 {
        Labels::metric("fixture_late", [("host", "h4"), ("env", "prod")]).unwrap()
    } else {
        Labels::metric("fixture_metric", [("host", format!("h{k}")), ("dc", ["east", "west"][k % 2].to_string())])
            .unwrap()
    }
}

fn t_of(i: usize) -> i64 {
    T0 + i as i64 * STEP_MS
}

/// The generator the fixture was written with.
fn value(k: usize, i: usize) -> f64 {
    match (i + k) % 17 {
        3 => f64::NAN,
        // -0.0 only in the sealed part: the v1 WAL writer of the time lost its sign in
        // all-decimal records (see db_append_select_reopen.rs), which must not be frozen here.
        5 if i < SEALED => -0.0,
        7 => f64::INFINITY,
        11 => -(i as f64) * 1e-9,
        _ => (k * 100) as f64 + i as f64 * 0.25,
    }
}

fn samples_of(k: usize) -> std::ops::Range<usize> {
    if k == SERIES - 1 {
        LATE_SERIES_FROM..SAMPLES
    } else {
        0..SAMPLES
    }
}

fn write_range(db: &Db, from: usize, to: usize) {
    for i in from..to {
        let mut b = Batch::new();
        for k in 0..SERIES {
            if samples_of(k).contains(&i) {
                b.add_labels(labels(k), t_of(i), value(k, i));
            }
        }
        let r = db.append(&b).unwrap();
        assert!(r.rejected.is_empty() && r.stored == b.len());
    }
}

#[test]
#[ignore = "writes the committed fixture; run only to create a new format version's fixture"]
fn write_fixture() {
    assert_eq!(T0 % 60_000, 0);
    let dir = fixture_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let db = Db::open(&dir, options()).unwrap();
    write_range(&db, 0, SEALED);
    db.seal().unwrap();
    assert_eq!(db.stats().engine.blocks, 2);
    write_range(&db, SEALED, SAMPLES);
    // Close without sealing: the rest stays in the WAL.
    db.close().unwrap();
    std::fs::remove_file(dir.join("LOCK")).unwrap();
    let total: u64 = walk(&dir).iter().map(|p| std::fs::metadata(p).unwrap().len()).sum();
    assert!(total < 64 * 1024, "fixture is {total} bytes");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

type Dump = BTreeMap<String, Vec<(i64, u64)>>;

fn expected() -> Dump {
    (0..SERIES)
        .map(|k| (labels(k).to_string(), samples_of(k).map(|i| (t_of(i), value(k, i).to_bits())).collect()))
        .collect()
}

fn dump(db: &Db) -> Dump {
    db.select(&[], i64::MIN, i64::MAX)
        .map(|s| {
            let s = s.unwrap();
            (s.labels.to_string(), s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect())
        })
        .collect()
}

#[test]
fn fixture_v1_opens_and_reads_exactly() {
    let src = fixture_dir();
    assert!(src.join("blocks").is_dir(), "fixture missing at {}", src.display());
    assert!(!src.join("LOCK").exists(), "the fixture must not hold a LOCK file");
    for options in [options(), Options::default()] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("v1");
        copy_dir(&src, &dir);
        let db = Db::open(&dir, options.clone()).unwrap();
        let st = db.stats().engine;
        assert_eq!(st.blocks, 2);
        assert_eq!(st.series, SERIES as u64);
        let in_wal = (SAMPLES - SEALED) * (SERIES - 1) + (SAMPLES - LATE_SERIES_FROM);
        assert_eq!(st.samples_replayed, in_wal as u64);
        assert_eq!(st.block_samples, (SEALED * (SERIES - 1)) as u64);
        assert_eq!(dump(&db), expected());

        // Matchers and ranges over blocks and head.
        let east: Vec<String> = db
            .select(&[Matcher::eq("dc", "east")], t_of(20), t_of(30))
            .map(|s| s.unwrap())
            .map(|s| {
                assert_eq!(s.samples.len(), 11);
                s.labels.to_string()
            })
            .collect();
        assert_eq!(east, vec![labels(0).to_string(), labels(2).to_string()]);

        // Still writable, with the seal boundary restored from the blocks.
        let mut b = Batch::new();
        b.add_labels(labels(0), t_of(SEALED - 1), value(0, SEALED - 1));
        b.add_labels(labels(0), t_of(SAMPLES), 1.5);
        let r = db.append(&b).unwrap();
        assert_eq!(r.stored, 1);
        assert_eq!(r.rejected.iter().map(|x| x.reason).collect::<Vec<_>>(), vec![RejectReason::OutOfBounds]);
        db.close().unwrap();
        let db = Db::open(&dir, options).unwrap();
        let mut want = expected();
        want.get_mut(&labels(0).to_string()).unwrap().push((t_of(SAMPLES), 1.5f64.to_bits()));
        assert_eq!(dump(&db), want);
    }
}

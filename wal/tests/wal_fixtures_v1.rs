//! Committed v1 fixtures: a tiny valid segment and a corrupted copy (see fixtures/v1/README.md).
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use std::path::{Path, PathBuf};

use chronolith_wal::{Error, Position, RecoveryMode, SegmentId, WalOptions};
use common::open;

const RECORDS: [(u8, &[u8]); 3] = [(1, b"alpha"), (2, b"beta"), (200, b"gamma")];
const SEGMENT: &str = "00000000000000000001.wal";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1").join(name)
}

/// Copies a fixture directory into a temp dir (open seals and adds segments).
fn copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(name).join(SEGMENT), dir.path().join(SEGMENT)).unwrap();
    dir
}

#[test]
fn valid_v1_segment_replays_known_records() {
    let dir = copy("valid");
    let (_wal, report, seen) = open(dir.path(), WalOptions::default(), RecoveryMode::TruncateTornTail).unwrap();
    let got: Vec<_> = seen.iter().map(|r| (r.0, r.1, r.2.as_slice())).collect();
    let at = |offset| Position { segment: SegmentId(1), offset };
    assert_eq!(got, [(at(32), 1, b"alpha".as_slice()), (at(46), 2, b"beta"), (at(59), 200, b"gamma")]);
    assert_eq!(report.records, 3);
    assert_eq!(report.truncated_tail, None);
}

#[test]
fn corrupted_v1_segment_is_a_typed_error() {
    let dir = copy("corrupted");
    match open(dir.path(), WalOptions::default(), RecoveryMode::TruncateTornTail) {
        Err(Error::Corruption { segment, offset, reason }) => {
            assert_eq!((segment, offset), (SegmentId(1), 46));
            assert!(reason.starts_with("crc mismatch"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn todays_writer_still_produces_the_v1_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path(), WalOptions::default(), RecoveryMode::TruncateTornTail).unwrap();
    wal.append(&RECORDS).unwrap();
    wal.close().unwrap();
    let now = std::fs::read(dir.path().join(SEGMENT)).unwrap();
    if std::env::var_os("CHRONOLITH_WAL_WRITE_FIXTURES").is_some() {
        let mut corrupted = now.clone();
        corrupted[46 + 9 + 1] ^= 0x20; // a payload byte of the second record
        for (name, bytes) in [("valid", &now), ("corrupted", &corrupted)] {
            std::fs::create_dir_all(fixture(name)).unwrap();
            std::fs::write(fixture(name).join(SEGMENT), bytes).unwrap();
        }
    }
    assert_eq!(now, std::fs::read(fixture("valid").join(SEGMENT)).unwrap(), "v1 format changed");
}

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use chronolith_wal::{RecoveryMode, SegmentId};
use common::{open, segments, small};

#[test]
fn removes_only_older_segments_and_never_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap();
    for _ in 0..4 {
        wal.append(&[(1, b"data".as_slice())]).unwrap();
        wal.cut().unwrap();
    }
    wal.append(&[(1, b"current".as_slice())]).unwrap();
    assert_eq!(wal.current_segment(), SegmentId(5));
    assert_eq!(segments(dir.path()).len(), 5);
    let before = wal.stats();

    let removed = wal.remove_segments_before(SegmentId(3)).unwrap();
    let names: Vec<_> = segments(dir.path()).iter().map(|p| p.file_name().unwrap().to_owned()).collect();
    assert_eq!(names, ["00000000000000000003.wal", "00000000000000000004.wal", "00000000000000000005.wal"]);
    let after = wal.stats();
    assert_eq!(after.segments, 3);
    assert_eq!(before.disk_bytes - after.disk_bytes, removed);
    assert!(removed > 0);

    // Asking past the current segment removes everything but the current one.
    wal.remove_segments_before(SegmentId(100)).unwrap();
    assert_eq!(segments(dir.path()).len(), 1);
    assert_eq!(wal.remove_segments_before(SegmentId(100)).unwrap(), 0);
    wal.append(&[(1, b"more".as_slice())]).unwrap();
    wal.close().unwrap();

    let (_wal, report, seen) = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap();
    assert_eq!(report.segments, 1);
    let payloads: Vec<_> = seen.iter().map(|r| r.2.as_slice()).collect();
    assert_eq!(payloads, [b"current".as_slice(), b"more".as_slice()]);
}

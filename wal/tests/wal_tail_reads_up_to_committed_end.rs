//! The tail reader follows a live log: it hands out every record exactly once, in order,
//! across segment rotations and a reopen, never reads past the committed end, reports a
//! missing segment as a gap, and resumes from any position it returned.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use chronolith_wal::{Position, RecoveryMode, SegmentId, TailGap, TailReader};
use common::{open, payload, rtype, small};

fn drain(r: &mut TailReader, end: Position, max_bytes: usize, got: &mut Vec<(Position, u8, Vec<u8>)>) {
    // Bounded: every call with something to read moves the position forward.
    for _ in 0..100_000 {
        let read = r.read(end, max_bytes, &mut |p, t, b| got.push((p, t, b.to_vec()))).unwrap();
        assert!(read.gap.is_none(), "unexpected gap {:?}", read.gap);
        if read.bytes == 0 {
            return;
        }
    }
    panic!("reader did not reach the end");
}

#[test]
fn follows_appends_rotations_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path(), small(4096), RecoveryMode::TruncateTornTail).unwrap();
    let mut written = Vec::new();
    let start = Position { segment: SegmentId(1), offset: 0 };
    let mut r = TailReader::new(dir.path(), start);
    let mut got = Vec::new();
    for i in 0..400 {
        let p = payload(i);
        let pos = wal.append(&[(rtype(i), p.as_slice())]).unwrap();
        written.push((pos, rtype(i), p));
        if i % 37 == 0 {
            // Read while the writer goes on; small reads cut inside segments.
            drain(&mut r, wal.committed_end(), 500, &mut got);
            assert_eq!(got.len(), i + 1, "read everything committed so far");
        }
    }
    drain(&mut r, wal.committed_end(), 1 << 20, &mut got);
    assert_eq!(got, written);
    assert!(wal.current_segment().0 > 5, "rotated");

    // A reader started at a returned position sees the rest only.
    let mid = written[250].0;
    let mut r2 = TailReader::new(dir.path(), mid);
    let mut rest = Vec::new();
    drain(&mut r2, wal.committed_end(), 1 << 20, &mut rest);
    assert_eq!(rest, written[250..]);
    wal.close().unwrap();

    // After a reopen (which seals the last segment and starts a new one) the old reader
    // goes on where it stopped and picks up new appends.
    let (wal, _, _) = open(dir.path(), small(4096), RecoveryMode::TruncateTornTail).unwrap();
    let pos = wal.append(&[(9, b"after reopen".as_slice())]).unwrap();
    let mut more = Vec::new();
    drain(&mut r, wal.committed_end(), 1 << 20, &mut more);
    assert_eq!(more, vec![(pos, 9, b"after reopen".to_vec())]);
    wal.close().unwrap();
}

#[test]
fn never_reads_past_the_committed_end() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap();
    wal.append(&[(1, b"one".as_slice())]).unwrap();
    let end_after_one = wal.committed_end();
    wal.append(&[(1, b"two".as_slice())]).unwrap();
    let mut r = TailReader::new(dir.path(), Position { segment: SegmentId(1), offset: 0 });
    let mut got = Vec::new();
    drain(&mut r, end_after_one, 1 << 20, &mut got);
    assert_eq!(got.len(), 1, "stopped at the end it was given");
    assert_eq!(r.position(), end_after_one);
    drain(&mut r, wal.committed_end(), 1 << 20, &mut got);
    assert_eq!(got.iter().map(|g| g.2.as_slice()).collect::<Vec<_>>(), [b"one".as_slice(), b"two"]);
    wal.close().unwrap();
}

#[test]
fn a_removed_segment_is_reported_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap();
    for s in 0..3u8 {
        wal.append(&[(1, [s].as_slice())]).unwrap();
        wal.cut().unwrap();
    }
    wal.remove_segments_before(SegmentId(3)).unwrap();
    let mut r = TailReader::new(dir.path(), Position { segment: SegmentId(1), offset: 0 });
    let end = wal.committed_end();
    let read = r.read(end, 1 << 20, &mut |_, _, _| panic!("no record before the gap")).unwrap();
    assert_eq!(read.gap, Some(TailGap::MissingSegments { from: SegmentId(1), to: SegmentId(3) }));
    let mut got = Vec::new();
    drain(&mut r, end, 1 << 20, &mut got);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2, [2u8]);
    wal.close().unwrap();
}

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use std::fs::OpenOptions;
use std::io::Write;

use chronolith_wal::{RecoveryMode, SegmentId, SEAL_FRAME_BYTES};
use common::{open, segments, small, write_records};

/// Writes 20 records into one segment and returns (records, path of that segment).
fn setup(dir: &std::path::Path) -> (Vec<common::Rec>, std::path::PathBuf) {
    let written = write_records(dir, small(1 << 20), 20);
    let segs = segments(dir);
    assert_eq!(segs.len(), 1, "the data segment is the last one, as after a crash");
    (written, segs[0].clone())
}

#[test]
fn cut_at_every_offset_inside_the_last_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (written, seg) = setup(dir.path());
    let full = std::fs::read(&seg).unwrap();
    let last = written.last().unwrap();
    let last_start = last.0.offset as usize;
    for cut in last_start..full.len() {
        std::fs::write(&seg, &full[..cut]).unwrap();
        let (wal, report, seen) = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap();
        assert_eq!(seen, written[..written.len() - 1], "cut at {cut}");
        if cut == last_start {
            assert_eq!(report.truncated_tail, None, "a cut at a record boundary is a clean end");
        } else {
            assert_eq!(report.truncated_tail, Some((SegmentId(1), last_start as u64, (cut - last_start) as u64)));
        }
        let sealed = (last_start + SEAL_FRAME_BYTES) as u64;
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), sealed, "file truncated, then sealed");
        drop(wal);
        // Remove the segment this open started so the data segment stays last.
        for s in segments(dir.path()).into_iter().skip(1) {
            std::fs::remove_file(s).unwrap();
        }
    }
}

#[test]
fn zero_filled_tail_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (written, seg) = setup(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0u8; 4096]).unwrap();
    drop(f);
    let (wal, report, seen) = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap();
    assert_eq!(seen, written);
    assert_eq!(report.truncated_tail, Some((SegmentId(1), len, 4096)));
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len + SEAL_FRAME_BYTES as u64);
    // Appends continue in a new segment and everything replays next time.
    wal.append(&[(1, b"after".as_slice())]).unwrap();
    wal.close().unwrap();
    let (_wal, report, seen) = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap();
    assert_eq!(report.truncated_tail, None);
    assert_eq!(seen.len(), written.len() + 1);
}

#[test]
fn zeroed_last_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (written, seg) = setup(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let last_start = written.last().unwrap().0.offset as usize;
    for b in &mut bytes[last_start..] {
        *b = 0;
    }
    std::fs::write(&seg, &bytes).unwrap();
    let (_wal, report, seen) = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap();
    assert_eq!(seen, written[..written.len() - 1]);
    assert_eq!(report.truncated_tail.map(|t| t.1), Some(last_start as u64));
}

#[test]
fn segment_with_torn_header_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (written, _) = setup(dir.path());
    // The next open seals segment 1 and creates segment 2; then a crash while creating
    // segment 2 leaves only part of its header on disk.
    drop(open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap());
    let torn = dir.path().join("00000000000000000002.wal");
    std::fs::write(&torn, [0u8; 10]).unwrap();
    let (wal, report, seen) = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap();
    assert_eq!(seen, written);
    assert_eq!(report.truncated_tail, Some((SegmentId(2), 0, 10)));
    assert!(!torn.exists() || wal.current_segment() == SegmentId(2));
    assert_eq!(wal.current_segment(), SegmentId(3));
}

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use chronolith_wal::{RecoveryMode, SegmentId, DAMAGED_DIR, SEAL_FRAME_BYTES};
use common::{open, segments, small, write_records};

#[test]
fn salvage_keeps_prefix_moves_damaged_segment_aside_and_replays_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_records(dir.path(), small(1024), 60);
    let segs = segments(dir.path());
    assert!(segs.len() > 3);
    // Damage the third record of segment 2.
    let in_seg2: Vec<_> = written.iter().filter(|r| r.0.segment == SegmentId(2)).collect();
    let victim = in_seg2[2];
    let original = std::fs::read(&segs[1]).unwrap();
    let mut bytes = original.clone();
    bytes[victim.0.offset as usize + 10] ^= 0x80;
    std::fs::write(&segs[1], &bytes).unwrap();

    let (wal, report, seen) = open(dir.path(), small(1024), RecoveryMode::Salvage).unwrap();
    // Everything except the records of segment 2 from the victim on.
    let expected: Vec<_> =
        written.iter().filter(|r| !(r.0.segment == SegmentId(2) && r.0.offset >= victim.0.offset)).cloned().collect();
    assert_eq!(seen, expected);
    assert_eq!(report.salvaged.len(), 1);
    let ev = &report.salvaged[0];
    assert_eq!((ev.segment, ev.offset), (SegmentId(2), victim.0.offset));
    assert!(ev.reason.contains("crc mismatch"), "{}", ev.reason);
    assert_eq!(ev.moved_to, dir.path().join(DAMAGED_DIR).join("00000000000000000002.wal"));
    // The damaged file is kept byte for byte; the live one holds the valid prefix.
    assert_eq!(std::fs::read(&ev.moved_to).unwrap(), bytes);
    let live = std::fs::read(&segs[1]).unwrap();
    let cut = victim.0.offset as usize;
    assert_eq!(live[..cut], original[..cut]);
    assert_eq!(live.len(), cut + SEAL_FRAME_BYTES, "valid prefix plus a seal frame");
    wal.close().unwrap();

    // Reopening is now clean, in either mode.
    let (_wal, report, seen2) = open(dir.path(), small(1024), RecoveryMode::TruncateTornTail).unwrap();
    assert!(report.salvaged.is_empty());
    assert_eq!(seen2, expected);
}

#[test]
fn salvage_moves_a_segment_with_a_bad_header_whole() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_records(dir.path(), small(1024), 60);
    let segs = segments(dir.path());
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    bytes[3] ^= 1;
    std::fs::write(&segs[0], &bytes).unwrap();
    let (_wal, report, seen) = open(dir.path(), small(1024), RecoveryMode::Salvage).unwrap();
    let expected: Vec<_> = written.iter().filter(|r| r.0.segment != SegmentId(1)).cloned().collect();
    assert_eq!(seen, expected);
    assert_eq!(report.salvaged[0].offset, 0);
    assert!(!segs[0].exists());
    assert_eq!(std::fs::read(&report.salvaged[0].moved_to).unwrap(), bytes);
}

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use chronolith_wal::{RecoveryMode, SegmentId, DAMAGED_DIR};
use common::{open, segments, small, write_records};

#[test]
fn salvage_drops_only_the_damaged_record_and_moves_the_original_aside() {
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
    // Everything except the damaged record: replay resynchronises at the next frame.
    let strip = |v: &[common::Rec]| v.iter().map(|r| (r.1, r.2.clone())).collect::<Vec<_>>();
    let expected: Vec<_> = written.iter().filter(|r| r.0 != victim.0).cloned().collect();
    assert_eq!(strip(&seen), strip(&expected));
    assert_eq!(report.salvaged.len(), 1);
    let ev = &report.salvaged[0];
    assert_eq!((ev.segment, ev.offset), (SegmentId(2), victim.0.offset));
    let victim_len = in_seg2[3].0.offset - victim.0.offset;
    assert_eq!(ev.bytes, victim_len, "exactly the damaged frame is dropped");
    assert!(ev.reason.contains("crc mismatch"), "{}", ev.reason);
    assert_eq!(ev.moved_to, dir.path().join(DAMAGED_DIR).join("00000000000000000002.wal"));
    // The damaged file is kept byte for byte; the live one holds every other frame.
    assert_eq!(std::fs::read(&ev.moved_to).unwrap(), bytes);
    let live = std::fs::read(&segs[1]).unwrap();
    let cut = victim.0.offset as usize;
    assert_eq!(live[..cut], original[..cut]);
    assert_eq!(live[cut..], original[cut + victim_len as usize..], "the frames after the damaged one, and the seal");
    assert_eq!(live.len() + victim_len as usize, original.len());
    wal.close().unwrap();

    // Reopening is now clean, in either mode.
    let (_wal, report, seen2) = open(dir.path(), small(1024), RecoveryMode::TruncateTornTail).unwrap();
    assert!(report.salvaged.is_empty());
    assert_eq!(strip(&seen2), strip(&expected));
}

#[test]
fn salvage_rewrites_a_bad_header_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_records(dir.path(), small(1024), 60);
    let segs = segments(dir.path());
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    bytes[3] ^= 1;
    std::fs::write(&segs[0], &bytes).unwrap();
    let (_wal, report, seen) = open(dir.path(), small(1024), RecoveryMode::Salvage).unwrap();
    assert_eq!(seen, written, "the header names nothing the file name does not");
    assert_eq!((report.salvaged[0].offset, report.salvaged[0].bytes), (0, 32));
    assert!(report.salvaged[0].reason.contains("magic"), "{}", report.salvaged[0].reason);
    assert_eq!(std::fs::read(&report.salvaged[0].moved_to).unwrap(), bytes);
}

#[test]
fn salvage_moves_a_file_with_nothing_valid_whole() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_records(dir.path(), small(1024), 60);
    let segs = segments(dir.path());
    let garbage: Vec<u8> = (0..700u32).map(|i| (i * 131 % 251) as u8 | 1).collect();
    std::fs::write(&segs[0], &garbage).unwrap();
    let (_wal, report, seen) = open(dir.path(), small(1024), RecoveryMode::Salvage).unwrap();
    let expected: Vec<_> = written.iter().filter(|r| r.0.segment != SegmentId(1)).cloned().collect();
    assert_eq!(seen, expected);
    assert_eq!(report.salvaged[0].offset, 0);
    assert!(!segs[0].exists());
    assert_eq!(std::fs::read(&report.salvaged[0].moved_to).unwrap(), garbage);
}

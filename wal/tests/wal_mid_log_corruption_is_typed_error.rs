#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use chronolith_wal::{Error, RecoveryMode, SegmentId};
use common::{open, segments, small, write_records};

#[test]
fn flipped_byte_in_a_non_tail_record_is_corruption_with_segment_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_records(dir.path(), small(1 << 20), 30);
    let seg = &segments(dir.path())[0];
    let victim = &written[10];
    let mut bytes = std::fs::read(seg).unwrap();
    bytes[victim.0.offset as usize + 12] ^= 0xFF; // inside the payload
    std::fs::write(seg, &bytes).unwrap();

    let err = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap_err();
    match err {
        Error::Corruption { segment, offset, reason } => {
            assert_eq!(segment, SegmentId(1));
            assert_eq!(offset, victim.0.offset);
            assert!(reason.starts_with("crc mismatch: expected 0x"), "{reason}");
        }
        other => panic!("expected corruption, got {other}"),
    }
    // Nothing was changed on disk by the failed open.
    assert_eq!(std::fs::read(seg).unwrap(), bytes);
}

#[test]
fn damage_in_the_last_segment_followed_by_valid_records_is_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_records(dir.path(), small(1 << 20), 30);
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 1, "the data segment is the last one");
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    let victim = &written[28]; // one valid record follows it
    bytes[victim.0.offset as usize + 5] ^= 0x01; // inside the length field
    std::fs::write(&segs[0], &bytes).unwrap();
    let err = open(dir.path(), small(1 << 20), RecoveryMode::TruncateTornTail).unwrap_err();
    assert!(matches!(err, Error::Corruption { offset, .. } if offset == victim.0.offset), "{err}");
}

#[test]
fn bad_header_in_a_non_last_segment_is_corruption_at_offset_zero() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), small(1024), 50);
    let segs = segments(dir.path());
    let mut bytes = std::fs::read(&segs[1]).unwrap();
    bytes[0] = b'X';
    std::fs::write(&segs[1], &bytes).unwrap();
    let err = open(dir.path(), small(1024), RecoveryMode::TruncateTornTail).unwrap_err();
    assert!(matches!(err, Error::Corruption { segment: SegmentId(2), offset: 0, .. }), "{err}");
}

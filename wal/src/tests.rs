//! Unit tests that need the crate's internals (the fault switches in `io::Fs`).
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::sync::atomic::Ordering;

use super::*;

fn open(dir: &Path, durability: Durability) -> (Wal, Vec<(Position, u8, Vec<u8>)>) {
    let mut seen = Vec::new();
    let opts = WalOptions { segment_bytes_max: 4096, durability };
    let (wal, _) =
        Wal::open(dir, opts, RecoveryMode::TruncateTornTail, |p, t, b| seen.push((p, t, b.to_vec()))).unwrap();
    (wal, seen)
}

#[test]
fn failed_fsync_poisons_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Always);
    wal.append(&[(1, b"kept".as_slice())]).unwrap();
    wal.writer.fs.faults.fail_sync.store(true, Ordering::SeqCst);
    let err = wal.append(&[(1, b"maybe".as_slice())]).unwrap_err();
    assert!(matches!(err, Error::Io { op: "fdatasync", .. }), "{err}");
    // Even once the disk "recovers", the handle stays poisoned.
    wal.writer.fs.faults.fail_sync.store(false, Ordering::SeqCst);
    assert!(matches!(wal.append(&[(1, b"x".as_slice())]), Err(Error::Poisoned)));
    assert!(matches!(wal.sync(), Err(Error::Poisoned)));
    assert!(matches!(wal.cut(), Err(Error::Poisoned)));
    assert!(matches!(wal.close(), Err(Error::Poisoned)));

    let (wal, seen) = open(dir.path(), Durability::Always);
    assert_eq!(seen[0].2, b"kept");
    // The record whose fsync failed may or may not be there; nothing else is.
    assert!(seen.len() <= 2);
    wal.append(&[(1, b"after".as_slice())]).unwrap();
    wal.close().unwrap();
}

#[test]
fn failed_write_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Never);
    wal.writer.fs.faults.fail_write.store(true, Ordering::SeqCst);
    assert!(matches!(wal.append(&[(1, b"x".as_slice())]), Err(Error::Io { op: "write", .. })));
    wal.writer.fs.faults.fail_write.store(false, Ordering::SeqCst);
    assert!(matches!(wal.append(&[(1, b"y".as_slice())]), Err(Error::Poisoned)));
}

#[test]
fn failed_background_fsync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Periodic { interval_ms: 1 });
    wal.writer.fs.faults.fail_sync.store(true, Ordering::SeqCst);
    wal.append(&[(1, b"x".as_slice())]).unwrap();
    let mut poisoned = false;
    for _ in 0..2000 {
        if matches!(wal.append(&[(1, b"y".as_slice())]), Err(Error::Poisoned)) {
            poisoned = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(poisoned);
    drop(wal);
}

#[test]
fn oversized_record_is_rejected_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Never);
    let big = vec![0u8; MAX_RECORD_BYTES + 1];
    let err = wal.append(&[(1, b"ok".as_slice()), (1, big.as_slice())]).unwrap_err();
    assert!(
        matches!(err, Error::RecordTooLarge { len, max } if len == MAX_RECORD_BYTES + 1 && max == MAX_RECORD_BYTES)
    );
    assert_eq!(wal.stats().records_written, 0);
    // Still usable.
    wal.append(&[(1, b"ok".as_slice())]).unwrap();
}

#[test]
fn empty_append_and_sync_are_no_ops() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Always);
    let p = wal.append(&[]).unwrap();
    assert_eq!(p, Position { segment: SegmentId(1), offset: SEGMENT_HEADER_BYTES as u64 });
    wal.sync().unwrap();
    assert_eq!(wal.stats().fsyncs, 0);
}

#[test]
fn cut_starts_next_segment_and_stats_follow() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Never);
    let p = wal.append(&[(5, b"abc".as_slice())]).unwrap();
    assert_eq!(p.segment, SegmentId(1));
    assert_eq!(wal.cut().unwrap(), SegmentId(2));
    assert_eq!(wal.current_segment(), SegmentId(2));
    let p = wal.append(&[(5, b"def".as_slice())]).unwrap();
    assert_eq!(p, Position { segment: SegmentId(2), offset: SEGMENT_HEADER_BYTES as u64 });
    let s = wal.stats();
    assert_eq!(s.segments, 2);
    assert_eq!(s.records_written, 2);
    assert_eq!(s.bytes_written, 2 * (FRAME_HEADER_BYTES as u64 + 3));
    assert_eq!(s.disk_bytes, 2 * SEGMENT_HEADER_BYTES as u64 + SEAL_FRAME_BYTES as u64 + s.bytes_written);
    assert_eq!(s.current_segment, SegmentId(2));
    assert!(s.fsyncs >= 1);
    wal.close().unwrap();
}

#[test]
fn record_type_zero_is_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Never);
    assert!(matches!(wal.append(&[(0, b"x".as_slice())]), Err(Error::ReservedRecordType { record_type: 0 })));
    wal.append(&[(255, b"x".as_slice())]).unwrap();
}

#[test]
fn display_formats() {
    assert_eq!(SegmentId(42).to_string(), "00000042");
    let e = Error::Corruption { segment: SegmentId(3), offset: 77, reason: "crc mismatch".into() };
    assert_eq!(e.to_string(), "wal corruption in segment 00000003 at offset 77: crc mismatch");
    let io = Error::io("/x", "write", std::io::Error::other("boom"));
    assert!(std::error::Error::source(&io).is_some());
}

#[test]
fn wal_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Wal>();
}

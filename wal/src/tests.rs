//! Unit tests that need the crate's internals, and the WAL under injected faults.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use super::*;
use crate::fault::{self, Fault, Op, Rule};

fn open(dir: &Path, durability: Durability) -> (Wal, Vec<(Position, u8, Vec<u8>)>) {
    let mut seen = Vec::new();
    let opts = WalOptions { segment_bytes_max: 4096, durability };
    let (wal, _) =
        Wal::open(dir, opts, RecoveryMode::TruncateTornTail, |p, t, b| seen.push((p, t, b.to_vec()))).unwrap();
    (wal, seen)
}

fn records(seen: &[(Position, u8, Vec<u8>)]) -> Vec<Vec<u8>> {
    seen.iter().map(|(_, _, b)| b.clone()).collect()
}

fn is_enospc(e: &Error, want_op: &str) -> bool {
    matches!(e, Error::Io { op, .. } if *op == want_op) && e.is_storage_full()
}

#[test]
fn failed_fsync_poisons_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Always);
    wal.append(&[(1, b"kept".as_slice())]).unwrap();
    let guard = fault::inject(Rule::new(dir.path(), Op::Fsync, Fault::Eio));
    let err = wal.append(&[(1, b"maybe".as_slice())]).unwrap_err();
    assert!(matches!(err, Error::Io { op: "fdatasync", .. }), "{err}");
    assert!(wal.is_poisoned());
    // Even once the disk "recovers", the handle stays poisoned.
    drop(guard);
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
fn failed_write_is_rolled_back_and_appends_go_on() {
    for durability in [Durability::Always, Durability::Never] {
        for fault in [Fault::NoSpace, Fault::Eio, Fault::Torn { keep: 5 }] {
            let dir = tempfile::tempdir().unwrap();
            let (wal, _) = open(dir.path(), durability);
            wal.append(&[(1, b"before".as_slice())]).unwrap();
            let guard = fault::inject(Rule::new(dir.path(), Op::Write, fault));
            let err = wal.append(&[(1, b"lost".as_slice()), (1, b"lost too".as_slice())]).unwrap_err();
            assert!(matches!(err, Error::Io { op: "write", .. }), "{err}");
            assert_eq!(err.is_storage_full(), fault != Fault::Eio, "{err}");
            assert!(!wal.is_poisoned());
            // Still failing while the fault lasts, still not poisoned.
            assert!(wal.append(&[(1, b"lost 3".as_slice())]).is_err());
            drop(guard);
            let p = wal.append(&[(1, b"after".as_slice())]).unwrap();
            assert_eq!(p.offset, (SEGMENT_HEADER_BYTES + FRAME_HEADER_BYTES + 6) as u64, "{fault:?}");
            assert_eq!(wal.stats().records_written, 2);
            // A crash (no close) keeps exactly the acknowledged records.
            drop(wal);
            let (wal, seen) = open(dir.path(), durability);
            assert_eq!(records(&seen), vec![b"before".to_vec(), b"after".to_vec()], "{fault:?} {durability:?}");
            wal.close().unwrap();
        }
    }
}

#[test]
fn failed_rotation_removes_the_new_segment_and_rolls_back() {
    // Faults while a batch cuts to a new segment: at the seal frame, the new segment's
    // create, its header write. Each rolls back to one segment and appends go on there.
    let cases = [
        (Op::Write, Fault::NoSpace, 0, "write"),
        (Op::Create, Fault::NoSpace, 0, "create"),
        (Op::Write, Fault::Torn { keep: 7 }, 1, "write"),
    ];
    for (op, fault, skip, want_op) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = open(dir.path(), Durability::Always);
        wal.append(&[(1, b"first".as_slice())]).unwrap();
        // skip: writes let through before the failure (0: the seal frame; 1: the header).
        let guard = fault::inject(Rule::new(dir.path(), op, fault).after(skip));
        let err = wal.cut().unwrap_err();
        assert!(is_enospc(&err, want_op), "{op:?} {fault:?}: {err}");
        assert!(!wal.is_poisoned());
        drop(guard);
        assert_eq!(wal.current_segment(), SegmentId(1));
        assert_eq!(wal.stats().segments, 1);
        wal.append(&[(1, b"second".as_slice())]).unwrap();
        assert_eq!(wal.cut().unwrap(), SegmentId(2));
        wal.append(&[(1, b"third".as_slice())]).unwrap();
        drop(wal);
        let (wal, seen) = open(dir.path(), Durability::Always);
        assert_eq!(records(&seen), vec![b"first".to_vec(), b"second".to_vec(), b"third".to_vec()], "{op:?}");
        wal.close().unwrap();
    }
}

#[test]
fn failed_segment_create_at_size_rotation_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Always);
    let payload = vec![7u8; 1500];
    wal.append(&[(1, payload.as_slice())]).unwrap();
    wal.append(&[(1, payload.as_slice())]).unwrap();
    // The third append does not fit in 4096 bytes: it cuts, and the create fails.
    let guard = fault::inject(Rule::new(dir.path(), Op::Create, Fault::NoSpace));
    assert!(wal.append(&[(1, payload.as_slice())]).unwrap_err().is_storage_full());
    drop(guard);
    let p = wal.append(&[(1, payload.as_slice())]).unwrap();
    assert_eq!(p.segment, SegmentId(2));
    drop(wal);
    let (_, seen) = open(dir.path(), Durability::Always);
    assert_eq!(seen.len(), 3);
}

#[test]
fn failed_roll_back_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Never);
    let _w = fault::inject(Rule::new(dir.path(), Op::Write, Fault::Eio));
    let _t = fault::inject(Rule::new(dir.path(), Op::Truncate, Fault::Eio));
    assert!(matches!(wal.append(&[(1, b"x".as_slice())]), Err(Error::Io { op: "write", .. })));
    assert!(wal.is_poisoned());
    assert!(matches!(wal.append(&[(1, b"y".as_slice())]), Err(Error::Poisoned)));
}

#[test]
fn concurrent_appenders_through_a_failure_lose_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Always);
    let wal = std::sync::Arc::new(wal);
    let guard = fault::inject(Rule::new(dir.path(), Op::Write, Fault::NoSpace).after(40).times(15));
    let acked: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4u8)
            .map(|t| {
                let wal = &wal;
                s.spawn(move || {
                    let mut ok = Vec::new();
                    for i in 0..100u32 {
                        let rec = [&[t][..], &i.to_le_bytes()[..]].concat();
                        match wal.append(&[(1, rec.as_slice())]) {
                            Ok(_) => ok.push(rec),
                            Err(e) => assert!(e.is_storage_full(), "{e}"),
                        }
                    }
                    ok
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(guard.failures(), 15);
    drop(guard);
    assert!(!wal.is_poisoned());
    drop(wal);
    let (_, seen) = open(dir.path(), Durability::Always);
    let mut seen = records(&seen);
    let mut acked: Vec<Vec<u8>> = acked.into_iter().flatten().collect();
    assert!(acked.len() < 400, "some appends must have failed");
    seen.sort();
    acked.sort();
    // Exactly the acknowledged records: nothing lost, nothing from a failed batch.
    assert_eq!(seen, acked);
}

#[test]
fn failed_background_fsync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), Durability::Periodic { interval_ms: 1 });
    let _guard = fault::inject(Rule::new(dir.path(), Op::Fsync, Fault::Eio));
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

//! ENOSPC and EIO when the WAL starts a new segment (size rotation while appending, and
//! the cut a seal makes): the new segment is removed, the old one rolled back to its
//! last good frame, the append (or seal) returns a typed error, and appends resume
//! without a restart. A crash afterwards loses no acknowledged sample.
#![allow(clippy::unwrap_used, clippy::panic)]

mod fault_common;

use chronolith_engine::{Engine, Options, SAMPLE_LOG_DIR};
use chronolith_wal::fault::{self, Fault, Op, Rule};
use fault_common::Ledger;

fn open(dir: &std::path::Path) -> Engine {
    let opts = Options { wal_segment_bytes_max: 64 * 1024, ..fault_common::options() };
    Engine::open(dir, opts).unwrap()
}

/// `target`: the path under the WAL directory the rule matches (the directory, or one
/// segment file).
fn rotation(fault: Fault, op: Op) {
    rotation_at(fault, op, None);
}

fn rotation_at(fault: Fault, op: Op, segment_file: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut ledger = Ledger::default();
    let mut t = 1_000_000;
    ledger.append_round(&e, t).unwrap();
    let first = e.stats().wal_segments;
    let wal_dir = dir.path().join(SAMPLE_LOG_DIR);
    let target = segment_file.map_or(wal_dir.clone(), |f| wal_dir.join(f));
    let guard = fault::inject(Rule::new(&target, op, fault));
    // Append until the segment fills and the rotation fails.
    let err = loop {
        t += 10;
        if let Err(err) = ledger.append_round(&e, t) {
            break err;
        }
        assert!(t < 1_000_000 + 10 * 20_000, "no rotation happened");
    };
    assert_eq!(err.is_storage_full(), fault != Fault::Eio, "{err}");
    assert!(matches!(err, chronolith_engine::Error::Wal(chronolith_wal::Error::Io { .. })), "{err}");
    assert_eq!(e.stats().wal_segments, first, "the failed segment must be gone");
    drop(guard);
    for _ in 0..50 {
        t += 10;
        ledger.append_round(&e, t).unwrap();
    }
    assert!(e.stats().wal_segments > first);
    drop(e);
    let e = open(dir.path());
    ledger.verify(&e);
}

#[test]
fn rotation_create_enospc() {
    rotation(Fault::NoSpace, Op::Create);
}

#[test]
fn rotation_create_eio() {
    rotation(Fault::Eio, Op::Create);
}

#[test]
fn rotation_new_segment_header_torn() {
    // A fresh directory appends to segment 1; the rotation creates segment 2, whose
    // header write is cut short.
    rotation_at(Fault::Torn { keep: 9 }, Op::Write, Some("00000000000000000002.wal"));
}

#[test]
fn seal_cut_enospc_keeps_samples() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut ledger = Ledger::default();
    for i in 0..30 {
        ledger.append_round(&e, 1_000_000 + i * 1000).unwrap();
    }
    // The seal writes its block, then cuts the WAL: the cut's segment create fails.
    let guard = fault::inject(Rule::new(&dir.path().join(SAMPLE_LOG_DIR), Op::Create, Fault::NoSpace));
    let err = e.seal_all().unwrap_err();
    assert!(err.is_storage_full(), "{err}");
    ledger.verify(&e);
    drop(guard);
    for i in 30..40 {
        ledger.append_round(&e, 1_000_000 + i * 1000).unwrap();
    }
    e.seal_all().unwrap();
    ledger.append_round(&e, 2_000_000).unwrap();
    drop(e);
    let e = open(dir.path());
    ledger.verify(&e);
}

#[test]
fn seal_segment_removal_eio_keeps_samples_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut ledger = Ledger::default();
    for i in 0..30 {
        ledger.append_round(&e, 1_000_000 + i * 1000).unwrap();
    }
    // The seal writes its blocks and cuts the WAL; removing the covered segments fails.
    let wal_dir = dir.path().join(SAMPLE_LOG_DIR);
    let guard = fault::inject(Rule::new(&wal_dir, Op::Remove, Fault::Eio));
    let err = e.seal_all().unwrap_err();
    assert!(matches!(err, chronolith_engine::Error::Wal(chronolith_wal::Error::Io { op: "unlink", .. })), "{err}");
    assert!(guard.failures() > 0);
    ledger.verify(&e);
    let segments_left = e.stats().wal_segments;
    drop(guard);
    // Appends go on; the next seal removes what the failed one could not.
    for i in 30..40 {
        ledger.append_round(&e, 1_000_000 + i * 1000).unwrap();
    }
    e.seal_all().unwrap();
    assert!(e.stats().wal_segments < segments_left, "covered segments removed by the next seal");
    ledger.append_round(&e, 2_000_000).unwrap();
    drop(e);
    let e = open(dir.path());
    ledger.verify(&e);
    let in_blocks: u64 = e.blocks().snapshot().iter().map(|b| b.meta().samples).sum();
    assert_eq!(in_blocks + e.head().samples(), fault_common::read_all(&e).len() as u64, "stored once");
}

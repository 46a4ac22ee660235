//! ENOSPC, EIO and torn writes at every step of writing a block (the engine's `fsutil`:
//! temporary directory create, index/meta file create and write, file fsync, rename,
//! directory fsync): the seal returns a typed error, the samples stay readable from the
//! head, appends go on, the seal succeeds once the fault clears, and after a crash no
//! half-written block is read and every acknowledged sample is there exactly once.
#![allow(clippy::unwrap_used, clippy::panic)]

mod fault_common;

use chronolith_engine::BLOCKS_DIR;
use chronolith_wal::fault::{self, Fault, Op, Rule};
use fault_common::{open, Ledger};

/// Each case: the op, the fault, and how many matching calls pass before it fails.
fn cases() -> Vec<(Op, Fault, u64)> {
    let mut v = Vec::new();
    for fault in [Fault::NoSpace, Fault::Eio] {
        // create: 0 = temporary dir, 1 = index file, 2 = meta file.
        for skip in 0..3 {
            v.push((Op::Create, fault, skip));
        }
        // fsync: 0 = chunks, 1 = index, 2 = meta.
        for skip in 0..3 {
            v.push((Op::Fsync, fault, skip));
        }
        v.push((Op::Rename, fault, 0));
        // directory fsync: 0 = temporary dir, 1 = blocks dir after the rename.
        for skip in 0..2 {
            v.push((Op::SyncDir, fault, skip));
        }
    }
    // torn: 0 = index, 1 = meta.
    for skip in 0..2 {
        v.push((Op::Write, Fault::Torn { keep: 10 }, skip));
    }
    v
}

#[test]
fn every_block_write_step() {
    for (op, fault, skip) in cases() {
        let what = format!("{op:?} {fault:?} after {skip}");
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path());
        let mut ledger = Ledger::default();
        let mut t = 1_000_000;
        for _ in 0..30 {
            ledger.append_round(&e, t).unwrap();
            t += 5000;
        }
        let guard = fault::inject(Rule::new(&dir.path().join(BLOCKS_DIR), op, fault).after(skip).times(1));
        let err = e.seal_all().unwrap_err();
        assert_eq!(guard.failures(), 1, "{what}");
        assert!(matches!(err, chronolith_engine::Error::Io { .. }), "{what}: {err}");
        assert_eq!(err.is_storage_full(), fault != Fault::Eio, "{what}: {err}");
        drop(guard);
        ledger.verify(&e);
        // Appends go on (above the seal boundary) and the next seal succeeds.
        for _ in 0..5 {
            ledger.append_round(&e, t).unwrap();
            t += 5000;
        }
        e.seal_all().unwrap();
        ledger.append_round(&e, t).unwrap();
        ledger.verify(&e);
        drop(e); // crash
        let e = open(dir.path());
        ledger.verify(&e);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(BLOCKS_DIR))
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
    }
}

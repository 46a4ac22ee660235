//! ENOSPC, EIO and torn writes at every filesystem call of sealing a block (the engine's
//! `fsutil`: temporary directory, `chunks`/`index`/`meta` create, every chunk frame
//! write, file fsyncs, rename, directory fsyncs, the removal of a stale temporary
//! directory), each fault at the n-th call of its kind for n = 0, 1, ... until a seal no
//! longer makes an n-th call: the seal returns a typed error, the samples stay readable
//! from the head, appends go on, the seal succeeds once the fault clears, and after a
//! crash no half-written block is read and every acknowledged sample is there exactly
//! once (the blocks' sample counts add up: a retried seal never writes a block twice).
#![allow(clippy::unwrap_used, clippy::panic)]

mod fault_common;

use chronolith_engine::{Durability, Engine, Options, BLOCKS_DIR};
use chronolith_wal::fault::{self, Fault, Op, Rule};
use fault_common::Ledger;
use std::path::Path;

/// The WAL's durability does not matter here (a crash is a drop, which loses nothing in
/// any mode); without an fsync per append the cases run in a fraction of the time.
fn open(dir: &Path) -> Engine {
    Engine::open(dir, Options { durability: Durability::Never, ..fault_common::options() }).unwrap()
}

fn faults(op: Op) -> Vec<Fault> {
    let mut v = vec![Fault::NoSpace, Fault::Eio];
    if op == Op::Write {
        v.push(Fault::Torn { keep: 10 });
    }
    v
}

/// Samples in blocks plus samples in the head equal the distinct samples read.
fn stored_once(e: &Engine, ledger: &Ledger, what: &str) {
    let in_blocks: u64 = e.blocks().snapshot().iter().map(|b| b.meta().samples).sum();
    let read = fault_common::read_all(e).len() as u64;
    assert_eq!(in_blocks + e.head().samples(), read, "{what}: a sample is stored twice");
    ledger.verify(e);
}

#[test]
fn every_block_write_call() {
    let mut cases = 0;
    for op in [Op::Create, Op::Write, Op::Fsync, Op::Rename, Op::SyncDir, Op::Remove] {
        for fault in faults(op) {
            for skip in 0.. {
                let what = format!("{op:?} {fault:?} at call {skip}");
                let dir = fault_common::scratch_dir();
                let e = open(dir.path());
                let mut ledger = Ledger::default();
                let mut t = 1_000_000;
                // Three one-minute partitions, six series each: one block per partition.
                for _ in 0..30 {
                    ledger.append_round(&e, t).unwrap();
                    t += 5000;
                }
                let guard = fault::inject(Rule::new(&dir.path().join(BLOCKS_DIR), op, fault).after(skip).times(1));
                let res = e.seal_all();
                let fired = guard.failures() == 1;
                drop(guard);
                if !fired {
                    assert!(res.is_ok(), "{what}: {res:?}");
                    stored_once(&e, &ledger, &what);
                    break;
                }
                cases += 1;
                let err = res.unwrap_err();
                assert!(matches!(err, chronolith_engine::Error::Io { .. }), "{what}: {err}");
                assert_eq!(err.is_storage_full(), fault != Fault::Eio, "{what}: {err}");
                stored_once(&e, &ledger, &what);
                // Appends go on (above the seal boundary) and the next seal succeeds.
                for _ in 0..5 {
                    ledger.append_round(&e, t).unwrap();
                    t += 5000;
                }
                e.seal_all().unwrap();
                ledger.append_round(&e, t).unwrap();
                stored_once(&e, &ledger, &what);
                drop(e); // crash
                let e = open(dir.path());
                stored_once(&e, &ledger, &what);
                let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(BLOCKS_DIR))
                    .unwrap()
                    .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains('.'))
                    .collect();
                assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
            }
        }
    }
    eprintln!("{cases} injected failures");
    assert!(cases > 80, "{cases}");
}

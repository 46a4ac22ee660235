//! A failed WAL fsync (EIO) is the one WAL fault that is not rolled back: the file's
//! state is unknown, so the engine is poisoned (appends fail with `Closed`) until reopen,
//! and reopen recovers every acknowledged sample and takes appends again.
#![allow(clippy::unwrap_used, clippy::panic)]

mod fault_common;

use chronolith_engine::{Error, SAMPLE_LOG_DIR, SERIES_LOG_DIR};
use chronolith_wal::fault::{self, Fault, Op, Rule};
use fault_common::{open, Ledger};

fn run(log_dir: &str) {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut ledger = Ledger::default();
    for i in 0..10 {
        ledger.append_round(&e, 1_000_000 + i * 1000).unwrap();
    }
    let guard = fault::inject(Rule::new(&dir.path().join(log_dir), Op::Fsync, Fault::Eio));
    let err = if log_dir == SERIES_LOG_DIR {
        e.series_ref(&chronolith_engine::Labels::metric("new_metric", [("a", "b")]).unwrap()).unwrap_err()
    } else {
        ledger.append_round(&e, 1_010_000).unwrap_err()
    };
    assert!(matches!(err, Error::Wal(chronolith_wal::Error::Io { op: "fdatasync", .. })), "{err}");
    drop(guard);
    // Poisoned even though the disk is fine again.
    assert!(matches!(ledger.append_round(&e, 1_011_000), Err(Error::Closed)));
    drop(e);
    let e = open(dir.path());
    ledger.verify(&e);
    ledger.append_round(&e, 1_012_000).unwrap();
    ledger.verify(&e);
    e.close().unwrap();
}

#[test]
fn samples_log_fsync_eio() {
    run(SAMPLE_LOG_DIR);
}

#[test]
fn series_log_fsync_eio() {
    run(SERIES_LOG_DIR);
}

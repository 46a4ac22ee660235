//! ENOSPC, EIO and torn writes at the WAL append (samples log and series log): the
//! append returns a typed error, the engine is not poisoned, appends resume as soon as
//! the fault clears (no restart), and after a crash (drop without close) every
//! acknowledged sample is there and nothing that was never sent.
#![allow(clippy::unwrap_used, clippy::panic)]

mod fault_common;

use chronolith_engine::{Error, SAMPLE_LOG_DIR, SERIES_LOG_DIR};
use chronolith_wal::fault::{self, Fault, Op, Rule};
use fault_common::{open, Ledger};

fn run(log_dir: &str, fault: Fault) {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut ledger = Ledger::default();
    let mut t = 1_000_000;
    // Series exist already (first round) unless the fault is on the series log, where
    // the failing rounds must create new series: use new label sets there.
    for _ in 0..20 {
        ledger.append_round(&e, t).unwrap();
        t += 1000;
    }
    let guard = fault::inject(Rule::new(&dir.path().join(log_dir), Op::Write, fault));
    for _ in 0..5 {
        let err = if log_dir == SERIES_LOG_DIR {
            e.series_ref(&chronolith_engine::Labels::metric("new_metric", [("t", t.to_string())]).unwrap()).unwrap_err()
        } else {
            ledger.append_round(&e, t).unwrap_err()
        };
        match &err {
            Error::Wal(chronolith_wal::Error::Io { op: "write", .. }) => {}
            other => panic!("{fault:?} on {log_dir}: untyped error {other}"),
        }
        assert_eq!(err.is_storage_full(), fault != Fault::Eio, "{err}");
        t += 1000;
    }
    assert!(guard.failures() >= 5);
    drop(guard);
    // No restart: the same engine takes appends again, including new series.
    for _ in 0..20 {
        ledger.append_round(&e, t).unwrap();
        t += 1000;
    }
    e.series_ref(&chronolith_engine::Labels::metric("new_metric", [("t", "after")]).unwrap()).unwrap();
    ledger.verify(&e);
    drop(e); // crash: no close
    let e = open(dir.path());
    ledger.verify(&e);
    assert_eq!(e.registry().len(), fault_common::SERIES + 1);
}

#[test]
fn samples_log_enospc() {
    run(SAMPLE_LOG_DIR, Fault::NoSpace);
}

#[test]
fn samples_log_eio() {
    run(SAMPLE_LOG_DIR, Fault::Eio);
}

#[test]
fn samples_log_torn_write() {
    run(SAMPLE_LOG_DIR, Fault::Torn { keep: 11 });
}

#[test]
fn series_log_enospc() {
    run(SERIES_LOG_DIR, Fault::NoSpace);
}

#[test]
fn series_log_torn_write() {
    run(SERIES_LOG_DIR, Fault::Torn { keep: 3 });
}

#[test]
fn retried_batch_after_failure_is_durable() {
    // The failed batch's samples may sit in the head unlogged; the retry sees them as
    // duplicates, which are logged, so the retry's acknowledgement survives a crash.
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut ledger = Ledger::default();
    ledger.append_round(&e, 1_000_000).unwrap();
    let guard = fault::inject(Rule::new(&dir.path().join(SAMPLE_LOG_DIR), Op::Write, Fault::NoSpace));
    assert!(ledger.append_round(&e, 1_001_000).unwrap_err().is_storage_full());
    drop(guard);
    ledger.append_round(&e, 1_001_000).unwrap();
    drop(e);
    let e = open(dir.path());
    ledger.verify(&e);
    assert_eq!(fault_common::read_all(&e).len(), 2 * fault_common::SERIES);
}

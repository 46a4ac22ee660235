//! A real full disk, not a simulated one: the test mounts an 8 MiB tmpfs (needs root, as
//! CI has; elsewhere it is skipped with a loud message), runs the engine on it, fills the
//! filesystem until `append` fails, and checks: the error is typed (storage full), the
//! engine is not poisoned, every acknowledged sample is readable, appends resume without
//! a restart once a filler file is deleted, and after a crash while full (reopen on the
//! full disk fails cleanly or works) everything acknowledged survives the reopen.
#![allow(clippy::unwrap_used, clippy::panic)]

mod fault_common;

use fault_common::{open, Ledger};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Unmounts on drop, on every path out of the test (panics included).
struct Mount {
    dir: PathBuf,
}

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Option<Mount> {
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).output();
        match out {
            Ok(o) if o.status.success() => Some(Mount { dir: dir.to_path_buf() }),
            Ok(o) => {
                eprintln!(
                    "\n!!!!! SKIPPED disk_full_real_tmpfs_resumes: cannot mount a tmpfs here ({}); run as root to test a real full disk !!!!!\n",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("\n!!!!! SKIPPED disk_full_real_tmpfs_resumes: no mount command ({e}) !!!!!\n");
                None
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
        if !ok {
            // Something still holds a file open (a panic mid-test): detach it lazily.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Fills the filesystem with `path` until ENOSPC, then gives back `headroom` bytes.
fn fill(path: &Path, headroom: u64) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0xA5u8; 64 * 1024];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(headroom)).unwrap();
}

/// Appends rounds until one fails; returns the error and the next timestamp.
fn append_until_full(
    e: &chronolith_engine::Engine,
    ledger: &mut Ledger,
    mut t: i64,
) -> (chronolith_engine::Error, i64) {
    for _ in 0..200_000 {
        match ledger.append_round(e, t) {
            Ok(()) => t += 10,
            Err(err) => return (err, t + 10),
        }
    }
    panic!("the disk never filled up");
}

#[test]
fn fill_free_resume_and_crash_while_full() {
    let mnt = tempfile::tempdir().unwrap();
    let Some(_mount) = Mount::tmpfs(mnt.path(), "8m") else { return };
    let db = mnt.path().join("db");
    let filler = mnt.path().join("filler");
    let e = open(&db);
    let mut ledger = Ledger::default();
    ledger.append_round(&e, 1_000_000).unwrap();

    // Phase 1: fill, fail, free, resume without a restart.
    fill(&filler, 256 * 1024);
    let (err, mut t) = append_until_full(&e, &mut ledger, 1_000_010);
    assert!(err.is_storage_full(), "not a typed storage-full error: {err:?}");
    let acked_when_full = ledger.acked.len();
    assert!(acked_when_full > 1000, "only {acked_when_full} samples fit");
    // Still full: still a typed error, never a poisoned engine.
    for _ in 0..3 {
        let err = ledger.append_round(&e, t).unwrap_err();
        assert!(err.is_storage_full(), "{err:?}");
        t += 10;
    }
    // A seal on the full disk fails cleanly too (block writes hit ENOSPC).
    if let Err(err) = e.seal_all() {
        assert!(err.is_storage_full(), "{err:?}");
    }
    ledger.verify(&e);
    std::fs::remove_file(&filler).unwrap();
    for _ in 0..100 {
        ledger.append_round(&e, t).unwrap();
        t += 10;
    }
    ledger.verify(&e);

    // Phase 2: fill again, crash while full, reopen on the full disk, free, reopen.
    fill(&filler, 128 * 1024);
    let (err, _) = append_until_full(&e, &mut ledger, t);
    assert!(err.is_storage_full(), "{err:?}");
    drop(e);
    match chronolith_engine::Engine::open(&db, fault_common::options()) {
        Ok(e) => ledger.verify(&e),
        Err(err) => assert!(err.is_storage_full(), "reopen on a full disk: {err:?}"),
    }
    std::fs::remove_file(&filler).unwrap();
    let e = open(&db);
    ledger.verify(&e);
    ledger.append_round(&e, 9_000_000).unwrap();
    e.seal_all().unwrap();
    ledger.verify(&e);
    e.close().unwrap();
    eprintln!(
        "disk full: {} samples acknowledged, {} appends failed with ENOSPC, 0 lost",
        ledger.acked.len(),
        ledger.failures
    );
}

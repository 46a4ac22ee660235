//! Filesystem steps of atomic publication and removal, in one place: the engine's side of
//! the I/O seam (every create, write, fsync, rename, directory fsync and removal of a
//! block goes through here). Each step first asks `chronolith_wal::fault::check` (a constant `None` unless
//! the `fault-injection` feature is on), so tests can make any of them fail with ENOSPC,
//! EIO or a torn write. Every error names the path and the step.

use crate::error::{Error, Result};
use chronolith_wal::fault::{self, Fault, Op};
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// Fails with the injected error if a fault rule says so.
fn injected(p: &Path, op: Op, name: &'static str) -> Result<()> {
    match fault::check(p, op) {
        Some(f) => Err(Error::io(p, name, f.error())),
        None => Ok(()),
    }
}

pub fn create_dir_all(p: &Path) -> Result<()> {
    injected(p, Op::Create, "create directory")?;
    fs::create_dir_all(p).map_err(|e| Error::io(p, "create directory", e))
}

/// fsync a directory so a rename or unlink inside it is durable.
pub fn sync_dir(p: &Path) -> Result<()> {
    injected(p, Op::SyncDir, "fsync directory")?;
    File::open(p).and_then(|f| f.sync_all()).map_err(|e| Error::io(p, "fsync directory", e))
}

pub fn sync_file(f: &File, p: &Path) -> Result<()> {
    injected(p, Op::Fsync, "fsync")?;
    f.sync_all().map_err(|e| Error::io(p, "fsync", e))
}

/// Creates (or truncates) a file for writing.
pub fn create_file(p: &Path) -> Result<File> {
    injected(p, Op::Create, "create")?;
    File::create(p).map_err(|e| Error::io(p, "create", e))
}

/// Writes `parts` one after another to `w` (a file, or a buffer in front of the file at
/// `p`). An injected torn write puts a prefix of them into `w` before failing.
pub fn write_parts(w: &mut impl Write, p: &Path, parts: &[&[u8]]) -> Result<()> {
    if let Some(fault) = fault::check(p, Op::Write) {
        if let Fault::Torn { mut keep } = fault {
            for part in parts {
                let n = keep.min(part.len());
                let _ = w.write_all(&part[..n]);
                keep -= n;
            }
        }
        return Err(Error::io(p, "write", fault.error()));
    }
    for part in parts {
        w.write_all(part).map_err(|e| Error::io(p, "write", e))?;
    }
    Ok(())
}

/// Writes a whole file and fsyncs it.
pub fn write_synced(p: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = create_file(p)?;
    write_parts(&mut f, p, &[bytes])?;
    sync_file(&f, p)
}

pub fn rename(from: &Path, to: &Path) -> Result<()> {
    injected(from, Op::Rename, "rename")?;
    fs::rename(from, to).map_err(|e| Error::io(from, "rename", e))
}

/// Makes `to` another name of `from` (a hard link), copying if links are not supported.
pub fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    injected(to, Op::Create, "link")?;
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to).map_err(|e| Error::io(from, "copy", e))?;
    let f = File::open(to).map_err(|e| Error::io(to, "open", e))?;
    sync_file(&f, to)
}

pub fn remove_dir_all(p: &Path) -> Result<()> {
    injected(p, Op::Remove, "remove directory")?;
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(p, "remove directory", e)),
        _ => Ok(()),
    }
}

pub fn read(p: &Path) -> Result<Vec<u8>> {
    fs::read(p).map_err(|e| Error::io(p, "read", e))
}

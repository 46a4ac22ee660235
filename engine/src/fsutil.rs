//! Filesystem steps of atomic publication, in one place (the seam a fault-injecting
//! I/O layer plugs into later). Every error names the path and the step.

use crate::error::{Error, Result};
use std::fs::{self, File};
use std::path::Path;

pub fn create_dir_all(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| Error::io(p, "create directory", e))
}

/// fsync a directory so a rename or unlink inside it is durable.
pub fn sync_dir(p: &Path) -> Result<()> {
    File::open(p).and_then(|f| f.sync_all()).map_err(|e| Error::io(p, "fsync directory", e))
}

pub fn sync_file(f: &File, p: &Path) -> Result<()> {
    f.sync_all().map_err(|e| Error::io(p, "fsync", e))
}

/// Writes a whole file and fsyncs it.
pub fn write_synced(p: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = File::create(p).map_err(|e| Error::io(p, "create", e))?;
    f.write_all(bytes).map_err(|e| Error::io(p, "write", e))?;
    sync_file(&f, p)
}

pub fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io(from, "rename", e))
}

pub fn remove_dir_all(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(p, "remove directory", e)),
        _ => Ok(()),
    }
}

pub fn read(p: &Path) -> Result<Vec<u8>> {
    fs::read(p).map_err(|e| Error::io(p, "read", e))
}

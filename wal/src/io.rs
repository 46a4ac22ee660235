//! Every filesystem call the WAL makes goes through [`Fs`]. This is the seam where a
//! fault-injecting implementation plugs in; today it carries test-only failure switches.

use std::fs::{self, File, OpenOptions};
use std::io::{IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::fault::{self, Fault, Op};

/// The filesystem as the WAL sees it: the real calls, each preceded by the
/// fault-injection check (a no-op without the `fault-injection` feature).
#[derive(Debug, Default)]
pub(crate) struct Fs;

/// Fails with the injected error if a rule says so.
fn injected(path: &Path, op: Op, name: &'static str) -> Result<()> {
    match fault::check(path, op) {
        Some(f) => Err(Error::io(path, name, f.error())),
        None => Ok(()),
    }
}

impl Fs {
    pub(crate) fn create_dir_all(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create_dir", e))
    }

    /// Names of the entries of `dir`.
    pub(crate) fn list(&self, dir: &Path) -> Result<Vec<String>> {
        let rd = fs::read_dir(dir).map_err(|e| Error::io(dir, "read_dir", e))?;
        let mut names = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(dir, "read_dir", e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// Reads the whole file into `buf` (cleared first, capacity reused).
    pub(crate) fn read_whole(&self, path: &Path, buf: &mut Vec<u8>) -> Result<()> {
        buf.clear();
        let mut f = File::open(path).map_err(|e| Error::io(path, "open", e))?;
        let len = f.metadata().map_err(|e| Error::io(path, "stat", e))?.len();
        buf.reserve(usize::try_from(len).unwrap_or(0));
        f.read_to_end(buf).map_err(|e| Error::io(path, "read", e))?;
        Ok(())
    }

    /// Creates a new file (fails if it exists), writes `bytes`, fsyncs it. The caller fsyncs
    /// the directory.
    pub(crate) fn create_synced(&self, path: &Path, bytes: &[u8]) -> Result<File> {
        injected(path, Op::Create, "create")?;
        let mut f = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, "create", e))?;
        self.write_all(&mut f, path, bytes)?;
        injected(path, Op::Fsync, "fsync")?;
        f.sync_all().map_err(|e| Error::io(path, "fsync", e))?;
        Ok(f)
    }

    /// Opens an existing segment for appending (after a roll-back to it).
    pub(crate) fn open_append(&self, path: &Path) -> Result<File> {
        OpenOptions::new().read(true).append(true).open(path).map_err(|e| Error::io(path, "open", e))
    }

    /// Appends `bytes` to an existing file and fsyncs it.
    pub(crate) fn append_synced(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut f = OpenOptions::new().append(true).open(path).map_err(|e| Error::io(path, "open", e))?;
        self.write_all(&mut f, path, bytes)?;
        injected(path, Op::Fsync, "fsync")?;
        f.sync_all().map_err(|e| Error::io(path, "fsync", e))
    }

    pub(crate) fn write_all(&self, f: &mut File, path: &Path, bytes: &[u8]) -> Result<()> {
        if let Some(fault) = fault::check(path, Op::Write) {
            if let Fault::Torn { keep } = fault {
                let _ = f.write_all(&bytes[..keep.min(bytes.len())]);
            }
            return Err(Error::io(path, "write", fault.error()));
        }
        f.write_all(bytes).map_err(|e| Error::io(path, "write", e))
    }

    /// Writes every byte of `slices` with as few `writev(2)` calls as the kernel allows.
    pub(crate) fn write_all_vectored(&self, f: &mut File, path: &Path, mut slices: &mut [IoSlice<'_>]) -> Result<()> {
        if let Some(fault) = fault::check(path, Op::Write) {
            if let Fault::Torn { mut keep } = fault {
                for s in slices.iter() {
                    let n = keep.min(s.len());
                    let _ = f.write_all(&s[..n]);
                    keep -= n;
                }
            }
            return Err(Error::io(path, "write", fault.error()));
        }
        while !slices.is_empty() {
            match f.write_vectored(slices) {
                Ok(0) => return Err(Error::io(path, "write", std::io::ErrorKind::WriteZero.into())),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, "write", e)),
            }
        }
        Ok(())
    }

    /// fdatasync; returns the nanoseconds it took.
    pub(crate) fn sync_data(&self, f: &File, path: &Path) -> Result<u64> {
        let start = Instant::now();
        injected(path, Op::Fsync, "fdatasync")?;
        f.sync_data().map_err(|e| Error::io(path, "fdatasync", e))?;
        Ok(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<()> {
        injected(dir, Op::SyncDir, "fsync_dir")?;
        let d = File::open(dir).map_err(|e| Error::io(dir, "open_dir", e))?;
        d.sync_all().map_err(|e| Error::io(dir, "fsync_dir", e))
    }

    /// Truncates the file to `len` and fsyncs it.
    pub(crate) fn truncate(&self, path: &Path, len: u64) -> Result<()> {
        let f = OpenOptions::new().write(true).open(path).map_err(|e| Error::io(path, "open", e))?;
        self.truncate_file(&f, path, len)
    }

    /// Shrinks an open file to `len` and fsyncs it.
    pub(crate) fn truncate_file(&self, f: &File, path: &Path, len: u64) -> Result<()> {
        injected(path, Op::Truncate, "set_len")?;
        f.set_len(len).map_err(|e| Error::io(path, "set_len", e))?;
        injected(path, Op::Fsync, "fsync")?;
        f.sync_all().map_err(|e| Error::io(path, "fsync", e))
    }

    pub(crate) fn remove(&self, path: &Path) -> Result<()> {
        injected(path, Op::Remove, "unlink")?;
        fs::remove_file(path).map_err(|e| Error::io(path, "unlink", e))
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        injected(from, Op::Rename, "rename")?;
        fs::rename(from, to).map_err(|e| Error::io(from, "rename", e))
    }

    /// Makes `to` another name of `from` (hard link), copying if links are not supported.
    pub(crate) fn link_or_copy(&self, from: &Path, to: &Path) -> Result<()> {
        if fs::hard_link(from, to).is_ok() {
            return Ok(());
        }
        fs::copy(from, to).map_err(|e| Error::io(from, "copy", e))?;
        let f = File::open(to).map_err(|e| Error::io(to, "open", e))?;
        f.sync_all().map_err(|e| Error::io(to, "fsync", e))
    }

    /// Opens a file for reading (the tail reader).
    pub(crate) fn open_read(&self, path: &Path) -> std::io::Result<File> {
        File::open(path)
    }

    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
    pub(crate) fn read_at(&self, f: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, "read", e)),
            }
        }
        Ok(done)
    }

    pub(crate) fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}

/// `dir/name`.
pub(crate) fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

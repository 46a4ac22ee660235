//! The one module allowed to use `unsafe`: read-only memory maps of sealed block files.
#![allow(unsafe_code)]

use memmap2::Mmap;
use std::fs::File;

/// Maps a sealed, read-only file.
pub(crate) fn map_readonly(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: memmap2 requires that the file is not modified while mapped. We only map
    // files of sealed blocks: they are written under a temporary name, fsynced, renamed
    // into place and never opened for writing again; removal (retention, compaction)
    // unlinks the file, which leaves existing mappings valid on Linux and macOS.
    unsafe { Mmap::map(file) }
}

//! Cuts an input stream into chunks of whole lines, so parse workers can take them in
//! any order while line numbers and sample order are restored by chunk sequence number.
//!
//! Chunk buffers circulate through a fixed pool (reader → workers → appender → reader),
//! which bounds memory and spares allocations: a chunk is read into a buffer allocated
//! (and zeroed) once, and only the partial last line is copied into the next one.

use super::worker::Part;
use crossbeam::channel::{Receiver, Sender};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

/// Bytes read per chunk (a chunk may be longer: it always ends at a line end).
pub const CHUNK_BYTES: usize = 1 << 20;
/// A line longer than this is an error rather than a reason to buffer without bound.
pub const LINE_BYTES_MAX: usize = 64 << 20;

/// One chunk on its way through the pipeline, and the buffers it carries back.
#[derive(Debug, Default)]
pub struct Slot {
    /// 0-based position of the chunk in the file.
    pub seq: u64,
    /// `buf[..len]` holds whole lines (the last one may lack its `\n` at end of input).
    pub buf: Vec<u8>,
    pub len: usize,
    /// What the worker made of it.
    pub out: ChunkOut,
}

/// The parse result of one chunk; relative line numbers are 0-based within the chunk.
#[derive(Debug, Default)]
pub struct ChunkOut {
    /// Lines consumed: all of them, or up to and including the one that stopped parsing.
    pub lines: u64,
    pub parts: Vec<Part>,
    /// Parts in use (the rest are kept for their capacity).
    pub parts_used: usize,
    /// Malformed lines `(relative line, message)`, at most `MALFORMED_REPORTED_MAX + 1`.
    pub malformed: Vec<(u64, String)>,
    pub malformed_count: u64,
    pub stop: Option<Stop>,
}

/// Why a worker stopped before the end of its chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// OpenMetrics `# EOF` at this relative line: the rest of the file is not data.
    Eof,
    /// A malformed line under `--strict`: `(relative line, message)`.
    Strict(u64, String),
}

/// Reads `input` into chunks until its end, an error, or until `free` is closed or
/// `stop` is set (the appender has stopped). Each chunk goes to `jobs` in order.
pub fn read_chunks(
    mut input: impl Read,
    free: &Receiver<Slot>,
    jobs: &Sender<Slot>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    for seq in 0.. {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let Ok(mut slot) = free.recv() else { return Ok(()) };
        if slot.buf.len() < CHUNK_BYTES + carry.len() {
            slot.buf.resize(CHUNK_BYTES + carry.len(), 0);
        }
        slot.buf[..carry.len()].copy_from_slice(&carry);
        slot.len = carry.len();
        carry.clear();
        let eof = match fill_lines(&mut input, &mut slot, offset) {
            Ok(eof) => eof,
            Err(e) => {
                // Whole lines read before a failure (say, a damaged gzip stream) are
                // still imported; only the partial last line is not.
                slot.len = slot.buf[..slot.len].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                if slot.len > 0 {
                    slot.seq = seq;
                    let _ = jobs.send(slot);
                }
                return Err(e);
            }
        };
        if !eof {
            // The partial last line starts the next chunk.
            let end = slot.buf[..slot.len].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            carry.extend_from_slice(&slot.buf[end..slot.len]);
            slot.len = end;
        }
        offset += slot.len as u64;
        if slot.len > 0 {
            slot.seq = seq;
            if jobs.send(slot).is_err() {
                return Ok(());
            }
        }
        if eof {
            return Ok(());
        }
    }
    Ok(())
}

/// Reads until the buffer is full and holds a line end, or the input ends (`true`).
/// A buffer without any line end is doubled, up to [`LINE_BYTES_MAX`].
fn fill_lines(input: &mut impl Read, slot: &mut Slot, offset: u64) -> io::Result<bool> {
    let mut scanned = 0;
    loop {
        while slot.len < slot.buf.len() {
            match input.read(&mut slot.buf[slot.len..]) {
                Ok(0) => return Ok(true),
                Ok(n) => slot.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if slot.buf[scanned..slot.len].contains(&b'\n') {
            return Ok(false);
        }
        scanned = slot.len;
        if slot.buf.len() >= LINE_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line starting near byte {offset} is longer than {} MiB", LINE_BYTES_MAX >> 20),
            ));
        }
        slot.buf.resize(slot.buf.len() * 2, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks hold whole lines, in order, and together the whole input, also when a line
    /// is longer than a chunk and when the input does not end with a line end.
    #[test]
    fn chunks_are_whole_lines_covering_the_input() {
        let mut text = Vec::new();
        for i in 0..200_000u32 {
            text.extend_from_slice(format!("line {i} {}\n", "x".repeat((i % 37) as usize)).as_bytes());
        }
        text.extend(std::iter::repeat_n(b'y', 3 * CHUNK_BYTES));
        text.extend_from_slice(b"\nlast line without end");
        let (free_tx, free_rx) = crossbeam::channel::unbounded();
        let (jobs_tx, jobs_rx) = crossbeam::channel::unbounded();
        for _ in 0..3 {
            free_tx.send(Slot::default()).ok();
        }
        let stop = AtomicBool::new(false);
        let mut got = Vec::new();
        std::thread::scope(|s| {
            let reader = s.spawn(|| read_chunks(&text[..], &free_rx, &jobs_tx, &stop));
            let mut next = 0;
            while got.len() < text.len() {
                let Ok(slot) = jobs_rx.recv() else { break };
                assert_eq!(slot.seq, next);
                next += 1;
                let chunk = &slot.buf[..slot.len];
                assert!(chunk.ends_with(b"\n") || chunk.ends_with(b"end"), "chunk ends inside a line");
                got.extend_from_slice(chunk);
                free_tx.send(slot).ok();
            }
            assert!(reader.join().is_ok_and(|r| r.is_ok()));
        });
        assert!(got == text, "the chunks are the input");
    }
}

//! Reading a live log from a position onwards, for consumers that follow the writer (the
//! remote-write forwarder). Layout rules in `FORMAT.md` ("Tailing").
//!
//! The reader never reads past the end the writer has committed ([`crate::Wal::committed_end`]):
//! bytes beyond it may belong to a batch that is still being written or that will be
//! rolled back, and they were not acknowledged. Below it every frame is whole, so a frame
//! that does not validate there is damage, reported with its position.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::frame::{self, Bad, FRAME_HEADER_BYTES, MAX_RECORD_BYTES, SEAL_PAYLOAD_BYTES, SEAL_RECORD_TYPE};
use crate::io::{join, Fs};
use crate::segment::{self, SEGMENT_HEADER_BYTES};
use crate::{Position, SegmentId};

/// Records the reader could not hand out: the caller decides how loudly to say so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TailGap {
    /// Segments `from..to` (ids) are no longer on disk (removed while no one held them,
    /// or moved aside by salvage); reading went on at segment `to`.
    MissingSegments { from: SegmentId, to: SegmentId },
    /// The rest of `segment` from `offset` on does not validate (damage, or a position
    /// beyond what survived a power loss under a relaxed durability); reading went on at
    /// the next segment.
    Unreadable { segment: SegmentId, offset: u64, reason: String },
}

/// What one [`TailReader::read`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TailRead {
    /// Records handed to the callback.
    pub records: u64,
    /// Frame bytes consumed, seal frames included.
    pub bytes: u64,
    /// The read finished a segment (its seal frame was consumed); the position is now the
    /// start of the next one.
    pub segment_done: bool,
    /// Records skipped, if any.
    pub gap: Option<TailGap>,
}

/// Follows a log directory from a position. Cheap to create; holds one open segment.
#[derive(Debug)]
pub struct TailReader {
    dir: PathBuf,
    fs: Fs,
    pos: Position,
    file: Option<(SegmentId, File)>,
    buf: Vec<u8>,
}

impl TailReader {
    /// A reader of `dir` that starts at `from` (a frame boundary, or a segment's offset 0
    /// or 32 for its first record).
    #[must_use]
    pub fn new(dir: &Path, from: Position) -> Self {
        let mut r = TailReader { dir: dir.to_path_buf(), fs: Fs, pos: from, file: None, buf: Vec::new() };
        r.seek(from);
        r
    }

    /// The position of the next record to read.
    #[must_use]
    pub fn position(&self) -> Position {
        self.pos
    }

    /// Moves to `pos` (a frame boundary or a segment start).
    pub fn seek(&mut self, pos: Position) {
        let offset = pos.offset.max(SEGMENT_HEADER_BYTES as u64);
        self.pos = Position { segment: pos.segment, offset };
    }

    /// Hands the whole records in `[position, end)` to `on_record(position, type, payload)`,
    /// about `max_bytes` of them (at least one record if any is there), stopping after a
    /// segment's seal frame so a caller sees segment boundaries. `end` is the writer's
    /// committed end. Returns an empty read when there is nothing new.
    ///
    /// # Errors
    /// [`Error::Io`] when a segment cannot be read; the position is unchanged and the
    /// call can be retried.
    pub fn read(
        &mut self,
        end: Position,
        max_bytes: usize,
        on_record: &mut dyn FnMut(Position, u8, &[u8]),
    ) -> Result<TailRead> {
        let mut out = TailRead::default();
        if self.pos >= end {
            return Ok(out);
        }
        let Some(len) = self.open_current(end, &mut out)? else { return Ok(out) };
        let limit = if self.pos.segment == end.segment { end.offset.min(len) } else { len };
        if self.pos.offset >= limit {
            if self.pos.segment != end.segment {
                // A finished segment ends with a seal frame, which we never passed.
                let reason = format!("segment ends at {len} bytes without its seal frame");
                self.skip_segment(&mut out, reason);
            }
            return Ok(out);
        }
        let want = usize::try_from(limit - self.pos.offset).unwrap_or(usize::MAX).min(max_bytes.max(1 << 16));
        self.fill(want)?;
        self.consume(limit, max_bytes, on_record, out)
    }

    /// Opens the segment at the position (moving past missing ones). Returns its length,
    /// or `None` when a gap was reported and the caller should return.
    fn open_current(&mut self, end: Position, out: &mut TailRead) -> Result<Option<u64>> {
        if self.file.as_ref().is_none_or(|(id, _)| *id != self.pos.segment) {
            self.file = None;
            let path = join(&self.dir, &segment::file_name(self.pos.segment));
            match self.fs.open_read(&path) {
                Ok(f) => {
                    if let Err(reason) = self.check_header(&f, &path)? {
                        self.pos.offset = 0;
                        self.skip_segment(out, reason);
                        return Ok(None);
                    }
                    self.file = Some((self.pos.segment, f));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let next = self.next_existing(end)?;
                    if out.gap.is_some() {
                        return Ok(None);
                    }
                    out.gap = Some(TailGap::MissingSegments { from: self.pos.segment, to: next });
                    self.pos = Position { segment: next, offset: SEGMENT_HEADER_BYTES as u64 };
                    return Ok(None);
                }
                Err(e) => return Err(Error::io(path, "open", e)),
            }
        }
        let Some((_, f)) = self.file.as_ref() else { return Ok(None) };
        let path = join(&self.dir, &segment::file_name(self.pos.segment));
        let len = f.metadata().map_err(|e| Error::io(path, "stat", e))?.len();
        Ok(Some(len))
    }

    /// Reads and checks the segment header: `Ok(Err(reason))` when it does not validate.
    fn check_header(&self, f: &File, path: &Path) -> Result<std::result::Result<(), String>> {
        let mut h = [0u8; SEGMENT_HEADER_BYTES];
        let n = self.fs.read_at(f, path, &mut h, 0)?;
        Ok(segment::check_header(&h[..n], self.pos.segment))
    }

    /// The smallest segment id after the position's that exists, or the end's segment.
    fn next_existing(&self, end: Position) -> Result<SegmentId> {
        let next = self
            .fs
            .list(&self.dir)?
            .iter()
            .filter_map(|n| segment::parse_file_name(n))
            .filter(|id| *id > self.pos.segment)
            .min()
            .unwrap_or(end.segment);
        Ok(next.min(end.segment).max(self.pos.segment.next()))
    }

    fn skip_segment(&mut self, out: &mut TailRead, reason: String) {
        out.gap = Some(TailGap::Unreadable { segment: self.pos.segment, offset: self.pos.offset, reason });
        self.pos = Position { segment: self.pos.segment.next(), offset: SEGMENT_HEADER_BYTES as u64 };
        self.file = None;
    }

    /// Reads `want` bytes at the position into the buffer (fewer at end of file).
    fn fill(&mut self, want: usize) -> Result<()> {
        let Some((id, f)) = self.file.as_ref() else { return Ok(()) };
        let path = join(&self.dir, &segment::file_name(*id));
        self.buf.resize(want, 0);
        let n = self.fs.read_at(f, &path, &mut self.buf, self.pos.offset)?;
        self.buf.truncate(n);
        Ok(())
    }

    /// Decodes frames from the buffer (which starts at the position and ends at or
    /// before `limit`).
    fn consume(
        &mut self,
        limit: u64,
        max_bytes: usize,
        on_record: &mut dyn FnMut(Position, u8, &[u8]),
        mut out: TailRead,
    ) -> Result<TailRead> {
        let mut at = 0usize;
        let base = self.pos.offset;
        loop {
            if at >= self.buf.len() || (at > 0 && at >= max_bytes) {
                break;
            }
            match frame::decode(&self.buf[at..]) {
                Ok(f) if f.record_type == SEAL_RECORD_TYPE => {
                    if f.payload.len() != SEAL_PAYLOAD_BYTES {
                        self.pos.offset = base + at as u64;
                        self.skip_segment(&mut out, "malformed seal frame".to_owned());
                        return Ok(out);
                    }
                    out.bytes += f.frame_len as u64;
                    out.segment_done = true;
                    self.pos = Position { segment: self.pos.segment.next(), offset: SEGMENT_HEADER_BYTES as u64 };
                    self.file = None;
                    return Ok(out);
                }
                Ok(f) => {
                    let pos = Position { segment: self.pos.segment, offset: base + at as u64 };
                    on_record(pos, f.record_type, f.payload);
                    out.records += 1;
                    out.bytes += f.frame_len as u64;
                    at += f.frame_len;
                }
                Err(Bad::Cut(_)) if at > 0 => break,
                Err(Bad::Cut(reason)) => {
                    // The first frame is longer than what was read: read it whole, if the
                    // committed part holds it.
                    let need = self.frame_len_at_start().unwrap_or(usize::MAX);
                    if need <= MAX_RECORD_BYTES + FRAME_HEADER_BYTES
                        && base + need as u64 <= limit
                        && need > self.buf.len()
                    {
                        self.fill(need)?;
                        continue;
                    }
                    self.skip_segment(&mut out, reason);
                    return Ok(out);
                }
                Err(Bad::Invalid(reason)) => {
                    self.pos.offset = base + at as u64;
                    self.skip_segment(&mut out, reason);
                    return Ok(out);
                }
            }
        }
        self.pos.offset = base + at as u64;
        Ok(out)
    }

    fn frame_len_at_start(&self) -> Option<usize> {
        let len = self.buf.get(4..8)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(len);
        Some(FRAME_HEADER_BYTES + u32::from_le_bytes(a) as usize)
    }
}

//! Replay on open and the recovery modes. Rules in `FORMAT.md` ("Recovery").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::frame::{self, Bad, SEAL_PAYLOAD_BYTES, SEAL_RECORD_TYPE};
use crate::io::{join, Fs};
use crate::segment::{self, SEGMENT_HEADER_BYTES};
use crate::{Position, RecoveryMode, ReplayReport, SalvageEvent, SegmentId};

/// Name of the folder damaged segments are moved to.
pub const DAMAGED_DIR: &str = "damaged";

/// Segments left in the directory after replay: id → size in bytes.
pub(crate) type SegmentSizes = BTreeMap<SegmentId, u64>;

/// How far one segment file validated.
enum Scan {
    /// Every byte validated; `sealed` if it ends with a seal frame.
    Clean { sealed: bool },
    /// The last segment ends in a torn write at `offset`; everything before it validated.
    Torn { offset: usize },
    /// Damage that is not a torn tail. Without resync, `ranges` holds only the first
    /// damaged range and no record after it was handed out. With resync (salvage), every
    /// damaged range, and every valid frame after each was handed out; `frames` are the
    /// byte ranges of the valid record frames, for the rewrite.
    Damaged { ranges: Vec<DamagedRange>, frames: Vec<(usize, usize)> },
}

/// One run of bytes that did not validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedRange {
    /// Offset of the first bad byte (a frame start, or 0 for the header).
    pub offset: u64,
    /// Bytes from `offset` to the next valid frame (or the end of the file).
    pub len: u64,
    /// What was expected and what was found.
    pub reason: String,
}

/// Replays every segment in `dir` in id order and applies `mode`. Afterwards every segment
/// left in `dir` is sealed. Returns the segments left and the highest id seen.
pub(crate) fn replay(
    fs: &Fs,
    dir: &Path,
    mode: RecoveryMode,
    on_record: &mut dyn FnMut(Position, u8, &[u8]),
) -> Result<(SegmentSizes, Option<SegmentId>, ReplayReport)> {
    let mut ids = Vec::new();
    for name in fs.list(dir)? {
        if let Some(id) = segment::parse_file_name(&name) {
            ids.push(id);
        } else if name.ends_with(".wal.tmp") {
            // Leftover of an interrupted salvage rewrite; the original is still in place.
            fs.remove(&join(dir, &name))?;
        }
    }
    ids.sort_unstable();

    let mut report = ReplayReport::default();
    let mut sizes = SegmentSizes::new();
    let mut buf = Vec::new();
    let resync = mode == RecoveryMode::Salvage;
    for (i, &id) in ids.iter().enumerate() {
        let is_last = i + 1 == ids.len();
        let path = join(dir, &segment::file_name(id));
        fs.read_whole(&path, &mut buf)?;
        report.segments += 1;
        let scan = scan_segment(&buf, id, is_last, resync, &mut report, on_record);
        let file_len = buf.len() as u64;
        match scan {
            Scan::Clean { sealed: true } => {
                sizes.insert(id, file_len);
            }
            Scan::Clean { sealed: false } => {
                // Only the last segment may end unsealed (checked in scan_segment): seal it.
                fs.append_synced(&path, &frame::encode_seal(id.next().0))?;
                sizes.insert(id, file_len + frame::SEAL_FRAME_BYTES as u64);
            }
            Scan::Torn { offset } => {
                let cut = offset as u64;
                report.torn_tail_kept_at = keep_torn_bytes(fs, dir, id, &buf[offset..])?;
                if offset < SEGMENT_HEADER_BYTES {
                    // Crash while the segment was being created: nothing valid in it.
                    fs.remove(&path)?;
                    fs.sync_dir(dir)?;
                } else {
                    fs.truncate(&path, cut)?;
                    fs.append_synced(&path, &frame::encode_seal(id.next().0))?;
                    sizes.insert(id, cut + frame::SEAL_FRAME_BYTES as u64);
                }
                report.truncated_tail = Some((id, cut, file_len - cut));
            }
            Scan::Damaged { ranges, frames } => match mode {
                RecoveryMode::TruncateTornTail => {
                    let first = ranges.into_iter().next();
                    let (offset, reason) = first.map_or((0, String::new()), |r| (r.offset, r.reason));
                    return Err(Error::corruption(id, offset, reason));
                }
                RecoveryMode::Salvage => {
                    let (moved_to, new_len) = salvage(fs, dir, id, &buf, &frames)?;
                    if let Some(len) = new_len {
                        sizes.insert(id, len);
                    }
                    for r in ranges {
                        report.salvaged.push(SalvageEvent {
                            segment: id,
                            offset: r.offset,
                            bytes: r.len,
                            moved_to: moved_to.clone(),
                            reason: r.reason,
                        });
                    }
                }
            },
        }
    }
    Ok((sizes, ids.last().copied(), report))
}

/// The first offset after `start` where a frame validates.
fn next_valid_frame(buf: &[u8], start: usize) -> Option<usize> {
    (start + 1..buf.len()).find(|&p| frame::is_valid_frame_at(buf, p))
}

/// Validates one segment file held in `buf`, handing valid records to `on_record`. With
/// `resync`, damage is skipped up to the next offset where a frame validates and the scan
/// goes on; without, it stops at the first damage.
fn scan_segment(
    buf: &[u8],
    id: SegmentId,
    is_last: bool,
    resync: bool,
    report: &mut ReplayReport,
    on_record: &mut dyn FnMut(Position, u8, &[u8]),
) -> Scan {
    let mut ranges = Vec::new();
    if let Err(reason) = segment::check_header(buf, id) {
        // A header is torn only if it is the last segment and was never fully written.
        if is_last && (buf.len() < SEGMENT_HEADER_BYTES || buf.iter().all(|&b| b == 0)) {
            return Scan::Torn { offset: 0 };
        }
        let len = buf.len().min(SEGMENT_HEADER_BYTES) as u64;
        ranges.push(DamagedRange { offset: 0, len, reason });
        if !resync || buf.len() <= SEGMENT_HEADER_BYTES {
            return Scan::Damaged { ranges, frames: Vec::new() };
        }
    } else {
        report.bytes += SEGMENT_HEADER_BYTES as u64;
    }
    let mut frames = Vec::new();
    let mut sealed = false;
    let mut at = SEGMENT_HEADER_BYTES;
    while at < buf.len() {
        let reason = match frame::decode(&buf[at..]) {
            Ok(f) if f.record_type == SEAL_RECORD_TYPE => {
                if f.payload.len() == SEAL_PAYLOAD_BYTES && at + f.frame_len == buf.len() {
                    report.bytes += f.frame_len as u64;
                    sealed = true;
                    break;
                }
                "seal record is malformed or not at the end of the segment".to_owned()
            }
            Ok(f) => {
                on_record(Position { segment: id, offset: at as u64 }, f.record_type, f.payload);
                report.records += 1;
                report.bytes += f.frame_len as u64;
                frames.push((at, at + f.frame_len));
                at += f.frame_len;
                continue;
            }
            Err(Bad::Cut(r) | Bad::Invalid(r)) => r,
        };
        let next = next_valid_frame(buf, at);
        if next.is_none() && is_last && ranges.is_empty() {
            return Scan::Torn { offset: at };
        }
        let resume = next.unwrap_or(buf.len());
        ranges.push(DamagedRange { offset: at as u64, len: (resume - at) as u64, reason });
        if !resync {
            return Scan::Damaged { ranges, frames };
        }
        at = resume;
    }
    if !sealed && !is_last && ranges.last().is_none_or(|r| r.offset + r.len < buf.len() as u64) {
        let reason = "segment ends without its seal record: truncated".to_owned();
        ranges.push(DamagedRange { offset: buf.len() as u64, len: 0, reason });
    }
    if ranges.is_empty() {
        Scan::Clean { sealed }
    } else {
        Scan::Damaged { ranges, frames }
    }
}

/// Keeps the bytes a torn-tail cut drops in `damaged/<name>.torn-<offset>`, unless they
/// are all zeros (a file extended but never written): a torn write is never acknowledged,
/// but a bit flip in the last record looks the same, so the bytes are kept, not deleted.
fn keep_torn_bytes(fs: &Fs, dir: &Path, id: SegmentId, tail: &[u8]) -> Result<Option<PathBuf>> {
    if tail.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let damaged_dir = join(dir, DAMAGED_DIR);
    fs.create_dir_all(&damaged_dir)?;
    let name = segment::file_name(id);
    let to = free_name(fs, &damaged_dir, &format!("{name}.torn"));
    drop(fs.create_synced(&to, tail)?);
    fs.sync_dir(&damaged_dir)?;
    Ok(Some(to))
}

/// `dir/name`, or `dir/name.1`, `.2`, ... if taken.
fn free_name(fs: &Fs, dir: &Path, name: &str) -> PathBuf {
    let mut to = join(dir, name);
    let mut n = 1u32;
    while fs.exists(&to) {
        to = join(dir, &format!("{name}.{n}"));
        n = n.saturating_add(1);
    }
    to
}

/// Moves the damaged file to `damaged/` and puts its valid record frames (under a fresh
/// header, sealed) back under the same name; a file without any valid frame is moved
/// whole. Crash-safe: at every step `dir/<name>` is either the original or the rewritten
/// file, and the original is linked into `damaged/` before it is replaced. Returns where
/// the original went and the new file's size (`None` when it was moved whole).
fn salvage(
    fs: &Fs,
    dir: &Path,
    id: SegmentId,
    buf: &[u8],
    frames: &[(usize, usize)],
) -> Result<(PathBuf, Option<u64>)> {
    let name = segment::file_name(id);
    let path = join(dir, &name);
    let damaged_dir = join(dir, DAMAGED_DIR);
    fs.create_dir_all(&damaged_dir)?;
    let moved_to = free_name(fs, &damaged_dir, &name);
    let mut new_len = None;
    if frames.is_empty() && segment::check_header(buf, id).is_err() {
        fs.rename(&path, &moved_to)?;
    } else {
        let tmp = join(dir, &format!("{name}.tmp"));
        if fs.exists(&tmp) {
            fs.remove(&tmp)?;
        }
        let kept: usize = frames.iter().map(|(a, b)| b - a).sum();
        let mut repaired = Vec::with_capacity(SEGMENT_HEADER_BYTES + kept + frame::SEAL_FRAME_BYTES);
        repaired.extend_from_slice(&segment::encode_header(id));
        for &(a, b) in frames {
            repaired.extend_from_slice(&buf[a..b]);
        }
        repaired.extend_from_slice(&frame::encode_seal(id.next().0));
        drop(fs.create_synced(&tmp, &repaired)?);
        fs.link_or_copy(&path, &moved_to)?;
        fs.sync_dir(&damaged_dir)?;
        fs.rename(&tmp, &path)?;
        new_len = Some(repaired.len() as u64);
    }
    fs.sync_dir(&damaged_dir)?;
    fs.sync_dir(dir)?;
    Ok((moved_to, new_len))
}

/// What a read-only check found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentHealth {
    /// Every frame validates.
    Clean { records: u64 },
    /// The last segment ends in a torn write that open would cut at `offset`
    /// (unacknowledged bytes, not damage).
    TornTail { records: u64, offset: u64 },
    /// Damage that strict recovery refuses and salvage cuts out: every damaged range, and
    /// the valid records around them (which salvage keeps).
    Damaged { records: u64, ranges: Vec<DamagedRange> },
}

/// Checks every segment of a log without changing anything (no truncation, no new
/// segment, no lock): for `chronolith check` and other tools.
pub fn verify(dir: &Path) -> Result<Vec<(SegmentId, SegmentHealth)>> {
    let fs = Fs;
    let mut ids: Vec<SegmentId> = fs.list(dir)?.iter().filter_map(|n| segment::parse_file_name(n)).collect();
    ids.sort_unstable();
    let mut out = Vec::with_capacity(ids.len());
    let mut buf = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        fs.read_whole(&join(dir, &segment::file_name(id)), &mut buf)?;
        let mut report = ReplayReport::default();
        let scan = scan_segment(&buf, id, i + 1 == ids.len(), true, &mut report, &mut |_, _, _| {});
        let records = report.records;
        out.push((
            id,
            match scan {
                Scan::Clean { .. } => SegmentHealth::Clean { records },
                Scan::Torn { offset } => SegmentHealth::TornTail { records, offset: offset as u64 },
                Scan::Damaged { ranges, .. } => SegmentHealth::Damaged { records, ranges },
            },
        ));
    }
    Ok(out)
}

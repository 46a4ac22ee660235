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
    /// Damage at `offset`; the bytes before it are valid. `torn` per the torn-tail rule.
    Damaged { offset: usize, reason: String, torn: bool },
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
    for (i, &id) in ids.iter().enumerate() {
        let is_last = i + 1 == ids.len();
        let path = join(dir, &segment::file_name(id));
        fs.read_whole(&path, &mut buf)?;
        report.segments += 1;
        let scan = scan_segment(&buf, id, is_last, &mut report, on_record);
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
            Scan::Damaged { offset, torn: true, .. } => {
                let cut = offset as u64;
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
            Scan::Damaged { offset, reason, torn: false } => match mode {
                RecoveryMode::TruncateTornTail => {
                    return Err(Error::corruption(id, offset as u64, reason));
                }
                RecoveryMode::Salvage => {
                    let moved_to = salvage(fs, dir, id, &buf, offset)?;
                    if offset >= SEGMENT_HEADER_BYTES {
                        sizes.insert(id, (offset + frame::SEAL_FRAME_BYTES) as u64);
                    }
                    report.salvaged.push(SalvageEvent { segment: id, offset: offset as u64, moved_to, reason });
                }
            },
        }
    }
    Ok((sizes, ids.last().copied(), report))
}

/// Validates one segment file held in `buf`, handing valid records to `on_record`.
fn scan_segment(
    buf: &[u8],
    id: SegmentId,
    is_last: bool,
    report: &mut ReplayReport,
    on_record: &mut dyn FnMut(Position, u8, &[u8]),
) -> Scan {
    if let Err(reason) = segment::check_header(buf, id) {
        // A header is torn only if it is the last segment and was never fully written.
        let torn = is_last && (buf.len() < SEGMENT_HEADER_BYTES || buf.iter().all(|&b| b == 0));
        return Scan::Damaged { offset: 0, reason, torn };
    }
    report.bytes += SEGMENT_HEADER_BYTES as u64;
    let mut at = SEGMENT_HEADER_BYTES;
    while at < buf.len() {
        let f = match frame::decode(&buf[at..]) {
            Ok(f) => f,
            Err(bad) => {
                let reason = match bad {
                    Bad::Cut(r) | Bad::Invalid(r) => r,
                };
                let torn = is_last && !frame::any_valid_frame_after(buf, at);
                return Scan::Damaged { offset: at, reason, torn };
            }
        };
        if f.record_type == SEAL_RECORD_TYPE {
            if f.payload.len() != SEAL_PAYLOAD_BYTES || at + f.frame_len != buf.len() {
                let reason = "seal record is malformed or not at the end of the segment".to_owned();
                return Scan::Damaged { offset: at, reason, torn: false };
            }
            report.bytes += f.frame_len as u64;
            return Scan::Clean { sealed: true };
        }
        on_record(Position { segment: id, offset: at as u64 }, f.record_type, f.payload);
        report.records += 1;
        report.bytes += f.frame_len as u64;
        at += f.frame_len;
    }
    if is_last {
        Scan::Clean { sealed: false }
    } else {
        let reason = "segment ends without its seal record: truncated".to_owned();
        Scan::Damaged { offset: buf.len(), reason, torn: false }
    }
}

/// Moves the damaged file to `damaged/` and puts its valid prefix (if it has a valid header),
/// sealed, back under the same name. Crash-safe: at every step `dir/<name>` is either the
/// original or the rewritten prefix, and the original is linked into `damaged/` before it is
/// replaced.
fn salvage(fs: &Fs, dir: &Path, id: SegmentId, buf: &[u8], offset: usize) -> Result<PathBuf> {
    let name = segment::file_name(id);
    let path = join(dir, &name);
    let damaged_dir = join(dir, DAMAGED_DIR);
    fs.create_dir_all(&damaged_dir)?;
    let mut moved_to = join(&damaged_dir, &name);
    let mut n = 1u32;
    while fs.exists(&moved_to) {
        moved_to = join(&damaged_dir, &format!("{name}.{n}"));
        n = n.saturating_add(1);
    }
    if offset < SEGMENT_HEADER_BYTES {
        fs.rename(&path, &moved_to)?;
    } else {
        let tmp = join(dir, &format!("{name}.tmp"));
        if fs.exists(&tmp) {
            fs.remove(&tmp)?;
        }
        let mut prefix = Vec::with_capacity(offset + frame::SEAL_FRAME_BYTES);
        prefix.extend_from_slice(&buf[..offset]);
        prefix.extend_from_slice(&frame::encode_seal(id.next().0));
        drop(fs.create_synced(&tmp, &prefix)?);
        fs.link_or_copy(&path, &moved_to)?;
        fs.sync_dir(&damaged_dir)?;
        fs.rename(&tmp, &path)?;
    }
    fs.sync_dir(&damaged_dir)?;
    fs.sync_dir(dir)?;
    Ok(moved_to)
}

/// What a read-only check found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentHealth {
    /// Every frame validates.
    Clean { records: u64 },
    /// The last segment ends in a torn write that open would cut at `offset`
    /// (unacknowledged bytes, not damage).
    TornTail { records: u64, offset: u64 },
    /// Damage that open refuses (or salvage moves aside), at `offset`, and why.
    Damaged { records: u64, offset: u64, reason: String },
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
        let scan = scan_segment(&buf, id, i + 1 == ids.len(), &mut report, &mut |_, _, _| {});
        let records = report.records;
        out.push((
            id,
            match scan {
                Scan::Clean { .. } => SegmentHealth::Clean { records },
                Scan::Damaged { offset, torn: true, .. } => SegmentHealth::TornTail { records, offset: offset as u64 },
                Scan::Damaged { offset, reason, torn: false } => {
                    SegmentHealth::Damaged { records, offset: offset as u64, reason }
                }
            },
        ));
    }
    Ok(out)
}

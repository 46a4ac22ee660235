//! Strict recovery (`RecoveryMode::TruncateTornTail`): damage every kind of file (WAL
//! segment, series log segment, block chunks, index, meta) by flipping single bytes at
//! many offsets and by truncating it at several lengths. Each time, on a fresh copy of a
//! pristine directory, opening must either fail with a typed corruption error or succeed
//! with exactly the right data: the only loss allowed is a suffix of the last WAL
//! segment's records when the damage makes a torn tail. A read that touches a damaged
//! chunk must fail with `Error::Corruption`. Never a panic, never a wrong value. (What
//! salvage, the default, does with the same damage: `corruption_matrix_salvage_quarantines`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod corruption_common;
use chronolith::{Db, Error, Matcher, RecoveryMode};
use common::copy_dir;
use corruption_common::{
    block_dirs, build_pristine, expected, options, segments, Data, END, NAMES, STEP_MS, TAIL_START,
};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

struct Pristine {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Pristine {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pristine");
        build_pristine(&dir, false);
        // The shape this test relies on.
        assert_eq!(segments(&dir.join("wal")).len(), 2, "{:?}", segments(&dir.join("wal")));
        assert_eq!(block_dirs(&dir).len(), 2);
        Self { _tmp: tmp, dir }
    }
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Flip { offset: usize, mask: u8 },
    Truncate { len: usize },
}

fn apply(path: &Path, d: Damage) {
    let mut bytes = std::fs::read(path).unwrap();
    match d {
        Damage::Flip { offset, mask } => bytes[offset] ^= mask,
        Damage::Truncate { len } => bytes.truncate(len),
    }
    std::fs::write(path, bytes).unwrap();
}

/// The damages tried on a file of `len` bytes: every offset of headers and trailers, a
/// spread of offsets in between, and truncations.
fn damages(len: usize) -> Vec<Damage> {
    let masks = [0x01u8, 0x80, 0xff, 0x10, 0x04];
    let mut offsets: Vec<usize> = if len <= 200 {
        (0..len).collect()
    } else {
        let mut o: Vec<usize> = (0..40).chain(len - 24..len).collect();
        let stride = (len / 60).max(1);
        o.extend((40..len - 24).step_by(stride).map(|x| (x + x / 7 % stride).min(len - 25)));
        o
    };
    offsets.sort_unstable();
    offsets.dedup();
    let mut v: Vec<Damage> =
        offsets.iter().enumerate().map(|(i, &offset)| Damage::Flip { offset, mask: masks[i % masks.len()] }).collect();
    let mut lens =
        vec![0, 1, 4, 8, 12, 31, 32, 33, 41, len / 3, len / 2, len.saturating_sub(17), len.saturating_sub(9)];
    lens.push(len.saturating_sub(4));
    lens.push(len.saturating_sub(1));
    lens.retain(|l| *l < len);
    lens.sort_unstable();
    lens.dedup();
    v.extend(lens.into_iter().map(|len| Damage::Truncate { len }));
    v
}

/// What one series' full-range select returned.
type Read = Result<BTreeMap<i64, u64>, String>;

enum Outcome {
    OpenFailed,
    Opened(Vec<Read>),
}

fn is_typed_corruption(e: &Error) -> bool {
    matches!(e, Error::Corruption { .. } | Error::Wal(chronolith_wal::Error::Corruption { .. }))
}

/// Opens `dir` and reads every series separately; panics become `Err`.
fn open_and_read(dir: &Path, mode: RecoveryMode) -> Result<Outcome, String> {
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<Outcome, String> {
        let db = match Db::open(dir, options(mode)) {
            Ok(db) => db,
            Err(e) if is_typed_corruption(&e) => return Ok(Outcome::OpenFailed),
            Err(e) => return Err(format!("open failed with an untyped error: {e:?}")),
        };
        let mut reads = Vec::new();
        for name in NAMES {
            let mut got: Read = Ok(BTreeMap::new());
            for s in db.select(&[Matcher::eq("series", name)], i64::MIN, i64::MAX) {
                match s {
                    Ok(s) => {
                        if let Ok(m) = &mut got {
                            m.extend(s.samples.iter().map(|x| (x.t, x.v.to_bits())));
                        }
                    }
                    Err(e @ Error::Corruption { .. }) => got = Err(e.to_string()),
                    Err(e) => return Err(format!("select {name} failed with an untyped error: {e:?}")),
                }
            }
            reads.push(got);
        }
        db.close().map_err(|e| format!("close: {e}"))?;
        Ok(Outcome::Opened(reads))
    }));
    match r {
        Ok(x) => x,
        Err(p) => Err(format!(
            "PANIC: {}",
            p.downcast_ref::<String>().cloned().or(p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
        )),
    }
}

/// Checks an opened database's reads: no wrong or invented sample; missing samples only
/// as a suffix of batches at or after `loss_from` (all series, from some time on).
fn check_reads(reads: &[Read], want: &Data, loss_from: i64, must_fail: Option<usize>) -> Result<(), String> {
    let mut missing: Vec<(usize, i64)> = Vec::new();
    for (k, r) in reads.iter().enumerate() {
        let empty = BTreeMap::new();
        let w = want.get(&k).unwrap_or(&empty);
        match r {
            Err(e) => {
                if must_fail != Some(k) {
                    // An error is acceptable for any series, but note when it is unexpected.
                    eprintln!("  note: series {} read failed: {e}", NAMES[k]);
                }
            }
            Ok(got) => {
                if must_fail == Some(k) {
                    return Err(format!("series {} read its damaged chunk without an error", NAMES[k]));
                }
                for (t, bits) in got {
                    match w.get(t) {
                        Some(b) if b == bits => {}
                        Some(b) => {
                            return Err(format!(
                                "series {} t={t}: WRONG VALUE {} (bits {bits:#x}), want {} ({b:#x})",
                                NAMES[k],
                                f64::from_bits(*bits),
                                f64::from_bits(*b)
                            ))
                        }
                        None => return Err(format!("series {} t={t}: sample that was never written", NAMES[k])),
                    }
                }
                missing.extend(w.keys().filter(|t| !got.contains_key(t)).map(|t| (k, *t)));
            }
        }
    }
    let Some(cut) = missing.iter().map(|m| m.1).min() else { return Ok(()) };
    if cut < loss_from {
        return Err(format!("lost acknowledged sample(s), first at t={cut} (allowed from {loss_from}): {missing:?}"));
    }
    for (k, r) in reads.iter().enumerate() {
        if let (Ok(got), Some(w)) = (r, want.get(&k)) {
            if let Some(t) = w.keys().find(|t| **t >= cut && got.contains_key(t)) {
                return Err(format!("series {} has t={t} after the lost t={cut}: loss is not a suffix", NAMES[k]));
            }
        }
    }
    Ok(())
}

/// Tries every damage on one file (relative to the data dir); returns (open failed,
/// opened) counts.
fn torture(
    p: &Pristine,
    rel: &Path,
    loss_from_of: impl Fn(Damage) -> i64,
    chunk_owner: impl Fn(usize) -> Option<usize>,
) -> (usize, usize) {
    let want = expected();
    let len = std::fs::metadata(p.dir.join(rel)).unwrap().len() as usize;
    let scratch = tempfile::tempdir().unwrap();
    let (mut failed, mut opened) = (0, 0);
    for (i, d) in damages(len).into_iter().enumerate() {
        let dir = scratch.path().join(format!("t{i}"));
        copy_dir(&p.dir, &dir);
        apply(&dir.join(rel), d);
        let loss_from = loss_from_of(d);
        let must_fail = match d {
            Damage::Flip { offset, .. } => chunk_owner(offset),
            Damage::Truncate { .. } => None,
        };
        let first = open_and_read(&dir, RecoveryMode::TruncateTornTail);
        let res = first.and_then(|o| match o {
            Outcome::OpenFailed => {
                failed += 1;
                Ok(())
            }
            Outcome::Opened(reads) => {
                opened += 1;
                check_reads(&reads, &want, loss_from, must_fail)?;
                if loss_from == i64::MAX {
                    return Ok(());
                }
                // A truncated tail stays truncated: a second open sees the same.
                match open_and_read(&dir, RecoveryMode::TruncateTornTail)? {
                    Outcome::Opened(again) if again == reads => Ok(()),
                    Outcome::Opened(_) => Err("second open reads differently".into()),
                    Outcome::OpenFailed => Err("second open failed after a successful first".into()),
                }
            }
        });
        if let Err(e) = res {
            panic!("{} of {len} bytes, {d:?}: {e}", rel.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    (failed, opened)
}

fn rel(p: &Pristine, path: &Path) -> PathBuf {
    path.strip_prefix(&p.dir).unwrap().to_path_buf()
}

#[test]
fn pristine_copy_opens_exactly() {
    let p = Pristine::new();
    match open_and_read(&p.dir, RecoveryMode::TruncateTornTail).unwrap() {
        Outcome::Opened(reads) => check_reads(&reads, &expected(), i64::MAX, None).unwrap(),
        Outcome::OpenFailed => panic!("pristine directory does not open"),
    }
}

#[test]
fn damaged_wal_segments_are_detected() {
    let p = Pristine::new();
    let segs = segments(&p.dir.join("wal"));
    // Sealed, non-last segment: any damage is corruption of acknowledged data.
    let (failed, opened) = torture(&p, &rel(&p, &segs[0]), |_| i64::MAX, |_| None);
    eprintln!("middle wal segment: {failed} refused, {opened} opened");
    assert!(failed > 0);
    // Last segment: a torn tail may lose the damaged record and those after it, nothing
    // else. It holds one record per batch, in order, from TAIL_START.
    let frames = frame_ends(&std::fs::read(&segs[1]).unwrap());
    assert_eq!(frames.len() as i64, (END - TAIL_START) / STEP_MS, "one record per batch");
    let loss_from = |d: Damage| {
        let first_hit = match d {
            Damage::Flip { offset, .. } => frames.iter().position(|end| offset < *end),
            Damage::Truncate { len } => frames.iter().position(|end| len < *end),
        };
        first_hit.map_or(i64::MAX, |r| TAIL_START + r as i64 * STEP_MS)
    };
    let (failed, opened) = torture(&p, &rel(&p, &segs[1]), loss_from, |_| None);
    eprintln!("last wal segment: {failed} refused, {opened} opened");
    assert!(failed > 0 && opened > 0);
}

/// End offsets of the record frames of a WAL segment (32-byte header, then frames of
/// crc u32, len u32, type u8, payload; see wal/FORMAT.md).
fn frame_ends(seg: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 32;
    while at + 9 <= seg.len() {
        let len = u32::from_le_bytes(seg[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 9 + len;
        ends.push(at);
    }
    assert_eq!(at, seg.len(), "the last segment of the pristine copy is unsealed and whole");
    ends
}

#[test]
fn damaged_series_log_is_detected() {
    let p = Pristine::new();
    for seg in segments(&p.dir.join("series")) {
        // Losing a series definition would orphan its samples: never silently.
        let (failed, opened) = torture(&p, &rel(&p, &seg), |_| i64::MAX, |_| None);
        eprintln!("series segment {}: {failed} refused, {opened} opened", seg.display());
    }
}

/// For a chunks file: the series whose chunk frame covers each byte.
fn chunk_owners(pristine: &Path, block: &Path) -> BTreeMap<usize, (usize, usize)> {
    // Opening changes a directory (new WAL segments): work on a copy.
    let tmp = tempfile::tempdir().unwrap();
    let dir = &tmp.path().join("db");
    copy_dir(pristine, dir);
    let db = Db::open(dir, options(RecoveryMode::TruncateTornTail)).unwrap();
    let chunks = std::fs::read(block.join("chunks")).unwrap();
    let mut owners = BTreeMap::new();
    let snapshot = db.engine().blocks().snapshot();
    let b = snapshot.iter().find(|b| b.dir().file_name() == block.file_name()).unwrap();
    for id in b.series_ids().collect::<Vec<_>>() {
        let labels = db.engine().registry().labels(id).unwrap();
        let k = NAMES.iter().position(|n| *n == labels.get("series")).unwrap();
        for c in b.chunks_of(id) {
            let off = c.offset as usize;
            let len = u32::from_le_bytes(chunks[off..off + 4].try_into().unwrap()) as usize;
            owners.insert(off, (off + 8 + len, k));
        }
    }
    drop(snapshot);
    db.close().unwrap();
    owners
}

#[test]
fn damaged_block_files_are_detected() {
    let p = Pristine::new();
    for block in block_dirs(&p.dir) {
        let owners = chunk_owners(&p.dir, &block);
        let owner = |offset: usize| {
            owners.range(..=offset).next_back().filter(|(_, (end, _))| offset < *end).map(|(_, (_, k))| *k)
        };
        let (failed, opened) = torture(&p, &rel(&p, &block.join("chunks")), |_| i64::MAX, owner);
        eprintln!("{}/chunks: {failed} refused, {opened} opened", block.display());
        for f in ["index", "meta"] {
            let (failed, opened) = torture(&p, &rel(&p, &block.join(f)), |_| i64::MAX, |_| None);
            eprintln!("{}/{f}: {failed} refused, {opened} opened", block.display());
            assert_eq!(opened, 0, "damage to {f} must be refused at open");
        }
    }
}

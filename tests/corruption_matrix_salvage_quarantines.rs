//! Salvage, the default recovery: every file kind (WAL segment in the middle of the log and
//! the last one, both series-log segments, a raw block's `chunks`, `index` and `meta`, a
//! rollup block's `chunks`, `index` and `meta`) × every damage (a flipped byte, a
//! truncation, a torn write = a run of bytes zeroed), at offsets in headers, first,
//! middle and last frames. Each time, on a fresh copy of one pristine directory:
//!
//! - `chronolith check --json` (read-only) names the damaged file and the exact offsets;
//! - opening reports the same file and offsets in `stats().engine.recovery.damage`, with
//!   the original bytes kept in `damaged/` (compared byte for byte);
//! - every sample outside the damaged part is read, exactly, and nothing else: what is
//!   lost is computed independently from the file layout (one WAL record = one batch, one
//!   chunk = one series' samples of one block, a damaged `index`/`meta` = the block);
//! - a rollup block is quarantined whole, queries answer from raw data meanwhile, and the
//!   next compaction pass rebuilds it;
//! - the salvaged directory then opens cleanly in strict mode and `check` passes;
//! - strict mode on the damaged copy refuses with the same offset (when the damage is not a
//!   torn tail, and not in a chunk, which strict mode only finds when it is read).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "cli")]

mod common;
mod corruption_common;
mod fault_common;

use chronolith::query::{self, Limits, RangeQuery, WindowFn};
use chronolith::{Db, Error, Matcher, RecoveryMode};
use corruption_common::{
    block_dirs, build_pristine, chunk_frames, expected, options, segments, series_at, wal_frames, Data, NAMES,
    SEALED_END, STEP_MS, TAIL_START, TIER_MS,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_chronolith");

/// The two tests run one after the other: the first spawns `chronolith check` processes,
/// and a child forked while the other test holds a data directory's `LOCK` open shares that
/// lock until it execs, which would make the other test's reopen fail as `Locked`.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    WalMiddle,
    WalLast,
    SeriesFirst,
    SeriesLast,
    Chunks,
    Index,
    Meta,
    RollupChunks,
    RollupIndex,
    RollupMeta,
}

const KINDS: [Kind; 10] = [
    Kind::WalMiddle,
    Kind::WalLast,
    Kind::SeriesFirst,
    Kind::SeriesLast,
    Kind::Chunks,
    Kind::Index,
    Kind::Meta,
    Kind::RollupChunks,
    Kind::RollupIndex,
    Kind::RollupMeta,
];

#[derive(Clone, Copy, Debug)]
enum Damage {
    Flip {
        at: usize,
    },
    Truncate {
        len: usize,
    },
    /// `len` bytes from `at` zeroed: a write that never reached the disk.
    Tear {
        at: usize,
        len: usize,
    },
}

impl Damage {
    fn apply(self, bytes: &mut Vec<u8>) {
        match self {
            Damage::Flip { at } => bytes[at] ^= 0x20,
            Damage::Truncate { len } => bytes.truncate(len),
            Damage::Tear { at, len } => bytes[at..at + len].fill(0),
        }
    }
}

/// Whether bytes `[s, e)` differ between the files (zeroing zeros changes nothing).
fn changed(before: &[u8], after: &[u8], s: usize, e: usize) -> bool {
    e > after.len() || before[s..e] != after[s..e]
}

/// Where things are in the pristine directory.
struct Layout {
    root: tempfile::TempDir,
    pristine: PathBuf,
    wal: Vec<PathBuf>,
    series: Vec<PathBuf>,
    raw: PathBuf,
    rollup: PathBuf,
    /// Series index owning each chunk frame of `raw/chunks`, in file order.
    raw_owners: Vec<usize>,
    rollups_before: usize,
    /// The count query's answer on the undamaged data.
    pristine_answer: Vec<query::SeriesResult>,
}

impl Layout {
    fn new() -> Self {
        let root = fault_common::scratch_dir();
        let pristine = root.path().join("pristine");
        build_pristine(&pristine, true);
        let wal = segments(&pristine.join("wal"));
        let series = segments(&pristine.join("series"));
        assert_eq!((wal.len(), series.len()), (2, 2), "{wal:?} {series:?}");
        // Find the raw block of [0, 60 s) and the rollup block of (0, 60 s] on a copy
        // (opening adds WAL segments).
        let probe = root.path().join("probe");
        common::copy_dir(&pristine, &probe);
        let db = Db::open(&probe, options(RecoveryMode::TruncateTornTail)).unwrap();
        let set = db.engine().blocks().snapshot();
        let name = |b: &chronolith_engine::block::Block| pristine.join("blocks").join(b.dir().file_name().unwrap());
        let raw_block = set.raw().find(|b| b.meta().min_t == 0).unwrap();
        let rollup_block = set.rollups(TIER_MS).find(|b| b.meta().covers_to == 60_000).unwrap();
        let mut owners: Vec<(u64, usize)> = Vec::new();
        for (id, refs) in raw_block.series_chunks() {
            let l = db.engine().registry().labels(id).unwrap();
            let k = NAMES.iter().position(|n| *n == l.get("series")).unwrap();
            owners.extend(refs.iter().map(|c| (c.offset, k)));
        }
        owners.sort_unstable();
        let (raw, rollup) = (name(raw_block), name(rollup_block));
        let rollups_before = set.rollups(TIER_MS).count();
        let pristine_answer = query::run(db.engine(), &count_query(), &Limits::unlimited()).unwrap().series;
        drop(set);
        db.close().unwrap();
        assert_eq!(block_dirs(&pristine).len(), 2 + rollups_before);
        let raw_owners = owners.into_iter().map(|(_, k)| k).collect();
        Self { root, pristine, wal, series, raw, rollup, raw_owners, rollups_before, pristine_answer }
    }

    fn file(&self, kind: Kind) -> PathBuf {
        match kind {
            Kind::WalMiddle => self.wal[0].clone(),
            Kind::WalLast => self.wal[1].clone(),
            Kind::SeriesFirst => self.series[0].clone(),
            Kind::SeriesLast => self.series[1].clone(),
            Kind::Chunks => self.raw.join("chunks"),
            Kind::Index => self.raw.join("index"),
            Kind::Meta => self.raw.join("meta"),
            Kind::RollupChunks => self.rollup.join("chunks"),
            Kind::RollupIndex => self.rollup.join("index"),
            Kind::RollupMeta => self.rollup.join("meta"),
        }
    }
}

/// The damages tried on one file: headers, first, middle and last frames, the last byte;
/// cuts in the header and inside a middle frame; tears inside a frame and across two.
fn damages(kind: Kind, bytes: &[u8]) -> Vec<Damage> {
    let len = bytes.len();
    let frames = frames_of(kind, bytes);
    if frames.is_empty() {
        return vec![
            Damage::Flip { at: 1 },
            Damage::Flip { at: len / 3 },
            Damage::Flip { at: len - 1 },
            Damage::Truncate { len: 20 },
            Damage::Truncate { len: len / 2 },
            Damage::Tear { at: len / 3, len: 16 },
        ];
    }
    let mid = |(s, e): (usize, usize)| s + (e - s) / 2;
    let middle = frames[frames.len() / 2];
    let mut v = vec![
        Damage::Flip { at: 1 },
        Damage::Flip { at: mid(frames[0]) },
        Damage::Flip { at: mid(middle) },
        Damage::Flip { at: mid(*frames.last().unwrap()) },
        Damage::Flip { at: len - 1 },
        Damage::Truncate { len: mid(middle) },
        Damage::Tear { at: middle.0 + 2, len: 12.min(middle.1 - middle.0 - 2) },
    ];
    if frames.len() > 2 {
        v.push(Damage::Truncate { len: 20 });
        v.push(Damage::Tear { at: middle.1 - 4, len: 8 });
    }
    v
}

fn frames_of(kind: Kind, bytes: &[u8]) -> Vec<(usize, usize)> {
    match kind {
        Kind::WalMiddle | Kind::WalLast | Kind::SeriesFirst | Kind::SeriesLast => wal_frames(bytes),
        Kind::Chunks | Kind::RollupChunks => chunk_frames(bytes),
        Kind::Index | Kind::Meta | Kind::RollupIndex | Kind::RollupMeta => Vec::new(),
    }
}

/// What one case must report and lose.
#[derive(Debug, Default)]
struct Expect {
    /// Offsets reported in the damaged file.
    offsets: BTreeSet<u64>,
    torn: bool,
    lost: BTreeSet<(usize, i64)>,
    rollup_quarantined: bool,
    /// The offset strict mode refuses to open at (`None`: strict mode opens; a damaged
    /// chunk is found only when read, a torn tail is cut).
    strict_offset: Option<u64>,
}

fn batch_samples(t: i64) -> impl Iterator<Item = (usize, i64)> {
    series_at(t).map(move |k| (k, t))
}

fn expect(layout: &Layout, kind: Kind, d: Damage, pristine_bytes: &[u8], damaged: &[u8]) -> Expect {
    let len = pristine_bytes.len();
    let frames = frames_of(kind, pristine_bytes);
    let hit: Vec<usize> =
        (0..frames.len()).filter(|&i| changed(pristine_bytes, damaged, frames[i].0, frames[i].1)).collect();
    let mut e = Expect::default();
    let header_hit = |h: usize| changed(pristine_bytes, damaged, 0, h);
    let raw_block_samples = || (0..4).flat_map(|k| (0..60_000).step_by(STEP_MS as usize).map(move |t| (k, t)));
    match kind {
        Kind::WalMiddle | Kind::WalLast | Kind::SeriesFirst | Kind::SeriesLast => {
            let last = matches!(kind, Kind::WalLast | Kind::SeriesLast);
            let cut_header = matches!(d, Damage::Truncate { len } if len < 32);
            let record_frames: Vec<usize> =
                if last { (0..frames.len()).collect() } else { (0..frames.len() - 1).collect() };
            let lost_frames: Vec<usize> = if cut_header {
                record_frames.clone()
            } else {
                hit.iter().copied().filter(|i| record_frames.contains(i)).collect()
            };
            if cut_header || header_hit(32) {
                e.offsets.insert(0);
            }
            if let (false, Some(&first)) = (cut_header, hit.first()) {
                e.offsets.insert(frames[first].0 as u64);
            }
            // A torn tail: damage in the last segment that no valid frame follows.
            e.torn = last && (cut_header || (!header_hit(32) && hit.last() == Some(&(frames.len() - 1))));
            if !e.torn {
                e.strict_offset = e.offsets.first().copied();
            }
            for i in lost_frames {
                match kind {
                    Kind::WalMiddle => e.lost.extend(batch_samples(SEALED_END + i as i64 * STEP_MS)),
                    Kind::WalLast => e.lost.extend(batch_samples(TAIL_START + i as i64 * STEP_MS)),
                    // The only record defines series `e`, whose samples are all in the WAL.
                    Kind::SeriesLast => {
                        e.lost.extend(expected()[&4].keys().map(|t| (4, *t)));
                    }
                    // Series a-d are also defined by the blocks' indexes: nothing is lost.
                    _ => {}
                }
            }
        }
        Kind::Chunks | Kind::RollupChunks => {
            if let Damage::Truncate { len } = d {
                e.offsets.insert(len as u64);
                e.strict_offset = Some(len as u64);
            }
            if header_hit(8) {
                e.offsets.insert(0);
                e.strict_offset = Some(0);
            }
            e.offsets.extend(hit.iter().map(|&i| frames[i].0 as u64));
            if kind == Kind::RollupChunks {
                e.rollup_quarantined = true;
            } else {
                for &i in &hit {
                    let k = layout.raw_owners[i];
                    e.lost.extend((0..60_000).step_by(STEP_MS as usize).map(|t| (k, t)));
                }
            }
        }
        Kind::Index | Kind::Meta | Kind::RollupIndex | Kind::RollupMeta => {
            let fixed = if kind == Kind::Meta { 96 } else { 112 };
            let offset = match d {
                Damage::Truncate { len: cut } if matches!(kind, Kind::Index | Kind::RollupIndex) => cut,
                Damage::Truncate { len: cut } if cut < fixed => 0,
                Damage::Truncate { len: cut } => cut - 4,
                _ => len - 4,
            };
            e.offsets.insert(offset as u64);
            e.strict_offset = Some(offset as u64);
            if matches!(kind, Kind::Index | Kind::Meta) {
                e.lost.extend(raw_block_samples());
            } else {
                e.rollup_quarantined = true;
            }
        }
    }
    e
}

fn read_all(db: &Db) -> BTreeMap<(usize, i64), u64> {
    let mut out = BTreeMap::new();
    for s in db.select(&[Matcher::metric("corrupt_test")], i64::MIN, i64::MAX) {
        let s = s.unwrap();
        let k = NAMES.iter().position(|n| *n == s.labels.get("series")).unwrap();
        for x in &s.samples {
            assert!(out.insert((k, x.t), x.v.to_bits()).is_none(), "duplicate read {k}@{}", x.t);
        }
    }
    out
}

fn flatten(d: &Data) -> BTreeMap<(usize, i64), u64> {
    d.iter().flat_map(|(k, m)| m.iter().map(move |(t, v)| ((*k, *t), *v))).collect()
}

/// `chronolith check --json`: (exit success, findings as (kind, file, offset)).
fn check(dir: &Path) -> (bool, Vec<(String, PathBuf, u64)>) {
    let out = Command::new(BIN).args(["check", "--json", "--data-dir"]).arg(dir).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let kind = f["kind"].as_str().unwrap().to_string();
            (kind, PathBuf::from(f["file"].as_str().unwrap()), f["offset"].as_u64().unwrap())
        })
        .collect();
    (out.status.success(), findings)
}

fn count_query() -> RangeQuery {
    RangeQuery {
        matchers: vec![Matcher::metric("corrupt_test")],
        start: 0,
        end: 120_000,
        step: TIER_MS,
        range: TIER_MS * 3,
        func: WindowFn::Count,
        agg: None,
    }
}

/// The tier planner's answer: the raw one, except where raw samples under a rollup block
/// were lost: the rollup still holds their aggregates, so there it answers as the
/// undamaged data did (`pristine`).
fn check_tiered(db: &Db, lost_under_rollup: bool, pristine: &[query::SeriesResult], what: &str) {
    let q = count_query();
    let tiered = db.query(&q, &Limits::unlimited()).unwrap();
    if lost_under_rollup {
        assert_eq!(tiered.series, pristine, "{what}: the tiered answer differs from the undamaged one");
    } else {
        let raw = query::run(db.engine(), &q, &Limits::unlimited()).unwrap();
        assert_eq!(raw.series, tiered.series, "{what}: the tiered answer differs from raw");
    }
}

fn run_case(layout: &Layout, kind: Kind, d: Damage, n: usize) {
    let what = format!("{kind:?} {d:?}");
    let file_rel = layout.file(kind).strip_prefix(&layout.pristine).unwrap().to_path_buf();
    let pristine_bytes = std::fs::read(layout.file(kind)).unwrap();
    let mut damaged = pristine_bytes.clone();
    d.apply(&mut damaged);
    let want = expect(layout, kind, d, &pristine_bytes, &damaged);

    // Read-only check on one copy, strict open on another, salvage on a third.
    let copy = |tag: &str| {
        let dir = layout.root.path().join(format!("c{n}-{tag}"));
        common::copy_dir(&layout.pristine, &dir);
        std::fs::write(dir.join(&file_rel), &damaged).unwrap();
        dir
    };
    let dir = copy("check");
    let (ok, findings) = check(&dir);
    assert!(!ok || want.torn, "{what}: check passed a damaged directory");
    let file = dir.join(&file_rel);
    let found: BTreeSet<u64> = findings.iter().filter(|f| f.1 == file && f.0 != "quarantined").map(|f| f.2).collect();
    assert_eq!(found, want.offsets, "{what}: check reported {findings:?}");
    let kinds: BTreeSet<&str> = findings.iter().filter(|f| f.1 == file).map(|f| f.0.as_str()).collect();
    let want_kind = if want.torn { "torn" } else { "damaged" };
    assert_eq!(kinds, BTreeSet::from([want_kind]), "{what}: {findings:?}");
    assert!(findings.iter().all(|f| f.1 == file), "{what}: check blames another file: {findings:?}");

    let strict_copy = copy("strict");
    match (Db::open(&strict_copy, options(RecoveryMode::TruncateTornTail)), want.strict_offset) {
        (Err(Error::Corruption { path, offset, .. }), Some(at)) => {
            assert_eq!((path, offset), (strict_copy.join(&file_rel), at), "{what}")
        }
        (Err(Error::Wal(chronolith_wal::Error::Corruption { offset, .. })), Some(at)) => {
            assert_eq!(offset, at, "{what}")
        }
        (Ok(_), None) => {}
        // The torn tail took series `e`'s definition: strict mode refuses to drop its samples.
        (Err(Error::Corruption { detail, .. }), None)
            if kind == Kind::SeriesLast && !want.lost.is_empty() && detail.contains("missing from the series log") => {}
        (other, _) => panic!("{what}: strict open gave {other:?}"),
    }

    let dir = copy("salvage");
    let file = dir.join(&file_rel);
    let db = Db::open(&dir, options(RecoveryMode::Salvage)).unwrap();
    let rep = db.stats().engine.recovery;
    let entries: Vec<_> = rep.damage.iter().filter(|x| x.file == file).collect();
    assert!(rep.damage.iter().all(|x| x.file == file), "{what}: damage reported elsewhere: {:?}", rep.damage);
    let offsets: BTreeSet<u64> = entries.iter().map(|x| x.offset).collect();
    assert_eq!(offsets, want.offsets, "{what}: {:?}", rep.damage);
    assert!(entries.iter().all(|x| x.torn_tail == want.torn), "{what}: {:?}", rep.damage);
    // The damaged bytes are kept aside, byte for byte.
    for x in &entries {
        match &x.kept_at {
            Some(p) if x.torn_tail => {
                assert_eq!(std::fs::read(p).unwrap(), damaged[x.offset as usize..], "{what}: torn bytes kept")
            }
            Some(p) => {
                assert_eq!(std::fs::read(p).unwrap(), damaged, "{what}: {} is not the damaged file", p.display())
            }
            None => assert!(x.torn_tail && damaged[x.offset as usize..].iter().all(|b| *b == 0), "{what}: not kept"),
        }
    }
    // Every sample outside the damaged part, exactly; nothing else.
    let mut want_data = flatten(&expected());
    for k in &want.lost {
        want_data.remove(k);
    }
    assert_eq!(read_all(&db), want_data, "{what}: reads after salvage");
    let rollups = db.engine().blocks().snapshot().rollups(TIER_MS).count();
    if want.rollup_quarantined {
        assert_eq!(rollups, layout.rollups_before - 1, "{what}: rollup block not quarantined");
        check_tiered(&db, false, &layout.pristine_answer, &what);
        let r = db.compact();
        assert!(r.downsamples >= 1 && r.failures == 0, "{what}: {r:?}");
        assert_eq!(db.engine().blocks().snapshot().rollups(TIER_MS).count(), layout.rollups_before, "{what}: rebuilt");
    } else {
        assert_eq!(rollups, layout.rollups_before, "{what}");
    }
    let lost_under_rollup = !want.rollup_quarantined && want.lost.iter().any(|(_, t)| *t <= 60_000);
    check_tiered(&db, lost_under_rollup, &layout.pristine_answer, &what);
    db.close().unwrap();
    // Repaired for good: the next open finds nothing, reads the same, and check passes.
    // Strict mode opens it too, unless samples of a lost series are still in the WAL
    // (salvage drops them again at every open until sealing removes their segments).
    let orphans = kind == Kind::SeriesLast && !want.lost.is_empty();
    let db = Db::open(&dir, options(RecoveryMode::Salvage)).unwrap();
    let rep = db.stats().engine.recovery;
    assert!(rep.damage.is_empty() && rep.moved_aside.is_empty(), "{what}: {rep:?}");
    assert_eq!(rep.samples_dropped, if orphans { want.lost.len() as u64 } else { 0 }, "{what}");
    assert_eq!(read_all(&db), want_data, "{what}: reads after reopening");
    db.close().unwrap();
    assert_eq!(Db::open(&dir, options(RecoveryMode::TruncateTornTail)).is_ok(), !orphans, "{what}: strict reopen");
    let (ok, findings) = check(&dir);
    assert!(ok && findings.iter().all(|f| f.0 == "quarantined"), "{what}: {findings:?}");
}

#[test]
fn every_file_kind_and_damage_is_reported_salvaged_and_kept_aside() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let layout = Layout::new();
    let mut n = 0;
    let mut per_kind = Vec::new();
    for kind in KINDS {
        let bytes = std::fs::read(layout.file(kind)).unwrap();
        let cases = damages(kind, &bytes);
        for d in &cases {
            run_case(&layout, kind, *d, n);
            n += 1;
        }
        per_kind.push(format!("{kind:?}: {}", cases.len()));
    }
    eprintln!("{n} cases: {}", per_kind.join(", "));
    assert!(n >= 60, "{n}");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Salvage interrupted by an I/O error at every call it makes (EIO at the n-th create,
/// write, fsync, rename, directory fsync or removal under the data directory, for n = 0, 1,
/// ... until open makes no n-th such call): the open fails with a typed error, or
/// succeeds; either way the next open finishes the job: the same samples are read as
/// after an uninterrupted salvage, the damaged bytes are kept in a quarantine folder, and
/// the open after that finds nothing to repair (no block salvaged twice, nothing stored
/// twice).
#[test]
fn salvage_interrupted_at_every_call_is_finished_by_the_next_open() {
    use chronolith_wal::fault::{self, Fault, Op, Rule};
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let layout = Layout::new();
    let mut cases = 0;
    let mut n = 0;
    for (kind, pick) in
        [(Kind::Chunks, 1), (Kind::WalMiddle, 2), (Kind::Index, 0), (Kind::RollupChunks, 1), (Kind::SeriesLast, 0)]
    {
        let file_rel = layout.file(kind).strip_prefix(&layout.pristine).unwrap().to_path_buf();
        let pristine_bytes = std::fs::read(layout.file(kind)).unwrap();
        let frames = frames_of(kind, &pristine_bytes);
        let at = frames.get(pick).map_or(pristine_bytes.len() / 2, |(s, e)| s + (e - s) / 2);
        let d = Damage::Flip { at };
        let mut damaged = pristine_bytes.clone();
        d.apply(&mut damaged);
        let want = expect(&layout, kind, d, &pristine_bytes, &damaged);
        let mut want_data = flatten(&expected());
        for k in &want.lost {
            want_data.remove(k);
        }
        for op in [Op::Create, Op::Write, Op::Fsync, Op::Rename, Op::SyncDir, Op::Remove] {
            for skip in 0.. {
                let what = format!("{kind:?} {d:?}, EIO at {op:?} call {skip}");
                let dir = layout.root.path().join(format!("i{n}"));
                n += 1;
                common::copy_dir(&layout.pristine, &dir);
                std::fs::write(dir.join(&file_rel), &damaged).unwrap();
                let guard = fault::inject(Rule::new(&dir, op, Fault::Eio).after(skip).times(1));
                let first = Db::open(&dir, options(RecoveryMode::Salvage));
                let fired = guard.failures() == 1;
                drop(guard);
                match &first {
                    Ok(_) => {}
                    Err(Error::Io { .. } | Error::Wal(chronolith_wal::Error::Io { .. })) => {}
                    Err(e) => panic!("{what}: untyped failure {e:?}"),
                }
                let first_was = format!("{:?}", first.as_ref().map(|_| ()));
                drop(first);
                let db = Db::open(&dir, options(RecoveryMode::Salvage))
                    .unwrap_or_else(|e| panic!("{what}: {e} after {first_was}"));
                assert_eq!(read_all(&db), want_data, "{what}: reads after the next open");
                db.close().unwrap();
                let db = Db::open(&dir, options(RecoveryMode::Salvage)).unwrap();
                let rep = db.stats().engine.recovery;
                assert!(rep.damage.is_empty() && rep.moved_aside.is_empty(), "{what}: repaired twice: {rep:?}");
                let set = db.engine().blocks().snapshot();
                let stored: u64 = set.raw().map(|b| b.meta().samples).sum::<u64>() + db.stats().engine.head_samples;
                assert_eq!(stored, want_data.len() as u64, "{what}: a sample is stored twice");
                drop(set);
                db.close().unwrap();
                let kept = files_under(&dir).into_iter().any(|f| {
                    let in_quarantine = f.components().any(|c| c.as_os_str() == "damaged");
                    in_quarantine
                        && std::fs::read(&f)
                            .is_ok_and(|b| b == damaged || (want.torn && damaged.ends_with(&b) && !b.is_empty()))
                });
                assert!(kept, "{what}: the damaged bytes are not kept in damaged/");
                std::fs::remove_dir_all(&dir).unwrap();
                if !fired {
                    break;
                }
                cases += 1;
            }
        }
    }
    eprintln!("{cases} interrupted salvages finished by the next open");
    assert!(cases > 50, "{cases}");
}

/// A block missing one of its files (deleted by hand, say) is damage like any other:
/// `check` names it, salvage quarantines what is left of the block and keeps the rest.
#[test]
fn a_block_missing_a_file_is_quarantined_whole() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let layout = Layout::new();
    for file in ["index", "meta", "chunks"] {
        let rel = layout.raw.strip_prefix(&layout.pristine).unwrap().join(file);
        let dir = layout.root.path().join(format!("missing-{file}"));
        common::copy_dir(&layout.pristine, &dir);
        std::fs::remove_file(dir.join(&rel)).unwrap();
        let (ok, findings) = check(&dir);
        assert!(
            !ok && findings.iter().any(|f| f.0 == "damaged" && f.1.starts_with(dir.join(rel.parent().unwrap()))),
            "{file}: {findings:?}"
        );
        let db = Db::open(&dir, options(RecoveryMode::Salvage)).unwrap();
        let rep = db.stats().engine.recovery;
        assert_eq!(rep.damage.len(), 1, "{file}: {rep:?}");
        assert_eq!(rep.damage[0].file, dir.join(&rel), "{file}: {rep:?}");
        let mut want = flatten(&expected());
        want.retain(|(k, t), _| !(*k < 4 && *t < 60_000));
        assert_eq!(read_all(&db), want, "{file}: the rest is read");
        let aside = dir.join("damaged").join(layout.raw.file_name().unwrap());
        assert!(aside.is_dir() && !aside.join(file).exists(), "{file}: the rest of the block is kept aside");
        db.close().unwrap();
    }
}

//! Opening a data directory: lock it, open the block set (registering its series),
//! replay the series log, then replay the sample log into the head. Samples the blocks
//! already hold (older than the seal boundary) are skipped.

use super::{Engine, BLOCKS_DIR, LOCK_FILE, SAMPLE_LOG_DIR, SERIES_LOG_DIR};
use crate::blockset::Blocks;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::head::{Head, Part, Placed};
use crate::labels::Labels;
use crate::options::Options;
use crate::registry::Registry;
use crate::stats::{Counters, Damage, RecoveryReport};
use crate::types::SeriesId;
use crate::walrec::{self, RECORD_SAMPLES, RECORD_SERIES};
use chronolith_wal::{Position, RecoveryMode, ReplayReport, SegmentId, Wal, WalOptions};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

impl Engine {
    pub fn open(dir: &Path, opts: Options) -> Result<Self> {
        opts.validate()?;
        fsutil::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        let started = Instant::now();
        let mode = opts.recovery_mode;
        let registry = Registry::new();

        let register = |id: SeriesId, labels: Labels, r: &Registry, what: &Path| -> Result<()> {
            if r.insert(id, labels.clone()) {
                Ok(())
            } else {
                Err(Error::corrupt(what, 0, format!("series {id} = {labels} conflicts with an earlier definition")))
            }
        };
        let blocks_dir = dir.join(BLOCKS_DIR);
        let (blocks, blocks_report) = Blocks::open(&blocks_dir, mode, |id, l| register(id, l, &registry, &blocks_dir))?;
        let mut recovery = RecoveryReport {
            leftovers_removed: blocks_report.removed_leftovers.len(),
            moved_aside: blocks_report
                .moved_aside
                .iter()
                .map(|(p, why)| format!("block {}: {why}", p.display()))
                .collect(),
            damage: blocks_report.damage,
            ..RecoveryReport::default()
        };
        let sealed_until = blocks.snapshot().iter().map(|b| b.meta().max_t.saturating_add(1)).max();

        let wal_opts = WalOptions { segment_bytes_max: opts.wal_segment_bytes_max, durability: opts.durability };
        let series_dir = dir.join(SERIES_LOG_DIR);
        let mut first_err: Option<Error> = None;
        let mut bad_records = Vec::new();
        let (series_log, series_report) = Wal::open(&series_dir, wal_opts.clone(), mode, |pos, kind, payload| {
            if first_err.is_some() || kind != RECORD_SERIES {
                return;
            }
            let res = walrec::decode_series(payload, |id, labels| {
                if first_err.is_none() {
                    if let Err(e) = register(id, labels, &registry, &series_dir) {
                        first_err = Some(e);
                    }
                }
            });
            if let Err(e) = res {
                let what = format!("series record: {}", e.reason);
                if mode == RecoveryMode::Salvage {
                    bad_records.push((pos, what));
                } else {
                    first_err.get_or_insert(Error::corrupt(segment_path(&series_dir, pos.segment), pos.offset, what));
                }
            }
        })?;
        if let Some(e) = first_err.take() {
            return Err(e);
        }
        recovery.note_wal(&series_dir, &series_report);
        recovery.note_bad_records(
            &series_dir,
            bad_records,
            "the series it defines (their samples are dropped unless a block holds the series)",
        );
        let head = Head::new(opts.partition_ms, opts.ooo_window_ms, sealed_until.unwrap_or(i64::MIN));
        let counters = Counters::default();
        let sample_dir = dir.join(SAMPLE_LOG_DIR);
        let known = registry.known_ids();
        let replay_started = Instant::now();
        let replay = replay_samples(&sample_dir, wal_opts, mode, &head, &known)?;
        let (sample_log, segment_max_t, replayed) = (replay.wal, replay.segment_max_t, replay.stored);
        recovery.note_wal(&sample_dir, &replay.report);
        recovery.note_bad_records(&sample_dir, replay.bad_records, "the samples in it");
        recovery.samples_dropped = replay.unknown;
        if replay.unknown > 0 && mode != RecoveryMode::Salvage {
            return Err(Error::corrupt(
                &sample_dir,
                0,
                format!(
                    "{} samples refer to series missing from the series log; open in salvage mode to drop them",
                    replay.unknown
                ),
            ));
        }
        // Ids of series the series log lost are never handed out again: the samples
        // still in the WAL under those ids must not be read as another series' later.
        registry.reserve_through(replay.max_unknown_id);
        counters.samples_replayed.store(replayed, Relaxed);
        counters.replay_micros.store(replay_started.elapsed().as_micros() as u64, Relaxed);
        counters.open_micros.store(started.elapsed().as_micros() as u64, Relaxed);

        Ok(Self {
            dir: dir.to_path_buf(),
            opts,
            _lock: lock,
            registry,
            create_series: Mutex::new(()),
            series_log,
            sample_log,
            wal_gate: RwLock::new(()),
            segment_max_t: Mutex::new(segment_max_t),
            wal_holds: Mutex::new(BTreeMap::new()),
            head,
            blocks,
            counters,
            seal_lock: Mutex::new(()),
            head_freed: (Mutex::new(()), Condvar::new()),
            seal_hook: Mutex::new(None),
            seal_hinted: AtomicI64::new(i64::MIN),
            poisoned: AtomicBool::new(false),
            recovery,
        })
    }
}

/// Takes an exclusive advisory lock on `<dir>/LOCK`; released when the file closes,
/// including when the process dies.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, "open", e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, "lock", e)),
    }
}

/// A decoded samples record on its way to the replay threads.
#[derive(Debug, Default)]
struct Decoded {
    ids: Vec<SeriesId>,
    ts: Vec<i64>,
    vs: Vec<f64>,
}

struct Replayed {
    wal: Wal,
    report: ReplayReport,
    segment_max_t: BTreeMap<SegmentId, i64>,
    stored: u64,
    /// Samples of series the registry does not know (lost with a damaged series log).
    unknown: u64,
    max_unknown_id: SeriesId,
    /// Records that checked out in the WAL but did not decode (salvage skips them).
    bad_records: Vec<(Position, String)>,
}

/// Records in flight between the reading thread and the helper.
const REPLAY_QUEUE_RECORDS: usize = 8;
/// Shards the reading thread inserts itself (of 64); the helper takes the rest. The
/// reader also decodes, which costs about as much as inserting 40% of a record, so it
/// takes a quarter of the shards (balanced with `chronolith bench replay` under perf).
const REPLAY_READER_SHARDS: u32 = 16;

/// Replays the sample log into the head. The reading thread decodes each record once;
/// it and one helper thread then insert disjoint halves of the shards, so replay uses
/// both cores while every series still sees its samples in log order.
fn replay_samples(dir: &Path, opts: WalOptions, mode: RecoveryMode, head: &Head, known: &[bool]) -> Result<Replayed> {
    let mut first_err: Option<Error> = None;
    let mut segment_max_t: BTreeMap<SegmentId, i64> = BTreeMap::new();
    let mut unknown = 0u64;
    let mut max_unknown_id = SeriesId(0);
    let mut bad_records = Vec::new();
    let count_stored = |placed: &[Placed]| placed.iter().filter(|p| **p == Placed::Stored).count() as u64;
    let (wal, report, stored) = std::thread::scope(|s| -> Result<(Wal, ReplayReport, u64)> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Decoded>>(REPLAY_QUEUE_RECORDS);
        let (mine, helpers) = Part::split(REPLAY_READER_SHARDS);
        let helper = s.spawn(move || {
            let mut placed = Vec::new();
            let mut stored = 0;
            for rec in rx {
                head.append_part(&rec.ids, &rec.ts, &rec.vs, false, &mut placed, helpers);
                stored += count_stored(&placed);
            }
            stored
        });
        let mut placed = Vec::new();
        let mut stored = 0;
        let opened = Wal::open(dir, opts, mode, |pos, kind, payload| {
            if first_err.is_some() || kind != RECORD_SAMPLES {
                return;
            }
            // Records wholly older than the seal boundary are in blocks already. Their
            // segment's newest time is still noted: a segment kept for a WAL hold (the
            // forwarder) needs it for backlog accounting and later truncation.
            let header_max_t = walrec::samples_max_t(payload);
            if let Some(t) = header_max_t.filter(|t| *t < head.sealed_until()) {
                let e = segment_max_t.entry(pos.segment).or_insert(t);
                *e = (*e).max(t);
                return;
            }
            let n = walrec::samples_count(payload).unwrap_or(0).min(payload.len());
            let mut rec = Decoded { ids: Vec::with_capacity(n), ts: Vec::with_capacity(n), vs: Vec::with_capacity(n) };
            let res = walrec::decode_samples(payload, |id, t, v| {
                if !usize::try_from(id.0).ok().and_then(|i| known.get(i)).is_some_and(|k| *k) {
                    unknown += 1;
                    max_unknown_id = max_unknown_id.max(id);
                    return;
                }
                rec.ids.push(id);
                rec.ts.push(t);
                rec.vs.push(v);
            });
            if let Err(e) = res {
                let what = format!("samples record: {}", e.reason);
                if mode == RecoveryMode::Salvage {
                    bad_records.push((pos, what));
                } else {
                    first_err = Some(Error::corrupt(segment_path(dir, pos.segment), pos.offset, what));
                }
                return;
            }
            if let Some(&m) = rec.ts.iter().max() {
                let e = segment_max_t.entry(pos.segment).or_insert(m);
                *e = (*e).max(m);
            }
            let rec = Arc::new(rec);
            // If the helper is gone (it cannot fail), this half is simply done here.
            if let Err(std::sync::mpsc::SendError(rec)) = tx.send(rec.clone()) {
                head.append_part(&rec.ids, &rec.ts, &rec.vs, false, &mut placed, helpers);
                stored += count_stored(&placed);
            }
            head.append_part(&rec.ids, &rec.ts, &rec.vs, false, &mut placed, mine);
            stored += count_stored(&placed);
        });
        drop(tx);
        let helper_stored = helper.join().unwrap_or(0);
        let (wal, report) = opened?;
        Ok((wal, report, stored + helper_stored))
    })?;
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(Replayed { wal, report, segment_max_t, stored, unknown, max_unknown_id, bad_records })
}

/// The file of one WAL segment (named as in `wal/FORMAT.md`).
fn segment_path(log_dir: &Path, id: SegmentId) -> PathBuf {
    log_dir.join(format!("{:020}.wal", id.0))
}

impl RecoveryReport {
    fn note_wal(&mut self, log_dir: &Path, r: &ReplayReport) {
        let log = log_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some((segment, offset, bytes)) = r.truncated_tail {
            let kept = r.torn_tail_kept_at.as_ref().map_or(String::new(), |p| format!(", kept in {}", p.display()));
            self.torn_tails.push(format!("{log}/ segment {segment}: {bytes} bytes cut at offset {offset}{kept}"));
            self.damage.push(Damage {
                file: segment_path(log_dir, segment),
                offset,
                len: bytes,
                detail: format!("torn write: {bytes} bytes that do not make a whole record"),
                torn_tail: true,
                kept_at: r.torn_tail_kept_at.clone(),
                dropped: "the unfinished record in those bytes".into(),
            });
        }
        for e in &r.salvaged {
            self.moved_aside.push(format!(
                "{log}/ segment {} damaged at offset {} ({} bytes: {}), original kept in {}",
                e.segment,
                e.offset,
                e.bytes,
                e.reason,
                e.moved_to.display()
            ));
            self.damage.push(Damage {
                file: segment_path(log_dir, e.segment),
                offset: e.offset,
                len: e.bytes,
                detail: e.reason.clone(),
                torn_tail: false,
                kept_at: Some(e.moved_to.clone()),
                dropped: "the records in those bytes".into(),
            });
        }
    }

    fn note_bad_records(&mut self, log_dir: &Path, bad: Vec<(Position, String)>, dropped: &str) {
        for (pos, detail) in bad {
            let file = segment_path(log_dir, pos.segment);
            self.moved_aside.push(format!("{} record at offset {} skipped: {detail}", file.display(), pos.offset));
            self.damage.push(Damage {
                file,
                offset: pos.offset,
                len: 0,
                detail,
                torn_tail: false,
                kept_at: None,
                dropped: dropped.to_string(),
            });
        }
    }
}

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
use crate::stats::{Counters, RecoveryReport};
use crate::types::SeriesId;
use crate::walrec::{self, RECORD_SAMPLES, RECORD_SERIES};
use chronolith_wal::{RecoveryMode, ReplayReport, SegmentId, Wal, WalOptions};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::Path;
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
                .map(|(p, why)| format!("block moved to {}: {why}", p.display()))
                .collect(),
            ..RecoveryReport::default()
        };
        let sealed_until = blocks.snapshot().iter().map(|b| b.meta().max_t.saturating_add(1)).max();

        let wal_opts = WalOptions { segment_bytes_max: opts.wal_segment_bytes_max, durability: opts.durability };
        let series_dir = dir.join(SERIES_LOG_DIR);
        let mut first_err: Option<Error> = None;
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
                first_err.get_or_insert(Error::corrupt(
                    &series_dir,
                    pos.offset,
                    format!("segment {}: series record: {}", pos.segment, e.reason),
                ));
            }
        })?;
        if let Some(e) = first_err.take() {
            return Err(e);
        }
        recovery.note_wal(SERIES_LOG_DIR, &series_report);

        let head = Head::new(opts.partition_ms, opts.ooo_window_ms, sealed_until.unwrap_or(i64::MIN));
        let counters = Counters::default();
        let sample_dir = dir.join(SAMPLE_LOG_DIR);
        let max_id = registry.next_id().0 - 1;
        let replay_started = Instant::now();
        let replay = replay_samples(&sample_dir, wal_opts, mode, &head, max_id)?;
        let (sample_log, segment_max_t, replayed) = (replay.wal, replay.segment_max_t, replay.stored);
        recovery.note_wal(SAMPLE_LOG_DIR, &replay.report);
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
    unknown: u64,
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
fn replay_samples(dir: &Path, opts: WalOptions, mode: RecoveryMode, head: &Head, max_id: u64) -> Result<Replayed> {
    let mut first_err: Option<Error> = None;
    let mut segment_max_t: BTreeMap<SegmentId, i64> = BTreeMap::new();
    let mut unknown = 0u64;
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
                if id.0 > max_id {
                    unknown += 1;
                    return;
                }
                rec.ids.push(id);
                rec.ts.push(t);
                rec.vs.push(v);
            });
            if let Err(e) = res {
                first_err = Some(Error::corrupt(
                    dir,
                    pos.offset,
                    format!("segment {}: samples record: {}", pos.segment, e.reason),
                ));
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
    Ok(Replayed { wal, report, segment_max_t, stored, unknown })
}

impl RecoveryReport {
    fn note_wal(&mut self, log: &str, r: &ReplayReport) {
        if let Some((segment, offset, bytes)) = r.truncated_tail {
            self.torn_tails.push(format!("{log}/ segment {segment}: {bytes} bytes cut at offset {offset}"));
        }
        for e in &r.salvaged {
            self.moved_aside.push(format!(
                "{log}/ segment {} damaged at offset {} ({}), moved to {}",
                e.segment,
                e.offset,
                e.reason,
                e.moved_to.display()
            ));
        }
    }
}

//! Reading WAL records into batches: decode sample records, resolve series ids to labels
//! through the engine's registry (a series record is always logged before its samples),
//! apply the label filters, and split the samples by series into one part per shard.

use super::config::RemoteWriteConfig;
use super::encode::Part;
use crate::{Labels, SeriesId};
use chronolith_engine::walrec::{self, RECORD_SAMPLES};
use chronolith_engine::Engine;
use chronolith_wal::{Position, TailGap, TailReader};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Series ids are dense integers: a multiply spreads them well enough, and SipHash per
/// sample was a visible share of the forwarder's time.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap = HashMap<SeriesId, u32, BuildHasherDefault<IdHasher>>;

/// WAL bytes asked of the reader per call.
const READ_BYTES: usize = 1 << 20;

/// What the filters decided for one series id.
#[derive(Clone, Debug, Default)]
enum Slot {
    #[default]
    Unseen,
    Filtered,
    Forward(Arc<Labels>),
}

/// Samples read from `[start, end)` of the WAL, split per shard.
#[derive(Debug)]
pub(crate) struct Batch {
    pub end: Position,
    pub parts: Vec<Part>,
    pub max_t: i64,
}

/// What reading found besides samples, for the caller to count and log.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub filtered: u64,
    /// Samples naming a series the registry does not know (only after a salvage that
    /// lost series definitions).
    pub unknown: u64,
    /// Records that did not decode: (position, reason).
    pub bad_records: Vec<(Position, &'static str)>,
    pub gaps: Vec<TailGap>,
}

#[derive(Debug)]
pub(crate) struct Batcher {
    shards: usize,
    per_shard_samples: usize,
    slots: Vec<Slot>,
    /// Per shard: series id → index in that shard's `Part::labels`, for one batch.
    index: Vec<IdMap>,
}

impl Batcher {
    pub(crate) fn new(cfg: &RemoteWriteConfig) -> Batcher {
        Batcher {
            shards: cfg.shards,
            per_shard_samples: cfg.max_samples_per_request,
            slots: Vec::new(),
            index: (0..cfg.shards).map(|_| IdMap::default()).collect(),
        }
    }

    fn slot(&mut self, engine: &Engine, cfg: &RemoteWriteConfig, id: SeriesId) -> Slot {
        let i = usize::try_from(id.0).unwrap_or(usize::MAX);
        if let Some(s) = self.slots.get(i) {
            if !matches!(s, Slot::Unseen) {
                return s.clone();
            }
        }
        let Some(labels) = engine.registry().labels(id) else { return Slot::Unseen };
        let s = if cfg.wants(&labels) { Slot::Forward(labels) } else { Slot::Filtered };
        if i < (1 << 32) {
            if self.slots.len() <= i {
                self.slots.resize(i + 1, Slot::Unseen);
            }
            self.slots[i] = s.clone();
        }
        s
    }

    fn shard_of(&self, id: SeriesId) -> usize {
        // Fibonacci hashing: ids are dense, so spread neighbours over shards.
        ((id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % self.shards as u64) as usize
    }

    /// Reads records up to `end` until a shard part is full, a segment ends or nothing
    /// is left. `None` if the reader did not move.
    pub(crate) fn read(
        &mut self,
        engine: &Engine,
        cfg: &RemoteWriteConfig,
        reader: &mut TailReader,
        end: Position,
        found: &mut Found,
    ) -> chronolith_wal::Result<Option<Batch>> {
        let start = reader.position();
        let mut parts: Vec<Part> = (0..self.shards).map(|_| Part::default()).collect();
        for m in &mut self.index {
            m.clear();
        }
        let mut max_t = i64::MIN;
        let mut full = false;
        // Bounded: each pass consumes bytes or stops.
        while !full {
            let read = reader.read(end, READ_BYTES, &mut |pos, kind, payload| {
                if kind != RECORD_SAMPLES {
                    return;
                }
                let res = walrec::decode_samples(payload, |id, t, v| {
                    let k = self.shard_of(id);
                    // Seen in this batch already: no registry or filter work.
                    if let Some(&idx) = self.index[k].get(&id) {
                        parts[k].push(idx, t, v);
                        max_t = max_t.max(t);
                        return;
                    }
                    match self.slot(engine, cfg, id) {
                        Slot::Forward(labels) => {
                            let part = &mut parts[k];
                            part.labels.push(labels);
                            let idx = (part.labels.len() - 1) as u32;
                            self.index[k].insert(id, idx);
                            part.push(idx, t, v);
                            max_t = max_t.max(t);
                        }
                        Slot::Filtered => found.filtered += 1,
                        Slot::Unseen => found.unknown += 1,
                    }
                });
                if let Err(e) = res {
                    found.bad_records.push((pos, e.reason));
                }
            })?;
            if let Some(g) = read.gap {
                found.gaps.push(g);
            }
            full = parts.iter().any(|p| p.samples() >= self.per_shard_samples);
            if read.bytes == 0 || read.segment_done {
                break;
            }
        }
        if reader.position() == start {
            return Ok(None);
        }
        Ok(Some(Batch { end: reader.position(), parts, max_t }))
    }

    /// Counts the samples in `[reader position, to)` this target would have sent, moving
    /// the reader to `to` (a segment start). For the backlog bound's drop.
    pub(crate) fn skip_to(
        &mut self,
        engine: &Engine,
        cfg: &RemoteWriteConfig,
        reader: &mut TailReader,
        to: Position,
        found: &mut Found,
    ) -> u64 {
        let mut n = 0u64;
        // Bounded by the bytes between the two positions; a read error stops counting.
        while reader.position() < to {
            let read = reader.read(to, READ_BYTES, &mut |_, kind, payload| {
                if kind == RECORD_SAMPLES {
                    let _ = walrec::decode_samples(payload, |id, _, _| {
                        if matches!(self.slot(engine, cfg, id), Slot::Forward(_)) {
                            n += 1;
                        }
                    });
                }
            });
            match read {
                Ok(r) => {
                    let moved = r.bytes > 0 || r.gap.is_some();
                    if let Some(g) = r.gap {
                        found.gaps.push(g);
                    }
                    if !moved {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if reader.position() < to {
            reader.seek(to);
        }
        n
    }
}

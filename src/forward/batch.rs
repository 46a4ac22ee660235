//! Reading WAL records into batches: decode sample records, resolve series ids to labels
//! through the engine's registry (a series record is always logged before its samples),
//! apply the label filters, and split the samples by series into one part per shard.
//!
//! A batch accumulates over many WAL records, so that each series has as many samples as
//! possible per request (its labels are sent once per request): it is ready when the next
//! record could take a shard's part past `max_samples_per_request`, when its segment
//! ends (a batch never spans two segments), or `batch_send_deadline_ms` after its first
//! sample. Records are whole (a batch ends at a record boundary), so reads are sized from
//! the room left, the WAL bytes per sample and the largest record seen.

use super::config::RemoteWriteConfig;
use super::encode::Part;
use crate::SeriesId;
use chronolith_engine::walrec::{self, RECORD_SAMPLES};
use chronolith_engine::Engine;
use chronolith_wal::{Position, TailGap, TailReader};
use std::time::{Duration, Instant};

/// WAL bytes asked of the reader per call, at most.
const READ_BYTES_MAX: usize = 1 << 20;

/// What the filters decided for one series id, and where it last was put.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    kind: Kind,
    shard: u16,
    /// Index among the series of its shard (the shard's label cache key).
    local: u32,
    /// The batch generation in which `idx` is valid.
    generation: u32,
    /// Index in the shard part's `series` of that batch.
    idx: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    Unseen,
    Filtered,
    Forward,
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

/// The batch being filled.
#[derive(Debug)]
struct Pending {
    start: Position,
    parts: Vec<Part>,
    max_t: i64,
    /// When its first sample was read.
    since: Option<Instant>,
    /// Takes no more records: its segment ended (or the reader skipped a gap), or the
    /// next record could overfill a part.
    closed: bool,
}

#[derive(Debug)]
pub(crate) struct Batcher {
    shards: usize,
    per_shard_samples: usize,
    deadline: Duration,
    slots: Vec<Slot>,
    /// Per shard: series so far (the next shard-local id).
    locals: Vec<u32>,
    generation: u32,
    pending: Option<Pending>,
    /// WAL bytes and samples read so far (for the bytes a sample takes), and the most
    /// samples one record held.
    bytes_read: u64,
    samples_read: u64,
    record_samples_max: usize,
}

impl Batcher {
    pub(crate) fn new(cfg: &RemoteWriteConfig) -> Batcher {
        Batcher {
            shards: cfg.shards,
            per_shard_samples: cfg.max_samples_per_request,
            deadline: Duration::from_millis(cfg.batch_send_deadline_ms),
            slots: Vec::new(),
            locals: vec![0; cfg.shards],
            generation: 1,
            pending: None,
            bytes_read: 0,
            samples_read: 0,
            record_samples_max: 0,
        }
    }

    /// The index of `id`'s slot, resolving labels and filters the first time it is seen;
    /// `None` for an id the registry does not know.
    fn resolve(&mut self, engine: &Engine, cfg: &RemoteWriteConfig, id: SeriesId) -> Option<usize> {
        let i = usize::try_from(id.0).ok().filter(|i| *i < (1 << 32))?;
        if self.slots.len() <= i {
            self.slots.resize(i + 1, Slot::default());
        }
        if self.slots[i].kind == Kind::Unseen {
            let labels = engine.registry().labels(id)?;
            if cfg.wants(&labels) {
                // Fibonacci hashing: ids are dense, so spread neighbours over shards.
                let shard = ((id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % self.shards as u64) as usize;
                let local = self.locals[shard];
                self.locals[shard] += 1;
                self.slots[i] = Slot { kind: Kind::Forward, shard: shard as u16, local, generation: 0, idx: 0 };
            } else {
                self.slots[i].kind = Kind::Filtered;
            }
        }
        Some(i)
    }

    /// The most samples one record may add to one part: its even share and a margin
    /// for uneven hashing.
    fn record_share(&self) -> usize {
        let even = self.record_samples_max.div_ceil(self.shards);
        if self.shards == 1 {
            even
        } else {
            even + even / 4 + 1
        }
    }

    /// WAL bytes to read for about `samples` samples (at least one record).
    fn bytes_for(&self, samples: usize) -> usize {
        let per_sample = if self.samples_read == 0 { 6.0 } else { self.bytes_read as f64 / self.samples_read as f64 };
        ((samples as f64 * per_sample) as usize).clamp(1, READ_BYTES_MAX)
    }

    fn fresh_parts(&mut self) -> Vec<Part> {
        // Follow what the WAL holds now: forget old extremes, weigh recent bytes more.
        self.record_samples_max -= self.record_samples_max / 8;
        if self.samples_read > 1 << 24 {
            self.samples_read /= 2;
            self.bytes_read /= 2;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: no slot may claim to be in this batch by accident.
            for s in &mut self.slots {
                s.generation = 0;
            }
            self.generation = 1;
        }
        // Parts fill up to about the request size: reserve it (within reason) rather than
        // grow by doubling and copying.
        let reserve = self.per_shard_samples.min(1 << 16);
        (0..self.shards).map(|_| Part::with_capacity(reserve)).collect()
    }

    /// Reads records up to `end` into the pending batch (started at the reader's
    /// position if there is none) until a part is full, the segment ends or nothing is
    /// left. Returns whether the reader moved.
    pub(crate) fn fill(
        &mut self,
        engine: &Engine,
        cfg: &RemoteWriteConfig,
        reader: &mut TailReader,
        end: Position,
        found: &mut Found,
    ) -> chronolith_wal::Result<bool> {
        let start = reader.position();
        if self.pending.is_none() {
            let parts = self.fresh_parts();
            self.pending = Some(Pending { start, parts, max_t: i64::MIN, since: None, closed: false });
        }
        let Some(mut p) = self.pending.take() else { return Ok(false) };
        let res = self.fill_pending(&mut p, engine, cfg, reader, end, found);
        self.pending = Some(p);
        res?;
        Ok(reader.position() != start)
    }

    fn fill_pending(
        &mut self,
        p: &mut Pending,
        engine: &Engine,
        cfg: &RemoteWriteConfig,
        reader: &mut TailReader,
        end: Position,
        found: &mut Found,
    ) -> chronolith_wal::Result<()> {
        let generation = self.generation;
        // Bounded: each pass consumes bytes or stops.
        while !p.closed {
            let fullest = p.parts.iter().map(Part::samples).max().unwrap_or(0);
            // Leave room for the record that crosses the read size; an empty batch takes
            // at least one record, however large (its part is cut into several requests).
            let room = self.per_shard_samples.saturating_sub(fullest + self.record_share());
            if room == 0 && fullest > 0 {
                p.closed = true;
                break;
            }
            let want = self.bytes_for(room * self.shards);
            let before = p.parts.iter().map(Part::samples).sum::<usize>();
            let mut decoded = 0u64;
            let mut record_max = 0usize;
            let read = reader.read(end, want, &mut |pos, kind, payload| {
                if kind != RECORD_SAMPLES {
                    return;
                }
                let mut n = 0usize;
                let res = walrec::decode_samples(payload, |id, t, v| {
                    n += 1;
                    let Some(i) = self.resolve(engine, cfg, id) else {
                        found.unknown += 1;
                        return;
                    };
                    let slot = &mut self.slots[i];
                    match slot.kind {
                        Kind::Forward => {}
                        Kind::Filtered => {
                            found.filtered += 1;
                            return;
                        }
                        Kind::Unseen => {
                            found.unknown += 1;
                            return;
                        }
                    }
                    let part = &mut p.parts[usize::from(slot.shard)];
                    if slot.generation != generation {
                        slot.generation = generation;
                        slot.idx = part.series.len() as u32;
                        part.series.push((slot.local, id));
                    }
                    part.push(slot.idx, t, v);
                    p.max_t = p.max_t.max(t);
                });
                if let Err(e) = res {
                    found.bad_records.push((pos, e.reason));
                }
                decoded += n as u64;
                record_max = record_max.max(n);
            })?;
            self.bytes_read += read.bytes;
            self.samples_read += decoded;
            self.record_samples_max = self.record_samples_max.max(record_max);
            // After a gap the reader is in another segment: end the batch here too.
            p.closed |= read.segment_done || read.gap.is_some();
            if let Some(g) = read.gap {
                found.gaps.push(g);
            }
            if p.since.is_none() && p.parts.iter().map(Part::samples).sum::<usize>() > before {
                p.since = Some(Instant::now());
            }
            if read.bytes == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Where the unsent part of the WAL starts: the pending batch's start if it read
    /// anything, else `reader_pos`.
    pub(crate) fn unsent_from(&self, reader_pos: Position) -> Position {
        match &self.pending {
            Some(p) if p.start != reader_pos => p.start,
            _ => reader_pos,
        }
    }

    /// When the pending batch is due (`None`: nothing pending; `now` or earlier: due).
    pub(crate) fn due(&self, reader_pos: Position, now: Instant) -> Option<Instant> {
        let p = self.pending.as_ref().filter(|p| p.start != reader_pos)?;
        match p.since {
            Some(since) if !p.closed => Some(since + self.deadline),
            // Full, at a segment's end, or nothing to send (filtered records): at once.
            _ => Some(now),
        }
    }

    /// Whether the pending batch takes no more records.
    pub(crate) fn full(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| p.closed)
    }

    /// Hands out the pending batch, which ends at the reader's position.
    pub(crate) fn take(&mut self, reader_pos: Position) -> Option<Batch> {
        let p = self.pending.take().filter(|p| p.start != reader_pos)?;
        Some(Batch { end: reader_pos, parts: p.parts, max_t: p.max_t })
    }

    /// Forgets the pending batch if it starts before `to`, returning its samples (the
    /// backlog bound dropped them).
    pub(crate) fn discard_before(&mut self, to: Position) -> u64 {
        match &self.pending {
            Some(p) if p.start < to => {
                let n = p.parts.iter().map(|part| part.samples() as u64).sum();
                self.pending = None;
                n
            }
            _ => 0,
        }
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
            let read = reader.read(to, READ_BYTES_MAX, &mut |_, kind, payload| {
                if kind == RECORD_SAMPLES {
                    let _ = walrec::decode_samples(payload, |id, _, _| {
                        if self.resolve(engine, cfg, id).is_some_and(|i| self.slots[i].kind == Kind::Forward) {
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

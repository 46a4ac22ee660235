//! Streams one series' samples into a [`Stepper`]: block chunks that overlap the range
//! (chosen from the index's min/max time alone) are decoded one at a time into buffers
//! reused across the series a worker handles, pushed, and dropped; the head's samples
//! follow. Only when sources overlap in time (a merge or a seal racing the read) are the
//! samples gathered and sorted first.
//!
//! `Engine::read_series` gives the same samples but materialises them all, allocates per
//! block and, whenever a series spans several blocks, copies and sorts the already
//! ordered result; in a full scan that cost about a third of the time.

use crate::stepper::Stepper;
use chronolith_engine::block::ChunkRef;
use chronolith_engine::{Engine, Error, Result, Sample, SeriesId};

/// Per-worker buffers, kept between series so their capacity is reused.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Handed to each series' stepper and taken back.
    pub window: Vec<Sample>,
    head: Vec<Sample>,
    chunks: Vec<(usize, ChunkRef)>,
    gathered: Vec<Sample>,
    ts: Vec<i64>,
    vs: Vec<f64>,
}

impl Scratch {
    /// Pushes the samples of `id` in `[start, end]` into `stepper` in time order, one per
    /// timestamp; returns how many.
    pub fn stream(
        &mut self,
        engine: &Engine,
        id: SeriesId,
        start: i64,
        end: i64,
        stepper: &mut Stepper,
    ) -> Result<u64> {
        self.head.clear();
        self.chunks.clear();
        // Head first, then the block set as it is now: a seal publishes its block before
        // it drops the samples from the head, so this order never misses a sample.
        engine.head().read(id, start, end, &mut self.head);
        let snapshot = engine.blocks().snapshot();
        let blocks: Vec<_> = snapshot.overlapping(start, end).collect();
        for (i, block) in blocks.iter().enumerate() {
            let wanted = block.chunks_of(id).iter().filter(|c| c.min_t <= end && c.max_t >= start);
            self.chunks.extend(wanted.map(|c| (i, *c)));
        }
        self.chunks.sort_by_key(|(_, c)| c.min_t);
        let chunks_disjoint = self.chunks.windows(2).all(|w| w[0].1.max_t < w[1].1.min_t);
        let head_after = match (self.chunks.last(), self.head.first()) {
            (Some((_, c)), Some(h)) => c.max_t < h.t,
            _ => true,
        };
        let mut pushed = 0u64;
        if chunks_disjoint && head_after {
            for (i, chunk) in &self.chunks {
                self.ts.clear();
                self.vs.clear();
                blocks[*i].decode_chunk(chunk, &mut self.ts, &mut self.vs)?;
                if self.ts.len() != self.vs.len() {
                    return Err(Error::Corruption {
                        path: blocks[*i].dir().to_path_buf(),
                        offset: chunk.offset,
                        detail: format!("chunk decoded to {} timestamps, {} values", self.ts.len(), self.vs.len()),
                    });
                }
                // Chunks may straddle the range's edges: trim to [start, end].
                let from = self.ts.partition_point(|t| *t < start);
                let to = self.ts.partition_point(|t| *t <= end);
                if from < to {
                    stepper.push_columns(&self.ts[from..to], &self.vs[from..to]);
                    pushed += (to - from) as u64;
                }
            }
            for s in &self.head {
                stepper.push(*s);
            }
            return Ok(pushed + self.head.len() as u64);
        }
        // Overlapping sources: gather, order, keep one sample per timestamp (the head's,
        // which was read first; the sort is stable).
        self.gathered.clear();
        self.gathered.extend_from_slice(&self.head);
        for (i, chunk) in &self.chunks {
            self.ts.clear();
            self.vs.clear();
            blocks[*i].decode_chunk(chunk, &mut self.ts, &mut self.vs)?;
            let pairs = self.ts.iter().zip(&self.vs).map(|(t, v)| Sample::new(*t, *v));
            self.gathered.extend(pairs.filter(|s| s.t >= start && s.t <= end));
        }
        self.gathered.sort_by_key(|s| s.t);
        self.gathered.dedup_by_key(|s| s.t);
        for s in &self.gathered {
            stepper.push(*s);
        }
        Ok(self.gathered.len() as u64)
    }
}

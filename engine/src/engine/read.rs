//! Raw reads: the samples of matching series across head and blocks, in time order.

use super::Engine;
use crate::error::Result;
use crate::labels::Labels;
use crate::matcher::Matcher;
use crate::types::{Sample, SeriesId};
use std::sync::Arc;

/// One series and its samples in the selected range, ascending by time, no duplicates.
#[derive(Clone, Debug)]
pub struct SeriesSamples {
    pub id: SeriesId,
    pub labels: Arc<Labels>,
    pub samples: Vec<Sample>,
}

/// Iterates the series chosen by [`Engine::select`], one at a time, decoding only that
/// series' chunks inside the range. Series without samples in the range are skipped.
#[derive(Debug)]
pub struct Select<'a> {
    engine: &'a Engine,
    ids: std::vec::IntoIter<SeriesId>,
    start: i64,
    end: i64,
}

impl Engine {
    /// Selects series matching every matcher and reads their samples in `[start, end]`
    /// (milliseconds, inclusive).
    pub fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Select<'_> {
        Select { engine: self, ids: self.registry.select(matchers).into_iter(), start, end }
    }

    /// Reads one series' samples in `[start, end]`.
    pub fn read_series(&self, id: SeriesId, start: i64, end: i64, out: &mut Vec<Sample>) -> Result<()> {
        if start > end {
            return Ok(());
        }
        // Head first, then the block set as it is now: a seal publishes its block before
        // it drops the samples from the head, so this order never misses a sample.
        let from = out.len();
        self.head.read(id, start, end, out);
        let head_len = out.len() - from;
        let blocks = self.blocks.snapshot();
        let mut sources = usize::from(head_len > 0);
        for b in blocks.overlapping(start, end) {
            let before = out.len();
            b.read(id, start, end, out)?;
            sources += usize::from(out.len() > before);
        }
        if sources > 1 {
            let part = &mut out[from..];
            part.sort_by_key(|s| s.t);
            let mut merged: Vec<Sample> = part.to_vec();
            merged.dedup_by_key(|s| s.t);
            out.truncate(from);
            out.extend(merged);
        }
        Ok(())
    }
}

impl Iterator for Select<'_> {
    type Item = Result<SeriesSamples>;

    fn next(&mut self) -> Option<Self::Item> {
        for id in self.ids.by_ref() {
            let mut samples = Vec::new();
            if let Err(e) = self.engine.read_series(id, self.start, self.end, &mut samples) {
                return Some(Err(e));
            }
            if samples.is_empty() {
                continue;
            }
            let Some(labels) = self.engine.registry.labels(id) else { continue };
            return Some(Ok(SeriesSamples { id, labels, samples }));
        }
        None
    }
}

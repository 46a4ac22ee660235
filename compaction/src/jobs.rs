//! Running jobs: each writes its output block through the engine's block writer (a
//! `.tmp` directory, fsynced, renamed) and then changes the block set in one atomic swap.
//! A merge's output names its inputs as `parents`, so a crash between the rename and the
//! removal of the inputs is finished on open; a rollup block replaces nothing, so a crash
//! leaves the span either covered or not; a drop renames each block to `.deleted`.

use crate::plan::{Job, Source};
use crate::status::JobOutcome;
use chronolith_engine::block::rollup::{BucketBuilder, Buckets, ColumnSet};
use chronolith_engine::block::{Block, BlockWriter};
use chronolith_engine::{Engine, Error, Result, SeriesId};
use std::sync::Arc;

/// Runs one job.
pub fn run_job(engine: &Engine, job: &Job) -> Result<JobOutcome> {
    match job {
        Job::Merge { level, parents, .. } => merge(engine, *level, parents),
        Job::Downsample { resolution_ms, from, to, source } => downsample(engine, *resolution_ms, *from, *to, source),
        Job::Drop { blocks, .. } => drop_blocks(engine, blocks),
        Job::Purge { block, series } => purge(engine, block, series),
    }
}

/// Union of the series ids of these blocks, ascending.
fn series_union(blocks: &[Arc<Block>]) -> Vec<SeriesId> {
    let mut ids: Vec<SeriesId> = blocks.iter().flat_map(|b| b.series_ids()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn labels_of(engine: &Engine, id: SeriesId) -> Result<Arc<chronolith_engine::Labels>> {
    engine.registry().labels(id).ok_or_else(|| Error::Corruption {
        path: engine.dir().to_path_buf(),
        offset: 0,
        detail: format!("block holds unregistered series {id}"),
    })
}

fn merge(engine: &Engine, level: u32, parents: &[Arc<Block>]) -> Result<JobOutcome> {
    let blocks = engine.blocks();
    let seqs: Vec<u64> = parents.iter().map(|b| b.meta().seq).collect();
    let mut w = BlockWriter::create(blocks.dir(), blocks.allocate_seq(), 0, level, seqs.clone())?;
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    let mut out = JobOutcome::default();
    let filled = (|| {
        for id in series_union(parents) {
            ts.clear();
            vs.clear();
            // Parents are disjoint in time and sorted by min_t: concatenation is in order.
            for b in parents {
                for c in b.chunks_of(id) {
                    b.decode_chunk(c, &mut ts, &mut vs)?;
                }
            }
            out.samples_in += ts.len() as u64;
            w.add_series(id, labels_of(engine, id)?, &ts, &vs)?;
        }
        Ok::<(), Error>(())
    })();
    if let Err(e) = filled {
        w.abandon();
        return Err(e);
    }
    let (dir, meta) = w.finish()?;
    blocks.apply(&[dir], &seqs)?;
    out.samples_out = meta.samples;
    out.bytes_in = parents.iter().map(|b| b.disk_bytes()).sum();
    out.bytes_out = meta.chunks_bytes + meta.index_bytes;
    out.blocks_written = 1;
    out.partitions_dropped = parents.len() as u64;
    Ok(out)
}

fn downsample(engine: &Engine, resolution_ms: i64, from: i64, to: i64, source: &Source) -> Result<JobOutcome> {
    let blocks = engine.blocks();
    let snapshot = blocks.snapshot();
    let inputs: Vec<Arc<Block>> = match source {
        Source::Raw => snapshot.raw().filter(|b| b.overlaps(from.saturating_add(1), to)).cloned().collect(),
        Source::Rollup { resolution_ms: f } => {
            snapshot.rollups(*f).filter(|b| b.meta().covers_to > from && b.meta().covers_from < to).cloned().collect()
        }
    };
    let res = u64::try_from(resolution_ms).map_err(|_| Error::InvalidOptions("negative resolution".into()))?;
    let mut w = BlockWriter::create(blocks.dir(), blocks.allocate_seq(), res, 0, Vec::new())?;
    w.set_covers(from, to);
    let mut out = JobOutcome::default();
    let mut builder = BucketBuilder::new(resolution_ms);
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    let mut finer = Buckets::default();
    let filled = (|| {
        for id in series_union(&inputs) {
            builder.reset();
            for b in &inputs {
                for c in b.chunks_of(id).iter().filter(|c| c.max_t > from && c.min_t <= to) {
                    if b.is_rollup() {
                        finer.clear();
                        b.decode_rollup_chunk(c, ColumnSet::ALL, &mut finer)?;
                        let lo = finer.end_t.partition_point(|t| *t <= from);
                        let hi = finer.end_t.partition_point(|t| *t <= to);
                        let mut part = Buckets::default();
                        finer.copy_range_into(lo, hi, &mut part);
                        out.samples_in += part.len() as u64;
                        builder.push_buckets(&part);
                    } else {
                        ts.clear();
                        vs.clear();
                        b.decode_chunk(c, &mut ts, &mut vs)?;
                        // Chunks straddle the span's edges: keep from < t <= to.
                        let lo = ts.partition_point(|t| *t <= from);
                        let hi = ts.partition_point(|t| *t <= to);
                        out.samples_in += (hi - lo) as u64;
                        builder.push_samples(&ts[lo..hi], &vs[lo..hi]);
                    }
                }
            }
            let buckets = builder.finish();
            if !buckets.is_empty() {
                out.samples_out += buckets.len() as u64;
                w.add_rollup_series(id, labels_of(engine, id)?, buckets)?;
            }
        }
        Ok::<(), Error>(())
    })();
    if let Err(e) = filled {
        w.abandon();
        return Err(e);
    }
    // Even an empty block is published: it records that the span is done.
    let (dir, meta) = w.finish()?;
    blocks.apply(&[dir], &[])?;
    out.bytes_in = inputs.iter().map(|b| b.disk_bytes()).sum();
    out.bytes_out = meta.chunks_bytes + meta.index_bytes;
    out.blocks_written = 1;
    Ok(out)
}

/// Retention by selector: a new block with every series of `block` but `series`, chunks
/// copied as they are, naming `block` as its parent, so one swap replaces it (and a crash
/// after the rename is finished on open, as for a merge). If nothing is left, the block
/// is dropped instead.
fn purge(engine: &Engine, block: &Arc<Block>, series: &[SeriesId]) -> Result<JobOutcome> {
    let blocks = engine.blocks();
    let keep: Vec<SeriesId> = block.series_ids().filter(|id| series.binary_search(id).is_err()).collect();
    if keep.is_empty() {
        return drop_blocks(engine, std::slice::from_ref(block));
    }
    let m = block.meta();
    let mut w = BlockWriter::create(blocks.dir(), blocks.allocate_seq(), m.resolution_ms, m.level, vec![m.seq])?;
    if block.is_rollup() {
        w.set_covers(m.covers_from, m.covers_to);
    }
    let filled = keep.iter().try_for_each(|id| w.copy_series(*id, labels_of(engine, *id)?, block));
    if let Err(e) = filled {
        w.abandon();
        return Err(e);
    }
    let (dir, meta) = w.finish()?;
    blocks.apply(&[dir], &[m.seq])?;
    Ok(JobOutcome {
        bytes_in: block.disk_bytes(),
        bytes_out: meta.chunks_bytes + meta.index_bytes,
        samples_in: m.samples,
        samples_out: meta.samples,
        blocks_written: 1,
        partitions_dropped: 0,
    })
}

fn drop_blocks(engine: &Engine, doomed: &[Arc<Block>]) -> Result<JobOutcome> {
    let seqs: Vec<u64> = doomed.iter().map(|b| b.meta().seq).collect();
    engine.blocks().apply(&[], &seqs)?;
    Ok(JobOutcome {
        bytes_in: doomed.iter().map(|b| b.disk_bytes()).sum(),
        partitions_dropped: doomed.len() as u64,
        ..JobOutcome::default()
    })
}

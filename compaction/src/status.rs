//! What the compaction jobs have done, per kind: what `Db::stats()` reports.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    Merge,
    Downsample,
    Retention,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Merge => "merge",
            JobKind::Downsample => "downsample",
            JobKind::Retention => "retention",
        }
    }
}

/// Totals for one kind of job since open (durations and times of the last one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStats {
    /// Jobs run (one merge group, one downsampled span, one retention sweep that dropped
    /// something), successful or not.
    pub runs: u64,
    pub failures: u64,
    pub last_duration: Duration,
    /// Time spent in these jobs, for throughput figures.
    pub busy: Duration,
    /// Bytes of the blocks read (merge, downsample) or dropped (retention).
    pub bytes_in: u64,
    /// Bytes of the blocks written.
    pub bytes_out: u64,
    /// Raw samples (or finer buckets) read.
    pub samples_in: u64,
    /// Samples (merge) or buckets (downsample) written.
    pub samples_out: u64,
    pub blocks_written: u64,
    /// Blocks (partitions) removed from the set: merge inputs or expired blocks.
    pub partitions_dropped: u64,
    /// Clock time (ms since the epoch) of the last job that succeeded.
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// Every job kind's totals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionStatus {
    pub merge: JobStats,
    pub downsample: JobStats,
    pub retention: JobStats,
    /// Worker passes (each plans and runs every job it finds).
    pub passes: u64,
}

impl CompactionStatus {
    pub fn job(&self, kind: JobKind) -> &JobStats {
        match kind {
            JobKind::Merge => &self.merge,
            JobKind::Downsample => &self.downsample,
            JobKind::Retention => &self.retention,
        }
    }

    pub fn job_mut(&mut self, kind: JobKind) -> &mut JobStats {
        match kind {
            JobKind::Merge => &mut self.merge,
            JobKind::Downsample => &mut self.downsample,
            JobKind::Retention => &mut self.retention,
        }
    }
}

/// What one job did (before it is added to the totals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobOutcome {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub samples_in: u64,
    pub samples_out: u64,
    pub blocks_written: u64,
    pub partitions_dropped: u64,
}

impl JobStats {
    pub(crate) fn record(&mut self, took: Duration, result: &Result<JobOutcome, String>, now_ms: i64) {
        self.runs += 1;
        self.last_duration = took;
        self.busy += took;
        match result {
            Ok(o) => {
                self.bytes_in += o.bytes_in;
                self.bytes_out += o.bytes_out;
                self.samples_in += o.samples_in;
                self.samples_out += o.samples_out;
                self.blocks_written += o.blocks_written;
                self.partitions_dropped += o.partitions_dropped;
                self.last_success_ms = Some(now_ms);
                self.last_error = None;
            }
            Err(e) => {
                self.failures += 1;
                self.last_error = Some(e.clone());
            }
        }
    }
}

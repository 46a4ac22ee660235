//! One file's import: a reader thread cuts the input into chunks of whole lines,
//! parse workers (one per core by default) turn chunks into batches, and this thread
//! appends them in file order, so line numbers, `--strict` and `# EOF` mean exactly
//! what they mean for a line-by-line import, and sample order is the file's.
//!
//! ```text
//!            free slots (bounded pool)
//!     ┌─────────────────────────────────────────┐
//!     ▼                                         │
//!  reader ──chunks──▶ workers ──parsed──▶ appender (reorders by chunk seq)
//! ```

use super::chunks::{read_chunks, Slot, Stop};
use super::worker::{self, Ctx, Known, Part};
use super::{Summary, MALFORMED_REPORTED_MAX};
use chronolith::{Db, RejectReason, SeriesId};
use crossbeam::channel::{unbounded, Receiver, Sender};
use indicatif::ProgressBar;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The state that outlives one file: the database, the counts, the progress bar.
#[derive(Debug)]
pub struct Appender<'a> {
    pub db: &'a Db,
    pub summary: Summary,
    pub progress: ProgressBar,
    pub started: Instant,
}

/// Imports one input (already opened, format known) with `threads` parse workers.
/// `name` prefixes messages (`name:line: ...`).
pub fn import(app: &mut Appender<'_>, name: &str, input: impl Read + Send, ctx: &Ctx<'_>, threads: usize) -> Res {
    let threads = threads.max(1);
    let (free_tx, free_rx) = unbounded::<Slot>();
    let (jobs_tx, jobs_rx) = unbounded::<Slot>();
    let (done_tx, done_rx) = unbounded::<Slot>();
    // Two chunks per worker keep everyone busy; the pool bounds memory to a few MiB.
    for _ in 0..2 * threads + 2 {
        free_tx.send(Slot::default()).map_err(|_| "pipeline closed")?;
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let stop = &stop;
        let spawn_err = |e: std::io::Error| format!("cannot start an import thread: {e}");
        let reader = std::thread::Builder::new()
            .name("import-read".into())
            .spawn_scoped(s, move || read_chunks(input, &free_rx, &jobs_tx, stop))
            .map_err(spawn_err)?;
        for _ in 0..threads {
            let (jobs, done) = (jobs_rx.clone(), done_tx.clone());
            std::thread::Builder::new()
                .name("import-parse".into())
                .spawn_scoped(s, move || worker::work(ctx, &jobs, &done, stop))
                .map_err(spawn_err)?;
        }
        drop((jobs_rx, done_tx));
        let appended = app.in_order(name, ctx.known, &done_rx, free_tx);
        // Stop the others whatever happened: the reader waits for free slots (their
        // sender is gone now), workers for chunks (the reader's sender goes with it).
        stop.store(true, Ordering::Relaxed);
        drop(done_rx);
        let read = reader.join().map_err(|_| "reader thread panicked")?;
        appended?;
        read.map_err(|e| format!("{name}: {e}").into())
    })
}

impl Appender<'_> {
    /// Takes parsed chunks in sequence order until the input ends or a chunk stops it.
    fn in_order(&mut self, name: &str, known: &Known, done: &Receiver<Slot>, free: Sender<Slot>) -> Res {
        let mut waiting: BTreeMap<u64, Slot> = BTreeMap::new();
        let mut next = 0u64;
        let mut line_base = 0u64;
        while let Ok(slot) = done.recv() {
            waiting.insert(slot.seq, slot);
            while let Some(slot) = waiting.remove(&next) {
                next += 1;
                let stopped = self.chunk(name, known, &slot, line_base)?;
                line_base += slot.out.lines;
                if stopped {
                    return Ok(());
                }
                // The reader may have finished already: then the slot is not needed.
                let _ = free.send(slot);
            }
        }
        // Only a worker that died (a bug) leaves a gap; say so rather than end short.
        match waiting.keys().next() {
            Some(_) => {
                Err(format!("{name}: a parse worker stopped before chunk {next}; the import is incomplete").into())
            }
            None => Ok(()),
        }
    }

    /// Appends one chunk's parts and reports its malformed lines; `Ok(true)` at `# EOF`.
    fn chunk(&mut self, name: &str, known: &Known, slot: &Slot, line_base: u64) -> Res<bool> {
        let out = &slot.out;
        self.summary.lines += out.lines;
        for (rel, e) in &out.malformed {
            let seen = self.summary.malformed + 1;
            self.summary.malformed = seen;
            if seen <= MALFORMED_REPORTED_MAX {
                self.progress.suspend(|| eprintln!("{name}:{}: {e}; line skipped", line_base + rel + 1));
            } else if seen == MALFORMED_REPORTED_MAX + 1 {
                self.progress.suspend(|| eprintln!("(further malformed lines are counted, not shown)"));
            }
        }
        let reported = out.malformed.len() as u64;
        let strict = u64::from(matches!(out.stop, Some(Stop::Strict(..))));
        self.summary.malformed += out.malformed_count - reported - strict;
        for part in &out.parts[..out.parts_used] {
            self.append(part, known)?;
        }
        match &out.stop {
            None => Ok(false),
            Some(Stop::Eof) => Ok(true),
            Some(Stop::Strict(rel, e)) => {
                self.summary.malformed += 1;
                Err(format!("{name}:{}: {e} (stopping: --strict)", line_base + rel + 1).into())
            }
        }
    }

    fn append(&mut self, part: &Part, known: &Known) -> Res {
        if part.batch.is_empty() {
            return Ok(());
        }
        let mut overloaded = 0;
        let report = loop {
            match self.db.append(&part.batch) {
                // The head waits for sealing; with a wide out-of-order window little can
                // be sealed, so give up after a while rather than spin forever.
                Err(chronolith::Error::Overloaded { .. }) if overloaded < 30 => overloaded += 1,
                Err(e @ chronolith::Error::Overloaded { .. }) => {
                    return Err(format!("{e}: head memory is full; retry with a smaller --ooo-window-hours").into())
                }
                other => break other?,
            }
        };
        if !part.new.is_empty() {
            let by_index: HashMap<usize, SeriesId> = report.series.iter().copied().collect();
            for (i, key) in &part.new {
                if let Some(&id) = by_index.get(i) {
                    known.insert(key.clone(), id);
                }
            }
        }
        let s = &mut self.summary;
        s.imported += report.stored as u64;
        s.duplicates += report.duplicates as u64;
        for r in &report.rejected {
            match r.reason {
                RejectReason::OutOfBounds => s.out_of_bounds += 1,
                RejectReason::DuplicateTimestamp => s.conflicts += 1,
                RejectReason::InvalidLabels | RejectReason::UnknownSeries => s.invalid_labels += 1,
                RejectReason::SeriesLimit => s.series_limit += 1,
            }
        }
        let rate = s.imported as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        self.progress.set_message(format!("{} samples, {:.0}/s", s.imported, rate));
        Ok(())
    }
}

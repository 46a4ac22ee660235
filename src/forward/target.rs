//! One target's machinery: a coordinator thread that reads the WAL into batches, hands
//! each shard its part, tracks which batches are done, persists the confirmed position
//! and moves the WAL hold; and `shards` sender threads.
//!
//! A batch is done when every shard part of it is confirmed, refused for good, or
//! dropped by the backlog bound. The confirmed position is the end of the longest run of
//! done batches from the start, so it never skips an unconfirmed one; it is persisted
//! after every advance (coalesced: one write at a time), and only then is the WAL hold
//! moved. After a restart everything from the persisted position on is sent again: the
//! batches that were in flight, and those confirmed while the last write was under way.

use super::backoff::{backoff, Breaker, Permit, Rng};
use super::batch::{Batch, Batcher, Found};
use super::client::{Answer, Client};
use super::config::RemoteWriteConfig;
use super::encode::{Encoder, Grouped, Part};
use super::position::{self, Saved};
use super::stats::{Counters, TargetStats};
use chronolith_engine::Engine;
use chronolith_wal::{Position, SegmentId, TailGap, TailReader, SEGMENT_HEADER_BYTES};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Jobs per shard, queued or in flight.
const QUEUE_DEPTH: usize = 2;
/// How often the coordinator measures the backlog.
const BACKLOG_CHECK: Duration = Duration::from_millis(200);
/// How long the coordinator waits for new WAL records when caught up.
const IDLE_POLL: Duration = Duration::from_millis(10);
/// Log lines per target per window, beyond which they are counted and summarised.
const LOG_LINES_PER_WINDOW: u32 = 10;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// One shard's part of one batch.
#[derive(Debug)]
struct Job {
    seq: u64,
    end: Position,
    part: Part,
}

#[derive(Debug)]
struct Entry {
    end: Position,
    pending: usize,
    max_t: i64,
}

#[derive(Debug)]
struct State {
    queues: Vec<VecDeque<Arc<Job>>>,
    ledger: BTreeMap<u64, Entry>,
    next_seq: u64,
    /// Jobs ending at or before this are abandoned (the backlog bound dropped them).
    drop_before: Position,
    confirmed: Saved,
    live_shards: usize,
}

#[derive(Debug)]
struct Shared {
    cfg: RemoteWriteConfig,
    engine: Arc<Engine>,
    dir: PathBuf,
    hold: String,
    client: Client,
    counters: Counters,
    state: Mutex<State>,
    cond: Condvar,
    stop: AtomicBool,
    breaker: Mutex<Breaker>,
    log_window: Mutex<(Instant, u32, u64)>,
}

/// A running target; stops (and persists its position) when dropped.
#[derive(Debug)]
pub(crate) struct Target {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Target {
    /// Reads the saved position, sets the WAL hold (before any seal could remove what it
    /// needs) and starts the threads.
    pub(crate) fn start(engine: Arc<Engine>, cfg: RemoteWriteConfig) -> crate::Result<Target> {
        cfg.validate()?;
        let dir = engine.dir().join(super::STATE_DIR).join(&cfg.name);
        position::create_dir(&dir)?;
        let hold = format!("{}/{}", super::STATE_DIR, cfg.name);
        let counters = Counters::default();
        let saved = match position::load(&dir) {
            Ok(s) => s,
            Err(e) => {
                // Starting over resends what the WAL holds (duplicates, which receivers
                // accept) rather than failing the database or skipping anything.
                log::error!("remote write {}: {e}; sending again from the oldest WAL segment", cfg.name);
                *counters.last_error.lock() = Some(e.to_string());
                None
            }
        };
        let wanted = saved.map_or(SegmentId(0), |s| s.position.segment);
        let floor = engine.hold_wal(&hold, wanted);
        let start = match saved {
            Some(s) if floor <= s.position.segment => s,
            Some(s) => {
                let msg = format!(
                    "WAL segments {}..{} were removed while this target was not configured; their samples \
                     were never sent to {}",
                    s.position.segment, floor, cfg.url
                );
                log::error!("remote write {}: {msg}", cfg.name);
                counters.drops.fetch_add(1, Relaxed);
                *counters.last_error.lock() = Some(msg);
                Saved { position: segment_start(floor), max_t: s.max_t }
            }
            None => Saved { position: segment_start(floor), max_t: i64::MIN },
        };
        let shards = cfg.shards;
        let shared = Arc::new(Shared {
            client: Client::new(&cfg),
            breaker: Mutex::new(Breaker::new(cfg.breaker_failures, cfg.breaker_probe_interval_ms)),
            cfg,
            engine,
            dir,
            hold,
            counters,
            state: Mutex::new(State {
                queues: (0..shards).map(|_| VecDeque::new()).collect(),
                ledger: BTreeMap::new(),
                next_seq: 0,
                drop_before: start.position,
                confirmed: start,
                live_shards: shards,
            }),
            cond: Condvar::new(),
            stop: AtomicBool::new(false),
            log_window: Mutex::new((Instant::now(), 0, 0)),
        });
        let mut threads = Vec::with_capacity(shards + 1);
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name).spawn(f).map_err(|source| crate::Error::Io {
                path: shared.dir.clone(),
                op: "spawn forwarder thread",
                source,
            })
        };
        for k in 0..shards {
            let sh = shared.clone();
            match spawn(format!("chronolith-fwd-{k}"), Box::new(move || sh.run_shard(k))) {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let target = Target { shared: shared.clone(), threads };
                    target.shared.state.lock().live_shards = k;
                    drop(target);
                    return Err(e);
                }
            }
        }
        let sh = shared.clone();
        let reader = TailReader::new(&shared.engine.sample_log_dir(), start.position);
        match spawn("chronolith-fwd".to_owned(), Box::new(move || sh.run_coordinator(reader, start))) {
            Ok(t) => threads.push(t),
            Err(e) => {
                drop(Target { shared, threads });
                return Err(e);
            }
        }
        Ok(Target { shared, threads })
    }

    pub(crate) fn stats(&self) -> TargetStats {
        let sh = &self.shared;
        let breaker = {
            let b = sh.breaker.lock();
            (b.state(), b.opened_total)
        };
        let position = sh.state.lock().confirmed.position;
        sh.counters.snapshot(&sh.cfg.name, &sh.cfg.url, breaker, position)
    }

    /// Stops the threads (an in-flight request finishes or times out), persists the
    /// confirmed position. The WAL hold stays: it belongs to the data directory.
    pub(crate) fn stop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        self.shared.cond.notify_all();
        for t in self.threads.drain(..) {
            // A panicked sender has nothing to clean up; the position is as persisted.
            let _ = t.join();
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Cuts a part into requests of at most `max` samples at series boundaries (a series
/// with more samples than that in one batch goes alone), of about equal sizes (a part a
/// little over `max` makes two halves, not a full request and a tiny one), last first
/// (they are popped).
fn request_ranges(g: &Grouped, max: usize) -> Vec<std::ops::Range<usize>> {
    let total = g.samples_in(0..g.len());
    let requests = total.div_ceil(max.max(1)).max(1);
    let target = total.div_ceil(requests);
    let mut out = Vec::new();
    let (mut start, mut acc) = (0, 0);
    for i in 0..g.len() {
        let n = g.range_of(i).len();
        if acc > 0 && acc + n > target {
            out.push(start..i);
            (start, acc) = (i, 0);
        }
        acc += n;
    }
    if start < g.len() {
        out.push(start..g.len());
    }
    out.reverse();
    out
}

fn segment_start(id: SegmentId) -> Position {
    Position { segment: id, offset: SEGMENT_HEADER_BYTES as u64 }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// Logs at most `LOG_LINES_PER_WINDOW` lines per window; says how many it held back.
    fn log_limited(&self, level: log::Level, msg: &str) {
        let mut w = self.log_window.lock();
        if w.0.elapsed() >= LOG_WINDOW {
            if w.2 > 0 {
                log::warn!("remote write {}: {} similar log lines suppressed", self.cfg.name, w.2);
            }
            *w = (Instant::now(), 0, 0);
        }
        if w.1 < LOG_LINES_PER_WINDOW {
            w.1 += 1;
            log::log!(level, "remote write {}: {msg}", self.cfg.name);
        } else {
            w.2 += 1;
        }
    }

    fn note_error(&self, msg: String) {
        *self.counters.last_error.lock() = Some(msg);
    }

    /// Waits up to `d`, returning early on stop or when the job ending at `end` is dropped.
    fn sleep(&self, d: Duration, end: Option<Position>) {
        let deadline = Instant::now() + d;
        let mut st = self.state.lock();
        while !self.stopping() && end.is_none_or(|e| e > st.drop_before) {
            if self.cond.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
    }

    // ------------------------------------------------------------ coordinator

    fn run_coordinator(self: Arc<Self>, mut reader: TailReader, mut persisted: Saved) {
        let mut batcher = Batcher::new(&self.cfg);
        let mut last_check = Instant::now().checked_sub(BACKLOG_CHECK).unwrap_or_else(Instant::now);
        loop {
            let stopping = self.stopping();
            if stopping {
                // Let the senders finish what they have in flight, then persist once more.
                let mut st = self.state.lock();
                while st.live_shards > 0 {
                    self.cond.wait_for(&mut st, Duration::from_millis(50));
                }
            }
            self.persist_confirmed(batcher.unsent_from(reader.position()), &mut persisted);
            if stopping {
                return;
            }
            if last_check.elapsed() >= BACKLOG_CHECK {
                last_check = Instant::now();
                self.enforce_backlog(&mut reader, &mut batcher);
            }
            // Fill the pending batch (also while the shards are busy, up to its size).
            let mut moved = false;
            if !batcher.full() {
                let end = self.engine.wal_committed_end();
                let mut found = Found::default();
                let read = batcher.fill(&self.engine, &self.cfg, &mut reader, end, &mut found);
                self.report_found(&found);
                match read {
                    Ok(m) => moved = m,
                    Err(e) => {
                        self.log_limited(log::Level::Error, &format!("reading the WAL: {e}"));
                        self.note_error(e.to_string());
                        self.sleep(Duration::from_secs(1), None);
                        continue;
                    }
                }
            }
            let now = Instant::now();
            match batcher.due(reader.position(), now) {
                Some(at) if at <= now => {
                    let room = self.state.lock().queues.iter().all(|q| q.len() < QUEUE_DEPTH);
                    if room {
                        if let Some(batch) = batcher.take(reader.position()) {
                            self.dispatch(batch);
                        }
                    } else {
                        let mut st = self.state.lock();
                        self.cond.wait_for(&mut st, Duration::from_millis(50));
                    }
                }
                due if !moved => {
                    let wait = due.map_or(IDLE_POLL, |at| (at - now).min(IDLE_POLL));
                    let mut st = self.state.lock();
                    self.cond.wait_for(&mut st, wait);
                }
                _ => {}
            }
        }
    }

    fn report_found(&self, f: &Found) {
        let c = &self.counters;
        c.samples_filtered.fetch_add(f.filtered, Relaxed);
        if f.unknown > 0 {
            c.samples_dropped.fetch_add(f.unknown, Relaxed);
            self.log_limited(
                log::Level::Error,
                &format!("{} samples name series missing from the series log (salvaged); not sent", f.unknown),
            );
        }
        for (pos, reason) in &f.bad_records {
            let msg = format!(
                "WAL record at segment {} offset {} does not decode ({reason}); skipped",
                pos.segment, pos.offset
            );
            self.log_limited(log::Level::Error, &msg);
            self.note_error(msg);
        }
        for g in &f.gaps {
            let msg = match g {
                TailGap::MissingSegments { from, to } => {
                    format!("WAL segments {from}..{to} are gone; their samples were never sent")
                }
                TailGap::Unreadable { segment, offset, reason } => {
                    format!("WAL segment {segment} unreadable from offset {offset} ({reason}); rest of it not sent")
                }
            };
            c.drops.fetch_add(1, Relaxed);
            log::error!("remote write {}: {msg}", self.cfg.name);
            self.note_error(msg);
        }
    }

    fn dispatch(&self, batch: Batch) {
        let mut st = self.state.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        let pending = batch.parts.iter().filter(|p| p.samples() > 0).count();
        st.ledger.insert(seq, Entry { end: batch.end, pending, max_t: batch.max_t });
        for (k, part) in batch.parts.into_iter().enumerate() {
            if part.samples() > 0 {
                st.queues[k].push_back(Arc::new(Job { seq, end: batch.end, part }));
            }
        }
        drop(st);
        self.cond.notify_all();
    }

    /// Advances the confirmed position over done batches, persists it if it moved, then
    /// moves the WAL hold (and lets the engine drop what no one needs any more).
    fn persist_confirmed(&self, reader_pos: Position, persisted: &mut Saved) {
        let confirmed = {
            let mut st = self.state.lock();
            while let Some(e) = st.ledger.first_entry() {
                if e.get().pending > 0 {
                    break;
                }
                let e = e.remove();
                st.confirmed.position = st.confirmed.position.max(e.end);
                st.confirmed.max_t = st.confirmed.max_t.max(e.max_t);
            }
            // What the backlog bound dropped is done too, read or not: batches never span
            // a segment, so no batch still pending starts before a drop point.
            if st.ledger.first_key_value().is_none_or(|(_, e)| e.end > st.drop_before) {
                st.confirmed.position = st.confirmed.position.max(st.drop_before);
            }
            if st.ledger.is_empty() {
                // Everything read was sent, refused or dropped.
                st.confirmed.position = st.confirmed.position.max(reader_pos);
            }
            st.confirmed
        };
        if confirmed == *persisted {
            return;
        }
        if let Err(e) = position::store(&self.dir, &confirmed) {
            // Not fatal: the old position stays valid (more is resent after a crash).
            self.log_limited(log::Level::Error, &format!("saving the position: {e}"));
            self.note_error(e.to_string());
            return;
        }
        let moved_segment = confirmed.position.segment > persisted.position.segment;
        *persisted = confirmed;
        if moved_segment {
            self.engine.advance_wal_hold(&self.hold, confirmed.position.segment);
            if let Err(e) = self.engine.trim_wal() {
                self.log_limited(log::Level::Warn, &format!("removing confirmed WAL segments: {e}"));
            }
        }
    }

    /// Measures the backlog; past either bound, drops the oldest whole segments for this
    /// target (never the current one), loudly.
    fn enforce_backlog(&self, reader: &mut TailReader, batcher: &mut Batcher) {
        let segs = self.engine.wal_segments();
        let end = self.engine.wal_committed_end();
        let (confirmed, drop_before) = {
            let st = self.state.lock();
            (st.confirmed, st.drop_before)
        };
        let from = confirmed.position.max(drop_before);
        let bytes_from = |p: Position| -> u64 {
            segs.iter()
                .filter(|s| s.id >= p.segment)
                .map(|s| if s.id == p.segment { s.bytes.saturating_sub(p.offset) } else { s.bytes })
                .sum()
        };
        let newest = segs.iter().filter_map(|s| s.max_t).max();
        let backlog = bytes_from(confirmed.position);
        let age = match newest {
            Some(n) if confirmed.position < end => {
                let oldest_unsent =
                    segs.iter().filter(|s| s.id >= confirmed.position.segment).filter_map(|s| s.max_t).min();
                let since = if confirmed.max_t == i64::MIN { oldest_unsent.unwrap_or(n) } else { confirmed.max_t };
                n.saturating_sub(since).max(0)
            }
            _ => 0,
        };
        self.counters.backlog_bytes.store(backlog, Relaxed);
        self.counters.backlog_age_ms.store(age, Relaxed);

        let mut to = from;
        for s in segs.iter().filter(|s| s.id >= from.segment && s.id < end.segment) {
            let over_bytes = bytes_from(to) > self.cfg.backlog_bytes_max;
            let too_old = match (s.max_t, newest) {
                (Some(t), Some(n)) => t < n.saturating_sub(self.cfg.backlog_age_max_ms),
                _ => false,
            };
            if !(over_bytes || too_old) {
                break;
            }
            to = segment_start(s.id.next());
        }
        if to > from {
            self.drop_until(to, reader, batcher, backlog, age);
        }
    }

    fn drop_until(&self, to: Position, reader: &mut TailReader, batcher: &mut Batcher, backlog: u64, age: i64) {
        let from = {
            let mut st = self.state.lock();
            let from = st.confirmed.position.max(st.drop_before);
            st.drop_before = to;
            from
        };
        self.cond.notify_all();
        let mut found = Found::default();
        let mut skipped = batcher.discard_before(to);
        if reader.position() < to {
            skipped += batcher.skip_to(&self.engine, &self.cfg, reader, to, &mut found);
        }
        self.report_found(&found);
        self.counters.samples_dropped.fetch_add(skipped, Relaxed);
        self.counters.drops.fetch_add(1, Relaxed);
        let msg = format!(
            "backlog over its bound ({backlog} bytes, {age} ms behind; max {} bytes, {} ms): dropping WAL segments \
             {}..{} for this target ({skipped} unread samples, plus those of requests in flight), never sent to {}",
            self.cfg.backlog_bytes_max, self.cfg.backlog_age_max_ms, from.segment, to.segment, self.cfg.url
        );
        log::error!("remote write {}: {msg}", self.cfg.name);
        self.note_error(msg);
    }

    // ------------------------------------------------------------ shards

    fn run_shard(self: Arc<Self>, k: usize) {
        let mut enc = Encoder::default();
        let mut grouped = Grouped::default();
        let mut rng = Rng::seeded(k as u64 + 1);
        loop {
            let job = {
                let mut st = self.state.lock();
                loop {
                    if self.stopping() {
                        st.live_shards -= 1;
                        drop(st);
                        self.cond.notify_all();
                        return;
                    }
                    if let Some(j) = st.queues[k].front() {
                        break j.clone();
                    }
                    self.cond.wait(&mut st);
                }
            };
            let finished = self.send_job(&job, &mut enc, &mut grouped, &mut rng);
            let mut st = self.state.lock();
            if finished {
                st.queues[k].pop_front();
                if let Some(e) = st.ledger.get_mut(&job.seq) {
                    e.pending = e.pending.saturating_sub(1);
                }
            }
            drop(st);
            self.cond.notify_all();
        }
    }

    fn dropped(&self, end: Position) -> bool {
        end <= self.state.lock().drop_before
    }

    /// Sends one job until every sample is confirmed, refused or dropped (true), or the
    /// target stops (false: the job stays unconfirmed). A refused request is split by
    /// series and the halves sent on their own, so one series a receiver refuses (which
    /// Prometheus answers by refusing the whole request) costs only that series.
    fn send_job(&self, job: &Job, enc: &mut Encoder, g: &mut Grouped, rng: &mut Rng) -> bool {
        g.fill(&job.part);
        let g = &*g;
        let mut todo = request_ranges(g, self.cfg.max_samples_per_request);
        while let Some(range) = todo.pop() {
            let labels_of = |id| self.engine.registry().labels(id);
            let (body, missing) = enc.encode(&labels_of, &job.part, g, range.clone(), &self.cfg.extra_labels);
            let n = (g.samples_in(range.clone()) - missing) as u64;
            self.counters.samples_dropped.fetch_add(missing as u64, Relaxed);
            let mut attempt = 0u32;
            loop {
                if self.stopping() {
                    return false;
                }
                if self.dropped(job.end) {
                    let rest: u64 = todo.iter().map(|r| g.samples_in(r.clone()) as u64).sum();
                    self.counters.samples_dropped.fetch_add(n + rest, Relaxed);
                    return true;
                }
                let probe = match self.breaker.lock().permit(Instant::now()) {
                    Permit::Send => false,
                    Permit::Probe => true,
                    Permit::Wait(d) => {
                        self.sleep(d, Some(job.end));
                        continue;
                    }
                };
                let t0 = Instant::now();
                let answer = self.client.send(body);
                self.counters.observe_latency(t0.elapsed().as_secs_f64());
                let c = &self.counters;
                match answer {
                    Answer::Confirmed => {
                        self.breaker.lock().answered();
                        c.samples_sent.fetch_add(n, Relaxed);
                        c.timeseries_sent.fetch_add(range.len() as u64, Relaxed);
                        c.bytes_sent.fetch_add(body.len() as u64, Relaxed);
                        c.requests_sent.fetch_add(1, Relaxed);
                        c.last_success_ms.store(now_ms(), Relaxed);
                        break;
                    }
                    Answer::Retry { reason, after } => {
                        let opened = self.breaker.lock().failed(Instant::now(), probe);
                        c.samples_retried.fetch_add(n, Relaxed);
                        c.requests_retried.fetch_add(1, Relaxed);
                        let mut wait = backoff(attempt, self.cfg.min_backoff_ms, self.cfg.max_backoff_ms, rng);
                        if let Some(a) = after {
                            wait = wait.max(a.min(Duration::from_millis(self.cfg.retry_after_max_ms)));
                        }
                        if attempt == 0 || opened {
                            let what = if opened { "; circuit breaker open" } else { "" };
                            self.log_limited(
                                log::Level::Warn,
                                &format!("{n} samples: {reason}; retrying in {} ms{what}", wait.as_millis()),
                            );
                        }
                        self.note_error(reason);
                        attempt = attempt.saturating_add(1);
                        self.sleep(wait, Some(job.end));
                    }
                    Answer::Refused { status, reason } => {
                        self.breaker.lock().answered();
                        c.requests_failed.fetch_add(1, Relaxed);
                        if range.len() > 1 {
                            let mid = range.start + range.len() / 2;
                            todo.push(mid..range.end);
                            todo.push(range.start..mid);
                        } else {
                            c.samples_failed.fetch_add(n, Relaxed);
                            let series = g
                                .order
                                .get(range.start)
                                .and_then(|&i| job.part.series.get(i as usize))
                                .and_then(|s| self.engine.registry().labels(s.1))
                                .map_or(String::new(), |l| l.to_string());
                            let msg = format!("{n} samples of {series} refused (HTTP {status}), not retried: {reason}");
                            self.log_limited(log::Level::Warn, &msg);
                            self.note_error(msg);
                        }
                        break;
                    }
                }
            }
        }
        true
    }
}

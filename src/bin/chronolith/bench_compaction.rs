//! `chronolith bench compaction`: the devops data set (one writer, durability `Never`:
//! the data set is the input, not what is measured) through sealing, merging and
//! downsampling, job by job through the same planner and job code the background worker
//! runs; then query latencies with and without rollups and the time to drop a partition.

use crate::ingest::{self, Plan};
use chronolith::query::{self, AggOp, Aggregation, Grouping, Limits, RangeQuery, TierPlanner, WindowFn};
use chronolith::{CompactionOptions, Db, Durability, MatchOp, Matcher, Options, RollupTier};
use chronolith_compaction::plan::{self as policy, Job};
use chronolith_compaction::run_job;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(clap::Args, Debug)]
pub struct CompactionArgs {
    /// Hosts of 10 CPU gauges each (100 hosts = 1,000 series).
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Days of data: 40 hold the week the merge/downsample figures are about and, from
    /// the generator's start, three whole 10-day blocks of the 1 h tier: the 30 days the
    /// 1-hour-step query reads.
    #[arg(long, default_value_t = 40)]
    days: u64,
    #[arg(long, default_value_t = 10)]
    interval_s: u64,
    /// Timed runs per query (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// One JSON object on stdout instead of the readable report.
    #[arg(long)]
    json: bool,
}

fn options() -> Options {
    let defaults = CompactionOptions::default();
    Options {
        durability: Durability::Never,
        compaction: CompactionOptions {
            background: false,
            merge_ranges_ms: vec![6 * HOUR_MS, DAY_MS],
            // The default tiers (5 m in 1-day blocks, 1 h in 10-day blocks), built for all
            // sealed data (after 0), so every sample is merged and downsampled once; the
            // default ages (40 h, 10 d) only delay when this happens.
            tiers: defaults.tiers.iter().map(|t| RollupTier { after_ms: 0, ..*t }).collect(),
            ..defaults
        },
        ..Options::default()
    }
}

#[derive(Default, Debug)]
struct Tally {
    jobs: u64,
    samples_in: u64,
    bytes_out: u64,
    /// Wall time, fsyncs included.
    busy: Duration,
    /// CPU time of this thread: on a shared machine, wall time includes waiting for a core.
    cpu: Duration,
}

impl Tally {
    fn per_sec(&self) -> f64 {
        self.samples_in as f64 / self.busy.as_secs_f64().max(1e-9)
    }

    fn per_cpu_sec(&self) -> f64 {
        self.samples_in as f64 / self.cpu.as_secs_f64().max(1e-9)
    }

    fn add(&mut self, wall: Duration, cpu: Duration, o: &chronolith_compaction::JobOutcome) {
        self.jobs += 1;
        self.busy += wall;
        self.cpu += cpu;
        self.samples_in += o.samples_in;
        self.bytes_out += o.bytes_out;
    }
}

/// CPU time consumed by the calling thread.
#[allow(unsafe_code)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Runs one job, timed by wall clock and by this thread's CPU time.
fn timed_job(
    engine: &chronolith_engine::Engine,
    job: &Job,
    tally: &mut Tally,
) -> Result<(), Box<dyn std::error::Error>> {
    let (wall, cpu) = (Instant::now(), thread_cpu());
    let o = run_job(engine, job)?;
    tally.add(wall.elapsed(), thread_cpu().saturating_sub(cpu), &o);
    Ok(())
}

pub fn run(args: &CompactionArgs) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::Builder::new().prefix("chronolith-bench-compaction-").tempdir_in(std::env::current_dir()?)?;
    let interval_ms = (args.interval_s.max(1) * 1000) as i64;
    let plan = Plan {
        hosts: args.hosts,
        counters: 0,
        start_ms: crate::devops::START_MS,
        points: (args.days * 86_400 / args.interval_s.max(1)) as usize,
        interval_ms,
        batch: 10_000,
        writers: 1,
        seed: args.seed,
    };
    let opts = options();
    let db = Db::open(dir.path(), opts.clone())?;
    let started = Instant::now();
    let outcome = ingest::run(&db, &plan, &AtomicU64::new(0))?;
    db.seal()?;
    if outcome.rejected > 0 {
        return Err(format!("{} samples rejected during ingest", outcome.rejected).into());
    }
    let ingest_s = started.elapsed().as_secs_f64();
    let engine = db.engine().clone();
    let raw_blocks_sealed = engine.blocks().snapshot().len();
    if !args.json {
        eprintln!(
            "ingested and sealed {} samples of {} series in {ingest_s:.1} s ({raw_blocks_sealed} blocks)",
            outcome.samples, outcome.series
        );
    }

    // Merging, level by level, as the worker plans it.
    let mut merged = Tally::default();
    loop {
        let jobs = policy::merges(&engine.blocks().snapshot(), &opts.compaction, engine.head().sealed_until());
        if jobs.is_empty() {
            break;
        }
        for job in &jobs {
            timed_job(&engine, job, &mut merged)?;
        }
    }
    // Downsampling, finest tier first (the coarser one is then built from it).
    let mut tiers: std::collections::BTreeMap<i64, Tally> = std::collections::BTreeMap::new();
    let newest = policy::newest_sample(&engine).unwrap_or(0);
    loop {
        let set = engine.blocks().snapshot();
        let mut jobs = policy::downsamples(&set, &opts.compaction, newest, engine.head().sealed_until(), usize::MAX);
        let finest = jobs.iter().filter_map(Job::resolution_ms).min();
        jobs.retain(|j| j.resolution_ms() == finest);
        if jobs.is_empty() {
            break;
        }
        for job in &jobs {
            timed_job(&engine, job, tiers.entry(job.resolution_ms().unwrap_or(0)).or_default())?;
        }
    }

    let set = engine.blocks().snapshot();
    let raw_samples: u64 = set.raw().map(|b| b.meta().samples).sum();
    let raw_bytes: u64 = set.raw().map(|b| b.disk_bytes()).sum();
    let mut tier_report = serde_json::Map::new();
    for r in set.rollup_resolutions() {
        let bytes: u64 = set.rollups(r).map(|b| b.disk_bytes()).sum();
        let buckets: u64 = set.rollups(r).map(|b| b.meta().samples).sum();
        let covered = set.rollups(r).map(|b| b.meta().covers_to).max().unwrap_or(0)
            - set.rollups(r).map(|b| b.meta().covers_from).min().unwrap_or(0);
        let t = tiers.get(&r);
        tier_report.insert(
            format!("{}s", r / 1000),
            serde_json::json!({
                "blocks": set.rollups(r).count(),
                "bytes": bytes,
                "buckets": buckets,
                "bytes_per_bucket": bytes as f64 / buckets.max(1) as f64,
                "bytes_per_raw_sample_summarised": bytes as f64 / raw_samples.max(1) as f64,
                "covered_days": covered as f64 / DAY_MS as f64,
                "jobs": t.map_or(0, |t| t.jobs),
                "input_records": t.map_or(0, |t| t.samples_in),
                "seconds": t.map_or(0.0, |t| t.busy.as_secs_f64()),
                "input_records_per_sec": t.map_or(0.0, Tally::per_sec),
                "cpu_seconds": t.map_or(0.0, |t| t.cpu.as_secs_f64()),
                "input_records_per_cpu_sec": t.map_or(0.0, Tally::per_cpu_sec),
            }),
        );
    }

    // Queries: the window ends where the 1 h tier's coverage ends (whole days).
    let covered_to = set.rollups(HOUR_MS).map(|b| b.meta().covers_to).max().unwrap_or(newest);
    let limits = Limits::unlimited();
    let planner = TierPlanner::new(&engine);
    let week = RangeQuery {
        matchers: vec![Matcher::metric("cpu_usage_user")],
        start: covered_to - 7 * DAY_MS + HOUR_MS,
        end: covered_to,
        step: HOUR_MS,
        range: HOUR_MS,
        func: WindowFn::Max,
        agg: None,
    };
    // `max by (hostname) (max_over_time({__name__=~"cpu_.*"}[1h]))`: reads every series.
    let week_all = RangeQuery {
        matchers: vec![Matcher::new("__name__", MatchOp::RegexMatch, "cpu_.*")?],
        agg: Some(Aggregation { op: AggOp::Max, grouping: Grouping::By(vec!["hostname".into()]) }),
        ..week
    };
    let month = RangeQuery { start: covered_to - 30 * DAY_MS + HOUR_MS, ..week_all.clone() };
    let series_all = engine.registry().select(&week_all.matchers).len();
    let timed = |q: &RangeQuery, rollups: bool| -> Result<(f64, u64, usize), Box<dyn std::error::Error>> {
        let mut ms = Vec::new();
        let mut scanned = 0;
        let mut points = 0;
        for _ in 0..=args.runs.max(1) {
            let t = Instant::now();
            let r = if rollups {
                query::evaluate_with(&engine, &q.plan(), q.time_range(), &limits, &planner)?
            } else {
                query::run(&engine, q, &limits)?
            };
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            scanned = r.stats.samples_scanned;
            points = r.series.iter().map(|s| s.points.len()).sum();
        }
        ms.remove(0); // warm-up
        ms.sort_by(f64::total_cmp);
        Ok((ms[ms.len() / 2], scanned, points))
    };
    let raw_answer = query::run(&engine, &week_all, &limits)?;
    let rollup_answer = query::evaluate_with(&engine, &week_all.plan(), week_all.time_range(), &limits, &planner)?;
    let week_equal = raw_answer.series == rollup_answer.series;
    let (week_raw_ms, week_raw_scanned, week_points) = timed(&week_all, false)?;
    let (week_rollup_ms, week_rollup_scanned, week_points_r) = timed(&week_all, true)?;
    if week_points != week_points_r {
        return Err(format!("week query: {week_points} points raw, {week_points_r} from rollups").into());
    }
    let (month_ms, month_scanned, month_points) = timed(&month, true)?;

    // Dropping a partition: the oldest raw block (a merged day), as retention does.
    let oldest = set.raw().min_by_key(|b| b.meta().min_t).cloned();
    let (drop_ms, drop_bytes) = match oldest {
        Some(b) => {
            let t = Instant::now();
            engine.blocks().apply(&[], &[b.meta().seq])?;
            (t.elapsed().as_secs_f64() * 1e3, b.disk_bytes())
        }
        None => (0.0, 0),
    };

    let report = serde_json::json!({
        "hosts": args.hosts,
        "series": outcome.series,
        "days": args.days,
        "samples": outcome.samples,
        "ingest_and_seal_seconds": ingest_s,
        "blocks_sealed": raw_blocks_sealed,
        "merge": {
            "jobs": merged.jobs,
            "samples": merged.samples_in,
            "seconds": merged.busy.as_secs_f64(),
            "samples_per_sec": merged.per_sec(),
            "cpu_seconds": merged.cpu.as_secs_f64(),
            "samples_per_cpu_sec": merged.per_cpu_sec(),
            "raw_blocks_after": set.raw().count(),
        },
        "raw": { "bytes": raw_bytes, "samples": raw_samples, "bytes_per_sample": raw_bytes as f64 / raw_samples.max(1) as f64 },
        "tiers": tier_report,
        "query_7d_max_per_hour_all_series": {
            "promql": "max by (hostname) (max_over_time({__name__=~\"cpu_.*\"}[1h]))",
            "series": series_all,
            "points": week_points,
            "raw_ms": week_raw_ms,
            "raw_samples_scanned": week_raw_scanned,
            "rollup_ms": week_rollup_ms,
            "rollup_buckets_scanned": week_rollup_scanned,
            "answers_equal": week_equal,
        },
        "query_30d_1h_step_from_rollups": { "series": series_all, "points": month_points, "ms": month_ms, "buckets_scanned": month_scanned },
        "partition_drop": { "ms": drop_ms, "bytes": drop_bytes },
    });
    println!("{}", if args.json { report.to_string() } else { serde_json::to_string_pretty(&report)? });
    db.close()?;
    Ok(())
}

//! `chronolith bench query`: ingests the devops data set (as `bench ingest` does), seals
//! it into blocks, and times the PromQL queries of `shared/bench/query_bench.py` through
//! the embedded query API (no HTTP): median latency over --runs runs after --warmup
//! runs, and raw samples scanned per second.

use crate::ingest::{self, Plan};
use chronolith::{Db, Durability, Options};
use chronolith_query::{query_range, Limits, TimeRange};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// Hosts to simulate; each has 10 CPU gauges.
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    #[arg(long, default_value_t = 24)]
    hours: u64,
    #[arg(long, default_value_t = 10)]
    interval_s: u64,
    /// Timed runs per query (the median is reported).
    #[arg(long, default_value_t = 11)]
    runs: usize,
    /// Untimed runs per query first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print only the JSON object.
    #[arg(long)]
    json: bool,
    /// Load the peers' data set instead of generating one: a directory holding
    /// `series.jsonl` and `samples.csv` from `shared/bench/gen_devops.py --formats csv`,
    /// so the result fingerprints (series / points / value sum) can be compared with
    /// `shared/bench/results/reference.json`.
    #[arg(long)]
    peers_data: Option<PathBuf>,
}

/// (name, PromQL, step in seconds), as in `query_bench.py`; the full scan uses one regex
/// selector where the peers needed a `label_replace ... or` union.
const QUERIES: [(&str, &str, i64); 5] = [
    ("q1_host_avg5m", r#"avg_over_time(cpu_usage_user{hostname="host_0"}[5m])"#, 300),
    ("q2_host_max5m", r#"max_over_time(cpu_usage_user{hostname="host_0"}[5m])"#, 300),
    ("q3_allhosts_max1h", "max_over_time(cpu_usage_user[1h])", 3600),
    ("q4_allhosts_max1h_agg", "max(max_over_time(cpu_usage_user[1h]))", 3600),
    ("q6_fullscan_max1h", r#"max(max_over_time({__name__=~"cpu_.*"}[1h]))"#, 3600),
];

pub fn run(args: &QueryArgs) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::Builder::new().prefix("chronolith-bench-query-").tempdir_in(std::env::current_dir()?)?;
    let interval_ms = (args.interval_s.max(1) * 1000) as i64;
    let plan = Plan {
        hosts: args.hosts,
        counters: 0,
        start_ms: crate::devops::START_MS,
        points: (args.hours * 3600 / args.interval_s.max(1)) as usize,
        interval_ms,
        batch: 10_000,
        // One writer: with several, `bench ingest` currently sees some samples rejected as
        // out of bounds (writers racing the sealer), and this benchmark needs every sample.
        writers: 1,
        seed: args.seed,
    };
    // The data set is the benchmark's input, not what it measures: no fsync per batch.
    let db = Db::open(dir.path(), Options { durability: Durability::Never, ..Options::default() })?;
    let ingest_started = Instant::now();
    let outcome = match &args.peers_data {
        Some(dir) => load_peers_data(&db, dir)?,
        None => ingest::run(&db, &plan, &AtomicU64::new(0))?,
    };
    db.seal()?;
    if outcome.rejected > 0 {
        return Err(
            format!("{} samples were rejected during ingest; the data set is incomplete", outcome.rejected).into()
        );
    }
    if !args.json {
        eprintln!(
            "ingested and sealed {} samples of {} series in {:.1} s; {} blocks",
            outcome.samples,
            outcome.series,
            ingest_started.elapsed().as_secs_f64(),
            db.stats().engine.blocks
        );
    }
    let engine = db.engine();
    let t0 = crate::devops::START_MS;
    let t1 = t0 + (args.hours * 3600 * 1000) as i64;
    let limits = Limits::unlimited();
    let mut results = serde_json::Map::new();
    for (name, promql, step_s) in QUERIES {
        let range = TimeRange { start: t0 + step_s * 1000, end: t1, step: step_s * 1000 };
        for _ in 0..args.warmup {
            query_range(engine, promql, range, &limits)?;
        }
        let mut millis = Vec::with_capacity(args.runs);
        let mut last = None;
        for _ in 0..args.runs.max(1) {
            let started = Instant::now();
            let r = query_range(engine, promql, range, &limits)?;
            millis.push(started.elapsed().as_secs_f64() * 1e3);
            last = Some(r);
        }
        let Some(r) = last else { continue };
        millis.sort_by(f64::total_cmp);
        let median = millis[millis.len() / 2];
        let value_sum: f64 = r.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).sum();
        let entry = serde_json::json!({
            "promql": promql,
            "step_s": step_s,
            "median_ms": median,
            "min_ms": millis[0],
            "max_ms": millis[millis.len() - 1],
            "series": r.series.len(),
            "points": r.stats.points_returned,
            "value_sum": value_sum,
            "samples_scanned": r.stats.samples_scanned,
            "samples_per_sec": r.stats.samples_scanned as f64 / (median / 1e3),
        });
        if !args.json {
            eprintln!(
                "{name:24} median {median:8.2} ms (min {:.2}, max {:.2})  {:>9} samples  {:7.1} M samples/s  {} series / {} points",
                millis[0],
                millis[millis.len() - 1],
                r.stats.samples_scanned,
                r.stats.samples_scanned as f64 / (median / 1e3) / 1e6,
                r.series.len(),
                r.stats.points_returned
            );
        }
        results.insert(name.to_string(), entry);
    }
    let report = serde_json::json!({
        "hosts": args.hosts,
        "series": outcome.series,
        "samples": outcome.samples,
        "runs": args.runs,
        "cores": cores(),
        "queries": results,
    });
    println!("{}", if args.json { report.to_string() } else { serde_json::to_string_pretty(&report)? });
    db.close()?;
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Loads `series.jsonl` (one JSON label map per line; the line number is the series id
/// in the CSV) and `samples.csv` (`series_id,timestamp_ms,value`, time-major).
fn load_peers_data(db: &Db, dir: &Path) -> Result<ingest::Outcome, Box<dyn std::error::Error>> {
    use std::io::BufRead;
    let mut labels = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(dir.join("series.jsonl"))?).lines() {
        let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&line?)?;
        labels.push(chronolith::Labels::new(map)?);
    }
    let mut refs = Vec::with_capacity(labels.len());
    for l in &labels {
        refs.push(db.series_ref(l)?);
    }
    let mut outcome = ingest::Outcome { series: labels.len(), ..ingest::Outcome::default() };
    let mut batch = chronolith::Batch::with_capacity(10_000);
    let csv = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(dir.join("samples.csv"))?);
    for line in csv.lines() {
        let line = line?;
        let mut fields = line.split(',');
        let (Some(id), Some(t), Some(v)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!("bad samples.csv line {line:?}").into());
        };
        let series = *refs.get(id.parse::<usize>()?).ok_or_else(|| format!("unknown series id {id}"))?;
        batch.add(series, t.parse()?, v.parse()?);
        if batch.len() == 10_000 {
            let report = db.append(&batch)?;
            outcome.samples += report.stored as u64;
            outcome.rejected += report.rejected.len() as u64;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        let report = db.append(&batch)?;
        outcome.samples += report.stored as u64;
        outcome.rejected += report.rejected.len() as u64;
    }
    Ok(outcome)
}

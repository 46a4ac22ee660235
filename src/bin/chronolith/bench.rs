//! `chronolith bench ingest`: the ingest benchmark of the write path. Generates the
//! devops data set, ingests it through the embedded API into a fresh directory, closes
//! and reopens it (measuring WAL replay), seals everything, and reports one JSON object.

use crate::ingest::{self, Plan};
use crate::util::{dir_bytes, peak_rss_bytes, DurabilityArg};
use chronolith::{Db, Options};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// Hosts to simulate; each has 10 CPU gauges (+ --counters counters).
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Hours of data at one sample per --interval-s seconds.
    #[arg(long, default_value_t = 24)]
    hours: u64,
    /// Samples per append call.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// When append returns: always (fsync every batch), periodic, never.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Always)]
    durability: DurabilityArg,
    /// Integer counters per host, in addition to the 10 gauges.
    #[arg(long, default_value_t = 0)]
    counters: usize,
    #[arg(long, default_value_t = 10)]
    interval_s: u64,
    /// Appending threads (default: two per core, so one thread's fsync wait overlaps
    /// another's work and group commit can share fsyncs, as a collector's scrape workers
    /// would).
    #[arg(long)]
    writers: Option<usize>,
    /// Where to write (must be empty or absent); default: a fresh temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the data directory afterwards.
    #[arg(long)]
    keep: bool,
    /// Stop after ingest: leave the head unsealed in the WAL (implies --keep), to feed
    /// `bench replay`.
    #[arg(long)]
    no_seal: bool,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print only the JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// A data directory with unsealed samples in its WAL (e.g. from a killed process).
    #[arg(long)]
    data_dir: PathBuf,
    /// Open with strict recovery (`TruncateTornTail`: no chunk CRC scan) instead of the
    /// default salvage, to measure what salvage's checks cost.
    #[arg(long)]
    strict: bool,
    /// Print only the JSON object.
    #[arg(long)]
    json: bool,
}

/// `chronolith bench replay`: open a directory, report how fast its WAL replayed, close
/// it without sealing (the directory is left as it was found, less a torn WAL tail).
pub fn replay(args: &ReplayArgs) -> Result<(), Box<dyn std::error::Error>> {
    let opts = if args.strict {
        Options { recovery_mode: chronolith::RecoveryMode::TruncateTornTail, ..Options::default() }
    } else {
        Options::default()
    };
    let started = Instant::now();
    let db = Db::open(&args.data_dir, opts)?;
    let seconds = started.elapsed().as_secs_f64();
    let st = db.stats().engine;
    db.close()?;
    let replay_seconds = st.replay_micros as f64 / 1e6;
    let report = serde_json::json!({
        "replay_samples": st.samples_replayed,
        "replay_seconds": replay_seconds,
        "replay_samples_per_sec": st.samples_replayed as f64 / replay_seconds,
        "open_seconds": seconds,
        "recovery": if args.strict { "strict" } else { "salvage" },
        "blocks": st.blocks,
        "block_bytes": st.block_bytes,
        "series": st.series,
        "head_bytes": st.head_bytes,
        "peak_rss_bytes": peak_rss_bytes(),
    });
    println!("{}", if args.json { report.to_string() } else { serde_json::to_string_pretty(&report)? });
    Ok(())
}

pub fn ingest(args: &IngestArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (dir, _guard) = match &args.data_dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                return Err(format!("{} is not empty; the benchmark needs a fresh directory", d.display()).into());
            }
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("chronolith-bench-").tempdir_in(std::env::current_dir()?)?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let writers = args.writers.unwrap_or_else(|| 2 * std::thread::available_parallelism().map_or(1, |n| n.get()));
    let interval_ms = (args.interval_s * 1000) as i64;
    let plan = Plan {
        hosts: args.hosts,
        counters: args.counters,
        start_ms: crate::devops::START_MS,
        points: (args.hours * 3600 / args.interval_s.max(1)) as usize,
        interval_ms,
        batch: args.batch.max(1),
        writers,
        seed: args.seed,
    };
    let options = Options { durability: args.durability.into(), ..Options::default() };
    if !args.json {
        eprintln!(
            "ingesting {} hosts x {} series x {} points into {} (up to {} writers, batch {}, durability {})",
            plan.hosts,
            10 + plan.counters,
            plan.points,
            dir.display(),
            writers,
            plan.batch,
            args.durability
        );
    }

    let started = Instant::now();
    let db = Db::open(&dir, options.clone())?;
    let progress = AtomicU64::new(0);
    let outcome = ingest::run(&db, &plan, &progress)?;
    let ingest_seconds = started.elapsed().as_secs_f64();
    let stats = db.stats().engine;
    let peak_rss_ingest = peak_rss_bytes();
    db.close()?;
    if args.no_seal {
        let kept = _guard.map_or(dir.clone(), tempfile::TempDir::keep);
        eprintln!("ingested {} samples in {ingest_seconds:.2} s; left unsealed in {}", outcome.samples, kept.display());
        return Ok(());
    }

    // Reopen: everything not yet sealed comes back from the WAL.
    let reopen_started = Instant::now();
    let db = Db::open(&dir, options)?;
    let reopen_seconds = reopen_started.elapsed().as_secs_f64();
    let opened = db.stats().engine;
    let replayed = opened.samples_replayed;
    let replay_seconds = opened.replay_micros as f64 / 1e6;
    let peak_rss_replay = peak_rss_bytes();

    let seal_started = Instant::now();
    db.seal()?;
    let after = db.stats().engine;
    db.close()?;
    let seal_seconds = seal_started.elapsed().as_secs_f64();
    let bytes_on_disk = dir_bytes(&dir)?;
    let seconds = ingest_seconds + seal_seconds;
    let samples = outcome.samples;

    let report = serde_json::json!({
        "samples": samples,
        "series": outcome.series,
        "seconds": seconds,
        "samples_per_sec": samples as f64 / seconds,
        "ingest_seconds": ingest_seconds,
        "seal_seconds": seal_seconds,
        "bytes_on_disk": bytes_on_disk,
        "bytes_per_sample": bytes_on_disk as f64 / samples.max(1) as f64,
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_after_ingest_bytes": peak_rss_ingest,
        "peak_rss_after_replay_bytes": peak_rss_replay,
        "durability": args.durability.to_string(),
        "batch": plan.batch,
        "writers": outcome.writers,
        "hosts": plan.hosts,
        "hours": args.hours,
        "counters": plan.counters,
        "rejected": outcome.rejected,
        "wal_fsyncs": stats.wal_fsyncs,
        "wal_fsync_seconds_total": stats.wal_fsync_nanos_total as f64 / 1e9,
        "wal_fsync_ms_max": stats.wal_fsync_nanos_max as f64 / 1e6,
        "blocks": after.blocks,
        "replay_samples": replayed,
        "replay_seconds": replay_seconds,
        "replay_samples_per_sec": replayed as f64 / replay_seconds,
        "reopen_seconds": reopen_seconds,
    });
    if args.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if args.keep {
        if let Some(g) = _guard {
            let kept = g.keep();
            eprintln!("kept {}", kept.display());
        }
    }
    Ok(())
}

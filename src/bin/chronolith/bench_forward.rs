//! `chronolith bench forward`: forwarding throughput to a local VictoriaMetrics and what
//! it costs local ingest. One run, on fresh directories and the same generated devops
//! data (timestamps ending now, so the receiver's retention accepts them), makes two
//! comparisons, each back to back (without, then with a remote-write target):
//!
//! 1. **unthrottled**: local ingest as fast as it goes, alone and while forwarding. On a
//!    machine that also runs the receiver, this measures how the three share the CPU.
//! 2. **paced** (the collector's case): local ingest offered at a steady rate
//!    (`--offered-rate`), alone and while forwarding: the rate achieved, append latency,
//!    the forwarding rate while ingest runs, the backlog, and the time to drain it.
//!
//! Each comparison has its own VictoriaMetrics (started here on 127.0.0.1, running
//! through both of its phases), whose count of the samples it holds checks what was
//! measured. CPU times come from `/proc`: the forwarder's threads, the receiver, the
//! whole process, and the whole machine (what other processes took). `--receiver sink`
//! replaces VictoriaMetrics with a receiver in this process that decodes and counts but
//! stores nothing: the sender's cost alone, as with a receiver on another host.

mod paced;
mod receiver;
mod sink;

use crate::ingest::{self, Pace, Plan};
use crate::util::DurabilityArg;
use chronolith::forward::RemoteWriteConfig;
use chronolith::{Db, Options};
use paced::Pacer;
use receiver::{load_average, machine_busy_seconds, self_cpu_seconds, threads_cpu_seconds, Receiver};
use serde_json::{json, Value};
use sink::Sink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(clap::Args, Debug)]
pub struct ForwardArgs {
    /// Hosts to simulate; each has 10 gauges.
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Hours of data at one sample per 10 s (ending now).
    #[arg(long, default_value_t = 3)]
    hours: u64,
    /// Samples per append call.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    #[arg(long, value_enum, default_value_t = DurabilityArg::Always)]
    durability: DurabilityArg,
    /// Which comparisons to run.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Samples per second offered to local ingest in the paced comparison.
    #[arg(long, default_value_t = 1_200_000.0)]
    offered_rate: f64,
    /// Sender shards of the target (default: the target's default).
    #[arg(long)]
    shards: Option<usize>,
    /// Samples per remote-write request, at most (default: the target's default).
    #[arg(long)]
    max_samples_per_request: Option<usize>,
    /// How long a sample may wait for its request to fill, in ms (default: the
    /// target's default).
    #[arg(long)]
    batch_send_deadline_ms: Option<u64>,
    /// Where to forward.
    #[arg(long, value_enum, default_value_t = RxKind::VictoriaMetrics)]
    receiver: RxKind,
    /// The VictoriaMetrics binary (Debian's package).
    #[arg(long, default_value = "/usr/bin/victoria-metrics")]
    victoria_metrics: PathBuf,
    /// Give up waiting for the target to catch up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print only the JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Both,
    Unthrottled,
    Paced,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum RxKind {
    /// Debian's VictoriaMetrics on 127.0.0.1 (the benchmark).
    VictoriaMetrics,
    /// A receiver in this process that decodes and counts, storing nothing.
    Sink,
}

/// The receiver of one comparison.
enum Rx {
    Vm(Receiver),
    Sink(Sink),
}

impl Rx {
    fn start(args: &ForwardArgs, data: &Path) -> Result<Rx, Box<dyn std::error::Error>> {
        Ok(match args.receiver {
            RxKind::VictoriaMetrics => Rx::Vm(Receiver::start(&args.victoria_metrics, data)?),
            RxKind::Sink => Rx::Sink(Sink::start()?),
        })
    }

    fn write_url(&self) -> String {
        match self {
            Rx::Vm(vm) => vm.write_url(),
            Rx::Sink(s) => format!("http://127.0.0.1:{}/api/v1/write", s.port),
        }
    }

    fn cpu_seconds(&self) -> f64 {
        match self {
            Rx::Vm(vm) => vm.cpu_seconds(),
            Rx::Sink(_) => threads_cpu_seconds("bench-sink"),
        }
    }

    /// Whether its CPU time is part of this process's.
    fn in_process(&self) -> bool {
        matches!(self, Rx::Sink(_))
    }

    /// Its CPU seconds once it has been idle (under 5% of a core) for a second, waiting
    /// at most 60 s; `None` for the sink (it defers nothing, and its connection threads
    /// are gone once the sender has closed).
    fn cpu_until_idle(&self) -> Option<f64> {
        if self.in_process() {
            return None;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = self.cpu_seconds();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
            let now = self.cpu_seconds();
            if now - last < 0.05 {
                return Some(now);
            }
            last = now;
        }
        Some(last)
    }

    fn samples_held(&self, hours: u64) -> Option<u64> {
        match self {
            Rx::Vm(vm) => vm.samples_held(hours),
            Rx::Sink(s) => Some(s.samples()),
        }
    }
}

/// The floors: forwarding at least this many samples/s while ingest runs ...
const FORWARD_FLOOR_SAMPLES_PER_SEC: f64 = 1_000_000.0;
/// ... with local ingest falling by at most this much.
const INGEST_FALL_MAX: f64 = 0.20;

/// One phase: ingest the plan into `dir`, with or without a target, paced or not.
struct Phase<'a> {
    dir: PathBuf,
    options: &'a Options,
    plan: &'a Plan,
    target: Option<(&'a Rx, RemoteWriteConfig)>,
    rate: Option<f64>,
    hours: u64,
    timeout: Duration,
}

impl Phase<'_> {
    fn run(self) -> Result<Value, Box<dyn std::error::Error>> {
        let db = match &self.target {
            Some((_, cfg)) => Db::open_with_remote_write(&self.dir, self.options.clone(), vec![cfg.clone()])?,
            None => Db::open(&self.dir, self.options.clone())?,
        };
        let pacer = self.rate.map(Pacer::new);
        let (acked, stop) = (AtomicU64::new(0), AtomicBool::new(false));
        let vm_cpu_before = self.target.as_ref().map_or(0.0, |(vm, _)| vm.cpu_seconds());
        let cpu_before = self_cpu_seconds();
        let busy_before = machine_busy_seconds();
        let started = Instant::now();
        let (outcome, backlog) = std::thread::scope(|s| {
            let watcher = self.target.is_some().then(|| s.spawn(|| paced::watch_backlog(&db, &acked, &stop)));
            let outcome = ingest::run_paced(&db, self.plan, &acked, pacer.as_ref().map(|p| p as &dyn Pace));
            stop.store(true, Relaxed);
            (outcome, watcher.and_then(|w| w.join().ok()).unwrap_or_default())
        });
        let outcome = outcome?;
        let ingest_s = started.elapsed().as_secs_f64();
        let process_cpu = self_cpu_seconds() - cpu_before;
        let forwarder_cpu_during = threads_cpu_seconds("chronolith-fwd");
        let vm_cpu_during = self.target.as_ref().map_or(0.0, |(vm, _)| vm.cpu_seconds() - vm_cpu_before);
        let in_process = self.target.as_ref().is_some_and(|(vm, _)| vm.in_process());
        let ingest_cpu = process_cpu - forwarder_cpu_during - if in_process { vm_cpu_during } else { 0.0 };
        let outside = if in_process { 0.0 } else { vm_cpu_during };
        let busy = machine_busy_seconds() - busy_before;
        let samples = outcome.samples.max(1) as f64;
        let mut v = json!({
            "samples": outcome.samples,
            "rejected": outcome.rejected,
            "ingest_seconds": ingest_s,
            "ingest_samples_per_sec": outcome.samples as f64 / ingest_s,
            // CPU while ingest ran: local ingest (writers, WAL, sealing: this process less
            // the forwarder), the forwarder's threads, the receiver, and what else ran on
            // the machine (other builds and tests: the share of the cores this run did
            // not get).
            "ingest_cpu_seconds": ingest_cpu,
            "ingest_cpu_us_per_sample": ingest_cpu * 1e6 / samples,
            "forwarder_cpu_seconds_during_ingest": forwarder_cpu_during,
            "receiver_cpu_seconds_during_ingest": vm_cpu_during,
            "other_processes_cpu_seconds_during_ingest": (busy - process_cpu - outside).max(0.0),
            "machine_busy_fraction_during_ingest": busy / (ingest_s * cores()),
            "load_average_after_ingest": load_average(),
        });
        if let Some(p) = &pacer {
            v["pace"] = p.summary();
        }
        if let Some((vm, _)) = &self.target {
            let f = db.stats().forward[0].clone();
            let done_at_end = f.samples_sent + f.samples_failed + f.samples_dropped;
            let deadline = started + self.timeout;
            let caught_up = loop {
                let f = &db.stats().forward[0];
                if f.samples_sent + f.samples_failed + f.samples_dropped >= outcome.samples {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            let until_caught_up_s = started.elapsed().as_secs_f64();
            let end = db.stats().forward[0].clone();
            let forwarder_cpu = threads_cpu_seconds("chronolith-fwd");
            let vm_cpu = vm.cpu_seconds() - vm_cpu_before;
            let n = end.samples_sent.max(1) as f64;
            v["forward"] = json!({
                "samples_per_sec_during_ingest": f.samples_sent as f64 / ingest_s,
                "backlog_samples_max": backlog.samples_max,
                "backlog_bytes_max": backlog.bytes_max,
                "backlog_samples_at_ingest_end": outcome.samples.saturating_sub(done_at_end),
                "caught_up": caught_up,
                "seconds_until_caught_up": until_caught_up_s,
                "drain_seconds_after_ingest": until_caught_up_s - ingest_s,
                "samples_per_sec_until_caught_up": end.samples_sent as f64 / until_caught_up_s,
                "samples_sent": end.samples_sent,
                "samples_failed": end.samples_failed,
                "samples_dropped": end.samples_dropped,
                "requests": end.requests_sent,
                "requests_retried": end.requests_retried,
                "samples_per_request": n / end.requests_sent.max(1) as f64,
                "samples_per_timeseries": n / end.timeseries_sent.max(1) as f64,
                "bytes_per_sample": end.bytes_sent as f64 / n,
                "request_seconds_mean": end.request_latency.sum_seconds / end.request_latency.count.max(1) as f64,
                "forwarder_cpu_seconds": forwarder_cpu,
                "forwarder_cpu_us_per_sample": forwarder_cpu * 1e6 / n,
                "receiver_cpu_seconds": vm_cpu,
                "receiver_cpu_us_per_sample": vm_cpu * 1e6 / n,
            });
            db.close()?;
            v["forward"]["receiver_samples_held"] = json!(vm.samples_held(self.hours));
            // A receiver may defer work (VictoriaMetrics merges parts in the background,
            // later when the machine is busy): its CPU until it is idle again.
            let settled = vm.cpu_until_idle().map_or(vm_cpu, |c| c - vm_cpu_before);
            v["forward"]["receiver_cpu_seconds_until_idle"] = json!(settled);
            v["forward"]["receiver_cpu_us_per_sample_until_idle"] = json!(settled * 1e6 / n);
            if !caught_up {
                return Err(format!("the target did not catch up within {} s: {v}", self.timeout.as_secs()).into());
            }
        } else {
            db.close()?;
        }
        Ok(v)
    }
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// The pair of phases of one comparison, and the change of the ingest rate between them.
fn compare(
    args: &ForwardArgs,
    root: &Path,
    name: &str,
    plan: &Plan,
    options: &Options,
    rate: Option<f64>,
) -> Result<Value, Box<dyn std::error::Error>> {
    let vm = Rx::start(args, &root.join(format!("vm-{name}")))?;
    let mut target = RemoteWriteConfig::new(vm.write_url());
    target.shards = args.shards.unwrap_or(target.shards);
    target.max_samples_per_request = args.max_samples_per_request.unwrap_or(target.max_samples_per_request);
    target.batch_send_deadline_ms = args.batch_send_deadline_ms.unwrap_or(target.batch_send_deadline_ms);
    let phase = |dir: &str| Phase {
        dir: root.join(format!("{name}-{dir}")),
        options,
        plan,
        target: None,
        rate,
        hours: args.hours,
        timeout: Duration::from_secs(args.timeout_s),
    };
    let alone = phase("alone").run()?;
    if !args.json {
        eprintln!("{name}, alone: {:.2} M samples/s", alone["ingest_samples_per_sec"].as_f64().unwrap_or(0.0) / 1e6);
    }
    let with = Phase { target: Some((&vm, target.clone())), ..phase("forwarding") }.run()?;
    drop(vm);
    let rate_of = |v: &Value| v["ingest_samples_per_sec"].as_f64().unwrap_or(0.0);
    let change = rate_of(&with) / rate_of(&alone) - 1.0;
    let forwarded = with["forward"]["samples_per_sec_during_ingest"].as_f64().unwrap_or(0.0);
    Ok(json!({
        "shards": target.shards,
        "max_samples_per_request": target.max_samples_per_request,
        "batch_send_deadline_ms": target.batch_send_deadline_ms,
        "alone": alone,
        "forwarding": with,
        "ingest_rate_change": change,
        "floor_forward_1m_per_sec_during_ingest_met": forwarded >= FORWARD_FLOOR_SAMPLES_PER_SEC,
        "floor_ingest_fall_at_most_20_percent_met": change >= -INGEST_FALL_MAX,
    }))
}

pub fn run(args: &ForwardArgs) -> Result<(), Box<dyn std::error::Error>> {
    chronolith::forward::log_to_stderr();
    let tmp = tempfile::Builder::new().prefix("chronolith-bench-forward-").tempdir_in(std::env::current_dir()?)?;
    let interval_ms = 10_000i64;
    let points = (args.hours * 3600 * 1000 / interval_ms as u64) as usize;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let plan = Plan {
        hosts: args.hosts,
        counters: 0,
        // Ending two minutes ago: VictoriaMetrics hides the newest ~minute from queries.
        start_ms: now - points as i64 * interval_ms - 120_000,
        points,
        interval_ms,
        batch: args.batch.max(1),
        writers: 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
        seed: args.seed,
    };
    if args.offered_rate <= 0.0 && args.mode != Mode::Unthrottled {
        return Err("--offered-rate must be positive".into());
    }
    let options = Options { durability: args.durability.into(), ..Options::default() };
    if !args.json {
        eprintln!(
            "{} hosts x 10 gauges x {points} points, batch {}, durability {}, {} writers at most",
            plan.hosts, plan.batch, args.durability, plan.writers
        );
    }
    let mut report = json!({
        "samples": (plan.hosts * 10 * points) as u64,
        "series": plan.hosts * 10,
        "durability": args.durability.to_string(),
        "batch": plan.batch,
        "load_average_before": load_average(),
        "cores": cores(),
        "receiver": match args.receiver {
            RxKind::VictoriaMetrics => "victoria-metrics",
            RxKind::Sink => "sink (decodes and counts, stores nothing)",
        },
    });
    if args.mode != Mode::Paced {
        report["unthrottled"] = compare(args, tmp.path(), "unthrottled", &plan, &options, None)?;
    }
    if args.mode != Mode::Unthrottled {
        report["paced"] = compare(args, tmp.path(), "paced", &plan, &options, Some(args.offered_rate))?;
    }
    report["load_average_after"] = json!(load_average());
    if args.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

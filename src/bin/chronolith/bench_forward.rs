//! `chronolith bench forward`: forwarding throughput to a local VictoriaMetrics and what
//! it costs local ingest. In one run, on fresh directories and the same generated devops
//! data (timestamps ending now, so the receiver's retention accepts them):
//!
//! 1. ingest alone (no target): the baseline ingest rate;
//! 2. ingest with a remote-write target at VictoriaMetrics (started here on 127.0.0.1,
//!    running during both phases): the ingest rate with forwarding, the forwarding rate
//!    while ingest runs, and the time until the target has confirmed everything;
//! 3. the receiver's own count of the samples it holds, to check what was measured.

use crate::ingest::{self, Plan};
use crate::util::DurabilityArg;
use chronolith::forward::RemoteWriteConfig;
use chronolith::{Db, Options};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU64;
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
    /// Sender shards of the target.
    #[arg(long, default_value_t = 4)]
    shards: usize,
    /// Samples per remote-write request, at most.
    #[arg(long, default_value_t = 10_000)]
    max_samples_per_request: usize,
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

/// VictoriaMetrics as a child process, killed on drop.
struct Receiver {
    child: Child,
    port: u16,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30))).build().into();
    agent.get(format!("http://127.0.0.1:{port}{path}")).call().ok()?.body_mut().read_to_string().ok()
}

fn start_receiver(bin: &Path, data: &Path) -> Result<Receiver, Box<dyn std::error::Error>> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(bin)
        .args([
            format!("-storageDataPath={}", data.display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-loggerLevel=ERROR".to_owned(),
            "-retentionPeriod=100y".to_owned(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let r = Receiver { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(port, "/health").is_none() {
        if Instant::now() > deadline {
            return Err("victoria-metrics did not answer /health within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(r)
}

/// Samples the receiver holds (after flushing its buffers), through its query API.
fn samples_held(port: u16, hours: u64) -> Option<u64> {
    get(port, "/internal/force_flush")?;
    let q = format!("sum(count_over_time({{__name__=~\".%2B\"}}[{}h]))", hours + 1);
    let body =
        get(port, &format!("/api/v1/query?query={}", q.replace('{', "%7B").replace('}', "%7D").replace('"', "%22")))?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse::<f64>().ok().map(|x| x as u64)
}

/// CPU seconds (user + system) in a `/proc/.../stat` line: fields 14 and 15, in ticks
/// of 1/100 s (Linux's USER_HZ).
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    let after_comm = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU seconds used so far by this process's forwarder threads (`chronolith-fwd*`).
fn forwarder_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    tasks
        .filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("chronolith-fwd")))
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|s| stat_cpu_seconds(&s))
        .sum()
}

fn process_cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| stat_cpu_seconds(&s)).unwrap_or(0.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn run(args: &ForwardArgs) -> Result<(), Box<dyn std::error::Error>> {
    chronolith::forward::log_to_stderr();
    let tmp = tempfile::Builder::new().prefix("chronolith-bench-forward-").tempdir_in(std::env::current_dir()?)?;
    let vm = start_receiver(&args.victoria_metrics, &tmp.path().join("vm"))?;
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
    let options = Options { durability: args.durability.into(), ..Options::default() };
    let load_before = load_average();
    if !args.json {
        eprintln!(
            "{} hosts x 10 gauges x {points} points, batch {}, durability {}; VictoriaMetrics on 127.0.0.1:{}",
            plan.hosts, plan.batch, args.durability, vm.port
        );
    }

    // 1. Ingest alone.
    let db = Db::open(tmp.path().join("alone"), options.clone())?;
    let started = Instant::now();
    let alone = ingest::run(&db, &plan, &AtomicU64::new(0))?;
    let alone_s = started.elapsed().as_secs_f64();
    db.close()?;
    if !args.json {
        eprintln!("alone: {} samples in {alone_s:.2} s", alone.samples);
    }

    // 2. Ingest with a target.
    let mut target = RemoteWriteConfig::new(format!("http://127.0.0.1:{}/api/v1/write", vm.port));
    target.shards = args.shards;
    target.max_samples_per_request = args.max_samples_per_request;
    let vm_cpu_before = process_cpu_seconds(vm.child.id());
    let db = Db::open_with_remote_write(tmp.path().join("forwarding"), options, vec![target])?;
    let started = Instant::now();
    let with = ingest::run(&db, &plan, &AtomicU64::new(0))?;
    let with_s = started.elapsed().as_secs_f64();
    let sent_during = db.stats().forward[0].samples_sent;
    let load_during = load_average();
    let deadline = started + Duration::from_secs(args.timeout_s);
    let caught_up = loop {
        let f = &db.stats().forward[0];
        if f.samples_sent + f.samples_failed + f.samples_dropped >= with.samples {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let forward_s = started.elapsed().as_secs_f64();
    let f = db.stats().forward[0].clone();
    let forwarder_cpu = forwarder_cpu_seconds();
    let vm_cpu = process_cpu_seconds(vm.child.id()) - vm_cpu_before;
    db.close()?;
    let held = samples_held(vm.port, args.hours);

    let alone_rate = alone.samples as f64 / alone_s;
    let with_rate = with.samples as f64 / with_s;
    let report = serde_json::json!({
        "samples": with.samples,
        "series": with.series,
        "durability": args.durability.to_string(),
        "batch": plan.batch,
        "writers": with.writers,
        "shards": args.shards,
        "max_samples_per_request": args.max_samples_per_request,
        "ingest_alone_seconds": alone_s,
        "ingest_alone_samples_per_sec": alone_rate,
        "ingest_forwarding_seconds": with_s,
        "ingest_forwarding_samples_per_sec": with_rate,
        "ingest_rate_change": with_rate / alone_rate - 1.0,
        "forward_samples_per_sec_during_ingest": sent_during as f64 / with_s,
        "forward_caught_up": caught_up,
        "forward_seconds_until_caught_up": forward_s,
        "forward_samples_per_sec_overall": f.samples_sent as f64 / forward_s,
        "forward_samples_sent": f.samples_sent,
        "forward_samples_failed": f.samples_failed,
        "forward_samples_dropped": f.samples_dropped,
        "forward_requests": f.requests_sent,
        "forward_requests_retried": f.requests_retried,
        "forward_request_seconds_mean": f.request_latency.sum_seconds / f.request_latency.count.max(1) as f64,
        "receiver_samples_held": held,
        "forwarder_cpu_seconds": forwarder_cpu,
        "receiver_cpu_seconds": vm_cpu,
        "load_average_before": load_before,
        "load_average_during": load_during,
    });
    if args.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if !caught_up {
        return Err(format!("the target did not catch up within {} s", args.timeout_s).into());
    }
    Ok(())
}

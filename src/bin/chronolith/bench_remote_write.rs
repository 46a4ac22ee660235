//! `chronolith bench remote-write`: remote-write ingest through the HTTP server. Starts
//! `serve` in this process on a fresh directory (default durability: every request
//! fsynced before its 204), pre-encodes requests of the devops data set (TSBS host
//! labels, 10 gauges per host, one sample per series per request, as a Prometheus
//! shard sends a scrape), and has `--clients` concurrent clients, each on its own
//! keep-alive connection, post them back to back. Reports acknowledged samples per
//! second: a sample counts only once its request was answered 204.

use crate::devops;
use crate::serve::{InProcess, ServeArgs};
use crate::util::{peak_rss_bytes, DurabilityArg};
use chronolith::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use clap::{Args, FromArgMatches};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct RemoteWriteArgs {
    /// Hosts (10 series each), split evenly between the clients.
    #[arg(long, default_value_t = 2000)]
    hosts: usize,
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Samples per request.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Requests each client sends (pre-encoded before timing starts).
    #[arg(long, default_value_t = 300)]
    requests: usize,
    /// Server durability: always (fsync before every 204), periodic, never.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Always)]
    durability: DurabilityArg,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print only the JSON object.
    #[arg(long)]
    json: bool,
}

const INTERVAL_MS: i64 = 10_000;

/// One client's requests: (snappy body, samples in it).
type Requests = Vec<(Bytes, u64)>;

pub fn run(args: &RemoteWriteArgs) -> Result<(), Box<dyn std::error::Error>> {
    let clients = args.clients.max(1);
    let dir = tempfile::Builder::new().prefix("chronolith-bench-rw-").tempdir_in(std::env::current_dir()?)?;
    if !args.json {
        eprintln!(
            "encoding {} requests of {} samples for {clients} clients ({} hosts, {} series)",
            clients * args.requests,
            args.batch,
            args.hosts,
            args.hosts * devops::CPU_FIELDS.len()
        );
    }
    let bodies = encode_requests(args, clients)?;
    let body_bytes: usize = bodies.iter().flatten().map(|(b, _)| b.len()).sum();

    let serve_args = serve_args(dir.path(), args.durability)?;
    let server = InProcess::start(serve_args)?;
    let addr = server.addr;
    wait_ready(addr)?;
    if !args.json {
        eprintln!("posting to http://{addr}/api/v1/write, {clients} clients, durability {}", args.durability);
    }
    let load_before = loadavg();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let progress: Vec<AtomicUsize> = (0..clients).map(|_| AtomicUsize::new(0)).collect();
    let outcomes: Vec<Result<ClientOutcome, String>> = std::thread::scope(|s| {
        let progress = &progress;
        let handles: Vec<_> =
            bodies.iter().enumerate().map(|(c, reqs)| s.spawn(move || post_all(addr, reqs, c, progress))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("client thread panicked".into()))).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let load_after = loadavg();
    let mut latencies = Vec::new();
    let mut acked = 0u64;
    let mut client_cpu = 0.0;
    for o in outcomes {
        let o = o?;
        acked += o.samples;
        client_cpu += o.cpu_seconds;
        latencies.extend(o.latencies_ms);
    }
    // Everything the process ran during the posting but the clients: the server's
    // runtime and blocking threads, and any thread the engine started for them.
    let server_cpu = (cpu - client_cpu).max(0.0);
    let fsync = wal_fsync_figures(addr);
    server.stop()?;
    let check = chronolith::Db::open(dir.path(), chronolith::Options::default())?;
    let reopened = check.stats().engine;
    let stored = reopened.head_samples + reopened.block_samples;
    check.close()?;
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    let report = serde_json::json!({
        "acknowledged_samples": acked,
        "seconds": seconds,
        "samples_per_sec": acked as f64 / seconds,
        "cpu_seconds": cpu,
        "cpu_us_per_sample": cpu * 1e6 / acked.max(1) as f64,
        "server_cpu_seconds": server_cpu,
        "server_cpu_us_per_sample": server_cpu * 1e6 / acked.max(1) as f64,
        "requests": latencies.len(),
        "request_ms_p50": pct(0.5),
        "request_ms_p99": pct(0.99),
        "request_ms_max": pct(1.0),
        "clients": clients,
        "batch": args.batch,
        "series": args.hosts * devops::CPU_FIELDS.len(),
        "compressed_bytes_per_sample": body_bytes as f64 / (acked.max(1)) as f64,
        "durability": args.durability.to_string(),
        "wal_fsyncs": fsync.map(|f| f.0),
        "wal_fsync_ms_mean": fsync.map(|f| f.1 * 1e3 / f.0.max(1.0)),
        "replayed_after_restart": stored,
        "peak_rss_bytes": peak_rss_bytes(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    });
    if stored < acked {
        return Err(format!("only {stored} of {acked} acknowledged samples were there after a restart").into());
    }
    if args.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

fn serve_args(dir: &std::path::Path, durability: DurabilityArg) -> Result<ServeArgs, clap::Error> {
    let cmd = ServeArgs::augment_args(clap::Command::new("serve"));
    let durability = durability.to_string();
    let m = cmd.try_get_matches_from([
        "serve",
        "--data-dir",
        &dir.to_string_lossy(),
        "--listen",
        "127.0.0.1:0",
        "--durability",
        &durability,
    ])?;
    ServeArgs::from_arg_matches(&m)
}

/// Per client, its requests as (snappy body, samples). Client `c` owns hosts
/// `c, c + clients, ...`; its requests walk time one scrape (10 s) after another, all of
/// the client's series at each timestamp, cut into batches.
fn encode_requests(args: &RemoteWriteArgs, clients: usize) -> Result<Vec<Requests>, Box<dyn std::error::Error>> {
    let all = devops::series(args.hosts, 0, args.seed)?;
    let per_host = devops::CPU_FIELDS.len();
    let mut out = Vec::with_capacity(clients);
    for c in 0..clients {
        let mut gens: Vec<devops::SeriesGen> = all
            .chunks(per_host)
            .enumerate()
            .filter(|(h, _)| h % clients == c)
            .flat_map(|(_, s)| s.iter().cloned())
            .collect();
        if gens.is_empty() {
            return Err("fewer hosts than clients".into());
        }
        let labels: Vec<Vec<Label>> = gens
            .iter()
            .map(|g| g.labels.iter().map(|(n, v)| Label { name: n.into(), value: v.into() }).collect())
            .collect();
        let mut rng = devops::Rng::new(args.seed + c as u64 + 1);
        let mut reqs = Vec::with_capacity(args.requests);
        let (mut scrape, mut next) = (0i64, 0usize);
        while reqs.len() < args.requests {
            let mut ts = Vec::with_capacity(args.batch);
            while ts.len() < args.batch.max(1) {
                let t = devops::START_MS + scrape * INTERVAL_MS;
                let value = gens[next].next(&mut rng);
                ts.push(TimeSeries { labels: labels[next].clone(), samples: vec![Sample { value, timestamp: t }] });
                next += 1;
                if next == gens.len() {
                    next = 0;
                    scrape += 1;
                }
            }
            let n = ts.len() as u64;
            reqs.push((Bytes::from(remote_write::encode(&WriteRequest { timeseries: ts, metadata: vec![] })), n));
        }
        out.push(reqs);
    }
    Ok(out)
}

#[derive(Debug)]
struct ClientOutcome {
    samples: u64,
    latencies_ms: Vec<f64>,
    /// CPU time of the client's thread (its runtime is single-threaded).
    cpu_seconds: f64,
}

/// How many requests a client may be ahead of the slowest one. Like Prometheus shards
/// driven by one wall clock, clients stay within a minute of each other, so no sample
/// falls behind the server's 5-minute out-of-order window.
const LEAD_REQUESTS_MAX: usize = 6;

/// Posts every request on one keep-alive connection, each after the previous answer.
fn post_all(
    addr: std::net::SocketAddr,
    reqs: &[(Bytes, u64)],
    me: usize,
    progress: &[AtomicUsize],
) -> Result<ClientOutcome, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let cpu_before = thread_cpu_seconds();
        let mut out = ClientOutcome { samples: 0, latencies_ms: Vec::with_capacity(reqs.len()), cpu_seconds: 0.0 };
        for (i, (body, n)) in reqs.iter().enumerate() {
            while progress.iter().map(|p| p.load(Relaxed)).min().unwrap_or(0) + LEAD_REQUESTS_MAX < i {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            let req = hyper::Request::post(format!("http://{addr}/api/v1/write"))
                .header("Content-Type", remote_write::CONTENT_TYPE)
                .header("Content-Encoding", remote_write::CONTENT_ENCODING)
                .header("X-Prometheus-Remote-Write-Version", remote_write::VERSION_HEADER_VALUE)
                .body(Full::new(body.clone()))
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let text = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            if status != hyper::StatusCode::NO_CONTENT {
                return Err(format!("server answered {status}: {}", String::from_utf8_lossy(&text)));
            }
            out.latencies_ms.push(t.elapsed().as_secs_f64() * 1e3);
            out.samples += n;
            progress[me].store(i + 1, Relaxed);
        }
        out.cpu_seconds = thread_cpu_seconds() - cpu_before;
        Ok(out)
    })
}

fn wait_ready(addr: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http_get(addr, "/-/ready").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("server not ready after 60 s".into())
}

/// `(fsyncs, seconds in fsync)` of the sample WAL, from the server's `/metrics`.
fn wal_fsync_figures(addr: std::net::SocketAddr) -> Option<(f64, f64)> {
    let text = http_get(addr, "/metrics")?;
    let value =
        |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok());
    Some((value("chronolith_wal_fsyncs_total")?, value("chronolith_wal_fsync_duration_seconds_total")?))
}

/// The whole HTTP/1.1 answer (status line, headers, body) to a GET of `path`.
fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// User + system CPU time of this process (server and clients), in seconds.
#[allow(unsafe_code)]
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own; no other precondition.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// User + system CPU time of the calling thread, in seconds.
#[allow(unsafe_code)]
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the struct we own; no other precondition.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return 0.0;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "?".into(), |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

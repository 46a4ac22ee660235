//! `chronolith serve`: an HTTP server over one data directory. It takes Prometheus
//! remote write, InfluxDB line protocol and Prometheus text imports, answers the
//! Prometheus HTTP query API subset Grafana uses, and exposes its own figures on
//! `/metrics`.
//!
//! The listener comes up before the database is open, so `/-/ready` can be watched
//! turning from 503 to 200 once WAL replay has finished; until then every data endpoint
//! answers 503. Decoding and appending run in place on the worker thread that read the
//! request, after tokio hands that worker's other tasks to a spare thread
//! (`block_in_place`); query evaluation runs on the blocking pool. Both are bounded by
//! semaphores and neither occupies an executor core, so a write waiting on fsync never
//! holds up a query. SIGTERM or Ctrl-C stops accepting, lets in-flight
//! requests finish (up to `--drain-timeout-s`), then closes the database.

mod api;
mod auth;
mod body;
mod ingest;
mod limits;
mod metrics;
mod metrics_forward;
mod params;
mod series_cache;
#[cfg(test)]
mod slow_fsync_tests;
mod write;

use crate::util::DurabilityArg;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chronolith::{Db, Options};
use limits::ServerLimits;
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serve a data directory over HTTP: Prometheus remote write, InfluxDB line protocol,
/// Prometheus text import, the Prometheus query API, /metrics, /-/healthy, /-/ready.
#[derive(clap::Args, Debug)]
#[command(after_help = ENDPOINTS_HELP)]
pub struct ServeArgs {
    /// The data directory (created if missing); one server (or program) at a time.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port. The bound address is printed on
    /// stderr as `listening on http://ADDR`.
    #[arg(long, default_value = "127.0.0.1:9201")]
    pub listen: SocketAddr,
    /// When a write is acknowledged: after fsync (always), after write(2) with a
    /// background fsync (periodic), or after write(2) (never).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Always)]
    pub durability: DurabilityArg,
    /// File holding the bearer token every request except /-/healthy and /-/ready must
    /// carry (`Authorization: Bearer TOKEN`). The environment variable
    /// CHRONOLITH_BEARER_TOKEN is used when this is not given.
    #[arg(long)]
    pub bearer_token_file: Option<PathBuf>,
    /// How far behind the newest sample a sample may arrive (Prometheus duration, e.g.
    /// 5m, 2h). Backfilling series-major files needs a window covering their span.
    #[arg(long, default_value = "5m")]
    pub ooo_window: String,
    #[command(flatten)]
    pub limits: ServerLimits,
    /// How long SIGTERM waits for in-flight requests before closing anyway.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout_s: u64,
    /// Forward everything ingested, from the WAL, to a Prometheus remote-write receiver
    /// (Mimir, Thanos Receive, Cortex, VictoriaMetrics, Prometheus). Repeatable, one per
    /// target: `URL[;key=value...]`, e.g.
    /// `http://mimir:8080/api/v1/push;header=X-Scope-OrgID:team;match={job="node"};label=replica=a`
    /// (keys in README, "Forwarding"). Each target's position is kept in
    /// DATA_DIR/forward/, so a restart resumes where it stopped.
    #[arg(long = "remote-write", value_name = "URL[;key=value...]")]
    pub remote_write: Vec<String>,
}

const ENDPOINTS_HELP: &str = "\
Endpoints:
  POST /api/v1/write                 Prometheus remote write 1.0 (protobuf + snappy)
  POST /write, /api/v2/write         InfluxDB line protocol (?precision=ns|us|ms|s; gzip ok)
  POST /api/v1/import/prometheus     Prometheus text with millisecond timestamps (gzip ok)
  GET|POST /api/v1/query, /api/v1/query_range, /api/v1/series, /api/v1/labels,
           /api/v1/label/NAME/values, GET /api/v1/status/buildinfo (and empty answers
           for /api/v1/metadata, /api/v1/query_exemplars, /api/v1/rules, which Grafana asks)
  GET /metrics, /-/healthy, /-/ready
A 2xx answer to a write means every sample of it is stored and durable under --durability;
a 4xx after a partial rejection says which samples were refused and why, and the other
samples of the request are stored. Exact duplicates are accepted, so retries are safe.
Overload (write queue or head memory full) answers 503 with Retry-After.";

/// Everything the handlers share.
pub(crate) struct AppState {
    /// `None` until `Db::open` (WAL replay) has finished, and again once shutdown began.
    db: RwLock<Option<Arc<Db>>>,
    /// Set when a shutdown signal arrived: `/-/ready` answers 503 while draining.
    draining: AtomicBool,
    limits: ServerLimits,
    token: Option<auth::Token>,
    metrics: metrics::Metrics,
    writes: Arc<tokio::sync::Semaphore>,
    queries: Arc<tokio::sync::Semaphore>,
    caches: write::Caches,
    started: Instant,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    /// The open database, or the 503 a client should retry after.
    pub(crate) fn db(&self) -> Result<Arc<Db>, Unavailable> {
        self.db.read().clone().ok_or(Unavailable)
    }
}

/// The database is not open yet (WAL replay) or is closing.
#[derive(Debug)]
pub(crate) struct Unavailable;

pub fn run(args: &ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (opts, token) = prepare(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("serve").build()?;
    runtime.block_on(serve(args, opts, token, shutdown_signal(), |addr| eprintln!("listening on http://{addr}")))
}

/// A server started in this process (`bench remote-write`): stops on `stop()`.
#[derive(Debug)]
pub struct InProcess {
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

impl InProcess {
    /// Starts the server on its own runtime thread and returns once it listens.
    pub fn start(args: ServeArgs) -> Result<Self, Box<dyn std::error::Error>> {
        let (opts, token) = prepare(&args)?;
        let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("serve".into()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("serve")
                .build()
                .map_err(|e| e.to_string())?;
            let stopped = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            runtime
                .block_on(serve(&args, opts, token, stopped, move |addr| {
                    let _ = addr_tx.send(addr);
                }))
                .map_err(|e| e.to_string())
        })?;
        match addr_rx.recv() {
            Ok(addr) => Ok(Self { addr, stop, thread }),
            Err(_) => Err(thread
                .join()
                .map_or_else(|_| "server thread panicked".into(), |r| r.err().unwrap_or_default())
                .into()),
        }
    }

    /// Drains, closes the database and waits for the server thread.
    pub fn stop(self) -> Result<(), Box<dyn std::error::Error>> {
        let _ = self.stop.send(true);
        self.thread.join().map_err(|_| "server thread panicked")??;
        Ok(())
    }
}

fn prepare(args: &ServeArgs) -> Result<(Options, Option<auth::Token>), Box<dyn std::error::Error>> {
    let token = auth::load(args.bearer_token_file.as_deref())?;
    let ooo_window_ms = chronolith_engine::parse_duration_ms(&args.ooo_window)
        .map_err(|e| format!("--ooo-window {:?}: {e}", args.ooo_window))?;
    args.limits.validate()?;
    let opts = Options {
        durability: args.durability.into(),
        ooo_window_ms,
        label_limits: args.limits.label_limits(),
        series_max: args.limits.series_max,
        ..Options::default()
    };
    Ok((opts, token))
}

async fn serve(
    args: &ServeArgs,
    opts: Options,
    token: Option<auth::Token>,
    stop: impl std::future::Future<Output = ()>,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), Box<dyn std::error::Error>> {
    // A bad target is a startup error, before anything listens.
    let targets = args
        .remote_write
        .iter()
        .map(|spec| chronolith::forward::RemoteWriteConfig::parse(spec))
        .collect::<Result<Vec<_>, _>>()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && token.is_none() {
        eprintln!("warning: listening on {addr}, reachable from other machines, without a bearer token");
    }
    let state = Arc::new_cyclic(|weak| AppState {
        db: RwLock::new(None),
        draining: AtomicBool::new(false),
        writes: Arc::new(tokio::sync::Semaphore::new(args.limits.writes_in_flight_max)),
        queries: Arc::new(tokio::sync::Semaphore::new(args.limits.queries_in_flight_max)),
        limits: args.limits.clone(),
        token,
        metrics: metrics::Metrics::new(weak.clone()),
        caches: write::Caches::new(args.limits.series_cache_bytes_max),
        started: Instant::now(),
    });
    on_bound(addr);

    let dir = args.data_dir.clone();
    let opening = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let db = Db::open_with_remote_write(&dir, opts, targets)?;
            eprintln!(
                "ready: {} opened in {:.2} s ({} samples replayed from the WAL)",
                dir.display(),
                started.elapsed().as_secs_f64(),
                db.stats().engine.samples_replayed
            );
            *state.db.write() = Some(Arc::new(db));
            Ok::<_, chronolith::Error>(())
        })
    };
    let app = router(state.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = {
        let mut stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                })
                .await
        })
    };
    // A failed open ends the program (after the listener is told to stop); a stop
    // request during the open waits for it, so the directory is never left half-open.
    tokio::pin!(stop);
    let stop_early = tokio::select! {
        r = opening => {
            if let Err(e) = r? {
                let _ = stop_tx.send(true);
                return Err(format!("cannot open {}: {e}", args.data_dir.display()).into());
            }
            false
        }
        () = &mut stop => true,
    };
    if stop_early {
        state.draining.store(true, Relaxed);
        eprintln!("shutdown requested while opening; waiting for the open to finish");
        while state.db.read().is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    } else {
        stop.await;
    }
    state.draining.store(true, Relaxed);
    eprintln!("shutting down: draining in-flight requests");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(args.drain_timeout_s), server).await;
    if drained.is_err() {
        eprintln!("warning: requests still running after {} s; closing anyway", args.drain_timeout_s);
    }
    close_db(&state).await
}

/// Takes the database out of the state (new requests get 503) and closes it once no
/// request holds it any more; a blocking task that outlived its client (the handler was
/// dropped) may still hold it for a moment. If it never lets go, a flush makes every
/// acknowledged sample durable anyway.
async fn close_db(state: &AppState) -> Result<(), Box<dyn std::error::Error>> {
    let Some(mut db) = state.db.write().take() else { return Ok(()) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Arc::try_unwrap(db) {
            Ok(owned) => {
                tokio::task::spawn_blocking(move || owned.close()).await??;
                eprintln!("closed");
                return Ok(());
            }
            Err(shared) if Instant::now() >= deadline => {
                tokio::task::spawn_blocking(move || shared.flush()).await??;
                eprintln!("flushed (a request still held the database)");
                return Ok(());
            }
            Err(shared) => {
                db = shared;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn router(state: Shared) -> Router {
    let data = Router::new()
        .route("/api/v1/write", post(write::remote_write))
        .route("/write", post(write::influx_v1))
        .route("/api/v2/write", post(write::influx_v2))
        .route("/api/v1/import/prometheus", post(write::prometheus_text))
        .route("/api/v1/query", get(api::query).post(api::query))
        .route("/api/v1/query_range", get(api::query_range).post(api::query_range))
        .route("/api/v1/series", get(api::series).post(api::series))
        .route("/api/v1/labels", get(api::labels).post(api::labels))
        .route("/api/v1/label/{name}/values", get(api::label_values))
        .route("/api/v1/metadata", get(api::metadata))
        .route("/api/v1/query_exemplars", get(api::query_exemplars).post(api::query_exemplars))
        .route("/api/v1/rules", get(api::rules))
        .route("/api/v1/status/buildinfo", get(api::buildinfo))
        .route("/metrics", get(metrics::handler))
        .route("/ping", get(ping).head(ping))
        .layer(middleware::from_fn_with_state(state.clone(), auth::check));
    Router::new()
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .merge(data)
        .fallback(not_found)
        // Outermost, so 401s and 404s are counted too.
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        // Bodies are read (and limited) by each handler; axum's own 2 MB default would
        // answer first with a vaguer message.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

async fn count_requests(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let handler = req.extensions().get::<MatchedPath>().map_or("other", |p| metrics::handler_name(p.as_str()));
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.http_request(handler, response.status().as_u16(), started.elapsed());
    response
}

/// 200 while the process can serve: the database is open (or opening) and its WAL is
/// not poisoned by a failed fsync (then writes fail until a restart).
async fn healthy(State(state): State<Shared>) -> Response {
    let poisoned = state.db.read().as_ref().is_some_and(|db| db.engine().is_poisoned());
    if poisoned {
        let msg = "Chronolith is unhealthy: a WAL fsync failed; writes are refused until restart.\n";
        return (StatusCode::SERVICE_UNAVAILABLE, msg).into_response();
    }
    (StatusCode::OK, "Chronolith is Healthy.\n").into_response()
}

/// 200 once the database is open (WAL replayed) and no shutdown is under way.
async fn ready(State(state): State<Shared>) -> Response {
    let open = state.db.read().is_some();
    if open && !state.draining.load(Relaxed) {
        (StatusCode::OK, "Chronolith is Ready.\n").into_response()
    } else if open {
        (StatusCode::SERVICE_UNAVAILABLE, "Chronolith is shutting down.\n").into_response()
    } else {
        let up = state.started.elapsed().as_secs_f64();
        (StatusCode::SERVICE_UNAVAILABLE, format!("Chronolith is not ready: replaying the WAL ({up:.1} s so far).\n"))
            .into_response()
    }
}

/// InfluxDB clients check `/ping` before writing.
async fn ping() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn not_found(req: Request) -> Response {
    let msg = format!("no such endpoint: {} {} (see `chronolith serve --help`)\n", req.method(), req.uri().path());
    (StatusCode::NOT_FOUND, msg).into_response()
}

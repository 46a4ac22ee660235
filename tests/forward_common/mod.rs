//! Helpers of the `forward_*` tests: real receivers (VictoriaMetrics, Prometheus) and a
//! small fake one, each on 127.0.0.1 and stopped by a `Drop` guard; reading back what a
//! receiver holds through its own API; a log capture.
#![allow(dead_code, reason = "each test file uses a different subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use chronolith::remote_write;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const VM_BIN: &str = "/usr/bin/victoria-metrics";
pub const PROM_BIN: &str = "/usr/bin/prometheus";

/// Labels (sorted, as name=value pairs) → samples (t, value bits), sorted.
pub type Held = BTreeMap<Vec<(String, String)>, Vec<(i64, u64)>>;

/// `None` (after a loud message) when the receiver's binary is not installed.
pub fn binary_or_skip(bin: &str, test: &str) -> Option<PathBuf> {
    let p = PathBuf::from(bin);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIPPED {test}: {bin} is not installed (Debian package; .ci/run installs it)");
        None
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Polls `f` every 20 ms until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn http_get(url: &str) -> Option<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.get(url).call().ok()?;
    let status = r.status().as_u16();
    let body = r.body_mut().with_config().limit(1 << 30).read_to_string().ok()?;
    Some((status, body))
}

/// A child process killed (and waited for) on drop.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub data: PathBuf,
    log: PathBuf,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (up to 20 s, then SIGKILL): a receiver's own graceful shutdown,
    /// which writes out what it acknowledged (VictoriaMetrics buffers for about a second).
    pub fn stop_gracefully(&mut self) {
        if let Some(c) = self.child.as_mut() {
            #[allow(unsafe_code)]
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && c.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.stop();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let f = std::fs::File::create(log).unwrap();
    cmd.stdout(Stdio::from(f.try_clone().unwrap())).stderr(Stdio::from(f)).stdin(Stdio::null()).spawn().unwrap()
}

/// Starts VictoriaMetrics on `port` over `data` (reusing both on a restart) and waits
/// until it answers `/health`.
pub fn start_victoria_metrics(bin: &Path, data: &Path, port: u16) -> Server {
    let log = data.with_extension("log");
    let child = spawn_logged(
        Command::new(bin).args([
            format!("-storageDataPath={}", data.display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-loggerLevel=ERROR".to_owned(),
            "-search.disableCache".to_owned(),
            "-memory.allowedPercent=10".to_owned(),
        ]),
        &log,
    );
    let s = Server { child: Some(child), port, data: data.to_path_buf(), log };
    let up = wait_until(Duration::from_secs(30), || http_get(&s.url("/health")).is_some_and(|(c, _)| c == 200));
    assert!(up, "victoria-metrics did not start:\n{}", s.log());
    s
}

/// Everything VictoriaMetrics holds for series matching `selector`, via `/api/v1/export`.
pub fn victoria_metrics_export(s: &Server, selector: &str) -> Held {
    let (code, _) = http_get(&s.url("/internal/force_flush")).expect("force_flush");
    assert_eq!(code, 200);
    let q = form_urlencode(selector);
    let (code, body) = http_get(&s.url(&format!("/api/v1/export?match[]={q}"))).expect("export");
    assert_eq!(code, 200, "{body}");
    let mut out = Held::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let labels = labels_of(&v["metric"]);
        let ts = v["timestamps"].as_array().unwrap();
        let vs = v["values"].as_array().unwrap();
        let e = out.entry(labels).or_default();
        for (t, x) in ts.iter().zip(vs) {
            e.push((t.as_i64().unwrap(), json_f64(x).to_bits()));
        }
        e.sort_unstable();
    }
    out
}

/// Starts Prometheus with the remote-write receiver on, storage in `dir`.
pub fn start_prometheus(bin: &Path, dir: &Path, port: u16) -> Server {
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
    let data = dir.join("tsdb");
    let log = dir.join("prometheus.log");
    let child = spawn_logged(
        Command::new(bin).args([
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", data.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--web.enable-remote-write-receiver".to_owned(),
            "--log.level=warn".to_owned(),
        ]),
        &log,
    );
    let s = Server { child: Some(child), port, data, log };
    let up = wait_until(Duration::from_secs(30), || http_get(&s.url("/-/ready")).is_some_and(|(c, _)| c == 200));
    assert!(up, "prometheus did not start:\n{}", s.log());
    s
}

/// Raw samples Prometheus holds for `selector` in `(at - range_s, at]`, via an instant
/// query of a range selector.
pub fn prometheus_raw(s: &Server, selector: &str, at_ms: i64, range_s: i64) -> Held {
    let q = form_urlencode(&format!("{selector}[{range_s}s]"));
    let at = format!("{}.{:03}", at_ms / 1000, at_ms % 1000);
    let (code, body) = http_get(&s.url(&format!("/api/v1/query?query={q}&time={at}"))).expect("query");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out = Held::new();
    for r in v["data"]["result"].as_array().unwrap() {
        let labels = labels_of(&r["metric"]);
        let e = out.entry(labels).or_default();
        for p in r["values"].as_array().unwrap() {
            let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            e.push((t, json_f64(&p[1]).to_bits()));
        }
        e.sort_unstable();
    }
    out
}

fn labels_of(m: &serde_json::Value) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> =
        m.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
    l.sort();
    l
}

fn json_f64(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "+Inf" | "Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            s => s.parse().unwrap(),
        },
        v => v.as_f64().unwrap(),
    }
}

pub fn form_urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sorted labels of a Chronolith series, plus `extra` where missing.
pub fn labels_vec(l: &chronolith::Labels, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = l.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
    for (n, x) in extra {
        if l.get(n).is_empty() {
            v.push(((*n).to_owned(), (*x).to_owned()));
        }
    }
    v.sort();
    v
}

/// Every sample Chronolith holds for `matchers`, in the receivers' shape.
pub fn chronolith_held(db: &chronolith::Db, matchers: &[chronolith::Matcher], extra: &[(&str, &str)]) -> Held {
    let mut out = Held::new();
    for s in db.select(matchers, i64::MIN + 1, i64::MAX - 1) {
        let s = s.unwrap();
        out.insert(labels_vec(&s.labels, extra), s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect());
    }
    out
}

// ------------------------------------------------------------------ fake receiver

/// What the fake receiver does with a decoded request.
pub type Decide = dyn Fn(&remote_write::WriteRequest) -> (u16, Vec<(String, String)>, String) + Send + Sync;

/// A remote-write receiver in a thread: decodes each request, asks `decide` for the
/// status, headers and body to answer, and keeps the samples of 2xx requests.
pub struct FakeReceiver {
    pub port: u16,
    pub received: Arc<Mutex<Vec<remote_write::TimeSeries>>>,
    pub requests: Arc<Mutex<u64>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeReceiver {
    pub fn start(decide: Arc<Decide>) -> FakeReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (rx, rq, st) = (received.clone(), requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (rx, rq, d) = (rx.clone(), rq.clone(), decide.clone());
                        std::thread::spawn(move || serve_conn(conn, &*d, &rx, &rq));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeReceiver { port, received, requests, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    pub fn held(&self) -> Held {
        let mut out = Held::new();
        for ts in self.received.lock().unwrap().iter() {
            let mut l: Vec<(String, String)> = ts.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
            l.sort();
            out.entry(l).or_default().extend(ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())));
        }
        for v in out.values_mut() {
            v.sort_unstable();
        }
        out
    }
}

impl Drop for FakeReceiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_conn(
    conn: TcpStream,
    decide: &Decide,
    received: &Mutex<Vec<remote_write::TimeSeries>>,
    requests: &Mutex<u64>,
) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    // Keep-alive: one request after another until the client closes.
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        *requests.lock().unwrap() += 1;
        let (status, headers, text) = match remote_write::decode(&body, 64 << 20) {
            Ok(req) => {
                let (status, headers, text) = decide(&req);
                if (200..300).contains(&status) {
                    received.lock().unwrap().extend(req.timeseries);
                }
                (status, headers, text)
            }
            Err(e) => (400, Vec::new(), e.to_string()),
        };
        let mut resp = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", text.len());
        for (n, v) in headers {
            resp.push_str(&format!("{n}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        resp.push_str(&text);
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

// ------------------------------------------------------------------ log capture

static CAPTURED: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        let line = format!("{} {}", r.level(), r.args());
        eprintln!("{line}");
        CAPTURED.lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

/// Installs a logger that keeps every line (and echoes it to stderr).
pub fn capture_logs() {
    static LOGGER: Capture = Capture;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

pub fn logged() -> Vec<String> {
    CAPTURED.lock().unwrap().clone()
}

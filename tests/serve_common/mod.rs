//! Helpers for the tests that run `chronolith serve` (and Prometheus) as child
//! processes on 127.0.0.1. Every child is killed by a Drop guard, also when a test
//! fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use chronolith::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_chronolith");

/// A running `chronolith serve`; killed on drop.
pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub dir: PathBuf,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `chronolith serve --data-dir DIR --listen 127.0.0.1:0 EXTRA...` and waits
    /// for `/-/ready`.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_env(dir, extra, &[])
    }

    pub fn start_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--data-dir"]).arg(dir).args(["--listen", "127.0.0.1:0"]).args(extra);
        cmd.env_remove("CHRONOLITH_BEARER_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn chronolith serve");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(a) = line.strip_prefix("listening on http://") {
                        let _ = tx.send(a.to_string());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let mut server = Self { child: Some(child), addr: String::new(), dir: dir.to_path_buf(), stderr: lines };
        server.addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no `listening on` line; stderr: {:?}", server.stderr.lock().unwrap()));
        server.wait_ready();
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let a = agent();
        while Instant::now() < deadline {
            if let Ok(r) = a.get(&self.url("/-/ready")).call() {
                if r.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server not ready; stderr: {:?}", self.stderr.lock().unwrap());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends SIGTERM and waits (at most 60 s) for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not exit within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[allow(unsafe_code)]
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a child we spawned and still own; no memory is involved.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// An HTTP client that returns 4xx/5xx answers instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// `(status, body)` of a GET.
pub fn get(url: &str) -> (u16, String) {
    let mut r = agent().get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// `(status, JSON body)` of a GET.
pub fn get_json(url: &str) -> (u16, serde_json::Value) {
    let (status, body) = get(url);
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {body}")))
}

/// `(status, body)` of a POST with headers.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.send(body).unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A series for a remote-write request: labels (name first or not) and samples.
pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }).collect(),
        samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
    }
}

/// A snappy-compressed `WriteRequest` body.
pub fn rw_body(series: Vec<TimeSeries>) -> Vec<u8> {
    remote_write::encode(&WriteRequest { timeseries: series, metadata: vec![] })
}

/// POSTs a remote-write body.
pub fn remote_write(server: &Server, body: &[u8]) -> (u16, String) {
    post(
        &server.url("/api/v1/write"),
        &[
            ("Content-Type", remote_write::CONTENT_TYPE),
            ("Content-Encoding", remote_write::CONTENT_ENCODING),
            ("X-Prometheus-Remote-Write-Version", remote_write::VERSION_HEADER_VALUE),
        ],
        body,
    )
}

/// `query_range` as (labels → points) from the server's JSON.
pub fn query_range(
    server: &Server,
    q: &str,
    start_s: f64,
    end_s: f64,
    step_s: f64,
) -> Vec<(serde_json::Value, Vec<(f64, f64)>)> {
    let url = server
        .url(&format!("/api/v1/query_range?query={}&start={start_s}&end={end_s}&step={step_s}", percent_encode(q)));
    let (status, v) = get_json(&url);
    assert_eq!(status, 200, "{q}: {v}");
    matrix(&v)
}

/// The series of a Prometheus API matrix answer.
pub fn matrix(v: &serde_json::Value) -> Vec<(serde_json::Value, Vec<(f64, f64)>)> {
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["data"]["resultType"], "matrix", "{v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let points = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().parse::<f64>().unwrap()))
                .collect();
            (s["metric"].clone(), points)
        })
        .collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A free port on 127.0.0.1 (bound then released; for programs that need a fixed
/// port on their command line, like Prometheus).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// True when `bin` is on the PATH; otherwise prints the loud skip line CI greps for.
pub fn have_binary(bin: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()));
    if !found {
        eprintln!("SKIPPED {test}: `{bin}` is not installed (apt-get install prometheus; .ci/run does)");
    }
    found
}

/// A running Prometheus on 127.0.0.1; killed on drop.
pub struct Prometheus {
    child: Option<Child>,
    pub addr: String,
    log: PathBuf,
}

impl Prometheus {
    /// Starts `prometheus` with `config` (YAML) and its TSDB in `storage`, and waits
    /// for `/-/ready`.
    pub fn start(work: &Path, config: &str, storage: &Path) -> Self {
        Self::start_at(work, config, storage, free_port())
    }

    /// Like `start`, on a given port (when the config must name it).
    pub fn start_at(work: &Path, config: &str, storage: &Path, port: u16) -> Self {
        let config_path = work.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = work.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn prometheus");
        let p = Self { child: Some(child), addr: format!("127.0.0.1:{port}"), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if agent().get(&p.url("/-/ready")).call().is_ok_and(|r| r.status() == 200) {
                return p;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus not ready: {}", p.log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

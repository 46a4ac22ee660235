//! The receiver of `bench forward`: Debian's VictoriaMetrics as a child process on
//! 127.0.0.1 (killed on drop), its count of the samples it holds, and CPU time from
//! `/proc` (cycle counters are not available on every VM).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// VictoriaMetrics as a child process, killed on drop.
pub struct Receiver {
    child: Child,
    pub port: u16,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    /// Starts `bin` on a free port with its data in `data`, and waits for `/health`.
    pub fn start(bin: &Path, data: &Path) -> Result<Receiver, Box<dyn std::error::Error>> {
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

    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// CPU seconds the receiver used so far.
    pub fn cpu_seconds(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|s| stat_cpu_seconds(&s))
            .unwrap_or(0.0)
    }

    /// Samples the receiver holds (after flushing its buffers), through its query API.
    pub fn samples_held(&self, hours: u64) -> Option<u64> {
        get(self.port, "/internal/force_flush")?;
        let q = format!("sum(count_over_time({{__name__=~\".%2B\"}}[{}h]))", hours + 1);
        let q = q.replace('{', "%7B").replace('}', "%7D").replace('"', "%22");
        let body = get(self.port, &format!("/api/v1/query?query={q}"))?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse::<f64>().ok().map(|x| x as u64)
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30))).build().into();
    agent.get(format!("http://127.0.0.1:{port}{path}")).call().ok()?.body_mut().read_to_string().ok()
}

/// CPU seconds (user + system) in a `/proc/.../stat` line: fields 14 and 15, in ticks
/// of 1/100 s (Linux's USER_HZ).
fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    let after_comm = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU seconds used so far by this process's threads whose name starts with `prefix`
/// (of those still running).
pub fn threads_cpu_seconds(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    tasks
        .filter_map(Result::ok)
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix)))
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|s| stat_cpu_seconds(&s))
        .sum()
}

/// CPU seconds used so far by this whole process.
pub fn self_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| stat_cpu_seconds(&s)).unwrap_or(0.0)
}

/// CPU seconds the whole machine spent busy so far (every process; user, nice, system,
/// irq, softirq, steal), from the first line of `/proc/stat`.
pub fn machine_busy_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return 0.0 };
    let Some(line) = stat.lines().next() else { return 0.0 };
    // cpu user nice system idle iowait irq softirq steal ...
    let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let busy: u64 = [0usize, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    busy as f64 / 100.0
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

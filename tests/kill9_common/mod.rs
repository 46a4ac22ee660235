//! Running this test binary as a child and killing it with SIGKILL: the crash tests'
//! shared mechanics. The child prints `START ...` once it has opened its directory,
//! `ACK <n>` after each acknowledged batch, optionally `PHASE <name>` as it moves through
//! its work, and `ERR ...` on a failure.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

/// xorshift64: kill delays reproducible from a printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The seed in `env`, or one from the clock.
pub fn seed(env: &str) -> u64 {
    std::env::var(env).ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    })
}

/// What a killed child said and how it ended.
#[derive(Debug)]
pub struct Heard {
    pub last_ack: Option<u64>,
    pub started: bool,
    /// The last `PHASE` it announced (`open` before any).
    pub phase: String,
    pub errors: Vec<String>,
    /// Still running when the kill was sent (it did not stop by itself).
    pub still_running: bool,
    pub status: ExitStatus,
}

impl Heard {
    /// Killed by the SIGKILL, with no failure of its own.
    pub fn killed_cleanly(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.still_running && self.errors.is_empty() && self.status.signal() == Some(libc::SIGKILL)
    }
}

/// Runs test `test_name` of this binary as a child with `env` set to `dir`, and kills it
/// (SIGKILL) `delay` after it printed `START`, or after the spawn with `from_spawn` (to
/// land inside recovery).
pub fn run_and_kill(test_name: &str, env: &str, dir: &Path, stderr: Stdio, delay: Duration, from_spawn: bool) -> Heard {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, dir)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let (mut last_ack, mut started, mut phase, mut errors) = (None::<u64>, false, "open".to_string(), Vec::new());
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("ACK ") {
                last_ack = n.trim().parse().ok().or(last_ack);
            } else if let Some(p) = line.split("PHASE ").nth(1) {
                phase = p.trim().to_string();
            } else if line.contains("START ") {
                // libtest prints "test <name> ... " without a newline first.
                started = true;
                let _ = started_tx.send(());
            } else if line.contains("panicked") || line.starts_with("ERR") {
                errors.push(line);
            }
        }
        (last_ack, started, phase, errors)
    });
    if !from_spawn {
        let _ = started_rx.recv_timeout(Duration::from_secs(30));
    }
    std::thread::sleep(delay);
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let (last_ack, started, phase, errors) = reader.join().unwrap();
    Heard { last_ack, started, phase, errors, still_running, status }
}

/// The body of a crash test: in the child (`env` set) run `child` on the directory it
/// names, printing `ERR` and exiting 3 if it fails; otherwise run `parent`.
pub fn child_or_parent(env: &str, child: fn(&Path) -> Result<(), Box<dyn std::error::Error>>, parent: fn()) {
    match std::env::var_os(env) {
        Some(dir) => {
            if let Err(e) = child(Path::new(&dir)) {
                println!("ERR {e}");
                std::process::exit(3);
            }
        }
        None => parent(),
    }
}

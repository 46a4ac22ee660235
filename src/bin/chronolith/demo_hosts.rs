//! Host metrics that look like a real fleet's, for `chronolith demo`: web, database and
//! cache servers in four regions, each with ten series (CPU, I/O wait, load, memory, free
//! disk, network and disk counters, HTTP requests by code). Load follows the local time
//! of day in each region; databases run a nightly batch job; one region has a half-hour
//! incident of HTTP 500s in the afternoon (UTC). Values are rounded as exporters report
//! them (percent to 2 decimals, bytes and counters whole). Deterministic per seed.

use crate::devops::Rng;
use chronolith::Labels;

pub const REGIONS: [(&str, f64); 4] = [("eu-west", 0.0), ("us-east", -5.0), ("us-west", -8.0), ("ap-south", 5.5)];
pub const ROLES: [&str; 3] = ["web", "db", "cache"];
/// Series per host, in the order `Host::sample` fills them.
pub const SERIES_PER_HOST: usize = 10;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const HOUR_MS: i64 = 3_600_000;

/// The region where the afternoon incident happens, and when (UTC hours).
pub const INCIDENT: (&str, f64, f64) = ("us-east", 15.0, 15.5);

#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    region: usize,
    role: usize,
    /// A per-host shift of the daily curve, hours.
    phase_h: f64,
    /// Slowly wandering noise added to the load (AR(1)).
    wander: f64,
    counters: [f64; 5],
    disk_free: f64,
    mem_base: f64,
}

impl Host {
    pub fn fleet(n: usize, seed: u64) -> Vec<Host> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|i| {
                // 60 % web, 20 % db, 20 % cache; any two hosts include a web server.
                let role = match i % 5 {
                    1 => 1,
                    2 => 2,
                    _ => 0,
                };
                let mut u = || rng.below(1_000_000) as f64 / 1e6;
                Host {
                    name: format!("host-{i:03}"),
                    region: i % REGIONS.len(),
                    role,
                    phase_h: u() * 1.5 - 0.75,
                    wander: 0.0,
                    counters: [u() * 1e12, u() * 1e12, u() * 1e11, (u() * 1e9).floor(), (u() * 1e6).floor()],
                    disk_free: (150.0 + u() * 200.0) * GIB,
                    mem_base: match role {
                        1 => 40.0 + u() * 16.0,
                        2 => 24.0 + u() * 8.0,
                        _ => 3.0 + u() * 2.0,
                    } * GIB,
                }
            })
            .collect()
    }

    pub fn labels(&self) -> Result<Vec<Labels>, chronolith::Error> {
        let base = [("host", self.name.as_str()), ("region", REGIONS[self.region].0), ("role", ROLES[self.role])];
        let with = |extra: Option<(&'static str, &'static str)>| base.iter().copied().chain(extra);
        let mut out = Vec::with_capacity(SERIES_PER_HOST);
        for name in [
            "node_cpu_busy_percent",
            "node_cpu_iowait_percent",
            "node_load1",
            "node_memory_used_bytes",
            "node_filesystem_free_bytes",
            "node_network_receive_bytes_total",
            "node_network_transmit_bytes_total",
            "node_disk_written_bytes_total",
        ] {
            out.push(Labels::metric(name, with(None))?);
        }
        out.push(Labels::metric("http_requests_total", with(Some(("code", "200"))))?);
        out.push(Labels::metric("http_requests_total", with(Some(("code", "500"))))?);
        Ok(out)
    }

    /// Continues series `slot` from a value an earlier run stored (counters and free
    /// disk carry state from one sample to the next; the rest do not).
    pub fn resume(&mut self, slot: usize, value: f64) {
        match slot {
            4 => self.disk_free = value,
            5..=9 => self.counters[slot - 5] = value,
            _ => {}
        }
    }

    /// The next sample of each series at `t_ms`, `dt_s` after the previous one.
    pub fn sample(&mut self, t_ms: i64, dt_s: f64, rng: &mut Rng, out: &mut [f64; SERIES_PER_HOST]) {
        let mut noise = || (rng.below(2_000_001) as f64 / 1e6) - 1.0; // uniform in [-1, 1]
        let utc_h = t_ms.rem_euclid(24 * HOUR_MS) as f64 / HOUR_MS as f64;
        let local_h = utc_h + REGIONS[self.region].1 + self.phase_h;
        // 0 at 04:00 local, 1 at 16:00 local.
        let day = 0.5 - 0.5 * (std::f64::consts::TAU * (local_h - 4.0) / 24.0).cos();
        self.wander = 0.995 * self.wander + 0.01 * noise();
        let load = (day + self.wander + 0.02 * noise()).clamp(0.0, 1.2);
        let batch_job = self.role == 1 && (2.0..3.0).contains(&utc_h.rem_euclid(24.0));
        let incident = REGIONS[self.region].0 == INCIDENT.0 && (INCIDENT.1..INCIDENT.2).contains(&utc_h);

        let (cpu, iowait, rx, tx, disk, req) = match (self.role, batch_job) {
            (1, true) => (85.0, 18.0, 5e6, 2e6, 120e6, 1.0),
            (1, false) => (20.0 + 35.0 * load, 1.5 + 4.0 * load, 6e6 * load, 9e6 * load, 25e6 * load, 1.0),
            (2, _) => (6.0 + 18.0 * load, 0.3, 60e6 * load, 90e6 * load, 1e6, 1.0),
            _ => (8.0 + 62.0 * load, 0.8 + 1.0 * load, 15e6 * load, 40e6 * load, 2e6, 30.0 + 420.0 * load),
        };
        let pct = |v: f64| (v.clamp(0.0, 100.0) * 100.0).round() / 100.0;
        let cpu = pct(cpu + 3.0 * noise());
        out[0] = cpu;
        out[1] = pct(iowait * (1.0 + 0.3 * noise()));
        out[2] = ((cpu / 100.0 * 8.0 * (1.0 + 0.15 * noise())).max(0.0) * 100.0).round() / 100.0;
        let mem = self.mem_base * (1.0 + 0.15 * load + 0.01 * noise());
        out[3] = (mem / 4096.0).round() * 4096.0;
        // Disk fills with what is written and logs; a nightly rotation at midnight frees some.
        if utc_h < dt_s / 3600.0 {
            self.disk_free += 12.0 * GIB;
        }
        self.disk_free = (self.disk_free - disk * 0.02 * dt_s).max(GIB);
        out[4] = (self.disk_free / 4096.0).round() * 4096.0;
        let err_ratio = if incident && self.role == 0 { 0.1 } else { 0.0005 };
        let rates = [rx, tx, disk, req * (1.0 - err_ratio), req * err_ratio];
        for (i, rate) in rates.into_iter().enumerate() {
            self.counters[i] += (rate * dt_s * (1.0 + 0.1 * noise())).max(0.0).round();
            out[5 + i] = self.counters[i];
        }
    }
}

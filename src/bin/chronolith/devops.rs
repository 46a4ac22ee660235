//! A TSBS "cpu-only"-like data generator with the value model of
//! `shared/bench/gen_devops.py`: per host 10 CPU gauges doing a random walk with uniform
//! ±1.00 steps reflected into [0, 100] and kept at 2 decimals, plus optional integer
//! counters; TSBS host labels; one sample every interval. Deterministic per seed.
//!
//! The walk is kept in integer hundredths, so every value is exactly the double that
//! `"43.27".parse()` gives, as with the Python generator's `round(v, 2)`.

use chronolith::Labels;

pub const CPU_FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];
const COUNTER_FIELDS: [&str; 8] = [
    "context_switches_total",
    "interrupts_total",
    "net_bytes_recv_total",
    "net_bytes_sent_total",
    "disk_reads_total",
    "disk_writes_total",
    "forks_total",
    "page_faults_total",
];
const REGIONS: [(&str, &[&str]); 9] = [
    ("ap-northeast-1", &["ap-northeast-1a", "ap-northeast-1c"]),
    ("ap-southeast-1", &["ap-southeast-1a", "ap-southeast-1b"]),
    ("ap-southeast-2", &["ap-southeast-2a", "ap-southeast-2b"]),
    ("eu-central-1", &["eu-central-1a", "eu-central-1b"]),
    ("eu-west-1", &["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("sa-east-1", &["sa-east-1a", "sa-east-1b", "sa-east-1c"]),
    ("us-east-1", &["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"]),
    ("us-west-1", &["us-west-1a", "us-west-1b"]),
    ("us-west-2", &["us-west-2a", "us-west-2b", "us-west-2c"]),
];
const OSES: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCHS: [&str; 2] = ["x64", "x86"];
const TEAMS: [&str; 4] = ["SF", "NYC", "LON", "CHI"];
const ENVS: [&str; 3] = ["production", "staging", "test"];

/// xorshift64*: fast, deterministic, good enough for synthetic metrics.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// One generated series and its walk state.
#[derive(Clone, Debug)]
pub struct SeriesGen {
    pub labels: Labels,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Value in hundredths, 0..=10_000.
    Gauge {
        hundredths: i64,
    },
    Counter {
        value: u64,
        rate: u64,
    },
}

impl SeriesGen {
    /// The next value of this series.
    #[inline]
    pub fn next(&mut self, rng: &mut Rng) -> f64 {
        match &mut self.kind {
            Kind::Gauge { hundredths } => {
                let mut h = *hundredths + rng.below(201) as i64 - 100;
                if h < 0 {
                    h = -h;
                } else if h > 10_000 {
                    h = 20_000 - h;
                }
                *hundredths = h;
                h as f64 / 100.0
            }
            Kind::Counter { value, rate } => {
                *value += *rate / 2 + rng.below(*rate * 2 - *rate / 2);
                *value as f64
            }
        }
    }
}

/// The series of `hosts` hosts: 10 gauges and `counters` counters each, host-major.
pub fn series(hosts: usize, counters: usize, seed: u64) -> Result<Vec<SeriesGen>, chronolith::Error> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(hosts * (CPU_FIELDS.len() + counters));
    for h in 0..hosts {
        let (region, dcs) = REGIONS[rng.below(REGIONS.len() as u64) as usize];
        let tags = [
            ("hostname", format!("host_{h}")),
            ("region", region.to_string()),
            ("datacenter", rng.pick(dcs).to_string()),
            ("rack", rng.below(100).to_string()),
            ("os", rng.pick(&OSES).to_string()),
            ("arch", rng.pick(&ARCHS).to_string()),
            ("team", rng.pick(&TEAMS).to_string()),
            ("service", rng.below(20).to_string()),
            ("service_version", rng.below(2).to_string()),
            ("service_environment", rng.pick(&ENVS).to_string()),
        ];
        for f in CPU_FIELDS {
            let labels = Labels::metric(&format!("cpu_{f}"), tags.iter().cloned())?;
            out.push(SeriesGen { labels, kind: Kind::Gauge { hundredths: rng.below(10_001) as i64 } });
        }
        for f in COUNTER_FIELDS.iter().take(counters) {
            let labels = Labels::metric(&format!("node_{f}"), tags.iter().cloned())?;
            let value = 1_000_000 + rng.below(999_000_000);
            out.push(SeriesGen { labels, kind: Kind::Counter { value, rate: 10 + rng.below(4990) } });
        }
    }
    Ok(out)
}

/// Start of the data set: 2024-01-01T00:00:00Z, as in the Python generator.
pub const START_MS: i64 = 1_704_067_200_000;

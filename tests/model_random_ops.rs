//! Random operation sequences (append with out-of-order samples, duplicates, conflicts,
//! too-old samples and unknown refs; flush; seal; close or drop and reopen; select with
//! random matchers and ranges) checked against a plain `BTreeMap` model that implements
//! the documented accept/reject rules.
//!
//! `CHRONOLITH_MODEL_SEEDS=N` runs N seeds per test (default 30 and 10),
//! `CHRONOLITH_MODEL_SEED=S` runs only seed S, `CHRONOLITH_MODEL_OPS=N` sets the sequence length.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chronolith::{Batch, Db, Durability, Labels, MatchOp, Matcher, Options, RejectReason, SeriesId};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const PARTITION_MS: i64 = 60_000;
const WINDOW_MS: i64 = 10_000;
const START_T: i64 = 1_000_000;
const SERIES: usize = 8;

/// xorshift64*: small, seeded, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03 | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Inclusive range.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct SeriesDef {
    labels: Labels,
    text: String,
    metric: String,
    host: String,
    dc: String,
}

fn universe() -> Vec<SeriesDef> {
    (0..SERIES)
        .map(|i| {
            let metric = format!("m{}", i % 2);
            let host = format!("h{}", i / 2);
            let dc = ["east", "west", ""][i % 3].to_string();
            let labels = Labels::metric(&metric, [("host", host.clone()), ("dc", dc.clone())]).unwrap();
            SeriesDef { text: labels.to_string(), labels, metric, host, dc }
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Labels(usize),
    Ref(usize),
    Unknown(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Stored,
    Duplicate,
    Rejected(RejectReason),
}

#[derive(Default, Debug, PartialEq, Eq)]
struct Counts {
    stored: u64,
    duplicates: u64,
    out_of_bounds: u64,
    conflicts: u64,
    unknown: u64,
}

#[derive(Default)]
struct Model {
    data: BTreeMap<(usize, i64), u64>,
    /// Newest stored timestamp overall.
    max_t: Option<i64>,
    /// Nothing older than this is accepted (raised by a full seal).
    sealed_until: Option<i64>,
    refs: Vec<Option<SeriesId>>,
    /// Since the last open.
    counts: Counts,
}

impl Model {
    fn apply(&mut self, batch: &[(Target, i64, f64)]) -> Vec<Fate> {
        // The window floor is taken once per batch, from the newest sample before it.
        let floor = self.max_t.map_or(i64::MIN, |m| m - WINDOW_MS).max(self.sealed_until.unwrap_or(i64::MIN));
        let mut newest = self.max_t;
        let mut fates = Vec::with_capacity(batch.len());
        for &(target, t, v) in batch {
            let s = match target {
                Target::Labels(s) | Target::Ref(s) => s,
                Target::Unknown(_) => {
                    self.counts.unknown += 1;
                    fates.push(Fate::Rejected(RejectReason::UnknownSeries));
                    continue;
                }
            };
            let fate = if t < floor {
                self.counts.out_of_bounds += 1;
                Fate::Rejected(RejectReason::OutOfBounds)
            } else if let Some(&bits) = self.data.get(&(s, t)) {
                if bits == v.to_bits() {
                    self.counts.duplicates += 1;
                    Fate::Duplicate
                } else {
                    self.counts.conflicts += 1;
                    Fate::Rejected(RejectReason::DuplicateTimestamp)
                }
            } else {
                self.data.insert((s, t), v.to_bits());
                newest = Some(newest.map_or(t, |n| n.max(t)));
                self.counts.stored += 1;
                Fate::Stored
            };
            fates.push(fate);
        }
        self.max_t = newest;
        fates
    }

    fn seal(&mut self) {
        if let Some(m) = self.max_t {
            self.sealed_until = Some(self.sealed_until.map_or(m + 1, |s| s.max(m + 1)));
        }
    }

    fn select(&self, u: &[SeriesDef], ms: &[ModelMatcher], start: i64, end: i64) -> Dump {
        let mut out = Dump::new();
        for (s, def) in u.iter().enumerate() {
            if self.refs[s].is_none() || !ms.iter().all(|m| m.matches(def)) {
                continue;
            }
            let v: Vec<(i64, u64)> = self.data.range((s, start)..=(s, end)).map(|(&(_, t), &b)| (t, b)).collect();
            if !v.is_empty() {
                out.insert(def.text.clone(), v);
            }
        }
        out
    }
}

type Dump = BTreeMap<String, Vec<(i64, u64)>>;

/// A matcher plus the model's own evaluation of it (regexes are literal alternations).
#[derive(Debug)]
struct ModelMatcher {
    name: &'static str,
    op: MatchOp,
    value: String,
}

impl ModelMatcher {
    fn matches(&self, def: &SeriesDef) -> bool {
        let v = match self.name {
            "__name__" => def.metric.as_str(),
            "host" => def.host.as_str(),
            "dc" => def.dc.as_str(),
            _ => "",
        };
        let in_set = || self.value.split('|').any(|x| x == v);
        match self.op {
            MatchOp::Equal => v == self.value,
            MatchOp::NotEqual => v != self.value,
            MatchOp::RegexMatch => in_set(),
            MatchOp::RegexNoMatch => !in_set(),
        }
    }

    fn to_matcher(&self) -> Matcher {
        Matcher::new(self.name, self.op, self.value.clone()).unwrap()
    }
}

fn random_matchers(rng: &mut Rng) -> Vec<ModelMatcher> {
    let n = rng.below(3);
    let mut out = Vec::new();
    for _ in 0..n {
        let m = match rng.below(8) {
            0 => ModelMatcher { name: "__name__", op: MatchOp::Equal, value: format!("m{}", rng.below(3)) },
            1 => ModelMatcher { name: "host", op: MatchOp::Equal, value: format!("h{}", rng.below(5)) },
            2 => ModelMatcher { name: "host", op: MatchOp::NotEqual, value: format!("h{}", rng.below(5)) },
            3 | 4 => {
                let op = if rng.chance(50) { MatchOp::RegexMatch } else { MatchOp::RegexNoMatch };
                let alts: Vec<String> = (0..1 + rng.below(3)).map(|_| format!("h{}", rng.below(5))).collect();
                ModelMatcher { name: "host", op, value: alts.join("|") }
            }
            5 => ModelMatcher {
                name: "dc",
                op: MatchOp::Equal,
                value: ["east", "west", ""][rng.below(3) as usize].into(),
            },
            6 => ModelMatcher { name: "dc", op: MatchOp::NotEqual, value: ["east", ""][rng.below(2) as usize].into() },
            _ => ModelMatcher { name: "dc", op: MatchOp::RegexMatch, value: "east|west".into() },
        };
        out.push(m);
    }
    out
}

fn random_value(rng: &mut Rng) -> f64 {
    match rng.below(10) {
        0 => {
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, f64::MAX, f64::from_bits(1)][rng.below(7) as usize]
        }
        1 | 2 => f64::from_bits(rng.next()),
        3 => rng.below(4) as f64,
        _ => rng.below(100_000) as f64 / 100.0,
    }
}

fn engine_dump(db: &Db, ms: &[Matcher], start: i64, end: i64) -> Result<Dump, String> {
    let mut out = Dump::new();
    for s in db.select(ms, start, end) {
        let s = s.map_err(|e| format!("select failed: {e}"))?;
        out.insert(s.labels.to_string(), s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect());
    }
    Ok(out)
}

fn first_difference(want: &Dump, got: &Dump) -> String {
    for (k, w) in want {
        match got.get(k) {
            None => return format!("series {k} missing ({} samples expected)", w.len()),
            Some(g) if g != w => {
                let i = w.iter().zip(g).position(|(a, b)| a != b).unwrap_or(w.len().min(g.len()));
                return format!(
                    "series {k}: {} samples expected, {} got; first difference at {i}: want {:?} got {:?}",
                    w.len(),
                    g.len(),
                    w.get(i),
                    g.get(i)
                );
            }
            _ => {}
        }
    }
    match got.keys().find(|k| !want.contains_key(*k)) {
        Some(k) => format!("unexpected series {k}"),
        None => "no difference".into(),
    }
}

struct Run {
    seed: u64,
    ops: usize,
    durability: Durability,
}

fn options(durability: Durability) -> Options {
    Options {
        partition_ms: PARTITION_MS,
        ooo_window_ms: WINDOW_MS,
        durability,
        wal_segment_bytes_max: 64 * 1024,
        ..Options::default()
    }
}

fn run(cfg: &Run, log: &mut String) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut rng = Rng::new(cfg.seed);
    let u = universe();
    let open = || Db::open(dir.path(), options(cfg.durability)).map_err(|e| format!("open: {e}"));
    let mut db = Some(open()?);
    let mut model = Model { refs: vec![None; SERIES], ..Model::default() };
    let mut batch = Batch::new();
    let mut entries: Vec<(Target, i64, f64)> = Vec::new();

    for op in 0..cfg.ops {
        let d = db.as_ref().ok_or("no db")?;
        let dice = rng.below(100);
        if dice < 60 {
            // Append a batch.
            entries.clear();
            let base = model.max_t.unwrap_or(START_T);
            for _ in 0..1 + rng.below(16) {
                let mut s = rng.below(SERIES as u64) as usize;
                let mut v = random_value(&mut rng);
                let t = match rng.below(100) {
                    0..=44 => base + rng.range(1, 2_500),
                    45..=64 => base - rng.range(0, WINDOW_MS),
                    65..=71 => base - rng.range(WINDOW_MS - 5, 3 * WINDOW_MS),
                    72..=87 if !model.data.is_empty() => {
                        // Re-send a stored sample (mostly to its own series): exact
                        // duplicate or conflict, unless it fell out of the window.
                        let k = rng.below(model.data.len() as u64) as usize;
                        let (&(ks, t), &bits) = model.data.iter().nth(k).ok_or("nth")?;
                        if rng.chance(75) {
                            s = ks;
                        }
                        if rng.chance(60) {
                            v = f64::from_bits(bits);
                        }
                        t
                    }
                    _ => base + rng.range(-300, 300),
                };
                let target = if rng.chance(3) {
                    Target::Unknown(1_000 + rng.below(10))
                } else if model.refs[s].is_some() && rng.chance(60) {
                    Target::Ref(s)
                } else {
                    Target::Labels(s)
                };
                entries.push((target, t, v));
            }
            batch.clear();
            for &(target, t, v) in &entries {
                match target {
                    Target::Labels(s) => batch.add_labels(u[s].labels.clone(), t, v),
                    Target::Ref(s) => batch.add(model.refs[s].ok_or("ref")?, t, v),
                    Target::Unknown(id) => batch.add(SeriesId(id), t, v),
                }
            }
            let _ = writeln!(log, "op {op}: append {entries:?}");
            let fates = model.apply(&entries);
            let rep = d.append(&batch).map_err(|e| format!("op {op}: append failed: {e}"))?;
            let mut got = vec![None; entries.len()];
            for r in &rep.rejected {
                got[r.index] = Some(Fate::Rejected(r.reason));
            }
            let want_rejected: Vec<(usize, Fate)> = fates
                .iter()
                .enumerate()
                .filter(|(_, f)| matches!(f, Fate::Rejected(_)))
                .map(|(i, f)| (i, *f))
                .collect();
            let got_rejected: Vec<(usize, Fate)> =
                got.iter().enumerate().filter_map(|(i, f)| f.map(|f| (i, f))).collect();
            if want_rejected != got_rejected {
                return Err(format!("op {op}: rejections differ: want {want_rejected:?} got {got_rejected:?}"));
            }
            let stored = fates.iter().filter(|f| **f == Fate::Stored).count();
            let dups = fates.iter().filter(|f| **f == Fate::Duplicate).count();
            if (rep.stored, rep.duplicates) != (stored, dups) {
                return Err(format!(
                    "op {op}: stored/duplicates want {stored}/{dups} got {}/{}",
                    rep.stored, rep.duplicates
                ));
            }
            for &(i, id) in &rep.series {
                let Target::Labels(s) = entries[i].0 else {
                    return Err(format!("op {op}: ref reported for entry {i}"));
                };
                if *model.refs[s].get_or_insert(id) != id {
                    return Err(format!("op {op}: series {s} got ref {id}, had {:?}", model.refs[s]));
                }
            }
            let st = d.stats().engine;
            let c = &model.counts;
            let got_counts = Counts {
                stored: st.samples_appended,
                duplicates: st.duplicates_dropped,
                out_of_bounds: st.rejected.out_of_bounds,
                conflicts: st.rejected.duplicate_timestamp,
                unknown: st.rejected.unknown_series,
            };
            if got_counts != *c {
                return Err(format!("op {op}: stats want {c:?} got {got_counts:?}"));
            }
        } else if dice < 65 {
            let _ = writeln!(log, "op {op}: flush");
            d.flush().map_err(|e| format!("op {op}: flush: {e}"))?;
        } else if dice < 71 {
            let _ = writeln!(log, "op {op}: seal");
            d.seal().map_err(|e| format!("op {op}: seal: {e}"))?;
            model.seal();
        } else if dice < 77 {
            let close = rng.chance(50);
            let _ = writeln!(log, "op {op}: reopen (close: {close})");
            let d = db.take().ok_or("no db")?;
            if close {
                d.close().map_err(|e| format!("op {op}: close: {e}"))?;
            } else {
                drop(d);
            }
            db = Some(open().map_err(|e| format!("op {op}: {e}"))?);
            model.counts = Counts::default();
            let d = db.as_ref().ok_or("no db")?;
            let want = model.select(&u, &[], i64::MIN, i64::MAX);
            let got = engine_dump(d, &[], i64::MIN, i64::MAX).map_err(|e| format!("op {op}: {e}"))?;
            if want != got {
                return Err(format!("op {op}: after reopen: {}", first_difference(&want, &got)));
            }
            let series = model.refs.iter().filter(|r| r.is_some()).count() as u64;
            if d.stats().engine.series != series {
                return Err(format!("op {op}: {} series after reopen, want {series}", d.stats().engine.series));
            }
        } else {
            let ms = random_matchers(&mut rng);
            let (start, end) = if rng.chance(20) {
                (i64::MIN, i64::MAX)
            } else {
                let hi = model.max_t.unwrap_or(START_T) + 1_000;
                let a = rng.range(START_T - 5_000, hi);
                let b = rng.range(START_T - 5_000, hi);
                (a.min(b), a.max(b))
            };
            let _ = writeln!(log, "op {op}: select {ms:?} [{start}, {end}]");
            let matchers: Vec<Matcher> = ms.iter().map(ModelMatcher::to_matcher).collect();
            let want = model.select(&u, &ms, start, end);
            let got = engine_dump(d, &matchers, start, end).map_err(|e| format!("op {op}: {e}"))?;
            if want != got {
                return Err(format!("op {op}: select {ms:?} [{start}, {end}]: {}", first_difference(&want, &got)));
            }
        }
    }
    // Finally everything, then once more after a clean close.
    let d = db.take().ok_or("no db")?;
    let want = model.select(&u, &[], i64::MIN, i64::MAX);
    let got = engine_dump(&d, &[], i64::MIN, i64::MAX)?;
    if want != got {
        return Err(format!("at the end: {}", first_difference(&want, &got)));
    }
    d.close().map_err(|e| format!("close: {e}"))?;
    let d = open()?;
    let got = engine_dump(&d, &[], i64::MIN, i64::MAX)?;
    if want != got {
        return Err(format!("after the final reopen: {}", first_difference(&want, &got)));
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn run_seeds(first_seed: u64, default_seeds: u64, durability_of: impl Fn(u64) -> Durability) {
    let seeds: Vec<u64> = match env_u64("CHRONOLITH_MODEL_SEED") {
        Some(s) => vec![s],
        None => (first_seed..first_seed + env_u64("CHRONOLITH_MODEL_SEEDS").unwrap_or(default_seeds)).collect(),
    };
    let ops = env_u64("CHRONOLITH_MODEL_OPS").unwrap_or(200) as usize;
    for seed in seeds {
        let cfg = Run { seed, ops, durability: durability_of(seed) };
        let mut log = String::new();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&cfg, &mut log)));
        let failure = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(p) => format!(
                "panicked: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or(p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            ),
        };
        let tail: Vec<&str> = log.lines().rev().take(12).collect();
        panic!(
            "model mismatch with seed {seed} ({:?}, {ops} ops): {failure}\nlast ops, newest first:\n{}\nreproduce: CHRONOLITH_MODEL_SEED={seed} cargo test -p chronolith --test model_random_ops",
            cfg.durability,
            tail.join("\n")
        );
    }
}

#[test]
fn random_ops_match_the_model_without_fsync() {
    run_seeds(1, 30, |seed| if seed % 3 == 0 { Durability::Periodic { interval_ms: 5 } } else { Durability::Never });
}

#[test]
fn random_ops_match_the_model_with_fsync_per_append() {
    run_seeds(1_000_001, 10, |_| Durability::Always);
}

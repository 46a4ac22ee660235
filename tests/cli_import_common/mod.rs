//! Helpers shared by the `chronolith import` tests: run the binary, read back what a
//! data directory holds, and write generated input files.
#![allow(dead_code)]

use chronolith::{Db, MatchOp, Matcher, Options};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_chronolith");

pub type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;
/// Series (as `name{a="x", ...}`) → samples.
pub type Series = BTreeMap<String, Vec<(i64, f64)>>;

pub fn import(data: &Path, args: &[&str], files: &[&Path]) -> std::io::Result<Output> {
    Command::new(BIN).args(["import", "--data-dir"]).arg(data).args(args).args(files).output()
}

/// Every series with its samples, read through the library.
pub fn contents(data: &Path) -> Res<Series> {
    let db = Db::open(data, Options { ooo_window_ms: 365 * 86_400_000, ..Options::default() })?;
    let mut out = BTreeMap::new();
    for s in db.select(&[Matcher::new("__name__", MatchOp::RegexMatch, ".+")?], i64::MIN, i64::MAX) {
        let s = s?;
        out.insert(s.labels.to_string(), s.samples.iter().map(|x| (x.t, x.v)).collect());
    }
    db.close()?;
    Ok(out)
}

pub fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, text)?;
    Ok(p)
}

/// Asserts success and returns stderr (the summary and any line reports).
pub fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "import failed: {stderr}");
    stderr
}

/// A time-major OpenMetrics exposition of `series` series, `lines` sample lines long
/// (about 80 bytes each, so 100,000 lines span several of the importer's 1 MiB chunks).
/// Line `n` (1-based) is sample `n - 1`: series `(n - 1) % series`, time step
/// `(n - 1) / series` of 10 s from 2024-01-01, value `n`.
pub struct BigFile {
    pub series: usize,
    pub lines: Vec<String>,
}

pub const T0_S: i64 = 1_704_067_200;

impl BigFile {
    pub fn new(series: usize, lines: usize) -> Self {
        let lines = (1..=lines).map(|n| Self::sample_line(series, n)).collect();
        Self { series, lines }
    }

    pub fn sample_line(series: usize, n: usize) -> String {
        let (s, step) = ((n - 1) % series, (n - 1) / series);
        format!("big_total{{s=\"{s:03}\",pad=\"{}\"}} {n} {}", "p".repeat(30), T0_S + 10 * step as i64)
    }

    /// The key under which [`contents`] lists series `s`.
    pub fn series_name(s: usize) -> String {
        format!("big_total{{pad=\"{}\", s=\"{s:03}\"}}", "p".repeat(30))
    }

    /// `(timestamp ms, value)` of line `n`, as the import stores it.
    pub fn sample(&self, n: usize) -> (i64, f64) {
        ((T0_S + 10 * ((n - 1) / self.series) as i64) * 1000, n as f64)
    }

    /// 1-based number of the line holding byte `offset` of the file.
    pub fn line_at_byte(&self, offset: usize) -> usize {
        let mut end = 0;
        for (i, l) in self.lines.iter().enumerate() {
            end += l.len() + 1;
            if end > offset {
                return i + 1;
            }
        }
        self.lines.len()
    }

    pub fn text(&self) -> String {
        let mut t = self.lines.join("\n");
        t.push('\n');
        t
    }
}

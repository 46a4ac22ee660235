//! `chronolith demo` end to end on a tiny fleet: it ingests, seals, prints its tables,
//! writes a PNG chart and says what to try next; a second run in the same directory keeps
//! the data, adds only what is missing and continues every counter (no reset); the
//! result passes `chronolith check`.
#![cfg(feature = "cli")]

use chronolith::{Db, MatchOp, Matcher, Options};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_chronolith");
type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn demo(data: &Path, chart: &Path, until: &str) -> std::io::Result<Output> {
    Command::new(BIN)
        .args(["demo", "--hosts", "2", "--hours", "1", "--until", until, "--data-dir"])
        .arg(data)
        .arg("--chart")
        .arg(chart)
        .output()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stderr}");
    assert!(stderr.is_empty() || !stderr.contains("panicked"), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn demo_runs_twice_and_continues_its_data() -> Res {
    let tmp = tempfile::tempdir()?;
    let (data, chart) = (tmp.path().join("data"), tmp.path().join("demo.png"));

    let first = ok(&demo(&data, &chart, "2024-01-01T01:00:00Z")?);
    // 2 hosts x 10 series, one sample every 10 s from 00:00 to 01:00 inclusive.
    assert!(first.contains("Stored 7220 samples of 20 series"), "{first}");
    assert!(first.contains("compacted into"), "the demo runs a compaction pass:\n{first}");
    for needle in ["CPU busy", "columns: role", "Chart of", "chronolith query --data-dir", "inspect", "check", "serve"]
    {
        assert!(first.contains(needle), "{needle:?} missing from:\n{first}");
    }
    let png = std::fs::read(&chart)?;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} bytes", png.len());

    let second = ok(&demo(&data, &chart, "2024-01-01T01:30:00Z")?);
    assert!(second.contains("already holds data up to 2024-01-01T01:00:00Z"), "{second}");
    assert!(second.contains("Stored 3600 samples of 20 series"), "{second}");

    // Every counter only grows across the two runs.
    let db = Db::open(&data, Options::default())?;
    let mut counters = 0;
    for s in db.select(&[Matcher::new("__name__", MatchOp::RegexMatch, ".*_total")?], i64::MIN, i64::MAX) {
        let s = s?;
        assert_eq!(s.samples.len(), 361 + 180, "{}", s.labels);
        assert!(s.samples.windows(2).all(|w| w[1].v >= w[0].v), "{} resets", s.labels);
        counters += 1;
    }
    assert_eq!(counters, 2 * 5);
    db.close()?;

    let check = Command::new(BIN).args(["check", "--data-dir"]).arg(&data).output()?;
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    Ok(())
}

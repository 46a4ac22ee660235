//! `chronolith query`: a PromQL expression over a data directory, printed as a table,
//! CSV or Prometheus-API JSON, optionally drawn as a chart.

pub mod output;

use crate::plot;
use crate::timeparse::{self, format_duration, rfc3339, TimeArg};
use chronolith::query::{self, Limits, TimeRange};
use chronolith::{Db, Options};
use chronolith_engine::{BLOCKS_DIR, SAMPLE_LOG_DIR, SERIES_LOG_DIR};
use std::io::Write;
use std::path::PathBuf;

const HOUR_MS: i64 = 3_600_000;

#[derive(clap::Args, Debug)]
#[command(after_long_help = AFTER_HELP)]
pub struct QueryArgs {
    /// PromQL expression (the subset in query/README.md), e.g.
    /// 'avg by (role) (avg_over_time(node_cpu_busy_percent[5m]))'.
    promql: String,
    /// Data directory to read. It is opened as any program opens it (the WAL is replayed,
    /// nothing is appended); it must not be in use by another process such as `serve`.
    #[arg(long)]
    data_dir: PathBuf,
    /// First evaluation time: RFC 3339, Unix seconds, or relative to now (-1h, now-30m).
    /// Default: one hour before --end.
    #[arg(long, value_parser = timeparse::parse_time, allow_hyphen_values = true)]
    start: Option<TimeArg>,
    /// Last evaluation time, same forms. Default: the newest sample in the data directory
    /// when --start is absent too (so historical data shows its last hour), else now.
    #[arg(long, value_parser = timeparse::parse_time, allow_hyphen_values = true)]
    end: Option<TimeArg>,
    /// Resolution: a duration (15s, 5m, 1h) or seconds. Default: a round step giving
    /// about 60 rows for a table and 250 points for csv, json and --plot. Relative and
    /// defaulted times are rounded outward to whole steps so rows fall on round times;
    /// RFC 3339 and Unix-second times are used exactly.
    #[arg(long, value_parser = timeparse::parse_duration)]
    step: Option<i64>,
    /// Evaluate once, at --end (default: the newest sample), instead of over a range.
    #[arg(long, conflicts_with_all = ["start", "step", "plot"])]
    instant: bool,
    /// Output on stdout.
    #[arg(long, value_enum, default_value_t = output::Format::Table)]
    format: output::Format,
    /// Also draw the result as a line chart into this file (.png or .svg).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Most series shown as table columns and as chart lines (csv and json hold all).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    series_max: u32,
}

const AFTER_HELP: &str = r#"Examples (on the data `chronolith demo` writes to ./chronolith-data):
  chronolith query --data-dir ./chronolith-data 'max by (role) (max_over_time(node_cpu_busy_percent[5m]))'
  chronolith query --data-dir ./chronolith-data 'rate(node_network_receive_bytes_total{host="host-000"}[5m])' --start -6h --end now --step 1m --format csv
  chronolith query --data-dir ./chronolith-data 'sum by (region) (rate(http_requests_total[5m]))' --start -24h --plot requests.png
  chronolith query --data-dir ./chronolith-data 'sum(node_memory_used_bytes)' --instant --format json
  chronolith query --data-dir D 'up' --start 2024-01-01T00:00:00Z --end 2024-01-02T00:00:00Z --step 5m

Without --start and --end the query covers the last hour *of the data* (ending at the newest
sample held), not of the wall clock, so imported or generated history shows up. The range,
step and series count are printed on stderr; the result alone goes to stdout."#;

pub fn run(args: &QueryArgs) -> Result<(), Box<dyn std::error::Error>> {
    // A bad expression is reported before the data directory is even opened.
    query::parse_promql(&args.promql).map_err(|e| format!("bad PromQL {:?}: {e}", args.promql))?;
    if let Some(plot_path) = &args.plot {
        plot::Kind::of(plot_path)?;
    }
    if !args.data_dir.is_dir() {
        return Err(format!(
            "data directory {} does not exist (create one with `chronolith demo` or `chronolith import`)",
            args.data_dir.display()
        )
        .into());
    }
    // Opening creates the layout; a query must not leave it in some other directory.
    if ![BLOCKS_DIR, SAMPLE_LOG_DIR, SERIES_LOG_DIR].iter().any(|d| args.data_dir.join(d).is_dir()) {
        return Err(format!(
            "{} is not a Chronolith data directory (it has no {BLOCKS_DIR}/, {SAMPLE_LOG_DIR}/ or {SERIES_LOG_DIR}/)",
            args.data_dir.display()
        )
        .into());
    }
    let db = Db::open(&args.data_dir, Options::default()).map_err(|e| match e {
        chronolith::Error::Locked(_) => format!("{e}; while `chronolith serve` holds it, query its HTTP API instead"),
        e => format!("cannot open {}: {e}", args.data_dir.display()),
    })?;
    let newest = newest_sample_ms(&db);
    let window = resolve_window(args, newest, timeparse::now_ms())?;
    let result = db
        .query_promql(&args.promql, window.range, &Limits::default())
        .map_err(|e| format!("query {:?} failed: {e}", args.promql))?;
    db.close()?;

    eprintln!("{}, {} series", window.describe(args.instant), result.series.len());
    if let (true, Some(newest)) = (result.series.is_empty(), newest) {
        if newest < window.range.start {
            eprintln!("note: the newest sample is at {}, before this range", rfc3339(newest));
        }
    }
    let series_max = args.series_max as usize;
    let mut out = std::io::stdout().lock();
    match (args.format, args.instant) {
        (output::Format::Json, instant) => output::json(&mut out, &result.series, instant)?,
        (output::Format::Csv, _) => output::csv(&mut out, &result.series)?,
        (output::Format::Table, true) => output::instant_table(&mut out, &result.series, window.range.end)?,
        (output::Format::Table, false) => output::table(&mut out, &result.series, window.range.step, series_max)?,
        (output::Format::None, _) => {}
    }
    out.flush()?;
    if let Some(path) = &args.plot {
        let chart = plot::Chart {
            title: &args.promql,
            series: &result.series,
            start_ms: window.range.start,
            end_ms: window.range.end,
            series_max,
        };
        let drawn = plot::write(path, &chart)?;
        eprintln!("chart: {} ({})", path.display(), plot_note(drawn, result.series.len()));
    }
    Ok(())
}

fn plot_note(drawn: usize, total: usize) -> String {
    if drawn < total {
        format!("{drawn} of {total} series drawn, the first by labels; --series-max draws more, or aggregate")
    } else {
        format!("{drawn} series")
    }
}

/// The newest sample the engine holds (head or blocks), if any.
pub fn newest_sample_ms(db: &Db) -> Option<i64> {
    let blocks = db.engine().blocks().snapshot().iter().map(|b| b.meta().max_t).max();
    blocks.max(db.stats().engine.head_max_t)
}

/// The evaluation range and how it was chosen, for the stderr summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub range: TimeRange,
    defaulted: bool,
    auto_step: bool,
}

impl Window {
    fn describe(&self, instant: bool) -> String {
        let r = &self.range;
        if instant {
            let what = if self.defaulted { " (the newest sample)" } else { "" };
            return format!("instant query at {}{what}", rfc3339(r.end));
        }
        format!(
            "range {} to {}{}, step {}{}",
            rfc3339(r.start),
            rfc3339(r.end),
            if self.defaulted { " (the last hour of data)" } else { "" },
            format_duration(r.step),
            if self.auto_step { " (auto)" } else { "" }
        )
    }
}

/// Turns the time arguments into a range, as `--help` documents.
fn resolve_window(args: &QueryArgs, newest: Option<i64>, now: i64) -> Result<Window, String> {
    let defaulted = args.start.is_none() && args.end.is_none();
    let end = match (args.end, args.start) {
        (Some(e), _) => e.resolve(now),
        (None, Some(_)) => now,
        (None, None) => newest.unwrap_or(now),
    };
    if args.instant {
        return Ok(Window { range: TimeRange { start: end, end, step: 1 }, defaulted, auto_step: false });
    }
    let start = args.start.map_or(end.saturating_sub(HOUR_MS), |s| s.resolve(now));
    if end < start {
        return Err(format!("--end {} is before --start {}", rfc3339(end), rfc3339(start)));
    }
    let (step, auto) = match args.step {
        Some(step) if step <= 0 => return Err("--step must be positive".into()),
        Some(step) => (step, false),
        None => {
            let target = if args.format == output::Format::Table && args.plot.is_none() { 60 } else { 250 };
            (auto_step(end - start, target), true)
        }
    };
    // Times taken from the clock or the data are rounded outward to whole steps (as
    // Grafana aligns), so rows fall on round times; times typed as RFC 3339 or Unix
    // seconds are evaluated exactly, as the Prometheus API does. A defaulted start stays
    // an hour before the rounded end.
    let is_exact = |t: Option<TimeArg>| matches!(t, Some(TimeArg::Absolute(_)));
    let end = if is_exact(args.end) { end } else { (end + step - 1).div_euclid(step) * step };
    let start = match args.start {
        None if is_exact(args.end) => start,
        None => end - HOUR_MS,
        Some(TimeArg::Absolute(_)) => start,
        Some(TimeArg::FromNow(_)) => start.div_euclid(step) * step,
    };
    Ok(Window { range: TimeRange { start, end, step }, defaulted, auto_step: auto })
}

/// The smallest round step that splits `span_ms` into at most `points` steps.
pub fn auto_step(span_ms: i64, points: i64) -> i64 {
    const ROUND_MS: [i64; 20] = [
        1_000,
        2_000,
        5_000,
        10_000,
        15_000,
        30_000,
        60_000,
        120_000,
        300_000,
        600_000,
        900_000,
        1_800_000,
        3_600_000,
        7_200_000,
        10_800_000,
        21_600_000,
        43_200_000,
        86_400_000,
        172_800_000,
        604_800_000,
    ];
    let wanted = span_ms / points.max(1);
    ROUND_MS
        .iter()
        .copied()
        .find(|&s| s >= wanted)
        .unwrap_or_else(|| (wanted + 86_400_000 - 1) / 86_400_000 * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        q: QueryArgs,
    }

    fn args(extra: &[&str]) -> QueryArgs {
        let mut v = vec!["q", "--data-dir", "d", "up"];
        v.extend_from_slice(extra);
        match Cli::try_parse_from(v) {
            Ok(c) => c.q,
            Err(e) => panic!("{e}"),
        }
    }

    const NEWEST: i64 = 1_704_153_590_000; // 2024-01-01T23:59:50Z
    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn default_window_is_the_last_hour_of_data_on_round_steps() -> Result<(), String> {
        let w = resolve_window(&args(&[]), Some(NEWEST), NOW)?;
        assert!(w.defaulted && w.auto_step);
        assert_eq!(w.range.step, 60_000);
        assert_eq!(w.range.end, 1_704_153_600_000, "rounded up to the minute");
        assert_eq!(w.range.start, 1_704_153_600_000 - HOUR_MS);
        let w = resolve_window(&args(&["--format", "csv"]), Some(NEWEST), NOW)?;
        assert_eq!(w.range.step, 15_000);
        let w = resolve_window(&args(&[]), None, NOW)?;
        assert_eq!(w.range.end, NOW, "an empty store falls back to now");
        Ok(())
    }

    #[test]
    fn explicit_times_and_step_are_kept_exactly() -> Result<(), String> {
        let w = resolve_window(
            &args(&["--start", "1704067201", "--end", "1704067261", "--step", "7s"]),
            Some(NEWEST),
            NOW,
        )?;
        assert_eq!(w.range, TimeRange { start: 1_704_067_201_000, end: 1_704_067_261_000, step: 7_000 });
        let w = resolve_window(&args(&["--start", "-2h", "--step", "1m"]), Some(NEWEST), NOW + 1)?;
        assert_eq!((w.range.start, w.range.end), (NOW - 2 * HOUR_MS, NOW + 60_000), "--start alone ends now");
        let w = resolve_window(&args(&["--end", "now-1h", "--step", "1m"]), Some(NEWEST), NOW - 1)?;
        assert_eq!((w.range.start, w.range.end), (NOW - 2 * HOUR_MS, NOW - HOUR_MS), "relative times on whole steps");
        let e = resolve_window(&args(&["--start", "now", "--end", "-1h"]), Some(NEWEST), NOW);
        assert!(e.is_err_and(|e| e.contains("before")));
        let w = resolve_window(&args(&["--instant"]), Some(NEWEST), NOW)?;
        assert_eq!((w.range.start, w.range.end), (NEWEST, NEWEST));
        Ok(())
    }

    #[test]
    fn auto_steps_are_round() {
        assert_eq!(auto_step(HOUR_MS, 60), 60_000);
        assert_eq!(auto_step(HOUR_MS, 250), 15_000);
        assert_eq!(auto_step(24 * HOUR_MS, 60), 30 * 60_000);
        assert_eq!(auto_step(0, 60), 1_000);
        assert_eq!(auto_step(3650 * 24 * HOUR_MS, 60), 61 * 86_400_000);
    }
}

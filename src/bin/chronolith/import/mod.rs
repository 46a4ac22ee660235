//! `chronolith import`: streams OpenMetrics, Prometheus text, InfluxDB line protocol or
//! CSV files (optionally gzipped) into a data directory. Each file goes through a
//! pipeline (`pipeline.rs`): a reader cuts it into chunks of whole lines, parse workers
//! on every core turn them into batches, and one appender appends them in file order.

mod chunks;
mod csv;
mod local_keys;
mod pipeline;
mod worker;

use crate::util::DurabilityArg;
use chronolith::formats::influx;
use chronolith::{Db, Options};
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Import samples from files. Malformed lines are reported as FILE:LINE on stderr and
/// skipped (or stop the import with --strict); a summary follows. The database is opened
/// with an out-of-order window of --ooo-window-hours (default 2): time-ordered files
/// (exposition dumps, line protocol) are sealed into blocks as the import advances, so
/// memory stays bounded; a series-major file (one series after another) needs the window
/// to cover its whole time span. Samples older than the window relative to the newest
/// one, or inside already sealed time ranges, count as out-of-bounds.
#[derive(clap::Args, Debug)]
#[command(after_help = FORMATS_HELP)]
pub struct ImportArgs {
    #[arg(long)]
    data_dir: PathBuf,
    /// Input format; guessed per file when omitted (see below).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Timestamp unit of InfluxDB line protocol.
    #[arg(long, value_enum, default_value = "ns")]
    precision: influx::Precision,
    /// For CSV `series_id,timestamp_ms,value`: the JSON-lines file of label maps, one per
    /// series_id (the 0-based line number), as gen_devops.py writes `series.jsonl`.
    #[arg(long)]
    series: Option<PathBuf>,
    /// Stop at the first malformed line (exit 1); lines before it stay imported.
    #[arg(long)]
    strict: bool,
    /// How far behind the newest sample a sample may be and still be accepted. A
    /// partition is sealed (and its memory freed) once the newest sample is this far past
    /// its end, so a small window keeps big time-ordered imports in bounded memory; a
    /// series-major file needs a window covering its whole time span.
    #[arg(long, default_value_t = 2)]
    ooo_window_hours: i64,
    /// When an append counts as written. The database is closed (synced) at the end,
    /// also after an error, so `periodic` loses nothing an import has reported.
    #[arg(long, default_value_t = DurabilityArg::Periodic)]
    durability: DurabilityArg,
    /// At the end, seal the whole head (the open partition too) into blocks, which
    /// empties the WAL: for a one-off backfill, the store is then all compact blocks.
    /// Afterwards samples at or before the newest imported one are out of bounds, so a
    /// later import of overlapping data counts them so rather than as duplicates.
    #[arg(long)]
    seal: bool,
    /// Samples per append.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Parse threads (0: one per core). Appending stays on one thread, in file order.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Files to import; `.gz` files are decompressed on the fly.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

const FORMATS_HELP: &str = "\
Formats:
  openmetrics  name{l=\"v\"} value [timestamp in seconds, may be fractional]; stops at `# EOF`
  prometheus   name{l=\"v\"} value [timestamp in milliseconds]
  influx       measurement,tag=v field=1,other=2i [timestamp]  (--precision, default ns);
               each numeric field becomes the series measurement_field{tags}; strings skipped
  csv          series_id,timestamp_ms,value with --series FILE.jsonl, otherwise
               metric,timestamp_ms,value[,label=value...]; a header line is skipped
A sample without a timestamp gets the current time. Samples older than the newest one
by more than --ooo-window-hours, or inside an already sealed range, count as out of bounds.
The summary goes to stderr; a progress bar too, but only when stderr is a terminal.
Without --format the extension decides (.om .openmetrics, .prom, .lp .influx .line, .csv,
before any .gz); otherwise the first lines are sniffed: `# EOF`/`# UNIT` or second-resolution
timestamps mean openmetrics, `field=value` influx, commas only csv, else prometheus.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Openmetrics,
    Prometheus,
    Influx,
    Csv,
}

#[derive(Debug, Default)]
pub struct Summary {
    lines: u64,
    imported: u64,
    duplicates: u64,
    conflicts: u64,
    out_of_bounds: u64,
    invalid_labels: u64,
    /// New series refused past the database's series limit.
    series_limit: u64,
    malformed: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} lines: {} samples imported, {} duplicate ({} with a different value), {} out of bounds, {} invalid labels, {} malformed lines",
            self.lines,
            self.imported,
            self.duplicates + self.conflicts,
            self.conflicts,
            self.out_of_bounds,
            self.invalid_labels,
            self.malformed
        )?;
        if self.series_limit > 0 {
            write!(f, ", {} samples of new series past the series limit", self.series_limit)?;
        }
        Ok(())
    }
}

/// Malformed lines reported one by one; past this only the count grows.
pub const MALFORMED_REPORTED_MAX: u64 = 100;

pub fn run(args: &ImportArgs) -> Result<(), Box<dyn std::error::Error>> {
    let series = args.series.as_deref().map(csv::load_series).transpose()?;
    let opts = Options {
        ooo_window_ms: args.ooo_window_hours.max(0).saturating_mul(3_600_000),
        durability: args.durability.into(),
        // Smaller WAL segments than a server's: sealing during the import can then
        // delete the log of what it sealed, so the WAL ends at about the unsealed tail.
        wal_segment_bytes_max: IMPORT_WAL_SEGMENT_BYTES,
        ..Options::default()
    };
    let db = Db::open(&args.data_dir, opts)?;
    let total: u64 = args.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let progress = if std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    } else {
        ProgressBar::hidden()
    };
    let mut app = pipeline::Appender {
        db: &db,
        summary: Summary::default(),
        progress: progress.clone(),
        started: std::time::Instant::now(),
    };
    // Each file's pipeline appends everything parsed before a failure; close syncs it.
    let result = args.files.iter().try_for_each(|f| import_file(&mut app, args, series.as_ref(), f));
    progress.finish_and_clear();
    let summary = std::mem::take(&mut app.summary);
    // Only after a complete import: after a failure, a corrected re-run should find
    // what came before as duplicates, not as sealed (out-of-bounds) time.
    let sealed = if args.seal && result.is_ok() { db.seal().map(Some) } else { Ok(None) };
    let closed = db.close();
    eprintln!("{summary}");
    if let Ok(Some(blocks)) = sealed {
        eprintln!("sealed the head into {blocks} blocks");
    }
    if summary.out_of_bounds > 0 {
        eprintln!(
            "hint: {} samples fell behind the {} h out-of-order window or into sealed time; a series-major file needs --ooo-window-hours covering its whole span",
            summary.out_of_bounds, args.ooo_window_hours
        );
    }
    result?;
    sealed?;
    closed?;
    Ok(())
}

/// WAL segment size during an import (a server's default is 64 MiB).
const IMPORT_WAL_SEGMENT_BYTES: u64 = 8 << 20;

fn import_file(
    app: &mut pipeline::Appender<'_>,
    args: &ImportArgs,
    series: Option<&csv::SeriesTable>,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
    let raw = app.progress.wrap_read(file);
    let gz = path.extension().is_some_and(|e| e == "gz");
    let inner: Box<dyn Read + Send> = if gz { Box::new(flate2::read::MultiGzDecoder::new(raw)) } else { Box::new(raw) };
    let mut reader = BufReader::with_capacity(1 << 16, inner);
    let format = match args.format {
        Some(f) => f,
        None => guess_format(path, &mut reader).map_err(|e| format!("{name}: {e}"))?,
    };
    let known = worker::Known::default();
    let ctx = worker::Ctx {
        format,
        precision: args.precision,
        series_table: series,
        strict: args.strict,
        batch_max: args.batch,
        known: &known,
    };
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        n => n,
    };
    pipeline::import(app, &name, reader, &ctx, threads)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The format from the extension (before any `.gz`), else from the first lines, which
/// are only peeked at (they stay in the reader's buffer).
fn guess_format(path: &Path, reader: &mut impl BufRead) -> Result<Format, String> {
    let stem = if path.extension().is_some_and(|e| e == "gz") { path.with_extension("") } else { path.to_path_buf() };
    match stem.extension().and_then(|e| e.to_str()) {
        Some("om" | "openmetrics") => return Ok(Format::Openmetrics),
        Some("prom") => return Ok(Format::Prometheus),
        Some("lp" | "influx" | "line") => return Ok(Format::Influx),
        Some("csv") => return Ok(Format::Csv),
        _ => {}
    }
    let head = reader.fill_buf().map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines().filter(|l| !l.trim().is_empty());
    if head.lines().any(|l| l.trim() == "# EOF" || l.starts_with("# UNIT")) {
        return Ok(Format::Openmetrics);
    }
    let Some(first) = lines.find(|l| !l.starts_with('#')) else {
        return Err("cannot guess the format of an empty file; pass --format".into());
    };
    if !first.contains(' ') && first.split(',').count() >= 3 {
        return Ok(Format::Csv);
    }
    let body = if first.contains('}') { first.rsplit('}').next().unwrap_or_default() } else { first };
    let mut words = body.split_ascii_whitespace();
    if !first.contains('{') && words.nth(1).is_some_and(|w| w.contains('=')) {
        return Ok(Format::Influx);
    }
    let mut words = body.split_ascii_whitespace().skip(usize::from(!first.contains('{')));
    match words.nth(1) {
        // Milliseconds since 1973 have at least 12 digits; seconds until 5138 at most 11.
        Some(ts) if ts.contains('.') || ts.trim_start_matches('-').len() <= 11 => Ok(Format::Openmetrics),
        _ => Ok(Format::Prometheus),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(name: &str, text: &str) -> Result<Format, String> {
        guess_format(Path::new(name), &mut std::io::Cursor::new(text.as_bytes().to_vec()))
    }

    #[test]
    fn format_is_guessed_from_extension_then_content() {
        assert_eq!(guess("a.lp.gz", ""), Ok(Format::Influx));
        assert_eq!(guess("a.csv", ""), Ok(Format::Csv));
        assert_eq!(guess("a.txt", "# HELP x\nm{a=\"b\"} 1 1704067200\n"), Ok(Format::Openmetrics));
        assert_eq!(guess("a.txt", "m 1 1704067200.5\n"), Ok(Format::Openmetrics));
        assert_eq!(guess("a.txt", "m{a=\"b c\"} 1 1704067200000\n"), Ok(Format::Prometheus));
        assert_eq!(guess("a.txt", "m 1\n"), Ok(Format::Prometheus));
        assert_eq!(guess("a.txt", "m 1 2\n# EOF\n"), Ok(Format::Openmetrics));
        assert_eq!(guess("a.txt", "cpu,host=a usage=1 17\n"), Ok(Format::Influx));
        assert_eq!(guess("a.txt", "0,1704067200000,1.5\n"), Ok(Format::Csv));
        assert!(guess("a.txt", "").is_err());
    }

    /// Odd input is an error, never a panic (byte slicing at a char boundary).
    #[test]
    fn odd_csv_input_never_panics() {
        let table: csv::SeriesTable = vec![vec![("__name__".into(), "a".into())]];
        for line in ["\\", "é{ü=\"\\", ",,,", "\"", "a,é,∞", "0,1,2,3", "9,1,2"] {
            let _ = csv::parse_line(line, false, None);
            let _ = csv::parse_line(line, false, Some(&table));
        }
    }
}

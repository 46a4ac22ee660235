//! `chronolith import`: streams OpenMetrics, Prometheus text, InfluxDB line protocol or
//! CSV files (optionally gzipped) into a data directory, line by line, in batches.

mod csv;

use crate::util::DurabilityArg;
use chronolith::formats::{influx, known_series, prometheus};
pub use chronolith::formats::{parse_value, Line, Parsed};
use chronolith::{Batch, Db, Labels, Options, RejectReason, SeriesId};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
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
    /// Samples per append.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
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
struct Summary {
    lines: u64,
    imported: u64,
    duplicates: u64,
    conflicts: u64,
    out_of_bounds: u64,
    invalid_labels: u64,
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
        )
    }
}

/// Malformed lines reported one by one; past this only the count grows.
const MALFORMED_REPORTED_MAX: u64 = 100;

pub fn run(args: &ImportArgs) -> Result<(), Box<dyn std::error::Error>> {
    let series = args.series.as_deref().map(csv::load_series).transpose()?;
    let opts = Options {
        ooo_window_ms: args.ooo_window_hours.max(0).saturating_mul(3_600_000),
        durability: args.durability.into(),
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
    let mut imp = Importer {
        db: &db,
        args,
        series: series.as_ref(),
        batch: Batch::with_capacity(args.batch),
        pending: Vec::new(),
        refs: HashMap::new(),
        summary: Summary::default(),
        progress: progress.clone(),
        started: std::time::Instant::now(),
    };
    // Whatever happens, send what is batched and close, so every line read before a
    // failure is imported and synced.
    let mut result = args.files.iter().try_for_each(|f| imp.file(f));
    let sent = imp.send();
    if result.is_ok() {
        result = sent;
    }
    progress.finish_and_clear();
    let summary = std::mem::take(&mut imp.summary);
    drop(imp);
    let closed = db.close();
    eprintln!("{summary}");
    if summary.out_of_bounds > 0 {
        eprintln!(
            "hint: {} samples fell behind the {} h out-of-order window or into sealed time; a series-major file needs --ooo-window-hours covering its whole span",
            summary.out_of_bounds, args.ooo_window_hours
        );
    }
    result?;
    closed?;
    Ok(())
}

struct Importer<'a> {
    db: &'a Db,
    args: &'a ImportArgs,
    series: Option<&'a csv::SeriesTable>,
    batch: Batch,
    /// Batch entries named by labels: (index, key), to cache the refs the append reports.
    pending: Vec<(usize, String)>,
    refs: HashMap<String, SeriesId>,
    summary: Summary,
    progress: ProgressBar,
    started: std::time::Instant,
}

impl Importer<'_> {
    fn file(&mut self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| format!("{name}: {e}"))?;
        let raw = self.progress.wrap_read(file);
        let gz = path.extension().is_some_and(|e| e == "gz");
        let inner: Box<dyn Read> = if gz { Box::new(flate2::read::MultiGzDecoder::new(raw)) } else { Box::new(raw) };
        let mut reader = BufReader::with_capacity(1 << 16, inner);
        let format = match self.args.format {
            Some(f) => f,
            None => guess_format(path, &mut reader).map_err(|e| format!("{name}: {e}"))?,
        };
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf).map_err(|e| format!("{name}: {e}"))? == 0 {
                return Ok(());
            }
            line_no += 1;
            self.summary.lines += 1;
            if let Format::Openmetrics | Format::Prometheus = format {
                if let Some((id, ts, value)) = known_series::parse(&buf, format == Format::Openmetrics, &self.refs) {
                    self.batch.add(id, ts, value);
                    if self.batch.len() >= self.args.batch.max(1) {
                        self.send()?;
                    }
                    continue;
                }
            }
            let parsed = match std::str::from_utf8(&buf) {
                Ok(line) => {
                    let line = line.trim_end_matches(['\n', '\r']);
                    match format {
                        Format::Openmetrics => prometheus::parse_line(line, true),
                        Format::Prometheus => prometheus::parse_line(line, false),
                        Format::Influx => influx::parse_line(line, self.args.precision),
                        Format::Csv => csv::parse_line(line, line_no, self.series),
                    }
                }
                Err(_) => Err("not valid UTF-8".to_string()),
            };
            match parsed.and_then(|l| self.check_labels(l)) {
                Ok(Line::Samples(samples)) => {
                    for s in samples {
                        self.add(s)?;
                    }
                }
                Ok(Line::Skip) => {}
                Ok(Line::Eof) => return Ok(()),
                Err(e) => {
                    self.summary.malformed += 1;
                    if self.args.strict {
                        return Err(format!("{name}:{line_no}: {e} (stopping: --strict)").into());
                    }
                    if self.summary.malformed <= MALFORMED_REPORTED_MAX {
                        self.progress.suspend(|| eprintln!("{name}:{line_no}: {e}; line skipped"));
                    } else if self.summary.malformed == MALFORMED_REPORTED_MAX + 1 {
                        self.progress.suspend(|| eprintln!("(further malformed lines are counted, not shown)"));
                    }
                }
            }
        }
    }

    /// Label names and duplicates are checked here so a bad set is a malformed line
    /// with its position, not an anonymous rejection from the engine.
    fn check_labels(&self, line: Line) -> Result<Line, String> {
        if let Line::Samples(samples) = &line {
            for s in samples.iter().filter(|s| !self.refs.contains_key(&s.key)) {
                Labels::new(s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str()))).map_err(|e| e.to_string())?;
            }
        }
        Ok(line)
    }

    fn add(&mut self, s: Parsed) -> Result<(), Box<dyn std::error::Error>> {
        let ts = s.ts_ms.unwrap_or_else(now_ms);
        match self.refs.get(&s.key) {
            Some(&id) => self.batch.add(id, ts, s.value),
            None => {
                let labels = Labels::new(s.labels)?;
                self.pending.push((self.batch.len(), s.key));
                self.batch.add_labels(labels, ts, s.value);
            }
        }
        if self.batch.len() >= self.args.batch.max(1) {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut overloaded = 0;
        let report = loop {
            match self.db.append(&self.batch) {
                // The head waits for sealing; with a wide out-of-order window little can
                // be sealed, so give up after a while rather than spin forever.
                Err(chronolith::Error::Overloaded { .. }) if overloaded < 30 => overloaded += 1,
                Err(e @ chronolith::Error::Overloaded { .. }) => {
                    return Err(format!("{e}: head memory is full; retry with a smaller --ooo-window-hours").into())
                }
                other => break other?,
            }
        };
        let by_index: HashMap<usize, SeriesId> = report.series.iter().copied().collect();
        for (i, key) in self.pending.drain(..) {
            if let Some(&id) = by_index.get(&i) {
                self.refs.insert(key, id);
            }
        }
        let s = &mut self.summary;
        s.imported += report.stored as u64;
        s.duplicates += report.duplicates as u64;
        for r in &report.rejected {
            match r.reason {
                RejectReason::OutOfBounds => s.out_of_bounds += 1,
                RejectReason::DuplicateTimestamp => s.conflicts += 1,
                RejectReason::InvalidLabels | RejectReason::UnknownSeries | RejectReason::SeriesLimit => {
                    s.invalid_labels += 1
                }
            }
        }
        let rate = s.imported as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        self.progress.set_message(format!("{} samples, {:.0}/s", s.imported, rate));
        self.batch.clear();
        Ok(())
    }
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
            let _ = csv::parse_line(line, 2, None);
            let _ = csv::parse_line(line, 2, Some(&table));
        }
    }
}

//! `chronolith demo`: a day of realistic host metrics (see `demo_hosts.rs`) up to now,
//! through the embedded engine into `./chronolith-data`, sealed into blocks, queried
//! with PromQL, printed as tables and drawn as a PNG chart.
//!
//! Running it again keeps the data and adds what is missing up to now (at most
//! `--hours`), continuing every counter where it stopped; delete the directory to start
//! over. Data ending at the wall clock means relative times (`--start -6h`) work in the
//! `chronolith query` commands it suggests.

use crate::demo_hosts::{Host, INCIDENT, REGIONS, SERIES_PER_HOST};
use crate::devops::Rng;
use crate::plot;
use crate::query_cmd::{auto_step, newest_sample_ms, output};
use crate::timeparse::{format_duration, now_ms, rfc3339, TimeArg};
use crate::util::dir_bytes;
use chronolith::query::{Limits, TimeRange};
use chronolith::{Batch, Db, Matcher, Options, SeriesId};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where the data goes (created if missing; kept and topped up if it exists).
    #[arg(long, default_value = "./chronolith-data")]
    data_dir: PathBuf,
    /// Hosts in the fleet (10 series each).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    hosts: u32,
    /// Hours of history to generate, ending now.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=24 * 366))]
    hours: u32,
    /// Where the PNG chart goes.
    #[arg(long, default_value = "./chronolith-demo.png")]
    chart: PathBuf,
    /// Generate up to this time instead of now (tests use it to be deterministic).
    #[arg(long, hide = true, value_parser = crate::timeparse::parse_time, allow_hyphen_values = true)]
    until: Option<TimeArg>,
}

const INTERVAL_MS: i64 = 10_000;
const HOUR_MS: i64 = 3_600_000;
const BATCH: usize = 10_000;
const SEED: u64 = 42;

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

pub fn run(args: &DemoArgs) -> Res {
    let db = Db::open(&args.data_dir, Options::default())?;
    let now = args.until.map_or_else(now_ms, |u| u.resolve(now_ms())).div_euclid(INTERVAL_MS) * INTERVAL_MS;
    let history_start = now - i64::from(args.hours) * HOUR_MS;
    let newest = newest_sample_ms(&db);
    // Resume after what an earlier run stored (never before the sealed range).
    let start = newest.map_or(history_start, |n| history_start.max((n.div_euclid(INTERVAL_MS) + 1) * INTERVAL_MS));
    let points = if start > now { 0 } else { ((now - start) / INTERVAL_MS + 1) as usize };
    let mut hosts = Host::fleet(args.hosts as usize, SEED);
    let series = hosts.len() * SERIES_PER_HOST;
    let total = (series * points) as u64;
    match newest {
        Some(n) if start > history_start => println!(
            "{} already holds data up to {}: keeping it and adding the {} since then ({total} samples).",
            args.data_dir.display(),
            rfc3339(n),
            format_duration(now - n)
        ),
        _ => println!(
            "Generating {} h of host metrics up to {}: {} hosts (web, db, cache in 4 regions) x {SERIES_PER_HOST} series, one sample every 10 s ({total} samples).",
            args.hours,
            rfc3339(now),
            args.hosts
        ),
    }
    println!(
        "Ingesting into {} through the embedded API, batches of {BATCH}, every batch fsynced.",
        args.data_dir.display()
    );
    if newest.is_some() && points > 0 {
        resume(&db, &mut hosts, start)?;
    }
    let started = Instant::now();
    let stored = ingest(&db, &mut hosts, start, points, total)?;
    let ingest_s = started.elapsed().as_secs_f64().max(1e-9);
    db.flush()?;
    db.seal()?;
    let sealed_blocks = db.stats().engine.blocks;
    // What the background worker would do within a minute: merge closed 6 h / 24 h
    // ranges, downsample data past 40 h into 5-minute rollups.
    let pass = db.compact();
    println!(
        "Stored {stored} samples of {series} series in {ingest_s:.2} s ({:.2} M samples/s); sealed into {sealed_blocks} block(s) (2-hour partitions), compacted into {} ({} merge(s), {} rollup block(s) built).",
        stored as f64 / ingest_s / 1e6,
        db.stats().engine.blocks,
        pass.merges,
        pass.downsamples
    );

    let end = newest_sample_ms(&db).unwrap_or(now);
    let span = i64::from(args.hours.min(24)) * HOUR_MS;
    let chart = summarise(&db, end, span, &args.chart)?;
    let st = db.stats().engine;
    db.close()?;
    let bytes = dir_bytes(&args.data_dir)?;
    println!(
        "\nThe store holds {} series and {} samples in {} blocks: {bytes} bytes on disk ({:.2} bytes/sample, WAL included).",
        st.series,
        st.block_samples,
        st.blocks,
        bytes as f64 / st.block_samples.max(1) as f64
    );
    next_steps(&args.data_dir, &chart);
    Ok(())
}

/// Restores counters and free disk space from the stored data, so a second run
/// continues them instead of resetting them.
fn resume(db: &Db, hosts: &mut [Host], start: i64) -> Res {
    let index: HashMap<String, usize> = hosts.iter().enumerate().map(|(i, h)| (h.name.clone(), i)).collect();
    for (slot, labels) in Host::fleet(1, SEED)[0].labels()?.iter().enumerate() {
        let mut matchers = vec![Matcher::metric(labels.metric_name())];
        if !labels.get("code").is_empty() {
            matchers.push(Matcher::eq("code", labels.get("code")));
        }
        for s in db.select(&matchers, start - 24 * HOUR_MS, start) {
            let s = s?;
            if let (Some(&i), Some(last)) = (index.get(s.labels.get("host")), s.samples.last()) {
                hosts[i].resume(slot, last.v);
            }
        }
    }
    Ok(())
}

/// Appends `points` samples of every series from `start`, time-major, with a progress bar
/// on a terminal. Returns the samples stored.
fn ingest(db: &Db, hosts: &mut [Host], start: i64, points: usize, total: u64) -> Res<u64> {
    let bar = if std::io::stderr().is_terminal() && total > 0 {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("  [{bar:40}] {percent:>3}%  {human_pos}/{human_len} samples  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut rng = Rng::new(SEED ^ start as u64);
    let mut refs: Vec<SeriesId> = Vec::new();
    let mut batch = Batch::with_capacity(BATCH + SERIES_PER_HOST);
    let mut values = [0.0; SERIES_PER_HOST];
    let mut stored = 0u64;
    for p in 0..points {
        let t = start + p as i64 * INTERVAL_MS;
        for (h, host) in hosts.iter_mut().enumerate() {
            host.sample(t, INTERVAL_MS as f64 / 1e3, &mut rng, &mut values);
            if p == 0 {
                for (labels, v) in host.labels()?.into_iter().zip(values) {
                    batch.add_labels(labels, t, v);
                }
            } else {
                for (k, v) in values.iter().enumerate() {
                    batch.add(refs[h * SERIES_PER_HOST + k], t, *v);
                }
            }
        }
        // The first point names every series by labels; its report hands back the refs.
        if p == 0 || batch.len() >= BATCH || p + 1 == points {
            let report = append(db, &batch)?;
            if p == 0 {
                refs = vec![SeriesId(0); batch.len()];
                for (i, id) in report.series {
                    refs[i] = id;
                }
            }
            stored += (report.stored + report.duplicates) as u64;
            bar.inc(batch.len() as u64);
            bar.set_message(format!(
                "{:.2} M samples/s",
                bar.position() as f64 / started.elapsed().as_secs_f64() / 1e6
            ));
            batch.clear();
        }
    }
    bar.finish_and_clear();
    Ok(stored)
}

fn append(db: &Db, batch: &Batch) -> Res<chronolith::AppendReport> {
    loop {
        match db.append(batch) {
            // Back-pressure is an expected answer: let the sealer catch up and retry.
            Err(chronolith::Error::Overloaded { .. }) => std::thread::sleep(Duration::from_millis(10)),
            other => return Ok(other?),
        }
    }
}

/// Runs the demo's range aggregates over `span` ending at `end`, prints them as tables
/// and draws the first as a chart; returns the chart's path.
fn summarise(db: &Db, end: i64, span: i64, chart_path: &Path) -> Res<PathBuf> {
    let step = (span / 12).max(INTERVAL_MS);
    let table_end = end.div_euclid(step) * step;
    let range = TimeRange { start: table_end - span + step, end: table_end, step };
    let w = format_duration(step);
    let queries = [
        ("CPU busy, %, average per role", format!("avg by (role) (avg_over_time(node_cpu_busy_percent[{w}]))")),
        (
            "Network sent, MB/s per region",
            format!("sum by (region) (rate(node_network_transmit_bytes_total[{w}])) / 1e6"),
        ),
        (
            "HTTP 500 responses per region",
            format!("sum by (region) (increase(http_requests_total{{code=\"500\"}}[{w}]))"),
        ),
    ];
    let mut out = std::io::stdout().lock();
    for (title, q) in &queries {
        let r = db.query_promql(q, range, &Limits::default())?;
        println!("\n{title}, per {w} window ending at each time (UTC):\n  {q}");
        output::table(&mut out, &r.series, step, 8)?;
    }
    drop(out);
    println!(
        "(Databases run a batch job at 02:00 UTC; {} has an incident of HTTP 500s from {:02}:00 to {:02}:30 UTC.)",
        INCIDENT.0, INCIDENT.1 as u32, INCIDENT.2 as u32
    );

    let chart_step = auto_step(span, 200);
    let cw = format_duration(chart_step.max(60_000));
    let q = format!("avg by (region) (avg_over_time(node_cpu_busy_percent{{role=\"web\"}}[{cw}]))");
    let end = end.div_euclid(chart_step) * chart_step;
    let r = db.query_promql(&q, TimeRange { start: end - span, end, step: chart_step }, &Limits::default())?;
    plot::write(
        chart_path,
        &plot::Chart { title: &q, series: &r.series, start_ms: end - span, end_ms: end, series_max: REGIONS.len() },
    )?;
    println!("\nChart of {q} over the last {}: {}", format_duration(span), chart_path.display());
    Ok(chart_path.to_path_buf())
}

fn next_steps(data_dir: &Path, chart: &Path) {
    let d = data_dir.display();
    println!(
        "\nDone: generated host metrics, ingested them durably, sealed them into compressed blocks,\n\
         ran PromQL range aggregates and drew a chart.\n\
         \n  data:  {d}   (run `demo` again to top it up to now; delete it to start over)\n  chart: {}\n\
         \nTry next (from the repository, `cargo run --release --` stands for `chronolith`):\n\
         \x20 chronolith query --data-dir {d} 'sum by (region) (rate(http_requests_total{{code=\"500\"}}[5m]))' --start -12h --plot errors.png\n\
         \x20 chronolith query --data-dir {d} 'node_load1{{host=\"host-004\"}}' --start -30m --format csv\n\
         \x20 chronolith query --data-dir {d} 'topk(3, node_memory_used_bytes)' --instant --format json\n\
         \x20 chronolith inspect --data-dir {d}      # blocks, WAL, head\n\
         \x20 chronolith check --data-dir {d}        # verify every checksum\n\
         \x20 chronolith serve --data-dir {d}        # Prometheus API for Grafana on 127.0.0.1:9201",
        chart.display()
    );
}

/// `YYYY-MM-DD HH:MM` in UTC for a Unix time in milliseconds.
pub fn utc_minute(ms: i64) -> String {
    let (year, month, day, h, m, _, _) = crate::timeparse::civil(ms);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}")
}

#[cfg(test)]
mod tests {
    use super::utc_minute;

    #[test]
    fn utc_minute_formats_known_instants() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00");
        assert_eq!(utc_minute(crate::devops::START_MS), "2024-01-01 00:00");
        assert_eq!(utc_minute(951_782_400_000 + 90_061_000), "2000-03-01 01:01");
        assert_eq!(utc_minute(-60_000), "1969-12-31 23:59");
    }
}

//! `chronolith demo`: a day of realistic host metrics through the embedded engine into
//! `./chronolith-data`, sealed into blocks, read back and summarised. Running it again
//! appends the next day.

use crate::ingest::{self, Plan};
use crate::util::dir_bytes;
use chronolith::{Db, Matcher, Options};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    #[arg(long, default_value = "./chronolith-data")]
    data_dir: PathBuf,
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    #[arg(long, default_value_t = 24)]
    hours: u64,
}

const INTERVAL_MS: i64 = 10_000;
const HOUR_MS: i64 = 3_600_000;

pub fn run(args: &DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let db = Db::open(&args.data_dir, Options::default())?;
    let before = db.stats().engine;
    // Continue after whatever an earlier run left, so running twice adds a second day.
    let newest = before.head_max_t.max(before.sealed_until.map(|t| t - 1));
    let start_ms = newest.map_or(crate::devops::START_MS, |t| (t / HOUR_MS + 1) * HOUR_MS);
    let plan = Plan {
        hosts: args.hosts,
        counters: 0,
        start_ms,
        points: (args.hours as i64 * HOUR_MS / INTERVAL_MS) as usize,
        interval_ms: INTERVAL_MS,
        batch: 10_000,
        writers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        // The same hosts every run (labels come from the seed); values differ by day.
        seed: 42,
    };
    let total = (plan.hosts * 10 * plan.points) as u64;
    println!(
        "Ingesting {} hosts x 10 CPU gauges, {} h at 10 s ({total} samples) into {} (every batch fsynced)",
        plan.hosts,
        args.hours,
        args.data_dir.display()
    );
    let progress = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            if !std::io::stderr().is_terminal() {
                return;
            }
            while !done.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let n = progress.load(Relaxed);
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                eprint!(
                    "\r  {:>5.1}%  {n} samples  {:.1} M samples/s ",
                    100.0 * n as f64 / total as f64,
                    n as f64 / secs / 1e6
                );
            }
            eprintln!();
        });
        let r = ingest::run(&db, &plan, &progress);
        done.store(true, Relaxed);
        r
    })?;
    let ingest_s = started.elapsed().as_secs_f64();
    db.seal()?;
    println!(
        "Stored {} samples of {} series in {ingest_s:.2} s ({:.1} M samples/s), sealed into 2-hour blocks.",
        outcome.samples,
        outcome.series,
        outcome.samples as f64 / ingest_s / 1e6
    );

    // Read one series back and summarise it per 2 hours.
    let end = start_ms + plan.points as i64 * INTERVAL_MS - 1;
    let matchers = [Matcher::metric("cpu_usage_user"), Matcher::eq("hostname", "host_0")];
    println!("\ncpu_usage_user{{hostname=\"host_0\"}}, per 2 h window:");
    println!("  {:<17} {:>7} {:>8} {:>8} {:>8}", "window (UTC)", "samples", "min", "avg", "max");
    for series in db.select(&matchers, start_ms, end) {
        let series = series?;
        for w in series.samples.chunk_by(|a, b| a.t / (2 * HOUR_MS) == b.t / (2 * HOUR_MS)) {
            let (min, max) = w.iter().fold((f64::MAX, f64::MIN), |(lo, hi), s| (lo.min(s.v), hi.max(s.v)));
            let avg = w.iter().map(|s| s.v).sum::<f64>() / w.len() as f64;
            let t0 = w[0].t / (2 * HOUR_MS) * (2 * HOUR_MS);
            println!("  {:<17} {:>7} {min:>8.2} {avg:>8.2} {max:>8.2}", utc_minute(t0), w.len());
        }
    }
    let st = db.stats().engine;
    db.close()?;
    let bytes = dir_bytes(&args.data_dir)?;
    println!(
        "\nThe store holds {} series, {} sealed samples in {} blocks: {bytes} bytes on disk ({:.2} bytes/sample).",
        st.series,
        st.block_samples,
        st.blocks,
        bytes as f64 / st.block_samples.max(1) as f64
    );
    println!("Data directory: {}", args.data_dir.display());
    println!("Next: run this again to add another day, or `chronolith bench ingest --help`.");
    Ok(())
}

/// `YYYY-MM-DD HH:MM` in UTC for a Unix time in milliseconds (days to civil date after
/// Howard Hinnant's algorithm, to avoid a date crate for one table).
pub fn utc_minute(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
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

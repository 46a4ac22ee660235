//! The `chronolith` program.

mod bench;
mod bench_compaction;
#[cfg(feature = "forward")]
mod bench_forward;
mod bench_query;
mod check;
mod demo;
mod demo_hosts;
mod devops;
mod import;
mod ingest;
mod plot;
mod query_cmd;
mod timeparse;
mod util;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Chronolith: an append-only time-series storage engine.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A day of realistic host metrics into ./chronolith-data, sealed, queried and charted.
    Demo(demo::DemoArgs),
    /// Verify every checksum and structure of a data directory; exit 1 on damage.
    Check(check::CheckArgs),
    /// Describe a data directory: blocks, WAL, head.
    Inspect(check::InspectArgs),
    /// Evaluate PromQL over a data directory: table, CSV or JSON, and a PNG/SVG chart.
    Query(query_cmd::QueryArgs),
    /// Import OpenMetrics, Prometheus text, InfluxDB line protocol or CSV files (gzip ok).
    Import(import::ImportArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Ingest throughput, size on disk, memory and WAL replay speed of the write path.
    Ingest(bench::IngestArgs),
    /// WAL replay speed of an existing data directory.
    Replay(bench::ReplayArgs),
    /// Range-query latency over the sealed devops data set.
    Query(bench_query::QueryArgs),
    /// Merge and downsample throughput, bytes per tier, rollup query latency, drop time.
    Compaction(bench_compaction::CompactionArgs),
    /// Remote-write forwarding throughput to a local VictoriaMetrics, and its cost to ingest.
    #[cfg(feature = "forward")]
    Forward(bench_forward::ForwardArgs),
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Check(a) => match check::check(a) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Inspect(a) => check::inspect(a),
        Command::Import(a) => import::run(a),
        Command::Query(a) => query_cmd::run(a),
        Command::Bench(BenchCommand::Ingest(a)) => bench::ingest(a),
        Command::Bench(BenchCommand::Replay(a)) => bench::replay(a),
        Command::Bench(BenchCommand::Query(a)) => bench_query::run(a),
        Command::Bench(BenchCommand::Compaction(a)) => bench_compaction::run(a),
        #[cfg(feature = "forward")]
        Command::Bench(BenchCommand::Forward(a)) => bench_forward::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `chronolith inspect | head` would panic on the closed pipe;
/// a command-line tool should just stop, as `cat` does.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; setting a signal's
    // disposition to its default has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

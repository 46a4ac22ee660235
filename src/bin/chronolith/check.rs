//! `chronolith check` verifies every checksum without changing anything;
//! `chronolith inspect` describes what a data directory holds.

use crate::util::dir_bytes;
use chronolith::{Db, Options};
use chronolith_engine::block::{parse_block_dir_name, Block};
use chronolith_engine::{BLOCKS_DIR, SAMPLE_LOG_DIR, SERIES_LOG_DIR};
use chronolith_wal::SegmentHealth;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[arg(long)]
    data_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    #[arg(long)]
    data_dir: PathBuf,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

/// Reads every WAL frame and every block file, checking each checksum and structure.
/// Takes no lock and writes nothing, so it is safe beside a running process (which may
/// be mid-write: a torn tail there is reported, not counted as damage). Returns whether
/// everything checked out; the caller turns `false` into a non-zero exit.
pub fn check(args: &CheckArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let dir = &args.data_dir;
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()).into());
    }
    let mut damaged = 0usize;
    for log in [SERIES_LOG_DIR, SAMPLE_LOG_DIR] {
        let path = dir.join(log);
        if !path.is_dir() {
            continue;
        }
        for (id, health) in chronolith_wal::verify(&path)? {
            let seg = path.join(format!("{:020}.wal", id.0));
            match health {
                SegmentHealth::Clean { records } => println!("ok       {}  {records} records", seg.display()),
                SegmentHealth::TornTail { records, offset } => println!(
                    "torn     {}  {records} records, then a torn write at byte {offset} (cut on next open; never acknowledged)",
                    seg.display()
                ),
                SegmentHealth::Damaged { records, offset, reason } => {
                    damaged += 1;
                    println!("DAMAGED  {}  at byte {offset}: {reason} ({records} valid records before it)", seg.display());
                }
            }
        }
    }
    let blocks = dir.join(BLOCKS_DIR);
    for path in block_dirs(&blocks)? {
        match Block::open(&path, |_, _| {}).and_then(|b| b.verify().map(|n| (b, n))) {
            Ok((b, n)) => {
                println!("ok       {}  {} series, {n} samples", path.display(), b.meta().series);
            }
            Err(e) => {
                damaged += 1;
                println!("DAMAGED  {}  {e}", path.display());
            }
        }
    }
    if damaged == 0 {
        println!("\nAll checksums and structures verified.");
    } else {
        println!(
            "\n{damaged} damaged file(s). Open with RecoveryMode::Salvage to keep everything valid and move the damage to `damaged/`."
        );
    }
    Ok(damaged == 0)
}

fn block_dirs(blocks: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !blocks.is_dir() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(blocks)?
        .filter_map(Result::ok)
        .filter_map(|e| parse_block_dir_name(&e.file_name().to_string_lossy()).map(|s| (s, e.path())))
        .collect();
    out.sort();
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

/// Opens the database (replaying its WAL, as any open does) and describes it.
pub fn inspect(args: &InspectArgs) -> Result<(), Box<dyn std::error::Error>> {
    if !args.data_dir.is_dir() {
        return Err(format!("{} is not a directory", args.data_dir.display()).into());
    }
    let db = Db::open(&args.data_dir, Options::default())?;
    let st = db.stats().engine;
    let blocks: Vec<serde_json::Value> = db
        .engine()
        .blocks()
        .snapshot()
        .iter()
        .map(|b| {
            let m = b.meta();
            let bytes = b.disk_bytes();
            serde_json::json!({
                "dir": b.dir().file_name().map(|n| n.to_string_lossy().into_owned()),
                "min_t": m.min_t, "max_t": m.max_t,
                "resolution_ms": m.resolution_ms, "level": m.level,
                "series": m.series, "chunks": m.chunks, "samples": m.samples,
                "bytes": bytes, "bytes_per_sample": bytes as f64 / m.samples.max(1) as f64,
            })
        })
        .collect();
    let wal_bytes = dir_bytes(&args.data_dir.join(SAMPLE_LOG_DIR)).unwrap_or(0)
        + dir_bytes(&args.data_dir.join(SERIES_LOG_DIR)).unwrap_or(0);
    let report = serde_json::json!({
        "data_dir": args.data_dir.display().to_string(),
        "series": st.series,
        "blocks": blocks,
        "block_samples": st.block_samples,
        "block_bytes": st.block_bytes,
        "wal": { "bytes": wal_bytes, "segments": st.wal_segments },
        "head": {
            "series": st.head_series, "samples": st.head_samples, "bytes": st.head_bytes,
            "min_t": st.head_min_t, "max_t": st.head_max_t, "replayed_on_open": st.samples_replayed,
        },
        "sealed_until": st.sealed_until,
        "recovery": {
            "torn_tails": st.recovery.torn_tails, "moved_aside": st.recovery.moved_aside,
            "leftovers_removed": st.recovery.leftovers_removed,
        },
    });
    db.close()?;
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!("{}: {} series", args.data_dir.display(), st.series);
    println!(
        "\n{:<20} {:<5} {:<17} {:<17} {:>7} {:>11} {:>11} {:>8}",
        "block", "tier", "from (UTC)", "to (UTC)", "series", "samples", "bytes", "B/sample"
    );
    for b in &blocks {
        // Raw blocks by merge level (L0 = one sealed partition), rollups by resolution;
        // a rollup's "samples" are its buckets.
        let tier = match b["resolution_ms"].as_u64().unwrap_or(0) {
            0 => format!("L{}", b["level"].as_u64().unwrap_or(0)),
            r if r % 3_600_000 == 0 => format!("{}h", r / 3_600_000),
            r if r % 60_000 == 0 => format!("{}m", r / 60_000),
            r => format!("{}s", r / 1000),
        };
        println!(
            "{:<20} {:<5} {:<17} {:<17} {:>7} {:>11} {:>11} {:>8.3}",
            b["dir"].as_str().unwrap_or("?"),
            tier,
            crate::demo::utc_minute(b["min_t"].as_i64().unwrap_or(0)),
            crate::demo::utc_minute(b["max_t"].as_i64().unwrap_or(0)),
            b["series"].as_u64().unwrap_or(0),
            b["samples"].as_u64().unwrap_or(0),
            b["bytes"].as_u64().unwrap_or(0),
            b["bytes_per_sample"].as_f64().unwrap_or(0.0)
        );
    }
    let (mut raw, mut raw_bytes, mut buckets, mut rollup_bytes) = (0u64, 0u64, 0u64, 0u64);
    for b in &blocks {
        let (n, bytes) = (b["samples"].as_u64().unwrap_or(0), b["bytes"].as_u64().unwrap_or(0));
        if b["resolution_ms"].as_u64().unwrap_or(0) == 0 {
            (raw, raw_bytes) = (raw + n, raw_bytes + bytes);
        } else {
            (buckets, rollup_bytes) = (buckets + n, rollup_bytes + bytes);
        }
    }
    println!(
        "\nblocks: {raw} raw samples in {raw_bytes} bytes ({:.3} bytes/sample)",
        raw_bytes as f64 / raw.max(1) as f64
    );
    if buckets > 0 {
        println!("        {buckets} rollup buckets in {rollup_bytes} bytes");
    }
    println!("WAL:    {wal_bytes} bytes in {} sample segments", st.wal_segments);
    println!(
        "head:   {} series, {} samples, {} bytes in memory ({} replayed from the WAL on open)",
        st.head_series, st.head_samples, st.head_bytes, st.samples_replayed
    );
    Ok(())
}

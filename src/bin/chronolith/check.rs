//! `chronolith check` verifies every checksum without changing anything;
//! `chronolith inspect` describes what a data directory holds.

use crate::util::dir_bytes;
use chronolith::{Db, Options};
use chronolith_engine::block::{parse_block_dir_name, Block, BlockMeta};
use chronolith_engine::{BLOCKS_DIR, DAMAGED_DIR, SAMPLE_LOG_DIR, SERIES_LOG_DIR};
use chronolith_wal::SegmentHealth;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[arg(long)]
    data_dir: PathBuf,
    /// Print one JSON object (every finding with file, offset, length, detail) instead of lines.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    #[arg(long)]
    data_dir: PathBuf,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

/// One thing `check` found wrong.
struct Finding {
    /// `damaged`, `torn` (a torn WAL tail: a write cut short) or `quarantined` (kept in
    /// `damaged/` by an earlier salvage; not live data).
    kind: &'static str,
    file: PathBuf,
    offset: u64,
    len: u64,
    /// What was expected and what was found.
    detail: String,
    /// What the damaged part holds (what salvage would take out of the live data).
    affects: String,
}

/// Reads every WAL frame and every block file, checking each checksum and structure, and
/// reports every damaged part (file, offset, length, what was expected and found, what it
/// holds). Takes no lock and writes nothing, so it is safe beside a running process
/// (which may be mid-write: a torn tail there is reported, not counted as damage).
/// Returns whether everything checked out; the caller turns `false` into a non-zero exit.
pub fn check(args: &CheckArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let dir = &args.data_dir;
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()).into());
    }
    let mut findings = Vec::new();
    let mut ok = Vec::new();
    for log in [SERIES_LOG_DIR, SAMPLE_LOG_DIR] {
        let path = dir.join(log);
        if path.is_dir() {
            check_log(&path, &mut findings, &mut ok)?;
        }
    }
    for path in block_dirs(&dir.join(BLOCKS_DIR))? {
        check_block(&path, &mut findings, &mut ok);
    }
    for quarantine in
        [dir.join(DAMAGED_DIR), dir.join(SERIES_LOG_DIR).join(DAMAGED_DIR), dir.join(SAMPLE_LOG_DIR).join(DAMAGED_DIR)]
    {
        for e in std::fs::read_dir(&quarantine).into_iter().flatten().flatten() {
            let affects =
                "nothing live: kept by an earlier salvage for inspection; delete when no longer needed".into();
            findings.push(Finding {
                kind: "quarantined",
                file: e.path(),
                offset: 0,
                len: 0,
                detail: String::new(),
                affects,
            });
        }
    }
    let damaged: Vec<&Finding> = findings.iter().filter(|f| f.kind == "damaged").collect();
    let files: std::collections::BTreeSet<&Path> = damaged.iter().map(|f| f.file.as_path()).collect();
    if args.json {
        let list: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "kind": f.kind, "file": f.file.display().to_string(), "offset": f.offset,
                    "len": f.len, "detail": f.detail, "affects": f.affects,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "ok": damaged.is_empty(), "verified": ok, "findings": list }));
        return Ok(damaged.is_empty());
    }
    for line in &ok {
        println!("ok       {line}");
    }
    for f in &findings {
        let label = match f.kind {
            "damaged" => "DAMAGED ",
            "torn" => "torn    ",
            _ => "aside   ",
        };
        let len = if f.len > 0 { format!(", {} bytes", f.len) } else { String::new() };
        let at =
            if f.kind == "quarantined" { String::new() } else { format!(" at byte {}{len}: {}", f.offset, f.detail) };
        println!("{label} {}{at} -- {}", f.file.display(), f.affects);
    }
    if damaged.is_empty() {
        println!("\nAll checksums and structures verified.");
    } else {
        println!(
            "\n{} damaged file(s), {} damaged part(s). Opening (salvage, the default) keeps everything else and \
             moves the damaged parts to `damaged/`; RecoveryMode::TruncateTornTail refuses to open instead.",
            files.len(),
            damaged.len()
        );
    }
    Ok(damaged.is_empty())
}

fn check_log(path: &Path, findings: &mut Vec<Finding>, ok: &mut Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    for (id, health) in chronolith_wal::verify(path)? {
        let file = path.join(format!("{:020}.wal", id.0));
        match health {
            SegmentHealth::Clean { records } => ok.push(format!("{}  {records} records", file.display())),
            SegmentHealth::TornTail { records, offset } => {
                let len = std::fs::metadata(&file).map(|m| m.len().saturating_sub(offset)).unwrap_or(0);
                let affects =
                    format!("an unfinished write (never acknowledged); cut on next open, {records} records before it");
                let detail = "frames stop validating here and nothing after validates".into();
                findings.push(Finding { kind: "torn", file, offset, len, detail, affects });
            }
            SegmentHealth::Damaged { records, ranges } => {
                for r in ranges {
                    let affects =
                        format!("the records in these bytes ({records} valid records in the segment are kept)");
                    let (offset, len, detail) = (r.offset, r.len, r.reason);
                    findings.push(Finding { kind: "damaged", file: file.clone(), offset, len, detail, affects });
                }
            }
        }
    }
    Ok(())
}

fn check_block(path: &Path, findings: &mut Vec<Finding>, ok: &mut Vec<String>) {
    let mut labels = std::collections::HashMap::new();
    match Block::open_lenient(path, |id, l| {
        labels.insert(id, l);
    }) {
        Ok((b, file_damage)) => {
            let chunks = b.damaged_chunks(true);
            if file_damage.is_empty() && chunks.is_empty() {
                let m = b.meta();
                let what = if b.is_rollup() { "buckets" } else { "samples" };
                ok.push(format!("{}  {} series, {} {what}", path.display(), m.series, m.samples));
                return;
            }
            for c in file_damage.into_iter().chain(chunks) {
                let affects = match (c.series, c.chunk) {
                    (Some(id), Some(r)) => {
                        let l = labels.get(&id).map_or_else(|| format!("series {id}"), ToString::to_string);
                        let what = if b.is_rollup() { "buckets" } else { "samples" };
                        format!("one chunk: {} {what} of {l} in [{}, {}]", r.samples, r.min_t, r.max_t)
                    }
                    _ => "the chunks it cuts off (listed on their own)".into(),
                };
                findings.push(Finding {
                    kind: "damaged",
                    file: c.file,
                    offset: c.offset,
                    len: 0,
                    detail: c.detail,
                    affects,
                });
            }
        }
        Err(chronolith::Error::Corruption { path: file, offset, detail }) => {
            findings.push(Finding { kind: "damaged", file, offset, len: 0, detail, affects: block_contents(path) });
        }
        Err(e) => findings.push(Finding {
            kind: "damaged",
            file: path.to_path_buf(),
            offset: 0,
            len: 0,
            detail: e.to_string(),
            affects: block_contents(path),
        }),
    }
}

/// What a block holds, from its meta if that still reads (the whole block is affected).
fn block_contents(path: &Path) -> String {
    let meta = path.join("meta");
    match std::fs::read(&meta).ok().and_then(|b| BlockMeta::decode(&b, &meta).ok()) {
        Some(m) => {
            format!("the whole block: {} samples of {} series in [{}, {}]", m.samples, m.series, m.min_t, m.max_t)
        }
        None => "the whole block (its meta does not read, so what it holds is unknown)".into(),
    }
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
            "samples_dropped": st.recovery.samples_dropped,
            "damage": st.recovery.damage.iter().map(|d| serde_json::json!({
                "file": d.file.display().to_string(), "offset": d.offset, "len": d.len, "detail": d.detail,
                "torn_tail": d.torn_tail, "kept_at": d.kept_at.as_ref().map(|p| p.display().to_string()),
                "dropped": d.dropped,
            })).collect::<Vec<_>>(),
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

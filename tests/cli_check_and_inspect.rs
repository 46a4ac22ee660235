//! `chronolith check` verifies a data directory without changing it and exits 1 with the
//! damaged file named; `chronolith inspect --json` describes what the directory holds.
#![cfg(feature = "cli")]

use chronolith::{Batch, Db, Labels, Options};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_chronolith");

fn listing(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in walk(dir) {
        let len = std::fs::metadata(&e).map(|m| m.len()).unwrap_or(0);
        out.insert(e.strip_prefix(dir).unwrap_or(&e).display().to_string(), len);
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            v.extend(walk(&e.path()));
        } else {
            v.push(e.path());
        }
    }
    v
}

#[test]
fn check_passes_clean_data_fails_on_damage_and_changes_nothing() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opts = Options { partition_ms: 60_000, ooo_window_ms: 1_000, ..Options::default() };
    {
        let db = Db::open(dir.path(), opts)?;
        let mut b = Batch::new();
        for t in 0..300i64 {
            for h in ["a", "b"] {
                b.add_labels(Labels::metric("cpu", [("host", h)])?, t * 1_000, t as f64 * 0.25);
            }
        }
        db.append(&b)?;
        db.engine().seal_closed()?; // 4 closed minutes into blocks, the rest stays in the head
        db.close()?;
    }
    let before = listing(dir.path());
    let out = Command::new(BIN).args(["check", "--data-dir"]).arg(dir.path()).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("All checksums and structures verified"), "{stdout}");
    assert_eq!(listing(dir.path()), before, "check must not change the directory");

    let out = Command::new(BIN).args(["inspect", "--json", "--data-dir"]).arg(dir.path()).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["series"], 2);
    let blocks = v["blocks"].as_array().ok_or("blocks")?;
    assert_eq!(blocks.len(), 4);
    let sealed: u64 = blocks.iter().filter_map(|b| b["samples"].as_u64()).sum();
    let head = v["head"]["samples"].as_u64().ok_or("head samples")?;
    assert_eq!(sealed + head, 600, "every sample is in a block or the head");
    assert_eq!(v["head"]["replayed_on_open"].as_u64(), Some(head));

    // One flipped byte in a chunk: exit 1, the block named.
    let mut blocks_dirs: Vec<_> = std::fs::read_dir(dir.path().join("blocks"))?.flatten().map(|e| e.path()).collect();
    blocks_dirs.sort();
    let chunks = blocks_dirs[1].join("chunks");
    let mut bytes = std::fs::read(&chunks)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&chunks, bytes)?;
    let out = Command::new(BIN).args(["check", "--data-dir"]).arg(dir.path()).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("DAMAGED")).ok_or("no DAMAGED line")?;
    assert!(line.contains(&blocks_dirs[1].display().to_string()), "{line}");
    assert!(stdout.contains("1 damaged file"), "{stdout}");
    Ok(())
}

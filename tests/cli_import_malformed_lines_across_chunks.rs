//! A file several of the importer's chunks long, parsed in parallel: malformed lines at
//! chunk boundaries and in the middle are reported with their right line numbers, in
//! order, whatever the number of parse threads, and skipped without losing any other
//! line; with `--strict` the import stops there and keeps exactly the lines before it.
#![cfg(feature = "cli")]

#[path = "cli_import_common/mod.rs"]
mod common;

use common::{contents, import, ok, BigFile, Res};

const LINES: usize = 100_000;
const SERIES: usize = 40;

/// The line numbers to break: the first, around each MiB (where chunks are cut), one in
/// the middle, the last.
fn bad_lines(file: &BigFile) -> Vec<usize> {
    let mut bad = vec![1, LINES / 2, LINES];
    for mib in 1..=6 {
        let at = file.line_at_byte(mib << 20);
        bad.extend([at - 1, at, at + 1]);
    }
    bad.sort_unstable();
    bad.dedup();
    bad
}

#[test]
fn malformed_lines_are_reported_by_line_and_skipped_at_any_thread_count() -> Res {
    let tmp = tempfile::tempdir()?;
    let mut file = BigFile::new(SERIES, LINES);
    let text_bytes = file.text().len();
    assert!(text_bytes > (6 << 20) + 4096, "the file spans several chunks ({text_bytes} bytes)");
    let bad = bad_lines(&file);
    for &n in &bad {
        // An unterminated label value; the line stays about as long.
        file.lines[n - 1] = format!("big_total{{s=\"{n}}} {n} {}", common::T0_S);
    }
    let path = tmp.path().join("big.om");
    std::fs::write(&path, file.text())?;
    let expected: Vec<String> = bad.iter().map(|n| format!("{}:{n}: ", path.display())).collect();

    for threads in ["1", "2", "3"] {
        let data = tmp.path().join(format!("data{threads}"));
        let stderr = ok(&import(&data, &["--threads", threads], &[&path])?);
        let reported: Vec<String> = stderr
            .lines()
            .filter(|l| l.contains("; line skipped"))
            .map(|l| l[..l.find(": ").map_or(0, |i| i + 2)].to_string())
            .collect();
        assert_eq!(reported, expected, "threads {threads}: {stderr}");
        let summary = format!(
            "{LINES} lines: {} samples imported, 0 duplicate (0 with a different value), 0 out of bounds, 0 invalid labels, {} malformed lines",
            LINES - bad.len(),
            bad.len()
        );
        assert!(stderr.contains(&summary), "threads {threads}: {stderr}");

        let got = contents(&data)?;
        assert_eq!(got.len(), SERIES);
        let total: usize = got.values().map(Vec::len).sum();
        assert_eq!(total, LINES - bad.len());
        // Every good line is there, once, in its series, and no bad one.
        for n in 1..=LINES {
            let series = &got[&BigFile::series_name((n - 1) % SERIES)];
            let found = series.binary_search_by_key(&file.sample(n).0, |s| s.0).ok().map(|i| series[i]);
            if bad.contains(&n) {
                assert_eq!(found, None, "bad line {n} was not imported");
            } else {
                assert_eq!(found, Some(file.sample(n)), "line {n}");
            }
        }
    }
    Ok(())
}

#[test]
fn strict_stops_at_a_malformed_line_mid_file_and_keeps_every_line_before() -> Res {
    let tmp = tempfile::tempdir()?;
    let mut file = BigFile::new(SERIES, LINES);
    // Past the first few chunks, so later chunks are being parsed when it stops.
    let bad = file.line_at_byte(3 << 20) + 7;
    file.lines[bad - 1] = "big_total{s=\"x\"} not-a-number 1704067200".into();
    let path = tmp.path().join("big.om");
    std::fs::write(&path, file.text())?;
    let data = tmp.path().join("data");
    let out = import(&data, &["--strict"], &[&path])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{}:{bad}: bad value", path.display())), "{stderr}");
    assert!(stderr.contains(&format!("{bad} lines: {} samples imported", bad - 1)), "{stderr}");

    let got = contents(&data)?;
    let total: usize = got.values().map(Vec::len).sum();
    assert_eq!(total, bad - 1, "exactly the lines before the bad one");
    for n in [1, bad - 1] {
        let series = &got[&BigFile::series_name((n - 1) % SERIES)];
        assert!(series.contains(&file.sample(n)), "line {n} kept");
    }
    let newest = got.values().filter_map(|s| s.last()).map(|s| s.0).max();
    assert_eq!(newest, Some(file.sample(bad - 1).0), "nothing after the bad line");
    Ok(())
}

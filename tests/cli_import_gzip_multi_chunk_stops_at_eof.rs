//! A gzipped OpenMetrics file several chunks long with `# EOF` in the middle: what
//! comes before it is imported in full, what comes after (valid samples and garbage
//! alike) is neither imported nor counted.
#![cfg(feature = "cli")]

#[path = "cli_import_common/mod.rs"]
mod common;

use common::{contents, import, ok, BigFile, Res};
use std::io::Write;

#[test]
fn gzip_input_across_chunks_stops_at_eof() -> Res {
    const SERIES: usize = 25;
    let tmp = tempfile::tempdir()?;
    let mut file = BigFile::new(SERIES, 90_000);
    let eof = file.line_at_byte(4 << 20) + 3;
    file.lines[eof - 1] = "# EOF".into();
    file.lines[eof] = "garbage after the end {".into();
    let path = tmp.path().join("big.om.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path)?, flate2::Compression::fast());
    gz.write_all(file.text().as_bytes())?;
    gz.finish()?;

    let stderr = ok(&import(&tmp.path().join("data"), &[], &[&path])?);
    let summary = format!("{eof} lines: {} samples imported,", eof - 1);
    assert!(stderr.contains(&summary) && stderr.contains(" 0 malformed lines"), "{stderr}");
    let got = contents(&tmp.path().join("data"))?;
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), eof - 1);
    for n in 1..eof {
        let series = &got[&BigFile::series_name((n - 1) % SERIES)];
        assert_eq!(series[(n - 1) / SERIES], file.sample(n), "line {n}");
    }
    let newest = got.values().filter_map(|s| s.last()).map(|s| s.0).max();
    assert_eq!(newest, Some(file.sample(eof - 1).0), "nothing after # EOF");
    Ok(())
}

//! A gzipped OpenMetrics file several chunks long with `# EOF` in the middle: what
//! comes before it is imported in full, what comes after (valid samples and garbage
//! alike) is neither imported nor counted. A gzip stream cut short fails the import
//! with the file's name and keeps every line read before the damage.
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

#[test]
fn a_truncated_gzip_stream_fails_and_keeps_what_came_before() -> Res {
    const SERIES: usize = 25;
    let tmp = tempfile::tempdir()?;
    let file = BigFile::new(SERIES, 90_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(file.text().as_bytes())?;
    let bytes = gz.finish()?;
    let path = tmp.path().join("cut.om.gz");
    std::fs::write(&path, &bytes[..bytes.len() * 2 / 3])?;

    // What a decoder makes of the cut stream before it fails: the lines to keep.
    let mut decoded = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(&bytes[..bytes.len() * 2 / 3]);
    let mut buf = [0u8; 1 << 16];
    while let Ok(n @ 1..) = std::io::Read::read(&mut decoder, &mut buf) {
        decoded.extend_from_slice(&buf[..n]);
    }
    let whole_lines = decoded.iter().filter(|&&b| b == b'\n').count();

    let data = tmp.path().join("data");
    let out = import(&data, &[], &[&path])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("error: {}: ", path.display())), "{stderr}");
    let got = contents(&data)?;
    let kept: usize = got.values().map(Vec::len).sum();
    assert!(kept > 30_000, "the test cuts the stream well into the file: {kept}");
    assert_eq!(kept, whole_lines, "every whole line decoded before the damage is kept");
    assert!(stderr.contains(&format!("{kept} samples imported")), "{stderr}");
    // Exactly a prefix of the file: lines 1..=kept, each where it belongs.
    for n in 1..=kept {
        let series = &got[&BigFile::series_name((n - 1) % SERIES)];
        assert_eq!(series[(n - 1) / SERIES], file.sample(n), "line {n}");
    }
    Ok(())
}

//! `chronolith query` end to end through the built binary: table, CSV and Prometheus JSON
//! against known values, absolute, Unix-second and relative times, the default range (the
//! last hour of the data), charts that decode as PNG and parse as SVG, and clear non-zero
//! exits for bad PromQL, bad times and a missing data directory.
#![cfg(feature = "cli")]

use chronolith::{Batch, Db, Labels, Options};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_chronolith");
/// 2024-01-01T00:00:00Z.
const T0: i64 = 1_704_067_200_000;
const MINUTE: i64 = 60_000;

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// `temp{room="a"}` = i and `temp{room="b"}` = 100 + i at minute i, for minutes `0..n`
/// after `t0`.
fn write_rooms(dir: &Path, t0: i64, n: i64) -> Res {
    let db = Db::open(dir, Options::default())?;
    let mut batch = Batch::new();
    for i in 0..n {
        batch.add_labels(Labels::metric("temp", [("room", "a")])?, t0 + i * MINUTE, i as f64);
        batch.add_labels(Labels::metric("temp", [("room", "b")])?, t0 + i * MINUTE, 100.0 + i as f64);
    }
    let report = db.append(&batch)?;
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    db.close()?;
    Ok(())
}

fn query(data: &Path, args: &[&str]) -> std::io::Result<Output> {
    Command::new(BIN).args(["query", "--data-dir"]).arg(data).args(args).output()
}

/// Stdout of a successful run.
fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "query failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of a run that must fail cleanly.
fn fails(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure, got: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

const TEN_TO_TWENTY: [&str; 6] = ["--start", "2024-01-01T00:10:00Z", "--end", "2024-01-01T00:20:00Z", "--step", "5m"];

#[test]
fn json_is_the_prometheus_matrix_shape() -> Res {
    let tmp = tempfile::tempdir()?;
    write_rooms(tmp.path(), T0, 60)?;
    let out = ok(&query(tmp.path(), &[&["temp", "--format", "json"], &TEN_TO_TWENTY[..]].concat())?);
    assert!(out.starts_with(r#"{"status":"success","data":{"resultType":"matrix","result":["#), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let expected = serde_json::json!([
        { "metric": { "__name__": "temp", "room": "a" },
          "values": [[1_704_067_800, "10"], [1_704_068_100, "15"], [1_704_068_400, "20"]] },
        { "metric": { "__name__": "temp", "room": "b" },
          "values": [[1_704_067_800, "110"], [1_704_068_100, "115"], [1_704_068_400, "120"]] },
    ]);
    assert_eq!(v["data"]["result"], expected);
    Ok(())
}

#[test]
fn csv_has_a_header_and_one_row_per_point() -> Res {
    let tmp = tempfile::tempdir()?;
    write_rooms(tmp.path(), T0, 60)?;
    let out = ok(&query(tmp.path(), &[&["max_over_time(temp[10m])", "--format", "csv"], &TEN_TO_TWENTY[..]].concat())?);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "time,timestamp,room,value",
            "2024-01-01T00:10:00Z,1704067800,a,10",
            "2024-01-01T00:15:00Z,1704068100,a,15",
            "2024-01-01T00:20:00Z,1704068400,a,20",
            "2024-01-01T00:10:00Z,1704067800,b,110",
            "2024-01-01T00:15:00Z,1704068100,b,115",
            "2024-01-01T00:20:00Z,1704068400,b,120",
        ]
    );
    Ok(())
}

#[test]
fn table_is_aligned_with_a_column_per_series() -> Res {
    let tmp = tempfile::tempdir()?;
    write_rooms(tmp.path(), T0, 60)?;
    let out = ok(&query(tmp.path(), &[&["avg_over_time(temp[10m])"], &TEN_TO_TWENTY[..]].concat())?);
    // Windows are left-open: (00:00, 00:10] holds minutes 1..=10, average 5.5.
    let expected = "columns: room\n\n\
                    time (UTC)           a      b\n\
                    2024-01-01 00:10   5.5  105.5\n\
                    2024-01-01 00:15  10.5  110.5\n\
                    2024-01-01 00:20  15.5  115.5\n";
    assert_eq!(out, expected);

    // More series than --series-max: the first are shown, and the rest are counted.
    let out = ok(&query(tmp.path(), &[&["temp", "--series-max", "1"], &TEN_TO_TWENTY[..]].concat())?);
    assert!(out.contains("#1   temp{room=\"a\"}") && out.contains("showing 1 of 2 series"), "{out}");
    Ok(())
}

#[test]
fn without_times_it_shows_the_last_hour_of_the_data() -> Res {
    let tmp = tempfile::tempdir()?;
    write_rooms(tmp.path(), T0, 90)?; // 00:00 .. 01:29
    let out = query(tmp.path(), &["temp{room=\"a\"}", "--format", "csv"])?;
    let stdout = ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("range 2024-01-01T00:29:00Z to 2024-01-01T01:29:00Z (the last hour of data)"), "{stderr}");
    assert!(
        stdout.lines().nth(1).is_some_and(|l| l.starts_with("2024-01-01T00:29:00Z,1704068940,temp,a,29")),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("2024-01-01T01:29:00Z,1704072540,temp,a,89"), "{stdout}");
    // The default step gives about 250 points for csv (15 s over an hour).
    assert_eq!(stdout.lines().count(), 1 + 241);

    let out = ok(&query(tmp.path(), &["sum(temp)", "--instant"])?);
    assert!(out.contains(&format!("{}  {{}}", 89 + 189)), "{out}");
    Ok(())
}

#[test]
fn unix_seconds_and_relative_times() -> Res {
    let tmp = tempfile::tempdir()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let t0 = (now / MINUTE - 30) * MINUTE; // minutes 0..=30, the last one this minute
    write_rooms(tmp.path(), t0, 31)?;
    let out = ok(&query(
        tmp.path(),
        &["temp{room=\"a\"}", "--start", "-10m", "--end", "now", "--step", "1m", "--format", "json"],
    )?);
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let values = v["data"]["result"][0]["values"].as_array().ok_or("no values")?;
    // Relative times are rounded outward to whole steps: from the minute ten minutes ago
    // to the end of this minute.
    assert!((11..=12).contains(&values.len()), "{out}");
    assert!(values.iter().all(|v| v[0].as_i64().is_some_and(|t| t % 60 == 0)), "whole minutes: {out}");
    let last: f64 = values[values.len() - 1][1].as_str().ok_or("value")?.parse()?;
    assert_eq!(last, 30.0, "the newest sample is minute 30: {out}");
    let first: f64 = values[0][1].as_str().ok_or("value")?.parse()?;
    assert!((20.0..=21.0).contains(&first), "ten minutes earlier (21 if the minute turned): {out}");

    // Unix seconds with a fraction, and a fractional step in seconds.
    let t0s = t0 / 1000;
    let (start, end) = (format!("{}.5", t0s + 60), format!("{}", t0s + 61));
    let out = ok(&query(
        tmp.path(),
        &["temp{room=\"b\"}", "--start", &start, "--end", &end, "--step", "0.5", "--format", "json"],
    )?);
    let v: serde_json::Value = serde_json::from_str(&out)?;
    let want = serde_json::json!([[t0s as f64 + 60.5, "101"], [t0s + 61, "101"]]);
    assert_eq!(v["data"]["result"][0]["values"], want, "{out}");
    Ok(())
}

#[test]
fn plot_writes_a_png_that_decodes_and_an_svg_that_parses() -> Res {
    let tmp = tempfile::tempdir()?;
    write_rooms(tmp.path(), T0, 60)?;
    let png_path = tmp.path().join("chart.png");
    let svg_path = tmp.path().join("chart.svg");
    for p in [&png_path, &svg_path] {
        let out = query(
            tmp.path(),
            &[&["temp", "--format", "csv", "--plot", p.to_str().ok_or("path")?], &TEN_TO_TWENTY[..]].concat(),
        )?;
        ok(&out);
        assert!(String::from_utf8_lossy(&out.stderr).contains("2 series"));
    }

    let png = std::fs::read(&png_path)?;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let mut reader = png::Decoder::new(std::io::Cursor::new(&png)).read_info()?;
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels)?;
    assert_eq!((info.width, info.color_type, info.bit_depth), (1200, png::ColorType::Rgb, png::BitDepth::Eight));
    assert!(info.height > 500);
    let rgb: Vec<[u8; 3]> = pixels[..info.buffer_size()].chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
    let count = |want: [u8; 3]| rgb.iter().filter(|p| **p == want).count();
    // Both lines in their palette colours, and text (the bundled font renders).
    assert!(count([0x4e, 0x79, 0xa7]) > 200, "first series' line");
    assert!(count([0xf2, 0x8e, 0x2b]) > 200, "second series' line");
    let title_rows = &rgb[..info.width as usize * 40];
    assert!(title_rows.iter().filter(|p| p[0] < 0x80 && p[0] == p[1] && p[1] == p[2]).count() > 100, "title text");

    let svg = std::fs::read_to_string(&svg_path)?;
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
    assert!(svg.contains(">\ntemp\n</text>"), "the title is the query");
    assert!(svg.contains(">\ntemp{room=&quot;a&quot;}\n</text>"), "legend by labels");
    for colour in ["#4E79A7", "#F28E2B"] {
        assert_eq!(
            svg.matches(&format!("<polyline fill=\"none\" opacity=\"1\" stroke=\"{colour}\" stroke-width=\"2\""))
                .count(),
            1,
            "{colour}: one line per series"
        );
    }
    Ok(())
}

#[test]
fn bad_input_exits_non_zero_with_a_clear_message() -> Res {
    let tmp = tempfile::tempdir()?;
    write_rooms(tmp.path(), T0, 10)?;
    let e = fails(&query(tmp.path(), &["sum(temp"])?);
    assert!(e.contains("bad PromQL") && e.contains("sum(temp"), "{e}");
    let e = fails(&query(tmp.path(), &["temp offset 5m"])?);
    assert!(e.contains("unsupported"), "{e}");
    let e = fails(&query(tmp.path(), &["temp", "--start", "yesterday"])?);
    assert!(e.contains("is not a time") && e.contains("RFC 3339"), "{e}");
    let e = fails(&query(tmp.path(), &["temp", "--start", "2024-02-30T00:00:00Z"])?);
    assert!(e.contains("not an RFC 3339 time"), "{e}");
    let e = fails(&query(tmp.path(), &["temp", "--start", "1704067200000"])?);
    assert!(e.contains("milliseconds"), "{e}");
    let e = fails(&query(tmp.path(), &["temp", "--step", "5x"])?);
    assert!(e.contains("unknown unit"), "{e}");
    let e = fails(&query(tmp.path(), &["temp", "--start", "now", "--end", "-1h"])?);
    assert!(e.contains("before --start"), "{e}");
    let e = fails(&query(tmp.path(), &["temp", "--plot", "chart.jpg"])?);
    assert!(e.contains(".png or .svg"), "{e}");
    let e = fails(&query(tmp.path(), &["temp", "--start", "2024-01-01T00:00:00Z", "--step", "1ms"])?);
    assert!(e.contains("steps_max"), "{e}");

    let missing = tmp.path().join("missing");
    let e = fails(&query(&missing, &["temp"])?);
    assert!(e.contains("does not exist"), "{e}");
    assert!(!missing.exists(), "a query never creates a data directory");
    let empty = tempfile::tempdir()?;
    let e = fails(&query(empty.path(), &["temp"])?);
    assert!(e.contains("not a Chronolith data directory"), "{e}");
    assert_eq!(std::fs::read_dir(empty.path())?.count(), 0, "nothing written into a foreign directory");
    Ok(())
}

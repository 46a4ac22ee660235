//! `chronolith import` end to end: each format's samples come back through the library,
//! gzip input, `# EOF`, and malformed lines skipped or (with --strict) stopping the import
//! with what came before kept.
#![cfg(feature = "cli")]

#[path = "cli_import_common/mod.rs"]
mod common;

use common::{contents, import, ok, write, Res};
use std::io::Write;

#[test]
fn openmetrics_round_trips_and_stops_at_eof() -> Res {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let file = write(
        tmp.path(),
        "om.txt",
        "# HELP cpu CPU.\n# TYPE cpu gauge\n\
         cpu{host=\"a\\\\b\",note=\"say \\\"hi\\\"\"} 1.5 1704067200.25\n\
         cpu{host=\"c\"} -2 1704067201\n\
         cpu{host=\"c\"} NaN 1704067202\n\
         up +Inf 1704067203.001\n\
         # EOF\n\
         up 7 1704067299\n",
    )?;
    let stderr = ok(&import(&data, &[], &[&file])?);
    assert!(stderr.contains("4 samples imported"), "{stderr}");
    let got = contents(&data)?;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[r#"cpu{host="a\\b", note="say \"hi\""}"#], vec![(1_704_067_200_250, 1.5)]);
    let c = &got[r#"cpu{host="c"}"#];
    assert_eq!((c[0], c[1].0), ((1_704_067_201_000, -2.0), 1_704_067_202_000));
    assert!(c[1].1.is_nan());
    assert_eq!(got["up{}"], vec![(1_704_067_203_001, f64::INFINITY)], "the line after # EOF is not data");
    Ok(())
}

#[test]
fn prometheus_text_with_ms_and_without_timestamp() -> Res {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let file = write(tmp.path(), "p.txt", "m{a=\"1\"} 10 1704067200000\nm{a=\"1\"} 11 1704067210000\nnow_metric 3\n")?;
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    ok(&import(&data, &["--format", "prometheus"], &[&file])?);
    let got = contents(&data)?;
    assert_eq!(got[r#"m{a="1"}"#], vec![(1_704_067_200_000, 10.0), (1_704_067_210_000, 11.0)]);
    let now = got["now_metric{}"][0].0;
    assert!(now >= before && now < before + 60_000, "a sample without timestamp gets the current time");
    Ok(())
}

#[test]
fn influx_line_protocol_with_precisions() -> Res {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let ns = write(
        tmp.path(),
        "a.lp",
        "cpu,host=a usage_user=1,usage_system=2i,up=t,name=\"x y\" 1704067200000000000\n\
         cpu,host=a usage_user=1.5 1704067210000000000\n",
    )?;
    let s = write(tmp.path(), "b.lp", "disk,host=b,dev=sd\\ a used=-5 1704067200\n")?;
    ok(&import(&data, &[], &[&ns])?);
    ok(&import(&data, &["--precision", "s"], &[&s])?);
    let got = contents(&data)?;
    assert_eq!(got[r#"cpu_usage_user{host="a"}"#], vec![(1_704_067_200_000, 1.0), (1_704_067_210_000, 1.5)]);
    assert_eq!(got[r#"cpu_usage_system{host="a"}"#], vec![(1_704_067_200_000, 2.0)]);
    assert_eq!(got[r#"cpu_up{host="a"}"#], vec![(1_704_067_200_000, 1.0)]);
    assert_eq!(got[r#"disk_used{dev="sd a", host="b"}"#], vec![(1_704_067_200_000, -5.0)]);
    assert_eq!(got.len(), 4, "string fields are skipped: {got:?}");
    Ok(())
}

#[test]
fn csv_with_series_file_and_generic_layout() -> Res {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let series = write(
        tmp.path(),
        "series.jsonl",
        "{\"__name__\":\"usage_user\",\"hostname\":\"h0\"}\n{\"__name__\":\"usage_user\",\"hostname\":\"h1\"}\n",
    )?;
    // Series-major, as some exports are: the wide out-of-order window accepts it.
    let samples = write(
        tmp.path(),
        "samples.csv",
        "0,1704067200000,1.5\n0,1704067210000,2\n1,1704060000000,3\n1,1704060010000,4\n",
    )?;
    ok(&import(&data, &["--series", series.to_str().ok_or("path")?], &[&samples])?);
    let generic = write(tmp.path(), "g.csv", "metric,timestamp_ms,value\nload,1704067200000,0.5,host=x\n")?;
    ok(&import(&data, &[], &[&generic])?);
    let got = contents(&data)?;
    assert_eq!(got[r#"usage_user{hostname="h0"}"#], vec![(1_704_067_200_000, 1.5), (1_704_067_210_000, 2.0)]);
    assert_eq!(got[r#"usage_user{hostname="h1"}"#], vec![(1_704_060_000_000, 3.0), (1_704_060_010_000, 4.0)]);
    assert_eq!(got[r#"load{host="x"}"#], vec![(1_704_067_200_000, 0.5)]);
    Ok(())
}

#[test]
fn gzip_input_and_duplicates_are_counted() -> Res {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let path = tmp.path().join("in.lp.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path)?, flate2::Compression::default());
    for i in 0..25_000i64 {
        writeln!(gz, "mem,host=h{} used={}i {}", i % 50, i, 1_704_067_200_000 + (i / 50) * 10_000)?;
    }
    gz.finish()?;
    let stderr = ok(&import(&data, &["--precision", "ms"], &[&path])?);
    assert!(stderr.contains("25000 samples imported"), "{stderr}");
    let got = contents(&data)?;
    assert_eq!(got.len(), 50);
    assert_eq!(got[r#"mem_used{host="h7"}"#][1], (1_704_067_210_000, 57.0));
    // The same file again: every sample is an exact duplicate.
    let stderr = ok(&import(&data, &["--precision", "ms"], &[&path])?);
    assert!(stderr.contains("0 samples imported, 25000 duplicate"), "{stderr}");
    Ok(())
}

#[test]
fn malformed_lines_are_skipped_or_stop_with_strict() -> Res {
    let tmp = tempfile::tempdir()?;
    let text = "m 1 1704067200000\nm{a=\"x} 2 1704067201000\nm 3 1704067202000\n";
    let file = write(tmp.path(), "bad.prom", text)?;

    let lenient = tmp.path().join("lenient");
    let stderr = ok(&import(&lenient, &[], &[&file])?);
    assert!(stderr.contains(&format!("{}:2:", file.display())), "{stderr}");
    assert!(stderr.contains("2 samples imported") && stderr.contains("1 malformed"), "{stderr}");
    assert_eq!(contents(&lenient)?["m{}"], vec![(1_704_067_200_000, 1.0), (1_704_067_202_000, 3.0)]);

    let strict = tmp.path().join("strict");
    let out = import(&strict, &["--strict"], &[&file])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{}:2:", file.display())), "{stderr}");
    assert_eq!(contents(&strict)?["m{}"], vec![(1_704_067_200_000, 1.0)], "the line before stays imported");
    Ok(())
}

#[test]
fn a_missing_file_fails_cleanly() -> Res {
    let tmp = tempfile::tempdir()?;
    let out = import(&tmp.path().join("d"), &[], &[&tmp.path().join("nope.prom")])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.prom"));
    Ok(())
}

#[test]
fn several_files_number_their_own_lines_and_share_the_summary() -> Res {
    let tmp = tempfile::tempdir()?;
    let a = write(tmp.path(), "a.om", "m{f=\"a\"} 1 1704067200\nm{f=\"a\"} 2 1704067210\n# EOF\n")?;
    let b = write(
        tmp.path(),
        "b.prom",
        "m{f=\"b\"} 3 1704067200000\nm{f=\"b\" 4 1704067210000\nm{f=\"a\"} 5 1704067220000\n",
    )?;
    let data = tmp.path().join("data");
    let stderr = ok(&import(&data, &[], &[&a, &b])?);
    assert!(stderr.contains(&format!("{}:2: ", b.display())), "line numbers count per file: {stderr}");
    assert!(stderr.contains("6 lines: 4 samples imported") && stderr.contains("1 malformed"), "{stderr}");
    let got = contents(&data)?;
    assert_eq!(got[r#"m{f="a"}"#], vec![(1_704_067_200_000, 1.0), (1_704_067_210_000, 2.0), (1_704_067_220_000, 5.0)]);
    assert_eq!(got[r#"m{f="b"}"#], vec![(1_704_067_200_000, 3.0)]);
    Ok(())
}

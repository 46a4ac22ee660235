//! Line protocol and CSV files several chunks long, so that most lines take the
//! workers' known-series fast paths: every sample comes back with the series, time and
//! value the line says, exactly as for the lines the full parsers read.
#![cfg(feature = "cli")]

#[path = "cli_import_common/mod.rs"]
mod common;

use common::{contents, import, ok, write, Res};
use std::fmt::Write;

const HOSTS: usize = 30;
const STEPS: usize = 4_000;
const T0_MS: i64 = 1_704_067_200_000;

/// Value of field `f` of host `h` at step `k`: distinct everywhere, two decimals.
fn value(h: usize, k: usize, f: usize) -> f64 {
    ((h * 7 + k * 13 + f * 101) % 10_000) as f64 / 100.0
}

#[test]
fn influx_lines_through_the_fast_path_keep_every_field() -> Res {
    let tmp = tempfile::tempdir()?;
    let mut text = String::new();
    for k in 0..STEPS {
        for h in 0..HOSTS {
            let t_s = (T0_MS / 1000) as usize + 10 * k;
            // Booleans and integers too; a string field, skipped, on some lines.
            let extra = if k % 97 == 0 { ",note=\"x y\"" } else { "" };
            writeln!(
                text,
                "cpu,host=h{h:02},dc=eu-1 user={},sys={},steal={}i,up={}{extra} {t_s}",
                value(h, k, 0),
                value(h, k, 1),
                k,
                if k % 2 == 0 { "t" } else { "false" }
            )?;
        }
    }
    assert!(text.len() > 6 << 20, "several chunks: {} bytes", text.len());
    let path = write(tmp.path(), "cpu.lp", &text)?;
    let data = tmp.path().join("data");
    let stderr = ok(&import(&data, &["--precision", "s"], &[&path])?);
    assert!(stderr.contains(&format!("{} samples imported", HOSTS * STEPS * 4)), "{stderr}");
    let got = contents(&data)?;
    assert_eq!(got.len(), HOSTS * 4);
    for h in 0..HOSTS {
        let series = |f: &str| &got[&format!("cpu_{f}{{dc=\"eu-1\", host=\"h{h:02}\"}}")];
        let (user, sys, steal, up) = (series("user"), series("sys"), series("steal"), series("up"));
        for k in 0..STEPS {
            let t = T0_MS + 10_000 * k as i64;
            assert_eq!(user[k], (t, value(h, k, 0)), "host {h} step {k}");
            assert_eq!(sys[k], (t, value(h, k, 1)));
            assert_eq!(steal[k], (t, k as f64));
            assert_eq!(up[k], (t, if k % 2 == 0 { 1.0 } else { 0.0 }));
        }
    }
    Ok(())
}

#[test]
fn csv_with_series_table_and_generic_through_the_fast_path() -> Res {
    let tmp = tempfile::tempdir()?;
    let mut table = String::new();
    for h in 0..HOSTS {
        writeln!(table, "{{\"__name__\":\"load\",\"host\":\"h{h:02}\"}}")?;
    }
    let (mut by_id, mut generic) = (String::from("series_id,timestamp_ms,value\n"), String::new());
    for k in 0..2 * STEPS {
        for h in 0..HOSTS {
            let t = T0_MS + 10_000 * k as i64;
            writeln!(by_id, "{h},{t},{}", value(h, k, 0))?;
            writeln!(generic, "temp,{t},{},host=h{h:02},rack=r{}", value(h, k, 1), h % 3)?;
        }
    }
    assert!(generic.len() > 6 << 20, "several chunks: {} bytes", generic.len());
    let series = write(tmp.path(), "series.jsonl", &table)?;
    let by_id = write(tmp.path(), "samples.csv", &by_id)?;
    let generic = write(tmp.path(), "temp.csv", &generic)?;
    // Two stores: the second file covers the same time, which the first import sealed.
    let (data, data2) = (tmp.path().join("data"), tmp.path().join("data2"));
    let series_arg = series.to_str().ok_or("path")?;
    let stderr = ok(&import(&data, &["--series", series_arg], &[&by_id])?);
    assert!(stderr.contains(&format!("{} samples imported", HOSTS * STEPS * 2)), "{stderr}");
    let stderr = ok(&import(&data2, &[], &[&generic])?);
    assert!(stderr.contains(&format!("{} samples imported", HOSTS * STEPS * 2)), "{stderr}");
    let (got, got2) = (contents(&data)?, contents(&data2)?);
    assert_eq!((got.len(), got2.len()), (HOSTS, HOSTS));
    for h in 0..HOSTS {
        let load = &got[&format!("load{{host=\"h{h:02}\"}}")];
        let temp = &got2[&format!("temp{{host=\"h{h:02}\", rack=\"r{}\"}}", h % 3)];
        assert_eq!((load.len(), temp.len()), (2 * STEPS, 2 * STEPS));
        for k in 0..2 * STEPS {
            let t = T0_MS + 10_000 * k as i64;
            assert_eq!(load[k], (t, value(h, k, 0)), "host {h} step {k}");
            assert_eq!(temp[k], (t, value(h, k, 1)));
        }
    }
    Ok(())
}

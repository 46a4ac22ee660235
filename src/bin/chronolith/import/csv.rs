//! CSV, in one of two layouts:
//! - with `--series FILE.jsonl`: `series_id,timestamp_ms,value`, as gen_devops.py writes
//!   `samples.csv`; series_id is the 0-based line of the JSON label map in the file;
//! - without it: `metric,timestamp_ms,value[,label=value...]`.
//!
//! A header line whose second column is not a number (`timestamp_ms`) is skipped, and so
//! are empty lines and lines starting with `#`.

use chronolith::formats::{parse_value, Line, Parsed};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// Label sets by series_id, from a `series.jsonl` file.
pub type SeriesTable = Vec<Vec<(String, String)>>;

pub fn load_series(path: &Path) -> Result<SeriesTable, Box<dyn std::error::Error>> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        let map: BTreeMap<String, String> =
            serde_json::from_str(&line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        out.push(map.into_iter().collect());
    }
    Ok(out)
}

/// `first_line`: the file's first line, which may be a header.
pub fn parse_line(line: &str, first_line: bool, series: Option<&SeriesTable>) -> Result<Line, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Line::Skip);
    }
    let mut cols = line.split(',').map(str::trim);
    let first = cols.next().unwrap_or_default();
    let ts = cols.next().ok_or("want at least 3 columns")?;
    let Ok(ts_ms) = ts.parse::<i64>() else {
        if first_line {
            return Ok(Line::Skip); // a header
        }
        return Err(format!("bad timestamp {ts:?} (want integer milliseconds)"));
    };
    let value = parse_value(cols.next().ok_or("want at least 3 columns")?)?;
    let labels = match series {
        Some(table) => {
            if cols.next().is_some() {
                return Err("want 3 columns: series_id,timestamp_ms,value".into());
            }
            let id: usize = first.parse().map_err(|_| format!("bad series_id {first:?}"))?;
            table.get(id).ok_or_else(|| format!("series_id {id} is not in the --series file"))?.clone()
        }
        None => {
            if first.is_empty() {
                return Err("empty metric name".into());
            }
            let mut labels = vec![("__name__".to_string(), first.to_string())];
            for col in cols {
                let (n, v) = col.split_once('=').ok_or_else(|| format!("label column {col:?} is not name=value"))?;
                labels.push((n.to_string(), v.to_string()));
            }
            labels
        }
    };
    let key = match series {
        Some(_) => first.to_string(),
        None => line
            .split(',')
            .enumerate()
            .filter(|(i, _)| !matches!(i, 1 | 2))
            .map(|(_, c)| c)
            .collect::<Vec<_>>()
            .join(","),
    };
    Ok(Line::Samples(vec![Parsed { key, labels, ts_ms: Some(ts_ms), value }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str, series: Option<&SeriesTable>) -> Parsed {
        match parse_line(line, false, series) {
            Ok(Line::Samples(mut v)) if v.len() == 1 => v.remove(0),
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn series_id_layout() {
        let table: SeriesTable = vec![vec![("__name__".into(), "a".into())], vec![("__name__".into(), "b".into())]];
        let p = one("1,1700000000000,-42.5", Some(&table));
        assert_eq!((p.labels[0].1.as_str(), p.ts_ms, p.value), ("b", Some(1_700_000_000_000), -42.5));
        assert!(parse_line("2,1,1", false, Some(&table)).is_err(), "unknown series_id");
        assert!(parse_line("0,1,1,x", false, Some(&table)).is_err(), "trailing column");
        assert!(one("0,1,NaN", Some(&table)).value.is_nan());
    }

    #[test]
    fn generic_layout_and_header() {
        let p = one("cpu,5,+Inf,host=a,dc=x", None);
        assert_eq!(
            p.labels,
            vec![("__name__".into(), "cpu".into()), ("host".into(), "a".into()), ("dc".into(), "x".into())]
        );
        assert_eq!(p.value, f64::INFINITY);
        assert_eq!(p.key, one("cpu,6,1,host=a,dc=x", None).key);
        assert!(matches!(parse_line("metric,timestamp_ms,value", true, None), Ok(Line::Skip)));
        for bad in ["metric,timestamp_ms,value", "cpu,5", "cpu,5,x", "cpu,5,1,host", ",5,1", "cpu,5.5,1"] {
            assert!(parse_line(bad, false, None).is_err(), "{bad:?} should be malformed");
        }
    }
}

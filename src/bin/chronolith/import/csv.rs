//! CSV, in one of two layouts:
//! - with `--series FILE.jsonl`: `series_id,timestamp_ms,value`, as gen_devops.py writes
//!   `samples.csv`; series_id is the 0-based line of the JSON label map in the file;
//! - without it: `metric,timestamp_ms,value[,label=value...]`.
//!
//! A header line whose second column is not a number (`timestamp_ms`) is skipped, and so
//! are empty lines and lines starting with `#`.

use chronolith::formats::prometheus::timestamp_from_bytes;
use chronolith::formats::{parse_value, value_from_bytes, Line, Parsed};
use chronolith::SeriesId;
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

/// The fast path for a line of a known series: `KEY,TS,VALUE[,label=value...]` without
/// whitespace. The series key is built in `key` exactly as [`parse_line`] builds
/// [`Parsed::key`] (the first column, plus the label columns in the generic layout), and
/// `lookup` must answer only for keys `parse_line` produced. `None` sends the line to
/// `parse_line`.
pub fn parse_known(
    line: &[u8],
    with_table: bool,
    key: &mut Vec<u8>,
    lookup: impl FnOnce(&[u8]) -> Option<SeriesId>,
) -> Option<(SeriesId, i64, f64)> {
    if line.first().is_none_or(|&b| b == b'#') || line.iter().any(u8::is_ascii_whitespace) {
        return None;
    }
    let c1 = memchr::memchr(b',', line)?;
    let c2 = c1 + 1 + memchr::memchr(b',', &line[c1 + 1..])?;
    let (first, ts) = (&line[..c1], &line[c1 + 1..c2]);
    let rest = &line[c2 + 1..];
    let (value, labels) = match memchr::memchr(b',', rest) {
        Some(c3) if !with_table => (&rest[..c3], &rest[c3..]),
        Some(_) => return None,
        None => (rest, &rest[rest.len()..]),
    };
    key.clear();
    key.extend_from_slice(first);
    key.extend_from_slice(labels);
    let id = lookup(key)?;
    Some((id, timestamp_from_bytes(ts, false)?, value_from_bytes(value)?))
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

    /// Every line the fast path answers, it answers as `parse_line` does.
    #[test]
    fn fast_path_agrees_with_parse_line_or_declines() {
        let table: SeriesTable = (0..3).map(|i| vec![("__name__".into(), format!("m{i}"))]).collect();
        let lines = [
            "0,1700000000000,1.5",
            "2,-5,NaN",
            "1,1700000000000,1.5,x",
            "1, 1700000000000,1.5",
            "1,1700000000000,1.5\r",
            "3,1,1",
            "cpu,5,+Inf,host=a,dc=x",
            "cpu,5,1,dc=x,host=a",
            "cpu,5,1",
            "cpu,5,1,host",
            "cpu,5.5,1,host=a",
            "cpu,5,1e3,host=a,",
            "\u{a0}cpu,5,1,host=a",
            "cpu,5,1,\u{a0}host=a",
            "#cpu,5,1",
            "cpu,,1",
            "cpu,5,",
        ];
        for with_table in [true, false] {
            let t = with_table.then_some(&table);
            let mut refs: std::collections::HashMap<Vec<u8>, SeriesId> = std::collections::HashMap::new();
            let mut key = Vec::new();
            for (n, line) in lines.iter().enumerate() {
                let full = parse_line(line, false, t);
                if let Ok(Line::Samples(s)) = &full {
                    refs.insert(s[0].key.clone().into_bytes(), SeriesId(n as u64 + 1));
                }
                match (parse_known(line.as_bytes(), with_table, &mut key, |k| refs.get(k).copied()), full) {
                    (None, _) => {}
                    (Some((id, ts, v)), Ok(Line::Samples(s))) => {
                        assert_eq!(Some(id), refs.get(s[0].key.as_bytes()).copied(), "{line}");
                        assert!(Some(ts) == s[0].ts_ms && v.to_bits() == s[0].value.to_bits(), "{line}");
                    }
                    (Some(fast), full) => panic!("{line:?}: fast path said {fast:?}, parse_line {full:?}"),
                }
            }
        }
        let mut refs = std::collections::HashMap::new();
        refs.insert(b"cpu,host=a,dc=x".to_vec(), SeriesId(9));
        let hit = parse_known(b"cpu,7,2,host=a,dc=x", false, &mut Vec::new(), |k| refs.get(k).copied());
        assert_eq!(hit.map(|h| (h.0, h.1)), Some((SeriesId(9), 7)), "the common case takes the fast path");
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

//! Rendering a query result: an aligned table for a terminal, CSV with a header, and the
//! Prometheus HTTP API's JSON (`matrix` for ranges, `vector` for instant queries).

use crate::timeparse::{civil, rfc3339};
use chronolith::query::SeriesResult;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns, one per series (values rounded to 4 decimals).
    Table,
    /// One row per point: time, timestamp, one column per label, value (exact).
    Csv,
    /// The Prometheus HTTP API's response shape (exact values, as strings).
    Json,
    /// Nothing on stdout (with --plot, when only the chart is wanted).
    None,
}

/// A value as Prometheus writes it: shortest exact decimal, `NaN`, `+Inf`, `-Inf`.
pub fn prom_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Unix seconds as a JSON number: an integer when whole, else with the milliseconds.
fn json_seconds(ms: i64) -> serde_json::Value {
    if ms % 1000 == 0 {
        serde_json::Value::from(ms / 1000)
    } else {
        serde_json::Value::from(ms as f64 / 1000.0)
    }
}

fn metric(s: &SeriesResult) -> serde_json::Map<String, serde_json::Value> {
    s.labels.iter().map(|(n, v)| (n.to_string(), serde_json::Value::from(v))).collect()
}

pub fn json(out: &mut impl Write, series: &[SeriesResult], instant: bool) -> io::Result<()> {
    let result: Vec<serde_json::Value> = series
        .iter()
        .filter_map(|s| {
            if instant {
                let &(t, v) = s.points.last()?;
                Some(serde_json::json!({ "metric": metric(s), "value": [json_seconds(t), prom_value(v)] }))
            } else {
                let values: Vec<_> =
                    s.points.iter().map(|&(t, v)| serde_json::json!([json_seconds(t), prom_value(v)])).collect();
                Some(serde_json::json!({ "metric": metric(s), "values": values }))
            }
        })
        .collect();
    // Written by hand so the keys come in the Prometheus API's order.
    let kind = if instant { "vector" } else { "matrix" };
    write!(out, r#"{{"status":"success","data":{{"resultType":"{kind}","result":"#)?;
    serde_json::to_writer(&mut *out, &result)?;
    writeln!(out, "}}}}")
}

/// A CSV field, quoted when it holds a separator, quote, line break or edge space.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Label names of all series, `__name__` first, then sorted.
fn label_names(series: &[SeriesResult]) -> Vec<String> {
    let names: BTreeSet<&str> = series.iter().flat_map(|s| s.labels.iter().map(|(n, _)| n)).collect();
    let mut out: Vec<String> = names.iter().filter(|n| **n == "__name__").map(|n| n.to_string()).collect();
    out.extend(names.iter().filter(|n| **n != "__name__").map(|n| n.to_string()));
    out
}

pub fn csv(out: &mut impl Write, series: &[SeriesResult]) -> io::Result<()> {
    let names = label_names(series);
    let mut header = vec!["time".to_string(), "timestamp".to_string()];
    header.extend(names.iter().map(|n| csv_field(n)));
    header.push("value".into());
    writeln!(out, "{}", header.join(","))?;
    for s in series {
        let labels: Vec<String> = names.iter().map(|n| csv_field(s.labels.get(n))).collect();
        let labels = labels.join(",");
        for &(t, v) in &s.points {
            let sep = if names.is_empty() { "" } else { "," };
            writeln!(out, "{},{}{sep}{labels},{}", rfc3339(t), json_seconds(t), prom_value(v))?;
        }
    }
    Ok(())
}

/// A value for a person: at most 4 decimals, trailing zeros dropped; tiny and huge
/// magnitudes in scientific notation.
pub fn human_value(v: f64) -> String {
    if !v.is_finite() {
        return prom_value(v);
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) {
        return format!("{v:.3e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// `YYYY-MM-DD HH:MM[:SS]` in UTC; seconds only when the step needs them.
fn table_time(ms: i64, with_seconds: bool) -> String {
    let (y, mo, d, h, mi, s, _) = civil(ms);
    if with_seconds {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}")
    }
}

/// One column per series (the first `series_max` by labels), numbered and listed above
/// the table with their labels; one row per step that has any value.
pub fn table(out: &mut impl Write, series: &[SeriesResult], step_ms: i64, series_max: usize) -> io::Result<()> {
    if series.is_empty() {
        return writeln!(out, "(no series matched in this range)");
    }
    let shown = &series[..series.len().min(series_max)];
    let headers = match varying_label(shown) {
        Some(name) => {
            writeln!(out, "columns: {name}")?;
            shown.iter().map(|s| truncate(s.labels.get(&name), 24)).collect()
        }
        None => {
            for (i, s) in shown.iter().enumerate() {
                writeln!(out, "#{:<3} {}", i + 1, s.labels)?;
            }
            (1..=shown.len()).map(|i| format!("#{i}")).collect::<Vec<_>>()
        }
    };
    if shown.len() < series.len() {
        writeln!(
            out,
            "(showing {} of {} series, the first by labels; --series-max N shows more, --format csv or json shows all)",
            shown.len(),
            series.len()
        )?;
    }
    writeln!(out)?;
    let mut rows: BTreeMap<i64, Vec<Option<f64>>> = BTreeMap::new();
    for (i, s) in shown.iter().enumerate() {
        for &(t, v) in &s.points {
            rows.entry(t).or_insert_with(|| vec![None; shown.len()])[i] = Some(v);
        }
    }
    let cells: Vec<Vec<String>> =
        rows.values().map(|r| r.iter().map(|v| v.map_or_else(|| "-".into(), human_value)).collect()).collect();
    let widths: Vec<usize> = (0..shown.len())
        .map(|i| cells.iter().map(|r| r[i].len()).chain([headers[i].chars().count()]).max().unwrap_or(1))
        .collect();
    let with_seconds = step_ms % 60_000 != 0 || rows.keys().any(|t| t % 60_000 != 0);
    let time_width = if with_seconds { 19 } else { 16 };
    write!(out, "{:<time_width$}", "time (UTC)")?;
    for (h, w) in headers.iter().zip(&widths) {
        write!(out, "  {h:>w$}")?;
    }
    writeln!(out)?;
    for (t, row) in rows.keys().zip(&cells) {
        write!(out, "{:<time_width$}", table_time(*t, with_seconds))?;
        for (c, w) in row.iter().zip(&widths) {
            write!(out, "  {c:>w$}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The one label whose values tell the series apart, when there is exactly one (as
/// after `sum by (role)`): its values then head the columns.
fn varying_label(series: &[SeriesResult]) -> Option<String> {
    let first = series.first()?;
    if series.len() < 2 || series.iter().any(|s| s.labels.len() != first.labels.len()) {
        return None;
    }
    let mut varying =
        first.labels.iter().map(|(n, _)| n).filter(|n| series.iter().any(|s| s.labels.get(n) != first.labels.get(n)));
    let name = varying.next()?;
    let distinct: BTreeSet<&str> = series.iter().map(|s| s.labels.get(name)).collect();
    (varying.next().is_none() && distinct.len() == series.len() && !distinct.contains("")).then(|| name.to_string())
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max_chars - 1).collect();
    t.push('…');
    t
}

/// An instant result: one line per series, value then labels.
pub fn instant_table(out: &mut impl Write, series: &[SeriesResult], at_ms: i64) -> io::Result<()> {
    if series.is_empty() {
        return writeln!(out, "(no series has a value at {})", rfc3339(at_ms));
    }
    let values: Vec<String> =
        series.iter().map(|s| s.points.last().map_or_else(|| "-".into(), |p| human_value(p.1))).collect();
    let w = values.iter().map(String::len).max().unwrap_or(5).max(5);
    writeln!(out, "{:>w$}  series", "value")?;
    for (s, v) in series.iter().zip(&values) {
        writeln!(out, "{v:>w$}  {}", s.labels)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_prometheus_and_for_people() {
        assert_eq!(prom_value(43.27), "43.27");
        assert_eq!(prom_value(1e21), "1000000000000000000000");
        assert_eq!(prom_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(human_value(43.271_234_5), "43.2712");
        assert_eq!(human_value(2.0), "2");
        assert_eq!(human_value(-0.000_01), "-1.000e-5");
        assert_eq!(human_value(-0.0), "0");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}

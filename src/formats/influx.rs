//! InfluxDB line protocol: `measurement[,tag=v...] field=value[,field=value...] [ts]`.
//! Each numeric field becomes the series `measurement_field{tags}`, as VictoriaMetrics
//! and Telegraf's Prometheus output name it; string fields are skipped (no number).

use super::{Line, Parsed};

/// Timestamp unit of the input (`--precision`), nanoseconds by default as in InfluxDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Precision {
    Ns,
    Us,
    Ms,
    S,
}

impl Precision {
    pub(crate) fn to_ms(self, t: i64) -> Option<i64> {
        match self {
            Self::Ns => Some(t.div_euclid(1_000_000)),
            Self::Us => Some(t.div_euclid(1_000)),
            Self::Ms => Some(t),
            Self::S => t.checked_mul(1_000),
        }
    }
}

pub fn parse_line(line: &str, precision: Precision) -> Result<Line, String> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Line::Skip);
    }
    let (series, rest) = split_unescaped(line, b' ', false);
    let rest = rest.ok_or("no fields")?;
    let (fields, ts) = split_unescaped(rest.trim_start_matches(' '), b' ', true);
    let ts_ms = match ts.map(str::trim) {
        None | Some("") => None,
        Some(t) => {
            let n: i64 = t.parse().map_err(|_| format!("bad timestamp {t:?}"))?;
            Some(precision.to_ms(n).ok_or_else(|| format!("timestamp {t} out of range"))?)
        }
    };

    let mut parts = split_all(series, b',', false).into_iter();
    let measurement = unescape(parts.next().unwrap_or_default());
    if measurement.is_empty() {
        return Err("empty measurement".into());
    }
    let mut tags = Vec::new();
    for tag in parts {
        let (k, v) = split_unescaped(tag, b'=', false);
        let v = v.ok_or_else(|| format!("tag {tag:?} has no ="))?;
        let (k, v) = (unescape(k), unescape(v));
        if k.is_empty() || v.is_empty() {
            return Err(format!("empty tag key or value in {tag:?}"));
        }
        tags.push((sanitize(&k), v));
    }

    let mut out = Vec::new();
    for field in split_all(fields, b',', true) {
        let (k, v) = split_unescaped(field, b'=', true);
        let v = v.ok_or_else(|| format!("field {field:?} has no ="))?;
        let k = unescape(k);
        if k.is_empty() {
            return Err(format!("empty field key in {field:?}"));
        }
        let Some(value) = field_value(v)? else { continue };
        let name = sanitize(&format!("{measurement}_{k}"));
        let mut labels = Vec::with_capacity(tags.len() + 1);
        labels.push(("__name__".to_string(), name));
        labels.extend(tags.iter().cloned());
        // The key names the series: the raw series text plus the field.
        out.push(Parsed { key: format!("{series}\0{k}"), labels, ts_ms, value });
    }
    if out.is_empty() && !fields.contains('"') {
        return Err("no fields".into());
    }
    Ok(Line::Samples(out))
}

/// A field's number: float, `1i`/`1u` integers, booleans as 1/0; `None` for strings.
pub(crate) fn field_value(v: &str) -> Result<Option<f64>, String> {
    if v.starts_with('"') {
        return if v.len() >= 2 && v.ends_with('"') { Ok(None) } else { Err(format!("unterminated string {v:?}")) };
    }
    match v {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(Some(1.0)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(Some(0.0)),
        _ => {}
    }
    if let Some(int) = v.strip_suffix('i') {
        return int.parse::<i64>().map(|n| Some(n as f64)).map_err(|_| format!("bad integer {v:?}"));
    }
    if let Some(uint) = v.strip_suffix('u') {
        return uint.parse::<u64>().map(|n| Some(n as f64)).map_err(|_| format!("bad unsigned {v:?}"));
    }
    // Line protocol floats are plain decimals; Rust would also take "inf" and "NaN".
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) {
        return Err(format!("bad field value {v:?}"));
    }
    v.parse::<f64>().map(Some).map_err(|_| format!("bad field value {v:?}"))
}

/// Splits at the first `sep` not escaped by `\` (nor inside double quotes when `quotes`).
fn split_unescaped(s: &str, sep: u8, quotes: bool) -> (&str, Option<&str>) {
    let b = s.as_bytes();
    let (mut i, mut in_quotes) = (0, false);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' if quotes => in_quotes = !in_quotes,
            c if c == sep && !in_quotes => return (&s[..i], Some(&s[i + 1..])),
            _ => {}
        }
        i += 1;
    }
    (s, None)
}

fn split_all(mut s: &str, sep: u8, quotes: bool) -> Vec<&str> {
    let mut out = Vec::new();
    loop {
        let (head, tail) = split_unescaped(s, sep, quotes);
        out.push(head);
        match tail {
            Some(t) => s = t,
            None => return out,
        }
    }
}

/// Drops the `\` before an escaped comma, space, equals sign or backslash.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&n @ (',' | ' ' | '=' | '\\' | '"'))) => {
                out.push(n);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// Label and metric names allow `[a-zA-Z_][a-zA-Z0-9_]*`; others become `_`, as
/// Telegraf's Prometheus output does (`cpu-total` → `cpu_total`).
fn sanitize(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(line: &str, p: Precision) -> Vec<Parsed> {
        match parse_line(line, p) {
            Ok(Line::Samples(v)) => v,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn fields_become_series_named_measurement_field() {
        let v = samples("cpu,host=a usage_user=1,usage_system=2.5 1700000000000000000", Precision::Ns);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].labels, vec![("__name__".into(), "cpu_usage_user".into()), ("host".into(), "a".into())]);
        assert_eq!(v[1].labels[0].1, "cpu_usage_system");
        assert_eq!((v[0].value, v[1].value), (1.0, 2.5));
        assert_eq!(v[0].ts_ms, Some(1_700_000_000_000));
        assert_ne!(v[0].key, v[1].key);
    }

    #[test]
    fn integers_booleans_strings_negatives() {
        let v = samples(r#"m a=3i,b=t,c=F,s="x, y=z",d=-1.5e2,u=7u"#, Precision::Ns);
        let got: Vec<(String, f64)> = v.iter().map(|p| (p.labels[0].1.clone(), p.value)).collect();
        assert_eq!(
            got,
            vec![
                ("m_a".into(), 3.0),
                ("m_b".into(), 1.0),
                ("m_c".into(), 0.0),
                ("m_d".into(), -150.0),
                ("m_u".into(), 7.0)
            ]
        );
        assert_eq!(v[0].ts_ms, None);
        // A line of string fields only is valid and yields nothing.
        assert!(samples(r#"m s="text""#, Precision::Ns).is_empty());
    }

    #[test]
    fn escapes_in_measurement_tags_and_fields() {
        let v = samples(r"my\ cpu,host\=x=a\,b\ c,dc=d-1 f\ 1=2 5", Precision::S);
        assert_eq!(v[0].labels[0].1, "my_cpu_f_1");
        assert_eq!(v[0].labels[1], ("host_x".into(), "a,b c".into()));
        assert_eq!(v[0].labels[2], ("dc".into(), "d-1".into()));
        assert_eq!(v[0].ts_ms, Some(5_000));
    }

    #[test]
    fn precisions() {
        let ts = |p, t: &str| samples(&format!("m v=1 {t}"), p)[0].ts_ms;
        assert_eq!(ts(Precision::Ns, "1500000000"), Some(1_500));
        assert_eq!(ts(Precision::Us, "1500000"), Some(1_500));
        assert_eq!(ts(Precision::Ms, "1500"), Some(1_500));
        assert_eq!(ts(Precision::S, "2"), Some(2_000));
        assert_eq!(ts(Precision::Ns, "-1"), Some(-1), "floor, not toward zero");
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            "m",
            "m v",
            "m v=",
            "m v=abc",
            "m v=1 12x",
            "m v=1 1 2",
            ",a=b v=1",
            "m,a v=1",
            r#"m s="open"#,
            "m v=1i2",
            "m v=inf",
        ] {
            assert!(parse_line(bad, Precision::Ns).is_err(), "{bad:?} should be malformed");
        }
        assert!(matches!(parse_line("# comment", Precision::Ns), Ok(Line::Skip)));
    }
}

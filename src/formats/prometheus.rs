//! OpenMetrics and Prometheus text lines: `name{l="v",...} value [timestamp]`.
//! The two differ only in the timestamp unit (seconds, possibly fractional, versus
//! integer milliseconds) and in OpenMetrics' `# EOF` terminator.

use super::{parse_value, Line, Parsed};

/// Parses one line. `seconds` selects OpenMetrics timestamps (seconds) over
/// Prometheus text ones (milliseconds).
pub fn parse_line(line: &str, seconds: bool) -> Result<Line, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Line::Skip);
    }
    if let Some(comment) = line.strip_prefix('#') {
        // `# EOF` ends an OpenMetrics exposition; anything after it is not data.
        return Ok(if comment.trim() == "EOF" { Line::Eof } else { Line::Skip });
    }
    let (name, rest) = split_name(line);
    let mut labels = Vec::new();
    if !name.is_empty() {
        labels.push(("__name__".to_string(), name.to_string()));
    }
    let (key_end, rest) = match rest.strip_prefix('{') {
        Some(inner) => {
            let consumed = parse_labels(inner, &mut labels)?;
            (name.len() + 1 + consumed, &inner[consumed..])
        }
        None => (name.len(), rest),
    };
    if !labels.iter().any(|(n, _)| n == "__name__") {
        return Err("no metric name".into());
    }
    if !rest.starts_with([' ', '\t']) {
        return Err(format!("expected a space before the value, found {:?}", rest.chars().next()));
    }
    let mut fields = rest.split_ascii_whitespace();
    let value = fields.next().ok_or("missing value")?;
    let value = parse_value(value)?;
    let ts_ms = match fields.next() {
        // An OpenMetrics exemplar (`# {...} v`) may follow the value: not a sample.
        None | Some("#") => None,
        Some(t) if seconds => Some(parse_seconds(t)?),
        Some(t) => Some(parse_millis(t)?),
    };
    if ts_ms.is_some() {
        match fields.next() {
            None => {}
            Some(s) if s.starts_with('#') => {}
            Some(s) => return Err(format!("unexpected {s:?} after the timestamp")),
        }
    }
    Ok(Line::Samples(vec![Parsed { key: line[..key_end].to_string(), labels, ts_ms, value }]))
}

/// Integer milliseconds, the Prometheus text timestamp.
pub fn parse_millis(t: &str) -> Result<i64, String> {
    t.parse::<i64>().map_err(|_| format!("bad timestamp {t:?} (want integer milliseconds)"))
}

/// [`parse_seconds`] or [`parse_millis`] on bytes, `None` where they fail: the common
/// plain forms without making a `&str`, the rest through the `&str` functions.
pub fn timestamp_from_bytes(t: &[u8], seconds: bool) -> Option<i64> {
    let plain = if seconds { plain_seconds(t) } else { plain_millis(t) };
    plain.or_else(|| {
        let t = std::str::from_utf8(t).ok()?;
        if seconds { parse_seconds(t) } else { parse_millis(t) }.ok()
    })
}

/// `[-]digits` with at most 18 digits (so no overflow), as `str::parse::<i64>` reads it.
fn plain_millis(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().fold(0i64, |n, &c| n * 10 + i64::from(c - b'0'));
    Some(if neg { -n } else { n })
}

/// The metric name: everything up to `{`, a space or a tab.
fn split_name(line: &str) -> (&str, &str) {
    let end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    line.split_at(end)
}

/// Parses `l="v",...}` (the text after `{`), returning the bytes consumed including `}`.
fn parse_labels(s: &str, out: &mut Vec<(String, String)>) -> Result<usize, String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b',') {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'}' {
            return Ok(i + 1);
        }
        let name_start = i;
        while i < bytes.len() && !matches!(bytes[i], b'=' | b'}' | b',' | b' ') {
            i += 1;
        }
        let name = s[name_start..i].trim();
        if i >= bytes.len() || bytes[i] != b'=' || name.is_empty() {
            return Err("malformed label (want name=\"value\")".into());
        }
        i += 1;
        if i >= bytes.len() || bytes[i] != b'"' {
            return Err(format!("label {name}: value must be quoted"));
        }
        i += 1;
        let mut value = String::new();
        let mut closed = false;
        let mut chars = s[i..].char_indices();
        while let Some((off, c)) = chars.next() {
            match c {
                '"' => {
                    i += off + 1;
                    closed = true;
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => return Err(format!("label {name}: unknown escape \\{other}")),
                    None => break,
                },
                c => value.push(c),
            }
        }
        if !closed {
            return Err(format!("label {name}: unterminated value"));
        }
        out.push((name.to_string(), value));
        if i < bytes.len() && bytes[i] == b',' {
            i += 1;
        } else if i < bytes.len() && bytes[i] == b'}' {
            return Ok(i + 1);
        } else {
            return Err("expected , or } after a label".into());
        }
    }
}

/// Seconds (possibly fractional or in exponent form) to milliseconds, exact for
/// decimal fractions: `1704067200.123` is 1704067200123 ms, not one ms off.
pub fn parse_seconds(t: &str) -> Result<i64, String> {
    if let Some(ms) = plain_seconds(t.as_bytes()) {
        return Ok(ms);
    }
    let bad = || format!("bad timestamp {t:?} (want seconds)");
    if t.contains(['e', 'E']) {
        let f: f64 = t.parse().map_err(|_| bad())?;
        let ms = (f * 1000.0).round();
        return if ms.is_finite() && ms.abs() < 9.0e18 { Ok(ms as i64) } else { Err(bad()) };
    }
    let (neg, t_abs) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t_abs.split_once('.').unwrap_or((t_abs, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: i64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| bad())? };
    // Milliseconds from the first three fraction digits; finer digits are truncated.
    let mut ms_frac = 0i64;
    for (k, b) in frac.bytes().chain(std::iter::repeat(b'0')).take(3).enumerate() {
        ms_frac += i64::from(b - b'0') * [100, 10, 1][k];
    }
    let ms = secs.checked_mul(1000).and_then(|m| m.checked_add(ms_frac)).ok_or_else(bad)?;
    Ok(if neg { -ms } else { ms })
}

/// The common form `digits[.digits]` with at most 15 integer digits (so no overflow),
/// without the general path's scans and splits; `None` sends anything else there.
/// Same result as the general path: fraction digits past the third are truncated.
fn plain_seconds(b: &[u8]) -> Option<i64> {
    let int_len = b.iter().position(|c| !c.is_ascii_digit()).unwrap_or(b.len());
    if int_len == 0 || int_len > 15 {
        return None;
    }
    let digits = |d: &[u8]| d.iter().fold(0i64, |n, &c| n * 10 + i64::from(c - b'0'));
    let secs = digits(&b[..int_len]);
    let frac = match &b[int_len..] {
        [] => return Some(secs * 1000),
        [b'.', frac @ ..] if frac.iter().all(u8::is_ascii_digit) => frac,
        _ => return None,
    };
    let mut ms = 0;
    for k in 0..3 {
        ms = ms * 10 + frac.get(k).map_or(0, |&c| i64::from(c - b'0'));
    }
    Some(secs * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str, seconds: bool) -> Parsed {
        match parse_line(line, seconds) {
            Ok(Line::Samples(mut v)) if v.len() == 1 => v.remove(0),
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn labels_with_escapes() {
        let p = one(r#"up{job="a\\b",msg="say \"hi\"\nbye",x="{,}"} 1 1700000000000"#, false);
        assert_eq!(p.labels[0], ("__name__".into(), "up".into()));
        assert_eq!(p.labels[1], ("job".into(), r"a\b".into()));
        assert_eq!(p.labels[2], ("msg".into(), "say \"hi\"\nbye".into()));
        assert_eq!(p.labels[3], ("x".into(), "{,}".into()));
        assert_eq!(p.ts_ms, Some(1_700_000_000_000));
        assert_eq!(p.value, 1.0);
    }

    #[test]
    fn special_values_and_negatives() {
        assert!(one("m NaN 1", false).value.is_nan());
        assert_eq!(one("m +Inf 1", false).value, f64::INFINITY);
        assert_eq!(one("m -Inf 1", false).value, f64::NEG_INFINITY);
        assert_eq!(one("m -2.5e3 1", false).value, -2500.0);
        assert_eq!(one("m{} -0.25", false).value, -0.25);
    }

    #[test]
    fn openmetrics_seconds_are_exact() {
        assert_eq!(one("m 1 1704067200.123", true).ts_ms, Some(1_704_067_200_123));
        assert_eq!(one("m 1 1704067200.5", true).ts_ms, Some(1_704_067_200_500));
        assert_eq!(one("m 1 1704067200", true).ts_ms, Some(1_704_067_200_000));
        assert_eq!(one("m 1 1.7e9", true).ts_ms, Some(1_700_000_000_000));
        assert_eq!(one("m 1 -1.5", true).ts_ms, Some(-1_500));
        assert!(parse_line("m 1 12a", true).is_err());
        for t in ["0", "17", "17.", "17.5", "17.0625", "1704067200.123456", "999999999999999", "9999999999999999.5"] {
            // A leading `+` sends the same number down the general path.
            let general = parse_seconds(&format!("+{t}")).ok();
            assert_eq!(parse_seconds(t).ok(), general, "{t}: the fast path agrees with the general one");
        }
        for t in [
            "0",
            "-0",
            "17",
            "-17",
            "+17",
            "999999999999999999",
            "9223372036854775807",
            "9223372036854775808",
            "-",
            "",
            "1.5",
            "1e3",
            "٣",
        ] {
            assert_eq!(timestamp_from_bytes(t.as_bytes(), false), parse_millis(t).ok(), "{t:?} as ms");
            assert_eq!(timestamp_from_bytes(t.as_bytes(), true), parse_seconds(t).ok(), "{t:?} as s");
        }
        assert!(parse_line("m 1 1.5", false).is_err(), "Prometheus text wants integer ms");
    }

    #[test]
    fn missing_timestamp_comments_eof_and_exemplars() {
        assert_eq!(one("m 3", true).ts_ms, None);
        assert!(matches!(parse_line("# HELP m help", true), Ok(Line::Skip)));
        assert!(matches!(parse_line("# TYPE m gauge", true), Ok(Line::Skip)));
        assert!(matches!(parse_line("   ", true), Ok(Line::Skip)));
        assert!(matches!(parse_line("# EOF", true), Ok(Line::Eof)));
        assert_eq!(one(r#"m_total 3 17 # {trace="x"} 1 17"#, true).ts_ms, Some(17_000));
        assert_eq!(one(r#"{__name__="m",a="b"} 3 17"#, false).labels[0].1, "m");
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            "m",
            "m 1 2 3",
            "m abc 1",
            r#"m{a="b} 1 2"#,
            r#"m{a=b} 1 2"#,
            r#"m{a="b"x} 1 2"#,
            r#"m{a="\q"} 1 2"#,
            r#"{a="b"} 1 2"#,
            "m{a=\"b\"}1 2",
        ] {
            assert!(parse_line(bad, false).is_err(), "{bad:?} should be malformed");
        }
    }

    #[test]
    fn key_is_the_series_text() {
        assert_eq!(one(r#"m{a="b"} 1 2"#, false).key, r#"m{a="b"}"#);
        assert_eq!(one("m 1 2", false).key, "m");
    }
}

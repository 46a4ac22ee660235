//! Parameters of the query API as Prometheus takes them: from the URL query and, for
//! POST, an `application/x-www-form-urlencoded` body; repeated keys (`match[]`) kept.
//! Times are Unix seconds (fractional) or RFC 3339; durations Prometheus units or
//! seconds (the command line's parsers, `timeparse.rs`).

use crate::timeparse;

#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>, form: Option<&[u8]>) -> Self {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            v.extend(form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        if let Some(f) = form {
            v.extend(form_urlencoded::parse(f).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        Self(v)
    }

    /// The first value of `key`, if given and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    pub fn required(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("missing parameter {key:?}"))
    }

    /// A time parameter in ms; `default` when absent.
    pub fn time(&self, key: &str, default: i64) -> Result<i64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => timeparse::parse_time(v)
                .map(|t| t.resolve(timeparse::now_ms()))
                .map_err(|e| format!("invalid parameter {key:?}: {e}")),
        }
    }

    /// A time parameter in ms that must be given.
    pub fn required_time(&self, key: &str) -> Result<i64, String> {
        self.required(key)?;
        self.time(key, 0)
    }

    /// A duration parameter in ms.
    pub fn duration(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key)
            .map(|v| timeparse::parse_duration(v).map_err(|e| format!("invalid parameter {key:?}: {e}")))
            .transpose()
    }
}

/// Unix seconds as Prometheus's JSON writes them (`jsonutil.MarshalTimestamp`): the
/// integer seconds, then `.` and three digits when there are milliseconds.
pub fn write_timestamp(out: &mut String, ms: i64) {
    use std::fmt::Write;
    let (sign, abs) = if ms < 0 { ("-", ms.unsigned_abs()) } else { ("", ms.unsigned_abs()) };
    let _ = write!(out, "{sign}{}", abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// A value as Prometheus writes it (`strconv.FormatFloat(v, 'f', -1, 64)`): the
/// shortest exact decimal without exponent, `NaN`, `+Inf`, `-Inf`.
pub fn write_value(out: &mut String, v: f64) {
    use std::fmt::Write;
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `s` as a JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_values_print_as_prometheus_does() {
        let ts = |ms| {
            let mut s = String::new();
            write_timestamp(&mut s, ms);
            s
        };
        assert_eq!(ts(1_700_000_000_000), "1700000000");
        assert_eq!(ts(1_700_000_000_500), "1700000000.500");
        assert_eq!(ts(1_700_000_000_007), "1700000000.007");
        assert_eq!(ts(-1_500), "-1.500");
        let v = |x| {
            let mut s = String::new();
            write_value(&mut s, x);
            s
        };
        assert_eq!(v(1e21), "1000000000000000000000");
        assert_eq!(v(0.1), "0.1");
        assert_eq!(v(-0.0), "-0");
        assert_eq!(v(f64::NEG_INFINITY), "-Inf");
        assert_eq!(v(f64::NAN), "NaN");
    }

    #[test]
    fn strings_escape_and_params_repeat() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, r#""a\"b\\c\n\u0001é""#);
        assert_eq!(serde_json::from_str::<String>(&s).ok().as_deref(), Some("a\"b\\c\n\u{1}é"));
        let p = Params::parse(Some("match%5B%5D=up&match[]=x&step=15s"), Some(b"query=sum(up)&time=1.5"));
        assert_eq!(p.all("match[]"), ["up", "x"]);
        assert_eq!(p.duration("step"), Ok(Some(15_000)));
        assert_eq!(p.time("time", 0), Ok(1_500));
        assert_eq!(p.required("query"), Ok("sum(up)"));
        assert!(p.required("nope").is_err());
    }
}

//! The fast paths for lines of series seen before. Nearly every line of a big
//! OpenMetrics / Prometheus text or line-protocol file repeats series already imported; for those
//! the full parser's label parsing and allocations are wasted work. This path splits
//! `SERIES VALUE TIMESTAMP` from the right and, only if `SERIES` is byte-for-byte a key
//! the full parser produced earlier, reads the value and timestamp. Anything else
//! (a new series, tabs, exemplars, a missing timestamp, a bad number) returns `None`
//! and the line takes the full parser, which also reports errors: a hit here cannot
//! disagree with what the full parser would have made of the line.

use super::influx::{field_value, Precision};
use super::prometheus::timestamp_from_bytes;
use super::value_from_bytes;
use crate::SeriesId;
use std::collections::HashMap;

/// `(series, timestamp ms, value)` when the line is a known series with a timestamp.
pub fn parse(line: &[u8], seconds: bool, refs: &HashMap<String, SeriesId>) -> Option<(SeriesId, i64, f64)> {
    parse_with(line, seconds, |key| std::str::from_utf8(key).ok().and_then(|k| refs.get(k)).copied())
}

/// Like [`parse`] with any map: `lookup` gets the series text (`name{labels}`, the bytes
/// before the value) and must answer only for keys the full parser produced
/// ([`crate::formats::Parsed::key`]), which is what keeps the two paths in agreement.
pub fn parse_with(
    line: &[u8],
    seconds: bool,
    lookup: impl FnOnce(&[u8]) -> Option<SeriesId>,
) -> Option<(SeriesId, i64, f64)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let ts_at = line.iter().rposition(|&b| b == b' ')?;
    let value_at = line[..ts_at].iter().rposition(|&b| b == b' ')?;
    let id = lookup(&line[..value_at])?;
    let ts_ms = timestamp_from_bytes(&line[ts_at + 1..], seconds)?;
    Some((id, ts_ms, value_from_bytes(&line[value_at + 1..ts_at])?))
}

/// The fast path for InfluxDB line protocol: a line `SERIES FIELD=V[,FIELD=V...] TS`
/// without escapes, quotes or extra spaces, every field of which is known. `series`
/// gets the series text (measurement and tags as written) and returns a handle, and
/// `field(handle, series text, field key)` must answer only for pairs whose key
/// `series\0field` the full parser produced ([`crate::formats::Parsed::key`]).
/// Fills `out` with `(ref, value)` per field and returns the timestamp in ms; `None`
/// (with `out` meaningless) sends the line to the full parser.
pub fn parse_influx_with<S>(
    line: &[u8],
    precision: Precision,
    series: impl FnOnce(&[u8]) -> Option<S>,
    mut field: impl FnMut(&S, &[u8], &[u8]) -> Option<SeriesId>,
    out: &mut Vec<(SeriesId, f64)>,
) -> Option<i64> {
    out.clear();
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.first().is_none_or(|b| b.is_ascii_whitespace() || *b == b'#')
        || memchr::memchr2(b'\\', b'"', line).is_some()
    {
        return None;
    }
    let sp = memchr::memchr(b' ', line)?;
    let (text, rest) = (&line[..sp], &line[sp + 1..]);
    let sp = memchr::memchr(b' ', rest)?;
    let (fields, ts) = (&rest[..sp], &rest[sp + 1..]);
    if fields.is_empty() {
        return None;
    }
    let ts_ms = precision.to_ms(timestamp_from_bytes(ts, false)?)?;
    let handle = series(text)?;
    for f in fields.split(|&b| b == b',') {
        let eq = memchr::memchr(b'=', f)?;
        let (key, v) = (&f[..eq], &f[eq + 1..]);
        if key.is_empty() {
            return None;
        }
        let id = field(&handle, text, key)?;
        out.push((id, field_value(std::str::from_utf8(v).ok()?).ok()??));
    }
    Some(ts_ms)
}

#[cfg(test)]
mod tests {
    use super::super::{prometheus, Line};
    use super::*;

    /// Every line the fast path answers, it answers as the full parser does.
    #[test]
    fn agrees_with_the_full_parser_or_declines() {
        let lines = [
            ("m{a=\"x y\",b=\"}\"} 1.5 1704067200.25", true),
            ("m{a=\"x y\"} 2", true),
            ("m{a=\"x y\"} NaN 1704067200", true),
            ("m{a=\"x y\"} -Inf 17e8", true),
            ("m{a=\"x y\"} 3 1704067200 # {trace=\"1\"} 1 2", true),
            ("m{a=\"x y\"}\t3\t1704067200", true),
            ("m{a=\"x y\"} 3 1704067200 ", true),
            ("m{a=\"x y\"} bad 1704067200", true),
            ("up 1 1700000000000\r\n", false),
            ("up 1 1700000000000.5", false),
            ("up  1 1700000000000", false),
        ];
        let mut refs = HashMap::new();
        for (line, seconds) in lines {
            let trimmed = line.trim_end_matches(['\n', '\r']);
            let full = prometheus::parse_line(trimmed, seconds);
            if let Ok(Line::Samples(s)) = &full {
                refs.insert(s[0].key.clone(), SeriesId(7));
            }
            match (parse(line.as_bytes(), seconds, &refs), full) {
                (None, _) => {}
                (Some((id, ts, v)), Ok(Line::Samples(s))) => {
                    assert_eq!(id, SeriesId(7), "{line}");
                    assert_eq!(Some(ts), s[0].ts_ms, "{line}");
                    assert!(v.to_bits() == s[0].value.to_bits(), "{line}");
                }
                (Some(fast), full) => panic!("{line:?}: fast path said {fast:?}, full parser {full:?}"),
            }
        }
        // The common case does take the fast path.
        assert!(parse(b"m{a=\"x y\",b=\"}\"} 4 1704067201\n", true, &refs).is_some());
        assert!(parse(b"up 2 1700000001000\n", false, &refs).is_some());
    }

    /// Every line protocol line the fast path answers, it answers as the full parser
    /// does: same series, values and timestamp, in the same order.
    #[test]
    fn influx_agrees_with_the_full_parser_or_declines() {
        use super::super::influx;
        let lines = [
            "cpu,host=a usage_user=1.5,usage_system=2i,up=t,down=F,n=-3e2 1700000000",
            "cpu,host=a usage_user=1.5,usage_system=2i 1700000000\r\n",
            "cpu,host=a usage_user=1.5,name=\"x y\" 1700000000",
            "cpu,host=a usage_user=1.5  1700000000",
            "cpu,host=a  usage_user=1.5 1700000000",
            "cpu,host=a usage_user=1.5 1700000000 ",
            "cpu,host=a usage_user=1.5 -1",
            "cpu,host=a usage_user=1.5",
            "cpu,host=a usage_user=1.5,usage_user=2 1",
            "cpu,host=a usage_user=abc 1",
            "cpu,host=a usage_user= 1",
            "cpu,host=a =1 1",
            r"cpu,host=a\ b usage_user=1 1",
            " cpu,host=a usage_user=1 1",
            "cpu,host=a usage_user=1 99999999999999999999",
            "m u=7u,i=-4i 1500",
            "m u=7u,i=-4i 1700000000000000000",
        ];
        for precision in [influx::Precision::Ns, influx::Precision::Us, influx::Precision::Ms, influx::Precision::S] {
            let mut refs: HashMap<Vec<u8>, SeriesId> = HashMap::new();
            let mut out = Vec::new();
            for (n, line) in lines.iter().enumerate() {
                let full = influx::parse_line(line.trim_end_matches(['\n', '\r']), precision);
                if let Ok(Line::Samples(s)) = &full {
                    for (k, p) in s.iter().enumerate() {
                        refs.insert(p.key.clone().into_bytes(), SeriesId(100 * n as u64 + k as u64 + 1));
                    }
                }
                let lookup = |_: &(), text: &[u8], key: &[u8]| refs.get(&[text, b"\0", key].concat()).copied();
                match (parse_influx_with(line.as_bytes(), precision, |_| Some(()), lookup, &mut out), full) {
                    (None, _) => {}
                    (Some(ts), Ok(Line::Samples(s))) => {
                        assert_eq!(out.len(), s.len(), "{line}");
                        for ((id, v), p) in out.iter().zip(&s) {
                            assert_eq!(Some(*id), refs.get(p.key.as_bytes()).copied(), "{line}");
                            assert!(v.to_bits() == p.value.to_bits() && Some(ts) == p.ts_ms, "{line}");
                        }
                    }
                    (Some(ts), full) => panic!("{line:?}: fast path said {ts} {out:?}, full parser {full:?}"),
                }
            }
            let common = b"cpu,host=a usage_user=2,usage_system=3i 1700000010\n";
            let lookup = |_: &(), text: &[u8], key: &[u8]| refs.get(&[text, b"\0", key].concat()).copied();
            assert!(parse_influx_with(common, precision, |_| Some(()), lookup, &mut out).is_some());
        }
    }
}

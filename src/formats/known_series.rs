//! The fast path for exposition lines of series seen before. Nearly every line of a
//! big OpenMetrics / Prometheus text file repeats a series already imported; for those
//! the full parser's label parsing and allocations are wasted work. This path splits
//! `SERIES VALUE TIMESTAMP` from the right and, only if `SERIES` is byte-for-byte a key
//! the full parser produced earlier, reads the value and timestamp. Anything else
//! (a new series, tabs, exemplars, a missing timestamp, a bad number) returns `None`
//! and the line takes the full parser, which also reports errors: a hit here cannot
//! disagree with what the full parser would have made of the line.

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
}

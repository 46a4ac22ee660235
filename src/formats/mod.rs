//! Text ingest formats, shared by `chronolith import`, the server's write endpoints and
//! the fuzz targets: OpenMetrics / Prometheus text exposition with timestamps, and
//! InfluxDB line protocol. Each parser takes one line and returns the samples on it, a
//! skip (comments, blank lines) or the OpenMetrics end marker; a malformed line is an
//! `Err` with a message saying what is wrong, never a panic.

pub mod influx;
pub mod known_series;
pub mod prometheus;

/// One sample parsed from a line. `key` identifies the series cheaply (the series'
/// text as written), so known series skip building and hashing labels in the engine.
#[derive(Debug)]
pub struct Parsed {
    pub key: String,
    pub labels: Vec<(String, String)>,
    pub ts_ms: Option<i64>,
    pub value: f64,
}

/// What one line holds.
#[derive(Debug)]
pub enum Line {
    Samples(Vec<Parsed>),
    Skip,
    /// OpenMetrics `# EOF`: the rest of the input is ignored.
    Eof,
}

/// A sample value: decimal, exponent, `NaN`, `+Inf`, `-Inf` (and the other spellings
/// of infinity and NaN that Rust's own `f64` parser takes).
pub fn parse_value(v: &str) -> Result<f64, String> {
    value_from_bytes(v.as_bytes()).ok_or_else(|| format!("bad value {v:?}"))
}

/// [`parse_value`] on bytes, for the fast path that never makes a `&str`. fast-float2
/// accepts exactly the syntax of `str::parse::<f64>` (checked in the tests below) at a
/// fraction of the cost, and needs no UTF-8 check first.
pub fn value_from_bytes(v: &[u8]) -> Option<f64> {
    fast_float2::parse(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Odd input is an error or a skip, never a panic (byte slicing at a char boundary).
    #[test]
    fn odd_input_never_panics() {
        for line in ["\\", "é{ü=\"\\", "m\\", "m,t=\\ f=1 \\", "m{é=\"ü\"} ∞ é", "{}", "}", "=", ",,,", "\"", "m{,} 1"]
        {
            let _ = prometheus::parse_line(line, true);
            let _ = prometheus::parse_line(line, false);
            let _ = influx::parse_line(line, influx::Precision::Ns);
        }
    }

    #[test]
    fn values() {
        assert!(parse_value("NaN").is_ok_and(f64::is_nan));
        assert_eq!(parse_value("-Inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_value("-1e-3"), Ok(-0.001));
        assert!(parse_value("1,5").is_err());
    }

    /// The value parser takes what Rust's `f64` parser takes, to the bit.
    #[test]
    fn values_agree_with_std() {
        let odd = [
            "1",
            "+1",
            "-1",
            "1.",
            ".1",
            "+.1",
            "-.1",
            ".",
            "+",
            "-",
            "",
            "1e5",
            "1E5",
            "1e",
            "1e+",
            "1e-5",
            "e5",
            "inf",
            "+Inf",
            "-INF",
            "infinity",
            "Infinity",
            "infin",
            "nan",
            "NaN",
            "+nan",
            "NAN",
            "0x10",
            "1_0",
            " 1",
            "1 ",
            "1.5.5",
            "00012.50",
            "1e400",
            "1e-400",
            "-0",
            "0.1e-3",
            "12345678901234567890.5",
            "∞",
            "1,5",
            "1e5.5",
            "++1",
            "+-1",
            "nan(1)",
            "snan",
            "infinityy",
            "4.9e-324",
            "2.2250738585072011e-308",
        ];
        let decimals = (0..20_000).map(|i| format!("{}", f64::from(i * 7919 % 1_000_003) / 100.0));
        for v in odd.iter().map(|s| (*s).to_string()).chain(decimals) {
            let ours = parse_value(&v).ok();
            let std = v.parse::<f64>().ok();
            assert_eq!(ours.map(f64::to_bits), std.map(f64::to_bits), "{v:?}");
        }
    }
}

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

/// A sample value: decimal, exponent, `NaN`, `+Inf`, `-Inf`.
pub fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => v.parse::<f64>().map_err(|_| format!("bad value {v:?}")),
    }
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
}

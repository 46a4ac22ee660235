//! The text ingest parsers (`chronolith::formats`) on arbitrary lines: OpenMetrics and
//! Prometheus text (both timestamp units), InfluxDB line protocol (every precision) and
//! the known-series fast path. None may panic; a sample's labels are never empty; and
//! the fast path, whenever it answers, agrees exactly with the full parser (same series,
//! timestamp and value bits), which is what lets the importer skip the full parser.
#![no_main]

use chronolith::formats::{influx, known_series, prometheus, Line};
use chronolith::SeriesId;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').collect();
    for seconds in [false, true] {
        let mut refs: HashMap<String, SeriesId> = HashMap::new();
        let mut full: Vec<Option<(String, Option<i64>, u64)>> = Vec::with_capacity(lines.len());
        for line in &lines {
            let parsed = prometheus::parse_line(line, seconds);
            let one = match parsed {
                Ok(Line::Samples(s)) => {
                    assert!(s.iter().all(|p| !p.labels.is_empty() && !p.key.is_empty()), "{line:?}");
                    match s.as_slice() {
                        [p] => Some((p.key.clone(), p.ts_ms, p.value.to_bits())),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some((key, Some(_), _)) = &one {
                let next = SeriesId(refs.len() as u64 + 1);
                refs.entry(key.clone()).or_insert(next);
            }
            full.push(one);
        }
        for (line, full) in lines.iter().zip(&full) {
            if let Some((id, t, v)) = known_series::parse(line.as_bytes(), seconds, &refs) {
                let Some((key, ts, bits)) = full else {
                    panic!("fast path accepted {line:?}, which the full parser does not");
                };
                assert_eq!(refs.get(key), Some(&id), "fast path named another series for {line:?}");
                assert_eq!(*ts, Some(t), "timestamps differ for {line:?}");
                assert_eq!(*bits, v.to_bits(), "values differ for {line:?}");
            }
        }
    }
    for line in &lines {
        for p in [influx::Precision::Ns, influx::Precision::Us, influx::Precision::Ms, influx::Precision::S] {
            if let Ok(Line::Samples(s)) = influx::parse_line(line, p) {
                assert!(s.iter().all(|x| !x.labels.is_empty() && !x.key.is_empty()), "{line:?}");
            }
        }
    }
});

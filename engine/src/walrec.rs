//! Payloads of the engine's WAL records (the framing, checksums and segments belong to
//! `chronolith-wal`; the byte layout of these payloads is specified in `engine/FORMAT.md`).
//!
//! * `SERIES` records live in the series log: new series ids and their labels.
//! * `SAMPLES` records live in the sample log: one per appended batch, only the samples
//!   the head accepted.

use crate::labels::Labels;
use crate::types::SeriesId;
use crate::varint::{put_ivarint, put_uvarint, Reader};

pub const RECORD_SERIES: u8 = 1;
pub const RECORD_SAMPLES: u8 = 2;

/// Value encodings of a samples record.
const VALUES_RAW: u8 = 0;
/// `VALUES_DECIMAL + s`: every value is an integer divided by 10^s, stored as a varint.
const VALUES_DECIMAL: u8 = 1;
const DECIMAL_SCALE_MAX: u8 = 4;
const POW10: [f64; 5] = [1.0, 10.0, 100.0, 1000.0, 10000.0];
/// Integers above this lose precision in f64; such values are stored raw.
const DECIMAL_INT_MAX: f64 = 9_007_199_254_740_992.0;

/// A payload that does not decode, with the byte offset where it stopped making sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub offset: usize,
    pub reason: &'static str,
}

pub fn encode_series(entries: &[(SeriesId, &Labels)], out: &mut Vec<u8>) {
    put_uvarint(out, entries.len() as u64);
    for (id, labels) in entries {
        put_uvarint(out, id.0);
        put_uvarint(out, labels.len() as u64);
        for (n, v) in labels.iter() {
            put_uvarint(out, n.len() as u64);
            out.extend_from_slice(n.as_bytes());
            put_uvarint(out, v.len() as u64);
            out.extend_from_slice(v.as_bytes());
        }
    }
}

pub fn decode_series(payload: &[u8], mut f: impl FnMut(SeriesId, Labels)) -> Result<(), RecordError> {
    let mut r = Reader::new(payload);
    let err = |r: &Reader<'_>, reason| RecordError { offset: r.pos(), reason };
    let n = r.uvarint().ok_or_else(|| err(&r, "series count"))?;
    for _ in 0..n {
        let id = r.uvarint().ok_or_else(|| err(&r, "series id"))?;
        let nl = r.len_prefix().ok_or_else(|| err(&r, "label count"))?;
        let mut pairs = Vec::with_capacity(nl);
        for _ in 0..nl {
            let name = r.str().ok_or_else(|| err(&r, "label name"))?;
            let value = r.str().ok_or_else(|| err(&r, "label value"))?;
            pairs.push((name.to_string(), value.to_string()));
        }
        let labels = Labels::new(pairs).map_err(|_| err(&r, "invalid label set"))?;
        if id == 0 {
            return Err(err(&r, "series id 0"));
        }
        f(SeriesId(id), labels);
    }
    if r.remaining() != 0 {
        return Err(err(&r, "trailing bytes"));
    }
    Ok(())
}

/// The smallest decimal scale at which `v` round-trips bit-exactly, if any.
#[inline]
fn exact_at_scale(v: f64, s: u8) -> bool {
    let p = POW10[usize::from(s)];
    let i = (v * p).round();
    // Compare through the integer the encoder writes: -0.0 rounds to the integer 0,
    // which decodes as +0.0, so it must not qualify.
    i.abs() < DECIMAL_INT_MAX && ((i as i64) as f64 / p).to_bits() == v.to_bits()
}

/// Encodes samples `(id, t, v)` as one payload. Decimal values (as most gauges are)
/// are stored as scaled integers: about 5 bytes a sample instead of 11+.
pub fn encode_samples(ids: &[SeriesId], ts: &[i64], vs: &[f64], out: &mut Vec<u8>) {
    debug_assert!(ids.len() == ts.len() && ts.len() == vs.len());
    let n = ids.len().min(ts.len()).min(vs.len());
    let mut scale: Option<u8> = Some(0);
    for &v in &vs[..n] {
        let Some(mut s) = scale else { break };
        while !exact_at_scale(v, s) {
            s += 1;
            if s > DECIMAL_SCALE_MAX {
                break;
            }
        }
        scale = (s <= DECIMAL_SCALE_MAX).then_some(s);
    }
    out.reserve(n * 6 + 16);
    put_uvarint(out, n as u64);
    let base_t = ts.first().copied().unwrap_or(0);
    put_ivarint(out, base_t);
    let max_t = ts[..n].iter().copied().max().unwrap_or(base_t);
    put_ivarint(out, max_t.wrapping_sub(base_t));
    out.push(scale.map_or(VALUES_RAW, |s| VALUES_DECIMAL + s));
    let mut prev_id = 0i64;
    for i in 0..n {
        let id = ids[i].0 as i64;
        put_ivarint(out, id.wrapping_sub(prev_id));
        prev_id = id;
        put_ivarint(out, ts[i].wrapping_sub(base_t));
        match scale {
            Some(s) => put_ivarint(out, (vs[i] * POW10[usize::from(s)]).round() as i64),
            None => out.extend_from_slice(&vs[i].to_bits().to_le_bytes()),
        }
    }
}

/// The number of samples a samples payload claims (bounded by the caller before use).
pub fn samples_count(payload: &[u8]) -> Option<usize> {
    usize::try_from(Reader::new(payload).uvarint()?).ok()
}

/// The newest timestamp in a samples payload, read from its header alone, so replay can
/// skip records that sealed blocks already hold without decoding them.
pub fn samples_max_t(payload: &[u8]) -> Option<i64> {
    let mut r = Reader::new(payload);
    r.uvarint()?;
    let base_t = r.ivarint()?;
    Some(base_t.wrapping_add(r.ivarint()?))
}

/// Decodes a samples payload, calling `f(id, t, v)` for each sample in order.
pub fn decode_samples(payload: &[u8], mut f: impl FnMut(SeriesId, i64, f64)) -> Result<(), RecordError> {
    let mut r = Reader::new(payload);
    let err = |r: &Reader<'_>, reason| RecordError { offset: r.pos(), reason };
    let n = r.uvarint().ok_or_else(|| err(&r, "sample count"))?;
    // Every sample takes at least 3 bytes: a corrupt count cannot make us loop long.
    if n > (r.remaining() as u64) / 3 + 1 {
        return Err(err(&r, "sample count exceeds payload"));
    }
    let base_t = r.ivarint().ok_or_else(|| err(&r, "base timestamp"))?;
    let max_t = base_t.wrapping_add(r.ivarint().ok_or_else(|| err(&r, "max timestamp"))?);
    let mode = r.u8().ok_or_else(|| err(&r, "value mode"))?;
    let scale = match mode {
        VALUES_RAW => None,
        m if (VALUES_DECIMAL..=VALUES_DECIMAL + DECIMAL_SCALE_MAX).contains(&m) => {
            Some(POW10[usize::from(m - VALUES_DECIMAL)])
        }
        _ => return Err(err(&r, "unknown value mode")),
    };
    let mut id = 0i64;
    for _ in 0..n {
        id = id.wrapping_add(r.ivarint().ok_or_else(|| err(&r, "series id delta"))?);
        let t = base_t.wrapping_add(r.ivarint().ok_or_else(|| err(&r, "timestamp delta"))?);
        let v = match scale {
            Some(p) => r.ivarint().ok_or_else(|| err(&r, "decimal value"))? as f64 / p,
            None => f64::from_bits(r.u64_le().ok_or_else(|| err(&r, "raw value"))?),
        };
        if id <= 0 {
            return Err(err(&r, "series id out of range"));
        }
        if t > max_t {
            return Err(err(&r, "timestamp after the record's max"));
        }
        f(SeriesId(id as u64), t, v);
    }
    if r.remaining() != 0 {
        return Err(err(&r, "trailing bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(ids: &[SeriesId], ts: &[i64], vs: &[f64]) -> Vec<(SeriesId, i64, u64)> {
        let mut buf = Vec::new();
        encode_samples(ids, ts, vs, &mut buf);
        let mut got = Vec::new();
        let res = decode_samples(&buf, |id, t, v| got.push((id, t, v.to_bits())));
        assert_eq!(res, Ok(()));
        got
    }

    #[test]
    fn gauges_use_decimal_mode_and_are_small() {
        let ids: Vec<SeriesId> = (1..=1000).map(SeriesId).collect();
        let ts = vec![1_700_000_000_000i64; 1000];
        let vs: Vec<f64> = (0..1000).map(|i| f64::from((i * 7919) % 10_000) / 100.0).collect();
        let mut buf = Vec::new();
        encode_samples(&ids, &ts, &vs, &mut buf);
        assert!(buf.len() < 1000 * 5, "{} bytes", buf.len());
        let got = round_trip(&ids, &ts, &vs);
        assert!(got.iter().zip(&vs).all(|(g, v)| g.2 == v.to_bits()));
        assert_eq!(samples_max_t(&buf), Some(1_700_000_000_000));
    }

    #[test]
    fn special_values_fall_back_to_raw() {
        // Regression: -0.0 among decimals once took decimal mode and came back as +0.0.
        let got = round_trip(&[SeriesId(1); 3], &[1, 2, 3], &[1.5, -0.0, 2.25]);
        assert_eq!(got[1].2, (-0.0f64).to_bits());
        let vs = [0.5, -0.0, f64::NAN, f64::INFINITY, 5e-324, 0.1 + 0.2];
        let ids = vec![SeriesId(3); vs.len()];
        let ts: Vec<i64> = (0..vs.len() as i64).collect();
        let got = round_trip(&ids, &ts, &vs);
        assert!(got.iter().zip(&vs).all(|(g, v)| g.2 == v.to_bits()));
    }

    proptest! {
        #[test]
        fn samples_round_trip(rows in proptest::collection::vec((1u64..1_000_000, any::<i64>(), any::<u64>(), 0u8..3), 0..200)) {
            let ids: Vec<SeriesId> = rows.iter().map(|r| SeriesId(r.0)).collect();
            let ts: Vec<i64> = rows.iter().map(|r| r.1).collect();
            // Mix arbitrary bit patterns with decimals so both modes are exercised.
            let vs: Vec<f64> = rows.iter().map(|r| match r.3 {
                0 => f64::from_bits(r.2),
                _ => (r.2 % 1_000_000) as f64 / 100.0,
            }).collect();
            let got = round_trip(&ids, &ts, &vs);
            prop_assert_eq!(got.len(), rows.len());
            for (g, i) in got.iter().zip(0..) {
                prop_assert_eq!(g.0, ids[i]);
                prop_assert_eq!(g.1, ts[i]);
                prop_assert_eq!(g.2, vs[i].to_bits());
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_samples(&bytes, |_, _, _| {});
            let _ = decode_series(&bytes, |_, _| {});
        }
    }

    #[test]
    fn series_round_trip() -> crate::error::Result<()> {
        let a = Labels::metric("cpu", [("host", "a")])?;
        let b = Labels::metric("mem", [("host", "b"), ("dc", "x")])?;
        let mut buf = Vec::new();
        encode_series(&[(SeriesId(1), &a), (SeriesId(7), &b)], &mut buf);
        let mut got = Vec::new();
        assert_eq!(decode_series(&buf, |id, l| got.push((id, l))), Ok(()));
        assert_eq!(got, vec![(SeriesId(1), a), (SeriesId(7), b)]);
        assert!(decode_series(&buf[..buf.len() - 1], |_, _| {}).is_err());
        Ok(())
    }
}

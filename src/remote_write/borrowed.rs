//! A zero-copy reader of remote-write 1.0 `WriteRequest` protobufs (field numbers of
//! Prometheus's `prompb/remote.proto` and `types.proto`, as in
//! `chronolith::remote_write`). prost would allocate two `String`s per label, 20-odd
//! per series; this records byte ranges into the decompressed buffer instead, and the
//! label bytes of each series (the encoded `Label` fields, as sent) become the series
//! cache key of `chronolith serve`. Strings are checked as UTF-8 only when a series is
//! new (by the caller). The fuzz target `remote_write_decode` checks it agrees with the
//! prost messages of this module on arbitrary bytes.
//!
//! Wire rules followed: fields in any order, unknown fields skipped by wire type,
//! repeated scalar fields keep the last value, a known field with the wrong wire type
//! is an error (as prost does), groups are refused. Exemplars and metadata are skipped;
//! native histograms are counted so the answer can say they were not stored.

use std::ops::Range;

/// One `TimeSeries` of the request.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// The label fields' bytes: in the buffer when contiguous (always, from real
    /// senders), else copied into the decoder's scratch.
    key: Key,
    /// Into [`Decoded::samples`].
    pub samples: Range<usize>,
    pub histograms: usize,
}

#[derive(Clone, Debug)]
enum Key {
    Buf(Range<usize>),
    Scratch(Range<usize>),
}

impl Default for Key {
    fn default() -> Self {
        Key::Buf(0..0)
    }
}

/// A decoded request: ranges into the buffer it was decoded from. Reused between
/// requests to keep its allocations.
#[derive(Debug, Default)]
pub struct Decoded {
    pub series: Vec<Series>,
    /// (timestamp ms, value).
    pub samples: Vec<(i64, f64)>,
    scratch: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    Protobuf(String),
    TooManySamples { max: usize },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Protobuf(m) => write!(f, "invalid WriteRequest protobuf: {m}"),
            Self::TooManySamples { max } => {
                write!(f, "request holds more than {max} samples (--samples-per-request-max)")
            }
        }
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

fn bad(what: impl Into<String>) -> DecodeError {
    DecodeError::Protobuf(what.into())
}

const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_FIXED32: u64 = 5;

impl Decoded {
    pub fn clear(&mut self) {
        self.series.clear();
        self.samples.clear();
        self.scratch.clear();
    }

    /// The cache key of series `i`: its label fields as sent.
    pub fn key<'a>(&'a self, buf: &'a [u8], i: usize) -> &'a [u8] {
        match &self.series[i].key {
            Key::Buf(r) => &buf[r.clone()],
            Key::Scratch(r) => &self.scratch[r.clone()],
        }
    }

    /// The labels of series `i` as (name, value) byte strings, parsed from its key. Done
    /// only for series the cache does not know: `decode` checks the framing of each
    /// `Label` field but not its inside, which this does (a cached key is byte for byte
    /// one that passed here before).
    pub fn labels<'a>(&'a self, buf: &'a [u8], i: usize) -> Result<Vec<(&'a [u8], &'a [u8])>> {
        let key = self.key(buf, i);
        let mut r = Reader { buf: key, pos: 0, end: key.len() };
        let mut out = Vec::new();
        while r.pos < r.end {
            r.key()?;
            let (n, v) = label_fields(key, r.len_delimited()?)?;
            out.push((&key[n], &key[v]));
        }
        Ok(out)
    }

    /// Decodes `buf` (the snappy-decompressed body), refusing more than `samples_max`
    /// samples.
    pub fn decode(&mut self, buf: &[u8], samples_max: usize) -> Result<()> {
        self.clear();
        let mut r = Reader { buf, pos: 0, end: buf.len() };
        while r.pos < r.end {
            let (field, wire) = r.key()?;
            match (field, wire) {
                (1, WIRE_LEN) => {
                    let body = r.len_delimited()?;
                    self.series(buf, body, samples_max)?;
                }
                (1, _) => return Err(bad("timeseries field with wrong wire type")),
                _ => r.skip(wire)?,
            }
        }
        Ok(())
    }

    fn series(&mut self, buf: &[u8], body: Range<usize>, samples_max: usize) -> Result<()> {
        let mut r = Reader { buf, pos: body.start, end: body.end };
        let samples_start = self.samples.len();
        let mut histograms = 0;
        // The byte span of the label fields while they are contiguous.
        let mut span: Option<Range<usize>> = None;
        let mut contiguous = true;
        while r.pos < r.end {
            let field_start = r.pos;
            let (field, wire) = r.key()?;
            match (field, wire) {
                (1, WIRE_LEN) => {
                    r.len_delimited()?;
                    let whole = field_start..r.pos;
                    match &mut span {
                        None => span = Some(whole.clone()),
                        Some(s) if s.end == whole.start && contiguous => s.end = whole.end,
                        Some(_) => contiguous = false,
                    }
                }
                (2, WIRE_LEN) => {
                    let sample = r.len_delimited()?;
                    if self.samples.len() >= samples_max {
                        return Err(DecodeError::TooManySamples { max: samples_max });
                    }
                    self.samples.push(sample_fields(buf, sample)?);
                }
                (4, WIRE_LEN) => {
                    r.len_delimited()?;
                    histograms += 1;
                }
                (1..=4, _) => return Err(bad(format!("timeseries field {field} with wrong wire type"))),
                _ => r.skip(wire)?,
            }
        }
        let key = if contiguous {
            Key::Buf(span.unwrap_or(0..0))
        } else {
            // Rare: labels interleaved with other fields. A second pass copies the label
            // fields together (the first pass validated the framing).
            let start = self.scratch.len();
            let mut r = Reader { buf, pos: body.start, end: body.end };
            while r.pos < r.end {
                let field_start = r.pos;
                let (field, wire) = r.key()?;
                r.skip(wire)?;
                if field == 1 {
                    self.scratch.extend_from_slice(&buf[field_start..r.pos]);
                }
            }
            Key::Scratch(start..self.scratch.len())
        };
        self.series.push(Series { key, samples: samples_start..self.samples.len(), histograms });
        Ok(())
    }
}

/// `Label { string name = 1; string value = 2; }`
fn label_fields(buf: &[u8], body: Range<usize>) -> Result<(Range<usize>, Range<usize>)> {
    let mut r = Reader { buf, pos: body.start, end: body.end };
    let (mut name, mut value) = (body.start..body.start, body.start..body.start);
    while r.pos < r.end {
        match r.key()? {
            (1, WIRE_LEN) => name = r.len_delimited()?,
            (2, WIRE_LEN) => value = r.len_delimited()?,
            (1 | 2, _) => return Err(bad("label field with wrong wire type")),
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok((name, value))
}

/// `Sample { double value = 1; int64 timestamp = 2; }`
#[inline(always)]
fn sample_fields(buf: &[u8], body: Range<usize>) -> Result<(i64, f64)> {
    let mut r = Reader { buf, pos: body.start, end: body.end };
    // What every sender writes: the value, then the timestamp, nothing else.
    let b = &buf[body.clone()];
    if b.len() >= 11 && b[0] == 0x09 && b[9] == 0x10 {
        r.pos += 10;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[1..9]);
        let t = r.varint()? as i64;
        if r.pos == r.end {
            return Ok((t, f64::from_le_bytes(a)));
        }
        r.pos = body.start;
    }
    let (mut t, mut v) = (0i64, 0f64);
    while r.pos < r.end {
        match r.key()? {
            (1, WIRE_FIXED64) => v = f64::from_bits(r.fixed64()?),
            // int64: two's complement in a 64-bit varint.
            (2, WIRE_VARINT) => t = r.varint()? as i64,
            (1 | 2, _) => return Err(bad("sample field with wrong wire type")),
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok((t, v))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl Reader<'_> {
    #[inline(always)]
    fn varint(&mut self) -> Result<u64> {
        // Field keys and lengths under 128: one byte.
        if self.pos < self.end {
            let b = self.buf[self.pos];
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            if self.pos >= self.end {
                return Err(bad("truncated varint"));
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(bad("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(bad("varint longer than 10 bytes"))
    }

    #[inline(always)]
    fn key(&mut self) -> Result<(u64, u64)> {
        let k = self.varint()?;
        let field = k >> 3;
        if field == 0 {
            return Err(bad("field number 0"));
        }
        Ok((field, k & 7))
    }

    #[inline(always)]
    fn len_delimited(&mut self) -> Result<Range<usize>> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| bad("length overflows"))?;
        if len > self.end - self.pos {
            return Err(bad(format!("length {len} runs past the end of its message")));
        }
        let r = self.pos..self.pos + len;
        self.pos += len;
        Ok(r)
    }

    #[inline(always)]
    fn fixed64(&mut self) -> Result<u64> {
        let bytes = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(a))
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if n > self.end - self.pos {
            return Err(bad("truncated fixed-width field"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn skip(&mut self, wire: u64) -> Result<()> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.take(8).map(drop),
            WIRE_LEN => self.len_delimited().map(drop),
            WIRE_FIXED32 => self.take(4).map(drop),
            w => Err(bad(format!("unsupported wire type {w}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::{Label, Sample, TimeSeries, WriteRequest};
    use prost::Message;

    fn request() -> WriteRequest {
        let ts = |name: &str, host: &str, samples: Vec<Sample>| TimeSeries {
            labels: vec![
                Label { name: "__name__".into(), value: name.into() },
                Label { name: "host".into(), value: host.into() },
            ],
            samples,
        };
        WriteRequest {
            timeseries: vec![
                ts("up", "a", vec![Sample { value: 1.0, timestamp: 1_700_000_000_000 }]),
                ts("up", "b", vec![Sample { value: -2.5, timestamp: -5 }, Sample { value: f64::NAN, timestamp: 7 }]),
                ts("empty", "c", vec![]),
            ],
            metadata: vec![],
        }
    }

    /// What prost makes of `buf`, in this decoder's terms.
    /// Per series: labels and (timestamp, value bits).
    type Flat = Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>;

    fn via_prost(buf: &[u8]) -> Option<Flat> {
        let req = WriteRequest::decode(buf).ok()?;
        Some(
            req.timeseries
                .into_iter()
                .map(|t| {
                    let labels = t.labels.into_iter().map(|l| (l.name, l.value)).collect();
                    let samples = t.samples.into_iter().map(|s| (s.timestamp, s.value.to_bits())).collect();
                    (labels, samples)
                })
                .collect(),
        )
    }

    fn via_scan(buf: &[u8]) -> Option<Flat> {
        let mut d = Decoded::default();
        d.decode(buf, usize::MAX).ok()?;
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
        d.series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let labels = d
                    .labels(buf, i)
                    .ok()?
                    .into_iter()
                    .map(|(n, v)| Some((text(n)?, text(v)?)))
                    .collect::<Option<Vec<_>>>()?;
                let samples = d.samples[s.samples.clone()].iter().map(|&(t, v)| (t, v.to_bits())).collect();
                Some((labels, samples))
            })
            .collect()
    }

    #[test]
    fn agrees_with_prost_on_a_real_request() {
        let buf = request().encode_to_vec();
        let got = via_scan(&buf);
        assert!(got.is_some());
        assert_eq!(got, via_prost(&buf));
        let mut d = Decoded::default();
        d.decode(&buf, 100).unwrap();
        // Keys are the label bytes: equal label sets, equal keys; others differ.
        assert_ne!(d.key(&buf, 0), d.key(&buf, 1));
        let again = request().encode_to_vec();
        let mut d2 = Decoded::default();
        d2.decode(&again, 100).unwrap();
        assert_eq!(d.key(&buf, 1), d2.key(&again, 1));
    }

    #[test]
    fn sample_limit_is_enforced_while_decoding() {
        let buf = request().encode_to_vec();
        let mut d = Decoded::default();
        assert_eq!(d.decode(&buf, 2), Err(DecodeError::TooManySamples { max: 2 }));
        assert!(d.decode(&buf, 3).is_ok());
    }

    #[test]
    fn interleaved_labels_make_the_same_key_as_contiguous_ones() {
        // TimeSeries{label a=b, sample, label c=d} versus the labels first.
        let label = |n: u8, v: u8| vec![0x0a, 6, 0x0a, 1, n, 0x12, 1, v];
        let sample = vec![0x12, 2, 0x10, 5];
        let inter: Vec<u8> = [label(b'a', b'b'), sample.clone(), label(b'c', b'd')].concat();
        let ordered: Vec<u8> = [label(b'a', b'b'), label(b'c', b'd'), sample].concat();
        let wrap = |ts: Vec<u8>| [vec![0x0a, ts.len() as u8], ts].concat();
        let (a, b) = (wrap(inter), wrap(ordered));
        let (mut da, mut db) = (Decoded::default(), Decoded::default());
        da.decode(&a, 10).unwrap();
        db.decode(&b, 10).unwrap();
        assert_eq!(da.key(&a, 0), db.key(&b, 0));
        assert_eq!(via_scan(&a), via_prost(&a));
    }

    /// Every prefix and every single-byte change of a valid request: never a panic, and
    /// whenever both accept, the same answer as prost.
    #[test]
    fn mutations_never_panic_and_agree_with_prost() {
        let buf = request().encode_to_vec();
        for cut in 0..buf.len() {
            let b = &buf[..cut];
            if let (Some(s), Some(p)) = (via_scan(b), via_prost(b)) {
                assert_eq!(s, p, "prefix {cut}");
            }
        }
        for i in 0..buf.len() {
            for x in [0x00, 0x01, 0x07, 0x0a, 0x12, 0x7f, 0x80, 0xff] {
                let mut b = buf.clone();
                b[i] = x;
                if let (Some(s), Some(p)) = (via_scan(&b), via_prost(&b)) {
                    assert_eq!(s, p, "byte {i} = {x:#x}");
                }
            }
        }
    }
}

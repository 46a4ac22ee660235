//! One shard's part of a batch and its remote write 1.0 body, written straight as
//! protobuf bytes (field numbers of `prompb`, the same messages as
//! [`crate::remote_write::WriteRequest`]), then snappy-compressed. Writing the bytes
//! directly skips building a `String` per label and a message per series, which is most
//! of the cost at a million samples a second; a test decodes the result with the prost
//! messages.

use crate::Labels;
use std::sync::Arc;

/// Samples for one shard: each sample names its series by index into `labels`.
#[derive(Debug, Default)]
pub(crate) struct Part {
    pub labels: Vec<Arc<Labels>>,
    pub series: Vec<u32>,
    pub ts: Vec<i64>,
    pub vs: Vec<f64>,
}

impl Part {
    pub(crate) fn samples(&self) -> usize {
        self.ts.len()
    }

    pub(crate) fn push(&mut self, series: u32, t: i64, v: f64) {
        self.series.push(series);
        self.ts.push(t);
        self.vs.push(v);
    }
}

/// A part with its samples grouped by series (in time order within each), ready to be
/// encoded whole or by series ranges (to isolate what a receiver refuses).
#[derive(Debug)]
pub(crate) struct Grouped {
    /// Per series: labels and the range of its samples in `ts`/`vs`.
    pub series: Vec<(Arc<Labels>, std::ops::Range<usize>)>,
    pub ts: Vec<i64>,
    pub vs: Vec<f64>,
}

impl Grouped {
    /// Groups by series with a counting sort (stable: WAL order kept), then orders each
    /// series' samples by time.
    pub(crate) fn new(part: &Part) -> Grouped {
        let n_series = part.labels.len();
        let mut start = vec![0usize; n_series + 1];
        for &s in &part.series {
            start[s as usize + 1] += 1;
        }
        for i in 0..n_series {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let n = part.samples();
        let (mut ts, mut vs) = (vec![0i64; n], vec![0f64; n]);
        for i in 0..n {
            let s = part.series[i] as usize;
            ts[next[s]] = part.ts[i];
            vs[next[s]] = part.vs[i];
            next[s] += 1;
        }
        let mut series = Vec::with_capacity(n_series);
        for (i, labels) in part.labels.iter().enumerate() {
            let r = start[i]..start[i + 1];
            if !ts[r.clone()].is_sorted() {
                let mut pairs: Vec<(i64, f64)> =
                    ts[r.clone()].iter().copied().zip(vs[r.clone()].iter().copied()).collect();
                pairs.sort_by_key(|p| p.0);
                for (j, (t, v)) in r.clone().zip(pairs) {
                    ts[j] = t;
                    vs[j] = v;
                }
            }
            if !r.is_empty() {
                series.push((labels.clone(), r));
            }
        }
        Grouped { series, ts, vs }
    }

    pub(crate) fn samples_in(&self, series: std::ops::Range<usize>) -> usize {
        self.series[series].iter().map(|(_, r)| r.len()).sum()
    }
}

/// Reused buffers of one shard.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    raw: Vec<u8>,
    snappy: Option<snap::raw::Encoder>,
}

impl Encoder {
    /// The snappy-compressed `WriteRequest` of the series `range` of `g`, with `extra`
    /// labels added (sorted by name) where a series lacks them.
    pub(crate) fn encode(&mut self, g: &Grouped, range: std::ops::Range<usize>, extra: &[(String, String)]) -> Vec<u8> {
        self.raw.clear();
        let mut merged: Vec<(&str, &str)> = Vec::new();
        for (labels, r) in &g.series[range] {
            merged.clear();
            merge_labels(labels, extra, &mut merged);
            let labels_len: usize = merged.iter().map(|(n, v)| field_len(label_len(n, v))).sum();
            let samples_len: usize = g.ts[r.clone()].iter().map(|t| field_len(sample_len(*t))).sum();
            put_tag_len(&mut self.raw, 1, labels_len + samples_len);
            for (n, v) in &merged {
                put_tag_len(&mut self.raw, 1, label_len(n, v));
                put_tag_len(&mut self.raw, 1, n.len());
                self.raw.extend_from_slice(n.as_bytes());
                put_tag_len(&mut self.raw, 2, v.len());
                self.raw.extend_from_slice(v.as_bytes());
            }
            for (t, v) in g.ts[r.clone()].iter().zip(&g.vs[r.clone()]) {
                put_tag_len(&mut self.raw, 2, sample_len(*t));
                self.raw.push(0x09); // field 1, fixed64: value
                self.raw.extend_from_slice(&v.to_bits().to_le_bytes());
                self.raw.push(0x10); // field 2, varint: timestamp
                put_varint(&mut self.raw, *t as u64);
            }
        }
        let enc = self.snappy.get_or_insert_with(snap::raw::Encoder::new);
        // Fails only for inputs over ~4 GiB; requests are bounded far below that. An empty
        // body would be refused by the receiver and counted, never sent as data.
        enc.compress_vec(&self.raw).unwrap_or_default()
    }
}

/// Series labels plus the extra ones it lacks, sorted by name (borrowed: no copies).
fn merge_labels<'a>(labels: &'a Labels, extra: &'a [(String, String)], out: &mut Vec<(&'a str, &'a str)>) {
    out.extend(labels.iter());
    if extra.is_empty() {
        return;
    }
    for (n, v) in extra {
        if labels.get(n).is_empty() && !v.is_empty() {
            out.push((n.as_str(), v.as_str()));
        }
    }
    out.sort_unstable_by(|a, b| a.0.cmp(b.0));
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field's key and length.
fn put_tag_len(out: &mut Vec<u8>, field: u8, len: usize) {
    out.push((field << 3) | 2);
    put_varint(out, len as u64);
}

/// Bytes of a length-delimited field with a body of `len` bytes (field numbers < 16).
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn label_len(n: &str, v: &str) -> usize {
    field_len(n.len()) + field_len(v.len())
}

fn sample_len(t: i64) -> usize {
    1 + 8 + 1 + varint_len(t as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};

    #[test]
    fn encodes_what_prost_decodes() -> crate::Result<()> {
        let a = Arc::new(Labels::metric("cpu", [("host", "a")])?);
        let b = Arc::new(Labels::metric("mem", [("zone", "z"), ("host", "b")])?);
        let mut p = Part { labels: vec![a, b], ..Part::default() };
        p.push(1, 10, 0.5);
        p.push(0, 30, -1.0);
        p.push(0, -20, f64::NAN);
        p.push(1, 1_700_000_000_000, 0.0);
        let g = Grouped::new(&p);
        let body = Encoder::default().encode(&g, 0..g.series.len(), &[("replica".into(), "r1".into())]);
        let got = remote_write::decode(&body, 1 << 20).map_err(|e| crate::Error::InvalidOptions(e.to_string()))?;
        let l = |n: &str, v: &str| Label { name: n.into(), value: v.into() };
        assert_eq!(got.timeseries.len(), 2);
        assert_eq!(got.timeseries[0].labels, vec![l("__name__", "cpu"), l("host", "a"), l("replica", "r1")]);
        assert_eq!(got.timeseries[0].samples[0].timestamp, -20);
        assert!(got.timeseries[0].samples[0].value.is_nan());
        assert_eq!(got.timeseries[0].samples[1], Sample { value: -1.0, timestamp: 30 });
        let want = TimeSeries {
            labels: vec![l("__name__", "mem"), l("host", "b"), l("replica", "r1"), l("zone", "z")],
            samples: vec![Sample { value: 0.5, timestamp: 10 }, Sample { value: 0.0, timestamp: 1_700_000_000_000 }],
        };
        assert_eq!(got.timeseries[1], want);
        // A range of series encodes only those; an existing label wins over an extra one.
        let body = Encoder::default().encode(&g, 1..2, &[("host".into(), "x".into())]);
        let got: WriteRequest =
            remote_write::decode(&body, 1 << 20).map_err(|e| crate::Error::InvalidOptions(e.to_string()))?;
        assert_eq!(got.timeseries.len(), 1);
        assert_eq!(got.timeseries[0].labels[1], l("host", "b"));
        Ok(())
    }
}

//! One shard's part of a batch and its remote write 1.0 body, written straight as
//! protobuf bytes (field numbers of `prompb`, the same messages as
//! [`crate::remote_write::WriteRequest`]), then snappy-compressed. Writing the bytes
//! directly skips building a `String` per label and a message per series; a test decodes
//! the result with the prost messages.
//!
//! Samples are grouped by series, so a series with several samples in a batch is one
//! `TimeSeries` whose labels are written once. Each shard caches the encoded labels of
//! its series (extra labels merged in), so writing them is one copy; the cache is bounded
//! (`LABEL_CACHE_BYTES_MAX`), past which labels are encoded per request (same bytes).

use crate::{Labels, SeriesId};
use std::ops::Range;

/// Encoded label bytes one shard keeps at most.
const LABEL_CACHE_BYTES_MAX: usize = 64 << 20;

/// Samples for one shard of one batch: each sample names its series by index into
/// `series`, which holds the shard-local id (the label cache's key) and the id of each
/// series, in order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct Part {
    pub series: Vec<(u32, SeriesId)>,
    pub idx: Vec<u32>,
    pub ts: Vec<i64>,
    pub vs: Vec<f64>,
}

impl Part {
    pub(crate) fn with_capacity(samples: usize) -> Part {
        Part {
            series: Vec::new(),
            idx: Vec::with_capacity(samples),
            ts: Vec::with_capacity(samples),
            vs: Vec::with_capacity(samples),
        }
    }

    pub(crate) fn samples(&self) -> usize {
        self.ts.len()
    }

    pub(crate) fn push(&mut self, series: u32, t: i64, v: f64) {
        self.idx.push(series);
        self.ts.push(t);
        self.vs.push(v);
    }
}

/// A part with its samples grouped by series (in time order within each), ready to be
/// encoded whole or by series ranges (to isolate what a receiver refuses). Its buffers
/// are reused from part to part.
#[derive(Debug, Default)]
pub(crate) struct Grouped {
    /// Per series of the part (same indices as `Part::series`): its samples in `ts`/`vs`.
    pub ranges: Vec<Range<usize>>,
    /// Part series indices with at least one sample, in part order.
    pub order: Vec<u32>,
    pub ts: Vec<i64>,
    pub vs: Vec<f64>,
    next: Vec<usize>,
}

impl Grouped {
    /// Groups by series with a counting sort (stable: WAL order kept), then orders each
    /// series' samples by time.
    pub(crate) fn fill(&mut self, part: &Part) {
        let n_series = part.series.len();
        let n = part.samples();
        self.next.clear();
        self.next.resize(n_series + 1, 0);
        for &s in &part.idx {
            self.next[s as usize + 1] += 1;
        }
        for i in 0..n_series {
            self.next[i + 1] += self.next[i];
        }
        self.ranges.clear();
        self.ranges.extend((0..n_series).map(|i| self.next[i]..self.next[i + 1]));
        self.ts.clear();
        self.ts.resize(n, 0);
        self.vs.clear();
        self.vs.resize(n, 0.0);
        for ((&s, &t), &v) in part.idx.iter().zip(&part.ts).zip(&part.vs) {
            let at = &mut self.next[s as usize];
            self.ts[*at] = t;
            self.vs[*at] = v;
            *at += 1;
        }
        self.order.clear();
        for (i, r) in self.ranges.iter().enumerate() {
            if r.is_empty() {
                continue;
            }
            self.order.push(i as u32);
            if !self.ts[r.clone()].is_sorted() {
                let mut pairs: Vec<(i64, f64)> =
                    self.ts[r.clone()].iter().copied().zip(self.vs[r.clone()].iter().copied()).collect();
                pairs.sort_by_key(|p| p.0);
                for (j, (t, v)) in r.clone().zip(pairs) {
                    self.ts[j] = t;
                    self.vs[j] = v;
                }
            }
        }
    }

    /// Series (positions in `order`) of this part.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// The samples of the `i`-th series of `order`.
    pub(crate) fn range_of(&self, i: usize) -> Range<usize> {
        self.ranges[self.order[i] as usize].clone()
    }

    /// Samples of the series at positions `at` of `order`.
    pub(crate) fn samples_in(&self, at: Range<usize>) -> usize {
        at.map(|i| self.range_of(i).len()).sum()
    }
}

/// Reused buffers and the label cache of one shard.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    raw: Vec<u8>,
    body: Vec<u8>,
    scratch: Vec<u8>,
    snappy: Option<snap::raw::Encoder>,
    /// Per shard-local series id: its encoded labels, extra labels merged.
    cache: Vec<Option<Box<[u8]>>>,
    cached_bytes: usize,
}

impl Encoder {
    /// The snappy-compressed `WriteRequest` of the series at positions `at` of `g.order`,
    /// with `extra` labels added (sorted by name) where a series lacks them; labels not
    /// cached are looked up in `labels_of`. Returns the body (valid until the next call)
    /// and the samples left out because `labels_of` did not know their series (none: the
    /// registry never forgets a series).
    pub(crate) fn encode(
        &mut self,
        labels_of: &dyn Fn(SeriesId) -> Option<std::sync::Arc<Labels>>,
        part: &Part,
        g: &Grouped,
        at: Range<usize>,
        extra: &[(String, String)],
    ) -> (&[u8], usize) {
        self.raw.clear();
        let mut missing = 0;
        for i in at {
            let (local, id) = part.series[g.order[i] as usize];
            let r = g.range_of(i);
            let labels_bytes: &[u8] = match self.cache.get(local as usize) {
                Some(Some(b)) => b,
                _ => {
                    let Some(labels) = labels_of(id) else {
                        missing += r.len();
                        continue;
                    };
                    self.scratch.clear();
                    encode_labels(&labels, extra, &mut self.scratch);
                    if self.cached_bytes + self.scratch.len() <= LABEL_CACHE_BYTES_MAX {
                        let slot = local as usize;
                        if self.cache.len() <= slot {
                            self.cache.resize(slot + 1, None);
                        }
                        self.cached_bytes += self.scratch.len();
                        self.cache[slot] = Some(self.scratch.as_slice().into());
                    }
                    &self.scratch
                }
            };
            let samples_len: usize = g.ts[r.clone()].iter().map(|&t| 2 + sample_len(t)).sum();
            put_tag_len(&mut self.raw, 1, labels_bytes.len() + samples_len);
            self.raw.extend_from_slice(labels_bytes);
            for (&t, &v) in g.ts[r.clone()].iter().zip(&g.vs[r]) {
                put_sample(&mut self.raw, t, v);
            }
        }
        let enc = self.snappy.get_or_insert_with(snap::raw::Encoder::new);
        self.body.resize(snap::raw::max_compress_len(self.raw.len()), 0);
        // Fails only for inputs over ~4 GiB; requests are bounded far below that. An empty
        // body would be refused by the receiver and counted, never sent as data.
        let n = enc.compress(&self.raw, &mut self.body).unwrap_or(0);
        self.body.truncate(n);
        (&self.body, missing)
    }
}

/// The `labels` fields (field 1 of `TimeSeries`) of a series plus the extra labels it
/// lacks, sorted by name.
fn encode_labels(labels: &Labels, extra: &[(String, String)], out: &mut Vec<u8>) {
    let mut merged: Vec<(&str, &str)> = labels.iter().collect();
    for (n, v) in extra {
        if labels.get(n).is_empty() && !v.is_empty() {
            merged.push((n.as_str(), v.as_str()));
        }
    }
    if !extra.is_empty() {
        merged.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    for (n, v) in merged {
        put_tag_len(out, 1, field_len(n.len()) + field_len(v.len()));
        put_tag_len(out, 1, n.len());
        out.extend_from_slice(n.as_bytes());
        put_tag_len(out, 2, v.len());
        out.extend_from_slice(v.as_bytes());
    }
}

/// A `samples` field (field 2 of `TimeSeries`): one `Sample` message, written into a
/// stack buffer and copied once (at most 2 + 20 bytes).
fn put_sample(out: &mut Vec<u8>, t: i64, v: f64) {
    let mut b = [0u8; 22];
    let len = sample_len(t);
    b[0] = (2 << 3) | 2;
    b[1] = len as u8; // < 128: one byte
    b[2] = 0x09; // field 1, fixed64: value
    b[3..11].copy_from_slice(&v.to_bits().to_le_bytes());
    b[11] = 0x10; // field 2, varint: timestamp
    let mut at = 12;
    let mut x = t as u64;
    while x >= 0x80 {
        b[at] = (x as u8) | 0x80;
        x >>= 7;
        at += 1;
    }
    b[at] = x as u8;
    out.extend_from_slice(&b[..at + 1]);
}

fn varint_len(v: u64) -> usize {
    // 1 + floor(log2(v) / 7), with 0 taking one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
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

/// Bytes of one `Sample` message body: value (1 + 8) and timestamp (1 + varint).
fn sample_len(t: i64) -> usize {
    1 + 8 + 1 + varint_len(t as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
    use std::sync::Arc;

    #[test]
    fn varint_len_matches_put_varint() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, 1 << 35, u64::MAX >> 1, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
    }

    #[test]
    fn encodes_what_prost_decodes() -> crate::Result<()> {
        let by_id = [
            Labels::metric("cpu", [("host", "a")])?,
            Labels::metric("mem", [("zone", "z"), ("host", "b")])?,
            Labels::metric("idle", [("host", "c")])?,
        ];
        let labels_of = |id: SeriesId| by_id.get(id.0 as usize).cloned().map(Arc::new);
        let mut p = Part { series: vec![(7, SeriesId(0)), (3, SeriesId(1)), (0, SeriesId(2))], ..Part::default() };
        p.push(1, 10, 0.5);
        p.push(0, 30, -1.0);
        p.push(0, -20, f64::NAN);
        p.push(1, 1_700_000_000_000, 0.0);
        let mut g = Grouped::default();
        g.fill(&p);
        assert_eq!(g.len(), 2, "a series without samples is left out");
        let extra = [("replica".to_owned(), "r1".to_owned())];
        let mut enc = Encoder::default();
        // Twice: the second time from the label cache, with the same bytes.
        let first = enc.encode(&labels_of, &p, &g, 0..g.len(), &extra).0.to_vec();
        assert_eq!(enc.encode(&|_| None, &p, &g, 0..g.len(), &extra), (first.as_slice(), 0));
        let got = remote_write::decode(&first, 1 << 20).map_err(|e| crate::Error::InvalidOptions(e.to_string()))?;
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
        let body = Encoder::default().encode(&labels_of, &p, &g, 1..2, &[("host".into(), "x".into())]).0.to_vec();
        let got: WriteRequest =
            remote_write::decode(&body, 1 << 20).map_err(|e| crate::Error::InvalidOptions(e.to_string()))?;
        assert_eq!(got.timeseries.len(), 1);
        assert_eq!(got.timeseries[0].labels[1], l("host", "b"));
        // A series the lookup does not know is left out and counted.
        assert_eq!(Encoder::default().encode(&|_| None, &p, &g, 0..2, &[]).1, 4);
        Ok(())
    }
}

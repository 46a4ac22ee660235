//! Rollup buckets: what a downsampled block stores per series and window, and the one
//! place that computes them (from raw samples or from finer buckets). Layout of the
//! encoded chunk in `block/FORMAT.md`, "rollup chunk".
//!
//! A bucket of resolution `r` ending at `e` (a multiple of `r`) summarises the samples
//! with `e - r < t <= e`: left-open like Prometheus's range windows, so a query window
//! `(t - range, t]` with `t` and `range` multiples of `r` is exactly a run of buckets.
//! Stale markers are skipped (range functions never see them). Each bucket keeps enough
//! to recompute, for any run of buckets, the raw answer of count, sum, avg, min, max,
//! first, last, and the counter-aware `increase`/`rate` with Prometheus's extrapolation:
//! count, sum, min, max, the first and last sample (time and value), and `resets`, the
//! sum of the pre-reset values of the counter resets inside the bucket. The increase of
//! a run of buckets is `last_v - first_v + Σ resets + Σ boundary resets`, the same terms
//! the raw evaluation adds in the same order.

use crate::chunk::{decode_sealed, encode_sealed_fast, ChunkDecodeError, XorDecoder, XorEncoder};
use crate::varint::{put_uvarint, Reader};

/// The bit pattern Prometheus uses for a stale marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// First byte of every rollup chunk payload.
pub const ROLLUP_CHUNK_TAG: u8 = 0x52; // 'R'

/// Number of value columns in a rollup chunk.
pub const ROLLUP_COLUMNS: usize = 9;

/// One value column of a rollup chunk, in stored order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Column {
    Count = 0,
    Sum = 1,
    Min = 2,
    Max = 3,
    FirstValue = 4,
    LastValue = 5,
    Resets = 6,
    /// `end_t - first_t`, ms.
    FirstOffset = 7,
    /// `end_t - last_t`, ms.
    LastOffset = 8,
}

/// A set of columns to decode (bit `i` = column `i`); `end_t` always comes with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnSet(pub u16);

impl ColumnSet {
    pub const ALL: Self = Self((1 << ROLLUP_COLUMNS) - 1);

    pub const fn of(cols: &[Column]) -> Self {
        let mut bits = 0u16;
        let mut i = 0;
        while i < cols.len() {
            bits |= 1 << cols[i] as u16;
            i += 1;
        }
        Self(bits)
    }

    pub const fn has(self, c: Column) -> bool {
        self.0 & (1 << c as u16) != 0
    }
}

/// Buckets of one series in columns, ascending by `end_t`. Columns not decoded are empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets {
    pub end_t: Vec<i64>,
    pub count: Vec<f64>,
    pub sum: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub first_t: Vec<i64>,
    pub first_v: Vec<f64>,
    pub last_t: Vec<i64>,
    pub last_v: Vec<f64>,
    pub resets: Vec<f64>,
}

impl Buckets {
    pub fn len(&self) -> usize {
        self.end_t.len()
    }

    pub fn is_empty(&self) -> bool {
        self.end_t.is_empty()
    }

    pub fn clear(&mut self) {
        for c in [&mut self.end_t, &mut self.first_t, &mut self.last_t] {
            c.clear();
        }
        for c in [
            &mut self.count,
            &mut self.sum,
            &mut self.min,
            &mut self.max,
            &mut self.first_v,
            &mut self.last_v,
            &mut self.resets,
        ] {
            c.clear();
        }
    }

    /// Bucket `i` as a whole (all columns must be present).
    pub fn get(&self, i: usize) -> Bucket {
        Bucket {
            end_t: self.end_t[i],
            count: self.count[i],
            sum: self.sum[i],
            sum_c: 0.0,
            min: self.min[i],
            max: self.max[i],
            first_t: self.first_t[i],
            first_v: self.first_v[i],
            last_t: self.last_t[i],
            last_v: self.last_v[i],
            resets: self.resets[i],
        }
    }

    fn push(&mut self, b: &Bucket) {
        self.end_t.push(b.end_t);
        self.count.push(b.count);
        self.sum.push(b.sum + b.sum_c);
        self.min.push(b.min);
        self.max.push(b.max);
        self.first_t.push(b.first_t);
        self.first_v.push(b.first_v);
        self.last_t.push(b.last_t);
        self.last_v.push(b.last_v);
        self.resets.push(b.resets);
    }

    /// Copies buckets `[from, to)` (all columns) onto the end of `out`.
    pub fn copy_range_into(&self, from: usize, to: usize, out: &mut Buckets) {
        out.end_t.extend_from_slice(&self.end_t[from..to]);
        out.count.extend_from_slice(&self.count[from..to]);
        out.sum.extend_from_slice(&self.sum[from..to]);
        out.min.extend_from_slice(&self.min[from..to]);
        out.max.extend_from_slice(&self.max[from..to]);
        out.first_t.extend_from_slice(&self.first_t[from..to]);
        out.first_v.extend_from_slice(&self.first_v[from..to]);
        out.last_t.extend_from_slice(&self.last_t[from..to]);
        out.last_v.extend_from_slice(&self.last_v[from..to]);
        out.resets.extend_from_slice(&self.resets[from..to]);
    }
}

/// One bucket while it is being built.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub end_t: i64,
    pub count: f64,
    /// Neumaier-compensated sum: `sum + sum_c` is the value stored.
    pub sum: f64,
    pub sum_c: f64,
    pub min: f64,
    pub max: f64,
    pub first_t: i64,
    pub first_v: f64,
    pub last_t: i64,
    pub last_v: f64,
    pub resets: f64,
}

/// The end of the left-open bucket of width `r` holding `t`: the smallest multiple of `r`
/// at or after `t`.
#[inline]
pub fn bucket_end(t: i64, r: i64) -> i64 {
    let q = t.div_euclid(r);
    if t.rem_euclid(r) == 0 {
        t
    } else {
        (q + 1).saturating_mul(r)
    }
}

#[inline]
fn kahan_add(sum: &mut f64, c: &mut f64, v: f64) {
    let t = *sum + v;
    if t.is_infinite() {
        *c = 0.0;
    } else if sum.abs() >= v.abs() {
        *c += (*sum - t) + v;
    } else {
        *c += (v - t) + *sum;
    }
    *sum = t;
}

/// NaN-ignoring min/max as the raw range functions fold them (NaN only if all are NaN).
#[inline]
fn fold_min(m: f64, v: f64) -> f64 {
    if v < m || m.is_nan() {
        v
    } else {
        m
    }
}

#[inline]
fn fold_max(m: f64, v: f64) -> f64 {
    if v > m || m.is_nan() {
        v
    } else {
        m
    }
}

/// Builds buckets of one series at one resolution from raw samples or finer buckets,
/// pushed in time order. Columnar and allocation-free per sample.
#[derive(Debug)]
pub struct BucketBuilder {
    resolution_ms: i64,
    open: Option<Bucket>,
    pub out: Buckets,
}

impl BucketBuilder {
    pub fn new(resolution_ms: i64) -> Self {
        Self { resolution_ms: resolution_ms.max(1), open: None, out: Buckets::default() }
    }

    pub fn resolution_ms(&self) -> i64 {
        self.resolution_ms
    }

    /// Starts a new series, keeping the buffers' capacity.
    pub fn reset(&mut self) {
        self.open = None;
        self.out.clear();
    }

    /// Pushes raw samples (ascending, after every sample pushed before).
    pub fn push_samples(&mut self, ts: &[i64], vs: &[f64]) {
        let r = self.resolution_ms;
        let n = ts.len().min(vs.len());
        let mut i = 0;
        while i < n {
            let (t, v) = (ts[i], vs[i]);
            i += 1;
            if v.to_bits() == STALE_NAN_BITS {
                continue;
            }
            let b = match &mut self.open {
                Some(b) if t <= b.end_t => b,
                _ => {
                    self.close();
                    self.open = Some(Bucket {
                        end_t: bucket_end(t, r),
                        count: 1.0,
                        sum: v,
                        sum_c: 0.0,
                        min: v,
                        max: v,
                        first_t: t,
                        first_v: v,
                        last_t: t,
                        last_v: v,
                        resets: 0.0,
                    });
                    continue;
                }
            };
            // The rest of this bucket's run: a tight loop without the bucket lookup.
            let mut j = i - 1;
            loop {
                let (t, v) = (ts[j], vs[j]);
                if v.to_bits() != STALE_NAN_BITS {
                    b.count += 1.0;
                    kahan_add(&mut b.sum, &mut b.sum_c, v);
                    b.min = fold_min(b.min, v);
                    b.max = fold_max(b.max, v);
                    if v < b.last_v {
                        b.resets += b.last_v;
                    }
                    b.last_t = t;
                    b.last_v = v;
                }
                j += 1;
                if j >= n || ts[j] > b.end_t {
                    break;
                }
            }
            i = j;
        }
    }

    /// Pushes finer buckets (ascending, after everything pushed before); each must fit
    /// inside one bucket of this resolution (its width divides this one).
    pub fn push_buckets(&mut self, src: &Buckets) {
        let r = self.resolution_ms;
        for i in 0..src.len() {
            let s = src.get(i);
            if s.count <= 0.0 {
                continue;
            }
            match &mut self.open {
                Some(b) if s.end_t <= b.end_t => {
                    b.count += s.count;
                    kahan_add(&mut b.sum, &mut b.sum_c, s.sum);
                    b.min = fold_min(b.min, s.min);
                    b.max = fold_max(b.max, s.max);
                    if s.first_v < b.last_v {
                        b.resets += b.last_v;
                    }
                    b.resets += s.resets;
                    b.last_t = s.last_t;
                    b.last_v = s.last_v;
                }
                _ => {
                    self.close();
                    self.open = Some(Bucket { end_t: bucket_end(s.end_t, r), ..s });
                }
            }
        }
    }

    /// Closes the open bucket; `out` then holds every bucket.
    pub fn finish(&mut self) -> &Buckets {
        self.close();
        &self.out
    }

    fn close(&mut self) {
        if let Some(b) = self.open.take() {
            self.out.push(&b);
        }
    }
}

/// Appends one rollup chunk of `b[from..to]` to `out`.
pub fn encode_rollup_chunk(b: &Buckets, from: usize, to: usize, out: &mut Vec<u8>) {
    let ends = &b.end_t[from..to];
    let first_off: Vec<f64> = ends.iter().zip(&b.first_t[from..to]).map(|(e, t)| (e - t) as f64).collect();
    let last_off: Vec<f64> = ends.iter().zip(&b.last_t[from..to]).map(|(e, t)| (e - t) as f64).collect();
    let cols: [&[f64]; ROLLUP_COLUMNS] = [
        &b.count[from..to],
        &b.sum[from..to],
        &b.min[from..to],
        &b.max[from..to],
        &b.first_v[from..to],
        &b.last_v[from..to],
        &b.resets[from..to],
        &first_off,
        &last_off,
    ];
    let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(ROLLUP_COLUMNS);
    for (i, c) in cols.into_iter().enumerate() {
        let mut e = Vec::new();
        if i == Column::Sum as usize {
            // Sums of decimals are rarely decimal themselves: the sealed codec would then
            // try Pcodec, whose encoder costs more than the whole bucketing loop.
            let mut x = XorEncoder::with_capacity(c.len() * 4);
            for (t, v) in ends.iter().zip(c) {
                x.append(*t, *v);
            }
            e.extend_from_slice(x.bytes());
        } else {
            // Pco's default setup on a column this short costs more than the whole
            // bucketing loop; the light one keeps its size on sums of decimals (resets).
            encode_sealed_fast(ends, c, &mut e);
        }
        encoded.push(e);
    }
    out.push(ROLLUP_CHUNK_TAG);
    put_uvarint(out, ends.len() as u64);
    for e in &encoded {
        put_uvarint(out, e.len() as u64);
    }
    for e in &encoded {
        out.extend_from_slice(e);
    }
}

/// Decodes the columns in `want` of one rollup chunk, appending to `out` (`end_t` always).
pub fn decode_rollup_chunk(bytes: &[u8], want: ColumnSet, out: &mut Buckets) -> Result<usize, ChunkDecodeError> {
    let err = |o: usize, r: &'static str| ChunkDecodeError { offset: o, reason: r };
    if bytes.first() != Some(&ROLLUP_CHUNK_TAG) {
        return Err(err(0, "not a rollup chunk"));
    }
    let mut r = Reader::new(&bytes[1..]);
    let n = r.uvarint().ok_or(err(1, "bucket count"))? as usize;
    if n > crate::chunk::MAX_SAMPLES_PER_CHUNK {
        return Err(err(1, "bucket count over the chunk maximum"));
    }
    let mut lens = [0usize; ROLLUP_COLUMNS];
    for l in &mut lens {
        *l = r.uvarint().ok_or(err(1, "column length"))? as usize;
    }
    let at = bytes.len() - r.remaining();
    // A query decodes thousands of these per series set: reuse the column buffers.
    COLUMN_SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut sc) => {
            let (ts, vs) = &mut *sc;
            let res = decode_columns(bytes, at, n, &lens, want, out, ts, vs);
            if ts.capacity() > COLUMN_SCRATCH_KEEP_MAX {
                *sc = (Vec::new(), Vec::new());
            }
            res
        }
        Err(_) => decode_columns(bytes, at, n, &lens, want, out, &mut Vec::new(), &mut Vec::new()),
    })
}

thread_local! {
    /// Timestamps and values of one rollup column while it is decoded.
    static COLUMN_SCRATCH: std::cell::RefCell<(Vec<i64>, Vec<f64>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Column scratch above this many values is dropped after use rather than kept.
const COLUMN_SCRATCH_KEEP_MAX: usize = 1 << 16;

#[allow(clippy::too_many_arguments)]
fn decode_columns(
    bytes: &[u8],
    mut at: usize,
    n: usize,
    lens: &[usize; ROLLUP_COLUMNS],
    want: ColumnSet,
    out: &mut Buckets,
    ts: &mut Vec<i64>,
    vs: &mut Vec<f64>,
) -> Result<usize, ChunkDecodeError> {
    let err = |o: usize, r: &'static str| ChunkDecodeError { offset: o, reason: r };
    let mark = out.end_t.len();
    let mut have_ends = false;
    for (i, len) in lens.iter().enumerate() {
        let end = at.checked_add(*len).filter(|e| *e <= bytes.len()).ok_or_else(|| err(at, "column past end"))?;
        let col = column_of(i);
        let needed = want.has(col) || (!have_ends && i == ROLLUP_COLUMNS - 1);
        if needed {
            ts.clear();
            vs.clear();
            let decoded = if col == Column::Sum {
                let count = u32::try_from(n).map_err(|_| err(1, "bucket count"))?;
                XorDecoder::new(&bytes[at..end], count).decode_into(ts, vs)
            } else {
                decode_sealed(&bytes[at..end], ts, vs)
            };
            decoded.map_err(|e| err(at + e.offset, e.reason))?;
            if ts.len() != n || vs.len() != n {
                return Err(err(at, "column length differs from bucket count"));
            }
            if have_ends {
                if out.end_t[mark..] != ts[..] {
                    return Err(err(at, "column timestamps differ"));
                }
            } else {
                out.end_t.extend_from_slice(ts);
                have_ends = true;
            }
            if want.has(col) {
                let ends = &out.end_t[mark..];
                match col {
                    Column::Count => out.count.extend_from_slice(vs),
                    Column::Sum => out.sum.extend_from_slice(vs),
                    Column::Min => out.min.extend_from_slice(vs),
                    Column::Max => out.max.extend_from_slice(vs),
                    Column::FirstValue => out.first_v.extend_from_slice(vs),
                    Column::LastValue => out.last_v.extend_from_slice(vs),
                    Column::Resets => out.resets.extend_from_slice(vs),
                    Column::FirstOffset => out.first_t.extend(ends.iter().zip(vs.iter()).map(|(e, o)| e - *o as i64)),
                    Column::LastOffset => out.last_t.extend(ends.iter().zip(vs.iter()).map(|(e, o)| e - *o as i64)),
                }
            }
        }
        at = end;
    }
    if at != bytes.len() {
        return Err(err(at, "trailing bytes after the last column"));
    }
    Ok(n)
}

fn column_of(i: usize) -> Column {
    match i {
        0 => Column::Count,
        1 => Column::Sum,
        2 => Column::Min,
        3 => Column::Max,
        4 => Column::FirstValue,
        5 => Column::LastValue,
        6 => Column::Resets,
        7 => Column::FirstOffset,
        _ => Column::LastOffset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_end_is_left_open() {
        assert_eq!(bucket_end(0, 10), 0);
        assert_eq!(bucket_end(1, 10), 10);
        assert_eq!(bucket_end(10, 10), 10);
        assert_eq!(bucket_end(-1, 10), 0);
        assert_eq!(bucket_end(-10, 10), -10);
    }

    #[test]
    fn raw_and_two_level_buckets_agree_and_round_trip() {
        let ts: Vec<i64> = (1..=100).map(|i| i * 7).collect();
        let vs: Vec<f64> = ts.iter().map(|t| ((t * 13) % 50) as f64).collect();
        let mut fine = BucketBuilder::new(10);
        fine.push_samples(&ts[..33], &vs[..33]);
        fine.push_samples(&ts[33..], &vs[33..]);
        let fine = fine.finish().clone();
        let mut coarse_direct = BucketBuilder::new(70);
        coarse_direct.push_samples(&ts, &vs);
        let mut coarse_from_fine = BucketBuilder::new(70);
        coarse_from_fine.push_buckets(&fine);
        assert_eq!(coarse_direct.finish(), coarse_from_fine.finish());
        let mut bytes = Vec::new();
        encode_rollup_chunk(&fine, 0, fine.len(), &mut bytes);
        let mut back = Buckets::default();
        assert_eq!(decode_rollup_chunk(&bytes, ColumnSet::ALL, &mut back), Ok(fine.len()));
        assert_eq!(back, fine);
        let mut only_max = Buckets::default();
        decode_rollup_chunk(&bytes, ColumnSet::of(&[Column::Max]), &mut only_max).ok();
        assert_eq!((only_max.end_t, only_max.max), (fine.end_t.clone(), fine.max.clone()));
        for cut in 0..bytes.len() {
            let _ = decode_rollup_chunk(&bytes[..cut], ColumnSet::ALL, &mut Buckets::default());
        }
    }
}

//! The integer column: a sequence of `i64` stored as order-0/1/2 differences (wrapping),
//! frame-of-reference (minimum subtracted) and bit-packed in frames of 128 values. The order and
//! whether one (width, minimum) pair serves the whole column or each frame carries its own are
//! chosen by measured size. Used for timestamps in every sealed codec and for the scaled
//! integers of `DecimalBitpack`. Layout in `FORMAT.md`, "integer column".

use super::bitpack::{pack, packed_len, unpack, width, FRAME};
use super::varint::{put_ivarint, uvarint_len, zigzag, Cursor};
use super::ChunkDecodeError;

const UNIFORM_FLAG: u8 = 0b100;
const ORDER_MASK: u8 = 0b011;

/// Flag in a per-frame width byte: the frame carries an outlier list.
const OUTLIER_FLAG: u8 = 0x80;

/// Frames at least this wide try to move their extreme values into an outlier list.
const OUTLIER_MIN_WIDTH: u32 = 10;

/// Scratch buffers reused across columns.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    d1: Vec<i64>,
    d2: Vec<i64>,
}

/// Sizes of one candidate order: per-frame mode (without outlier lists) and uniform mode.
#[derive(Debug, Clone, Copy)]
struct Cost {
    per_frame: usize,
    uniform: usize,
}

#[inline]
fn frame_cost(min: i64, max: i64, len: usize) -> usize {
    let w = width((max as u64).wrapping_sub(min as u64));
    1 + uvarint_len(zigzag(min)) + packed_len(len, w)
}

fn min_max(rs: &[i64]) -> (i64, i64) {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for &r in rs {
        lo = lo.min(r);
        hi = hi.max(r);
    }
    (lo, hi)
}

/// Cost of the residual stream `rs` in both modes.
fn cost(rs: &[i64]) -> Cost {
    if rs.is_empty() {
        return Cost { per_frame: 0, uniform: 2 };
    }
    let (mut gmin, mut gmax) = (i64::MAX, i64::MIN);
    let mut per_frame = 0;
    for f in rs.chunks(FRAME) {
        let (lo, hi) = min_max(f);
        per_frame += frame_cost(lo, hi, f.len());
        gmin = gmin.min(lo);
        gmax = gmax.max(hi);
    }
    Cost { per_frame, uniform: frame_cost(gmin, gmax, rs.len()) }
}

/// Appends the column for `xs` (its length is stored by the caller). Writes nothing for an
/// empty column. Returns the number of bytes written.
pub(crate) fn encode(xs: &[i64], out: &mut Vec<u8>, scratch: &mut Scratch) -> usize {
    let start = out.len();
    let n = xs.len();
    if n == 0 {
        return 0;
    }
    // Fast path for regular series (constant step `d`): order 1, uniform, width 0, minimum
    // `d` (never larger than the general choice).
    if n >= 2 {
        let d = xs[1].wrapping_sub(xs[0]);
        if xs.windows(2).all(|w| w[1].wrapping_sub(w[0]) == d) {
            out.push(1 | UNIFORM_FLAG);
            put_ivarint(out, xs[0]);
            out.push(0);
            put_ivarint(out, d);
            return out.len() - start;
        }
    }
    let Scratch { d1, d2 } = scratch;
    d1.clear();
    d1.extend(xs.windows(2).map(|w| w[1].wrapping_sub(w[0])));
    d2.clear();
    d2.extend(d1.windows(2).map(|w| w[1].wrapping_sub(w[0])));
    let init =
        [0, uvarint_len(zigzag(xs[0])), uvarint_len(zigzag(xs[0])) + d1.first().map_or(0, |&d| uvarint_len(zigzag(d)))];
    let residuals: [&[i64]; 3] = [xs, d1, d2];
    let mut best = (usize::MAX, 0usize, false);
    for (order, rs) in residuals.iter().enumerate() {
        let c = cost(rs);
        // Prefer per-frame on ties: it can still shrink with outlier lists.
        if init[order] + c.per_frame < best.0 {
            best = (init[order] + c.per_frame, order, false);
        }
        if init[order] + c.uniform < best.0 {
            best = (init[order] + c.uniform, order, true);
        }
    }
    let (_, order, uniform) = best;
    out.push(order as u8 | if uniform { UNIFORM_FLAG } else { 0 });
    if order >= 1 {
        put_ivarint(out, xs[0]);
    }
    if order >= 2 {
        if let Some(&d) = d1.first() {
            put_ivarint(out, d);
        }
    }
    let rs = residuals[order];
    if uniform {
        write_uniform(rs, out);
    } else {
        for f in rs.chunks(FRAME) {
            write_frame(f, out);
        }
    }
    out.len() - start
}

fn offsets(f: &[i64], lo: i64, tmp: &mut [u64; FRAME]) {
    for (t, &r) in tmp.iter_mut().zip(f) {
        *t = (r as u64).wrapping_sub(lo as u64);
    }
}

fn write_uniform(rs: &[i64], out: &mut Vec<u8>) {
    let mut tmp = [0u64; FRAME];
    let (lo, hi) = if rs.is_empty() { (0, 0) } else { min_max(rs) };
    let w = width((hi as u64).wrapping_sub(lo as u64));
    out.push(w as u8);
    put_ivarint(out, lo);
    for f in rs.chunks(FRAME) {
        offsets(f, lo, &mut tmp);
        pack(&tmp[..f.len()], w, out);
    }
}

/// Writes one frame, moving the values equal to the frame's minimum and/or maximum into an
/// outlier list when that makes the frame smaller (counter resets, spikes).
fn write_frame(f: &[i64], out: &mut Vec<u8>) {
    let mut tmp = [0u64; FRAME];
    let (lo, hi) = min_max(f);
    let w = width((hi as u64).wrapping_sub(lo as u64));
    if w >= OUTLIER_MIN_WIDTH {
        if let Some((base, top)) = trim(f, lo, hi, w) {
            let wt = width((top as u64).wrapping_sub(base as u64));
            out.push(wt as u8 | OUTLIER_FLAG);
            put_ivarint(out, base);
            let count_at = out.len();
            out.push(0);
            let mut count = 0u8;
            for (i, (t, &r)) in tmp.iter_mut().zip(f).enumerate() {
                if r < base || r > top {
                    out.push(i as u8);
                    put_ivarint(out, r.wrapping_sub(base));
                    count += 1;
                    *t = 0;
                } else {
                    *t = (r as u64).wrapping_sub(base as u64);
                }
            }
            out[count_at] = count;
            pack(&tmp[..f.len()], wt, out);
            return;
        }
    }
    out.push(w as u8);
    put_ivarint(out, lo);
    offsets(f, lo, &mut tmp);
    pack(&tmp[..f.len()], w, out);
}

/// The best `(base, top)` range excluding the minimum and/or maximum values of the frame, if
/// that beats packing the whole range `[lo, hi]` at width `w`.
fn trim(f: &[i64], lo: i64, hi: i64, w: u32) -> Option<(i64, i64)> {
    let (mut lo2, mut hi2) = (i64::MAX, i64::MIN);
    let (mut n_lo, mut n_hi) = (0usize, 0usize);
    for &r in f {
        if r == lo {
            n_lo += 1;
        } else {
            lo2 = lo2.min(r);
        }
        if r == hi {
            n_hi += 1;
        } else {
            hi2 = hi2.max(r);
        }
    }
    if lo == hi || n_lo + n_hi >= f.len() {
        return None;
    }
    let len = f.len();
    let full = packed_len(len, w) + uvarint_len(zigzag(lo));
    let out_cost = |v: i64, base: i64, k: usize| k * (1 + uvarint_len(zigzag(v.wrapping_sub(base))));
    let size = |base: i64, top: i64| {
        packed_len(len, width((top as u64).wrapping_sub(base as u64))) + 1 + uvarint_len(zigzag(base))
    };
    let mut best: Option<(usize, i64, i64)> = None;
    let mut consider = |c: usize, base: i64, top: i64| {
        if c < full && best.is_none_or(|b| c < b.0) {
            best = Some((c, base, top));
        }
    };
    // Without the minimum values, without the maximum values, without both.
    consider(size(lo2, hi) + out_cost(lo, lo2, n_lo), lo2, hi);
    consider(size(lo, hi2) + out_cost(hi, lo, n_hi), lo, hi2);
    if lo2 <= hi2 {
        consider(size(lo2, hi2) + out_cost(lo, lo2, n_lo) + out_cost(hi, lo2, n_hi), lo2, hi2);
    }
    best.map(|(_, b, t)| (b, t))
}

/// Reads a uniform-mode header (width, minimum).
fn uniform_header(cur: &mut Cursor<'_>) -> Result<(u32, i64), ChunkDecodeError> {
    let w = u32::from(cur.u8()?);
    if w > 64 {
        return Err(ChunkDecodeError::new(cur.pos - 1, "bit width above 64"));
    }
    Ok((w, cur.ivarint()?))
}

/// Reads one per-frame header and its outlier list (into `outliers`, returning how many).
fn frame_header(
    cur: &mut Cursor<'_>,
    len: usize,
    outliers: &mut [(u8, u64); FRAME],
) -> Result<(u32, i64, usize), ChunkDecodeError> {
    let b = cur.u8()?;
    let w = u32::from(b & !OUTLIER_FLAG);
    if w > 64 {
        return Err(ChunkDecodeError::new(cur.pos - 1, "bit width above 64"));
    }
    let lo = cur.ivarint()?;
    if b & OUTLIER_FLAG == 0 {
        return Ok((w, lo, 0));
    }
    let k = usize::from(cur.u8()?);
    if k == 0 || k >= len {
        return Err(ChunkDecodeError::new(cur.pos - 1, "bad outlier count"));
    }
    let mut next = 0usize;
    for o in outliers.iter_mut().take(k) {
        let idx = cur.u8()?;
        if usize::from(idx) < next || usize::from(idx) >= len {
            return Err(ChunkDecodeError::new(cur.pos - 1, "bad outlier index"));
        }
        next = usize::from(idx) + 1;
        *o = (idx, cur.ivarint()? as u64);
    }
    Ok((w, lo, k))
}

/// Decodes a column of `n` values (as written by [`encode`]) and appends them to `out`.
/// The caller bounds `n`.
pub(crate) fn decode(cur: &mut Cursor<'_>, n: usize, out: &mut Vec<i64>) -> Result<(), ChunkDecodeError> {
    if n == 0 {
        return Ok(());
    }
    let h = cur.u8()?;
    let order = h & ORDER_MASK;
    if order > 2 || h & !(ORDER_MASK | UNIFORM_FLAG) != 0 {
        return Err(ChunkDecodeError::new(cur.pos - 1, "bad integer column header"));
    }
    let uniform = h & UNIFORM_FLAG != 0;
    let k = usize::from(order).min(n);
    out.reserve(n);
    let mut x = 0i64;
    let mut d = 0i64;
    if k >= 1 {
        x = cur.ivarint()?;
        out.push(x);
    }
    if k >= 2 {
        d = cur.ivarint()?;
        x = x.wrapping_add(d);
        out.push(x);
    }
    let m = n - k;
    let mut tmp = [0u64; FRAME];
    let mut rebuild = |tmp: &[u64], lo: i64, out: &mut Vec<i64>| match order {
        0 => out.extend(tmp.iter().map(|&u| lo.wrapping_add(u as i64))),
        1 => out.extend(tmp.iter().map(|&u| {
            x = x.wrapping_add(lo.wrapping_add(u as i64));
            x
        })),
        _ => out.extend(tmp.iter().map(|&u| {
            d = d.wrapping_add(lo.wrapping_add(u as i64));
            x = x.wrapping_add(d);
            x
        })),
    };
    if uniform {
        let (w, lo) = uniform_header(cur)?;
        let all = cur.take(packed_len(m, w))?;
        let frame_bytes = FRAME * w as usize / 8;
        let mut left = m;
        let mut at = 0usize;
        while left > 0 {
            let len = left.min(FRAME);
            let nb = packed_len(len, w);
            unpack(&all[at..at + nb], w, &mut tmp[..len]);
            rebuild(&tmp[..len], lo, out);
            at += frame_bytes;
            left -= len;
        }
    } else {
        let mut outliers = [(0u8, 0u64); FRAME];
        let mut left = m;
        while left > 0 {
            let len = left.min(FRAME);
            let (w, lo, k) = frame_header(cur, len, &mut outliers)?;
            let src = cur.take(packed_len(len, w))?;
            unpack(src, w, &mut tmp[..len]);
            for &(i, off) in &outliers[..k] {
                tmp[usize::from(i)] = off;
            }
            rebuild(&tmp[..len], lo, out);
            left -= len;
        }
    }
    Ok(())
}

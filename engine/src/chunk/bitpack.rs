//! Fixed-width bit packing of unsigned integers, least significant bit first, in frames of
//! [`FRAME`] values (see `FORMAT.md`, "bit-packed frame").

/// Values per frame. A full frame of width `w` is exactly `16 * w` bytes, so frames packed
/// back to back stay byte aligned.
pub(crate) const FRAME: usize = 128;

/// Padded scratch size for unpacking one frame: 64-bit words, plus room for a 16-byte load
/// at the last value.
const FRAME_BUF: usize = FRAME * 8 + 16;

/// Bytes taken by `n` values of `w` bits.
#[inline]
pub(crate) const fn packed_len(n: usize, w: u32) -> usize {
    (n * w as usize).div_ceil(8)
}

/// Bits needed for `range` (0 for 0).
#[inline]
pub(crate) const fn width(range: u64) -> u32 {
    64 - range.leading_zeros()
}

/// Appends `vals` packed with `w` bits each (every value must be `< 2^w`), writing exactly
/// [`packed_len`]`(vals.len(), w)` bytes. Bit `k` of the stream is bit `k % 8` of byte `k / 8`.
pub(crate) fn pack(vals: &[u64], w: u32, out: &mut Vec<u8>) {
    debug_assert!(w <= 64);
    if w == 0 || vals.is_empty() {
        return;
    }
    debug_assert!(w == 64 || vals.iter().all(|&v| v >> w == 0));
    out.reserve(packed_len(vals.len(), w) + 8);
    let mut acc: u64 = 0;
    let mut nb: u32 = 0; // bits held in acc, always < 64
    for &v in vals {
        acc |= v << nb;
        let filled = nb + w;
        if filled >= 64 {
            out.extend_from_slice(&acc.to_le_bytes());
            nb = filled - 64;
            acc = if nb == 0 { 0 } else { v >> (w - nb) };
        } else {
            nb = filled;
        }
    }
    let rem = nb.div_ceil(8) as usize;
    out.extend_from_slice(&acc.to_le_bytes()[..rem]);
}

#[inline]
fn load_u64(buf: &[u8; FRAME_BUF], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(a)
}

#[inline]
fn load_u128(buf: &[u8; FRAME_BUF], at: usize) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&buf[at..at + 16]);
    u128::from_le_bytes(a)
}

/// Unpacks `dst.len()` (at most [`FRAME`]) values of `w` bits from `src`, which must be exactly
/// [`packed_len`]`(dst.len(), w)` bytes (the caller checks lengths against the chunk).
#[inline]
pub(crate) fn unpack(src: &[u8], w: u32, dst: &mut [u64]) {
    debug_assert!(dst.len() <= FRAME && w <= 64);
    if w == 0 {
        dst.fill(0);
        return;
    }
    let mut buf = [0u8; FRAME_BUF];
    let n = src.len().min(FRAME * 8);
    buf[..n].copy_from_slice(&src[..n]);
    let wu = w as usize;
    if w <= 56 {
        let mask = (1u64 << w) - 1;
        unpack_narrow(&buf, wu, mask, dst);
    } else {
        let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
        for (i, d) in dst.iter_mut().enumerate() {
            let bit = i * wu;
            *d = ((load_u128(&buf, bit >> 3) >> (bit & 7)) as u64) & mask;
        }
    }
}

#[inline]
fn unpack_narrow(buf: &[u8; FRAME_BUF], wu: usize, mask: u64, dst: &mut [u64]) {
    for (i, d) in dst.iter_mut().enumerate().take(FRAME) {
        let bit = i * wu;
        *d = (load_u64(buf, bit >> 3) >> (bit & 7)) & mask;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod unit {
    use super::*;

    #[test]
    fn pack_unpack_every_width() {
        for w in 0..=64u32 {
            for n in [0usize, 1, 7, 64, 127, 128] {
                let mask = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
                let vals: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & mask).collect();
                let mut out = Vec::new();
                pack(&vals, w, &mut out);
                assert_eq!(out.len(), packed_len(n, w), "w={w} n={n}");
                let mut back = vec![0u64; n];
                unpack(&out, w, &mut back);
                assert_eq!(back, vals, "w={w} n={n}");
            }
        }
    }
}

//! The streaming Gorilla codec of open head chunks: timestamps as delta-of-delta in
//! Prometheus-style buckets, values XORed with their predecessor. Layout in `FORMAT.md`,
//! "XOR stream". The value half is also the payload of the sealed `Xor` codec.

use super::bits::{BitReader, BitWriter};
use super::ChunkDecodeError;

/// `(prefix, prefix bits, payload bits)` of the delta-of-delta buckets after the `0` bucket.
const DOD_BUCKETS: [(u64, u32, u32); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

/// Fits a signed value in `bits` bits (two's complement).
#[inline]
const fn fits_signed(v: i64, bits: u32) -> bool {
    let lim = 1i64 << (bits - 1);
    -lim <= v && v < lim
}

/// XOR state for the value half, shared by encoder and decoder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XorValues {
    prev: u64,
    /// Current window; `leading == NO_WINDOW` until the first `11` block.
    leading: u32,
    trailing: u32,
}

const NO_WINDOW: u32 = 0xff;

impl XorValues {
    pub(crate) const fn new() -> Self {
        Self { prev: 0, leading: NO_WINDOW, trailing: 0 }
    }

    /// Writes the first value raw.
    #[inline]
    pub(crate) fn put_first(&mut self, w: &mut BitWriter, v: f64) {
        self.prev = v.to_bits();
        w.put(self.prev, 64);
    }

    /// Writes a value after the first.
    #[inline]
    pub(crate) fn put(&mut self, w: &mut BitWriter, v: f64) {
        let bits = v.to_bits();
        let x = bits ^ self.prev;
        self.prev = bits;
        if x == 0 {
            w.put(0, 1);
            return;
        }
        let leading = x.leading_zeros().min(31);
        let trailing = x.trailing_zeros();
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            let sig = 64 - self.leading - self.trailing;
            w.put(0b10, 2);
            w.put(x >> self.trailing, sig);
        } else {
            let sig = 64 - leading - trailing;
            self.leading = leading;
            self.trailing = trailing;
            // 2 control bits, 5 leading, 6 significant (64 written as 0).
            w.put((0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 63), 13);
            w.put(x >> trailing, sig);
        }
    }

    #[inline]
    pub(crate) fn get_first(&mut self, r: &mut BitReader<'_>) -> Option<f64> {
        self.prev = r.get_wide(64)?;
        Some(f64::from_bits(self.prev))
    }

    #[inline]
    pub(crate) fn get(&mut self, r: &mut BitReader<'_>) -> Result<f64, &'static str> {
        const END: &str = "XOR stream ends inside a sample";
        let c = r.peek8();
        if c & 0x80 == 0 {
            r.skip(1).ok_or(END)?;
            return Ok(f64::from_bits(self.prev));
        }
        if c & 0x40 == 0 {
            r.skip(2).ok_or(END)?;
            if self.leading == NO_WINDOW {
                return Err("XOR value reuses a window before one was set");
            }
        } else {
            let h = r.get(13).ok_or(END)?;
            let leading = ((h >> 6) & 31) as u32;
            let mut sig = (h & 63) as u32;
            if sig == 0 {
                sig = 64;
            }
            if leading + sig > 64 {
                return Err("XOR value window wider than 64 bits");
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig;
        }
        let sig = 64 - self.leading - self.trailing;
        let x = r.get_wide(sig).ok_or(END)? << self.trailing;
        self.prev ^= x;
        Ok(f64::from_bits(self.prev))
    }
}

/// Streaming encoder of an open chunk. Timestamps must be strictly increasing.
#[derive(Debug, Clone)]
pub struct XorEncoder {
    w: BitWriter,
    n: u32,
    first_t: i64,
    last_t: i64,
    last_v: f64,
    delta: i64,
    values: XorValues,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    /// An empty chunk.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty chunk with room for `bytes` of stream: a head that knows how large the
    /// series' last chunk grew avoids the reallocations of growing from nothing.
    #[must_use]
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            w: BitWriter::with_capacity(bytes),
            n: 0,
            first_t: 0,
            last_t: 0,
            last_v: 0.0,
            delta: 0,
            values: XorValues::new(),
        }
    }

    /// Appends one sample; `t` must be greater than the last appended timestamp.
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) {
        debug_assert!(self.n == 0 || t > self.last_t, "timestamps must increase");
        if self.n == 0 {
            self.w.put(t as u64, 64);
            self.values.put_first(&mut self.w, v);
            self.first_t = t;
        } else {
            let delta = t.wrapping_sub(self.last_t);
            let dod = delta.wrapping_sub(self.delta);
            self.delta = delta;
            self.put_dod(dod);
            self.values.put(&mut self.w, v);
        }
        self.w.sync();
        self.last_t = t;
        self.last_v = v;
        self.n = self.n.wrapping_add(1);
    }

    #[inline]
    fn put_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.w.put(0, 1);
            return;
        }
        for (prefix, pbits, bits) in DOD_BUCKETS {
            if fits_signed(dod, bits) {
                let payload = (dod as u64) & ((1u64 << bits) - 1);
                self.w.put((prefix << bits) | payload, pbits + bits);
                return;
            }
        }
        self.w.put(0b1111, 4);
        self.w.put(dod as u64, 64);
    }

    /// Number of samples appended.
    #[must_use]
    pub fn len(&self) -> u32 {
        self.n
    }

    /// True when nothing was appended.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The encoded stream so far (decode it with [`XorDecoder::new`]`(bytes, len)`).
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Timestamp of the first sample.
    #[must_use]
    pub fn first_t(&self) -> Option<i64> {
        (self.n > 0).then_some(self.first_t)
    }

    /// The last sample appended.
    #[must_use]
    pub fn last(&self) -> Option<(i64, f64)> {
        (self.n > 0).then_some((self.last_t, self.last_v))
    }

    /// The address the next append writes to, for a cache prefetch hint. It is never
    /// dereferenced; a prefetch of any address is harmless.
    #[must_use]
    pub fn tail_ptr(&self) -> *const u8 {
        self.w.tail_ptr()
    }

    /// Heap and inline bytes held by this encoder.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.w.capacity()
    }
}

/// Decoder of an XOR stream holding `count` samples. Yields `Ok((t, v))` per sample; on
/// corrupt or short input it yields one `Err` and then ends. Each sample consumes at least two
/// bits, so it ends after at most `4 * bytes.len() + 1` items whatever `count` says.
#[derive(Debug, Clone)]
pub struct XorDecoder<'a> {
    r: BitReader<'a>,
    left: u32,
    started: bool,
    failed: bool,
    t: i64,
    delta: i64,
    values: XorValues,
}

impl<'a> XorDecoder<'a> {
    /// A decoder over `bytes` (from [`XorEncoder::bytes`]) expecting `count` samples.
    #[must_use]
    pub fn new(bytes: &'a [u8], count: u32) -> Self {
        Self {
            r: BitReader::new(bytes),
            left: count,
            started: false,
            failed: false,
            t: 0,
            delta: 0,
            values: XorValues::new(),
        }
    }

    fn fail(&mut self, reason: &'static str) -> Option<Result<(i64, f64), ChunkDecodeError>> {
        self.failed = true;
        Some(Err(ChunkDecodeError::new(self.r.byte_offset(), reason)))
    }

    #[inline]
    fn get_dod(&mut self) -> Option<i64> {
        let c = self.r.peek8();
        let ones = c.leading_ones().min(4);
        if ones == 0 {
            self.r.skip(1)?;
            return Some(0);
        }
        self.r.skip(ones + u32::from(ones < 4))?;
        if ones == 4 {
            return self.r.get_wide(64).map(|u| u as i64);
        }
        let (_, _, bits) = DOD_BUCKETS[ones as usize - 1];
        let u = self.r.get(bits)?;
        // Sign-extend.
        Some(((u << (64 - bits)) as i64) >> (64 - bits))
    }

    /// Decodes every remaining sample into `ts` / `vs`. On error the vectors keep their
    /// original lengths.
    ///
    /// # Errors
    /// The first decode error.
    pub fn decode_into(self, ts: &mut Vec<i64>, vs: &mut Vec<f64>) -> Result<(), ChunkDecodeError> {
        let (t0, v0) = (ts.len(), vs.len());
        let cap = (self.r.bits_left() / 2 + 1).min(self.left as usize);
        ts.reserve(cap);
        vs.reserve(cap);
        for item in self {
            match item {
                Ok((t, v)) => {
                    ts.push(t);
                    vs.push(v);
                }
                Err(e) => {
                    ts.truncate(t0);
                    vs.truncate(v0);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

impl Iterator for XorDecoder<'_> {
    type Item = Result<(i64, f64), ChunkDecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.failed {
            return None;
        }
        if self.started {
            let Some(dod) = self.get_dod() else {
                return self.fail("XOR stream ends inside a timestamp");
            };
            self.delta = self.delta.wrapping_add(dod);
            self.t = self.t.wrapping_add(self.delta);
            match self.values.get(&mut self.r) {
                Ok(v) => {
                    self.left -= 1;
                    Some(Ok((self.t, v)))
                }
                Err(reason) => self.fail(reason),
            }
        } else {
            let Some(t) = self.r.get_wide(64) else {
                return self.fail("XOR stream ends inside the first sample");
            };
            let Some(v) = self.values.get_first(&mut self.r) else {
                return self.fail("XOR stream ends inside the first sample");
            };
            self.started = true;
            self.t = t as i64;
            self.left -= 1;
            Some(Ok((self.t, v)))
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            return (0, Some(0));
        }
        (0, Some(self.left as usize))
    }
}

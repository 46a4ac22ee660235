//! Most-significant-bit-first bit streams for the XOR codec (see `FORMAT.md`, "XOR stream").

/// Appends bits, most significant first within each byte.
///
/// Pending bits live in a 64-bit accumulator; [`BitWriter::sync`] stores its image after the
/// full words so [`BitWriter::bytes`] can hand out a plain slice.
#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    /// `committed` bytes of full words, then (after a sync) the accumulator's 8-byte image.
    buf: Vec<u8>,
    committed: usize,
    /// Pending bits, left-aligned.
    acc: u64,
    /// Number of pending bits, `0..64`.
    nacc: u32,
}

impl BitWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self { buf: Vec::with_capacity(bytes), ..Self::default() }
    }

    /// The bits written up to the last [`BitWriter::sync`]; the last byte is zero-filled in
    /// its unused low bits.
    pub(crate) fn bytes(&self) -> &[u8] {
        let end = self.committed + self.nacc.div_ceil(8) as usize;
        &self.buf[..end.min(self.buf.len())]
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Where the next full word will be stored (for a cache prefetch; never read through).
    pub(crate) fn tail_ptr(&self) -> *const u8 {
        self.buf.as_ptr().wrapping_add(self.committed)
    }

    /// Stores `word` big-endian at `committed`.
    #[inline]
    fn store(&mut self, word: u64) {
        let c = self.committed;
        if self.buf.len() < c + 8 {
            self.buf.resize(c + 8, 0);
        }
        self.buf[c..c + 8].copy_from_slice(&word.to_be_bytes());
    }

    /// Writes the low `n <= 64` bits of `v`; `v` must be below `2^n`.
    #[inline]
    pub(crate) fn put(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 64 && (n == 64 || v >> n == 0));
        if n == 0 {
            return;
        }
        let free = 64 - self.nacc;
        if n < free {
            self.acc |= v << (free - n);
            self.nacc += n;
        } else {
            let rest = n - free;
            self.store(self.acc | (v >> rest));
            self.committed += 8;
            self.acc = if rest == 0 { 0 } else { v << (64 - rest) };
            self.nacc = rest;
        }
    }

    /// Makes [`BitWriter::bytes`] include every bit written so far.
    #[inline]
    pub(crate) fn sync(&mut self) {
        self.store(self.acc);
    }
}

/// Reads bits written by [`BitWriter`]; every read is bounds checked.
#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    bytes: &'a [u8],
    /// Next byte to load into `buf`.
    pos: usize,
    /// Loaded bits, left-aligned; bits past `nbuf` are either zero or the stream's next bits.
    buf: u64,
    nbuf: u32,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0, buf: 0, nbuf: 0 }
    }

    /// Byte offset of the next unread bit.
    pub(crate) fn byte_offset(&self) -> usize {
        (self.pos * 8 - self.nbuf as usize) / 8
    }

    pub(crate) fn bits_left(&self) -> usize {
        self.nbuf as usize + (self.bytes.len() - self.pos) * 8
    }

    /// Loads bytes until at least 56 bits are buffered or the input ends.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(s) = self.bytes.get(self.pos..self.pos + 8) {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            self.buf |= u64::from_be_bytes(a) >> self.nbuf;
            let take = (63 - self.nbuf) >> 3;
            self.pos += take as usize;
            self.nbuf += take * 8;
        } else {
            self.refill_tail();
        }
    }

    #[inline(never)]
    fn refill_tail(&mut self) {
        {
            while self.nbuf <= 56 && self.pos < self.bytes.len() {
                self.buf |= u64::from(self.bytes[self.pos]) << (56 - self.nbuf);
                self.pos += 1;
                self.nbuf += 8;
            }
        }
    }

    /// Up to 8 next bits, left-aligned in a byte, zero past the end; not consumed.
    #[inline]
    pub(crate) fn peek8(&mut self) -> u8 {
        if self.nbuf < 8 {
            self.refill();
        }
        (self.buf >> 56) as u8
    }

    /// Consumes `n <= 8` bits already peeked; fails if they are past the end.
    #[inline]
    pub(crate) fn skip(&mut self, n: u32) -> Option<()> {
        if n > self.nbuf {
            return None;
        }
        self.buf <<= n;
        self.nbuf -= n;
        Some(())
    }

    /// Reads `1 <= n <= 56` bits as an unsigned integer.
    #[inline(always)]
    pub(crate) fn get(&mut self, n: u32) -> Option<u64> {
        debug_assert!((1..=56).contains(&n));
        if self.nbuf < n {
            self.refill();
            if self.nbuf < n {
                return None;
            }
        }
        let v = self.buf >> (64 - n);
        self.buf <<= n;
        self.nbuf -= n;
        Some(v)
    }

    /// Reads `n <= 64` bits as an unsigned integer.
    #[inline]
    pub(crate) fn get_wide(&mut self, n: u32) -> Option<u64> {
        if n > 56 {
            let hi = self.get(n - 32)?;
            let lo = self.get(32)?;
            Some((hi << 32) | lo)
        } else if n == 0 {
            Some(0)
        } else {
            self.get(n)
        }
    }
}

//! LEB128 varints and zigzag, shared by the WAL record and index encoders.
//! Readers are bounds-checked and return `None` on truncated or overlong input.

#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline]
pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

/// A bounds-checked cursor over a byte slice.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub fn uvarint(&mut self) -> Option<u64> {
        // Fast paths: WAL records are mostly one-byte ids and deltas and two- or
        // three-byte decimal values.
        match self.buf.get(self.pos..) {
            Some([a, ..]) if *a < 0x80 => {
                self.pos += 1;
                Some(u64::from(*a))
            }
            Some([a, b, ..]) if *b < 0x80 => {
                self.pos += 2;
                Some(u64::from(a & 0x7f) | u64::from(*b) << 7)
            }
            Some([a, b, c, ..]) if *c < 0x80 => {
                self.pos += 3;
                Some(u64::from(a & 0x7f) | u64::from(b & 0x7f) << 7 | u64::from(*c) << 14)
            }
            _ => self.uvarint_multi(),
        }
    }

    #[inline(never)]
    fn uvarint_multi(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return None;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }

    #[inline]
    pub fn ivarint(&mut self) -> Option<i64> {
        self.uvarint().map(unzigzag)
    }

    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    pub fn u64_le(&mut self) -> Option<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }

    /// A length prefix that must fit in what is left, so a corrupt length never drives
    /// an allocation.
    pub fn len_prefix(&mut self) -> Option<usize> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        (n <= self.remaining()).then_some(n)
    }

    pub fn str(&mut self) -> Option<&'a str> {
        let n = self.len_prefix()?;
        std::str::from_utf8(self.bytes(n)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_extremes() {
        let vals = [0i64, 1, -1, 63, -64, 1 << 40, i64::MIN, i64::MAX];
        let mut out = Vec::new();
        for &v in &vals {
            put_ivarint(&mut out, v);
        }
        put_uvarint(&mut out, u64::MAX);
        let mut r = Reader::new(&out);
        for &v in &vals {
            assert_eq!(r.ivarint(), Some(v));
        }
        assert_eq!(r.uvarint(), Some(u64::MAX));
        assert_eq!(r.uvarint(), None);
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let bad = [0xffu8; 11];
        assert_eq!(Reader::new(&bad).uvarint(), None);
        let bad = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Reader::new(&bad).uvarint(), None);
    }
}

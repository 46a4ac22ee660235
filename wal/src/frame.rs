//! Record frames: `crc u32 | len u32 | type u8 | payload`. Layout in `FORMAT.md`.

/// Bytes before each payload.
pub const FRAME_HEADER_BYTES: usize = 9;
/// Largest payload accepted on write and on read.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Record type of the seal frame that ends every finished segment; never handed to callers.
pub const SEAL_RECORD_TYPE: u8 = 0;
/// Payload length of a seal frame (the next segment's id, u64 LE).
pub const SEAL_PAYLOAD_BYTES: usize = 8;
/// Size of a whole seal frame.
pub const SEAL_FRAME_BYTES: usize = FRAME_HEADER_BYTES + SEAL_PAYLOAD_BYTES;

const _: () = assert!(MAX_RECORD_BYTES <= u32::MAX as usize);

/// The seal frame that ends a segment whose successor is `next_segment`.
pub(crate) fn encode_seal(next_segment: u64) -> [u8; SEAL_FRAME_BYTES] {
    let payload = next_segment.to_le_bytes();
    let mut f = [0u8; SEAL_FRAME_BYTES];
    f[..FRAME_HEADER_BYTES].copy_from_slice(&encode_header(SEAL_RECORD_TYPE, &payload));
    f[FRAME_HEADER_BYTES..].copy_from_slice(&payload);
    f
}

/// CRC-32/IEEE over `len_le || type || payload` (frame bytes 4.. to the end).
pub(crate) fn frame_crc(len_and_type: &[u8; 5], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_and_type);
    h.update(payload);
    h.finalize()
}

/// The 9-byte header of a frame for `payload` (length checked by the caller).
pub(crate) fn encode_header(record_type: u8, payload: &[u8]) -> [u8; FRAME_HEADER_BYTES] {
    // Callers bound the length by MAX_RECORD_BYTES (< u32::MAX); saturate rather than wrap.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut lt = [0u8; 5];
    lt[..4].copy_from_slice(&len.to_le_bytes());
    lt[4] = record_type;
    let crc = frame_crc(&lt, payload);
    let mut h = [0u8; FRAME_HEADER_BYTES];
    h[..4].copy_from_slice(&crc.to_le_bytes());
    h[4..].copy_from_slice(&lt);
    h
}

/// A decoded, validated frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) record_type: u8,
    pub(crate) payload: &'a [u8],
    /// Frame size including its header.
    pub(crate) frame_len: usize,
}

/// Why a frame did not validate.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bad {
    /// The file ends inside the frame header or payload.
    Cut(String),
    /// The frame is complete but wrong.
    Invalid(String),
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Decodes the frame at the start of `buf` (which runs to the end of the file).
pub(crate) fn decode(buf: &[u8]) -> Result<Frame<'_>, Bad> {
    let Some(header) = buf.get(..FRAME_HEADER_BYTES) else {
        return Err(Bad::Cut(format!("frame header cut: {} of {FRAME_HEADER_BYTES} bytes", buf.len())));
    };
    let expected = le_u32(&header[0..4]);
    let len = le_u32(&header[4..8]) as usize;
    let record_type = header[8];
    if len > MAX_RECORD_BYTES {
        return Err(Bad::Invalid(format!("record length {len} exceeds max {MAX_RECORD_BYTES}")));
    }
    let frame_len = FRAME_HEADER_BYTES + len;
    let Some(payload) = buf.get(FRAME_HEADER_BYTES..frame_len) else {
        return Err(Bad::Cut(format!(
            "record cut: length {len} but only {} payload bytes before end of file",
            buf.len() - FRAME_HEADER_BYTES
        )));
    };
    let mut lt = [0u8; 5];
    lt.copy_from_slice(&header[4..9]);
    let found = frame_crc(&lt, payload);
    if found != expected {
        return Err(Bad::Invalid(format!("crc mismatch: expected {expected:#010x} found {found:#010x}")));
    }
    Ok(Frame { record_type, payload, frame_len })
}

/// True if a valid frame starts at byte `p` of `buf` (used to resynchronise after damage,
/// and to tell a torn tail from damage followed by good data).
pub(crate) fn is_valid_frame_at(buf: &[u8], p: usize) -> bool {
    let Some(h) = buf.get(p..p + FRAME_HEADER_BYTES) else { return false };
    // Cheap filter before the CRC: the payload must fit in the file.
    (le_u32(&h[4..8]) as usize) <= buf.len() - p - FRAME_HEADER_BYTES && decode(&buf[p..]).is_ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn frame(t: u8, p: &[u8]) -> Vec<u8> {
        let mut v = encode_header(t, p).to_vec();
        v.extend_from_slice(p);
        v
    }

    #[test]
    fn crc_is_crc32_ieee() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn round_trip() {
        let f = frame(7, b"hello");
        let d = decode(&f).unwrap();
        assert_eq!(d, Frame { record_type: 7, payload: b"hello", frame_len: 14 });
    }

    #[test]
    fn empty_payload() {
        let f = frame(1, b"");
        assert_eq!(decode(&f).unwrap().frame_len, FRAME_HEADER_BYTES);
    }

    #[test]
    fn every_cut_is_cut_and_every_flip_is_caught() {
        let f = frame(3, b"some payload bytes");
        for n in 0..f.len() {
            assert!(matches!(decode(&f[..n]), Err(Bad::Cut(_))), "cut at {n}");
        }
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x40;
            assert!(decode(&g).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn zeros_never_validate_and_huge_len_rejected() {
        assert!(matches!(decode(&[0u8; 64]), Err(Bad::Invalid(_))));
        let mut f = frame(1, b"x");
        f[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&f), Err(Bad::Invalid(_))));
    }

    #[test]
    fn resync_finds_later_frame() {
        let mut buf = vec![0u8; 20];
        assert!(!(1..buf.len()).any(|p| is_valid_frame_at(&buf, p)));
        buf.extend_from_slice(&frame(2, b"abc"));
        assert_eq!((1..buf.len()).find(|&p| is_valid_frame_at(&buf, p)), Some(20));
    }
}

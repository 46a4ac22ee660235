//! Segment files: naming, listing and the 32-byte header. Layout in `FORMAT.md`.

use crate::SegmentId;

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"CHRNLWAL";
/// Current (and only) format version.
pub const FORMAT_VERSION: u32 = 1;
/// Size of the segment header; the first record frame starts here.
pub const SEGMENT_HEADER_BYTES: usize = 32;

const CRC_AT: usize = 28;
const _: () = assert!(CRC_AT + 4 == SEGMENT_HEADER_BYTES);

/// File name of a segment: 20 decimal digits and `.wal`.
pub(crate) fn file_name(id: SegmentId) -> String {
    format!("{:020}.wal", id.0)
}

/// Parses a segment file name; `None` for anything else.
pub(crate) fn parse_file_name(name: &str) -> Option<SegmentId> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(SegmentId)
}

/// Encodes the header of segment `id`.
pub(crate) fn encode_header(id: SegmentId) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    // 12..16 flags, 24..28 reserved: zero.
    h[16..24].copy_from_slice(&id.0.to_le_bytes());
    let crc = crc32fast::hash(&h[..CRC_AT]);
    h[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    h
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Validates the header at the start of `file` (the whole segment file) for segment `id`.
/// Returns a reason on failure.
pub(crate) fn check_header(file: &[u8], id: SegmentId) -> Result<(), String> {
    let Some(h) = file.get(..SEGMENT_HEADER_BYTES) else {
        return Err(format!("segment header cut: file is {} bytes", file.len()));
    };
    if h[0..8] != SEGMENT_MAGIC {
        return Err(format!("bad magic {:02x?}", &h[0..8]));
    }
    let expected = le_u32(h, CRC_AT);
    let found = crc32fast::hash(&h[..CRC_AT]);
    if expected != found {
        return Err(format!("header crc mismatch: expected {expected:#010x} found {found:#010x}"));
    }
    let version = le_u32(h, 8);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported format version {version}"));
    }
    let mut idb = [0u8; 8];
    idb.copy_from_slice(&h[16..24]);
    let in_header = u64::from_le_bytes(idb);
    if in_header != id.0 {
        return Err(format!("header names segment {in_header}, file name says {}", id.0));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let id = SegmentId(42);
        assert_eq!(file_name(id), "00000000000000000042.wal");
        assert_eq!(parse_file_name(&file_name(id)), Some(id));
        assert_eq!(parse_file_name("42.wal"), None);
        assert_eq!(parse_file_name("0000000000000000004x.wal"), None);
        assert_eq!(parse_file_name("00000000000000000042.wal.tmp"), None);
    }

    #[test]
    fn header_round_trip_and_checks() {
        let h = encode_header(SegmentId(7));
        assert!(check_header(&h, SegmentId(7)).is_ok());
        assert!(check_header(&h, SegmentId(8)).is_err());
        assert!(check_header(&h[..31], SegmentId(7)).is_err());
        let mut bad = h;
        bad[17] ^= 1;
        assert!(check_header(&bad, SegmentId(7)).unwrap_err().contains("crc mismatch"));
    }
}

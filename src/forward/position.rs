//! The durable per-target position: how far the receiver has confirmed the WAL. Layout
//! in `FORMAT.md` beside this file. Written atomically (tmp, fsync, rename, directory
//! fsync), so after a crash it is the old position or the new one.

use crate::{Error, Result};
use chronolith_wal::{Position, SegmentId};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

pub(crate) const FILE_NAME: &str = "position";
const TMP_NAME: &str = "position.tmp";
const MAGIC: [u8; 8] = *b"CHRNLFWD";
const VERSION: u32 = 1;
const BYTES: usize = 44;
const CRC_AT: usize = 40;
const _: () = assert!(CRC_AT + 4 == BYTES);

/// What the file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Saved {
    /// The next WAL record to send: everything before it was confirmed (or dropped).
    pub position: Position,
    /// Newest sample timestamp confirmed so far (`i64::MIN` if none yet).
    pub max_t: i64,
}

pub(crate) fn encode(s: &Saved) -> [u8; BYTES] {
    let mut b = [0u8; BYTES];
    b[0..8].copy_from_slice(&MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    // 12..16 flags: zero.
    b[16..24].copy_from_slice(&s.position.segment.0.to_le_bytes());
    b[24..32].copy_from_slice(&s.position.offset.to_le_bytes());
    b[32..40].copy_from_slice(&s.max_t.to_le_bytes());
    let crc = crc32(&b[..CRC_AT]);
    b[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    b
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

pub(crate) fn decode(b: &[u8], path: &Path) -> Result<Saved> {
    let corrupt = |offset: u64, reason: String| Error::Corruption { path: path.to_path_buf(), offset, detail: reason };
    if b.len() != BYTES {
        return Err(corrupt(0, format!("position file is {} bytes, expected {BYTES}", b.len())));
    }
    if b[0..8] != MAGIC {
        return Err(corrupt(0, format!("bad magic {:02x?}", &b[0..8])));
    }
    let mut c = [0u8; 4];
    c.copy_from_slice(&b[CRC_AT..]);
    let (expected, found) = (u32::from_le_bytes(c), crc32(&b[..CRC_AT]));
    if expected != found {
        return Err(corrupt(CRC_AT as u64, format!("crc mismatch: expected {expected:#010x} found {found:#010x}")));
    }
    c.copy_from_slice(&b[8..12]);
    let version = u32::from_le_bytes(c);
    if version != VERSION {
        return Err(corrupt(8, format!("unsupported position file version {version}")));
    }
    let position = Position { segment: SegmentId(le_u64(&b[16..24])), offset: le_u64(&b[24..32]) };
    Ok(Saved { position, max_t: le_u64(&b[32..40]) as i64 })
}

fn crc32(b: &[u8]) -> u32 {
    // CRC-32/IEEE as everywhere in Chronolith; crc32fast is not a root dependency, and a
    // 44-byte file a few times a second does not need a table.
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in b {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Reads the saved position of the target whose state directory is `dir`; `None` if the
/// target has none yet.
pub(crate) fn load(dir: &Path) -> Result<Option<Saved>> {
    let path = dir.join(FILE_NAME);
    match fs::read(&path) {
        Ok(b) => decode(&b, &path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io { path, op: "read", source: e }),
    }
}

/// Replaces the saved position: write `position.tmp`, fsync, rename over `position`,
/// fsync the directory.
pub(crate) fn store(dir: &Path, s: &Saved) -> Result<()> {
    let tmp = dir.join(TMP_NAME);
    let io = |path: &Path, op: &'static str| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, op, source }
    };
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(io(&tmp, "create"))?;
    f.write_all(&encode(s)).map_err(io(&tmp, "write"))?;
    f.sync_all().map_err(io(&tmp, "fsync"))?;
    drop(f);
    fs::rename(&tmp, dir.join(FILE_NAME)).map_err(io(&tmp, "rename"))?;
    sync_dir(dir)
}

/// Creates the state directory (and fsyncs its parent when it is new).
pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), op: "create_dir", source })?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
        if let Some(grand) = parent.parent() {
            sync_dir(grand)?;
        }
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), op: "open_dir", source })?;
    d.sync_all().map_err(|source| Error::Io { path: dir.to_path_buf(), op: "fsync_dir", source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_damage() -> Result<()> {
        let s = Saved { position: Position { segment: SegmentId(7), offset: 4242 }, max_t: -5 };
        let b = encode(&s);
        let p = Path::new("position");
        assert_eq!(decode(&b, p)?, s);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        for i in 0..BYTES {
            let mut d = b;
            d[i] ^= 0x10;
            assert!(decode(&d, p).is_err(), "flip at {i}");
        }
        assert!(decode(&b[..40], p).is_err());
        let dir = tempfile::tempdir().map_err(|e| Error::Io { path: ".".into(), op: "tmp", source: e })?;
        assert_eq!(load(dir.path())?, None);
        store(dir.path(), &s)?;
        assert_eq!(load(dir.path())?, Some(s));
        Ok(())
    }
}

//! A block's `index` and `meta` decoders on arbitrary bytes: a typed error or a
//! structure, never a panic or an allocation the input cannot justify.
#![no_main]

use chronolith_engine::block::{decode_index, BlockMeta};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let p = Path::new("fuzz");
    let _ = BlockMeta::decode(data, p);
    // Give the index a valid CRC trailer half the time so the structure parser runs.
    if data.first().is_some_and(|b| b & 1 == 1) {
        let mut v = data[1..].to_vec();
        let crc = crc32(&v);
        v.extend_from_slice(&crc.to_le_bytes());
        let _ = decode_index(&v, p, |_, _| {});
    } else {
        let _ = decode_index(data, p, |_, _| {});
    }
});

fn crc32(b: &[u8]) -> u32 {
    // Bitwise CRC-32/IEEE, to keep the fuzz crate's dependencies minimal.
    let mut crc = 0xFFFF_FFFFu32;
    for &x in b {
        crc ^= u32::from(x);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

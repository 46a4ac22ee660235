//! The engine's WAL record payloads (series and samples) on arbitrary bytes: decoding
//! returns an error or samples, never panics, never loops long.
#![no_main]

use chronolith_engine::walrec::{decode_samples, decode_series};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut n = 0usize;
    let _ = decode_samples(data, |_, _, _| n += 1);
    assert!(n <= data.len());
    let _ = decode_series(data, |_, _| {});
});

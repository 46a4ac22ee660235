//! Remote-write bodies (snappy block + `WriteRequest` protobuf) on arbitrary bytes, as
//! they arrive, and (half the time) arbitrary bytes snappy-compressed first so the
//! protobuf decoder sees them. A typed error or a request, never a panic, and a size
//! limit the header announces past is refused before decompressing; a decoded request
//! re-encodes and decodes to the same bytes.
#![no_main]

use chronolith::remote_write::{decode, encode, DecodeError};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let body = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        match snap::raw::Encoder::new().compress_vec(rest) {
            Ok(b) => b,
            Err(_) => return,
        }
    };
    match decode(&body, LIMIT) {
        Ok(req) => {
            let again = encode(&req);
            match decode(&again, usize::MAX) {
                Ok(back) => assert_eq!(encode(&back), again, "re-encoded request differs"),
                Err(e) => panic!("re-encoded request does not decode: {e}"),
            }
        }
        Err(DecodeError::TooLarge { decompressed_bytes, limit_bytes }) => {
            assert!(decompressed_bytes > limit_bytes);
        }
        Err(_) => {}
    }
});

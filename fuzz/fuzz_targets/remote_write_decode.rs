//! Remote-write bodies (snappy block + `WriteRequest` protobuf) on arbitrary bytes, as
//! they arrive, and (half the time) arbitrary bytes snappy-compressed first so the
//! protobuf decoder sees them. A typed error or a request, never a panic, and a size
//! limit the header announces past is refused before decompressing; a decoded request
//! re-encodes and decodes to the same bytes. The server's zero-copy decoder
//! (`remote_write::borrowed`) runs on the same decompressed bytes: never a panic, and
//! where both decoders accept a request they read the same series, labels and samples.
#![no_main]

use chronolith::remote_write::{borrowed, decode, encode, DecodeError, WriteRequest};
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
    let prost = decode(&body, LIMIT);
    // As the server does: the announced length is checked before decompressing.
    if snap::raw::decompress_len(&body).is_ok_and(|n| n <= LIMIT) {
        if let Ok(raw) = snap::raw::Decoder::new().decompress_vec(&body) {
            compare_borrowed(&raw, prost.as_ref().ok());
        }
    }
    match prost {
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

/// The zero-copy decoder on `raw`; where it and prost both accept, they agree.
fn compare_borrowed(raw: &[u8], prost: Option<&WriteRequest>) {
    let mut d = borrowed::Decoded::default();
    if d.decode(raw, usize::MAX).is_err() {
        return;
    }
    let Some(req) = prost else { return };
    assert_eq!(d.series.len(), req.timeseries.len(), "series count");
    for (i, ts) in req.timeseries.iter().enumerate() {
        let Ok(labels) = d.labels(raw, i) else { panic!("series {i}: prost read its labels, borrowed did not") };
        let want: Vec<(&[u8], &[u8])> = ts.labels.iter().map(|l| (l.name.as_bytes(), l.value.as_bytes())).collect();
        assert_eq!(labels, want, "series {i} labels");
        let got: Vec<(i64, u64)> = d.samples[d.series[i].samples.clone()].iter().map(|(t, v)| (*t, v.to_bits())).collect();
        let want: Vec<(i64, u64)> = ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())).collect();
        assert_eq!(got, want, "series {i} samples");
    }
}

//! Feeds arbitrary bytes to every chunk decoder: the sealed-chunk decoder and the head's XOR
//! stream decoder. Neither may panic, hang or allocate without bound; when the sealed decoder
//! accepts an input, re-encoding what it produced must decode to the same samples.
#![no_main]

use chronolith_engine::chunk::{decode_sealed, encode_sealed, XorDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    if decode_sealed(data, &mut ts, &mut vs).is_ok() {
        assert_eq!(ts.len(), vs.len());
        if ts.windows(2).all(|w| w[0] < w[1]) {
            let mut again = Vec::new();
            encode_sealed(&ts, &vs, &mut again);
            let (mut t2, mut v2) = (Vec::new(), Vec::new());
            assert!(decode_sealed(&again, &mut t2, &mut v2).is_ok());
            assert_eq!(t2, ts);
            assert!(v2.iter().zip(&vs).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    } else {
        assert!(ts.is_empty() && vs.is_empty());
    }

    // XOR stream: the first 4 bytes give the claimed sample count.
    if let Some((head, rest)) = data.split_first_chunk::<4>() {
        let count = u32::from_le_bytes(*head);
        let n = XorDecoder::new(rest, count).take(1 << 22).count();
        assert!(n <= 4 * rest.len() + 2);
    }
});

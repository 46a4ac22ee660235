//! Rollup chunks (block `chunks` v2 payloads) on arbitrary bytes, decoding any subset of
//! columns: a typed error or buckets, never a panic. When every column decodes, the
//! columns agree in length, and re-encoding the buckets decodes to the same bits.
//! Half the inputs are instead arbitrary samples bucketed, encoded and decoded, which
//! must round-trip exactly.
#![no_main]

use chronolith_engine::block::rollup::{decode_rollup_chunk, encode_rollup_chunk, BucketBuilder, Buckets, ColumnSet};
use libfuzzer_sys::fuzz_target;

fn bits(b: &Buckets) -> Vec<Vec<u64>> {
    let f = |c: &[f64]| c.iter().map(|v| v.to_bits()).collect::<Vec<u64>>();
    let i = |c: &[i64]| c.iter().map(|v| *v as u64).collect::<Vec<u64>>();
    vec![
        i(&b.end_t),
        f(&b.count),
        f(&b.sum),
        f(&b.min),
        f(&b.max),
        i(&b.first_t),
        f(&b.first_v),
        i(&b.last_t),
        f(&b.last_v),
        f(&b.resets),
    ]
}

fn round_trip(b: &Buckets) {
    let mut enc = Vec::new();
    encode_rollup_chunk(b, 0, b.len(), &mut enc);
    let mut back = Buckets::default();
    match decode_rollup_chunk(&enc, ColumnSet::ALL, &mut back) {
        Ok(n) => assert_eq!(n, b.len()),
        Err(e) => panic!("re-encoded rollup chunk does not decode: {e:?}"),
    }
    assert_eq!(bits(&back), bits(b), "rollup chunk round trip");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 0x80 == 0 {
        // Arbitrary bytes as a chunk: any column subset, then all of them.
        let want = ColumnSet(u16::from(mode) | (u16::from(mode & 1) << 8));
        let mut some = Buckets::default();
        let _ = decode_rollup_chunk(rest, want, &mut some);
        let mut all = Buckets::default();
        if let Ok(n) = decode_rollup_chunk(rest, ColumnSet::ALL, &mut all) {
            assert_eq!(all.len(), n);
            let lens = [all.count.len(), all.sum.len(), all.first_t.len(), all.last_t.len(), all.resets.len()];
            assert!(lens.iter().all(|l| *l == n), "columns differ in length: {lens:?} vs {n}");
            // The offsets columns hold f64 offsets: re-encoding is exact only when they
            // are integers an f64 holds exactly and the timestamps increase.
            let exact = all.end_t.windows(2).all(|w| w[0] < w[1])
                && all
                    .first_t
                    .iter()
                    .chain(&all.last_t)
                    .zip(all.end_t.iter().chain(&all.end_t))
                    .all(|(t, e)| e.checked_sub(*t).is_some_and(|o| o.unsigned_abs() < 1 << 53));
            if exact {
                round_trip(&all);
            }
        }
    } else {
        // Arbitrary samples (increasing timestamps), bucketed at 1..=64 ms.
        let resolution = i64::from(mode & 0x3f) + 1;
        let (mut ts, mut vs) = (Vec::new(), Vec::new());
        let mut t = 0i64;
        for c in rest.chunks_exact(9) {
            t += i64::from(c[0]) + 1;
            let mut v = [0u8; 8];
            v.copy_from_slice(&c[1..]);
            ts.push(t);
            vs.push(f64::from_bits(u64::from_le_bytes(v)));
        }
        let mut builder = BucketBuilder::new(resolution);
        builder.push_samples(&ts, &vs);
        let buckets = builder.finish().clone();
        if !buckets.is_empty() {
            round_trip(&buckets);
        }
    }
});

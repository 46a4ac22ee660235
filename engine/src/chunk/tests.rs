//! Round-trip, robustness and size tests of the chunk codecs.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use super::*;
use proptest::prelude::*;

/// Deterministic xorshift generator so size tests are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// TSBS-like CPU gauge: random walk with uniform ±1.0 steps, reflected into [0, 100],
/// rounded to 2 decimals, one sample every 10 s.
pub(crate) fn gauge(n: usize, seed: u64) -> (Vec<i64>, Vec<f64>) {
    let mut r = Rng(seed | 1);
    let mut x = r.unit() * 100.0;
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    for i in 0..n {
        x += r.unit() * 2.0 - 1.0;
        if x < 0.0 {
            x = -x;
        }
        if x > 100.0 {
            x = 200.0 - x;
        }
        ts.push(1_700_000_000_000 + 10_000 * i as i64);
        vs.push((x * 100.0).round() / 100.0);
    }
    (ts, vs)
}

/// Monotonic counter with random increments of 10..10000, optionally resetting now and then.
pub(crate) fn counter(n: usize, seed: u64, resets: bool) -> (Vec<i64>, Vec<f64>) {
    let mut r = Rng(seed | 1);
    let mut c = 0u64;
    let mut ts = Vec::with_capacity(n);
    let mut vs = Vec::with_capacity(n);
    for i in 0..n {
        c += 10 + r.next() % 9991;
        if resets && r.next() % 500 < 1 {
            c = 0;
        }
        ts.push(1_700_000_000_000 + 10_000 * i as i64);
        vs.push(c as f64);
    }
    (ts, vs)
}

fn bits(vs: &[f64]) -> Vec<u64> {
    vs.iter().map(|v| v.to_bits()).collect()
}

fn roundtrip_sealed(ts: &[i64], vs: &[f64]) -> (SealedCodec, usize) {
    let mut out = vec![0xAA]; // a prefix the encoder must not touch
    let codec = encode_sealed(ts, vs, &mut out);
    assert_eq!(out[0], 0xAA);
    let (mut t2, mut v2) = (vec![7], vec![7.0]);
    decode_sealed(&out[1..], &mut t2, &mut v2).unwrap();
    assert_eq!(&t2[1..], ts);
    assert_eq!(bits(&v2[1..]), bits(vs), "codec {codec:?}");
    (codec, out.len() - 1)
}

/// The light encoder's output decodes bit-exactly too.
fn roundtrip_sealed_fast(ts: &[i64], vs: &[f64]) {
    let mut out = Vec::new();
    let codec = encode_sealed_fast(ts, vs, &mut out);
    let (mut t2, mut v2) = (Vec::new(), Vec::new());
    decode_sealed(&out, &mut t2, &mut v2).unwrap();
    assert_eq!(t2, ts);
    assert_eq!(bits(&v2), bits(vs), "codec {codec:?}");
}

fn roundtrip_xor(ts: &[i64], vs: &[f64]) {
    let mut e = XorEncoder::new();
    for (&t, &v) in ts.iter().zip(vs) {
        e.append(t, v);
    }
    assert_eq!(e.len() as usize, ts.len());
    assert_eq!(e.first_t(), ts.first().copied());
    assert_eq!(e.last().map(|(t, v)| (t, v.to_bits())), ts.last().map(|&t| (t, vs[vs.len() - 1].to_bits())));
    let (mut t2, mut v2) = (Vec::new(), Vec::new());
    XorDecoder::new(e.bytes(), e.len()).decode_into(&mut t2, &mut v2).unwrap();
    assert_eq!(t2, ts);
    assert_eq!(bits(&v2), bits(vs));
    // One sample more than encoded must fail cleanly, not invent data... or at least stop.
    let extra: Vec<_> = XorDecoder::new(e.bytes(), e.len() + 3).collect();
    assert!(extra.len() <= ts.len() + 3);
}

/// Every codec round-trips on its own, whatever `encode_sealed` would choose; the integer
/// column alone round-trips too.
fn roundtrip_forced(ts: &[i64], vs: &[f64]) {
    for codec in [SealedCodec::DecimalBitpack, SealedCodec::Xor, SealedCodec::Pco] {
        let mut out = Vec::new();
        if !sealed::encode_forced(codec, ts, vs, &mut out) {
            continue;
        }
        let (mut t2, mut v2) = (Vec::new(), Vec::new());
        decode_sealed(&out, &mut t2, &mut v2).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
        assert_eq!(t2, ts, "{codec:?}");
        assert_eq!(bits(&v2), bits(vs), "{codec:?}");
    }
    let mut out = Vec::new();
    let mut scratch = intcol::Scratch::default();
    intcol::encode(ts, &mut out, &mut scratch);
    let mut cur = varint::Cursor::new(&out);
    let mut back = Vec::new();
    intcol::decode(&mut cur, ts.len(), &mut back).unwrap();
    assert_eq!(back, ts);
    assert_eq!(cur.remaining(), 0);
}

const SPECIAL: [f64; 12] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    0.0,
    f64::MIN,
    f64::MAX,
    f64::MIN_POSITIVE,
    5e-324,
    -5e-324,
    f64::EPSILON,
    1e300,
];

fn special() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(SPECIAL.to_vec()),
        any::<u64>().prop_map(|b| f64::from_bits(b | 0x7ff0_0000_0000_0001)), // NaN payloads
        Just(f64::from_bits(0x7ff0_0000_0000_0002)),                          // Prometheus stale marker
    ]
}

fn decimal(scale: u32) -> impl Strategy<Value = f64> {
    (-1_000_000_000i64..1_000_000_000).prop_map(move |i| i as f64 / 10f64.powi(scale as i32))
}

/// Value vectors of many shapes.
fn values(n: usize) -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        prop::collection::vec(any::<u64>().prop_map(f64::from_bits), n),
        (0u32..=12).prop_flat_map(move |s| prop::collection::vec(decimal(s), n)),
        any::<u64>().prop_map(move |b| vec![f64::from_bits(b); n]),
        (any::<u64>()).prop_map(move |s| gauge(n, s).1),
        (any::<u64>(), any::<bool>()).prop_map(move |(s, r)| counter(n, s, r).1),
        // Decimals sprinkled with adversarial values.
        (prop::collection::vec(decimal(2), n), prop::collection::vec((any::<prop::sample::Index>(), special()), 0..8))
            .prop_map(|(mut v, sp)| {
                if !v.is_empty() {
                    for (i, x) in sp {
                        let k = i.index(v.len());
                        v[k] = x;
                    }
                }
                v
            }),
        prop::collection::vec(special(), n),
    ]
}

/// Strictly increasing timestamps of many shapes.
fn timestamps(n: usize) -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        (any::<i64>(), 1i64..100_000).prop_map(move |(s, d)| {
            let s = s.min(i64::MAX - d * n as i64 - 1);
            (0..n as i64).map(|i| s + i * d).collect()
        }),
        (any::<i64>(), prop::collection::vec(-500i64..500, n)).prop_map(|(s, j)| {
            let s = s.clamp(i64::MIN / 2, i64::MAX / 2);
            j.iter().enumerate().map(|(i, &x)| s + 10_000 * i as i64 + x).collect()
        }),
        // Arbitrary i64s, sorted and deduplicated (huge gaps, both signs, MIN/MAX).
        prop::collection::vec(any::<i64>(), n).prop_map(|mut v| {
            v.sort_unstable();
            v.dedup();
            v
        }),
        // Small negative-and-positive irregular steps.
        (-1_000i64..1_000, prop::collection::vec(1i64..4, n)).prop_map(|(s, d)| d
            .iter()
            .scan(s, |t, &x| {
                *t += x;
                Some(*t)
            })
            .collect()),
    ]
}

fn lengths() -> impl Strategy<Value = usize> {
    prop_oneof![prop::sample::select(vec![0usize, 1, 2, 3, 127, 128, 129, 255, 256, 257, 720]), 0usize..400,]
}

fn series() -> impl Strategy<Value = (Vec<i64>, Vec<f64>)> {
    lengths().prop_flat_map(timestamps).prop_flat_map(|ts| {
        let n = ts.len();
        (Just(ts), values(n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn sealed_roundtrip((ts, vs) in series()) {
        roundtrip_sealed(&ts, &vs);
        roundtrip_sealed_fast(&ts, &vs);
        roundtrip_forced(&ts, &vs);
    }

    #[test]
    fn xor_roundtrip((ts, vs) in series()) {
        roundtrip_xor(&ts, &vs);
    }

    #[test]
    fn intcol_roundtrip(xs in prop::collection::vec(any::<i64>(), 0..300)) {
        let mut out = Vec::new();
        intcol::encode(&xs, &mut out, &mut intcol::Scratch::default());
        let mut cur = varint::Cursor::new(&out);
        let mut back = Vec::new();
        intcol::decode(&mut cur, xs.len(), &mut back).unwrap();
        prop_assert_eq!(back, xs);
        prop_assert_eq!(cur.remaining(), 0);
    }

    #[test]
    fn sealed_mutated_never_panics((ts, vs) in series(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let mut out = Vec::new();
        encode_sealed(&ts, &vs, &mut out);
        let mut bad = out.clone();
        for (i, x) in &flips {
            if !bad.is_empty() {
                let k = i.index(bad.len());
                bad[k] ^= x | 1;
            }
        }
        let (mut t2, mut v2) = (Vec::new(), Vec::new());
        if decode_sealed(&bad, &mut t2, &mut v2).is_ok() {
            prop_assert_eq!(t2.len(), v2.len());
            prop_assert!(t2.len() <= MAX_SAMPLES_PER_CHUNK);
        } else {
            prop_assert!(t2.is_empty() && v2.is_empty());
        }
        if !out.is_empty() {
            let k = cut.index(out.len());
            let (mut t3, mut v3) = (Vec::new(), Vec::new());
            // A strict prefix of a chunk never decodes (the count and lengths are checked).
            prop_assert!(decode_sealed(&out[..k], &mut t3, &mut v3).is_err());
        }
    }

    #[test]
    fn xor_mutated_never_panics((ts, vs) in series(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), extra in 0u32..1000) {
        let mut e = XorEncoder::new();
        for (&t, &v) in ts.iter().zip(&vs) {
            e.append(t, v);
        }
        let mut bad = e.bytes().to_vec();
        for (i, x) in &flips {
            if !bad.is_empty() {
                let k = i.index(bad.len());
                bad[k] ^= x | 1;
            }
        }
        let n = XorDecoder::new(&bad, e.len() + extra).count();
        prop_assert!(n <= 4 * bad.len() + 2);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), count in any::<u32>()) {
        let (mut t, mut v) = (Vec::new(), Vec::new());
        let _ = decode_sealed(&bytes, &mut t, &mut v);
        for tag in 1u8..=3 {
            let mut b = bytes.clone();
            if !b.is_empty() { b[0] = tag; }
            let _ = decode_sealed(&b, &mut t, &mut v);
        }
        prop_assert!(t.len() <= MAX_SAMPLES_PER_CHUNK * 4);
        let n = XorDecoder::new(&bytes, count).count();
        prop_assert!(n <= 4 * bytes.len() + 2);
    }
}

#[test]
fn edge_lengths_and_values() {
    for n in [0usize, 1, 2, 127, 128, 129, 1000, 10_000] {
        let (ts, vs) = gauge(n, 42);
        assert_eq!(roundtrip_sealed(&ts, &vs).0, SealedCodec::DecimalBitpack);
        roundtrip_xor(&ts, &vs);
        let (ts, vs) = counter(n, 7, true);
        roundtrip_sealed(&ts, &vs);
        roundtrip_xor(&ts, &vs);
    }
    let ts = [i64::MIN, -1, 0, 1, i64::MAX];
    for v in SPECIAL {
        roundtrip_sealed(&ts, &[v; 5]);
        roundtrip_xor(&ts, &[v; 5]);
    }
    roundtrip_sealed(&ts, &SPECIAL[..5]);
    roundtrip_xor(&ts, &SPECIAL[..5]);
    roundtrip_sealed(&[i64::MIN], &[f64::NAN]);
    roundtrip_sealed(&[i64::MAX], &[-0.0]);
}

#[test]
fn stale_markers_stay_decimal() {
    let (ts, mut vs) = gauge(720, 3);
    for i in [0, 5, 300, 719] {
        vs[i] = f64::from_bits(0x7ff0_0000_0000_0002);
    }
    vs[10] = -0.0;
    let (codec, size) = roundtrip_sealed(&ts, &vs);
    assert_eq!(codec, SealedCodec::DecimalBitpack);
    assert!(size < 800, "{size}");
}

#[test]
fn arbitrary_floats_use_a_fallback() {
    let mut r = Rng(99);
    let ts: Vec<i64> = (0..720).map(|i| i * 15_000).collect();
    let vs: Vec<f64> = (0..720).map(|_| r.unit() * 1e6).collect();
    let (codec, _) = roundtrip_sealed(&ts, &vs);
    assert_ne!(codec, SealedCodec::DecimalBitpack);
}

#[test]
fn wrong_count_is_rejected() {
    let (ts, vs) = gauge(100, 1);
    let mut out = Vec::new();
    encode_sealed(&ts, &vs, &mut out);
    let (mut t, mut v) = (Vec::new(), Vec::new());
    // Claim 2^20 + 1 samples.
    let mut bad = vec![out[0], 0x81, 0x80, 0x40];
    bad.extend_from_slice(&out[2..]);
    assert!(decode_sealed(&bad, &mut t, &mut v).is_err());
    assert!(decode_sealed(&[], &mut t, &mut v).is_err());
    assert!(decode_sealed(&[9, 0], &mut t, &mut v).is_err());
    let mut trailing = out.clone();
    trailing.push(0);
    assert!(decode_sealed(&trailing, &mut t, &mut v).is_err());
    assert!(t.is_empty() && v.is_empty());
}

fn bytes_per_sample(make: impl Fn(u64) -> (Vec<i64>, Vec<f64>), chunks: u64) -> (f64, Vec<SealedCodec>) {
    let (mut total, mut samples, mut codecs) = (0usize, 0usize, Vec::new());
    for seed in 1..=chunks {
        let (ts, vs) = make(seed * 7919);
        let (c, size) = roundtrip_sealed(&ts, &vs);
        total += size;
        samples += ts.len();
        codecs.push(c);
    }
    (total as f64 / samples as f64, codecs)
}

#[test]
fn gauge_size() {
    // Measured: 720 samples -> 1.028 B/sample, 8640 -> 1.002 (entropy of the steps ~0.95):
    // 8 bits per delta plus ~20 bytes of chunk, timestamp and column headers.
    let (b720, c) = bytes_per_sample(|s| gauge(720, s), 20);
    assert!(c.iter().all(|&c| c == SealedCodec::DecimalBitpack));
    let (b8640, _) = bytes_per_sample(|s| gauge(8640, s), 4);
    println!("gauge bytes/sample: 720 -> {b720:.4}, 8640 -> {b8640:.4}");
    assert!(b720 <= 1.05, "{b720}");
    assert!(b8640 <= 1.03, "{b8640}");
}

#[test]
fn counter_size() {
    // Measured: 720 -> 1.778 B/sample, 720 with resets -> 1.809, 8640 with resets -> 1.797.
    // Increments of 10..10000 need 14 bits (entropy 13.3); resets go to frame outlier lists.
    let (b720, _) = bytes_per_sample(|s| counter(720, s, false), 20);
    let (b720r, _) = bytes_per_sample(|s| counter(720, s, true), 20);
    let (b8640, _) = bytes_per_sample(|s| counter(8640, s, true), 4);
    println!("counter bytes/sample: 720 -> {b720:.4}, 720 with resets -> {b720r:.4}, 8640 with resets -> {b8640:.4}");
    assert!(b720 <= 1.85, "{b720}");
    assert!(b720r <= 1.95, "{b720r}");
}

#[test]
fn xor_head_size_on_gauges() {
    let (ts, vs) = gauge(720, 5);
    let mut e = XorEncoder::new();
    for (&t, &v) in ts.iter().zip(&vs) {
        e.append(t, v);
    }
    println!("xor head gauge bytes/sample: {:.3}", e.bytes().len() as f64 / 720.0);
    assert!(e.bytes().len() < 720 * 9);
}

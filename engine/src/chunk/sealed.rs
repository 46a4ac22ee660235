//! Sealed chunks: one self-describing chunk per series and partition, with its codec chosen
//! by measured size. Layout in `FORMAT.md`, "sealed chunk".
//!
//! Every codec stores timestamps the same way (an integer column of the raw `i64`s, usually
//! delta-of-delta, which is ~0 bytes for regular scrapes); they differ in the values:
//! - `DecimalBitpack`: values are `i / 10^s` for one scale `s`, stored as an integer column
//!   of `i`, plus a short list of exceptions (NaN, ±Inf, -0.0, ...) patched in raw.
//! - `Xor`: the Gorilla XOR stream of the values; always applies, bit-exact for anything.
//! - `Pco`: the values compressed by Pcodec; tried only when `DecimalBitpack` does not
//!   apply or compresses poorly, since it is slow to encode.

use std::cell::RefCell;

use super::bits::{BitReader, BitWriter};
use super::decimal::{analyze, MAX_SCALE, POW10};
use super::intcol;
use super::varint::{put_uvarint, Cursor};
use super::xor::XorValues;
use super::ChunkDecodeError;

/// Most samples one sealed chunk may hold; larger counts are rejected as corrupt.
pub const MAX_SAMPLES_PER_CHUNK: usize = 1 << 20;

/// `DecimalBitpack` is abandoned when more than 1 in this many values are exceptions.
const EXCEPTION_RATIO: usize = 8;

/// Above this many value bytes per sample, `DecimalBitpack` is compared with the fallbacks.
const POOR_DECIMAL_BYTES_PER_SAMPLE: usize = 2;

/// The codec of a sealed chunk, stored in its first byte.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedCodec {
    /// Decimal scale + bit-packed integer differences + raw exceptions.
    DecimalBitpack = 1,
    /// Gorilla XOR of the values.
    Xor = 2,
    /// Pcodec (`pco` crate, standalone format) of the values.
    Pco = 3,
}

impl SealedCodec {
    /// The codec with this tag byte.
    #[must_use]
    pub const fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Self::DecimalBitpack),
            2 => Some(Self::Xor),
            3 => Some(Self::Pco),
            _ => None,
        }
    }
}

/// Appends one self-describing chunk (codec tag, sample count, timestamps, values) for these
/// samples to `out` and returns the codec used. `ts` must be strictly increasing and as long
/// as `vs`, and hold at most [`MAX_SAMPLES_PER_CHUNK`] samples (checked in debug builds; a
/// longer chunk would be rejected by [`decode_sealed`]).
pub fn encode_sealed(ts: &[i64], vs: &[f64], out: &mut Vec<u8>) -> SealedCodec {
    encode_scratched(ts, vs, out, Effort::Best)
}

/// Like [`encode_sealed`] but with a lighter Pco configuration (no delta search, level 4):
/// for short columns written in bulk (rollup columns), where Pco's default setup costs
/// several times the rest of the work per chunk. The output decodes with
/// [`decode_sealed`] like any other chunk.
pub fn encode_sealed_fast(ts: &[i64], vs: &[f64], out: &mut Vec<u8>) -> SealedCodec {
    encode_scratched(ts, vs, out, Effort::Fast)
}

/// Which codecs the encoder may try.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effort {
    /// Decimal, XOR and Pco at its default level: the smallest wins.
    Best,
    /// Decimal, XOR and a light Pco.
    Fast,
}

fn encode_scratched(ts: &[i64], vs: &[f64], out: &mut Vec<u8>, effort: Effort) -> SealedCodec {
    SCRATCH.with(|cell| {
        if let Ok(mut s) = cell.try_borrow_mut() {
            let codec = encode_with(ts, vs, out, &mut s, effort);
            if s.ints.capacity() > SCRATCH_KEEP_MAX {
                *s = EncodeScratch::default();
            }
            codec
        } else {
            encode_with(ts, vs, out, &mut EncodeScratch::default(), effort)
        }
    })
}

/// Buffers reused by [`encode_sealed`] on one thread.
#[derive(Debug, Default)]
struct EncodeScratch {
    col: intcol::Scratch,
    ints: Vec<i64>,
    exceptions: Vec<(u32, u64)>,
}

/// Scratch above this many samples is dropped after use rather than kept per thread.
const SCRATCH_KEEP_MAX: usize = 1 << 17;

thread_local! {
    static SCRATCH: RefCell<EncodeScratch> = RefCell::new(EncodeScratch::default());
    /// The scaled integers of one decimal chunk while it is decoded (at most
    /// `MAX_SAMPLES_PER_CHUNK`, so keeping the buffer per thread is bounded).
    static DECODE_INTS: RefCell<Vec<i64>> = const { RefCell::new(Vec::new()) };
}

fn encode_with(ts: &[i64], vs: &[f64], out: &mut Vec<u8>, sc: &mut EncodeScratch, effort: Effort) -> SealedCodec {
    debug_assert_eq!(ts.len(), vs.len());
    debug_assert!(ts.len() <= MAX_SAMPLES_PER_CHUNK);
    debug_assert!(ts.windows(2).all(|w| w[0] < w[1]), "timestamps must increase");
    let n = ts.len().min(vs.len());
    let (ts, vs) = (&ts[..n], &vs[..n]);
    let start = out.len();
    let EncodeScratch { col: scratch, ints, exceptions } = sc;

    let mut header = |codec: SealedCodec, out: &mut Vec<u8>| {
        out.push(codec as u8);
        put_uvarint(out, n as u64);
        intcol::encode(ts, out, scratch);
    };

    if let Some(scale) = analyze(vs, n / EXCEPTION_RATIO, ints, exceptions) {
        header(SealedCodec::DecimalBitpack, out);
        let values_at = out.len();
        encode_decimal_values(scale.0, ints, exceptions, out, scratch);
        if out.len() - values_at <= POOR_DECIMAL_BYTES_PER_SAMPLE * n + 16 {
            return SealedCodec::DecimalBitpack;
        }
        // Poor: keep the smallest of the three.
        let decimal = out.split_off(values_at);
        let mut best = (decimal, SealedCodec::DecimalBitpack);
        for (codec, payload) in [(SealedCodec::Xor, xor_values(vs)), (SealedCodec::Pco, pco_values(vs, effort))] {
            if let Some(p) = payload {
                if p.len() < best.0.len() {
                    best = (p, codec);
                }
            }
        }
        out[start] = best.1 as u8;
        out.extend_from_slice(&best.0);
        return best.1;
    }

    header(SealedCodec::Xor, out);
    let xor = xor_values(vs).unwrap_or_default();
    match pco_values(vs, effort) {
        Some(p) if p.len() < xor.len() => {
            out[start] = SealedCodec::Pco as u8;
            out.extend_from_slice(&p);
            SealedCodec::Pco
        }
        _ => {
            out.extend_from_slice(&xor);
            SealedCodec::Xor
        }
    }
}

fn encode_decimal_values(
    scale: u8,
    ints: &[i64],
    exceptions: &[(u32, u64)],
    out: &mut Vec<u8>,
    scratch: &mut intcol::Scratch,
) {
    if ints.is_empty() {
        return;
    }
    out.push(scale);
    intcol::encode(ints, out, scratch);
    put_uvarint(out, exceptions.len() as u64);
    let mut next = 0u32;
    for &(idx, bits) in exceptions {
        put_uvarint(out, u64::from(idx - next));
        out.extend_from_slice(&bits.to_le_bytes());
        next = idx + 1;
    }
}

fn xor_values(vs: &[f64]) -> Option<Vec<u8>> {
    let (first, rest) = vs.split_first()?;
    let mut w = BitWriter::new();
    let mut st = XorValues::new();
    st.put_first(&mut w, *first);
    for &v in rest {
        st.put(&mut w, v);
    }
    w.sync();
    Some(w.bytes().to_vec())
}

fn pco_values(vs: &[f64], effort: Effort) -> Option<Vec<u8>> {
    if vs.is_empty() {
        return None;
    }
    let config = match effort {
        Effort::Best => pco::ChunkConfig::default(),
        // Measured on 288-value rollup columns (sums of decimals): 7x faster than the
        // default, same size; the float mode detection is what compresses them.
        Effort::Fast => pco::ChunkConfig::default().with_compression_level(4).with_delta_spec(pco::DeltaSpec::NoOp),
    };
    pco::standalone::simple_compress(vs, &config).ok()
}

/// Decodes one chunk produced by [`encode_sealed`] (exactly one: trailing bytes are an error),
/// appending its samples to `ts` / `vs`. Never panics; allocates at most
/// `16 * min(count, MAX_SAMPLES_PER_CHUNK)` bytes of output plus scratch of the same order,
/// where `count` is also bounded by the input length for the `Xor` codec. On error `ts` and
/// `vs` keep their original lengths.
///
/// # Errors
/// [`ChunkDecodeError`] with the offset where the chunk stopped making sense.
pub fn decode_sealed(bytes: &[u8], ts: &mut Vec<i64>, vs: &mut Vec<f64>) -> Result<(), ChunkDecodeError> {
    let (t0, v0) = (ts.len(), vs.len());
    let r = decode_inner(bytes, ts, vs);
    if r.is_err() {
        ts.truncate(t0);
        vs.truncate(v0);
    }
    r
}

fn decode_inner(bytes: &[u8], ts: &mut Vec<i64>, vs: &mut Vec<f64>) -> Result<(), ChunkDecodeError> {
    let mut cur = Cursor::new(bytes);
    let tag = cur.u8()?;
    let codec = SealedCodec::from_tag(tag).ok_or_else(|| ChunkDecodeError::new(0, "unknown codec tag"))?;
    let count_at = cur.pos;
    let count = cur.uvarint()?;
    if count > MAX_SAMPLES_PER_CHUNK as u64 {
        return Err(ChunkDecodeError::new(count_at, "sample count above MAX_SAMPLES_PER_CHUNK"));
    }
    let n = count as usize;
    // Cheap plausibility check before allocating: the Xor payload needs 64 + (n - 1) bits.
    if codec == SealedCodec::Xor && n > 0 && n.saturating_add(63) > cur.remaining().saturating_mul(8) {
        return Err(ChunkDecodeError::new(count_at, "sample count exceeds what the chunk can hold"));
    }
    intcol::decode(&mut cur, n, ts)?;
    match codec {
        SealedCodec::DecimalBitpack => decode_decimal(&mut cur, n, vs)?,
        SealedCodec::Xor => decode_xor(&mut cur, n, vs)?,
        SealedCodec::Pco => decode_pco(&mut cur, n, vs)?,
    }
    if cur.remaining() != 0 {
        return Err(cur.err("trailing bytes after chunk"));
    }
    Ok(())
}

fn decode_decimal(cur: &mut Cursor<'_>, n: usize, vs: &mut Vec<f64>) -> Result<(), ChunkDecodeError> {
    if n == 0 {
        return Ok(());
    }
    let scale = cur.u8()?;
    if scale > MAX_SCALE {
        return Err(ChunkDecodeError::new(cur.pos - 1, "decimal scale too large"));
    }
    let p = POW10[usize::from(scale)];
    let base = vs.len();
    DECODE_INTS.with(|cell| {
        let mut fresh = Vec::new();
        let mut kept = cell.try_borrow_mut();
        let ints = match &mut kept {
            Ok(v) => &mut **v,
            Err(_) => &mut fresh,
        };
        ints.clear();
        intcol::decode(cur, n, ints)?;
        vs.extend(ints.iter().map(|&i| i as f64 / p));
        Ok::<(), ChunkDecodeError>(())
    })?;
    let k_at = cur.pos;
    let k = cur.uvarint()?;
    if k > n as u64 {
        return Err(ChunkDecodeError::new(k_at, "more exceptions than samples"));
    }
    let mut next = 0u64;
    for _ in 0..k {
        let at = cur.pos;
        let idx = next.saturating_add(cur.uvarint()?);
        if idx >= n as u64 {
            return Err(ChunkDecodeError::new(at, "exception index out of range"));
        }
        let bits = cur.u64_le()?;
        vs[base + idx as usize] = f64::from_bits(bits);
        next = idx + 1;
    }
    Ok(())
}

fn decode_xor(cur: &mut Cursor<'_>, n: usize, vs: &mut Vec<f64>) -> Result<(), ChunkDecodeError> {
    let at = cur.pos;
    let payload = cur.rest();
    if n == 0 {
        return if payload.is_empty() { Ok(()) } else { Err(ChunkDecodeError::new(at, "trailing bytes after chunk")) };
    }
    let mut r = BitReader::new(payload);
    let mut st = XorValues::new();
    let err = |r: &BitReader<'_>, reason| ChunkDecodeError::new(at + r.byte_offset(), reason);
    vs.reserve(n);
    let first = st.get_first(&mut r).ok_or_else(|| err(&r, "XOR stream ends inside the first value"))?;
    vs.push(first);
    for _ in 1..n {
        let v = st.get(&mut r).map_err(|reason| err(&r, reason))?;
        vs.push(v);
    }
    // Only zero padding may follow the last value, inside its last byte.
    if payload.len() != r.byte_offset() + usize::from(r.bits_left() & 7 != 0) {
        return Err(err(&r, "trailing bytes after XOR values"));
    }
    Ok(())
}

fn decode_pco(cur: &mut Cursor<'_>, n: usize, vs: &mut Vec<f64>) -> Result<(), ChunkDecodeError> {
    let at = cur.pos;
    let payload = cur.rest();
    if n == 0 {
        return if payload.is_empty() { Ok(()) } else { Err(ChunkDecodeError::new(at, "trailing bytes after chunk")) };
    }
    let base = vs.len();
    vs.resize(base + n, 0.0);
    let progress = pco::standalone::simple_decompress_into(payload, &mut vs[base..])
        .map_err(|_| ChunkDecodeError::new(at, "Pco payload does not decode"))?;
    if progress.n_processed != n || !progress.finished {
        return Err(ChunkDecodeError::new(at, "Pco payload holds another sample count"));
    }
    Ok(())
}

/// Encodes with a given codec regardless of size (tests); false if the codec cannot hold
/// these values (`DecimalBitpack` with too many exceptions).
#[cfg(test)]
pub(crate) fn encode_forced(codec: SealedCodec, ts: &[i64], vs: &[f64], out: &mut Vec<u8>) -> bool {
    let mut sc = EncodeScratch::default();
    out.push(codec as u8);
    put_uvarint(out, ts.len() as u64);
    intcol::encode(ts, out, &mut sc.col);
    match codec {
        SealedCodec::DecimalBitpack => {
            let Some(scale) = analyze(vs, vs.len() / EXCEPTION_RATIO, &mut sc.ints, &mut sc.exceptions) else {
                return false;
            };
            encode_decimal_values(scale.0, &sc.ints, &sc.exceptions, out, &mut sc.col);
        }
        SealedCodec::Xor => out.extend_from_slice(&xor_values(vs).unwrap_or_default()),
        SealedCodec::Pco => out.extend_from_slice(&pco_values(vs, Effort::Best).unwrap_or_default()),
    }
    true
}

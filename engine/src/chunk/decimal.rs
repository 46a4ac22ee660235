//! Decimal detection for `DecimalBitpack`: finds the smallest scale `s` such that the values
//! are `i / 10^s` exactly (bit for bit), and lists the values that are not (exceptions).

/// Largest decimal scale tried.
pub(crate) const MAX_SCALE: u8 = 12;

/// Powers of ten, all exact in `f64`.
pub(crate) const POW10: [f64; MAX_SCALE as usize + 1] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12];

/// Scaled integers must stay below this magnitude (exactly representable in `f64`).
const INT_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

/// The integer `i` with `i as f64 / p` bit-identical to `v`, if there is one.
#[inline]
pub(crate) fn fit(v: f64, p: f64) -> Option<i64> {
    let x = v * p;
    // Also rejects NaN.
    if x.abs().partial_cmp(&INT_LIMIT) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    // Round half away from zero without a libm call; the check below makes any
    // mis-rounding harmless (the value just becomes an exception).
    let i = (x + 0.5f64.copysign(x)) as i64;
    if ((i as f64) / p).to_bits() == v.to_bits() {
        Some(i)
    } else {
        None
    }
}

/// Result of [`analyze`]: the scale, and `ints` / `exceptions` filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scale(pub(crate) u8);

/// Scales `vs` to integers. On success `ints` has one entry per value (an exception repeats
/// the previous integer, or the first regular one at the start, to keep deltas small) and
/// `exceptions` lists `(index, raw bits)` in index order. Gives up (returns `None`) when
/// more than `max_exceptions` values do not fit any scale.
pub(crate) fn analyze(
    vs: &[f64],
    max_exceptions: usize,
    ints: &mut Vec<i64>,
    exceptions: &mut Vec<(u32, u64)>,
) -> Option<Scale> {
    ints.clear();
    exceptions.clear();
    let mut s: usize = 0;
    let mut p = POW10[0];
    // Entries before `stale_before` were computed at a smaller scale.
    let mut stale_before = 0usize;
    let mut fails = 0usize;
    for (idx, &v) in vs.iter().enumerate() {
        if let Some(i) = fit(v, p) {
            ints.push(i);
            continue;
        }
        let mut found = None;
        for (s2, &p2) in POW10.iter().enumerate().skip(s + 1) {
            if let Some(i) = fit(v, p2) {
                found = Some((s2, i));
                break;
            }
        }
        match found {
            Some((s2, i)) => {
                s = s2;
                p = POW10[s2];
                stale_before = idx;
                ints.push(i);
            }
            None => {
                fails += 1;
                if fails > max_exceptions {
                    return None;
                }
                ints.push(0);
            }
        }
    }
    // Recompute (and re-check) the entries that were fitted at a smaller scale, and mark
    // exceptions, all at the final scale.
    let mut prev: Option<i64> = None;
    let mut leading = 0usize;
    for idx in 0..vs.len() {
        let fitted = if idx < stale_before || ints[idx] == 0 { fit(vs[idx], p) } else { Some(ints[idx]) };
        match fitted {
            Some(i) => {
                ints[idx] = i;
                prev = Some(i);
            }
            None => {
                exceptions.push((idx as u32, vs[idx].to_bits()));
                if exceptions.len() > max_exceptions {
                    return None;
                }
                match prev {
                    Some(pi) => ints[idx] = pi,
                    None => leading += 1,
                }
            }
        }
    }
    if leading > 0 {
        // Index `leading` is the first regular value, if any value is regular.
        let first = ints.get(leading).copied().unwrap_or(0);
        ints[..leading].fill(first);
    }
    Some(Scale(s as u8))
}

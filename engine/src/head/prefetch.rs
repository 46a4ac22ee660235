//! Cache prefetch hints for the head's append loop.
//!
//! A time-major batch (one sample for each of thousands of series, as a scrape or a
//! remote-write request carries) touches every series once, and each touch is two cache
//! misses: the series' encoder state, then the tail of its chunk's byte buffer. Neither
//! address is in a pattern the hardware prefetcher follows. The append loop knows the
//! series it will visit next, so it asks for both lines a few samples ahead, and the
//! misses overlap instead of following one another.

/// Asks the CPU to bring the cache line holding `p` closer. A hint: `p` may dangle or
/// be null; nothing is read through it.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 never faults and changes no program state, whatever the
    // address; `sse` is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

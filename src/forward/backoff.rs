//! Exponential back-off with jitter, and the per-target circuit breaker.
//!
//! The breaker is closed while requests succeed. After `breaker_failures` consecutive
//! failed attempts (any shard) it opens: no shard sends until `breaker_probe_interval_ms`
//! has passed; then exactly one request goes through as a probe (half-open). Its success
//! closes the breaker; its failure opens it for another interval. Refusals (4xx) are
//! answers, not failures: the receiver is up.

use std::time::{Duration, Instant};

/// Wait before retry number `attempt` (0-based): `min · 2^attempt` capped at `max`, drawn
/// uniformly from [half, whole] so shards that failed together do not retry together.
pub(crate) fn backoff(attempt: u32, min_ms: u64, max_ms: u64, rng: &mut Rng) -> Duration {
    let full = min_ms.saturating_mul(1u64 << attempt.min(40)).min(max_ms).max(1);
    let half = full / 2;
    Duration::from_millis(half + rng.below(full - half + 1))
}

/// xorshift64: jitter only, not for anything that needs real randomness.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn seeded(salt: u64) -> Rng {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Rng((t ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            self.0 % n
        }
    }
}

/// State of a target's breaker, as reported in stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BreakerState {
    #[default]
    Closed,
    /// Not sending; a probe goes out at the next interval.
    Open,
    /// One probe request in flight.
    HalfOpen,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    state: BreakerState,
    failures: u32,
    open_until: Instant,
    threshold: u32,
    interval: Duration,
    pub(crate) opened_total: u64,
}

/// What a sender may do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Permit {
    Send,
    /// Send, as the half-open probe.
    Probe,
    /// Ask again after this long.
    Wait(Duration),
}

impl Breaker {
    pub(crate) fn new(threshold: u32, interval_ms: u64) -> Breaker {
        Breaker {
            state: BreakerState::Closed,
            failures: 0,
            open_until: Instant::now(),
            threshold,
            interval: Duration::from_millis(interval_ms),
            opened_total: 0,
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        self.state
    }

    pub(crate) fn permit(&mut self, now: Instant) -> Permit {
        match self.state {
            BreakerState::Closed => Permit::Send,
            BreakerState::Open if now >= self.open_until => {
                self.state = BreakerState::HalfOpen;
                Permit::Probe
            }
            BreakerState::Open => Permit::Wait(self.open_until - now),
            // Someone else's probe is out; look again soon.
            BreakerState::HalfOpen => Permit::Wait(Duration::from_millis(20).min(self.interval)),
        }
    }

    /// An answer from the receiver (confirmed or refused).
    pub(crate) fn answered(&mut self) {
        self.failures = 0;
        self.state = BreakerState::Closed;
    }

    /// A failed attempt (network error, 5xx, 429). `probe`: it was the half-open probe.
    /// Returns true when this opened the breaker.
    pub(crate) fn failed(&mut self, now: Instant, probe: bool) -> bool {
        self.failures = self.failures.saturating_add(1);
        let open = (probe && self.state == BreakerState::HalfOpen)
            || (self.state == BreakerState::Closed && self.failures >= self.threshold);
        if open {
            self.state = BreakerState::Open;
            self.open_until = now + self.interval;
            self.opened_total += 1;
        }
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let mut rng = Rng::seeded(1);
        for attempt in 0..50 {
            let d = backoff(attempt, 30, 5_000, &mut rng).as_millis() as u64;
            let full = (30u64 << attempt.min(40)).min(5_000);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d} ms");
        }
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, 1_000);
        assert_eq!(b.permit(t0), Permit::Send);
        assert!(!b.failed(t0, false));
        assert!(!b.failed(t0, false));
        assert!(b.failed(t0, false), "third failure opens");
        assert!(matches!(b.permit(t0), Permit::Wait(_)));
        let later = t0 + Duration::from_millis(1_001);
        assert_eq!(b.permit(later), Permit::Probe);
        assert!(matches!(b.permit(later), Permit::Wait(_)), "one probe at a time");
        assert!(b.failed(later, true), "a failed probe opens again");
        assert_eq!(b.opened_total, 2);
        let much_later = later + Duration::from_millis(1_001);
        assert_eq!(b.permit(much_later), Permit::Probe);
        b.answered();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.permit(much_later), Permit::Send);
    }
}

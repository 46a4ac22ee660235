//! Random records, then one random byte flipped or one random truncation in a random segment:
//! `open` never panics, and what it returns is a prefix of what was written
//! (`TruncateTornTail`) or an in-order subset of it (`Salvage`), which after a single
//! flipped byte lacks at most the one record whose frame holds it.
#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use chronolith_wal::{Error, RecoveryMode};
use common::{open, segments, small, Rec};
use proptest::prelude::*;

/// Small enough for several segments per case, large enough to keep the fsyncs few.
const SEGMENT_BYTES: u64 = 3000;

#[derive(Debug, Clone)]
enum Damage {
    Flip { segment: usize, at: usize, xor: u8 },
    Truncate { segment: usize, at: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<usize>(), 1u8..=255).prop_map(|(segment, at, xor)| Damage::Flip { segment, at, xor }),
        (any::<usize>(), any::<usize>()).prop_map(|(segment, at)| Damage::Truncate { segment, at }),
    ]
}

fn records() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::collection::vec((1u8..=255, prop::collection::vec(any::<u8>(), 0..400)), 1..40)
}

fn is_subsequence(sub: &[(u8, Vec<u8>)], of: &[(u8, Vec<u8>)]) -> bool {
    let mut it = of.iter();
    sub.iter().all(|s| it.any(|o| o == s))
}

fn apply(dir: &std::path::Path, d: &Damage) {
    let segs = segments(dir);
    let (Damage::Flip { segment, .. } | Damage::Truncate { segment, .. }) = d;
    let path = &segs[segment % segs.len()];
    let mut bytes = std::fs::read(path).unwrap();
    match *d {
        Damage::Flip { at, xor, .. } => {
            let i = at % bytes.len();
            bytes[i] ^= xor;
        }
        Damage::Truncate { at, .. } => bytes.truncate(at % bytes.len()),
    }
    std::fs::write(path, bytes).unwrap();
}

fn check(mode: RecoveryMode, recs: &[(u8, Vec<u8>)], d: &Damage) {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _, _) = open(dir.path(), small(SEGMENT_BYTES), RecoveryMode::TruncateTornTail).unwrap();
        for (t, p) in recs {
            wal.append(&[(*t, p.as_slice())]).unwrap();
        }
        wal.close().unwrap();
    }
    apply(dir.path(), d);
    let strip = |seen: Vec<Rec>| seen.into_iter().map(|r| (r.1, r.2)).collect::<Vec<_>>();
    match open(dir.path(), small(SEGMENT_BYTES), mode) {
        Ok((wal, _, seen)) => {
            let seen = strip(seen);
            match mode {
                RecoveryMode::TruncateTornTail => assert_eq!(seen[..], recs[..seen.len()]),
                RecoveryMode::Salvage => {
                    assert!(is_subsequence(&seen, recs));
                    if matches!(d, Damage::Flip { .. }) {
                        assert!(seen.len() + 1 >= recs.len(), "a flip lost {} records", recs.len() - seen.len());
                    }
                }
            }
            // After recovery the log is usable and reopens cleanly with the same records.
            wal.append(&[(1, b"after".as_slice())]).unwrap();
            wal.close().unwrap();
            let (_wal, report, again) = open(dir.path(), small(SEGMENT_BYTES), RecoveryMode::TruncateTornTail).unwrap();
            assert!(report.truncated_tail.is_none() && report.salvaged.is_empty());
            let mut want = seen;
            want.push((1, b"after".to_vec()));
            assert_eq!(strip(again), want);
        }
        Err(Error::Corruption { .. }) => assert_eq!(mode, RecoveryMode::TruncateTornTail),
        Err(e) => panic!("unexpected error {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn truncate_torn_tail_returns_a_prefix_or_a_typed_error(recs in records(), d in damage()) {
        check(RecoveryMode::TruncateTornTail, &recs, &d);
    }

    #[test]
    fn salvage_returns_an_in_order_subset(recs in records(), d in damage()) {
        check(RecoveryMode::Salvage, &recs, &d);
    }
}

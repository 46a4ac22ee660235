#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
mod common;

use chronolith_wal::{Position, RecoveryMode, SegmentId, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use common::{open, payload, rtype, small};

#[test]
fn many_records_round_trip_across_segments_with_increasing_positions() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, report, seen) = open(dir.path(), small(2048), RecoveryMode::TruncateTornTail).unwrap();
    assert_eq!(report.records, 0);
    assert!(seen.is_empty());

    let mut written = Vec::new();
    for i in 0..500 {
        // Mix single-record and multi-record appends.
        if i % 5 == 0 {
            let (a, b) = (payload(i), payload(i + 1000));
            let pos = wal.append(&[(rtype(i), a.as_slice()), (7, b.as_slice())]).unwrap();
            let second = Position { segment: pos.segment, offset: pos.offset + (FRAME_HEADER_BYTES + a.len()) as u64 };
            written.push((pos, rtype(i), a));
            written.push((second, 7, b));
        } else {
            let p = payload(i);
            let pos = wal.append(&[(rtype(i), p.as_slice())]).unwrap();
            written.push((pos, rtype(i), p));
        }
    }
    // A single append larger than the segment size goes into one oversized segment.
    let big = vec![9u8; 5000];
    let big_pos = wal.append(&[(3, big.as_slice())]).unwrap();
    assert_eq!(big_pos.offset, SEGMENT_HEADER_BYTES as u64);
    written.push((big_pos, 3, big));
    let last_segment = wal.current_segment();
    assert!(last_segment > SegmentId(10), "expected many segments, got {last_segment}");
    wal.close().unwrap();

    let (wal, report, seen) = open(dir.path(), small(2048), RecoveryMode::TruncateTornTail).unwrap();
    assert_eq!(report.records as usize, written.len());
    assert_eq!(report.truncated_tail, None);
    assert!(report.salvaged.is_empty());
    assert_eq!(seen.len(), written.len());
    // Same records, same order, at the positions `append` returned; positions increase.
    assert_eq!(seen, written);
    for w in seen.windows(2) {
        assert!(w[0].0 < w[1].0);
    }
    // New appends go to a fresh segment after the last one replayed.
    assert_eq!(wal.current_segment(), last_segment.next());
    assert_eq!(wal.stats().segments, report.segments + 1);
    wal.close().unwrap();
}

//! The public `Db` API end to end: series by labels and by ref, reads across the head and
//! sealed blocks, exact recovery of unsealed samples from the WAL, per-sample rejections
//! and their counters, out-of-order samples, bit-exact special floats, and the directory
//! lock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chronolith::{Batch, Db, Error, Labels, MatchOp, Matcher, Options, RejectReason, Rejection, SeriesId};
use std::collections::BTreeMap;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// (labels as text) -> [(t, value bits)], as returned by `select`.
type Dump = BTreeMap<String, Vec<(i64, u64)>>;

fn small_partitions() -> Options {
    Options { partition_ms: 60_000, ooo_window_ms: 10_000, ..Options::default() }
}

fn dump(db: &Db, matchers: &[Matcher], start: i64, end: i64) -> Result<Dump, chronolith::Error> {
    let mut out = Dump::new();
    for s in db.select(matchers, start, end) {
        let s = s?;
        let ts: Vec<i64> = s.samples.iter().map(|x| x.t).collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "{}: samples not strictly ascending: {ts:?}", s.labels);
        assert!(ts.iter().all(|t| (start..=end).contains(t)), "{}: sample outside [{start}, {end}]", s.labels);
        let prev = out.insert(s.labels.to_string(), s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect());
        assert!(prev.is_none(), "series {} returned twice", s.labels);
    }
    Ok(out)
}

fn cpu(host: &str) -> Labels {
    Labels::metric("cpu", [("host", host)]).unwrap()
}

fn value(series: usize, t: i64) -> f64 {
    (series as f64) * 1000.0 + (t as f64) / 7.0
}

#[test]
fn labels_and_refs_name_the_same_series() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Options::default())?;
    let mut b = Batch::new();
    b.add_labels(cpu("a"), 1_000, 1.0);
    b.add_labels(cpu("b"), 1_000, 2.0);
    b.add_labels(cpu("a"), 2_000, 3.0);
    let r = db.append(&b)?;
    assert_eq!(r.stored, 3);
    assert!(r.rejected.is_empty());
    assert_eq!(r.series.len(), 3);
    let a = r.series.iter().find(|(i, _)| *i == 0).unwrap().1;
    let bref = r.series.iter().find(|(i, _)| *i == 1).unwrap().1;
    assert_eq!(r.series.iter().find(|(i, _)| *i == 2).unwrap().1, a, "same labels, same ref");
    assert_ne!(a, bref);
    assert_eq!(db.series_ref(&cpu("a"))?, a);
    assert_eq!(db.series_ref(&cpu("b"))?, bref);
    let c = db.series_ref(&cpu("c"))?;
    assert!(c != a && c != bref);

    b.clear();
    b.add(a, 3_000, 4.0);
    b.add(c, 3_000, 5.0);
    assert_eq!(db.append(&b)?.stored, 2);

    let got = dump(&db, &[Matcher::metric("cpu")], i64::MIN, i64::MAX)?;
    let a_text = cpu("a").to_string();
    assert_eq!(got[&a_text], vec![(1_000, 1f64.to_bits()), (2_000, 3f64.to_bits()), (3_000, 4f64.to_bits())]);
    assert_eq!(got[&cpu("b").to_string()], vec![(1_000, 2f64.to_bits())]);
    assert_eq!(got[&cpu("c").to_string()], vec![(3_000, 5f64.to_bits())]);

    // Matchers: equality, negation, regex; an absent label matches "".
    let only_a = dump(&db, &[Matcher::metric("cpu"), Matcher::eq("host", "a")], 0, i64::MAX)?;
    assert_eq!(only_a.keys().collect::<Vec<_>>(), vec![&a_text]);
    let not_a = dump(&db, &[Matcher::new("host", MatchOp::NotEqual, "a")?], 0, i64::MAX)?;
    assert_eq!(not_a.len(), 2);
    let re = dump(&db, &[Matcher::new("host", MatchOp::RegexMatch, "[ab]")?], 0, i64::MAX)?;
    assert_eq!(re.len(), 2);
    assert!(dump(&db, &[Matcher::metric("mem")], 0, i64::MAX)?.is_empty());
    assert!(dump(&db, &[Matcher::eq("dc", "")], 0, i64::MAX)?.len() == 3);
    // Range bounds are inclusive; series with nothing in range are skipped.
    let mid = dump(&db, &[Matcher::metric("cpu")], 2_000, 2_999)?;
    assert_eq!(mid, Dump::from([(a_text.clone(), vec![(2_000, 3f64.to_bits())])]));

    // Refs survive a reopen.
    db.close()?;
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.series_ref(&cpu("a"))?, a);
    assert_eq!(db.series_ref(&cpu("c"))?, c);
    b.clear();
    b.add(c, 4_000, 6.0);
    assert_eq!(db.append(&b)?.stored, 1);
    assert_eq!(dump(&db, &[Matcher::eq("host", "c")], 0, i64::MAX)?.values().next().unwrap().len(), 2);
    Ok(())
}

/// Writes 4 series × `n` samples every second from `t0`, in batches of 50 per series.
fn write_grid(db: &Db, refs: &[SeriesId], t0: i64, n: i64) -> TestResult {
    let mut b = Batch::new();
    for k in 0..n {
        let t = t0 + k * 1_000;
        for (s, r) in refs.iter().enumerate() {
            b.add(*r, t, value(s, t));
        }
        if b.len() >= 200 {
            let rep = db.append(&b)?;
            assert!(rep.rejected.is_empty(), "{:?}", rep.rejected);
            b.clear();
        }
    }
    if !b.is_empty() {
        assert!(db.append(&b)?.rejected.is_empty());
    }
    Ok(())
}

fn expected_grid(hosts: &[&str], ranges: &[(i64, i64)], start: i64, end: i64) -> Dump {
    let mut d = Dump::new();
    for (s, h) in hosts.iter().enumerate() {
        let v: Vec<(i64, u64)> = ranges
            .iter()
            .flat_map(|&(t0, n)| (0..n).map(move |k| t0 + k * 1_000))
            .filter(|t| (start..=end).contains(t))
            .map(|t| (t, value(s, t).to_bits()))
            .collect();
        if !v.is_empty() {
            d.insert(cpu(h).to_string(), v);
        }
    }
    d
}

#[test]
fn select_spans_head_and_sealed_blocks_in_time_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let hosts = ["h0", "h1", "h2", "h3"];
    let db = Db::open(dir.path(), small_partitions())?;
    let refs: Vec<SeriesId> = hosts.iter().map(|h| db.series_ref(&cpu(h))).collect::<Result<_, _>>()?;
    // Three partitions' worth, then seal everything, then more in the head.
    write_grid(&db, &refs, 0, 180)?;
    // The background sealer may already have sealed the first partitions.
    db.seal()?;
    let st = db.stats().engine;
    assert!(st.blocks >= 3, "one block per partition: {st:?}");
    assert_eq!(st.head_samples, 0);
    assert_eq!(st.sealed_until, Some(179_001));
    write_grid(&db, &refs, 180_000, 100)?;
    let ranges = [(0, 280)];

    let check = |db: &Db| -> TestResult {
        for (start, end) in
            [(i64::MIN, i64::MAX), (0, 279_000), (59_500, 60_500), (170_000, 200_000), (179_000, 180_000)]
        {
            let got = dump(db, &[Matcher::metric("cpu")], start, end)?;
            assert_eq!(got, expected_grid(&hosts, &ranges, start, end), "range [{start}, {end}]");
        }
        let one = dump(db, &[Matcher::eq("host", "h2")], 100_000, 200_000)?;
        assert_eq!(one.len(), 1);
        Ok(())
    };
    check(&db)?;
    db.close()?;
    let db = Db::open(dir.path(), small_partitions())?;
    check(&db)?;
    // The head part came back from the WAL, the rest from blocks.
    assert!(db.stats().engine.blocks >= 3);
    assert!(db.stats().engine.samples_replayed > 0);
    Ok(())
}

#[test]
fn reopen_restores_unsealed_samples_exactly_from_the_wal() -> TestResult {
    let dir = tempfile::tempdir()?;
    let hosts = ["h0", "h1", "h2", "h3"];
    let n = 500;
    {
        let db = Db::open(dir.path(), Options::default())?;
        let refs: Vec<SeriesId> = hosts.iter().map(|h| db.series_ref(&cpu(h))).collect::<Result<_, _>>()?;
        write_grid(&db, &refs, 1_700_000_000_000, n)?;
        assert_eq!(db.stats().engine.samples_appended, 4 * n as u64);
        // Dropped, not closed: the WAL alone must bring everything back.
        drop(db);
    }
    let expect = expected_grid(&hosts, &[(1_700_000_000_000, n)], i64::MIN, i64::MAX);
    for round in 0..2 {
        let db = Db::open(dir.path(), Options::default())?;
        let st = db.stats().engine;
        assert_eq!(st.blocks, 0, "nothing was sealed");
        assert_eq!(st.samples_replayed, 4 * n as u64, "round {round}");
        assert_eq!(st.head_samples, 4 * n as u64);
        assert_eq!(st.series, 4);
        assert_eq!(dump(&db, &[Matcher::metric("cpu")], i64::MIN, i64::MAX)?, expect, "round {round}");
        db.close()?;
    }
    Ok(())
}

#[test]
fn rejections_are_per_sample_and_counted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), small_partitions())?;
    let a = db.series_ref(&cpu("a"))?;
    let mut b = Batch::new();
    b.add(a, 100_000, 1.0);
    b.add(a, 101_000, 2.0);
    let r = db.append(&b)?;
    assert_eq!((r.stored, r.duplicates, r.rejected.len()), (2, 0, 0));

    let huge = Labels::metric("cpu", [("host", "x".repeat(5_000))])?;
    b.clear();
    b.add(a, 102_000, 3.0); // 0 stored
    b.add(a, 100_000, 1.0); // 1 exact duplicate: accepted, dropped
    b.add(a, 101_000, 9.0); // 2 same timestamp, other value
    b.add(a, 90_999, 4.0); // 3 older than newest (101_000) - window (10_000)
    b.add(SeriesId(999), 102_000, 5.0); // 4 never issued
    b.add_labels(huge, 102_000, 6.0); // 5 breaks the label limits
    b.add(a, 91_000, 7.0); // 6 exactly at the window floor: accepted
    b.add(SeriesId(0), 102_000, 8.0); // 7 the "no ref" value
    b.add(a, 102_000, 3.0); // 8 duplicate of 0 inside the same batch
    b.add(a, 102_000, 3.5); // 9 conflicts with 0 inside the same batch
    let r = db.append(&b)?;
    assert_eq!(r.stored, 2, "{r:?}");
    assert_eq!(r.duplicates, 2, "{r:?}");
    let rej: Vec<(usize, RejectReason)> = r.rejected.iter().map(|x| (x.index, x.reason)).collect();
    assert_eq!(
        rej,
        vec![
            (2, RejectReason::DuplicateTimestamp),
            (3, RejectReason::OutOfBounds),
            (4, RejectReason::UnknownSeries),
            (5, RejectReason::InvalidLabels),
            (7, RejectReason::UnknownSeries),
            (9, RejectReason::DuplicateTimestamp),
        ]
    );
    let st = db.stats().engine;
    assert_eq!(st.samples_appended, 4);
    assert_eq!(st.duplicates_dropped, 2);
    assert_eq!(st.rejected.duplicate_timestamp, 2);
    assert_eq!(st.rejected.out_of_bounds, 1);
    assert_eq!(st.rejected.unknown_series, 2);
    assert_eq!(st.rejected.invalid_labels, 1);
    assert_eq!(st.series, 1, "the invalid label set created no series");

    let expect =
        vec![(91_000, 7f64.to_bits()), (100_000, 1f64.to_bits()), (101_000, 2f64.to_bits()), (102_000, 3f64.to_bits())];
    let all = dump(&db, &[], i64::MIN, i64::MAX)?;
    assert_eq!(all, Dump::from([(cpu("a").to_string(), expect.clone())]));

    // After a full seal, anything at or before the newest sealed sample is out of bounds,
    // even an exact duplicate; later samples are fine.
    assert!(db.seal()? >= 1);
    b.clear();
    b.add(a, 102_000, 3.0);
    b.add(a, 101_500, 1.0);
    b.add(a, 102_001, 1.0);
    let r = db.append(&b)?;
    assert_eq!(r.stored, 1);
    assert_eq!(r.duplicates, 0);
    assert_eq!(
        r.rejected.iter().map(|x| (x.index, x.reason)).collect::<Vec<_>>(),
        vec![(0, RejectReason::OutOfBounds), (1, RejectReason::OutOfBounds)]
    );
    assert_eq!(db.stats().engine.rejected.out_of_bounds, 3);

    // Nothing rejected ever reaches the disk.
    db.close()?;
    let db = Db::open(dir.path(), small_partitions())?;
    let mut expect = expect;
    expect.push((102_001, 1f64.to_bits()));
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?, Dump::from([(cpu("a").to_string(), expect)]));
    // Counters restart at open; the seal boundary does not.
    assert_eq!(db.stats().engine.rejected.out_of_bounds, 0);
    b.clear();
    b.add(a, 102_000, 3.0);
    assert_eq!(db.append(&b)?.rejected.first().map(|x| x.reason), Some(RejectReason::OutOfBounds));
    Ok(())
}

#[test]
fn out_of_order_within_the_window_reads_back_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Options::default())?;
    let a = db.series_ref(&cpu("a"))?;
    let base = 1_700_000_000_000i64;
    // A permutation of 0..200 seconds, sent one sample per batch and in batches.
    let mut order: Vec<i64> = (0..200).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    // Send the newest first so every other sample is out of order but inside 5 minutes.
    let newest = base + 199_000;
    let mut b = Batch::new();
    b.add(a, newest, value(0, newest));
    db.append(&b)?;
    for chunk in order.chunks(7) {
        b.clear();
        for k in chunk {
            let t = base + k * 1_000;
            b.add(a, t, value(0, t));
        }
        let r = db.append(&b)?;
        assert!(r.rejected.is_empty(), "{r:?}");
    }
    let expect: Vec<(i64, u64)> = (0..200).map(|k| base + k * 1_000).map(|t| (t, value(0, t).to_bits())).collect();
    let key = cpu("a").to_string();
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?[&key], expect);
    assert_eq!(dump(&db, &[], base + 50_000, base + 60_000)?[&key], expect[50..=60].to_vec());
    db.close()?;
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?[&key], expect, "after WAL replay");
    db.seal()?;
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?[&key], expect, "from the sealed block");
    Ok(())
}

fn special_values() -> Vec<f64> {
    vec![
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff8_0000_0000_0001), // quiet NaN with a payload
        f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN
        f64::from_bits(0xfff0_dead_beef_0000),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        f64::from_bits(1), // smallest subnormal
        -f64::from_bits(1),
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        0.1,
        -1.5,
        1e300,
        123.456,
    ]
}

#[test]
fn special_floats_round_trip_bit_exactly() -> TestResult {
    let dir = tempfile::tempdir()?;
    let vals = special_values();
    let base = 1_700_000_000_000i64;
    // One series holding all of them in sequence (XOR codec state across specials), and
    // one series per value holding a short run of it (constant-value chunks).
    let mut expect = Dump::new();
    {
        let db = Db::open(dir.path(), Options::default())?;
        let mut b = Batch::new();
        let mixed = Labels::metric("special", [("kind", "mixed")])?;
        let mut m = Vec::new();
        for (k, v) in vals.iter().enumerate() {
            let t = base + k as i64 * 1_000;
            b.add_labels(mixed.clone(), t, *v);
            m.push((t, v.to_bits()));
            let one = Labels::metric("special", [("kind", format!("v{k}"))])?;
            let mut e = Vec::new();
            for j in 0..3 {
                let t = base + j * 1_000;
                b.add_labels(one.clone(), t, *v);
                e.push((t, v.to_bits()));
            }
            expect.insert(one.to_string(), e);
        }
        expect.insert(mixed.to_string(), m);
        let r = db.append(&b)?;
        assert!(r.rejected.is_empty(), "{r:?}");
        assert_eq!(r.duplicates, 0);
        // An exact duplicate of a NaN is a duplicate, a NaN with other bits a conflict.
        b.clear();
        b.add_labels(mixed.clone(), base, f64::NAN);
        b.add_labels(mixed.clone(), base + 1_000, f64::NAN);
        b.add_labels(mixed.clone(), base + 7_000, -0.0);
        b.add_labels(mixed.clone(), base + 8_000, -0.0);
        let r = db.append(&b)?;
        assert_eq!(r.duplicates, 2, "{r:?}");
        assert_eq!(
            r.rejected.iter().map(|x| (x.index, x.reason)).collect::<Vec<_>>(),
            vec![(1, RejectReason::DuplicateTimestamp), (3, RejectReason::DuplicateTimestamp)]
        );
        assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?, expect, "from the head");
        drop(db);
    }
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?, expect, "after WAL replay");
    assert!(db.seal()? >= 1);
    assert_eq!(db.stats().engine.head_samples, 0);
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?, expect, "from the sealed block");
    db.close()?;
    let db = Db::open(dir.path(), Options::default())?;
    assert_eq!(db.stats().engine.samples_replayed, 0);
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?, expect, "sealed block after reopen");
    Ok(())
}

#[test]
fn second_open_of_an_open_directory_is_locked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Options::default())?;
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Locked(p)) => assert_eq!(p, dir.path()),
        other => panic!("expected Error::Locked, got {other:?}"),
    }
    // Still locked while the first handle lives, also through a different path spelling.
    let dotted = dir.path().join(".");
    assert!(matches!(Db::open(&dotted, Options::default()), Err(Error::Locked(_))));
    db.close()?;
    // Released on close: a fresh open works.
    let db = Db::open(dir.path(), Options::default())?;
    drop(db);
    let _db = Db::open(dir.path(), Options::default())?;
    Ok(())
}

/// Regression: a batch whose values are all decimals (so the WAL record uses the decimal
/// value mode) must still replay `-0.0` as `-0.0`, not `+0.0`. Found by model_random_ops.
#[test]
fn negative_zero_survives_wal_replay_in_a_decimal_batch() -> TestResult {
    let dir = tempfile::tempdir()?;
    let base = 1_700_000_000_000i64;
    let vals = [1.5, -0.0, 2.0, 0.0, -0.0, -3.25];
    {
        let db = Db::open(dir.path(), Options::default())?;
        let mut b = Batch::new();
        for (k, v) in vals.iter().enumerate() {
            b.add_labels(cpu("z"), base + k as i64 * 1_000, *v);
        }
        // A batch of just -0.0: scale 0.
        b.add_labels(cpu("y"), base, -0.0);
        assert_eq!(db.append(&b)?.stored, vals.len() + 1);
        drop(db);
    }
    let db = Db::open(dir.path(), Options::default())?;
    let got = dump(&db, &[], i64::MIN, i64::MAX)?;
    let want: Vec<(i64, u64)> = vals.iter().enumerate().map(|(k, v)| (base + k as i64 * 1_000, v.to_bits())).collect();
    assert_eq!(got[&cpu("y").to_string()], vec![(base, (-0.0f64).to_bits())], "-0.0 came back as +0.0");
    assert_eq!(got[&cpu("z").to_string()], want, "-0.0 came back as +0.0");
    Ok(())
}

/// Timestamps are `i64` milliseconds and may be negative (historic data) or extreme:
/// head, WAL replay and sealed blocks must all keep them exactly.
fn timestamps_round_trip(ts: &[i64]) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut b = Batch::new();
    for (k, t) in ts.iter().enumerate() {
        b.add_labels(cpu("a"), *t, k as f64 + 0.5);
        b.add_labels(cpu("b"), *t, -(k as f64) - 1.0);
    }
    let series = |h: &str, f: fn(usize) -> f64| -> (String, Vec<(i64, u64)>) {
        (cpu(h).to_string(), ts.iter().enumerate().map(|(k, t)| (*t, f(k).to_bits())).collect())
    };
    let want: Dump = [series("a", |k| k as f64 + 0.5), series("b", |k| -(k as f64) - 1.0)].into_iter().collect();
    let opts = Options { ooo_window_ms: 0, ..small_partitions() };
    {
        let db = Db::open(dir.path(), opts.clone())?;
        let r = db.append(&b)?;
        assert_eq!(r.stored, 2 * ts.len(), "{ts:?}: {r:?}");
        assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?, want, "{ts:?} from the head");
        drop(db);
    }
    let db = Db::open(dir.path(), opts.clone())?;
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?, want, "{ts:?} after WAL replay");
    db.seal()?;
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?, want, "{ts:?} after seal");
    let (lo, hi) = (ts[1], ts[2]);
    let a = cpu("a").to_string();
    let part: Vec<(i64, u64)> = want[&a].iter().copied().filter(|(t, _)| (lo..=hi).contains(t)).collect();
    assert_eq!(dump(&db, &[Matcher::eq("host", "a")], lo, hi)?[&a], part);
    db.close()?;
    let db = Db::open(dir.path(), opts)?;
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?, want, "{ts:?} sealed, after reopen");
    Ok(())
}

#[test]
fn negative_timestamps_round_trip() -> TestResult {
    timestamps_round_trip(&[-180_001, -120_000, -60_001, -1, 0, 1, 59_999, 60_000])
}

#[test]
fn timestamps_near_i64_min_round_trip() -> TestResult {
    timestamps_round_trip(&[i64::MIN, i64::MIN + 1, i64::MIN + 1_000, i64::MIN + 61_000])
}

#[test]
fn timestamps_near_i64_max_round_trip() -> TestResult {
    timestamps_round_trip(&[i64::MAX - 61_000, i64::MAX - 1_000, i64::MAX - 2, i64::MAX - 1])
}

/// Regression: one sample at `i64::MAX` once hung the sealer (and with it `close`): seal
/// ranges are half-open, so that timestamp could never be sealed. It is now refused as
/// out of bounds, and everything below it still round-trips and seals.
#[test]
fn a_sample_at_i64_max_is_refused_and_does_not_hang_the_sealer() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), small_partitions())?;
    let mut b = Batch::new();
    b.add_labels(cpu("a"), i64::MAX - 1, 1.0);
    b.add_labels(cpu("a"), i64::MAX, 2.0);
    let r = db.append(&b)?;
    assert_eq!(r.stored, 1);
    assert_eq!(r.rejected, vec![Rejection { index: 1, reason: RejectReason::OutOfBounds }]);
    db.seal()?;
    assert_eq!(dump(&db, &[], i64::MIN, i64::MAX)?[&cpu("a").to_string()], vec![(i64::MAX - 1, 1f64.to_bits())]);
    db.close()?;
    timestamps_round_trip(&[i64::MAX - 61_000, i64::MAX - 2_000, i64::MAX - 1_000, i64::MAX - 1])
}

/// Regression: a range with start after end (a bad query) selects nothing, from the head
/// and from blocks; it must not panic.
#[test]
fn select_with_start_after_end_is_empty_not_a_panic() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path(), Options::default())?;
    let mut b = Batch::new();
    for t in [1_000, 2_000, 3_000] {
        b.add_labels(cpu("a"), t, t as f64);
    }
    db.append(&b)?;
    for (start, end) in [(2_500, 1_500), (3_000, 1_000), (1_000, 999), (2_001, 2_000)] {
        assert!(dump(&db, &[], start, end)?.is_empty(), "[{start}, {end}] from the head");
    }
    db.seal()?;
    for (start, end) in [(2_500, 1_500), (3_000, 1_000), (1_000, 999), (2_001, 2_000)] {
        assert!(dump(&db, &[], start, end)?.is_empty(), "[{start}, {end}] from a block");
    }
    Ok(())
}

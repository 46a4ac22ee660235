//! Readers are never blocked by sealing and never miss data: while writers append and
//! partitions are sealed in the background (and by explicit full seals), every select sees
//! every sample acknowledged before it started, exactly once, in time order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chronolith::{Batch, Db, Labels, Matcher, Options};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WRITERS: usize = 3;
const STEP_MS: i64 = 250;
/// Batches of 20 samples per writer: 2.8 h of data at 250 ms, 166 one-minute partitions.
const BATCHES: usize = 2_000;
/// Writers wait for one more completed select every this many batches, so reads really
/// interleave with writes however the scheduler treats the threads on a loaded machine.
const BATCHES_PER_SELECT: usize = 100;

fn labels(w: usize) -> Labels {
    Labels::metric("concurrent", [("writer", format!("w{w}"))]).unwrap()
}

fn value(w: usize, t: i64) -> f64 {
    (w as f64) * 1e6 + (t / STEP_MS) as f64 * 0.5
}

#[test]
fn concurrent_reads_see_every_acknowledged_sample() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        partition_ms: 60_000,
        ooo_window_ms: 1_000,
        durability: chronolith::Durability::Never,
        ..Options::default()
    };
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // Per writer: the times of the samples it has been told are stored (acknowledged).
    let acked: Arc<Vec<Mutex<Vec<i64>>>> = Arc::new((0..WRITERS).map(|_| Mutex::new(Vec::new())).collect());
    let reads = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (db, acked, reads) = (db.clone(), acked.clone(), reads.clone());
        writers.push(std::thread::spawn(move || {
            let id = db.series_ref(&labels(w)).unwrap();
            let mut t = 0i64;
            let mut b = Batch::new();
            for i in 0..BATCHES {
                let waited = Instant::now();
                while reads.load(Ordering::Relaxed) < i / BATCHES_PER_SELECT
                    && waited.elapsed() < Duration::from_secs(10)
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                b.clear();
                for k in 0..20 {
                    b.add(id, t + k * STEP_MS, value(w, t + k * STEP_MS));
                }
                let r = db.append(&b).unwrap();
                // A full seal by another thread may refuse samples at or before its
                // boundary: those are not acknowledged.
                let mut mine = acked[w].lock().unwrap();
                for k in 0..20 {
                    if !r.rejected.iter().any(|x| x.index == k as usize) {
                        mine.push(t + k * STEP_MS);
                    }
                }
                drop(mine);
                t += 20 * STEP_MS;
            }
        }));
    }
    let sealer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
                db.seal().unwrap();
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut selects = 0;
    while !writers.iter().all(|h| h.is_finished()) {
        assert!(Instant::now() < deadline, "writers did not finish in time");
        let seen: Vec<Vec<i64>> = acked.iter().map(|a| a.lock().unwrap().clone()).collect();
        let mut got: Vec<Vec<i64>> = vec![Vec::new(); WRITERS];
        for s in db.select(&[Matcher::metric("concurrent")], i64::MIN, i64::MAX) {
            let s = s.unwrap();
            let w: usize = s.labels.get("writer")[1..].parse().unwrap();
            let ts: Vec<i64> = s.samples.iter().map(|x| x.t).collect();
            assert!(ts.windows(2).all(|p| p[0] < p[1]), "writer {w}: not strictly ascending");
            for x in &s.samples {
                assert_eq!(x.v.to_bits(), value(w, x.t).to_bits(), "writer {w} t={}", x.t);
            }
            got[w] = ts;
        }
        for w in 0..WRITERS {
            if let Some(t) = seen[w].iter().find(|t| got[w].binary_search(t).is_err()) {
                panic!("select {selects}: writer {w}: acknowledged sample t={t} not visible");
            }
        }
        selects += 1;
        reads.store(selects, Ordering::Relaxed);
    }
    stop.store(true, Ordering::Relaxed);
    sealer.join().unwrap();
    for h in writers {
        h.join().unwrap();
    }
    let stored: Vec<Vec<i64>> = acked.iter().map(|a| a.lock().unwrap().clone()).collect();
    // Finally: exactly what each writer stored, no more, no less.
    for s in db.select(&[Matcher::metric("concurrent")], i64::MIN, i64::MAX) {
        let s = s.unwrap();
        let w: usize = s.labels.get("writer")[1..].parse().unwrap();
        let ts: Vec<i64> = s.samples.iter().map(|x| x.t).collect();
        assert_eq!(ts, stored[w], "writer {w}");
    }
    let st = db.stats();
    eprintln!("{selects} selects, {} blocks, {} seals", st.engine.blocks, st.engine.seals);
    assert!(selects >= BATCHES / BATCHES_PER_SELECT - 1, "only {selects} selects interleaved with the writes");
}

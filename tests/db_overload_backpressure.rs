//! Back-pressure: when the head is over its memory bound and sealing cannot free it (all
//! data in the open partition), `append` waits `overload_wait_ms` and returns
//! `Error::Overloaded`; nothing of that batch is stored, everything acknowledged before
//! stays, and appends work again once a seal frees the head.

use chronolith::{Batch, Db, Durability, Error, Labels, Matcher, Options};
use std::time::{Duration, Instant};

#[test]
fn append_returns_overloaded_past_the_head_bound_and_recovers_after_seal() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opts =
        Options { head_bytes_max: 1 << 20, overload_wait_ms: 100, durability: Durability::Never, ..Options::default() };
    let db = Db::open(dir.path(), opts)?;
    let t0 = 1_700_000_000_000i64;
    let mut refs = Vec::new();
    let mut batch = Batch::new();
    for s in 0..2000 {
        batch.add_labels(Labels::metric("load", [("series", s.to_string())])?, t0, 0.5);
    }
    for (_, id) in db.append(&batch)?.series {
        refs.push(id);
    }

    // Fill the head within one partition (10 s steps, well under 2 h) until refused.
    let mut acknowledged = 1u64;
    let mut overloaded = None;
    for step in 1..2000i64 {
        batch.clear();
        for (i, id) in refs.iter().enumerate() {
            batch.add(*id, t0 + step * 1000, (step * 7 + i as i64) as f64 * 0.37);
        }
        let started = Instant::now();
        match db.append(&batch) {
            Ok(r) => {
                assert!(r.rejected.is_empty());
                acknowledged += 1;
            }
            Err(Error::Overloaded { head_bytes, head_bytes_max, waited_ms }) => {
                assert!(head_bytes > head_bytes_max);
                assert_eq!(waited_ms, 100);
                assert!(started.elapsed() >= Duration::from_millis(100), "it waited before refusing");
                overloaded = Some(step);
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let refused_step = overloaded.ok_or("the head bound was never enforced")?;
    assert!(db.stats().engine.overloaded >= 1);

    // Nothing of the refused batch is stored; everything acknowledged is.
    let refused_t = t0 + refused_step * 1000;
    for s in db.select(&[Matcher::metric("load")], t0, i64::MAX) {
        let s = s?;
        assert_eq!(s.samples.len() as u64, acknowledged, "{}", s.labels);
        assert!(s.samples.iter().all(|x| x.t < refused_t));
    }

    // Sealing frees the head; appends are accepted again.
    db.seal()?;
    batch.clear();
    for id in &refs {
        batch.add(*id, refused_t + 60_000, 1.0);
    }
    let r = db.append(&batch)?;
    assert_eq!(r.stored, refs.len());
    db.close()?;
    Ok(())
}

//! `Options::series_max`: once the limit is reached, each sample of an append that names a
//! new series is rejected on its own (`RejectReason::SeriesLimit`, counted), while the rest
//! of the same batch (existing series by ref or by labels, and new series up to the limit,
//! in batch order) is stored; `series_ref` for a new series fails with the typed
//! `Error::SeriesLimit`; the limit holds across a reopen, and raising it lets new series in.
#![allow(clippy::unwrap_used, clippy::panic)]

use chronolith_engine::{Batch, Engine, Error, Labels, Matcher, Options, RejectReason, Rejection};

fn labels(i: usize) -> Labels {
    Labels::metric("limited", [("i", i.to_string())]).unwrap()
}

fn open(dir: &std::path::Path, limit: Option<usize>) -> Engine {
    Engine::open(dir, Options { series_max: limit, ..Options::default() }).unwrap()
}

fn samples(e: &Engine) -> usize {
    e.select(&[Matcher::metric("limited")], i64::MIN, i64::MAX).map(|s| s.unwrap().samples.len()).sum()
}

#[test]
fn new_series_beyond_the_limit_are_rejected_existing_keep_ingesting() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), Some(10));
    let mut batch = Batch::new();
    for i in 0..10 {
        batch.add_labels(labels(i), 1000, 1.0);
    }
    let report = e.append(&batch).unwrap();
    assert_eq!(report.stored, 10);
    let refs: Vec<_> = report.series.iter().map(|(_, id)| *id).collect();

    // One more series in a batch with an existing one: only the new series' sample is
    // rejected, the rest of the batch is stored.
    let mut batch = Batch::new();
    batch.add_labels(labels(0), 2000, 2.0);
    batch.add_labels(labels(10), 2000, 2.0);
    batch.add(refs[1], 2000, 2.0);
    let report = e.append(&batch).unwrap();
    assert_eq!(report.stored, 2);
    assert_eq!(report.rejected, vec![Rejection { index: 1, reason: RejectReason::SeriesLimit }]);
    assert_eq!(report.series, vec![(0, refs[0])]);
    assert_eq!(e.stats().rejected.series_limit, 1);
    let err = e.series_ref(&labels(11)).unwrap_err();
    assert!(matches!(err, Error::SeriesLimit { limit: 10, series: 10, new: 1 }), "{err}");
    assert!(err.to_string().contains("series limit"), "{err}");
    assert_eq!(e.registry().len(), 10);
    assert_eq!(samples(&e), 12);

    // Existing series go on, by labels and by ref.
    let mut batch = Batch::new();
    batch.add_labels(labels(3), 3000, 3.0);
    for (k, id) in refs.iter().enumerate() {
        batch.add(*id, 4000 + k as i64, 4.0);
    }
    assert_eq!(e.append(&batch).unwrap().stored, 11);
    assert_eq!(e.series_ref(&labels(5)).unwrap(), refs[5]);
    e.close().unwrap();
    drop(e);

    // With room for two more, a batch naming three new series creates the first two (in
    // batch order; a series named twice counts once) and rejects the third.
    let e = open(dir.path(), Some(12));
    let mut batch = Batch::new();
    for (i, k) in [20, 21, 20, 22, 3].into_iter().enumerate() {
        batch.add_labels(labels(k), 5000 + i as i64, 5.0);
    }
    let report = e.append(&batch).unwrap();
    assert_eq!(report.stored, 4);
    assert_eq!(report.rejected, vec![Rejection { index: 3, reason: RejectReason::SeriesLimit }]);
    assert_eq!(e.registry().len(), 12);
    assert!(e.registry().lookup(&labels(22)).is_none());
    e.close().unwrap();
    drop(e);

    // The limit counts series recovered on open.
    let e = open(dir.path(), Some(12));
    assert!(matches!(e.series_ref(&labels(12)), Err(Error::SeriesLimit { .. })));
    drop(e);
    let e = open(dir.path(), Some(13));
    e.series_ref(&labels(12)).unwrap();
    assert!(matches!(e.series_ref(&labels(13)), Err(Error::SeriesLimit { .. })));
    drop(e);
    let e = open(dir.path(), None);
    e.series_ref(&labels(13)).unwrap();
    assert_eq!(e.registry().len(), 14);
    assert_eq!(samples(&e), 27);
}

//! Shared helpers: a throw-away engine and a plain model of what was written.
#![allow(dead_code, clippy::expect_used)]

use chronolith_engine::{Batch, Durability, Engine, Labels, Options, Sample};

pub const STALE: f64 = f64::from_bits(chronolith_query::STALE_NAN_BITS);

pub struct TestDb {
    pub engine: Engine,
    _dir: tempfile::TempDir,
}

pub fn open() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options { durability: Durability::Never, ..Options::default() };
    let engine = Engine::open(dir.path(), opts).expect("open engine");
    TestDb { engine, _dir: dir }
}

pub fn labels(name: &str, pairs: &[(&str, &str)]) -> Labels {
    Labels::metric(name, pairs.iter().copied()).expect("labels")
}

impl TestDb {
    /// Appends `samples` (ascending) to the series `labels`.
    pub fn write(&self, labels: &Labels, samples: &[Sample]) {
        let mut batch = Batch::new();
        for s in samples {
            batch.add_labels(labels.clone(), s.t, s.v);
        }
        let report = self.engine.append(&batch).expect("append");
        assert!(report.rejected.is_empty(), "{} rejected, first {:?}", report.rejected.len(), report.rejected.first());
    }

    pub fn seal(&self) {
        self.engine.seal_all().expect("seal");
    }
}

pub fn s(t: i64, v: f64) -> Sample {
    Sample::new(t, v)
}

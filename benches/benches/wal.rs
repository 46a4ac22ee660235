//! WAL append benchmarks: one 60 KB record per append (about one 10,000-sample batch), one
//! thread, under each durability policy. Every result names the policy it ran under.
#![allow(clippy::unwrap_used, reason = "benchmark setup")]

use std::time::Duration;

use chronolith_wal::{Durability, RecoveryMode, Wal, WalOptions};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const RECORD_BYTES: usize = 60 * 1024;

fn append_60kb(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_append_60KB_1thread");
    group.throughput(Throughput::Bytes(RECORD_BYTES as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    let payload = vec![0x5Au8; RECORD_BYTES];
    for (name, durability) in [
        ("always", Durability::Always),
        ("periodic_100ms", Durability::Periodic { interval_ms: 100 }),
        ("never", Durability::Never),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { durability, ..WalOptions::default() };
        let (wal, _) = Wal::open(dir.path(), opts, RecoveryMode::TruncateTornTail, |_, _, _| {}).unwrap();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| wal.append(&[(1, payload.as_slice())]).unwrap());
        });
        wal.close().unwrap();
    }
    group.finish();
}

criterion_group!(benches, append_60kb);
criterion_main!(benches);

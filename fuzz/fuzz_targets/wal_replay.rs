//! WAL replay over an arbitrary segment file, in both recovery modes: opening returns a
//! typed error or a log, never panics.
#![no_main]

use chronolith_wal::{RecoveryMode, Wal, WalOptions, Durability};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for mode in [RecoveryMode::TruncateTornTail, RecoveryMode::Salvage] {
        let Ok(dir) = tempfile::tempdir() else { return };
        let seg = dir.path().join("00000000000000000001.wal");
        if std::fs::write(&seg, data).is_err() {
            return;
        }
        let opts = WalOptions { durability: Durability::Never, ..WalOptions::default() };
        if let Ok((wal, _)) = Wal::open(dir.path(), opts, mode, |_, _, _| {}) {
            let _ = wal.close();
        }
    }
});

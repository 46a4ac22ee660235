//! What a consumer that tails the sample log (the remote-write forwarder) needs from the
//! engine: where the acknowledged log ends, which segments exist and how new their
//! samples are, and a retention floor so that truncation after a seal keeps segments the
//! consumer has not confirmed yet.
//!
//! A hold is a named floor: `hold_wal` sets it (to no earlier than the oldest segment on
//! disk, atomically with respect to truncation, so nothing is removed between looking
//! and holding), `advance_wal_hold` moves it forward once the consumer has durably
//! recorded that it no longer needs the segments before it, `release_wal_hold` drops it.
//! The engine never waits for a holder: appends and seals go on, the WAL simply stays.

use super::{Engine, SAMPLE_LOG_DIR};
use chronolith_wal::{Position, SegmentId};
use std::path::PathBuf;

/// One sample-log segment on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalSegment {
    pub id: SegmentId,
    pub bytes: u64,
    /// Newest sample timestamp logged in it (`None` for a segment with no samples yet).
    pub max_t: Option<i64>,
}

impl Engine {
    /// The sample log's directory (for a [`chronolith_wal::TailReader`]).
    pub fn sample_log_dir(&self) -> PathBuf {
        self.dir.join(SAMPLE_LOG_DIR)
    }

    /// End of the acknowledged sample log: every record before it belongs to an append
    /// that returned `Ok`. Series records of every series named there are in the series
    /// log and the registry already.
    pub fn wal_committed_end(&self) -> Position {
        self.sample_log.committed_end()
    }

    /// Sample-log segments on disk, oldest first; the current one last.
    pub fn wal_segments(&self) -> Vec<WalSegment> {
        let m = self.segment_max_t.lock();
        self.sample_log
            .segments()
            .into_iter()
            .map(|(id, bytes)| WalSegment { id, bytes, max_t: m.get(&id).copied() })
            .collect()
    }

    /// Sets `holder`'s floor to `from`, or to the oldest segment on disk if that is later
    /// (the segments in between are gone). Returns the floor set.
    pub fn hold_wal(&self, holder: &str, from: SegmentId) -> SegmentId {
        let _m = self.segment_max_t.lock();
        let oldest = self.sample_log.segments().first().map_or(from, |(id, _)| *id);
        let floor = from.max(oldest);
        self.wal_holds.lock().insert(holder.to_owned(), floor);
        floor
    }

    /// Moves `holder`'s floor forward to `to` (never back); segments before it may be
    /// removed by the next truncation. Unknown holders are ignored.
    pub fn advance_wal_hold(&self, holder: &str, to: SegmentId) {
        if let Some(f) = self.wal_holds.lock().get_mut(holder) {
            *f = (*f).max(to);
        }
    }

    /// Drops `holder`'s floor.
    pub fn release_wal_hold(&self, holder: &str) {
        self.wal_holds.lock().remove(holder);
    }

    /// The floors currently set, by holder.
    pub fn wal_holds(&self) -> Vec<(String, SegmentId)> {
        self.wal_holds.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

impl Engine {
    /// Removes the sample-log segments that sealed blocks cover and no hold needs, now
    /// rather than at the next seal (a holder calls it after moving its floor).
    ///
    /// # Errors
    /// As a seal's truncation: a failed cut or unlink (the WAL stays usable).
    pub fn trim_wal(&self) -> crate::Result<()> {
        self.truncate_wal(self.head.sealed_until())
    }
}

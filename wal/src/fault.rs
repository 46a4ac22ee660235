//! The fault-injecting side of the I/O seam. Every filesystem call the WAL (`io::Fs`) and
//! the engine (`fsutil`) make asks [`check`] first; the real call runs only if no rule
//! matches. Without the `fault-injection` feature `check` is a constant `None` and the
//! rule table does not exist, so production builds carry none of this.
//!
//! Rules match by path prefix, so tests running in parallel in one process, each in its
//! own temporary directory, never see each other's faults.
//!
//! ```ignore
//! use chronolith_wal::fault::{self, Fault, Op, Rule};
//! let _guard = fault::inject(Rule::new(dir, Op::Write, Fault::NoSpace));
//! // every write under `dir` now fails with ENOSPC, until `_guard` drops
//! ```

use std::path::Path;

/// The kinds of filesystem call a rule can target.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Creating a file (or, for the engine, a directory).
    Create,
    /// Writing bytes into a file.
    Write,
    /// fsync / fdatasync of a file.
    Fsync,
    /// Renaming a file or directory.
    Rename,
    /// fsync of a directory (makes a create, rename or unlink durable).
    SyncDir,
    /// Shrinking a file (the WAL's roll-back after a failed write).
    Truncate,
    /// Removing a file or directory (WAL segment removal, block retention and clean-up).
    Remove,
}

/// What an injected call does instead of its real work.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Fails with ENOSPC ("No space left on device") and does nothing.
    NoSpace,
    /// Fails with EIO ("Input/output error") and does nothing.
    Eio,
    /// Writes only the first `keep` bytes, then fails with ENOSPC: a torn write as a full
    /// disk produces it. On calls other than writes, same as [`Fault::NoSpace`].
    Torn {
        /// Bytes that do reach the file.
        keep: usize,
    },
    /// A slow disk: the call waits `ms` milliseconds, then does its real work. [`check`]
    /// sleeps itself and returns `None` for it, so callers never see this variant.
    Delay {
        /// How long each matching call is held up.
        ms: u64,
    },
}

impl Fault {
    /// The OS error this fault reports.
    #[must_use]
    pub fn error(self) -> std::io::Error {
        match self {
            Fault::NoSpace | Fault::Torn { .. } => std::io::Error::from_raw_os_error(ENOSPC),
            // `Delay` never fails a call (`check` does not return it); EIO if misused.
            Fault::Eio | Fault::Delay { .. } => std::io::Error::from_raw_os_error(EIO),
        }
    }
}

/// Linux errno values (the engine runs on Linux; the seam only synthesises these two).
const ENOSPC: i32 = 28;
const EIO: i32 = 5;

/// One fault: calls of kind `op` on paths under `under` fail with `fault`, after `skip`
/// matching calls have gone through, for `times` calls (`u64::MAX`: until removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Path prefix the call's path must start with.
    pub under: std::path::PathBuf,
    /// The call kind.
    pub op: Op,
    /// What happens instead.
    pub fault: Fault,
    /// Matching calls let through before the first failure.
    pub skip: u64,
    /// Failures before the rule goes quiet.
    pub times: u64,
}

impl Rule {
    /// A rule failing every matching call until it is removed.
    #[must_use]
    pub fn new(under: &Path, op: Op, fault: Fault) -> Rule {
        Rule { under: under.to_path_buf(), op, fault, skip: 0, times: u64::MAX }
    }

    /// Lets `n` matching calls through first.
    #[must_use]
    pub fn after(mut self, n: u64) -> Rule {
        self.skip = n;
        self
    }

    /// Fails only `n` calls.
    #[must_use]
    pub fn times(mut self, n: u64) -> Rule {
        self.times = n;
        self
    }
}

/// Asks the rule table whether the call `op` on `path` fails, counting it against the
/// first matching rule. `None`: do the real call (after the wait of a [`Fault::Delay`]
/// rule, which this function sleeps itself).
#[cfg(any(test, feature = "fault-injection"))]
#[must_use]
pub fn check(path: &Path, op: Op) -> Option<Fault> {
    table::check(path, op)
}

/// Without the `fault-injection` feature nothing is ever injected.
#[cfg(not(any(test, feature = "fault-injection")))]
#[inline(always)]
#[must_use]
pub fn check(_path: &Path, _op: Op) -> Option<Fault> {
    None
}

#[cfg(any(test, feature = "fault-injection"))]
pub use table::{inject, FaultGuard};

#[cfg(any(test, feature = "fault-injection"))]
mod table {
    use super::{Fault, Op, Rule};
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Mutex;

    struct Armed {
        id: u64,
        rule: Rule,
        seen: u64,
        failed: u64,
    }

    static RULES: Mutex<Vec<Armed>> = Mutex::new(Vec::new());
    /// Number of armed rules: the fast path when no test has injected anything.
    static ARMED: AtomicUsize = AtomicUsize::new(0);
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);

    /// Removes its rule when dropped, and tells how many calls it failed.
    #[derive(Debug)]
    pub struct FaultGuard {
        id: u64,
    }

    impl FaultGuard {
        /// Calls this rule has failed (or, for [`Fault::Delay`], held up) so far.
        #[must_use]
        pub fn failures(&self) -> u64 {
            lock().iter().find(|a| a.id == self.id).map_or(0, |a| a.failed)
        }
    }

    impl Drop for FaultGuard {
        fn drop(&mut self) {
            let mut rules = lock();
            rules.retain(|a| a.id != self.id);
            ARMED.store(rules.len(), Ordering::SeqCst);
        }
    }

    fn lock() -> std::sync::MutexGuard<'static, Vec<Armed>> {
        // A test that panicked while holding the table leaves it usable.
        RULES.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Arms `rule` until the returned guard drops.
    #[must_use = "the rule is removed when the guard drops"]
    pub fn inject(rule: Rule) -> FaultGuard {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut rules = lock();
        rules.push(Armed { id, rule, seen: 0, failed: 0 });
        ARMED.store(rules.len(), Ordering::SeqCst);
        FaultGuard { id }
    }

    pub(super) fn check(path: &Path, op: Op) -> Option<Fault> {
        if ARMED.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut rules = lock();
        let armed = rules.iter_mut().find(|a| a.rule.op == op && path.starts_with(&a.rule.under))?;
        armed.seen += 1;
        if armed.seen <= armed.rule.skip || armed.failed >= armed.rule.times {
            return None;
        }
        armed.failed += 1;
        match armed.rule.fault {
            Fault::Delay { ms } => {
                // Sleep without holding the table, so other calls (and other tests) go on.
                drop(rules);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                None
            }
            fault => Some(fault),
        }
    }
}

//! Small helpers shared by the subcommands.

use chronolith::Durability;
use std::fmt;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// fsync before every append returns (default; survives power loss).
    Always,
    /// fsync every 100 ms in the background (survives a process kill).
    Periodic,
    /// never fsync explicitly (survives a process kill, not power loss).
    Never,
}

impl From<DurabilityArg> for Durability {
    fn from(d: DurabilityArg) -> Self {
        match d {
            DurabilityArg::Always => Durability::Always,
            DurabilityArg::Periodic => Durability::Periodic { interval_ms: 100 },
            DurabilityArg::Never => Durability::Never,
        }
    }
}

impl fmt::Display for DurabilityArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Always => "always",
            Self::Periodic => "periodic",
            Self::Never => "never",
        })
    }
}

/// Sum of file sizes under `dir` (what `du -sb` reports, less directory entries).
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_bytes(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

/// The process's peak resident set (VmHWM), in bytes; 0 where /proc is unavailable.
pub fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

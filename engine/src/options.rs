//! Engine options with the defaults a collector gets when it sets nothing.

use crate::error::{Error, Result};
use crate::labels::LabelLimits;
use crate::matcher::{parse_selector, Matcher};
use chronolith_wal::{Durability, RecoveryMode};

#[derive(Clone, Debug)]
pub struct Options {
    /// Width of a time partition: the head is sealed into one block per partition.
    pub partition_ms: i64,
    /// How far behind the newest sample a sample may arrive and still be accepted.
    /// A partition is sealed once the newest sample is past its end plus this window.
    pub ooo_window_ms: i64,
    /// When `append` returns: after fsync (`Always`, default), after write(2) with a
    /// background fsync (`Periodic`), or after write(2) only (`Never`). In every mode an
    /// acknowledged sample survives a process kill; only `Always` survives power loss.
    pub durability: Durability,
    pub wal_segment_bytes_max: u64,
    /// What open does with damaged files.
    ///
    /// `Salvage` (default): keep everything that checks out and quarantine the rest in
    /// `damaged/` (moved or hard-linked there, never deleted): a torn WAL tail is cut (its
    /// bytes kept), a damaged WAL record is skipped up to the next valid one, a block with
    /// a damaged chunk is rewritten without that chunk, a block with a damaged `index` or
    /// `meta` (or any damaged rollup block) is moved aside whole. Every chunk's CRC is
    /// checked at open to find such damage (sequential reads, no decoding). What was found
    /// and what left the live data is in `stats().engine.recovery.damage`.
    ///
    /// `TruncateTornTail` (strict): cut a torn WAL tail, and fail the open with
    /// `Error::Corruption` (file, offset, expected/found) on any other damage, changing
    /// nothing; chunks are checked only when read. For operators who want to look before
    /// anything is moved (`chronolith check` reports the same findings read-only).
    ///
    /// Why salvage is the default: damage is found at open, typically after a crash or a
    /// disk fault, when nobody is watching; refusing to start turns one damaged chunk into
    /// an outage and leaves the fix to a person, while salvage keeps serving every sample
    /// that is intact and loses nothing that could be read, since the damaged bytes are
    /// kept aside and reported.
    pub recovery_mode: RecoveryMode,
    /// Bound on head memory. Past it, `append` waits for sealing up to
    /// `overload_wait_ms` and then returns `Error::Overloaded`.
    pub head_bytes_max: usize,
    pub overload_wait_ms: u64,
    pub label_limits: LabelLimits,
    // --- compaction, downsampling, retention (issue 4) ---
    /// Merging, downsampling and retention: the policies the compaction worker applies.
    pub compaction: CompactionOptions,
    /// Bound on distinct series (cardinality). In an append, each sample naming a new
    /// series past it is rejected on its own (`RejectReason::SeriesLimit`, counted in
    /// `stats()`), while the rest of the batch, existing series and new ones that still
    /// fit, is stored; `series_ref` for a new series past it fails with
    /// `Error::SeriesLimit`. `None` (default): unlimited.
    pub series_max: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            partition_ms: 2 * 3600 * 1000,
            ooo_window_ms: 5 * 60 * 1000,
            durability: Durability::Always,
            wal_segment_bytes_max: 64 << 20,
            recovery_mode: RecoveryMode::Salvage,
            head_bytes_max: 512 << 20,
            overload_wait_ms: 1000,
            label_limits: LabelLimits::default(),
            compaction: CompactionOptions::default(),
            series_max: None,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<()> {
        if self.partition_ms < 60_000 {
            return Err(Error::InvalidOptions(format!("partition_ms {} is below one minute", self.partition_ms)));
        }
        if self.ooo_window_ms < 0 {
            return Err(Error::InvalidOptions("ooo_window_ms must not be negative".into()));
        }
        if self.wal_segment_bytes_max < 64 * 1024 {
            return Err(Error::InvalidOptions("wal_segment_bytes_max below 64 KiB".into()));
        }
        if self.head_bytes_max < 1 << 20 {
            return Err(Error::InvalidOptions("head_bytes_max below 1 MiB".into()));
        }
        self.compaction.validate(self.partition_ms)?;
        Ok(())
    }
}

// --- compaction, downsampling, retention (issue 4) ---

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// One rollup tier: windows of `resolution_ms`, built for data older than `after_ms`
/// (counted back from the newest sample held), in blocks covering `span_ms` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollupTier {
    pub resolution_ms: i64,
    pub after_ms: i64,
    /// Each rollup block summarises one aligned span `(k·span, (k+1)·span]`; a multiple
    /// of `resolution_ms` and of the finer tier's span (so a coarser tier can be built
    /// from the finer one after raw data is gone).
    pub span_ms: i64,
}

/// How long each resolution is kept. Age counts back from the newest sample the engine
/// holds, not from the wall clock, so importing last year's data does not delete it on
/// arrival. `None` keeps forever.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub raw_ms: Option<i64>,
    /// `(resolution_ms, keep_ms)` per rollup tier.
    pub rollups_ms: Vec<(i64, i64)>,
    /// Shorter retention for the series a selector matches, at every resolution (e.g.
    /// `{job="debug"}` kept 1 day). It only shortens: a block past its resolution's age
    /// is dropped whole whatever it holds.
    pub selectors: Vec<SelectorRetention>,
}

/// The series matching `matchers` are kept `keep_ms`, counted like every age from the
/// newest sample held. A block whose data ends before that loses those series (it is
/// rewritten without them, chunks copied as they are, in one atomic swap; or dropped
/// whole when they are all it holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorRetention {
    /// The selector as written, for messages.
    pub selector: String,
    pub matchers: Vec<Matcher>,
    pub keep_ms: i64,
}

impl Retention {
    /// Parses the human form `raw=15d, 5m=90d, 1h=2y, {job="debug"}=1d` (units ms, s,
    /// m, h, d, w, y = 365 d; `raw`, a resolution or a series selector on the left).
    pub fn parse(text: &str) -> Result<Self> {
        let mut r = Self::default();
        for part in split_top_level(text).into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .rsplit_once('=')
                .filter(|(k, _)| !k.ends_with(['!', '=']))
                .ok_or_else(|| Error::InvalidOptions(format!("retention `{part}`: expected name=duration")))?;
            let keep = parse_duration_ms(v.trim())?;
            match k.trim() {
                "raw" => r.raw_ms = Some(keep),
                sel if sel.contains('{') => {
                    let matchers = parse_selector(sel).map_err(|e| Error::InvalidOptions(e.to_string()))?;
                    r.selectors.push(SelectorRetention { selector: sel.to_string(), matchers, keep_ms: keep });
                }
                res => {
                    let res = parse_duration_ms(res)?;
                    r.rollups_ms.retain(|(x, _)| *x != res);
                    r.rollups_ms.push((res, keep));
                }
            }
        }
        r.rollups_ms.sort_unstable();
        Ok(r)
    }

    /// How long blocks of `resolution_ms` (0 = raw) are kept.
    pub fn keep_ms(&self, resolution_ms: i64) -> Option<i64> {
        if resolution_ms == 0 {
            self.raw_ms
        } else {
            self.rollups_ms.iter().find(|(r, _)| *r == resolution_ms).map(|(_, k)| *k)
        }
    }
}

/// Splits at commas outside `{...}` and double quotes (a selector holds commas).
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut start, mut depth, mut quoted, mut escaped) = (Vec::new(), 0, 0i32, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '{' if !quoted => depth += 1,
            '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Parses `90d`, `40h`, `5m`, `30s`, `250ms`, `2w`, `2y` into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64> {
    let bad = || Error::InvalidOptions(format!("duration `{text}`: expected a number and ms|s|m|h|d|w|y"));
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = text.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => MINUTE_MS,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        "y" => 365 * DAY_MS,
        _ => return Err(bad()),
    };
    n.checked_mul(unit_ms).filter(|v| *v > 0).ok_or_else(bad)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionOptions {
    /// Run the background compaction worker (`Db` only; the engine never starts threads).
    pub background: bool,
    /// How often the worker looks for work.
    pub interval_ms: u64,
    /// Merge levels: block time ranges, ascending, each a multiple of the previous one and
    /// of `partition_ms`. Blocks inside one aligned range of a level are merged into one
    /// once nothing more can arrive in that range. Empty: no merging.
    pub merge_ranges_ms: Vec<i64>,
    /// Rollup tiers, finest first. Defaults follow the Thanos convention.
    pub tiers: Vec<RollupTier>,
    pub retention: Retention,
    /// Size-based retention: past this many bytes of blocks, the oldest blocks are
    /// dropped until under it. `None`: no size bound.
    pub retention_bytes_max: Option<u64>,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        Self {
            background: true,
            interval_ms: 60_000,
            merge_ranges_ms: vec![6 * HOUR_MS, DAY_MS],
            tiers: vec![
                RollupTier { resolution_ms: 5 * MINUTE_MS, after_ms: 40 * HOUR_MS, span_ms: DAY_MS },
                RollupTier { resolution_ms: HOUR_MS, after_ms: 10 * DAY_MS, span_ms: 10 * DAY_MS },
            ],
            retention: Retention::default(),
            retention_bytes_max: None,
        }
    }
}

impl CompactionOptions {
    fn validate(&self, partition_ms: i64) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidOptions(m));
        let mut prev = partition_ms;
        for &r in &self.merge_ranges_ms {
            if r <= prev || r % prev != 0 {
                return bad(format!("merge range {r} ms is not a larger multiple of {prev} ms"));
            }
            prev = r;
        }
        let mut prev: Option<RollupTier> = None;
        for t in &self.tiers {
            if t.resolution_ms <= 0 || t.after_ms < 0 || t.span_ms <= 0 || t.span_ms % t.resolution_ms != 0 {
                return bad(format!("rollup tier {t:?}: span must be a positive multiple of the resolution"));
            }
            if let Some(p) = prev {
                if t.resolution_ms <= p.resolution_ms
                    || t.resolution_ms % p.resolution_ms != 0
                    || t.span_ms % p.span_ms != 0
                {
                    return bad(format!("rollup tier {t:?} must be a coarser multiple of {p:?}"));
                }
            }
            prev = Some(*t);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_human_form_parses() {
        let r = Retention::parse("raw=15d, 5m=90d, 1h=2y").ok();
        let want = Retention {
            raw_ms: Some(15 * DAY_MS),
            rollups_ms: vec![(5 * MINUTE_MS, 90 * DAY_MS), (HOUR_MS, 730 * DAY_MS)],
            selectors: Vec::new(),
        };
        assert_eq!(r, Some(want));
        let r = Retention::parse(r#"raw=15d, {job="debug", env=~"a,b"}=1d, up{x!="}"}=2h"#).ok();
        let sel = r.map(|r| r.selectors).unwrap_or_default();
        assert_eq!(sel.len(), 2);
        assert_eq!(sel[0].selector, r#"{job="debug", env=~"a,b"}"#);
        assert_eq!(sel[0].keep_ms, DAY_MS);
        assert_eq!(
            sel[0].matchers,
            vec![
                Matcher::eq("job", "debug"),
                Matcher::new("env", crate::MatchOp::RegexMatch, "a,b").unwrap_or_else(|_| Matcher::eq("", ""))
            ]
        );
        assert_eq!(
            sel[1].matchers,
            vec![
                Matcher::metric("up"),
                Matcher::new("x", crate::MatchOp::NotEqual, "}").unwrap_or_else(|_| Matcher::eq("", ""))
            ]
        );
        assert!(Retention::parse(r#"{job="debug"}"#).is_err());
        assert!(Retention::parse(r#"{job=debug}=1d"#).is_err());
        assert!(Retention::parse("raw=15").is_err());
        assert!(Retention::parse("raw").is_err());
        assert!(Retention::parse("5q=1d").is_err());
        assert!(Retention::parse("raw=0d").is_err());
        assert_eq!(Retention::parse("").ok(), Some(Retention::default()));
    }

    #[test]
    fn default_options_validate() {
        assert!(Options::default().validate().is_ok());
    }
}

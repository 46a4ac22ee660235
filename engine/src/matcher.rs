//! Label matchers `=`, `!=`, `=~`, `!~` with Prometheus semantics: regexes are fully
//! anchored, and an absent label matches as the empty string.

use crate::error::{Error, Result};
use crate::labels::Labels;
use regex::Regex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

/// Compiled regexes are bounded so a hostile pattern cannot take the process's memory.
const REGEX_SIZE_LIMIT_BYTES: usize = 1 << 20;

impl Matcher {
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT_BYTES)
                    .build()
                    .map_err(|e| Error::InvalidMatcher(format!("{name}=~{value:?}: {e}")))?,
            ),
            _ => None,
        };
        Ok(Self { name, op, value, regex })
    }

    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self { name: name.into(), op: MatchOp::Equal, value: value.into(), regex: None }
    }

    /// Matches the metric name.
    pub fn metric(name: impl Into<String>) -> Self {
        Self::eq(crate::labels::METRIC_NAME, name)
    }

    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::RegexMatch, Some(r)) => r.is_match(v),
            (MatchOp::RegexNoMatch, Some(r)) => !r.is_match(v),
            // Unreachable by construction (regex ops always compile one); match nothing.
            (_, None) => false,
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name))
    }

    /// True when this matcher also accepts series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches_value("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored_and_absent_is_empty() -> Result<()> {
        let l = Labels::metric("cpu", [("host", "web-1")])?;
        assert!(Matcher::new("host", MatchOp::RegexMatch, "web-.*")?.matches(&l));
        assert!(!Matcher::new("host", MatchOp::RegexMatch, "web")?.matches(&l));
        assert!(Matcher::new("dc", MatchOp::Equal, "")?.matches(&l));
        assert!(!Matcher::new("dc", MatchOp::NotEqual, "")?.matches(&l));
        assert!(Matcher::new("host", MatchOp::RegexNoMatch, "db.*")?.matches(&l));
        assert!(Matcher::new("host", MatchOp::RegexMatch, "(").is_err());
        Ok(())
    }
}

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

/// Two matchers are equal when they match the same way (the compiled regex follows).
impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

impl Eq for Matcher {}

/// Parses a series selector: `metric`, `{label="v", other=~"re"}` or
/// `metric{label!="v"}`, values in double quotes with `\\`, `\"` and `\n` escapes (the
/// PromQL selector syntax, without durations or offsets). At least one matcher is needed.
pub fn parse_selector(text: &str) -> Result<Vec<Matcher>> {
    let bad = |why: &str| Error::InvalidMatcher(format!("selector `{text}`: {why}"));
    let s = text.trim();
    let (name, rest) = s.split_at(s.find('{').unwrap_or(s.len()));
    let mut out = Vec::new();
    let name = name.trim();
    if !name.is_empty() {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            return Err(bad("a metric name is letters, digits, `_` and `:`"));
        }
        out.push(Matcher::metric(name));
    }
    if !rest.is_empty() {
        let inner = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')).ok_or_else(|| bad("unbalanced braces"))?;
        let mut chars = inner.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let mut label = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    label.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let op = match (chars.next(), chars.peek()) {
                (Some('='), Some('~')) => MatchOp::RegexMatch,
                (Some('!'), Some('=')) => MatchOp::NotEqual,
                (Some('!'), Some('~')) => MatchOp::RegexNoMatch,
                (Some('='), _) => MatchOp::Equal,
                _ => return Err(bad("expected a label name and one of = != =~ !~")),
            };
            if op != MatchOp::Equal {
                chars.next();
            }
            if label.is_empty() {
                return Err(bad("empty label name"));
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.next() != Some('"') {
                return Err(bad("label values are double-quoted"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c @ ('\\' | '"')) => value.push(c),
                        _ => return Err(bad("unknown escape in a label value")),
                    },
                    Some(c) => value.push(c),
                    None => return Err(bad("unterminated label value")),
                }
            }
            out.push(Matcher::new(label, op, value)?);
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            match chars.next() {
                Some(',') | None => {}
                Some(_) => return Err(bad("expected `,` between matchers")),
            }
        }
    }
    if out.is_empty() {
        return Err(bad("no matchers"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse() -> Result<()> {
        let m = parse_selector(r#"up{job="debug", env!="prod",  path=~"/a\\.b", x!~"y\"z",}"#)?;
        assert_eq!(
            m,
            vec![
                Matcher::metric("up"),
                Matcher::eq("job", "debug"),
                Matcher::new("env", MatchOp::NotEqual, "prod")?,
                Matcher::new("path", MatchOp::RegexMatch, r"/a\.b")?,
                Matcher::new("x", MatchOp::RegexNoMatch, "y\"z")?,
            ]
        );
        assert_eq!(parse_selector("cpu_total")?, vec![Matcher::metric("cpu_total")]);
        assert_eq!(parse_selector(r#"{job="a"}"#)?, vec![Matcher::eq("job", "a")]);
        for bad in
            ["", "{}", "{job}", r#"{job=a}"#, r#"{job="a"#, r#"{job="a" env="b"}"#, "a b", r#"{="a"}"#, "{job=~\"(\"}"]
        {
            assert!(parse_selector(bad).is_err(), "{bad:?} should be refused");
        }
        Ok(())
    }

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

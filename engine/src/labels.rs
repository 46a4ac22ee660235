//! Label sets: the identity of a series (the Prometheus model: the metric name is the
//! label `__name__`). Always sorted by name with unique names and non-empty values.

use crate::error::{Error, Result};
use std::fmt;

/// Name of the label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Bounds that turn absurd label sets into a clear error instead of memory growth.
#[derive(Clone, Debug)]
pub struct LabelLimits {
    pub labels_per_series_max: usize,
    pub name_bytes_max: usize,
    pub value_bytes_max: usize,
    pub series_bytes_max: usize,
}

impl Default for LabelLimits {
    fn default() -> Self {
        Self { labels_per_series_max: 64, name_bytes_max: 256, value_bytes_max: 4096, series_bytes_max: 16 * 1024 }
    }
}

/// A validated, sorted label set.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// Builds a label set from pairs in any order. Empty values are dropped (an empty
    /// value means "absent" in the Prometheus model); duplicate names are an error.
    pub fn new<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Self> {
        let mut v: Vec<(String, String)> =
            pairs.into_iter().map(|(n, v)| (n.into(), v.into())).filter(|(_, v)| !v.is_empty()).collect();
        v.sort_unstable();
        if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::InvalidLabels(format!("duplicate label name {:?}", w[0].0)));
        }
        for (n, _) in &v {
            if !valid_label_name(n) {
                return Err(Error::InvalidLabels(format!("invalid label name {n:?}")));
            }
        }
        Ok(Self(v))
    }

    /// A metric name plus labels: `Labels::metric("cpu", [("host", "a")])`.
    pub fn metric<N: Into<String>, V: Into<String>>(
        name: &str,
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self> {
        let iter = pairs.into_iter().map(|(n, v)| (n.into(), v.into()));
        Self::new(std::iter::once((METRIC_NAME.to_string(), name.to_string())).chain(iter))
    }

    /// Checks the set against `limits`.
    pub fn check(&self, limits: &LabelLimits) -> Result<()> {
        if self.0.is_empty() {
            return Err(Error::InvalidLabels("empty label set".into()));
        }
        if self.0.len() > limits.labels_per_series_max {
            return Err(Error::InvalidLabels(format!(
                "{} labels, limit is {}",
                self.0.len(),
                limits.labels_per_series_max
            )));
        }
        let mut total = 0usize;
        for (n, v) in &self.0 {
            if n.len() > limits.name_bytes_max {
                return Err(Error::InvalidLabels(format!(
                    "label name of {} bytes, limit is {}",
                    n.len(),
                    limits.name_bytes_max
                )));
            }
            if v.len() > limits.value_bytes_max {
                return Err(Error::InvalidLabels(format!(
                    "value of label {n:?} has {} bytes, limit is {}",
                    v.len(),
                    limits.value_bytes_max
                )));
            }
            total += n.len() + v.len();
        }
        if total > limits.series_bytes_max {
            return Err(Error::InvalidLabels(format!(
                "label set of {total} bytes, limit is {}",
                limits.series_bytes_max
            )));
        }
        Ok(())
    }

    /// The value of `name`, or `""` when absent (Prometheus matching semantics).
    pub fn get(&self, name: &str) -> &str {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => &self.0[i].1,
            Err(_) => "",
        }
    }

    pub fn metric_name(&self) -> &str {
        self.get(METRIC_NAME)
    }

    /// These labels without `name`: still sorted and valid, so no re-check (queries drop
    /// `__name__` from every series they transform).
    pub fn without(&self, name: &str) -> Labels {
        Labels(self.0.iter().filter(|(n, _)| n != name).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, as Prometheus requires.
fn valid_label_name(n: &str) -> bool {
    let mut bytes = n.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Display for Labels {
    /// `name{a="x", b="y"}` in Prometheus notation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.metric_name())?;
        let mut first = true;
        for (n, v) in self.iter().filter(|(n, _)| *n != METRIC_NAME) {
            if !first {
                write!(f, ", ")?;
            }
            first = false;
            write!(f, "{n}={v:?}")?;
        }
        write!(f, "}}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_equals_rebuilding_from_the_rest() {
        let l = Labels::metric("cpu", [("z", "1"), ("a", "2")]).unwrap_or_default();
        let rebuilt = Labels::new(l.iter().filter(|(n, _)| *n != METRIC_NAME)).unwrap_or_default();
        assert_eq!(l.without(METRIC_NAME), rebuilt);
        assert_eq!(l.without(METRIC_NAME).iter().collect::<Vec<_>>(), vec![("a", "2"), ("z", "1")]);
        assert_eq!(l.without("absent"), l);
    }

    #[test]
    fn sorted_and_empty_values_dropped() {
        let l = Labels::metric("cpu", [("z", "1"), ("a", "2"), ("e", "")]).unwrap_or_default();
        let names: Vec<_> = l.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["__name__", "a", "z"]);
        assert_eq!(l.get("e"), "");
        assert_eq!(l.to_string(), "cpu{a=\"2\", z=\"1\"}");
    }

    #[test]
    fn bad_names_and_duplicates_are_errors() {
        assert!(Labels::new([("1x", "a")]).is_err());
        assert!(Labels::new([("a-b", "a")]).is_err());
        assert!(Labels::new([("a", "1"), ("a", "2")]).is_err());
    }

    #[test]
    fn limits_are_enforced() {
        let many: Vec<(String, String)> = (0..100).map(|i| (format!("l{i}"), "v".to_string())).collect();
        let l = Labels::new(many).unwrap_or_default();
        assert!(matches!(l.check(&LabelLimits::default()), Err(Error::InvalidLabels(_))));
        let big = Labels::new([("a", "x".repeat(10_000))]).unwrap_or_default();
        assert!(big.check(&LabelLimits::default()).is_err());
        assert!(Labels::default().check(&LabelLimits::default()).is_err());
    }
}

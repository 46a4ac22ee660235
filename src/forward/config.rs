//! A remote-write target: where to send, how to authenticate, what to send, and the
//! bounds (shards, request size, back-off, circuit breaker, backlog). Built in code with
//! [`RemoteWriteConfig::new`] or parsed from one command-line string with
//! [`RemoteWriteConfig::parse`].

use crate::{Error, Matcher, Result};
use chronolith_engine::parse_duration_ms;

/// How requests authenticate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: String },
}

/// One remote-write target.
#[derive(Clone, Debug)]
pub struct RemoteWriteConfig {
    /// Names the target's state directory, `<data>/forward/<name>/`, and its stats.
    /// Default: the URL without its scheme, other characters than `[A-Za-z0-9._-]` as `_`.
    pub name: String,
    /// `http://host:port/path` of a remote write 1.0 receiver.
    pub url: String,
    pub auth: Auth,
    /// Sent with every request (e.g. `X-Scope-OrgID` for Mimir/Cortex tenants).
    pub headers: Vec<(String, String)>,
    /// Which series to forward: a series is sent if it matches every matcher of any one
    /// selector. Empty: every series.
    pub selectors: Vec<Vec<Matcher>>,
    /// Added to every series sent (e.g. `replica`); a label the series has itself wins.
    pub extra_labels: Vec<(String, String)>,
    /// Parallel senders. A series always goes to the same shard, so its samples arrive in
    /// WAL order.
    pub shards: usize,
    /// Samples per request, at most (a request groups them by series, so the more samples
    /// it holds, the more of them share a series' labels).
    pub max_samples_per_request: usize,
    /// A sample waits at most this long for its request to fill up before it is sent.
    pub batch_send_deadline_ms: u64,
    /// Whole-request timeout (connect, send, response).
    pub timeout_ms: u64,
    /// Exponential back-off for retried requests: from `min_backoff_ms`, doubling, capped
    /// at `max_backoff_ms`, with jitter (each wait drawn from [half, whole]).
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// A `Retry-After` answer is honoured up to this long.
    pub retry_after_max_ms: u64,
    /// Consecutive failed requests that open the circuit breaker.
    pub breaker_failures: u32,
    /// While open, one probe request is let through this often.
    pub breaker_probe_interval_ms: u64,
    /// Unsent WAL bytes kept for this target at most; past it the oldest whole WAL
    /// segments are dropped for this target (counted and logged).
    pub backlog_bytes_max: u64,
    /// Unsent data kept at most this far behind the newest sample (data time, as
    /// retention counts age); older whole WAL segments are dropped for this target.
    pub backlog_age_max_ms: i64,
}

impl RemoteWriteConfig {
    /// A target at `url` with the defaults: every series, 4 shards, 50,000 samples per
    /// request (about 0.5 MB compressed for gauges) sent within 1 s, 30 s timeout,
    /// back-off 30 ms to 5 s, breaker after 5 failures probing every 5 s, backlog up to
    /// 4 GiB and 24 h.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        RemoteWriteConfig {
            name: default_name(&url),
            url,
            auth: Auth::None,
            headers: Vec::new(),
            selectors: Vec::new(),
            extra_labels: Vec::new(),
            shards: 4,
            max_samples_per_request: 50_000,
            batch_send_deadline_ms: 1_000,
            timeout_ms: 30_000,
            min_backoff_ms: 30,
            max_backoff_ms: 5_000,
            retry_after_max_ms: 5 * 60_000,
            breaker_failures: 5,
            breaker_probe_interval_ms: 5_000,
            backlog_bytes_max: 4 << 30,
            backlog_age_max_ms: 24 * 3_600_000,
        }
    }

    /// Parses the command-line form: the URL, then `;key=value` settings.
    ///
    /// ```text
    /// http://mimir:8080/api/v1/push;header=X-Scope-OrgID:team-a;label=replica=a;match={job="node"}
    /// ```
    ///
    /// Keys: `name`, `bearer_token`, `bearer_token_file`, `basic_auth=user:password`,
    /// `header=Name:Value` (repeatable), `match=SELECTOR` (a PromQL selector such as
    /// `up{job=~"node|db"}`; repeatable, any may match), `label=name=value` (repeatable),
    /// `shards`, `max_samples_per_request`, `batch_send_deadline`, `timeout`, `min_backoff`, `max_backoff`,
    /// `retry_after_max`, `breaker_failures`, `breaker_probe_interval` (durations as
    /// `30s`, `250ms`, `5m`), `backlog_bytes_max` (`512MiB`, `4GiB`, or bytes),
    /// `backlog_age_max` (a duration).
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] naming the setting.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut parts = spec.split(';');
        let url = parts.next().unwrap_or("").trim();
        let mut c = RemoteWriteConfig::new(url);
        for part in parts.map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| bad(format!("`{part}`: expected key=value")))?;
            c.set(k.trim(), v.trim())?;
        }
        c.validate()?;
        Ok(c)
    }

    fn set(&mut self, key: &str, v: &str) -> Result<()> {
        let num = |v: &str| v.parse::<u64>().map_err(|_| bad(format!("{key}: `{v}` is not a number")));
        let dur = |v: &str| parse_duration_ms(v).map_err(|_| bad(format!("{key}: `{v}` is not a duration")));
        match key {
            "name" => self.name = v.to_owned(),
            "bearer_token" => self.auth = Auth::Bearer(v.to_owned()),
            "bearer_token_file" => {
                let t = std::fs::read_to_string(v).map_err(|e| bad(format!("bearer_token_file {v}: {e}")))?;
                self.auth = Auth::Bearer(t.trim().to_owned());
            }
            "basic_auth" => {
                let (user, password) = v.split_once(':').ok_or_else(|| bad("basic_auth: expected user:password"))?;
                self.auth = Auth::Basic { user: user.to_owned(), password: password.to_owned() };
            }
            "header" => {
                let (n, val) = v.split_once(':').ok_or_else(|| bad("header: expected Name:Value"))?;
                self.headers.push((n.trim().to_owned(), val.trim().to_owned()));
            }
            "label" => {
                let (n, val) = v.split_once('=').ok_or_else(|| bad("label: expected name=value"))?;
                self.extra_labels.push((n.trim().to_owned(), val.trim().to_owned()));
            }
            "match" => self.selectors.push(parse_selector(v)?),
            "shards" => self.shards = usize::try_from(num(v)?).unwrap_or(usize::MAX),
            "max_samples_per_request" => self.max_samples_per_request = usize::try_from(num(v)?).unwrap_or(usize::MAX),
            "batch_send_deadline" => self.batch_send_deadline_ms = dur(v)?.unsigned_abs(),
            "timeout" => self.timeout_ms = dur(v)?.unsigned_abs(),
            "min_backoff" => self.min_backoff_ms = dur(v)?.unsigned_abs(),
            "max_backoff" => self.max_backoff_ms = dur(v)?.unsigned_abs(),
            "retry_after_max" => self.retry_after_max_ms = dur(v)?.unsigned_abs(),
            "breaker_failures" => self.breaker_failures = u32::try_from(num(v)?).unwrap_or(u32::MAX),
            "breaker_probe_interval" => self.breaker_probe_interval_ms = dur(v)?.unsigned_abs(),
            "backlog_bytes_max" => {
                self.backlog_bytes_max = parse_bytes(v).ok_or_else(|| bad(format!("{key}: `{v}`")))?
            }
            "backlog_age_max" => self.backlog_age_max_ms = dur(v)?,
            _ => return Err(bad(format!("unknown setting `{key}`"))),
        }
        Ok(())
    }

    /// Checks the settings make sense.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if let Some(rest) = self.url.strip_prefix("https://") {
            return Err(bad(format!(
                "https://{rest}: this build has no TLS client; forward to an http:// endpoint (a local \
                 TLS-terminating proxy or agent) instead"
            )));
        }
        if !self.url.starts_with("http://") || self.url.len() <= "http://".len() {
            return Err(bad(format!("remote write url `{}` must start with http://", self.url)));
        }
        if self.name.is_empty()
            || self.name.starts_with('.')
            || !self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(bad(format!("target name `{}`: use [A-Za-z0-9._-], not starting with '.'", self.name)));
        }
        if self.shards == 0 || self.shards > 256 {
            return Err(bad("shards must be 1..=256".to_owned()));
        }
        if self.max_samples_per_request == 0 || self.max_samples_per_request > 1_000_000 {
            return Err(bad("max_samples_per_request must be 1..=1000000".to_owned()));
        }
        if self.batch_send_deadline_ms > 600_000 {
            return Err(bad("batch_send_deadline must be at most 10m".to_owned()));
        }
        if self.min_backoff_ms == 0 || self.max_backoff_ms < self.min_backoff_ms || self.timeout_ms == 0 {
            return Err(bad("timeout and back-off must be positive, max_backoff >= min_backoff".to_owned()));
        }
        if self.breaker_failures == 0 || self.breaker_probe_interval_ms == 0 {
            return Err(bad("breaker_failures and breaker_probe_interval must be positive".to_owned()));
        }
        if self.backlog_age_max_ms <= 0 || self.backlog_bytes_max == 0 {
            return Err(bad("backlog_bytes_max and backlog_age_max must be positive".to_owned()));
        }
        Ok(())
    }

    /// True if a series with these labels is forwarded.
    pub(crate) fn wants(&self, labels: &crate::Labels) -> bool {
        self.selectors.is_empty() || self.selectors.iter().any(|sel| sel.iter().all(|m| m.matches(labels)))
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidOptions(format!("remote write: {}", msg.into()))
}

fn default_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let mut name: String =
        rest.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).take(120).collect();
    while name.ends_with('_') {
        name.pop();
    }
    if name.starts_with('.') || name.is_empty() {
        name.insert(0, 't');
    }
    name
}

/// `up{job="node"}` or `{job=~"a|b"}` into matchers, through the PromQL parser.
fn parse_selector(text: &str) -> Result<Vec<Matcher>> {
    match crate::query::parse_promql(text) {
        Ok(crate::query::Plan::Select(sel)) if matches!(sel.func, crate::query::SeriesFn::Instant { .. }) => {
            Ok(sel.matchers)
        }
        Ok(_) => Err(bad(format!("match `{text}`: expected a plain series selector"))),
        Err(e) => Err(bad(format!("match `{text}`: {e}"))),
    }
}

/// `4096`, `512KiB`, `64MiB`, `4GiB` (also KB/MB/GB as powers of 1000).
fn parse_bytes(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult).filter(|b| *b > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_line_form() -> Result<()> {
        let c = RemoteWriteConfig::parse(
            "http://127.0.0.1:9009/api/v1/push;header=X-Scope-OrgID: team-a;label=replica=a;\
             match=up{job=~\"node|db\"};match={env=\"prod\"};shards=2;timeout=5s;backlog_bytes_max=64MiB;\
             backlog_age_max=2h;basic_auth=u:p:w",
        )?;
        assert_eq!(c.name, "127.0.0.1_9009_api_v1_push");
        assert_eq!(c.headers, vec![("X-Scope-OrgID".to_owned(), "team-a".to_owned())]);
        assert_eq!(c.extra_labels, vec![("replica".to_owned(), "a".to_owned())]);
        assert_eq!(c.selectors.len(), 2);
        assert_eq!(c.selectors[0].len(), 2, "metric name and job");
        assert_eq!((c.shards, c.timeout_ms, c.backlog_bytes_max), (2, 5_000, 64 << 20));
        assert_eq!(c.backlog_age_max_ms, 2 * 3_600_000);
        assert_eq!(c.auth, Auth::Basic { user: "u".into(), password: "p:w".into() });
        let up = crate::Labels::metric("up", [("job", "db")])?;
        let other = crate::Labels::metric("up", [("job", "web")])?;
        let prod = crate::Labels::metric("x", [("env", "prod")])?;
        assert!(c.wants(&up) && c.wants(&prod) && !c.wants(&other));
        Ok(())
    }

    #[test]
    fn refuses_bad_settings() {
        for spec in [
            "",
            "ftp://x",
            "https://x/api/v1/write",
            "http://x;shards=0",
            "http://x;nope=1",
            "http://x;timeout=soon",
            "http://x;match=rate(x[5m])",
            "http://x;name=../etc",
            "http://x;backlog_bytes_max=12parsecs",
        ] {
            assert!(RemoteWriteConfig::parse(spec).is_err(), "{spec} accepted");
        }
    }
}

//! One POST of a remote write body and what its answer means for the sender:
//! 2xx confirmed; 5xx, 429 and network errors retried (with the `Retry-After` the
//! receiver asked for, if any); any other status refused for good.

use super::config::{Auth, RemoteWriteConfig};
use crate::remote_write::{CONTENT_ENCODING, CONTENT_TYPE, VERSION_HEADER_VALUE};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What to do with a request after one attempt.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Confirmed,
    /// Try again later; `after` is the receiver's `Retry-After`, if it sent one.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Never retry as is (a 4xx other than 429): the reason the receiver gave.
    Refused {
        status: u16,
        reason: String,
    },
}

/// A reusable HTTP/1.1 client (keep-alive connections) for one target.
#[derive(Debug)]
pub(crate) struct Client {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
}

/// Response bodies are read (for the reason) up to this many bytes.
const REASON_BYTES_MAX: u64 = 1024;

impl Client {
    pub(crate) fn new(cfg: &RemoteWriteConfig) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(cfg.timeout_ms)))
            .http_status_as_error(false)
            .user_agent(concat!("chronolith/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(cfg.shards.max(1))
            .build()
            .into();
        let mut headers = vec![
            ("Content-Type".to_owned(), CONTENT_TYPE.to_owned()),
            ("Content-Encoding".to_owned(), CONTENT_ENCODING.to_owned()),
            ("X-Prometheus-Remote-Write-Version".to_owned(), VERSION_HEADER_VALUE.to_owned()),
        ];
        match &cfg.auth {
            Auth::None => {}
            Auth::Bearer(t) => headers.push(("Authorization".to_owned(), format!("Bearer {t}"))),
            Auth::Basic { user, password } => {
                headers.push(("Authorization".to_owned(), format!("Basic {}", base64(&format!("{user}:{password}")))));
            }
        }
        headers.extend(cfg.headers.iter().cloned());
        Client { agent, url: cfg.url.clone(), headers }
    }

    pub(crate) fn send(&self, body: &[u8]) -> Answer {
        let mut req = self.agent.post(&self.url);
        for (n, v) in &self.headers {
            req = req.header(n.as_str(), v.as_str());
        }
        let mut resp = match req.send(body) {
            Ok(r) => r,
            Err(e) => return Answer::Retry { reason: e.to_string(), after: None },
        };
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            // Drain the body so the connection can be reused.
            let _ = resp.body_mut().with_config().limit(REASON_BYTES_MAX).lossy_utf8(true).read_to_string();
            return Answer::Confirmed;
        }
        let after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let text = resp.body_mut().with_config().limit(REASON_BYTES_MAX).lossy_utf8(true).read_to_string();
        let reason = format!("HTTP {status}: {}", text.unwrap_or_default().trim());
        if status >= 500 || status == 429 {
            Answer::Retry { reason, after }
        } else {
            Answer::Refused { status, reason }
        }
    }
}

/// `Retry-After`: delay in seconds, or an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// IMF-fixdate (RFC 9110 §5.6.7) to Unix seconds.
fn parse_http_date(v: &str) -> Option<u64> {
    let mut it = v.split_whitespace();
    let _day = it.next()?;
    let d: u64 = it.next()?.parse().ok()?;
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = it.next()?;
    let m = months.iter().position(|x| *x == month)? as u64 + 1;
    let y: u64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|x| x.parse::<u64>().ok());
    let (hh, mm, ss) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // Days from civil (Howard Hinnant), for the Gregorian calendar.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hh * 3_600 + mm * 60 + ss)
}

fn base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= c.len() {
                out.push(char::from(A[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_and_base64() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO), "in the past");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(base64("Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(base64("ab"), "YWI=");
        assert_eq!(base64(""), "");
    }
}

//! Times and durations as a person types them on the command line, and back.
//!
//! Times: RFC 3339 (`2024-01-01T12:00:00Z`, `2024-01-01T12:00:00.5+02:00`; a space may
//! stand for the `T`, no offset means UTC, a bare date is its midnight UTC), Unix seconds
//! with an optional fraction (`1704110400.5`, as the Prometheus API takes them), or
//! relative to the wall clock (`now`, `-1h`, `now-30m`, `now+5m`).
//! Durations: Prometheus's syntax (`15s`, `5m`, `1h30m`, `100ms`, `2d`, `1w`, `1y` = 365 d)
//! or plain seconds (`15`, `0.5`).
//!
//! Hand-written rather than a date crate: the formats are small and fixed, and the civil
//! calendar conversion is the well-known days-from-civil algorithm (Howard Hinnant).

use std::fmt;

const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60 * SECOND_MS;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A time argument before it is resolved against "now".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeArg {
    /// Unix time in milliseconds.
    Absolute(i64),
    /// Milliseconds from the wall clock at the moment the command runs.
    FromNow(i64),
}

impl TimeArg {
    pub fn resolve(self, now_ms: i64) -> i64 {
        match self {
            TimeArg::Absolute(t) => t,
            TimeArg::FromNow(d) => now_ms.saturating_add(d),
        }
    }
}

/// Why a time or duration did not parse; the message says what would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

const TIME_FORMS: &str = "expected RFC 3339 (2024-01-01T12:00:00Z), Unix seconds (1704110400.5) or a time relative to now (now, -1h, now-30m)";

/// Parses a time argument (see the module comment for the forms).
pub fn parse_time(s: &str) -> Result<TimeArg, ParseError> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(TimeArg::FromNow(0));
    }
    let rel = s.strip_prefix("now").unwrap_or(s);
    if let Some(sign) = rel.chars().next().filter(|c| matches!(c, '-' | '+')) {
        let d = &rel[1..];
        // `-1704067200` is a (negative) Unix time; a unit makes it relative.
        if d.starts_with(|c: char| c.is_ascii_digit()) && d.contains(|c: char| c.is_ascii_alphabetic()) {
            let ms = parse_duration(d).map_err(|e| ParseError(format!("{s:?}: {e}")))?;
            return Ok(TimeArg::FromNow(if sign == '-' { -ms } else { ms }));
        }
    }
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        return parse_rfc3339(s).map(TimeArg::Absolute);
    }
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return err(format!("{s:?} is not a time; {TIME_FORMS}"));
        }
        if secs.abs() >= 1e11 {
            return err(format!(
                "{s:?} looks like milliseconds (that would be after the year 5000); give Unix seconds, e.g. {}",
                secs / 1e3
            ));
        }
        return Ok(TimeArg::Absolute((secs * 1e3).round() as i64));
    }
    err(format!("{s:?} is not a time; {TIME_FORMS}"))
}

/// Parses a duration into milliseconds: Prometheus units or plain (fractional) seconds.
pub fn parse_duration(s: &str) -> Result<i64, ParseError> {
    let s = s.trim();
    let forms = "expected a duration such as 15s, 5m, 1h30m, 100ms, 1d, or seconds (15, 0.5)";
    if s.is_empty() {
        return err(format!("empty duration; {forms}"));
    }
    if let Ok(secs) = s.parse::<f64>() {
        if !(0.0..1e13).contains(&secs) {
            return err(format!("{s:?} is not a duration; {forms}"));
        }
        return Ok((secs * 1e3).round() as i64);
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return err(format!("{s:?} is not a duration; {forms}"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| ParseError(format!("{s:?}: number too large")))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => SECOND_MS,
            "m" => MINUTE_MS,
            "h" => HOUR_MS,
            "d" => DAY_MS,
            "w" => 7 * DAY_MS,
            "y" => 365 * DAY_MS,
            u => return err(format!("{s:?}: unknown unit {u:?} (use ms, s, m, h, d, w, y)")),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit_ms)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| ParseError(format!("{s:?} is too long a duration")))?;
    }
    Ok(total)
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH:MM]` to Unix milliseconds.
fn parse_rfc3339(s: &str) -> Result<i64, ParseError> {
    let bad = || {
        ParseError(format!("{s:?} is not an RFC 3339 time (like 2024-01-01T12:00:00Z or 2024-01-01 12:00:00+02:00)"))
    };
    let num = |from: usize, len: usize| -> Result<i64, ParseError> {
        let part = s.get(from..from + len).ok_or_else(bad)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let b = s.as_bytes();
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(7) != Some(&b'-') || !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return Err(bad());
    }
    let mut ms = days_from_civil(year, month, day) * DAY_MS;
    if s.len() == 10 {
        return Ok(ms);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.get(13) != Some(&b':') {
        return Err(bad());
    }
    let (hour, minute) = (num(11, 2)?, num(14, 2)?);
    let mut i = 16;
    let mut second = 0;
    if b.get(i) == Some(&b':') {
        second = num(17, 2)?;
        i = 19;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    ms += hour * HOUR_MS + minute * MINUTE_MS + second.min(59) * SECOND_MS;
    if b.get(i) == Some(&b'.') {
        let digits = s[i + 1..].find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len() - i - 1);
        if digits == 0 {
            return Err(bad());
        }
        // Milliseconds are the engine's resolution: round the rest.
        let frac: f64 = format!("0.{}", &s[i + 1..i + 1 + digits]).parse().map_err(|_| bad())?;
        ms += (frac * 1e3).round() as i64;
        i += 1 + digits;
    }
    let offset_ms = match &s[i..] {
        "" | "Z" | "z" => 0,
        tz if tz.len() == 6 && matches!(tz.as_bytes()[0], b'+' | b'-') && tz.as_bytes()[3] == b':' => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (h * HOUR_MS + m * MINUTE_MS)
        }
        _ => return Err(bad()),
    };
    Ok(ms - offset_ms)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date and time of day (UTC) of a Unix time in ms:
/// `(year, month, day, hour, minute, second, millisecond)`.
pub fn civil(ms: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60, ms.rem_euclid(1000))
}

/// RFC 3339 in UTC: `2024-01-01T12:00:00Z`, with `.250` when there are milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s, frac) = civil(ms);
    if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
    }
}

/// A duration in the largest Prometheus units that express it exactly (`1h30m`, `15s`).
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms.unsigned_abs();
    if ms < 0 {
        out.push('-');
    }
    for (unit, len) in [("d", DAY_MS), ("h", HOUR_MS), ("m", MINUTE_MS), ("s", SECOND_MS), ("ms", 1)] {
        let len = len as u64;
        if rest >= len {
            out.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    out
}

/// Wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN1_2024: i64 = 1_704_067_200_000;

    #[test]
    fn rfc3339_forms() {
        assert_eq!(parse_time("2024-01-01T00:00:00Z"), Ok(TimeArg::Absolute(JAN1_2024)));
        assert_eq!(parse_time("2024-01-01"), Ok(TimeArg::Absolute(JAN1_2024)));
        assert_eq!(parse_time("2024-01-01 01:30"), Ok(TimeArg::Absolute(JAN1_2024 + 90 * MINUTE_MS)));
        assert_eq!(parse_time("2024-01-01T02:00:00.25+02:00"), Ok(TimeArg::Absolute(JAN1_2024 + 250)));
        assert_eq!(parse_time("2023-12-31t19:00:00-05:00"), Ok(TimeArg::Absolute(JAN1_2024)));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Ok(TimeArg::Absolute(951_782_400_000)));
        assert_eq!(parse_time("1969-12-31T23:59:59.999Z"), Ok(TimeArg::Absolute(-1)));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00+0200",
            "2024-01-01Tnoon",
            "2024-01-01T00:00:00.Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unix_seconds_and_relative() {
        assert_eq!(parse_time("1704067200"), Ok(TimeArg::Absolute(JAN1_2024)));
        assert_eq!(parse_time("1704067200.5"), Ok(TimeArg::Absolute(JAN1_2024 + 500)));
        assert_eq!(parse_time("now"), Ok(TimeArg::FromNow(0)));
        assert_eq!(parse_time("-1h"), Ok(TimeArg::FromNow(-HOUR_MS)));
        assert_eq!(parse_time("now-1h30m"), Ok(TimeArg::FromNow(-90 * MINUTE_MS)));
        assert_eq!(parse_time("now+5m"), Ok(TimeArg::FromNow(5 * MINUTE_MS)));
        assert_eq!(TimeArg::FromNow(-HOUR_MS).resolve(JAN1_2024), JAN1_2024 - HOUR_MS);
        let ms = parse_time("1704067200000").map_err(|e| e.to_string());
        assert!(ms.as_ref().is_err_and(|e| e.contains("milliseconds")), "{ms:?}");
        for bad in ["yesterday", "-1x", "now-", "", "NaN", "-"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(15_000));
        assert_eq!(parse_duration("1h30m"), Ok(90 * MINUTE_MS));
        assert_eq!(parse_duration("100ms"), Ok(100));
        assert_eq!(parse_duration("1w"), Ok(7 * DAY_MS));
        assert_eq!(parse_duration("1y"), Ok(365 * DAY_MS));
        assert_eq!(parse_duration("60"), Ok(60_000));
        assert_eq!(parse_duration("0.5"), Ok(500));
        for bad in ["", "1.5m", "m", "5mm", "-5s", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(90 * MINUTE_MS), "1h30m");
        assert_eq!(format_duration(15_000), "15s");
        assert_eq!(format_duration(DAY_MS + 250), "1d250ms");
    }

    #[test]
    fn formats_back() {
        assert_eq!(rfc3339(JAN1_2024), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(JAN1_2024 + 250), "2024-01-01T00:00:00.250Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        for t in [0, JAN1_2024, 951_782_400_000 + 90_061_000, -86_400_000 * 400] {
            assert_eq!(parse_time(&rfc3339(t)), Ok(TimeArg::Absolute(t)));
        }
    }
}

//! The write endpoints: Prometheus remote write 1.0, InfluxDB line protocol (v1 and v2
//! paths) and Prometheus text import. Each request is read under the body limit on the
//! executor, then decoded and appended under a write slot (in place, on a worker thread
//! tokio relieves of its other tasks), and answered only after the append returned, so a
//! 2xx means durable.

use super::body::{self, BodyError};
use super::ingest::{new_labels, Outcome, Pending, Reason};
use super::series_cache::SeriesCache;
use super::{AppState, Shared};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chronolith::formats::{influx, prometheus, Line, Parsed};
use chronolith::remote_write::borrowed::{DecodeError, Decoded};
use chronolith::{Db, Error};
use std::cell::RefCell;
use std::collections::HashMap;

/// One series cache per protocol: their keys are different encodings of a series.
#[derive(Debug)]
pub struct Caches {
    pub remote_write: SeriesCache,
    pub influx: SeriesCache,
    pub prometheus_text: SeriesCache,
}

impl Caches {
    pub fn new(bytes_max: usize) -> Self {
        let each = bytes_max / 3;
        Self {
            remote_write: SeriesCache::new(each),
            influx: SeriesCache::new(each),
            prometheus_text: SeriesCache::new(each),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    RemoteWrite,
    InfluxV1,
    InfluxV2,
    PrometheusText,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Self::RemoteWrite => "remote_write",
            Self::InfluxV1 | Self::InfluxV2 => "influx",
            Self::PrometheusText => "prometheus_text",
        }
    }
}

/// A request that failed as a whole: nothing of it was stored.
#[derive(Debug)]
pub struct WriteError {
    status: StatusCode,
    message: String,
    /// Overload and full disk: the client should retry later.
    retry_after: bool,
}

impl WriteError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: false }
    }

    fn retry(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: true }
    }

    fn unavailable() -> Self {
        Self::retry(StatusCode::SERVICE_UNAVAILABLE, "not ready: the database is opening (WAL replay) or closing")
    }

    /// An engine failure of the whole append.
    fn engine(e: &Error) -> Self {
        match e {
            Error::Overloaded { .. } => Self::retry(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            _ if e.is_storage_full() => Self::retry(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("disk full, nothing of this request was stored: {e}"),
            ),
            Error::Closed => Self::retry(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("nothing of this request was stored: {e}")),
        }
    }
}

impl From<BodyError> for WriteError {
    fn from(e: BodyError) -> Self {
        Self::new(e.status, e.message)
    }
}

pub async fn remote_write(State(st): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let db = st.db().map_err(|_| WriteError::unavailable())?;
        match body::content_encoding(&headers).as_deref() {
            None | Some("snappy") => {}
            Some(other) => {
                return Err(WriteError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                    "remote write bodies are snappy-compressed protobuf; Content-Encoding {other:?} is not supported"
                ),
                ))
            }
        }
        // Remote write 2.0 uses other messages under the same path; it names itself in
        // the content type (`proto=io.prometheus.write.v2.Request`).
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if content_type.contains("io.prometheus.write.v2") {
            return Err(WriteError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type {content_type:?}: only remote write 1.0 (prometheus.WriteRequest) is supported"),
            ));
        }
        let bytes = body::read(body, &headers, st.limits.body_bytes_max).await?;
        run_blocking(&st, move |st| ingest_remote_write(st, &db, &bytes)).await
    }
    .await;
    respond(&st, Protocol::RemoteWrite, result)
}

pub async fn influx_v1(State(st): State<Shared>, RawQuery(q): RawQuery, headers: HeaderMap, body: Body) -> Response {
    influx(st, Protocol::InfluxV1, q, headers, body).await
}

pub async fn influx_v2(State(st): State<Shared>, RawQuery(q): RawQuery, headers: HeaderMap, body: Body) -> Response {
    influx(st, Protocol::InfluxV2, q, headers, body).await
}

async fn influx(st: Shared, protocol: Protocol, q: Option<String>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let precision = influx_precision(q.as_deref().unwrap_or_default())?;
        let text = text_body(&st, &headers, body).await?;
        run_blocking(&st, move |st| {
            let db = st.db().map_err(|_| WriteError::unavailable())?;
            ingest_text(st, &db, &text, &st.caches.influx, &|line| influx::parse_line(line, precision))
        })
        .await
    }
    .await;
    respond(&st, protocol, result)
}

pub async fn prometheus_text(State(st): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let text = text_body(&st, &headers, body).await?;
        run_blocking(&st, move |st| {
            let db = st.db().map_err(|_| WriteError::unavailable())?;
            ingest_text(st, &db, &text, &st.caches.prometheus_text, &|line| prometheus::parse_line(line, false))
        })
        .await
    }
    .await;
    respond(&st, Protocol::PrometheusText, result)
}

async fn text_body(st: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, WriteError> {
    if st.db.read().is_none() {
        return Err(WriteError::unavailable());
    }
    let encoding = body::content_encoding(headers);
    let bytes = body::read(body, headers, st.limits.body_bytes_max).await?;
    Ok(body::decode_text_body(bytes, encoding.as_deref(), st.limits.decompressed_bytes_max)?)
}

/// `precision=` of InfluxDB 1.x (`n`, `ns`, `u`, `us`, `µ`, `ms`, `s`) and 2.x.
fn influx_precision(query: &str) -> Result<influx::Precision, WriteError> {
    let p = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "precision").map(|(_, v)| v.into_owned());
    Ok(match p.as_deref() {
        None | Some("" | "n" | "ns") => influx::Precision::Ns,
        Some("u" | "us" | "µ") => influx::Precision::Us,
        Some("ms") => influx::Precision::Ms,
        Some("s") => influx::Precision::S,
        Some(other) => {
            return Err(WriteError::new(
                StatusCode::BAD_REQUEST,
                format!("unsupported precision {other:?}; use ns, us, ms or s"),
            ))
        }
    })
}

/// Runs `f` under a write slot, waiting for a slot at most `--slot-wait-s`. Needs the
/// multi-threaded runtime `serve` builds (`block_in_place`).
async fn run_blocking<F>(st: &Shared, f: F) -> Result<Outcome, WriteError>
where
    F: FnOnce(&AppState) -> Result<Outcome, WriteError> + Send + 'static,
{
    let wait = st.limits.slot_wait();
    let Ok(Ok(permit)) = tokio::time::timeout(wait, st.writes.clone().acquire_owned()).await else {
        st.metrics.overloaded("write_slots");
        return Err(WriteError::retry(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "overloaded: {} write requests in flight, none finished within {:.1} s (--writes-in-flight-max)",
                st.limits.writes_in_flight_max, st.limits.slot_wait_s
            ),
        ));
    };
    let _permit = permit;
    // In place on this worker thread, which tokio first relieves of its other tasks (a
    // spare thread takes them, so queries and other connections go on). Handing the
    // work to the blocking pool instead cost two thread wake-ups per request on busy
    // cores and moved the body to another core's cache: remote-write ingest was 15%
    // slower that way (`chronolith bench remote-write`, see BENCHMARKS.md).
    let run = std::panic::AssertUnwindSafe(move || f(st));
    tokio::task::block_in_place(move || std::panic::catch_unwind(run)).unwrap_or_else(|_| {
        Err(WriteError::new(StatusCode::INTERNAL_SERVER_ERROR, "write task failed (a bug: it panicked)"))
    })
}

thread_local! {
    /// Per thread that runs writes: the decompression buffer and the decoder's
    /// vectors, reused from request to request.
    static RW_SCRATCH: RefCell<(Vec<u8>, Decoded, Vec<Option<chronolith::SeriesId>>)> = RefCell::default();
}

/// Scratch kept by a thread between requests; a bigger buffer (one unusually
/// large request) is freed afterwards, so idle threads do not hold the decompression
/// limit's worth of memory each.
const SCRATCH_KEEP_BYTES: usize = 16 << 20;

fn ingest_remote_write(st: &AppState, db: &Db, body: &[u8]) -> Result<Outcome, WriteError> {
    let result =
        RW_SCRATCH.with_borrow_mut(|(raw, decoded, found)| decode_and_append(st, db, body, raw, decoded, found));
    RW_SCRATCH.with_borrow_mut(|(raw, decoded, found)| {
        if raw.len() > SCRATCH_KEEP_BYTES {
            *raw = Vec::new();
            *decoded = Decoded::default();
            *found = Vec::new();
        }
    });
    result
}

fn decode_and_append(
    st: &AppState,
    db: &Db,
    body: &[u8],
    raw: &mut Vec<u8>,
    decoded: &mut Decoded,
    found: &mut Vec<Option<chronolith::SeriesId>>,
) -> Result<Outcome, WriteError> {
    let bad = |m: String| WriteError::new(StatusCode::BAD_REQUEST, m);
    let limit = st.limits.decompressed_bytes_max;
    let len = snap::raw::decompress_len(body).map_err(|e| bad(format!("invalid snappy block: {e}")))?;
    if len > limit {
        return Err(WriteError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request decompresses to {len} bytes, over the limit of {limit} bytes (--decompressed-bytes-max)"),
        ));
    }
    // The buffer keeps its largest size: growing it zeroes the new part once,
    // instead of every request.
    if raw.len() < len {
        raw.resize(len, 0);
    }
    let n = snap::raw::Decoder::new()
        .decompress(body, &mut raw[..len])
        .map_err(|e| bad(format!("invalid snappy block: {e}")))?;
    let buf: &[u8] = &raw[..n];
    decoded.decode(buf, st.limits.samples_per_request_max).map_err(|e| match e {
        DecodeError::TooManySamples { .. } => WriteError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        DecodeError::Protobuf(_) => bad(e.to_string()),
    })?;
    let cache = &st.caches.remote_write;
    cache.lookup_all(decoded.series.len(), |i| decoded.key(buf, i), found);
    let mut pending = Pending::with_capacity(decoded.samples.len());
    let label_limits = st.limits.label_limits();
    for (i, s) in decoded.series.iter().enumerate() {
        let origin = i as u32;
        if s.histograms > 0 {
            pending.rejections.add(Reason::NativeHistogram, s.histograms, || describe_rw(buf, decoded, i));
        }
        let samples = &decoded.samples[s.samples.clone()];
        if samples.is_empty() {
            continue;
        }
        if let Some(id) = found[i] {
            for &(t, v) in samples {
                pending.add_ref(id, t, v, origin);
            }
            continue;
        }
        let labels = match decoded.labels(buf, i) {
            Ok(pairs) => match pairs
                .into_iter()
                .map(|(n, v)| Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?)))
                .collect::<Option<Vec<_>>>()
            {
                Some(p) => new_labels(p, &label_limits),
                None => Err("a label name or value is not valid UTF-8".into()),
            },
            Err(e) => Err(e.to_string()),
        };
        match labels {
            Ok(labels) => {
                let k = pending.new_series(labels, decoded.key(buf, i));
                for &(t, v) in samples {
                    pending.add_new(k, t, v, origin);
                }
            }
            Err(why) => pending
                .rejections
                .add(Reason::InvalidLabels, samples.len(), || format!("{}: {why}", describe_rw(buf, decoded, i))),
        }
    }
    pending.append(db, cache, &|i| describe_rw(buf, decoded, i as usize)).map_err(|e| WriteError::engine(&e))
}

/// A remote-write series as `name{a="b", ...}` for messages (lossy for bad UTF-8).
fn describe_rw(buf: &[u8], d: &Decoded, i: usize) -> String {
    let Ok(labels) = d.labels(buf, i) else { return "(a series with malformed labels)".into() };
    let mut name = String::new();
    let mut rest = Vec::new();
    for (n, v) in labels {
        let (n, v) = (String::from_utf8_lossy(n), String::from_utf8_lossy(v));
        if n == "__name__" {
            name = v.into_owned();
        } else {
            rest.push(format!("{n}={v:?}"));
        }
    }
    format!("{name}{{{}}}", rest.join(", "))
}

/// Line-oriented text (InfluxDB line protocol or Prometheus text): every line parsed
/// first (a malformed one is reported with its number and skipped), then one append.
fn ingest_text(
    st: &AppState,
    db: &Db,
    text: &[u8],
    cache: &SeriesCache,
    parse: &dyn Fn(&str) -> Result<Line, String>,
) -> Result<Outcome, WriteError> {
    let now = now_ms();
    let samples_max = st.limits.samples_per_request_max;
    let mut parsed: Vec<(u32, Parsed)> = Vec::new();
    let mut pending = Pending::default();
    for (no, line) in text.split(|&b| b == b'\n').enumerate() {
        let no = (no + 1) as u32;
        let line = match std::str::from_utf8(line) {
            Ok(l) => l.trim_end_matches('\r'),
            Err(_) => {
                pending.rejections.add(Reason::Malformed, 1, || format!("line {no}: not valid UTF-8"));
                continue;
            }
        };
        match parse(line) {
            Ok(Line::Samples(s)) => {
                if parsed.len() + s.len() > samples_max {
                    return Err(WriteError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request holds more than {samples_max} samples (--samples-per-request-max)"),
                    ));
                }
                parsed.extend(s.into_iter().map(|p| (no, p)));
            }
            Ok(Line::Skip) => {}
            Ok(Line::Eof) => break,
            Err(e) => pending.rejections.add(Reason::Malformed, 1, || format!("line {no}: {e}")),
        }
    }
    let mut found = Vec::new();
    cache.lookup_all(parsed.len(), |i| parsed[i].1.key.as_bytes(), &mut found);
    let label_limits = st.limits.label_limits();
    let mut fresh: HashMap<&str, Option<u32>> = HashMap::new();
    for (i, (no, p)) in parsed.iter().enumerate() {
        let t = p.ts_ms.unwrap_or(now);
        if let Some(id) = found[i] {
            pending.add_ref(id, t, p.value, *no);
            continue;
        }
        let k = match fresh.get(p.key.as_str()) {
            Some(k) => *k,
            None => {
                let k = match new_labels(p.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())), &label_limits) {
                    Ok(labels) => Some(pending.new_series(labels, p.key.as_bytes())),
                    Err(why) => {
                        pending.rejections.add(Reason::InvalidLabels, 1, || format!("line {no}: {why}"));
                        None
                    }
                };
                fresh.insert(&p.key, k);
                k
            }
        };
        if let Some(k) = k {
            pending.add_new(k, t, p.value, *no);
        }
    }
    pending.append(db, cache, &|no| format!("line {no}")).map_err(|e| WriteError::engine(&e))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// 204 when everything was stored; 400 naming what was refused after a partial
/// rejection (the rest is stored and durable); the whole-request error otherwise.
fn respond(st: &AppState, protocol: Protocol, result: Result<Outcome, WriteError>) -> Response {
    match result {
        Ok(o) => {
            st.metrics.samples_written(protocol.label(), o.stored, o.duplicates, &o.rejections);
            if o.rejections.is_empty() {
                return StatusCode::NO_CONTENT.into_response();
            }
            let message = format!(
                "stored {} samples ({} exact duplicates dropped), rejected {}: {}",
                o.stored + o.duplicates,
                o.duplicates,
                o.rejections.total(),
                o.rejections.describe()
            );
            error_body(protocol, StatusCode::BAD_REQUEST, &message)
        }
        Err(e) => {
            st.metrics.write_failed(protocol.label(), e.status.as_u16());
            let mut r = error_body(protocol, e.status, &e.message);
            if e.retry_after {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            r
        }
    }
}

/// Error bodies as each protocol's clients expect them: InfluxDB 1.x `{"error": ...}`,
/// 2.x `{"code": ..., "message": ...}`, plain text for Prometheus.
fn error_body(protocol: Protocol, status: StatusCode, message: &str) -> Response {
    match protocol {
        Protocol::InfluxV1 => (status, axum_json(&serde_json::json!({ "error": message }))).into_response(),
        Protocol::InfluxV2 => {
            let code = if status.is_client_error() { "invalid" } else { "internal error" };
            (status, axum_json(&serde_json::json!({ "code": code, "message": message }))).into_response()
        }
        Protocol::RemoteWrite | Protocol::PrometheusText => (status, format!("{message}\n")).into_response(),
    }
}

fn axum_json(v: &serde_json::Value) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string())
}

//! The Prometheus HTTP query API subset Grafana's Prometheus data source uses, with
//! Prometheus's JSON shapes and error format. Evaluation runs on the blocking pool under
//! a query slot, through the same planner as `Db::query_promql` (rollup tiers where
//! they answer exactly, raw data elsewhere).
//!
//! `/api/v1/series`, `/labels` and `/label/NAME/values` answer from the series index,
//! which is not indexed by time: `start`/`end` are checked but every matching series is
//! listed, as if the range covered all data (Prometheus narrows to the blocks the range
//! touches, a superset of the same kind).

use super::limits::STEPS_MAX;
use super::params::{write_str, write_timestamp, write_value, Params};
use super::{AppState, Shared};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chronolith::query::{self, Limit, Parsed, Plan, SeriesFn, TimeRange};
use chronolith::{Db, Labels, Matcher, SeriesId};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `/api/v1/status/buildinfo` reports as `version`: the Prometheus release whose
/// query semantics Chronolith follows (left-open windows), so clients that switch
/// features on version see a Prometheus they know. Chronolith's own version is in
/// `chronolithVersion`.
const PROMETHEUS_COMPAT_VERSION: &str = "3.0.0";

/// An answer in Prometheus's error format.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn bad_data(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, kind: "bad_data", message: message.into() }
    }

    fn execution(message: impl Into<String>) -> Self {
        Self { status: StatusCode::UNPROCESSABLE_ENTITY, kind: "execution", message: message.into() }
    }

    fn unavailable(message: impl Into<String>) -> Self {
        Self { status: StatusCode::SERVICE_UNAVAILABLE, kind: "unavailable", message: message.into() }
    }

    fn internal(message: impl Into<String>) -> Self {
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, kind: "internal", message: message.into() }
    }

    fn from_query(e: &query::Error) -> Self {
        match e {
            query::Error::Parse(_) | query::Error::Unsupported { .. } | query::Error::InvalidQuery(_) => {
                Self::bad_data(e.to_string())
            }
            query::Error::LimitExceeded { limit: Limit::Steps, .. } => Self::bad_data(format!(
                "exceeded maximum resolution of {STEPS_MAX} points per timeseries. Try decreasing the query resolution (?step=XX)"
            )),
            query::Error::LimitExceeded { .. } | query::Error::DuplicateLabelSet(_) => Self::execution(e.to_string()),
            query::Error::DeadlineExceeded { .. } => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "timeout",
                message: format!("query timed out in expression evaluation: {e}"),
            },
            _ => Self::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = String::from(r#"{"status":"error","errorType":""#);
        body.push_str(self.kind);
        body.push_str(r#"","error":"#);
        write_str(&mut body, &self.message);
        body.push('}');
        json(self.status, body)
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn success(data: &str) -> Response {
    json(StatusCode::OK, format!(r#"{{"status":"success","data":{data}}}"#))
}

type ApiResult = Result<Response, ApiError>;

fn finish(r: ApiResult) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

/// Parameters from the URL and, for POST, the form body.
async fn params(
    st: &AppState,
    method: &Method,
    query: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Params, ApiError> {
    if *method != Method::POST {
        return Ok(Params::parse(query.as_deref(), None));
    }
    let form = super::body::read(body, headers, st.limits.body_bytes_max).await.map_err(|e| ApiError {
        status: e.status,
        kind: "bad_data",
        message: e.message,
    })?;
    Ok(Params::parse(query.as_deref(), Some(&form)))
}

fn db(st: &AppState) -> Result<Arc<Db>, ApiError> {
    st.db().map_err(|_| ApiError::unavailable("not ready: the database is opening (WAL replay) or closing"))
}

/// Runs an evaluation on the blocking pool under a query slot.
async fn evaluate<T: Send + 'static>(
    st: &Shared,
    f: impl FnOnce(&Db) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let db = db(st)?;
    let Ok(Ok(permit)) = tokio::time::timeout(st.limits.slot_wait(), st.queries.clone().acquire_owned()).await else {
        st.metrics.overloaded("query_slots");
        return Err(ApiError::unavailable(format!(
            "overloaded: {} queries running, none finished within {:.1} s (--queries-in-flight-max)",
            st.limits.queries_in_flight_max, st.limits.slot_wait_s
        )));
    };
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f(&db)
    })
    .await
    .unwrap_or_else(|e| Err(ApiError::internal(format!("query task failed: {e}"))))
}

fn timeout(p: &Params) -> Result<Option<Duration>, ApiError> {
    let ms = p.duration("timeout").map_err(ApiError::bad_data)?;
    Ok(ms.map(|ms| Duration::from_millis(ms.max(0) as u64)))
}

pub async fn query(st: State<Shared>, method: Method, q: RawQuery, headers: HeaderMap, body: Body) -> Response {
    promql_endpoint(st, "query", method, q, headers, body, instant_range, |range, e| match e {
        Evaluated::Scalar(v) => scalar_json(range.start, v),
        Evaluated::Series(series) => vector_json(range.start, &series),
    })
    .await
}

pub async fn query_range(st: State<Shared>, method: Method, q: RawQuery, headers: HeaderMap, body: Body) -> Response {
    promql_endpoint(st, "query_range", method, q, headers, body, range_params, |range, e| match e {
        // A scalar over a range is a matrix of one series without labels.
        Evaluated::Scalar(v) => {
            let points =
                (0..=(range.end - range.start) / range.step).map(|i| (range.start + i * range.step, v)).collect();
            matrix_json(&[query::SeriesResult { labels: Labels::default(), points }])
        }
        Evaluated::Series(series) => matrix_json(&series),
    })
    .await
}

/// `time` (default now) as a one-step range.
fn instant_range(p: &Params) -> Result<TimeRange, ApiError> {
    let t = p.time("time", crate::timeparse::now_ms()).map_err(ApiError::bad_data)?;
    Ok(TimeRange { start: t, end: t, step: 1 })
}

/// `start`, `end`, `step`, checked as Prometheus checks them.
fn range_params(p: &Params) -> Result<TimeRange, ApiError> {
    let start = p.required_time("start").map_err(ApiError::bad_data)?;
    let end = p.required_time("end").map_err(ApiError::bad_data)?;
    let step = p
        .duration("step")
        .map_err(ApiError::bad_data)?
        .ok_or_else(|| ApiError::bad_data("missing parameter \"step\""))?;
    if end < start {
        return Err(ApiError::bad_data("end timestamp must not be before start time"));
    }
    if step <= 0 {
        return Err(ApiError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step >= STEPS_MAX as i64 {
        return Err(ApiError::bad_data(format!(
            "exceeded maximum resolution of {STEPS_MAX} points per timeseries. Try decreasing the query resolution (?step=XX)"
        )));
    }
    Ok(TimeRange { start, end, step })
}

/// What `/query` and `/query_range` share: parameters, limits, evaluation on the pool,
/// the answer's encoding and the latency metric.
#[expect(clippy::too_many_arguments, reason = "the extractors both handlers take, plus what differs between them")]
async fn promql_endpoint(
    State(st): State<Shared>,
    endpoint: &'static str,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
    range_of: fn(&Params) -> Result<TimeRange, ApiError>,
    encode: fn(TimeRange, Evaluated) -> String,
) -> Response {
    let started = Instant::now();
    let r = async {
        let p = params(&st, &method, q, &headers, body).await?;
        let promql = p.required("query").map_err(ApiError::bad_data)?.to_string();
        let range = range_of(&p)?;
        let limits = st.limits.query_limits(timeout(&p)?);
        let body = evaluate(&st, move |db| Ok(encode(range, run(db, &promql, range, &limits)?))).await?;
        Ok(success(&body))
    }
    .await;
    st.metrics.query_done(endpoint, started.elapsed());
    finish(r)
}

enum Evaluated {
    Scalar(f64),
    Series(Vec<query::SeriesResult>),
}

fn run(db: &Db, promql: &str, range: TimeRange, limits: &query::Limits) -> Result<Evaluated, ApiError> {
    let plan = query::parse_promql_expr(promql).map_err(|e| ApiError::from_query(&e))?;
    match plan {
        Parsed::Scalar(v) => Ok(Evaluated::Scalar(v)),
        Parsed::Vector(plan) => {
            let planner = query::TierPlanner::new(db.engine());
            query::evaluate_with(db.engine(), &plan, range, limits, &planner)
                .map(|r| Evaluated::Series(r.series))
                .map_err(|e| ApiError::from_query(&e))
        }
    }
}

fn write_metric(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, n);
        out.push(':');
        write_str(out, v);
    }
    out.push('}');
}

fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push_str(",\"");
    write_value(out, v);
    out.push_str("\"]");
}

fn scalar_json(t: i64, v: f64) -> String {
    let mut out = String::from(r#"{"resultType":"scalar","result":"#);
    write_point(&mut out, t, v);
    out.push('}');
    out
}

fn vector_json(t: i64, series: &[query::SeriesResult]) -> String {
    let mut out = String::from(r#"{"resultType":"vector","result":["#);
    let mut first = true;
    for s in series {
        let Some(&(_, v)) = s.points.iter().find(|(pt, _)| *pt == t) else { continue };
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push_str(r#"{"metric":"#);
        write_metric(&mut out, &s.labels);
        out.push_str(r#","value":"#);
        write_point(&mut out, t, v);
        out.push('}');
    }
    out.push_str("]}");
    out
}

fn matrix_json(series: &[query::SeriesResult]) -> String {
    let mut out = String::from(r#"{"resultType":"matrix","result":["#);
    let mut first = true;
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        out.push_str(r#"{"metric":"#);
        write_metric(&mut out, &s.labels);
        out.push_str(r#","values":["#);
        for (i, &(t, v)) in s.points.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_point(&mut out, t, v);
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out
}

/// The matchers of each `match[]` selector (each must be a plain series selector).
fn selectors(p: &Params, required: bool) -> Result<Option<Vec<Vec<Matcher>>>, ApiError> {
    let given = p.all("match[]");
    if given.is_empty() {
        return if required { Err(ApiError::bad_data("no match[] parameter provided")) } else { Ok(None) };
    }
    let mut out = Vec::with_capacity(given.len());
    for s in given {
        match query::parse_promql(s) {
            Ok(Plan::Select(sel)) if matches!(sel.func, SeriesFn::Instant { .. }) => out.push(sel.matchers),
            Ok(_) => return Err(ApiError::bad_data(format!("match[] {s:?} is not a series selector"))),
            Err(e) => return Err(ApiError::bad_data(format!("match[] {s:?}: {e}"))),
        }
    }
    Ok(Some(out))
}

/// Series ids matching any of the selectors, bounded by the query series limit.
fn matching(db: &Db, sels: &[Vec<Matcher>], max: u64) -> Result<Vec<SeriesId>, ApiError> {
    let mut ids = BTreeSet::new();
    for m in sels {
        ids.extend(db.engine().registry().select(m));
        if ids.len() as u64 > max {
            return Err(ApiError::execution(format!("more than {max} series match (--query-series-max)")));
        }
    }
    Ok(ids.into_iter().collect())
}

fn check_range(p: &Params) -> Result<(), ApiError> {
    let start = p.time("start", i64::MIN).map_err(ApiError::bad_data)?;
    let end = p.time("end", i64::MAX).map_err(ApiError::bad_data)?;
    if end < start {
        return Err(ApiError::bad_data("end timestamp must not be before start time"));
    }
    Ok(())
}

fn string_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, s);
    }
    out.push(']');
    out
}

pub async fn series(
    State(st): State<Shared>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    finish(
        async {
            let p = params(&st, &method, q, &headers, body).await?;
            check_range(&p)?;
            let sels = selectors(&p, true)?.unwrap_or_default();
            let max = st.limits.query_series_max;
            let body = evaluate(&st, move |db| {
                let mut labels: Vec<Arc<Labels>> =
                    matching(db, &sels, max)?.into_iter().filter_map(|id| db.engine().registry().labels(id)).collect();
                labels.sort();
                let mut out = String::from("[");
                for (i, l) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_metric(&mut out, l);
                }
                out.push(']');
                Ok(out)
            })
            .await?;
            Ok(success(&body))
        }
        .await,
    )
}

pub async fn labels(
    st: State<Shared>,
    method: Method,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let p = match params(&st, &method, q, &headers, body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    label_strings(st, p, |reg| reg.label_names(), |l, out| out.extend(l.iter().map(|(n, _)| n.to_string()))).await
}

pub async fn label_values(st: State<Shared>, Path(name): Path<String>, RawQuery(q): RawQuery) -> Response {
    if !valid_label_name(&name) {
        return ApiError::bad_data(format!("invalid label name: {name:?}")).into_response();
    }
    let p = Params::parse(q.as_deref(), None);
    let of_series = name.clone();
    label_strings(
        st,
        p,
        move |reg| reg.label_values(&name),
        move |l, out| {
            let v = l.get(&of_series);
            if !v.is_empty() {
                out.insert(v.to_string());
            }
        },
    )
    .await
}

/// A sorted list of strings from the whole index (`all`), or, with `match[]`, from the
/// matching series (`of_series` adds each one's strings).
async fn label_strings(
    State(st): State<Shared>,
    p: Params,
    all: impl FnOnce(&chronolith_engine::Registry) -> Vec<String> + Send + 'static,
    of_series: impl Fn(&Labels, &mut BTreeSet<String>) + Send + 'static,
) -> Response {
    let r = async {
        check_range(&p)?;
        let sels = selectors(&p, false)?;
        let max = st.limits.query_series_max;
        let body = evaluate(&st, move |db| {
            let reg = db.engine().registry();
            let strings: Vec<String> = match sels {
                None => all(reg),
                Some(sels) => {
                    let mut set = BTreeSet::new();
                    for l in matching(db, &sels, max)?.into_iter().filter_map(|id| reg.labels(id)) {
                        of_series(&l, &mut set);
                    }
                    set.into_iter().collect()
                }
            };
            Ok(string_list(strings.iter().map(String::as_str)))
        })
        .await?;
        Ok(success(&body))
    };
    finish(r.await)
}

fn valid_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Metric metadata (type, help) is not stored: an empty answer, as Prometheus gives
/// for metrics it has no metadata for.
pub async fn metadata() -> Response {
    success("{}")
}

/// Exemplars are not stored: always none.
pub async fn query_exemplars() -> Response {
    success("[]")
}

/// No recording or alerting rules run here (Grafana asks when it lists alert rules).
pub async fn rules() -> Response {
    success(r#"{"groups":[]}"#)
}

pub async fn buildinfo() -> Response {
    let v = serde_json::json!({
        "version": PROMETHEUS_COMPAT_VERSION,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "chronolithVersion": env!("CARGO_PKG_VERSION"),
    });
    success(&v.to_string())
}

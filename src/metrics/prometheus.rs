//! A small client for the Prometheus HTTP API (instant and range queries) and the SRE
//! workbook's multi-window, multi-burn-rate maths for error-budget alerts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::probe::transport::root_cause;
use crate::render::Severity;

/// Labels of one series, sorted, so they print the same way every time.
pub type Labels = BTreeMap<String, String>;

/// One series' value at the query time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels.
    pub labels: Labels,
    /// The value (may be NaN or ±Inf, as Prometheus says).
    pub value: f64,
}

/// One series over a range: `(unix seconds, value)` points, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// The points, oldest first.
    pub points: Vec<(f64, f64)>,
}

/// What a query evaluated to, by Prometheus' `resultType`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector (from `query_range`).
    Matrix(Vec<Series>),
    /// A scalar.
    Scalar(f64),
    /// A string literal.
    String(String),
}

/// A query's answer and any warnings Prometheus attached to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The result.
    pub value: QueryValue,
    /// Warnings, e.g. a query touching too much data.
    pub warnings: Vec<String>,
}

impl Answer {
    /// Instant-query samples; a scalar counts as one series without labels.
    pub fn samples(&self) -> Vec<Sample> {
        match &self.value {
            QueryValue::Vector(samples) => samples.clone(),
            QueryValue::Scalar(v) => vec![Sample {
                labels: Labels::new(),
                value: *v,
            }],
            QueryValue::Matrix(series) => series
                .iter()
                .filter_map(|s| {
                    s.points.last().map(|(_, v)| Sample {
                        labels: s.labels.clone(),
                        value: *v,
                    })
                })
                .collect(),
            QueryValue::String(_) => Vec::new(),
        }
    }
}

/// Why a query got no usable answer; each message names what to check.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromError {
    /// Nothing answered (refused, DNS, reset).
    #[error(
        "cannot reach Prometheus at {url}: {reason}; is `url:` in the runbook right and the server up?"
    )]
    Unreachable {
        /// The request URL, without the query.
        url: String,
        /// Innermost cause, e.g. `Connection refused (os error 111)`.
        reason: String,
    },
    /// No answer in time.
    #[error(
        "Prometheus at {url} did not answer within {after:?}; the query may be too heavy or the server overloaded"
    )]
    Timeout {
        /// The request URL.
        url: String,
        /// How long we waited.
        after: Duration,
    },
    /// Prometheus refused the query (bad PromQL, timeout, too many samples).
    #[error("Prometheus refused `{query}` (HTTP {status}, {error_type}): {error}")]
    Api {
        /// The PromQL sent.
        query: String,
        /// HTTP status.
        status: u16,
        /// Prometheus' `errorType`, e.g. `bad_data`.
        error_type: String,
        /// Prometheus' `error`, e.g. a parse error with its position.
        error: String,
    },
    /// The answer is not Prometheus' JSON envelope (a proxy's HTML page, a wrong port).
    #[error(
        "{url} answered HTTP {status} with something that is not Prometheus API JSON (`{snippet}`); does `url:` point at Prometheus itself?"
    )]
    NotPrometheus {
        /// The request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The first characters of the body.
        snippet: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
}

/// The JSON envelope every `/api/v1` answer comes in.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    data: Option<Data>,
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct RawSample {
    #[serde(default)]
    metric: Labels,
    value: (f64, String),
}

#[derive(Debug, Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: Labels,
    values: Vec<(f64, String)>,
}

/// A Prometheus server at a base URL such as `http://prometheus.monitoring:9090`.
#[derive(Debug, Clone)]
pub struct Prometheus {
    base: String,
    http: reqwest::Client,
    timeout: Duration,
}

impl Prometheus {
    /// A client for `base`; each request gives up after `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Prometheus, PromError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| PromError::Client(root_cause(&e)))?;
        Ok(Prometheus {
            base: base.trim_end_matches('/').to_string(),
            http,
            timeout,
        })
    }

    /// `GET /api/v1/query` evaluated at `time` (unix seconds).
    pub async fn query(&self, query: &str, time: f64) -> Result<Answer, PromError> {
        let params = [("query", query.to_string()), ("time", fmt_time(time))];
        self.get("/api/v1/query", query, &params).await
    }

    /// `GET /api/v1/query_range` from `start` to `end` (unix seconds) every `step`.
    pub async fn query_range(
        &self,
        query: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Answer, PromError> {
        let params = [
            ("query", query.to_string()),
            ("start", fmt_time(start)),
            ("end", fmt_time(end)),
            ("step", format!("{}", step.as_secs_f64())),
        ];
        self.get("/api/v1/query_range", query, &params).await
    }

    async fn get(
        &self,
        path: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<Answer, PromError> {
        let url = format!("{}{path}", self.base);
        tracing::debug!(%url, query, "prometheus query");
        let response = self
            .http
            .get(&url)
            .query(params)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(&url, &e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&url, &e))?;
        parse_answer(&url, query, status, &body)
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> PromError {
        if e.is_timeout() {
            PromError::Timeout {
                url: url.to_string(),
                after: self.timeout,
            }
        } else {
            PromError::Unreachable {
                url: url.to_string(),
                reason: root_cause(e),
            }
        }
    }
}

/// Read an `/api/v1` answer; public so the envelope handling is testable without a server.
pub fn parse_answer(url: &str, query: &str, status: u16, body: &[u8]) -> Result<Answer, PromError> {
    let not_prometheus = || PromError::NotPrometheus {
        url: url.to_string(),
        status,
        snippet: String::from_utf8_lossy(body).chars().take(80).collect(),
    };
    let envelope: Envelope = serde_json::from_slice(body).map_err(|_| not_prometheus())?;
    if envelope.status != "success" {
        return Err(PromError::Api {
            query: query.to_string(),
            status,
            error_type: envelope.error_type.unwrap_or_else(|| "error".to_string()),
            error: envelope.error.unwrap_or_default(),
        });
    }
    let data = envelope.data.ok_or_else(not_prometheus)?;
    let value = match data.result_type.as_str() {
        "vector" => {
            let raw: Vec<RawSample> =
                serde_json::from_value(data.result).map_err(|_| not_prometheus())?;
            QueryValue::Vector(
                raw.into_iter()
                    .map(|s| Sample {
                        labels: s.metric,
                        value: number(&s.value.1),
                    })
                    .collect(),
            )
        }
        "matrix" => {
            let raw: Vec<RawSeries> =
                serde_json::from_value(data.result).map_err(|_| not_prometheus())?;
            QueryValue::Matrix(
                raw.into_iter()
                    .map(|s| Series {
                        labels: s.metric,
                        points: s.values.iter().map(|(t, v)| (*t, number(v))).collect(),
                    })
                    .collect(),
            )
        }
        "scalar" => {
            let (_, v): (f64, String) =
                serde_json::from_value(data.result).map_err(|_| not_prometheus())?;
            QueryValue::Scalar(number(&v))
        }
        "string" => {
            let (_, v): (f64, String) =
                serde_json::from_value(data.result).map_err(|_| not_prometheus())?;
            QueryValue::String(v)
        }
        _ => return Err(not_prometheus()),
    };
    Ok(Answer {
        value,
        warnings: envelope.warnings,
    })
}

/// Prometheus sends values as strings so it can say `NaN` and `+Inf`.
fn number(text: &str) -> f64 {
    match text {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => text.parse().unwrap_or(f64::NAN),
    }
}

fn fmt_time(t: f64) -> String {
    format!("{t:.3}")
}

/// `{service="a", code="500"}` for a report; `{}` for a series without labels.
pub fn series_name(labels: &Labels) -> String {
    let inner: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    let name = labels.get("__name__").map(String::as_str).unwrap_or("");
    format!("{name}{{{}}}", inner.join(", "))
}

/// One multi-window rule: alert when the burn rate exceeds `factor` over both windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnRule {
    /// The long window, which says the burn is significant.
    pub long: &'static str,
    /// The short window, which says it is still happening (so the alert resets quickly).
    pub short: &'static str,
    /// The burn-rate factor both windows must exceed.
    pub factor: f64,
    /// Page (critical) or ticket (warning).
    pub severity: Severity,
}

/// The SRE workbook's recommended rules (chapter 5, "Alerting on SLOs", table 5-8):
/// 2% of a 30-day budget in 1 h or 5% in 6 h pages; 10% in 3 days becomes a ticket, which
/// we approximate with 1 d / 6 h because incident data rarely reaches back three days.
pub const BURN_RULES: [BurnRule; 3] = [
    BurnRule {
        long: "1h",
        short: "5m",
        factor: 14.4,
        severity: Severity::Critical,
    },
    BurnRule {
        long: "6h",
        short: "30m",
        factor: 6.0,
        severity: Severity::Critical,
    },
    BurnRule {
        long: "1d",
        short: "6h",
        factor: 3.0,
        severity: Severity::Warning,
    },
];

/// Every window the rules use, shortest first: the columns of the burn-rate table.
pub const BURN_WINDOWS: [&str; 5] = ["5m", "30m", "1h", "6h", "1d"];

/// How many times faster than allowed the error budget is spent: an error ratio of 0.5%
/// against a 99.9% objective (budget 0.1%) burns at 5×.
pub fn burn_rate(error_ratio: f64, objective_percent: f64) -> f64 {
    error_ratio / (1.0 - objective_percent / 100.0)
}

/// The first rule (most severe first) whose both windows burn above its factor.
pub fn firing_rule(burn: &BTreeMap<&'static str, f64>) -> Option<BurnRule> {
    BURN_RULES.into_iter().find(|rule| {
        let over = |w: &str| burn.get(w).is_some_and(|b| *b > rule.factor);
        over(rule.long) && over(rule.short)
    })
}

/// Parse `at:`: unix seconds (`1767225600`, `1767225600.5`) or RFC 3339
/// (`2026-01-01T00:00:00Z`, `2026-01-01T01:00:00+01:00`).
pub fn parse_time(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds.is_finite().then_some(seconds);
    }
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut ymd = date.splitn(3, '-');
    let year: i64 = ymd.next()?.parse().ok()?;
    let month: i64 = ymd.next()?.parse().ok()?;
    let day: i64 = ymd.next()?.parse().ok()?;
    let (clock, offset) = if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let split = rest.rfind(['+', '-'])?;
        let (clock, zone) = rest.split_at(split);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone.get(1..)?.split_once(':')?;
        let minutes = h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?;
        (clock, sign * minutes * 60)
    };
    let mut hms = clock.splitn(3, ':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let second: f64 = hms.next()?.parse().ok()?;
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0.0..61.0).contains(&second);
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 - offset) as f64 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1767225600"), Some(1_767_225_600.0));
        assert_eq!(parse_time("2026-01-01T00:00:00Z"), Some(1_767_225_600.0));
        assert_eq!(
            parse_time("2026-01-01T01:00:00+01:00"),
            Some(1_767_225_600.0)
        );
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1.5));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn burn_maths() {
        assert!((burn_rate(0.05, 99.9) - 50.0).abs() < 1e-9);
        let mut burn = BTreeMap::new();
        burn.insert("1h", 20.0);
        burn.insert("5m", 10.0);
        assert_eq!(firing_rule(&burn), None, "short window has recovered");
        burn.insert("5m", 15.0);
        assert_eq!(firing_rule(&burn).map(|r| r.long), Some("1h"));
        let slow = BTreeMap::from([("1d", 4.0), ("6h", 3.5), ("1h", 3.0), ("5m", 2.0)]);
        let rule = firing_rule(&slow).unwrap();
        assert_eq!((rule.long, rule.severity), ("1d", Severity::Warning));
    }

    #[test]
    fn envelopes() {
        let ok = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1,"NaN"]}]},"warnings":["w"]}"#;
        let a = parse_answer("u", "q", 200, ok).unwrap();
        assert_eq!(a.warnings, ["w"]);
        assert!(a.samples()[0].value.is_nan());
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(matches!(
            parse_answer("u", "q", 400, bad),
            Err(PromError::Api { status: 400, .. })
        ));
        assert!(matches!(
            parse_answer("u", "q", 200, b"<html>"),
            Err(PromError::NotPrometheus { .. })
        ));
    }
}

//! `prometheus`: PromQL against a Prometheus server: queries reported as a table, threshold
//! checks, and multi-window multi-burn-rate checks of an error-ratio SLO.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::{DEFAULT_TIMEOUT, Finding, StepCx, StepError, StepOutput, Timeout, aligned_table};
use crate::metrics::prometheus::{
    BURN_WINDOWS, PromError, Prometheus as Client, QueryValue, burn_rate, firing_rule, parse_time,
    series_name,
};
use crate::render::Severity;
use crate::runbook::signal::Signal;

/// The placeholder an `error_ratio:` query uses for its range, replaced by each window.
pub const WINDOW_PLACEHOLDER: &str = "$window";

/// Runbook form of the `prometheus` step, checked when the runbook loads.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "PrometheusDef")]
pub struct Prometheus {
    /// Heading shown in the report.
    pub title: Option<String>,
    /// Time limit for this step.
    pub timeout: Option<Timeout>,
    /// Prometheus' base URL, e.g. `http://prometheus.monitoring:9090`.
    pub url: String,
    /// Evaluation time in unix seconds; `None` is now.
    pub at: Option<f64>,
    /// Queries whose values are reported.
    pub queries: Vec<QuerySpec>,
    /// Queries whose values are judged against limits.
    pub thresholds: Vec<Threshold>,
    /// Error-ratio SLOs judged by burn rate.
    pub burn_rate: Vec<BurnRate>,
}

/// A query to report: the latest value, or min/max/last over `range`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    /// Row label.
    pub name: String,
    /// PromQL.
    pub query: String,
    /// Report a range ending at the evaluation time instead of one value.
    pub range: Option<Timeout>,
    /// Resolution of a range (default `1m`).
    pub step: Option<Timeout>,
}

/// A query judged against `above:`/`below:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Row label.
    pub name: String,
    /// PromQL giving one value per series.
    pub query: String,
    /// A value above this is a finding.
    pub above: Option<f64>,
    /// A value below this is a finding.
    pub below: Option<f64>,
    /// How bad a crossing is (default `warning`).
    #[serde(default)]
    pub severity: CrossingSeverity,
    /// The evidence a crossing is, for the triage verdict.
    pub signal: Option<Signal>,
}

/// An error-ratio SLO judged with the SRE workbook's multi-window burn-rate rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnRate {
    /// Row label.
    pub name: String,
    /// PromQL giving the error ratio (0–1) over `[$window]`.
    pub error_ratio: String,
    /// The objective in percent, e.g. `99.9`.
    pub objective: f64,
    /// The evidence a firing rule is (default `error_budget_burn`).
    pub signal: Option<Signal>,
}

/// How bad a threshold crossing is, as a runbook writes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrossingSeverity {
    /// Degraded.
    #[default]
    Warning,
    /// Broken.
    Critical,
}

impl From<CrossingSeverity> for Severity {
    fn from(s: CrossingSeverity) -> Severity {
        match s {
            CrossingSeverity::Warning => Severity::Warning,
            CrossingSeverity::Critical => Severity::Critical,
        }
    }
}

/// The YAML as written; [`Prometheus`] is built from it after cross-field checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusDef {
    title: Option<String>,
    timeout: Option<Timeout>,
    url: String,
    at: Option<serde_json::Value>,
    #[serde(default)]
    queries: Vec<QuerySpec>,
    #[serde(default)]
    thresholds: Vec<Threshold>,
    #[serde(default)]
    burn_rate: Vec<BurnRate>,
}

impl TryFrom<PrometheusDef> for Prometheus {
    type Error = String;

    fn try_from(d: PrometheusDef) -> Result<Prometheus, String> {
        if !(d.url.starts_with("http://") || d.url.starts_with("https://")) {
            return Err(format!(
                "prometheus: `url: {}` must start with http:// or https://",
                d.url
            ));
        }
        let at = match &d.at {
            None => None,
            Some(value) => {
                let text = match value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Some(parse_time(&text).ok_or_else(|| {
                    format!("prometheus: `at: {text}` is neither RFC 3339 (2026-01-01T00:00:00Z) nor unix seconds")
                })?)
            }
        };
        if d.queries.is_empty() && d.thresholds.is_empty() && d.burn_rate.is_empty() {
            return Err(
                "prometheus: nothing to do; add `queries:`, `thresholds:` or `burn_rate:`"
                    .to_string(),
            );
        }
        for t in &d.thresholds {
            if t.above.is_none() && t.below.is_none() {
                return Err(format!(
                    "prometheus: threshold `{}` needs `above:` or `below:`",
                    t.name
                ));
            }
        }
        for b in &d.burn_rate {
            if !b.error_ratio.contains(WINDOW_PLACEHOLDER) {
                return Err(format!(
                    "prometheus: burn_rate `{}`: `error_ratio:` must use `[{WINDOW_PLACEHOLDER}]` as its range, e.g. rate(errors[$window]) / rate(requests[$window])",
                    b.name
                ));
            }
            if !(b.objective > 0.0 && b.objective < 100.0) {
                return Err(format!(
                    "prometheus: burn_rate `{}`: `objective: {}` must be a percentage strictly between 0 and 100, e.g. 99.9",
                    b.name, b.objective
                ));
            }
        }
        Ok(Prometheus {
            title: d.title,
            timeout: d.timeout,
            url: d.url,
            at,
            queries: d.queries,
            thresholds: d.thresholds,
            burn_rate: d.burn_rate,
        })
    }
}

/// The default resolution of a range query.
const DEFAULT_STEP: Duration = Duration::from_secs(60);

impl Prometheus {
    pub(super) async fn run(&self, _cx: &StepCx<'_>) -> Result<StepOutput, StepError> {
        let budget = self.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT);
        // Each request gets most of the step's budget, so a slow query comes back as a
        // named error rather than the whole step timing out.
        let client = Client::new(&self.url, budget.mul_f64(0.8)).map_err(StepError::Prometheus)?;
        let at = self.at.unwrap_or_else(now);
        let mut findings = Vec::new();
        let mut tables = Vec::new();

        if !self.queries.is_empty() {
            let mut rows = Vec::new();
            for q in &self.queries {
                match self.report_query(&client, q, at).await {
                    Ok(mut r) => rows.append(&mut r),
                    Err(e) => findings.push(failed(&q.name, e)?),
                }
            }
            if !rows.is_empty() {
                tables.push(aligned_table(
                    &["QUERY", "SERIES", "LAST", "MIN", "MAX"],
                    &rows,
                ));
            }
        }

        if !self.thresholds.is_empty() {
            let mut rows = Vec::new();
            for t in &self.thresholds {
                match client.query(&t.query, at).await {
                    Ok(answer) => {
                        let samples = answer.samples();
                        if samples.is_empty() {
                            findings.push(Finding::new(
                                Severity::Info,
                                format!("`{}`: the query returned no series", t.name),
                            ));
                        }
                        for s in samples {
                            let series = series_name(&s.labels);
                            let crossed = match (t.above, t.below) {
                                (Some(max), _) if s.value > max => Some(format!("above {max}")),
                                (_, Some(min)) if s.value < min => Some(format!("below {min}")),
                                _ => None,
                            };
                            if let Some(how) = &crossed {
                                let mut f = Finding::new(
                                    t.severity.into(),
                                    format!("`{}` {series} = {} ({how})", t.name, fmt(s.value)),
                                );
                                if let Some(signal) = t.signal {
                                    f = f.signal(signal);
                                }
                                findings.push(f);
                            }
                            rows.push(vec![
                                t.name.clone(),
                                series,
                                fmt(s.value),
                                if crossed.is_some() { "crossed" } else { "ok" }.to_string(),
                            ]);
                        }
                    }
                    Err(e) => findings.push(failed(&t.name, e)?),
                }
            }
            if !rows.is_empty() {
                tables.push(aligned_table(
                    &["THRESHOLD", "SERIES", "VALUE", "STATE"],
                    &rows,
                ));
            }
        }

        if !self.burn_rate.is_empty() {
            let mut rows = Vec::new();
            for b in &self.burn_rate {
                match burn_rates(&client, b, at).await {
                    Ok(per_series) => {
                        if per_series.is_empty() {
                            findings.push(Finding::new(
                                Severity::Info,
                                format!(
                                    "`{}`: the error ratio has no series (no traffic?)",
                                    b.name
                                ),
                            ));
                        }
                        for (series, burn) in per_series {
                            if let Some(rule) = firing_rule(&burn) {
                                let action = if rule.severity == Severity::Critical {
                                    "page"
                                } else {
                                    "ticket"
                                };
                                let text = format!(
                                    "`{}` {series}: error budget burning {}× over {} and {}× over {} (both above {}×, objective {}%): {action}",
                                    b.name,
                                    fmt(burn[rule.long]),
                                    rule.long,
                                    fmt(burn[rule.short]),
                                    rule.short,
                                    rule.factor,
                                    b.objective
                                );
                                findings.push(
                                    Finding::new(rule.severity, text)
                                        .signal(b.signal.unwrap_or(Signal::ErrorBudgetBurn)),
                                );
                            }
                            let mut row = vec![b.name.clone(), series];
                            row.extend(BURN_WINDOWS.iter().map(|w| {
                                burn.get(w)
                                    .map(|v| format!("{}×", fmt(*v)))
                                    .unwrap_or("-".into())
                            }));
                            rows.push(row);
                        }
                    }
                    Err(e) => findings.push(failed(&b.name, e)?),
                }
            }
            if !rows.is_empty() {
                let mut headers = vec!["BURN RATE", "SERIES"];
                headers.extend(BURN_WINDOWS);
                tables.push(aligned_table(&headers, &rows));
            }
        }

        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let table = (!tables.is_empty()).then(|| tables.join("\n\n"));
        Ok(StepOutput { findings, table })
    }

    /// One row per series: an instant value, or last/min/max over a range.
    async fn report_query(
        &self,
        client: &Client,
        q: &QuerySpec,
        at: f64,
    ) -> Result<Vec<Vec<String>>, PromError> {
        let Some(range) = q.range else {
            let answer = client.query(&q.query, at).await?;
            warn_about(&q.name, &answer.warnings);
            if let QueryValue::String(s) = &answer.value {
                return Ok(vec![vec![
                    q.name.clone(),
                    "{}".into(),
                    s.clone(),
                    "-".into(),
                    "-".into(),
                ]]);
            }
            return Ok(answer
                .samples()
                .into_iter()
                .map(|s| {
                    vec![
                        q.name.clone(),
                        series_name(&s.labels),
                        fmt(s.value),
                        "-".into(),
                        "-".into(),
                    ]
                })
                .collect());
        };
        let step = q.step.map(|s| s.0).unwrap_or(DEFAULT_STEP);
        let answer = client
            .query_range(&q.query, at - range.0.as_secs_f64(), at, step)
            .await?;
        warn_about(&q.name, &answer.warnings);
        let QueryValue::Matrix(series) = answer.value else {
            return Ok(Vec::new());
        };
        Ok(series
            .into_iter()
            .map(|s| {
                let values: Vec<f64> = s
                    .points
                    .iter()
                    .map(|p| p.1)
                    .filter(|v| !v.is_nan())
                    .collect();
                let last = s.points.last().map(|p| fmt(p.1)).unwrap_or("-".into());
                let min = values
                    .iter()
                    .copied()
                    .reduce(f64::min)
                    .map(fmt)
                    .unwrap_or("-".into());
                let max = values
                    .iter()
                    .copied()
                    .reduce(f64::max)
                    .map(fmt)
                    .unwrap_or("-".into());
                vec![q.name.clone(), series_name(&s.labels), last, min, max]
            })
            .collect())
    }
}

/// The burn rate of every series over every window the rules use.
async fn burn_rates(
    client: &Client,
    b: &BurnRate,
    at: f64,
) -> Result<BTreeMap<String, BTreeMap<&'static str, f64>>, PromError> {
    let mut per_series: BTreeMap<String, BTreeMap<&'static str, f64>> = BTreeMap::new();
    for window in BURN_WINDOWS {
        let query = b.error_ratio.replace(WINDOW_PLACEHOLDER, window);
        let answer = client.query(&query, at).await?;
        warn_about(&b.name, &answer.warnings);
        for s in answer.samples() {
            // NaN is 0/0: no requests in the window, so nothing burned.
            let ratio = if s.value.is_nan() { 0.0 } else { s.value };
            per_series
                .entry(series_name(&s.labels))
                .or_default()
                .insert(window, burn_rate(ratio, b.objective));
        }
    }
    Ok(per_series)
}

/// A query that failed becomes a warning finding, except when Prometheus cannot be reached
/// or hangs: then every other query fails the same way (a hang would also use up the step's
/// budget query after query), so the step itself fails with the reason.
fn failed(name: &str, error: PromError) -> Result<Finding, StepError> {
    match error {
        PromError::Unreachable { .. }
        | PromError::Timeout { .. }
        | PromError::Client(_)
        | PromError::NotPrometheus { .. } => Err(StepError::Prometheus(error)),
        _ => {
            tracing::info!(check = name, error = %error, "prometheus query failed");
            Ok(Finding::new(
                Severity::Warning,
                format!("`{name}`: {error}"),
            ))
        }
    }
}

fn warn_about(name: &str, warnings: &[String]) {
    for w in warnings {
        tracing::warn!(check = name, warning = %w, "prometheus warning");
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Short numbers for a chat table: `50.0`, `0.0123`, `1.2e-5`.
fn fmt(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return format!("{v}");
    }
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}

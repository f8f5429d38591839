//! `metrics`: each serving pod's vLLM `/metrics`, read through the API server's pod proxy (or
//! from a fixed `url:`), judged against the runbook's SLO: KV cache pressure, preemptions,
//! abnormal finish reasons, TTFT and end-to-end latency.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::{DEFAULT_TIMEOUT, Finding, StepCx, StepError, StepOutput, Timeout, aligned_table};
use crate::cluster::ClusterError;
use crate::metrics::MetricsError;
use crate::metrics::histogram::{Quantile, seconds};
use crate::metrics::{ABNORMAL_FINISH_REASONS, Latency, ServingSnapshot};
use crate::probe::transport::{self, TransportError};
use crate::render::Severity;
use crate::runbook::Slo;
use crate::runbook::signal::Signal;

/// KV cache usage above which the cache counts as full when the runbook has no SLO for it.
pub const DEFAULT_KV_CACHE_MAX_PERCENT: f64 = 90.0;

/// Runbook form of the `metrics` step, checked when the runbook loads.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "MetricsDef")]
pub struct Metrics {
    /// Heading shown in the report.
    pub title: Option<String>,
    /// Time limit for this step.
    pub timeout: Option<Timeout>,
    /// Where the metrics are read.
    pub source: MetricsSource,
    /// A finish reason other than `stop` above this share (percent) is a warning; `error`
    /// above it is critical.
    pub finish_warn_percent: f64,
}

/// Where the `metrics` step reads from.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsSource {
    /// Every Running serving pod, through the API server's pod proxy.
    Pods {
        /// The pods' metrics port (vLLM serves `/metrics` on its API port).
        port: u16,
        /// The metrics path on that port, starting with `/`.
        path: String,
    },
    /// One URL (a Service, a port-forward); the pods are not listed.
    Url(String),
}

/// The YAML as written; [`Metrics`] is built from it after cross-field checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsDef {
    title: Option<String>,
    timeout: Option<Timeout>,
    port: Option<u16>,
    path: Option<String>,
    url: Option<String>,
    #[serde(default = "default_finish_warn")]
    finish_warn_percent: f64,
}

fn default_finish_warn() -> f64 {
    5.0
}

impl TryFrom<MetricsDef> for Metrics {
    type Error = String;

    fn try_from(d: MetricsDef) -> Result<Metrics, String> {
        let source = match (d.url, d.port, d.path) {
            (Some(url), None, None) => MetricsSource::Url(url),
            (Some(_), _, _) => {
                return Err(
                    "metrics: `url:` is the whole address; drop `port:`/`path:` or drop `url:` to read the pods"
                        .to_string(),
                );
            }
            (None, port, path) => {
                let path = path.unwrap_or_else(|| "/metrics".to_string());
                MetricsSource::Pods {
                    port: port.unwrap_or(8000),
                    path: if path.starts_with('/') {
                        path
                    } else {
                        format!("/{path}")
                    },
                }
            }
        };
        if !(0.0..=100.0).contains(&d.finish_warn_percent) {
            return Err(format!(
                "metrics: `finish_warn_percent: {}` must be a percentage between 0 and 100",
                d.finish_warn_percent
            ));
        }
        Ok(Metrics {
            title: d.title,
            timeout: d.timeout,
            source,
            finish_warn_percent: d.finish_warn_percent,
        })
    }
}

/// One scraped target: a pod or the configured URL.
#[derive(Debug)]
struct Reading {
    target: String,
    outcome: Result<ServingSnapshot, ScrapeError>,
}

/// Why one target's metrics could not be read; the step goes on with the others.
#[derive(Debug, thiserror::Error)]
enum ScrapeError {
    /// Nothing answered at the URL.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The URL answered with an error status.
    #[error("GET {url} answered HTTP {status}: {snippet}")]
    Http {
        url: String,
        status: u16,
        snippet: String,
    },
    /// The API server or its pod proxy refused.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The answer is not vLLM metrics.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// No answer before the step's deadline.
    #[error("no answer within {0}; the server hangs or the network drops packets")]
    Timeout(String),
}

impl Metrics {
    pub(super) async fn run(&self, cx: &StepCx<'_>) -> Result<StepOutput, StepError> {
        // Leave the runner time to collect our answer: a pod that never answers becomes a
        // finding for that pod instead of a timeout that hides the pods that did answer.
        let budget = self.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT);
        let deadline = crate::probe::step_deadline(budget);
        let readings = match &self.source {
            MetricsSource::Url(url) => vec![Reading {
                target: url.clone(),
                outcome: within(deadline, fetch_url(url)).await,
            }],
            MetricsSource::Pods { port, path } => read_pods(cx, *port, path, deadline).await?,
        };
        let mut findings = Vec::new();
        let mut rows = Vec::new();
        for reading in &readings {
            match &reading.outcome {
                Ok(snapshot) => {
                    findings.extend(self.judge(&reading.target, snapshot, &cx.runbook.slo));
                    rows.push(row(&reading.target, snapshot));
                }
                Err(reason) => {
                    tracing::info!(target = %reading.target, error = %reason, "metrics scrape failed");
                    findings.push(Finding::new(
                        Severity::Warning,
                        format!("`{}`: cannot read metrics: {reason}", reading.target),
                    ));
                    let mut cells = vec![reading.target.clone(), "error".to_string()];
                    cells.resize(HEADERS.len(), "-".to_string());
                    rows.push(cells);
                }
            }
        }
        if readings.is_empty() {
            findings.push(Finding::new(
                Severity::Warning,
                format!(
                    "no running pods match `{}`; no metrics to read",
                    cx.runbook.selector
                ),
            ));
        }
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let table = (!rows.is_empty()).then(|| aligned_table(&HEADERS, &rows));
        Ok(StepOutput { findings, table })
    }
}

/// Every running serving pod's metrics, through the API server's pod proxy, concurrently.
async fn read_pods(
    cx: &StepCx<'_>,
    port: u16,
    path: &str,
    deadline: Instant,
) -> Result<Vec<Reading>, StepError> {
    let runbook = cx.runbook;
    let ns = &runbook.namespace;
    let pods = cx.serving_pods().await?;
    // Only a running pod has a server behind the proxy; the `pods` step reports the rest.
    let mut names: Vec<String> = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    let readings = futures::future::join_all(names.into_iter().map(|pod| {
        let proxy = format!("/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy{path}");
        async move {
            let outcome = within(deadline, async {
                let request = http::Request::get(&proxy).body(Vec::new()).map_err(|e| {
                    TransportError::BadPath {
                        path: proxy.clone(),
                        reason: e.to_string(),
                    }
                })?;
                let text = cx
                    .cluster
                    .client()
                    .request_text(request)
                    .await
                    .map_err(|e| {
                        let what = format!("pod `{pod}` port {port} path `{path}`");
                        cx.cluster.explain(e, &what, ns)
                    })?;
                Ok(ServingSnapshot::parse(&text)?)
            })
            .await;
            Reading {
                target: pod,
                outcome,
            }
        }
    }))
    .await;
    Ok(readings)
}

impl Metrics {
    /// Findings for one target, worst first after the caller sorts.
    fn judge(&self, target: &str, s: &ServingSnapshot, slo: &Slo) -> Vec<Finding> {
        let mut findings = Vec::new();
        let kv_max = slo
            .kv_cache_usage_max_percent
            .unwrap_or(DEFAULT_KV_CACHE_MAX_PERCENT);
        let waiting = s.requests_waiting.unwrap_or(0.0);
        if let Some(kv) = s.kv_cache_usage_percent.filter(|kv| *kv > kv_max) {
            if waiting > 0.0 {
                findings.push(Finding::new(
                    Severity::Critical,
                    format!(
                        "`{target}` KV cache {kv:.1}% (above {kv_max}%) with {waiting:.0} requests waiting: the engine is out of cache and queueing"
                    ),
                ).signal(Signal::KvCacheHigh));
            } else {
                findings.push(
                    Finding::new(
                        Severity::Warning,
                        format!("`{target}` KV cache {kv:.1}% (above {kv_max}%)"),
                    )
                    .signal(Signal::KvCacheHigh),
                );
            }
        }
        if let Some(p) = s.preemptions_total.filter(|p| *p > 0.0) {
            findings.push(Finding::new(
                Severity::Warning,
                format!(
                    "`{target}` {p:.0} preemptions since start: the KV cache ran out and requests were recomputed"
                ),
            ).signal(Signal::Preemptions));
        }
        let total = s.finished_total();
        for reason in ABNORMAL_FINISH_REASONS {
            let Some(share) = s.finish_share(reason) else {
                continue;
            };
            let percent = share * 100.0;
            if percent > self.finish_warn_percent {
                let severity = if reason == "error" {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                findings.push(Finding::new(
                    severity,
                    format!(
                        "`{target}` {percent:.1}% of {total:.0} requests finished with `{reason}` since start (above {}%){}",
                        self.finish_warn_percent,
                        finish_hint(reason)
                    ),
                ).signal(if reason == "error" || reason == "abort" { Signal::EngineErrors } else { Signal::OutputAbnormal }));
            }
        }
        for (label, latency, target_p95) in [
            ("TTFT", s.ttft, slo.ttft_p95_seconds),
            ("E2E latency", s.e2e, slo.e2e_p95_seconds),
        ] {
            let (Some(p95), Some(limit)) = (latency.and_then(|l| l.p95), target_p95) else {
                continue;
            };
            if p95.value > limit || (p95.beyond_top_bucket && p95.value >= limit) {
                findings.push(
                    Finding::new(
                        Severity::Warning,
                        format!(
                            "`{target}` {label} p95 {p95} since start (SLO {})",
                            seconds(limit)
                        ),
                    )
                    .signal(Signal::LatencySlo),
                );
            }
        }
        findings.push(Finding::new(Severity::Info, summary(target, s)));
        findings
    }
}

fn finish_hint(reason: &str) -> &'static str {
    match reason {
        "length" => ": answers cut at max_tokens",
        "abort" => ": clients gave up or disconnected",
        "error" => ": the engine failed requests",
        "repetition" => ": the model looped",
        _ => "",
    }
}

/// One line per target even when all is well, so the report shows what was read.
fn summary(target: &str, s: &ServingSnapshot) -> String {
    let mut parts = Vec::new();
    if let Some(kv) = s.kv_cache_usage_percent {
        parts.push(format!("KV cache {kv:.1}%"));
    }
    if let Some(w) = s.requests_waiting {
        parts.push(format!("{w:.0} waiting"));
    }
    if let Some(r) = s.requests_running {
        parts.push(format!("{r:.0} running"));
    }
    if let Some(p95) = s.ttft.and_then(|l| l.p95) {
        parts.push(format!("TTFT p95 {p95}"));
    }
    if let Some(p95) = s.e2e.and_then(|l| l.p95) {
        parts.push(format!("E2E p95 {p95}"));
    }
    if s.bad_lines > 0 {
        parts.push(format!("{} unreadable lines", s.bad_lines));
    }
    if parts.is_empty() {
        parts.push("none of the known vLLM serving metrics".to_string());
    }
    format!("`{target}`: {}", parts.join(", "))
}

const HEADERS: [&str; 8] = [
    "TARGET",
    "KV CACHE",
    "RUNNING",
    "WAITING",
    "PREEMPTIONS",
    "TTFT P50/P95/P99",
    "E2E P50/P95/P99",
    "NOT STOP",
];

fn row(target: &str, s: &ServingSnapshot) -> Vec<String> {
    let number = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
    let abnormal: Vec<String> = ABNORMAL_FINISH_REASONS
        .iter()
        .filter_map(|r| {
            let share = s.finish_share(r)?;
            (share > 0.0).then(|| format!("{r} {:.1}%", share * 100.0))
        })
        .collect();
    vec![
        target.to_string(),
        s.kv_cache_usage_percent
            .map(|kv| format!("{kv:.1}%"))
            .unwrap_or_else(|| "-".into()),
        number(s.requests_running),
        number(s.requests_waiting),
        number(s.preemptions_total),
        quantiles(s.ttft),
        quantiles(s.e2e),
        if abnormal.is_empty() {
            "-".to_string()
        } else {
            abnormal.join(", ")
        },
    ]
}

fn quantiles(latency: Option<Latency>) -> String {
    let show = |q: Option<Quantile>| q.map(|q| q.to_string()).unwrap_or_else(|| "-".into());
    match latency {
        Some(l) => format!("{}/{}/{}", show(l.p50), show(l.p95), show(l.p99)),
        None => "-".to_string(),
    }
}

/// Run `work`, or say it did not finish before `deadline`.
async fn within<T>(
    deadline: Instant,
    work: impl Future<Output = Result<T, ScrapeError>>,
) -> Result<T, ScrapeError> {
    let limit = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout_at(deadline, work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ScrapeError::Timeout(super::human_duration(round_up(limit)))),
    }
}

/// The deadline was set a moment before the wait began: show `900ms`, not `899ms`.
fn round_up(d: Duration) -> Duration {
    Duration::from_millis((d.as_millis() as u64).div_ceil(100) * 100)
}

/// GET `url` with reqwest; the step's deadline bounds it.
async fn fetch_url(url: &str) -> Result<ServingSnapshot, ScrapeError> {
    let answer = transport::get(url).await?;
    if !(200..300).contains(&answer.status) {
        return Err(ScrapeError::Http {
            url: url.to_string(),
            status: answer.status,
            snippet: crate::probe::truncate(&answer.body, crate::probe::SNIPPET),
        });
    }
    Ok(ServingSnapshot::parse(&answer.body)?)
}

//! Step kinds and the stage runner: steps run concurrently, each under its own timeout, and a
//! failing step becomes an error line in the report, never a failed stage.
//!
//! A step kind is one file here plus one variant of [`StepSpec`]. Every kind also accepts
//! `title:` and `timeout:`; each struct declares them itself, because serde's `flatten` would
//! stop `deny_unknown_fields` from catching typos.

pub mod canary;
pub mod events;
pub mod gpu;
pub mod logs;
pub mod metrics;
pub mod pipelines;
pub mod pods;
pub mod prometheus;
pub mod rollout_history;

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::signal::Signal;
use super::verdict::{self, Rule, Verdict};
use super::{Runbook, Stage};
use crate::cluster::{Cluster, ClusterError};
use crate::render::Severity;

/// How long a step may run when the runbook does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every step kind a runbook may name, tagged by `kind:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepSpec {
    /// Pod health by selector: restarts, OOMKilled, CrashLoopBackOff, unschedulable.
    Pods(pods::Pods),
    /// Recent Warning events for the service's objects.
    Events(events::Events),
    /// The latest value of a pattern in each pod's log tail.
    Logs(logs::Logs),
    /// The deployment's revisions, newest first.
    RolloutHistory(rollout_history::RolloutHistory),
    /// vLLM serving metrics per pod against the SLO: KV cache, queue, preemptions, latency.
    Metrics(metrics::Metrics),
    /// Golden prompts against the model, answers checked, pass rate against the SLO.
    Canary(canary::Canary),
    /// PromQL against a Prometheus server: queries, thresholds and error-budget burn rates.
    Prometheus(prometheus::Prometheus),
    /// GPU capacity and node health: allocatable vs requested, node conditions, DCGM XIDs.
    Gpu(gpu::Gpu),
    /// Data-pipeline CronJobs and Jobs: freshness against a target, failed runs.
    Pipelines(pipelines::Pipelines),
}

impl StepSpec {
    /// The `kind:` name.
    pub fn kind(&self) -> &'static str {
        match self {
            StepSpec::Pods(_) => "pods",
            StepSpec::Events(_) => "events",
            StepSpec::Logs(_) => "logs",
            StepSpec::RolloutHistory(_) => "rollout_history",
            StepSpec::Metrics(_) => "metrics",
            StepSpec::Canary(_) => "canary",
            StepSpec::Prometheus(_) => "prometheus",
            StepSpec::Gpu(_) => "gpu",
            StepSpec::Pipelines(_) => "pipelines",
        }
    }

    /// `(title, timeout)` as written in the runbook.
    fn overrides(&self) -> (Option<&String>, Option<Timeout>) {
        match self {
            StepSpec::Pods(s) => (s.title.as_ref(), s.timeout),
            StepSpec::Events(s) => (s.title.as_ref(), s.timeout),
            StepSpec::Logs(s) => (s.title.as_ref(), s.timeout),
            StepSpec::RolloutHistory(s) => (s.title.as_ref(), s.timeout),
            StepSpec::Metrics(s) => (s.title.as_ref(), s.timeout),
            StepSpec::Canary(s) => (s.title.as_ref(), s.timeout),
            StepSpec::Prometheus(s) => (s.title.as_ref(), s.timeout),
            StepSpec::Gpu(s) => (s.title.as_ref(), s.timeout),
            StepSpec::Pipelines(s) => (s.title.as_ref(), s.timeout),
        }
    }

    /// The heading the report shows for this step.
    pub fn title(&self) -> String {
        self.overrides().0.cloned().unwrap_or_else(|| match self {
            StepSpec::Pods(_) => "Serving pods".to_string(),
            StepSpec::Events(_) => "Warning events".to_string(),
            StepSpec::Logs(s) => format!("Logs: {}", s.label),
            StepSpec::RolloutHistory(_) => "Rollout history".to_string(),
            StepSpec::Metrics(_) => "Serving metrics".to_string(),
            StepSpec::Canary(_) => "Golden prompts".to_string(),
            StepSpec::Prometheus(_) => "Prometheus".to_string(),
            StepSpec::Gpu(_) => "GPUs and nodes".to_string(),
            StepSpec::Pipelines(_) => "Data pipelines".to_string(),
        })
    }

    /// How long the step may take.
    pub fn timeout(&self) -> Duration {
        self.overrides().1.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT)
    }

    async fn run(&self, cx: &StepCx<'_>) -> Result<StepOutput, StepError> {
        match self {
            StepSpec::Pods(s) => s.run(cx).await,
            StepSpec::Events(s) => s.run(cx).await,
            StepSpec::Logs(s) => s.run(cx).await,
            StepSpec::RolloutHistory(s) => s.run(cx).await,
            StepSpec::Metrics(s) => s.run(cx).await,
            StepSpec::Canary(s) => s.run(cx).await,
            StepSpec::Prometheus(s) => s.run(cx).await,
            StepSpec::Gpu(s) => s.run(cx).await,
            StepSpec::Pipelines(s) => s.run(cx).await,
        }
    }
}

/// A duration written as `500ms`, `10s`, `2m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map(Timeout).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration; expected e.g. `500ms`, `10s`, `2m`, `1h`"
            ))
        })
    }
}

impl Serialize for Timeout {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

/// Parse `500ms`, `10s`, `2m`, `1h`, `3d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        "d" => Some(Duration::from_secs(n.checked_mul(86_400)?)),
        _ => None,
    }
}

/// What a step needs to run.
pub struct StepCx<'a> {
    /// The service's runbook.
    pub runbook: &'a Runbook,
    /// The cluster to query.
    pub cluster: &'a Cluster,
}

impl StepCx<'_> {
    /// The service's pods: the runbook's selector in its namespace, every page.
    pub async fn serving_pods(&self) -> Result<Vec<Pod>, StepError> {
        let ns = &self.runbook.namespace;
        let api = self.cluster.namespaced::<Pod>(ns);
        let params = ListParams::default().labels(&self.runbook.selector.0);
        Ok(self.cluster.list_all(&api, &params, ns).await?)
    }
}

/// One observation a step makes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// One line, for a person.
    pub text: String,
    /// The kind of evidence this is, for the triage verdict.
    pub signal: Option<Signal>,
}

impl Finding {
    /// A finding of `severity`.
    pub fn new(severity: Severity, text: impl Into<String>) -> Finding {
        Finding {
            severity,
            text: text.into(),
            signal: None,
        }
    }

    /// The same finding, marked as evidence of `signal`.
    pub fn signal(mut self, signal: Signal) -> Finding {
        self.signal = Some(signal);
        self
    }
}

/// What a step kind returns when it ran.
#[derive(Debug, Clone, Default)]
pub struct StepOutput {
    /// Findings, most important first.
    pub findings: Vec<Finding>,
    /// A pre-formatted table of the details, if the step has one.
    pub table: Option<String>,
}

/// Why a step could not produce its output.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The Kubernetes API failed or refused.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Something the runbook names does not exist.
    #[error("{0}")]
    Missing(String),
    /// The Prometheus server could not answer at all.
    #[error(transparent)]
    Prometheus(#[from] crate::metrics::prometheus::PromError),
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Not finished yet.
    Pending,
    /// Ran; nothing wrong.
    Ok,
    /// Ran; found something degraded.
    Warning,
    /// Ran; found something broken.
    Critical,
    /// Could not run (API error, missing object).
    Error,
    /// Ran out of time.
    Timeout,
}

/// One step's part of a stage report.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// 1-based position in the stage.
    pub number: usize,
    /// The step kind.
    pub kind: &'static str,
    /// Heading.
    pub title: String,
    /// Outcome.
    pub status: StepStatus,
    /// Findings, most important first.
    pub findings: Vec<Finding>,
    /// Details table, pre-formatted.
    pub table: Option<String>,
    /// Why the step failed, when it did.
    pub error: Option<String>,
    /// Wall time spent.
    pub elapsed_ms: u64,
}

impl StepReport {
    fn pending(number: usize, spec: &StepSpec) -> StepReport {
        StepReport {
            number,
            kind: spec.kind(),
            title: spec.title(),
            status: StepStatus::Pending,
            findings: Vec::new(),
            table: None,
            error: None,
            elapsed_ms: 0,
        }
    }

    /// The severity this step contributes to the stage.
    pub fn severity(&self) -> Severity {
        match self.status {
            StepStatus::Pending | StepStatus::Ok => Severity::Ok,
            StepStatus::Warning | StepStatus::Error | StepStatus::Timeout => Severity::Warning,
            StepStatus::Critical => Severity::Critical,
        }
    }
}

/// A stage's report: what templates render.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// The stage.
    pub stage: &'static str,
    /// Service name.
    pub service: String,
    /// Namespace.
    pub namespace: String,
    /// Deployment.
    pub deployment: String,
    /// Pod selector.
    pub selector: String,
    /// Worst severity so far.
    pub severity: Severity,
    /// Steps, in runbook order.
    pub steps: Vec<StepReport>,
    /// Steps finished.
    pub finished: usize,
    /// Whether every step has finished.
    pub done: bool,
    /// Wall time so far.
    pub elapsed_ms: u64,
    /// Triage only: the failure class and its evidence, from the steps finished so far.
    pub verdict: Option<Verdict>,
}

impl StageReport {
    fn refresh(&mut self, started: Instant, rules: Option<&[Rule]>) {
        self.verdict = rules.map(|rules| verdict::judge(&self.steps, rules));
        self.finished = self
            .steps
            .iter()
            .filter(|s| s.status != StepStatus::Pending)
            .count();
        self.done = self.finished == self.steps.len();
        self.severity = self
            .steps
            .iter()
            .map(StepReport::severity)
            .max()
            .unwrap_or_default();
        self.elapsed_ms = started.elapsed().as_millis() as u64;
    }
}

/// Run every step of `stage` concurrently; call `on_progress` after each step finishes.
pub async fn run_stage(
    runbook: &Runbook,
    stage: Stage,
    cluster: &Cluster,
    on_progress: &(dyn Fn(&StageReport) + Send + Sync),
) -> StageReport {
    let started = Instant::now();
    let steps: &[StepSpec] = runbook
        .stage(stage)
        .map(|s| s.steps.as_slice())
        .unwrap_or_default();
    let mut report = StageReport {
        stage: stage.as_str(),
        service: runbook.service.clone(),
        namespace: runbook.namespace.clone(),
        deployment: runbook.deployment.clone(),
        selector: runbook.selector.to_string(),
        severity: Severity::Ok,
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepReport::pending(i + 1, s))
            .collect(),
        finished: 0,
        done: false,
        elapsed_ms: 0,
        verdict: None,
    };
    let rules = (stage == Stage::Triage).then(|| runbook.verdict_rules());
    report.refresh(started, rules.as_deref());
    let cx = StepCx { runbook, cluster };
    let mut running: FuturesUnordered<_> = steps
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let cx = &cx;
            let span = tracing::info_span!("step", number = index + 1, kind = spec.kind());
            async move {
                let step_started = Instant::now();
                let limit = spec.timeout();
                let outcome = tokio::time::timeout(limit, spec.run(cx)).await;
                (index, outcome, limit, step_started.elapsed())
            }
            .instrument(span)
        })
        .collect();
    while let Some((index, outcome, limit, elapsed)) = running.next().await {
        let step = &mut report.steps[index];
        step.elapsed_ms = elapsed.as_millis() as u64;
        match outcome {
            Ok(Ok(output)) => {
                let worst = output
                    .findings
                    .iter()
                    .map(|f| f.severity)
                    .max()
                    .unwrap_or_default();
                step.status = match worst {
                    Severity::Critical => StepStatus::Critical,
                    Severity::Warning => StepStatus::Warning,
                    Severity::Ok | Severity::Info => StepStatus::Ok,
                };
                step.findings = output.findings;
                step.table = output.table;
            }
            Ok(Err(error)) => {
                tracing::warn!(step = step.number, error = %error, "step failed");
                step.status = StepStatus::Error;
                step.error = Some(error.to_string());
            }
            Err(_) => {
                tracing::warn!(step = step.number, ?limit, "step timed out");
                step.status = StepStatus::Timeout;
                step.error = Some(format!(
                    "timed out after {}; the API is slow or unreachable (raise `timeout:` in the runbook if this is normal)",
                    human_duration(limit)
                ));
            }
        }
        report.refresh(started, rules.as_deref());
        on_progress(&report);
    }
    report
}

/// How long ago `then` was, coarsely as kubectl's AGE column reads: `45s`, `12m`, `3h`, `2d`.
/// (The simulator prints kubectl's exact `2m1s` forms; a report only needs the order of magnitude.)
pub fn age(now: jiff::Timestamp, then: jiff::Timestamp) -> String {
    let secs = now.as_second().saturating_sub(then.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// `1.5s`, `250ms`, `2m`: short durations as people write them.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Lay out rows under headers in aligned columns, for a code block.
pub fn aligned_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                out.push_str(&format!("{cell:<width$}   "));
            }
        }
        out.trim_end().to_string()
    };
    let mut lines = vec![line(headers.to_vec())];
    lines.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("3d"), Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(parse_duration("26h"), Some(Duration::from_secs(26 * 3600)));
        assert_eq!(parse_duration("3w"), None);
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn table_aligns_columns() {
        let t = aligned_table(
            &["NAME", "RESTARTS"],
            &[
                vec!["a-long-name".into(), "6".into()],
                vec!["b".into(), "0".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME          RESTARTS\na-long-name   6\nb             0"
        );
    }
}

//! `logs`: tail each serving pod's log, grep a pattern line by line (never holding the whole
//! log) and report the latest captured value per pod, e.g. vLLM's `GPU KV cache usage: 97.0%`.

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use serde::Deserialize;

use super::{Finding, StepCx, StepError, StepOutput, Timeout, aligned_table};
use crate::render::Severity;
use crate::runbook::signal::Signal;

/// Runbook form of the `logs` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    /// Heading shown in the report.
    pub title: Option<String>,
    /// Time limit for this step.
    pub timeout: Option<Timeout>,
    /// Container to read; defaults to the runbook's first container.
    pub container: Option<String>,
    /// How many lines from the end of each log to scan.
    #[serde(default = "default_tail")]
    pub tail: i64,
    /// A regex whose first capture group (or the group named `value`) is a number.
    pub pattern: Pattern,
    /// What the number is, e.g. `GPU KV cache usage`.
    pub label: String,
    /// Unit shown after the number, e.g. `%`.
    #[serde(default)]
    pub unit: String,
    /// Values above this are a warning.
    pub warn_above: Option<f64>,
    /// Values above this are critical.
    pub critical_above: Option<f64>,
    /// What a value above a threshold is evidence of, for the triage verdict.
    pub signal: Option<Signal>,
}

fn default_tail() -> i64 {
    200
}

/// A regex with at least one capture group, compiled when the runbook loads.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let regex = regex::Regex::new(&text).map_err(|e| {
            serde::de::Error::custom(format!("`pattern` is not a valid regex: {e}"))
        })?;
        if regex.captures_len() < 2 {
            return Err(serde::de::Error::custom(format!(
                "`pattern` `{text}` has no capture group; wrap the number in ( ), e.g. `usage: ([0-9.]+)%`"
            )));
        }
        Ok(Pattern(regex))
    }
}

impl Pattern {
    /// The captured value in `line`, if it matches.
    pub fn value_in(&self, line: &str) -> Option<f64> {
        let caps = self.0.captures(line)?;
        let m = caps.name("value").or_else(|| caps.get(1))?;
        m.as_str().trim().parse().ok()
    }
}

/// The latest match in one pod's log.
#[derive(Debug)]
struct PodReading {
    pod: String,
    outcome: Result<Option<f64>, String>,
}

impl Logs {
    pub(super) async fn run(&self, cx: &StepCx<'_>) -> Result<StepOutput, StepError> {
        let runbook = cx.runbook;
        let ns = &runbook.namespace;
        let api = cx.cluster.namespaced::<Pod>(ns);
        let pods = cx.serving_pods().await?;
        let container = self
            .container
            .clone()
            .or_else(|| runbook.main_container().map(str::to_string));
        // A pod that never started a container has no log to read.
        let started: Vec<String> = pods
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .is_some_and(|c| {
                        c.iter().any(|c| {
                            c.state.as_ref().is_some_and(|s| s.waiting.is_none())
                                || c.restart_count > 0
                        })
                    })
            })
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        let readings = futures::future::join_all(started.iter().map(|pod| {
            let api = api.clone();
            let container = container.clone();
            async move {
                let outcome = self.latest_value(&api, pod, container).await.map_err(|e| {
                    cx.cluster
                        .explain(e, &format!("pod `{pod}` logs"), ns)
                        .to_string()
                });
                PodReading {
                    pod: pod.clone(),
                    outcome,
                }
            }
        }))
        .await;

        let mut findings = Vec::new();
        let mut rows = Vec::new();
        for reading in &readings {
            let shown = match &reading.outcome {
                Ok(Some(value)) => {
                    let text = format!("{value:.1}{}", self.unit);
                    let breached = match (self.critical_above, self.warn_above) {
                        (Some(limit), _) if *value > limit => Some((Severity::Critical, limit)),
                        (_, Some(limit)) if *value > limit => Some((Severity::Warning, limit)),
                        _ => None,
                    };
                    if let Some((severity, limit)) = breached {
                        let mut finding = Finding::new(
                            severity,
                            format!(
                                "`{}` {} {text} (above {limit}{})",
                                reading.pod, self.label, self.unit
                            ),
                        );
                        finding.signal = self.signal;
                        findings.push(finding);
                    } else {
                        findings.push(Finding::new(
                            Severity::Info,
                            format!("`{}` {} {text}", reading.pod, self.label),
                        ));
                    }
                    text
                }
                Ok(None) => {
                    findings.push(Finding::new(
                        Severity::Info,
                        format!(
                            "`{}`: no {} line in the last {} lines",
                            reading.pod, self.label, self.tail
                        ),
                    ));
                    "-".to_string()
                }
                Err(reason) => {
                    findings.push(Finding::new(
                        Severity::Warning,
                        format!("`{}`: cannot read logs: {reason}", reading.pod),
                    ));
                    "error".to_string()
                }
            };
            rows.push(vec![reading.pod.clone(), shown]);
        }
        if readings.is_empty() {
            findings.push(Finding::new(
                Severity::Warning,
                format!(
                    "no running pods match `{}`; no logs to read",
                    runbook.selector
                ),
            ));
        }
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let header = format!("LATEST {}", self.label.to_uppercase());
        let table = (!rows.is_empty()).then(|| aligned_table(&["POD", &header], &rows));
        Ok(StepOutput { findings, table })
    }

    async fn latest_value(
        &self,
        api: &kube::Api<Pod>,
        pod: &str,
        container: Option<String>,
    ) -> Result<Option<f64>, kube::Error> {
        let params = LogParams {
            container,
            tail_lines: Some(self.tail),
            ..LogParams::default()
        };
        let stream = api.log_stream(pod, &params).await?;
        let mut lines = stream.lines();
        let mut latest = None;
        while let Some(line) = lines.next().await {
            let line = line.map_err(kube::Error::ReadEvents)?;
            if let Some(value) = self.pattern.value_in(&line) {
                latest = Some(value);
            }
        }
        Ok(latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vllm_kv_cache_line() {
        let p: Pattern = serde_norway::from_str(r#"'GPU KV cache usage: ([0-9.]+)%'"#).unwrap();
        let line = "INFO 11-28 01:40:12 [loggers.py:123] Engine 000: Avg prompt throughput: 1250.3 tokens/s, Avg generation throughput: 412.8 tokens/s, Running: 48 reqs, Waiting: 31 reqs, GPU KV cache usage: 97.0%, Prefix cache hit rate: 42.1%";
        assert_eq!(p.value_in(line), Some(97.0));
        assert_eq!(p.value_in("INFO POST /v1/chat/completions 200"), None);
    }

    #[test]
    fn pattern_without_group_is_refused() {
        let err = serde_norway::from_str::<Pattern>("'usage: [0-9.]+'").unwrap_err();
        assert!(err.to_string().contains("no capture group"), "{err}");
    }
}

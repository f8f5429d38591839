//! `canary`: golden prompts sent to the model, answers checked, pass rate against the SLO.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::{DEFAULT_TIMEOUT, Finding, StepCx, StepError, StepOutput, Timeout, aligned_table};
use crate::metrics::histogram::seconds;
use crate::probe::{GoldenPrompt, Outcome, PromptResult, SNIPPET, SuiteOptions, Target, truncate};
use crate::render::Severity;
use crate::runbook::signal::Signal;

/// Runbook form of the `canary` step, checked when the runbook loads.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "CanaryDef")]
pub struct Canary {
    /// Heading shown in the report.
    pub title: Option<String>,
    /// Time limit for this step.
    pub timeout: Option<Timeout>,
    /// Where to send the prompts.
    pub target: CanaryTarget,
    /// The `model` field of each request.
    pub model: String,
    /// Pass rate (0–1) below which the step is critical.
    pub min_pass_rate: f64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Time limit of one request.
    pub request_timeout: Duration,
    /// `max_tokens` of each request unless a prompt says otherwise.
    pub max_tokens: u32,
    /// The suite.
    pub prompts: Vec<GoldenPrompt>,
}

/// Where the canary sends its prompts.
#[derive(Debug, Clone, PartialEq)]
pub enum CanaryTarget {
    /// An OpenAI-compatible base URL.
    Url(String),
    /// This port of the first ready serving pod, through the API server's pod proxy.
    PodPort(u16),
}

/// The YAML as written; [`Canary`] is built from it after cross-field checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryDef {
    title: Option<String>,
    timeout: Option<Timeout>,
    url: Option<String>,
    pod_port: Option<u16>,
    model: String,
    #[serde(default = "default_min_pass_rate")]
    min_pass_rate: f64,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    request_timeout: Option<Timeout>,
    #[serde(default = "default_max_tokens")]
    max_tokens: u32,
    prompts: Vec<GoldenPrompt>,
}

fn default_min_pass_rate() -> f64 {
    0.9
}

fn default_concurrency() -> usize {
    2
}

fn default_max_tokens() -> u32 {
    128
}

/// The step's time limit when the runbook does not say: room for a few 10 s requests, where
/// the 10 s default of other steps would let one hanging prompt use the whole budget.
pub const DEFAULT_CANARY_TIMEOUT: Duration = Duration::from_secs(30);

/// A request's time limit when the runbook does not say.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl TryFrom<CanaryDef> for Canary {
    type Error = String;

    fn try_from(d: CanaryDef) -> Result<Canary, String> {
        let target = match (d.url, d.pod_port) {
            (Some(url), None) => CanaryTarget::Url(url),
            (None, Some(port)) => CanaryTarget::PodPort(port),
            (Some(_), Some(_)) => {
                return Err("canary: give `url:` or `pod_port:`, not both".to_string());
            }
            (None, None) => {
                return Err(
                    "canary: say where to send the prompts: `url: http://host:8000` or `pod_port: 8000`"
                        .to_string(),
                );
            }
        };
        if !(0.0..=1.0).contains(&d.min_pass_rate) {
            return Err(format!(
                "canary: `min_pass_rate: {}` must be a share between 0 and 1, e.g. 0.9",
                d.min_pass_rate
            ));
        }
        if d.concurrency == 0 {
            return Err("canary: `concurrency: 0` would send nothing; use 1 or more".to_string());
        }
        if d.prompts.is_empty() {
            return Err("canary: `prompts:` is empty; add at least one golden prompt".to_string());
        }
        let mut names: Vec<&str> = d.prompts.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "canary: two prompts are named `{}`; names must be unique so the report can tell them apart",
                w[0]
            ));
        }
        Ok(Canary {
            title: d.title,
            timeout: Some(d.timeout.unwrap_or(Timeout(DEFAULT_CANARY_TIMEOUT))),
            target,
            model: d.model,
            min_pass_rate: d.min_pass_rate,
            concurrency: d.concurrency,
            request_timeout: d
                .request_timeout
                .map(|t| t.0)
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            max_tokens: d.max_tokens,
            prompts: d.prompts,
        })
    }
}

impl Canary {
    pub(super) async fn run(&self, cx: &StepCx<'_>) -> Result<StepOutput, StepError> {
        // Stop sending at 90% of the step's budget so the runner gets our report rather than
        // a bare timeout; unsent prompts are reported as not run.
        let budget = self.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT);
        let deadline = crate::probe::step_deadline(budget);
        let target = match &self.target {
            CanaryTarget::Url(url) => {
                Target::url(url).map_err(|e| StepError::Missing(e.to_string()))?
            }
            CanaryTarget::PodPort(port) => self.ready_pod(cx, *port).await?,
        };
        let results = self.run_against(&target, deadline).await;
        Ok(self.report(&target, &results))
    }

    /// Send the suite to `target`; for callers that pick their own target.
    pub async fn run_against(&self, target: &Target, deadline: Instant) -> Vec<PromptResult> {
        let options = SuiteOptions {
            model: self.model.clone(),
            max_tokens: self.max_tokens,
            concurrency: self.concurrency,
            request_timeout: self.request_timeout,
            deadline: Some(deadline),
        };
        crate::probe::run_suite(target, &self.prompts, &options).await
    }

    /// The first ready serving pod (by name, so reruns hit the same one) as a proxy target.
    async fn ready_pod(&self, cx: &StepCx<'_>, port: u16) -> Result<Target, StepError> {
        let runbook = cx.runbook;
        let ns = &runbook.namespace;
        let pods = cx.serving_pods().await?;
        let mut ready: Vec<String> = pods
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        ready.sort();
        let pod = ready.into_iter().next().ok_or_else(|| {
            StepError::Missing(format!(
                "no ready pod matches `{}` in namespace `{ns}`, so no golden prompt was sent; see the pods step",
                runbook.selector
            ))
        })?;
        Ok(Target::PodProxy {
            client: cx.cluster.client(),
            namespace: ns.clone(),
            pod,
            port,
        })
    }

    /// Findings and table from the results.
    pub fn report(&self, target: &Target, results: &[PromptResult]) -> StepOutput {
        let total = results.len();
        let passed = results.iter().filter(|r| r.outcome.passed()).count();
        let rate = if total == 0 {
            0.0
        } else {
            passed as f64 / total as f64
        };
        let mut findings = Vec::new();
        let mut headline = format!(
            "{passed}/{total} golden prompts passed ({:.0}%, SLO {:.0}%) on {}",
            rate * 100.0,
            self.min_pass_rate * 100.0,
            target.describe()
        );
        // The slowest answer that came back: a slow model is the next thing to ask about.
        if let Some(slowest) = results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Passed { .. } | Outcome::Failed { .. }))
            .max_by_key(|r| r.latency)
        {
            headline.push_str(&format!(
                "; slowest answer {} (`{}`)",
                seconds(slowest.latency.as_secs_f64()),
                slowest.name
            ));
        }
        let wrong_answers = results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
            .count();
        let no_answers = total - passed - wrong_answers;
        // Wrong answers point at the model or its prompt; no answer at all at the engine.
        let signal = if wrong_answers >= no_answers {
            Signal::CanaryFailing
        } else {
            Signal::EngineErrors
        };
        findings.push(if rate < self.min_pass_rate {
            Finding::new(
                Severity::Critical,
                format!("pass rate below SLO: {headline}"),
            )
            .signal(signal)
        } else if passed < total {
            Finding::new(Severity::Warning, headline).signal(signal)
        } else {
            Finding::new(Severity::Info, headline)
        });
        for result in results {
            if let Some(text) = failure_line(result) {
                findings.push(Finding::new(Severity::Warning, text));
            }
        }
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|r| {
                let latency = match r.outcome {
                    Outcome::NotRun => "-".to_string(),
                    _ => seconds(r.latency.as_secs_f64()),
                };
                vec![r.name.clone(), r.outcome.label(), latency]
            })
            .collect();
        let table =
            (!rows.is_empty()).then(|| aligned_table(&["PROMPT", "RESULT", "LATENCY"], &rows));
        StepOutput { findings, table }
    }
}

/// One line for a prompt that did not pass; `None` when it passed.
fn failure_line(result: &PromptResult) -> Option<String> {
    let name = &result.name;
    Some(match &result.outcome {
        Outcome::Passed { .. } => return None,
        Outcome::Failed { answer, failures } => format!(
            "`{name}` failed: {}; answer: \"{}\"",
            failures.join("; "),
            truncate(answer, SNIPPET)
        ),
        Outcome::Timeout {
            after,
            cut_by_deadline: false,
        } => format!(
            "`{name}` timed out: no answer within {}; the server hangs or is overloaded",
            super::human_duration(*after)
        ),
        // The deadline falls a few milliseconds after the request started: round for people.
        Outcome::Timeout {
            after,
            cut_by_deadline: true,
        } => format!(
            "`{name}` timed out: no answer within ~{} when the step's time budget ran out; raise the step's `timeout:`",
            super::human_duration(Duration::from_millis(
                (after.as_millis() as u64).div_ceil(100) * 100
            ))
        ),
        Outcome::Http { status, snippet } => format!("`{name}` got HTTP {status}: {snippet}"),
        Outcome::Malformed { reason, snippet } => {
            format!("`{name}` got an answer that is not a chat completion ({reason}): {snippet}")
        }
        Outcome::Unreachable { reason } => format!("`{name}` could not be sent: {reason}"),
        Outcome::NotRun => format!(
            "`{name}` was not sent: the step's time budget ran out; raise the step's `timeout:` or lower `request_timeout:`"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<Canary, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    const PROMPTS: &str = "prompts: [{name: a, prompt: hi, expect: [non_empty]}]";

    #[test]
    fn defaults_and_targets() {
        let c = load(&format!("{{url: 'http://m:8000', model: chat, {PROMPTS}}}")).unwrap();
        assert_eq!(c.target, CanaryTarget::Url("http://m:8000".into()));
        assert_eq!((c.concurrency, c.min_pass_rate), (2, 0.9));
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.timeout, Some(Timeout(DEFAULT_CANARY_TIMEOUT)));
        let c = load(&format!(
            "{{pod_port: 8000, model: chat, request_timeout: 2s, {PROMPTS}}}"
        ))
        .unwrap();
        assert_eq!(c.target, CanaryTarget::PodPort(8000));
        assert_eq!(c.request_timeout, Duration::from_secs(2));
    }

    #[test]
    fn mistakes_are_refused_at_load() {
        for (yaml, expected) in [
            (format!("{{model: chat, {PROMPTS}}}"), "say where to send"),
            (
                format!("{{url: u, pod_port: 1, model: chat, {PROMPTS}}}"),
                "not both",
            ),
            (
                format!("{{url: u, model: chat, min_pass_rate: 90, {PROMPTS}}}"),
                "between 0 and 1",
            ),
            (
                format!("{{url: u, model: chat, concurrency: 0, {PROMPTS}}}"),
                "concurrency: 0",
            ),
            ("{url: u, model: chat, prompts: []}".to_string(), "is empty"),
            (
                "{url: u, model: chat, prompts: [{name: a, prompt: x}, {name: a, prompt: y}]}"
                    .to_string(),
                "two prompts are named `a`",
            ),
            (
                format!("{{url: u, model: chat, concurency: 3, {PROMPTS}}}"),
                "unknown field `concurency`",
            ),
        ] {
            let err = load(&yaml).unwrap_err();
            assert!(err.contains(expected), "{yaml}: {err}");
        }
    }
}

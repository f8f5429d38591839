//! Golden prompts: a small fixed suite sent to an OpenAI-compatible chat endpoint, each answer
//! checked with assertions. A model that answers `200 OK` with empty, truncated or wrong text
//! passes every infrastructure check; this is the check that notices.
//!
//! Every request runs under its own time limit and the suite under a deadline, so a hanging
//! endpoint becomes a `timeout` line for that prompt and the report still comes back.

pub mod expect;
pub mod transport;

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use tokio::time::Instant;

pub use expect::Expect;
pub use transport::{RawAnswer, Target, TransportError};

/// One golden prompt as the runbook writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenPrompt {
    /// Short name for the report, e.g. `capital`.
    pub name: String,
    /// The user message.
    pub prompt: String,
    /// Checks on the answer; all must hold.
    #[serde(default)]
    pub expect: Vec<Expect>,
    /// Overrides the suite's `max_tokens` for this prompt.
    pub max_tokens: Option<u32>,
}

/// How to send a suite.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// The `model` field of each request.
    pub model: String,
    /// `max_tokens` unless a prompt says otherwise.
    pub max_tokens: u32,
    /// Requests in flight at once, at least 1.
    pub concurrency: usize,
    /// Time limit of one request.
    pub request_timeout: Duration,
    /// No request runs past this instant; prompts not started by then are [`Outcome::NotRun`].
    pub deadline: Option<Instant>,
}

/// What happened to one prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every assertion held.
    Passed {
        /// The model's answer.
        answer: String,
    },
    /// The model answered, and some assertions failed.
    Failed {
        /// The model's answer.
        answer: String,
        /// One line per failed assertion.
        failures: Vec<String>,
    },
    /// No complete answer within the time limit.
    Timeout {
        /// The limit that ran out.
        after: Duration,
        /// The suite's deadline cut the request short, not `request_timeout`.
        cut_by_deadline: bool,
    },
    /// The server answered with an error status.
    Http {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        snippet: String,
    },
    /// The server answered 2xx with something that is not a chat completion.
    Malformed {
        /// What was wrong.
        reason: String,
        /// The start of the body.
        snippet: String,
    },
    /// No HTTP answer at all (connection refused, DNS, reset).
    Unreachable {
        /// The transport error.
        reason: String,
    },
    /// Not sent: the step's time budget ran out first.
    NotRun,
}

impl Outcome {
    /// Whether the prompt passed.
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Passed { .. })
    }

    /// A short word for tables: `pass`, `FAIL`, `timeout`, `HTTP 500`, ...
    pub fn label(&self) -> String {
        match self {
            Outcome::Passed { .. } => "pass".to_string(),
            Outcome::Failed { .. } => "FAIL".to_string(),
            Outcome::Timeout { .. } => "timeout".to_string(),
            Outcome::Http { status, .. } => format!("HTTP {status}"),
            Outcome::Malformed { .. } => "bad answer".to_string(),
            Outcome::Unreachable { .. } => "unreachable".to_string(),
            Outcome::NotRun => "not run".to_string(),
        }
    }
}

/// One prompt's result.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptResult {
    /// The prompt's name.
    pub name: String,
    /// What happened.
    pub outcome: Outcome,
    /// From sending to the full answer (or to giving up).
    pub latency: Duration,
}

/// Send every prompt to `target`, at most `concurrency` at a time; results in suite order.
pub async fn run_suite(
    target: &Target,
    prompts: &[GoldenPrompt],
    options: &SuiteOptions,
) -> Vec<PromptResult> {
    // The futures are built up front (they do nothing until polled): a `.map(closure)` kept
    // inside the stream makes the caller's future fail `Send`'s higher-ranked check
    // (rust-lang/rust#102211), and chat adapters spawn it.
    let pending: Vec<_> = prompts
        .iter()
        .map(|prompt| run_one(target, prompt, options))
        .collect();
    futures::stream::iter(pending)
        // `buffered` keeps suite order in the report while bounding requests in flight.
        .buffered(options.concurrency.max(1))
        .collect()
        .await
}

async fn run_one(target: &Target, prompt: &GoldenPrompt, options: &SuiteOptions) -> PromptResult {
    let started = Instant::now();
    let mut limit_at = later(started, options.request_timeout);
    let mut cut_by_deadline = false;
    if let Some(deadline) = options.deadline {
        if started >= deadline {
            return PromptResult {
                name: prompt.name.clone(),
                outcome: Outcome::NotRun,
                latency: Duration::ZERO,
            };
        }
        if deadline < limit_at {
            limit_at = deadline;
            cut_by_deadline = true;
        }
    }
    let body = serde_json::json!({
        "model": options.model,
        "messages": [{"role": "user", "content": prompt.prompt}],
        "max_tokens": prompt.max_tokens.unwrap_or(options.max_tokens),
        "temperature": 0,
    });
    let outcome =
        match tokio::time::timeout_at(limit_at, target.post_json(body.to_string().into())).await {
            Err(_) => Outcome::Timeout {
                after: limit_at - started,
                cut_by_deadline,
            },
            Ok(Err(error)) => Outcome::Unreachable {
                reason: error.to_string(),
            },
            Ok(Ok(raw)) => judge(prompt, &raw),
        };
    let latency = started.elapsed();
    tracing::debug!(prompt = %prompt.name, outcome = %outcome.label(), ?latency, "golden prompt");
    PromptResult {
        name: prompt.name.clone(),
        outcome,
        latency,
    }
}

/// Turn a raw answer into an outcome: status, then the completion's shape, then assertions.
pub fn judge(prompt: &GoldenPrompt, raw: &RawAnswer) -> Outcome {
    if !(200..300).contains(&raw.status) {
        return Outcome::Http {
            status: raw.status,
            snippet: truncate(&raw.body, SNIPPET),
        };
    }
    let answer = match completion_text(&raw.body) {
        Ok(answer) => answer,
        Err(reason) => {
            return Outcome::Malformed {
                reason,
                snippet: truncate(&raw.body, SNIPPET),
            };
        }
    };
    let failures: Vec<String> = prompt
        .expect
        .iter()
        .filter_map(|e| e.check(&answer).err())
        .collect();
    if failures.is_empty() {
        Outcome::Passed { answer }
    } else {
        Outcome::Failed { answer, failures }
    }
}

/// `choices[0].message.content` of a chat completion.
pub fn completion_text(body: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON ({e})"))?;
    let choice = value
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or("no `choices[0]` in the answer")?;
    match choice.get("message").and_then(|m| m.get("content")) {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(serde_json::Value::Null) | None => {
            Err("`choices[0].message.content` is missing or null".to_string())
        }
        Some(other) => Err(format!(
            "`choices[0].message.content` is {} instead of text",
            json_kind(other)
        )),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The instant a step with time `budget` should stop waiting: 90% of it, leaving the stage
/// runner time to collect the step's report before its own timeout discards it.
pub fn step_deadline(budget: Duration) -> Instant {
    later(Instant::now(), budget.mul_f64(0.9))
}

/// `start + d`, saturating: a runbook may say `timeout: 9999999999h`, and `Instant + Duration`
/// panics on overflow.
fn later(start: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
    start.checked_add(d).unwrap_or(start + FAR)
}

/// How much of an answer or body a report line shows.
pub const SNIPPET: usize = 120;

/// The first `max` characters on one line, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    let flat: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(expect: &str) -> GoldenPrompt {
        serde_norway::from_str(&format!("{{name: p, prompt: hi, expect: {expect}}}")).unwrap()
    }

    fn ok(content: &str) -> RawAnswer {
        RawAnswer {
            status: 200,
            body: serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]})
                .to_string(),
        }
    }

    #[test]
    fn judge_orders_status_shape_then_assertions() {
        let p = prompt("[{contains: Paris}, {max_length: 10}]");
        assert!(judge(&p, &ok("Paris.")).passed());
        let Outcome::Failed { failures, .. } = judge(&p, &ok("It is Lyon, I think")) else {
            panic!()
        };
        assert_eq!(failures.len(), 2);
        let down = RawAnswer {
            status: 503,
            body: "upstream connect error".into(),
        };
        assert_eq!(
            judge(&p, &down),
            Outcome::Http {
                status: 503,
                snippet: "upstream connect error".into()
            }
        );
        let html = RawAnswer {
            status: 200,
            body: "<html>".into(),
        };
        assert!(
            matches!(judge(&p, &html), Outcome::Malformed { reason, .. } if reason.starts_with("not JSON"))
        );
        let tool = RawAnswer {
            status: 200,
            body: r#"{"choices":[{"message":{"content":null}}]}"#.into(),
        };
        assert!(matches!(judge(&p, &tool), Outcome::Malformed { .. }));
        let number = RawAnswer {
            status: 200,
            body: r#"{"choices":[{"message":{"content":5}}]}"#.into(),
        };
        assert!(
            matches!(judge(&p, &number), Outcome::Malformed { reason, .. } if reason.contains("a number"))
        );
    }

    #[test]
    fn absurd_budgets_do_not_overflow() {
        let far = step_deadline(Duration::MAX);
        assert!(far > Instant::now() + Duration::from_secs(3600));
        assert!(later(Instant::now(), Duration::MAX) > Instant::now());
    }

    #[test]
    fn truncate_counts_characters_and_flattens_lines() {
        assert_eq!(truncate(" a\nb ", 10), "a b");
        assert_eq!(truncate(&"é".repeat(5), 3), "ééé…");
    }

    #[test]
    fn prompt_typos_fail_at_load() {
        let err = serde_norway::from_str::<GoldenPrompt>("{name: p, prompt: hi, expects: []}")
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `expects`"), "{err}");
    }
}

//! The `canary` step against a fake OpenAI-compatible server on loopback: every assertion kind,
//! a hanging endpoint, HTTP 500, a non-JSON answer, and the concurrency limit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use firebreak::probe::{Outcome, Target};
use firebreak::render::Severity;
use firebreak::runbook::Runbook;
use firebreak::runbook::steps::canary::Canary;
use serde_json::{Value, json};

use crate::support::{bot, demo, say, shown, sim};

/// A model that answers by prompt, counting requests in flight.
#[derive(Default)]
struct Fake {
    answers: HashMap<String, String>,
    delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: AtomicUsize,
}

struct InFlight<'a>(&'a Fake);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `/{mode}/v1/chat/completions`: `ok` answers from the table (and hangs on a prompt with
/// `HANG`), `hang` never answers, `error` is a 500, `garbage` is a 200 that is not JSON.
async fn completions(
    State(fake): State<Arc<Fake>>,
    Path(mode): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    fake.requests.fetch_add(1, Ordering::SeqCst);
    let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    fake.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&fake);
    assert_eq!(body["temperature"], 0, "{body}");
    assert_eq!(body["model"], "chat", "{body}");
    let prompt = body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    tokio::time::sleep(fake.delay).await;
    match mode.as_str() {
        "hang" => std::future::pending().await,
        "error" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error": {"message": "CUDA error: an illegal memory access was encountered"}}"#,
        )
            .into_response(),
        "garbage" => (StatusCode::OK, "<html><body>502 Bad Gateway</body></html>").into_response(),
        _ if prompt.contains("HANG") => std::future::pending().await,
        _ => {
            let content = fake.answers.get(&prompt).cloned().unwrap_or_default();
            Json(json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": "chat",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
            }))
            .into_response()
        }
    }
}

async fn start(fake: Fake) -> (String, Arc<Fake>) {
    let fake = Arc::new(fake);
    let app = Router::new()
        .route("/{mode}/v1/chat/completions", post(completions))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, fake)
}

fn answers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(p, a)| (p.to_string(), a.to_string()))
        .collect()
}

/// A runbook whose triage stage holds the given step YAML (indented as a list item).
fn runbook(steps: &str) -> String {
    format!(
        "service: model-server\nnamespace: ai-production\nselector: app=model-server\ndeployment: model-server\nstages:\n  triage:\n    steps:\n{steps}"
    )
}

const MILAN: &str = "Milan is the capital of Italy. It is known for fashion, finance, the Duomo, La Scala and a great many other things that make this answer far too long.";

fn suite(url: &str) -> String {
    format!(
        r#"      - kind: canary
        title: Golden prompts
        url: {url}/ok
        model: chat
        min_pass_rate: 0.9
        prompts:
          - name: capital
            prompt: "What is the capital of France? Answer in one sentence."
            expect: [{{contains: "Paris"}}, {{not_contains: Lyon}}, {{regex: '^The capital'}}, non_empty, {{max_length: 200}}]
          - name: json
            prompt: 'Return {{"ok": true}} as JSON only.'
            expect: [valid_json]
          - name: italy
            prompt: "What is the capital of Italy?"
            expect: [{{contains: Rome}}, {{not_contains: Milan}}, {{regex: '^Rome'}}, {{max_length: 100}}]
          - name: empty
            prompt: "Say hello."
            expect: [non_empty]
          - name: fenced
            prompt: "Return a JSON list."
            expect: [valid_json]
"#
    )
}

fn suite_answers() -> HashMap<String, String> {
    answers(&[
        (
            "What is the capital of France? Answer in one sentence.",
            "The capital of France is Paris.",
        ),
        (r#"Return {"ok": true} as JSON only."#, "{\"ok\": true}\n"),
        ("What is the capital of Italy?", MILAN),
        ("Say hello.", "  \n "),
        ("Return a JSON list.", "```json\n[1, 2]\n```"),
    ])
}

#[tokio::test]
async fn every_assertion_passes_and_fails_through_the_bot() {
    let (url, fake) = start(Fake {
        answers: suite_answers(),
        ..Fake::default()
    })
    .await;
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[&runbook(&suite(&url))]);
    let reply = say(&bot, "/triage").await;
    let text = shown(&reply);
    assert_eq!(reply.severity, Severity::Critical, "{text}");
    assert!(
        text.contains("pass rate below SLO: 2/5 golden prompts passed (40%, SLO 90%)"),
        "{text}"
    );
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
            .to_string()
    };
    let italy = line("`italy` failed");
    for part in [
        "expected to contain `Rome`",
        "expected not to contain `Milan`",
        "expected to match `^Rome`",
        "expected at most 100 characters, got 150",
    ] {
        assert!(italy.contains(part), "{part}: {italy}");
    }
    // The answer is shown, cut at 120 characters.
    let shown_answer = italy.split("answer: \"").nth(1).unwrap();
    assert!(shown_answer.starts_with("Milan is the capital"), "{italy}");
    assert!(
        shown_answer.contains('…') && !shown_answer.contains("too long"),
        "{italy}"
    );
    assert!(line("`empty` failed").contains("expected a non-empty answer"));
    assert!(line("`fenced` failed").contains("expected valid JSON: "));
    assert!(
        !text.contains("`capital` failed") && !text.contains("`json` failed"),
        "{text}"
    );
    // The table lists every prompt with its result and latency.
    assert!(line("PROMPT").contains("LATENCY"));
    let row = |name: &str| {
        text.lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name} in:\n{text}"))
            .to_string()
    };
    assert!(row("capital").contains("pass"), "{text}");
    assert!(row("italy").contains("FAIL"), "{text}");
    assert!(row("fenced").ends_with("ms"), "{text}");
    assert_eq!(fake.requests.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn every_assertion_kind_has_a_passing_and_a_failing_case() {
    let (url, _fake) = start(Fake {
        answers: suite_answers(),
        ..Fake::default()
    })
    .await;
    let yaml = suite(&url);
    // The step's own YAML, without the list dash and indentation.
    let step: String = yaml
        .lines()
        .map(|l| l.get(8..).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let step = step.replacen("kind: canary\n", "", 1);
    let canary: Canary = serde_norway::from_str(&step).expect("step parses");
    let target = Target::url(&format!("{url}/ok")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let results = canary.run_against(&target, deadline).await;
    let by_name: HashMap<&str, &Outcome> = results
        .iter()
        .map(|r| (r.name.as_str(), &r.outcome))
        .collect();
    assert!(by_name["capital"].passed(), "{:?}", by_name["capital"]);
    assert!(by_name["json"].passed(), "{:?}", by_name["json"]);
    let Outcome::Failed { failures, .. } = by_name["italy"] else {
        panic!("{:?}", by_name["italy"])
    };
    assert_eq!(failures.len(), 4, "{failures:?}");
    assert!(matches!(by_name["empty"], Outcome::Failed { failures, .. } if failures.len() == 1));
    assert!(
        matches!(by_name["fenced"], Outcome::Failed { failures, .. } if failures[0].starts_with("expected valid JSON"))
    );
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["capital", "json", "italy", "empty", "fenced"],
        "suite order kept"
    );
}

#[tokio::test]
async fn a_hanging_prompt_is_a_timeout_and_the_report_still_comes_back() {
    let (url, _fake) = start(Fake {
        answers: answers(&[("ping", "pong")]),
        ..Fake::default()
    })
    .await;
    let steps = format!(
        r#"      - kind: canary
        url: {url}/ok
        model: chat
        request_timeout: 300ms
        prompts:
          - {{name: ping, prompt: ping, expect: [{{contains: pong}}]}}
          - {{name: slow, prompt: "HANG please", expect: [non_empty]}}
      - kind: canary
        title: Whole endpoint hangs
        url: {url}/hang
        model: chat
        request_timeout: 200ms
        prompts:
          - {{name: a, prompt: a}}
          - {{name: b, prompt: b}}
"#
    );
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[&runbook(&steps)]);
    let started = Instant::now();
    let text = shown(&say(&bot, "/triage").await);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "never waited on the hang"
    );
    assert!(
        text.contains("`slow` timed out: no answer within 300ms"),
        "{text}"
    );
    assert!(text.contains("1/2 golden prompts passed"), "{text}");
    assert!(
        text.contains("`a` timed out: no answer within 200ms"),
        "{text}"
    );
    assert!(text.contains("`b` timed out"), "{text}");
    assert!(text.contains("0/2 golden prompts passed"), "{text}");
    assert!(
        !text.contains("timed out after"),
        "no step timed out as a whole:\n{text}"
    );
}

#[tokio::test]
async fn a_short_step_budget_reports_unsent_prompts_instead_of_timing_out() {
    let (url, _fake) = start(Fake::default()).await;
    let steps = format!(
        r#"      - kind: canary
        url: {url}/hang
        model: chat
        timeout: 1s
        concurrency: 1
        prompts:
          - {{name: first, prompt: a}}
          - {{name: second, prompt: b}}
"#
    );
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[&runbook(&steps)]);
    let text = shown(&say(&bot, "/triage").await);
    assert!(
        text.contains(
            "`first` timed out: no answer within ~900ms when the step's time budget ran out"
        ),
        "{text}"
    );
    assert!(
        text.contains("`second` was not sent: the step's time budget ran out"),
        "{text}"
    );
    assert!(text.contains("0/2 golden prompts passed"), "{text}");
}

#[tokio::test]
async fn http_500_and_a_non_json_answer_are_reported_per_prompt() {
    let (url, _fake) = start(Fake::default()).await;
    let steps = format!(
        r#"      - kind: canary
        title: Server error
        url: {url}/error
        model: chat
        prompts: [{{name: boom, prompt: x, expect: [non_empty]}}]
      - kind: canary
        title: Not JSON
        url: {url}/garbage/v1
        model: chat
        prompts: [{{name: html, prompt: x, expect: [non_empty]}}]
"#
    );
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[&runbook(&steps)]);
    let reply = say(&bot, "/triage").await;
    let text = shown(&reply);
    assert_eq!(reply.severity, Severity::Critical, "{text}");
    assert!(
        text.contains(
            "`boom` got HTTP 500: {\"error\": {\"message\": \"CUDA error: an illegal memory access"
        ),
        "{text}"
    );
    assert!(
        text.contains("`html` got an answer that is not a chat completion (not JSON")
            && text.contains("<html><body>502 Bad Gateway</body></html>"),
        "{text}"
    );
}

#[tokio::test]
async fn an_endpoint_that_is_down_is_reported_not_fatal() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let steps = format!(
        "      - kind: canary\n        url: http://127.0.0.1:{port}\n        model: chat\n        prompts: [{{name: p, prompt: x}}]\n"
    );
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[&runbook(&steps)]);
    let text = shown(&say(&bot, "/triage").await);
    assert!(
        text.contains("`p` could not be sent: POST http://127.0.0.1:"),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[tokio::test]
async fn no_more_than_concurrency_requests_are_in_flight() {
    let prompts: Vec<(String, String)> = (0..6)
        .map(|i| (format!("p{i}"), "ok".to_string()))
        .collect();
    let (url, fake) = start(Fake {
        answers: prompts.iter().cloned().collect(),
        delay: Duration::from_millis(150),
        ..Fake::default()
    })
    .await;
    let list: String = prompts
        .iter()
        .map(|(p, _)| {
            format!("          - {{name: {p}, prompt: {p}, expect: [{{contains: ok}}]}}\n")
        })
        .collect();
    let steps = format!(
        "      - kind: canary\n        url: {url}/ok\n        model: chat\n        concurrency: 2\n        prompts:\n{list}"
    );
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[&runbook(&steps)]);
    let started = Instant::now();
    let text = shown(&say(&bot, "/triage").await);
    assert!(
        text.contains("6/6 golden prompts passed (100%, SLO 90%)"),
        "{text}"
    );
    assert_eq!(fake.requests.load(Ordering::SeqCst), 6);
    // Each answer took at least the fake's 150 ms.
    let slowest = text
        .split("; slowest answer ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default();
    // `152ms`, or `1.05s` on a very slow machine.
    let at_least_150ms = match slowest.strip_suffix("ms") {
        Some(ms) => ms.parse::<u64>().is_ok_and(|ms| ms >= 150),
        None => slowest.ends_with('s'),
    };
    assert!(at_least_150ms, "{slowest}: {text}");
    assert_eq!(
        fake.max_in_flight.load(Ordering::SeqCst),
        2,
        "limit reached and held"
    );
    // Three waves of 150 ms: concurrent, but no more than two at a time.
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn typos_in_the_canary_are_refused_when_the_runbook_loads() {
    for (step, expected) in [
        (
            "      - kind: canary\n        url: http://m\n        model: chat\n        prompts: [{name: p, prompt: x, expect: [{contians: Paris}]}]\n",
            "unknown variant `contians`",
        ),
        (
            "      - kind: canary\n        url: http://m\n        model: chat\n        prompts: [{name: p, prompt: x, expect: [{regex: '(unclosed'}]}]\n",
            "is not a valid regular expression",
        ),
        (
            "      - kind: canary\n        model: chat\n        prompts: [{name: p, prompt: x}]\n",
            "say where to send the prompts",
        ),
    ] {
        let err = Runbook::from_yaml(&runbook(step), "rb.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("rb.yaml:") && err.contains(expected),
            "{err}"
        );
    }
}

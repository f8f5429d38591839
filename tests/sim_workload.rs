//! The simulator's pod proxy and the workloads behind it: vLLM metrics, chat completions that
//! follow the active prompt version, and the built-in failure scenarios.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::kubectl;
use firebreak::sim::{Scenario, SimServer};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) const NS: &str = "ai-production";
pub(crate) const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";
/// The demo's pod whose KV cache is full.
const X2K9P: &str = "model-server-7c9d4f8b6-x2k9p";
/// The demo's healthy pod.
const H5R2C: &str = "model-server-7c9d4f8b6-h5r2c";

pub(crate) async fn start(scenario: &str) -> Result<SimServer, BoxError> {
    Ok(SimServer::start(Scenario::load(scenario)?, ([127, 0, 0, 1], 0).into()).await?)
}

async fn start_yaml(text: &str) -> Result<SimServer, BoxError> {
    Ok(SimServer::start(
        Scenario::from_yaml(text, "t.yaml")?,
        ([127, 0, 0, 1], 0).into(),
    )
    .await?)
}

pub(crate) fn client(server: &SimServer) -> Result<kube::Client, BoxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(kube::Client::try_from(kube::Config::new(
        server.url().parse()?,
    ))?)
}

pub(crate) fn proxy_path(pod: &str, path: &str) -> String {
    format!("/api/v1/namespaces/{NS}/pods/{pod}/proxy/{path}")
}

/// A plain HTTP/1.1 exchange, so tests see status, Content-Type and body exactly as sent.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Result<Value, BoxError> {
        Ok(serde_json::from_str(&self.body)?)
    }
}

pub(crate) async fn http(
    server: &SimServer,
    method: &str,
    path: &str,
    body: &str,
) -> Result<Reply, BoxError> {
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.addr(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8(raw)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .ok_or("no status line")?
        .parse()?;
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    Ok(Reply {
        status,
        content_type,
        body: body.to_string(),
    })
}

pub(crate) async fn ask(server: &SimServer, pod: &str, question: &str) -> Result<Value, BoxError> {
    let body = json!({"model": MODEL, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": question},
    ]});
    let reply = http(
        server,
        "POST",
        &proxy_path(&format!("{pod}:8000"), "v1/chat/completions"),
        &body.to_string(),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

pub(crate) fn content(answer: &Value) -> &str {
    answer
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .unwrap_or("<no content>")
}

/// Samples of a Prometheus text exposition: `name{labels}` → value.
pub(crate) fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

pub(crate) fn value(samples: &BTreeMap<String, f64>, name: &str, extra: &str) -> f64 {
    let sep = if extra.is_empty() { "" } else { "," };
    let key = format!("{name}{{model_name=\"{MODEL}\",engine=\"0\"{sep}{extra}}}");
    *samples
        .get(&key)
        .unwrap_or_else(|| panic!("no sample {key}"))
}

/// The histogram's upper bound holding quantile `q`, read off the cumulative buckets.
pub(crate) fn quantile_bound(samples: &BTreeMap<String, f64>, name: &str, q: f64) -> f64 {
    let count = value(samples, &format!("{name}_count"), "");
    let prefix = format!("{name}_bucket{{model_name=\"{MODEL}\",engine=\"0\",le=\"");
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, *v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut last = 0.0;
    for (_, c) in &buckets {
        assert!(*c >= last, "{name} buckets must be cumulative");
        last = *c;
    }
    assert_eq!(last, count, "{name}: the +Inf bucket equals _count");
    buckets
        .iter()
        .find(|(_, c)| *c >= q * count)
        .map_or(f64::INFINITY, |(le, _)| *le)
}

#[tokio::test]
async fn kube_rs_reads_vllm_metrics_through_the_pod_proxy() -> TestResult {
    let server = start("demo").await?;
    let client = client(&server)?;
    let request =
        axum::http::Request::get(proxy_path(&format!("{X2K9P}:8000"), "metrics")).body(vec![])?;
    let text = client.request_text(request).await?;
    for line in [
        "# TYPE vllm:kv_cache_usage_perc gauge",
        "# TYPE vllm:num_preemptions_total counter",
        "# TYPE vllm:time_to_first_token_seconds histogram",
        "# TYPE vllm:e2e_request_latency_seconds histogram",
        "# TYPE vllm:inter_token_latency_seconds histogram",
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(
        !text.contains("vllm:gpu_cache_usage_perc"),
        "one cache gauge name, not both"
    );
    let s = samples(&text);
    assert_eq!(value(&s, "vllm:kv_cache_usage_perc", ""), 0.97);
    assert!(value(&s, "vllm:num_requests_waiting", "") >= 40.0);
    assert!(value(&s, "vllm:num_preemptions_total", "") > 0.0);
    assert!(value(&s, "vllm:num_requests_running", "") > 0.0);
    assert!(value(&s, "vllm:prompt_tokens_total", "") > 0.0);
    assert!(value(&s, "vllm:generation_tokens_total", "") > 0.0);
    for reason in ["stop", "length", "abort", "error", "repetition"] {
        value(
            &s,
            "vllm:request_success_total",
            &format!("finished_reason=\"{reason}\""),
        );
    }
    for h in [
        "vllm:time_to_first_token_seconds",
        "vllm:e2e_request_latency_seconds",
        "vllm:inter_token_latency_seconds",
    ] {
        assert!(value(&s, &format!("{h}_sum"), "") > 0.0);
        quantile_bound(&s, h, 0.5);
    }
    assert!(quantile_bound(&s, "vllm:time_to_first_token_seconds", 0.95) > 2.0);

    // With no port the proxy uses the first declared container port, as the real server does.
    let no_port = http(&server, "GET", &proxy_path(X2K9P, "metrics"), "").await?;
    assert_eq!(no_port.status, 200);
    assert_eq!(
        no_port.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn older_servers_expose_the_deprecated_cache_gauge() -> TestResult {
    let server = start("stale-index").await?;
    let reply = http(
        &server,
        "GET",
        &proxy_path("model-server-6a2f8e4b1-j4tmr:8000", "metrics"),
        "",
    )
    .await?;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .body
            .contains("# TYPE vllm:gpu_cache_usage_perc gauge")
    );
    assert!(!reply.body.contains("vllm:kv_cache_usage_perc"));
    assert!(value(&samples(&reply.body), "vllm:gpu_cache_usage_perc", "") < 0.9);
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn dcgm_exporter_answers_on_its_own_port() -> TestResult {
    let server = start("demo").await?;
    let reply = http(
        &server,
        "GET",
        &proxy_path(&format!("{X2K9P}:9400"), "metrics"),
        "",
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for name in [
        "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
    ] {
        assert!(
            reply.body.contains(&format!("# TYPE {name} gauge")),
            "{}",
            reply.body
        );
    }
    assert!(reply.body.contains("Hostname=\"gpu-node-a\""));
    assert!(reply.body.contains("gpu=\"0\""));
    assert!(!reply.body.contains("vllm:"));
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn chat_completion_answers_for_the_active_prompt_version() -> TestResult {
    let server = start("demo").await?;
    let answer = ask(&server, H5R2C, "What is the capital of France?").await?;
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], MODEL);
    assert_eq!(content(&answer), "Paris is the capital of France.");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
    assert!(
        answer["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    assert!(
        answer["created"]
            .as_i64()
            .is_some_and(|t| t > 1_700_000_000)
    );
    let usage = &answer["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap_or(0)
                + usage["completion_tokens"].as_u64().unwrap_or(0)
        )
    );

    // max_tokens cuts the answer and says so.
    let short = http(
        &server,
        "POST",
        &proxy_path(H5R2C, "v1/chat/completions"),
        &json!({"messages": [{"role": "user", "content": "capital of france"}], "max_tokens": 2})
            .to_string(),
    )
    .await?
    .json()?;
    assert_eq!(content(&short), "Paris is");
    assert_eq!(short["choices"][0]["finish_reason"], "length");

    let models = http(&server, "GET", &proxy_path(H5R2C, "v1/models"), "").await?;
    assert_eq!(models.status, 200);
    assert_eq!(models.json()?["data"][0]["id"], MODEL);
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn malformed_chat_requests_get_openai_style_errors() -> TestResult {
    let server = start("demo").await?;
    let path = proxy_path(H5R2C, "v1/chat/completions");
    for body in [
        "{not json",
        "[]",
        "{}",
        r#"{"messages": []}"#,
        r#"{"messages": [{"role": "user"}]}"#,
        r#"{"messages": "hi"}"#,
        r#"{"messages": [{"role": "user", "content": "hi"}], "stream": true}"#,
        r#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}"#,
    ] {
        let reply = http(&server, "POST", &path, body).await?;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        let err = reply.json()?;
        assert_eq!(err["error"]["type"], "BadRequestError", "{body}");
        assert_eq!(err["error"]["code"], 400);
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let wrong_model = http(
        &server,
        "POST",
        &path,
        r#"{"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}"#,
    )
    .await?;
    assert_eq!(wrong_model.status, 404);
    assert_eq!(
        wrong_model.json()?["error"]["message"],
        "The model `gpt-4` does not exist."
    );
    // vLLM's own routes keep FastAPI's answers for the wrong method or path.
    let get_chat = http(&server, "GET", &path, "").await?;
    assert_eq!(get_chat.status, 405);
    let nowhere = http(&server, "GET", &proxy_path(H5R2C, "v2/nothing"), "").await?;
    assert_eq!(nowhere.status, 404);
    assert_eq!(nowhere.json()?["detail"], "Not Found");
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn proxy_errors_are_kubernetes_statuses() -> TestResult {
    let server = start("demo").await?;
    let cases = [
        // (target, code, words in the message)
        ("nope:8000", 404, "pods \"nope\" not found"),
        (
            "model-server-7c9d4f8b6-m3z7t:8000",
            503,
            "is not running (phase Pending)",
        ),
        (
            "model-server-7c9d4f8b6-q8w4n:8000",
            503,
            "connection refused",
        ),
        (
            "model-server-7c9d4f8b6-h5r2c:9999",
            503,
            "10.244.3.9:9999: connect: connection refused",
        ),
        (
            "model-server-7c9d4f8b6-h5r2c:http",
            400,
            "invalid pod request",
        ),
    ];
    for (target, code, words) in cases {
        let reply = http(&server, "GET", &proxy_path(target, "metrics"), "").await?;
        assert_eq!(reply.status, code, "{target}: {}", reply.body);
        let status = reply.json()?;
        assert_eq!(status["kind"], "Status", "{target}");
        assert_eq!(status["code"], code);
        let message = status["message"].as_str().unwrap_or("");
        assert!(message.contains(words), "{target}: {message}");
    }

    // kube-rs sees the same as an API error.
    let request = axum::http::Request::get(proxy_path("nope:8000", "metrics")).body(vec![])?;
    match client(&server)?.request_text(request).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("expected a 404 Status, got {other:?}"),
    }
    // kube's default client retries a 503 up to 15 times with growing backoff (minutes in
    // all), and the real server answers an unreachable pod with 503 too: callers probing pods
    // need `default_retry = false` or a timeout.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = kube::Config::new(server.url().parse()?);
    config.default_retry = false;
    let no_retry = kube::Client::try_from(config)?;
    let request = axum::http::Request::get(proxy_path("model-server-7c9d4f8b6-m3z7t", "metrics"))
        .body(vec![])?;
    match no_retry.request_text(request).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 503);
            assert_eq!(s.reason, "ServiceUnavailable");
        }
        other => panic!("expected a 503 Status, got {other:?}"),
    }
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn discovery_lists_the_proxy_subresource() -> TestResult {
    let server = start("demo").await?;
    let list = http(&server, "GET", "/api/v1", "").await?.json()?;
    let proxy = list["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == "pods/proxy"))
        .cloned()
        .ok_or("no pods/proxy in /api/v1")?;
    assert_eq!(proxy["namespaced"], true);
    assert!(
        proxy["verbs"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("get")) && v.contains(&json!("create")))
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kubectl_raw_reads_metrics_and_posts_chat_through_the_proxy() -> TestResult {
    let server = start("kv-cache").await?;
    let pod = "model-server-8f4b2c7d5-w6xjn:8000";
    let metrics = kubectl(&server, &["get", "--raw", &proxy_path(pod, "metrics")]).await?;
    let s = samples(&metrics);
    assert!(value(&s, "vllm:kv_cache_usage_perc", "") >= 0.96);

    // `kubectl create --raw` POSTs a file's content: the way to ask the model by hand.
    let dir = tempfile::tempdir()?;
    let question = dir.path().join("q.json");
    std::fs::write(
        &question,
        json!({"messages": [{"role": "user", "content": "ping"}]}).to_string(),
    )?;
    let question = question.to_string_lossy().into_owned();
    let path = proxy_path(pod, "v1/chat/completions");
    let answer = kubectl(&server, &["create", "--raw", &path, "-f", &question]).await?;
    let answer: Value = serde_json::from_str(&answer)?;
    assert_eq!(content(&answer), "pong");
    server.shutdown().await;
    Ok(())
}

/// A one-pod scenario whose chat behaviour is `versions` (YAML under `versions:`), v1 active.
fn chat_scenario(versions: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: p, namespace: {NS}}}
spec:
  containers:
  - name: vllm
    image: vllm/vllm-openai:v0.11.0
    ports: [{{containerPort: 8000}}]
status:
  phase: Running
  podIP: 10.244.9.9
  containerStatuses:
  - {{name: vllm, image: x, imageID: x, ready: true, restartCount: 0, state: {{running: {{startedAt: now}}}}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: prompt-versions, namespace: {NS}}}
data: {{active: v1}}
---
apiVersion: sim.firebreak.dev/v1
kind: PodWorkload
metadata: {{name: p, namespace: {NS}}}
model: {MODEL}
chat:
  prompt_config: {{configmap: prompt-versions, active_key: active}}
  versions:
{versions}"
    )
}

#[tokio::test]
async fn failing_and_hanging_versions() -> TestResult {
    let server = start_yaml(&chat_scenario("    v1: {status: 500}\n")).await?;
    let body = json!({"messages": [{"role": "user", "content": "hi"}]}).to_string();
    let reply = http(
        &server,
        "POST",
        &proxy_path("p", "v1/chat/completions"),
        &body,
    )
    .await?;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()?["error"]["type"], "InternalServerError");
    server.shutdown().await;

    let server = start_yaml(&chat_scenario("    v1: {hang: true}\n")).await?;
    let hung = tokio::time::timeout(
        Duration::from_millis(400),
        http(
            &server,
            "POST",
            &proxy_path("p", "v1/chat/completions"),
            &body,
        ),
    )
    .await;
    assert!(hung.is_err(), "a hanging endpoint does not answer");
    // Metrics still answer: the engine is up, only generation hangs.
    assert_eq!(
        http(&server, "GET", &proxy_path("p", "metrics"), "")
            .await?
            .status,
        200
    );
    Ok(())
}

#[test]
fn pod_workload_mistakes_name_file_line_and_fix() {
    let load = |text: &str| {
        Scenario::from_yaml(text, "t.yaml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let ok = chat_scenario("    v1: {default: hi}\n");
    assert!(Scenario::from_yaml(&ok, "t.yaml").is_ok());

    let missing_pod = ok.replace(
        "kind: PodWorkload\nmetadata: {name: p,",
        "kind: PodWorkload\nmetadata: {name: q,",
    );
    let err = load(&missing_pod);
    assert!(
        err.starts_with("t.yaml:") && err.contains("no Pod document declares it"),
        "{err}"
    );

    let typo = ok.replace("model: ", "modle: ");
    let err = load(&typo);
    let line = typo
        .lines()
        .position(|l| l.starts_with("modle:"))
        .unwrap_or(0)
        + 1;
    assert!(
        err.starts_with(&format!("t.yaml:{line}:")) && err.contains("modle"),
        "{err}"
    );

    let unknown_version = ok.replace("active: v1", "active: v9");
    let err = load(&unknown_version);
    assert!(err.contains("`v9`") && err.contains("known: v1"), "{err}");

    let bad_fraction = format!("{ok}metrics: {{kv_cache_usage: 97}}\n");
    let err = load(&bad_fraction);
    assert!(
        err.contains("kv_cache_usage") && err.contains("between 0 and 1"),
        "{err}"
    );

    let bad_gauge = format!("{ok}metrics: {{cache_gauge_name: kv_cache}}\n");
    assert!(
        load(&bad_gauge).contains("kv_cache_usage_perc"),
        "{}",
        load(&bad_gauge)
    );

    let undeclared_port = format!("{ok}port: 8080\n");
    assert!(load(&undeclared_port).contains("declares no containerPort 8080"));
}

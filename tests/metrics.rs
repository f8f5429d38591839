//! The `metrics` step against vLLM exposition text served over loopback HTTP (`url:`), for
//! current vLLM (`vllm:kv_cache_usage_perc`) and older servers (`vllm:gpu_cache_usage_perc`).

use std::fmt::Write;
use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use firebreak::render::Severity;
use firebreak::runbook::Runbook;

use crate::support::{bot, demo, say, shown, sim};

/// vLLM's TTFT bucket bounds, with cumulative counts of 1000 requests: p50 ≈ 417ms,
/// p95 = 1.9375s, p99 = 3.75s (interpolated by hand from these rows).
const TTFT: &[(&str, u64)] = &[
    ("0.001", 0),
    ("0.005", 0),
    ("0.01", 0),
    ("0.02", 0),
    ("0.04", 5),
    ("0.06", 20),
    ("0.08", 50),
    ("0.1", 100),
    ("0.25", 300),
    ("0.5", 600),
    ("0.75", 800),
    ("1.0", 900),
    ("2.5", 980),
    ("5.0", 1000),
    ("7.5", 1000),
    ("10.0", 1000),
    ("20.0", 1000),
    ("40.0", 1000),
    ("80.0", 1000),
    ("160.0", 1000),
    ("640.0", 1000),
    ("2560.0", 1000),
    ("+Inf", 1000),
];

/// E2E latency: p95 lands exactly on the 20s bound.
const E2E: &[(&str, u64)] = &[
    ("0.3", 0),
    ("0.5", 0),
    ("1.0", 50),
    ("2.5", 200),
    ("5.0", 500),
    ("10.0", 800),
    ("15.0", 900),
    ("20.0", 950),
    ("30.0", 990),
    ("40.0", 1000),
    ("60.0", 1000),
    ("+Inf", 1000),
];

/// A `/metrics` text shaped like vLLM's, with two engines (data parallel) whose counts
/// split 60/40, so the step must sum across label sets.
fn vllm_exposition(cache_gauge: &str, engine_cache: [f64; 2], waiting: [u64; 2]) -> String {
    let mut t = String::new();
    let labels = |engine: usize| format!("engine=\"{engine}\",model_name=\"chat\"");
    let split = |n: u64, engine: usize| {
        if engine == 0 {
            n * 3 / 5
        } else {
            n - n * 3 / 5
        }
    };
    writeln!(
        t,
        "# HELP python_gc_objects_collected_total Objects collected during gc"
    )
    .unwrap();
    writeln!(t, "# TYPE python_gc_objects_collected_total counter").unwrap();
    writeln!(
        t,
        "python_gc_objects_collected_total{{generation=\"0\"}} 12345.0"
    )
    .unwrap();
    writeln!(
        t,
        "# HELP {cache_gauge} KV-cache usage. 1 means 100 percent usage."
    )
    .unwrap();
    writeln!(t, "# TYPE {cache_gauge} gauge").unwrap();
    for e in 0..2 {
        writeln!(t, "{cache_gauge}{{{}}} {}", labels(e), engine_cache[e]).unwrap();
        writeln!(t, "vllm:num_requests_running{{{}}} {}.0", labels(e), 24).unwrap();
        writeln!(
            t,
            "vllm:num_requests_waiting{{{}}} {}.0",
            labels(e),
            waiting[e]
        )
        .unwrap();
    }
    writeln!(t, "# TYPE vllm:num_preemptions_total counter").unwrap();
    writeln!(t, "vllm:num_preemptions_total{{{}}} 12.0", labels(0)).unwrap();
    writeln!(t, "vllm:num_preemptions_total{{{}}} 5.0", labels(1)).unwrap();
    writeln!(t, "# TYPE vllm:request_success_total counter").unwrap();
    for (reason, n) in [
        ("stop", 900),
        ("length", 80),
        ("abort", 20),
        ("error", 0),
        ("repetition", 0),
    ] {
        for e in 0..2 {
            writeln!(
                t,
                "vllm:request_success_total{{{},finished_reason=\"{reason}\"}} {}.0",
                labels(e),
                split(n, e)
            )
            .unwrap();
        }
    }
    for (name, buckets) in [
        ("vllm:time_to_first_token_seconds", TTFT),
        ("vllm:e2e_request_latency_seconds", E2E),
    ] {
        writeln!(t, "# HELP {name} Histogram.").unwrap();
        writeln!(t, "# TYPE {name} histogram").unwrap();
        for e in 0..2 {
            for (le, n) in buckets {
                writeln!(
                    t,
                    "{name}_bucket{{{},le=\"{le}\"}} {}.0",
                    labels(e),
                    split(*n, e)
                )
                .unwrap();
            }
            writeln!(t, "{name}_count{{{}}} {}.0", labels(e), split(1000, e)).unwrap();
            writeln!(t, "{name}_sum{{{}}} 1234.5", labels(e)).unwrap();
        }
    }
    t
}

async fn serve() -> String {
    let app = Router::new()
        .route(
            "/current/metrics",
            get(|| async { vllm_exposition("vllm:kv_cache_usage_perc", [0.42, 0.97], [3, 28]) }),
        )
        .route(
            "/old/metrics",
            get(|| async { vllm_exposition("vllm:gpu_cache_usage_perc", [0.885, 0.5], [0, 0]) }),
        )
        .route(
            "/html/metrics",
            get(|| async { "<html><body>Login</body></html>" }),
        )
        .route(
            "/broken/metrics",
            get(|| async {
                (StatusCode::SERVICE_UNAVAILABLE, "engine is restarting").into_response()
            }),
        )
        .route("/hang/metrics", get(std::future::pending::<String>))
        .route(
            "/truncated/metrics",
            get(|| async {
                let mut text = vllm_exposition("vllm:kv_cache_usage_perc", [0.3, 0.3], [0, 0]);
                text.truncate(text.len() / 2);
                text.push_str("vllm:num_requests_waiting{engine=\"0\",model_na");
                text
            }),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn runbook(steps: &str) -> String {
    format!(
        "service: model-server\nnamespace: ai-production\nselector: app=model-server\ndeployment: model-server\nslo:\n  ttft_p95_seconds: 0.5\n  e2e_p95_seconds: 30\n  kv_cache_usage_max_percent: 90\nstages:\n  triage:\n    steps:\n{steps}"
    )
}

fn metrics_step(url: &str) -> String {
    format!("      - kind: metrics\n        url: {url}\n")
}

fn line_with(text: &str, needle: &str) -> String {
    crate::support::finding_line(text, needle)
}

#[tokio::test]
async fn current_vllm_kv_cache_pressure_preemptions_finish_reasons_and_ttft() {
    let base = serve().await;
    let url = format!("{base}/current/metrics");
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[&runbook(&metrics_step(&url))]);
    let reply = say(&bot, "/triage").await;
    let text = shown(&reply);
    assert_eq!(reply.severity, Severity::Critical, "{text}");
    // The fuller engine's 0.97 → 97%, with 3 + 28 requests waiting.
    let kv = line_with(&text, "KV cache 97.0% (above 90%)");
    assert!(
        kv.contains("with 31 requests waiting") && kv.starts_with("🔴"),
        "{kv}"
    );
    assert!(line_with(&text, "17 preemptions since start").starts_with("🟠"));
    let length = line_with(&text, "finished with `length`");
    assert!(length.contains("8.0% of 1000 requests"), "{length}");
    assert!(
        !text.contains("finished with `abort`"),
        "2% is under the 5% default:\n{text}"
    );
    assert!(!text.contains("finished with `error`"), "{text}");
    // p95 = 1 + 1.5 * (950 - 900) / (980 - 900) = 1.9375s.
    assert!(line_with(&text, "TTFT p95 1.94s since start (SLO 500ms)").starts_with("🟠"));
    assert!(
        !text.contains("E2E latency p95"),
        "20s is within the 30s SLO:\n{text}"
    );
    // The table: TTFT p50 = 0.25 + 0.25 * 200/300 ≈ 417ms, p99 = 2.5 + 2.5 * 10/20 = 3.75s;
    // E2E p50, p95 and p99 fall exactly on bucket bounds (500, 950, 990 of 1000): 5s, 20s, 30s.
    let row = line_with(&text, "/current/metrics   ");
    for cell in [
        "97.0%",
        "48",
        "31",
        "17",
        "417ms/1.94s/3.75s",
        "5.00s/20.0s/30.0s",
        "length 8.0%, abort 2.0%",
    ] {
        assert!(row.contains(cell), "{cell}: {row}");
    }
    assert!(line_with(&text, "TARGET").contains("TTFT P50/P95/P99"));
}

#[tokio::test]
async fn older_vllm_exposes_only_the_deprecated_gauge() {
    let base = serve().await;
    let sim = sim(demo()).await;
    let bot = bot(
        &sim,
        &[&runbook(&metrics_step(&format!("{base}/old/metrics")))],
    );
    let text = shown(&say(&bot, "/triage").await);
    let summary = line_with(&text, "/old/metrics`: KV cache 88.5%");
    assert!(
        summary.contains("0 waiting, 48 running, TTFT p95 1.94s"),
        "{summary}"
    );
    assert!(
        !text.contains("above 90%"),
        "88.5% is under the SLO:\n{text}"
    );
}

#[tokio::test]
async fn bad_answers_are_findings_not_errors() {
    let base = serve().await;
    let steps: String = ["html", "broken", "truncated", "absent"]
        .iter()
        .map(|p| metrics_step(&format!("{base}/{p}/metrics")))
        .collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let steps = steps
        + &metrics_step(&format!("http://127.0.0.1:{port}/metrics"))
        + &metrics_step(&format!("{base}/hang/metrics"))
        + "        timeout: 1s\n";
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[&runbook(&steps)]);
    let text = shown(&say(&bot, "/triage").await);
    assert!(
        !text.contains("error**") && !text.contains("timeout"),
        "{text}"
    );
    assert!(
        line_with(&text, "/html/metrics`: cannot read metrics").contains("no Prometheus samples"),
        "{text}"
    );
    assert!(
        line_with(&text, "/broken/metrics`: cannot read metrics")
            .contains("HTTP 503: engine is restarting")
    );
    // Half a scrape still gives what it has, and says some lines were unreadable.
    assert!(line_with(&text, "/truncated/metrics`: KV cache 30.0%").contains("1 unreadable lines"));
    assert!(line_with(&text, "/absent/metrics`: cannot read metrics").contains("HTTP 404"));
    assert!(
        line_with(
            &text,
            &format!("127.0.0.1:{port}/metrics`: cannot read metrics")
        )
        .contains("GET")
    );
}

#[test]
fn metrics_options_are_checked_when_the_runbook_loads() {
    let err = Runbook::from_yaml(
        &runbook("      - kind: metrics\n        prot: 9090\n"),
        "rb.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown field `prot`"), "{err}");
    let err = Runbook::from_yaml(
        &runbook("      - kind: metrics\n        url: http://m:8000/metrics\n        port: 9090\n"),
        "rb.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`url:` is the whole address"), "{err}");
    Runbook::from_yaml(
        &runbook("      - kind: metrics\n        port: 9090\n        path: /stats\n        finish_warn_percent: 2\n"),
        "rb.yaml",
    )
    .expect("options parse");
}

#[tokio::test]
async fn pod_proxy_path_reports_per_pod_without_failing_the_step() {
    // Until the simulator serves the pod proxy, every running pod's scrape fails; what matters
    // here is that each one is a finding of its own and the step and report still come back.
    let sim = sim(demo()).await;
    let steps = "      - kind: metrics\n      - kind: canary\n        pod_port: 8000\n        model: chat\n        prompts: [{name: p, prompt: x, expect: [non_empty]}]\n";
    let bot = bot(&sim, &[&runbook(steps)]);
    let text = shown(&say(&bot, "/triage").await);
    assert!(
        !text.contains("error**") && !text.contains("timed out after"),
        "{text}"
    );
    let requests = sim.requests();
    // The three Running pods are scraped (the Pending one is not); each gets its own line.
    for pod in ["h5r2c", "q8w4n", "x2k9p"] {
        let path = format!(
            "GET /api/v1/namespaces/ai-production/pods/model-server-7c9d4f8b6-{pod}:8000/proxy/metrics"
        );
        assert!(requests.contains(&path), "{path} in {requests:#?}");
        line_with(&text, &format!("`model-server-7c9d4f8b6-{pod}`: "));
    }
    assert!(
        !requests.iter().any(|r| r.contains("m3z7t:8000")),
        "{requests:#?}"
    );
    // The canary posts to the first ready pod through the same proxy.
    assert!(
        requests.contains(
            &"POST /api/v1/namespaces/ai-production/pods/model-server-7c9d4f8b6-h5r2c:8000/proxy/v1/chat/completions".to_string()
        ),
        "{requests:#?}"
    );
    line_with(&text, "golden prompts passed");
}

//! The `prometheus` step against a real Prometheus (Debian's `prometheus` package) loaded with
//! eight hours of generated history: one service breaching a 99.9% SLO, one healthy.

use std::fmt::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use firebreak::cluster::Cluster;
use firebreak::render::Severity;
use firebreak::runbook::signal::Signal;
use firebreak::runbook::steps::{StageReport, StepStatus, run_stage};
use firebreak::runbook::{Runbook, Stage};

/// The end of the generated history: 2026-01-01T00:00:00Z.
const T: i64 = 1_767_225_600;
/// Sample spacing.
const EVERY: i64 = 30;
/// Requests per second per service.
const RPS: f64 = 100.0;

/// Counters for two services over the 8 hours before [`T`]: `breached` errs 0.05% until the
/// last hour, then 5% (a 50× burn at 99.9%); `healthy` errs 0.01% throughout.
fn openmetrics() -> String {
    let mut text =
        String::from("# HELP http_requests Requests served.\n# TYPE http_requests counter\n");
    for service in ["breached", "healthy"] {
        for code in ["200", "500"] {
            let mut total = 0.0;
            for t in (T - 8 * 3600..=T).step_by(EVERY as usize) {
                let error_share = match service {
                    "breached" if t > T - 3600 => 0.05,
                    "breached" => 0.0005,
                    _ => 0.0001,
                };
                let share = if code == "500" {
                    error_share
                } else {
                    1.0 - error_share
                };
                total += RPS * EVERY as f64 * share;
                writeln!(
                    text,
                    "http_requests_total{{service=\"{service}\",code=\"{code}\"}} {total:.3} {t}"
                )
                .unwrap();
            }
        }
    }
    text.push_str("# EOF\n");
    text
}

/// A Prometheus process serving imported blocks; killed on drop.
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require(binary: &str) {
    let found = Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{binary}` is not installed: these tests need a real Prometheus. Install Debian's \
         `prometheus` package (`apt-get install -y prometheus`, which .ci/run does)"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start() -> Server {
    require("promtool");
    require("prometheus");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("history.om.txt");
    std::fs::write(&input, openmetrics()).unwrap();
    let data = dir.path().join("data");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1m\nscrape_configs: []\n",
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // Retention is measured against the newest block, but keep it long so the
        // historical blocks are never deleted whatever the version does.
        .arg("--storage.tsdb.retention.time=100y")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let client = reqwest::Client::new();
    for _ in 0..150 {
        let ready = client
            .get(format!("{}/-/ready", server.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log =
        std::fs::read_to_string(server._dir.path().join("prometheus.log")).unwrap_or_default();
    panic!("Prometheus was not ready within 30s; its log:\n{log}");
}

fn runbook(steps: &str) -> Runbook {
    let yaml = format!(
        "service: model-server\nnamespace: ai-production\nselector: app=model-server\ndeployment: model-server\nstages:\n  triage:\n    steps:\n{steps}"
    );
    Runbook::from_yaml(&yaml, "rb.yaml").unwrap()
}

async fn triage(steps: &str) -> StageReport {
    let rb = runbook(steps);
    // The step never talks to Kubernetes; the runner still wants a cluster handle.
    let cluster = Cluster::from_url("http://127.0.0.1:9").unwrap();
    run_stage(&rb, Stage::Triage, &cluster, &|_| {}).await
}

const RATIO: &str = r#"sum by (service) (rate(http_requests_total{code="500"}[$window])) / sum by (service) (rate(http_requests_total[$window]))"#;

/// One Prometheus for every case: starting it dominates the time.
#[tokio::test]
async fn burn_rates_thresholds_and_queries_against_a_real_prometheus() {
    let prom = start().await;
    let url = &prom.url;
    let steps = format!(
        r#"      - kind: prometheus
        url: {url}
        at: 2026-01-01T00:00:00Z
        timeout: 20s
        burn_rate:
          - name: availability
            objective: 99.9
            error_ratio: '{RATIO}'
        thresholds:
          - name: error ratio 5m
            query: '{ratio5m}'
            above: 0.01
            severity: critical
            signal: engine_errors
          - name: broken
            query: 'sum(rate(http_requests_total[5m]'
            above: 1
        queries:
          - name: total rps
            query: sum(rate(http_requests_total[5m]))
          - name: error rps
            query: 'sum by (service) (rate(http_requests_total{{code="500"}}[5m]))'
            range: 2h
            step: 5m
"#,
        ratio5m = RATIO.replace("$window", "5m"),
    );
    let report = triage(&steps).await;
    let step = &report.steps[0];
    assert_eq!(step.status, StepStatus::Critical, "{step:#?}");
    let table = step.table.clone().unwrap_or_default();
    let texts: Vec<&str> = step.findings.iter().map(|f| f.text.as_str()).collect();

    // Burn rate: the breached service pages on the 1h/5m pair at ~50×; healthy stays quiet.
    let burn: Vec<_> = step
        .findings
        .iter()
        .filter(|f| f.signal == Some(Signal::ErrorBudgetBurn))
        .collect();
    assert_eq!(burn.len(), 1, "{texts:#?}");
    assert_eq!(burn[0].severity, Severity::Critical);
    assert!(
        burn[0].text.contains("service=\"breached\""),
        "{}",
        burn[0].text
    );
    assert!(
        burn[0].text.contains("over 1h") && burn[0].text.contains("over 5m"),
        "{}",
        burn[0].text
    );
    assert!(
        burn[0].text.contains("50.0× over 1h") && burn[0].text.contains("50.0× over 5m"),
        "{}",
        burn[0].text
    );
    assert!(
        !texts.iter().any(|t| t.contains("healthy")),
        "{texts:#?}\n{table}"
    );
    let healthy_row = table
        .lines()
        .find(|l| l.starts_with("availability") && l.contains("healthy"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        healthy_row.contains("0.1000×"),
        "healthy burns 0.1×: {healthy_row}"
    );

    // Threshold: only the breached service crosses, with the runbook's severity and signal.
    let crossed: Vec<_> = step
        .findings
        .iter()
        .filter(|f| f.text.starts_with("`error ratio 5m`"))
        .collect();
    assert_eq!(crossed.len(), 1, "{texts:#?}");
    assert_eq!(crossed[0].severity, Severity::Critical);
    assert_eq!(crossed[0].signal, Some(Signal::EngineErrors));
    assert!(crossed[0].text.contains("breached") && crossed[0].text.contains("above 0.01"));

    // A PromQL syntax error is a warning naming Prometheus' parse error, not a failed step.
    let broken = texts
        .iter()
        .find(|t| t.starts_with("`broken`"))
        .unwrap_or_else(|| panic!("{texts:#?}"));
    assert!(
        broken.contains("Prometheus refused")
            && broken.contains("HTTP 400")
            && broken.contains("parse error"),
        "{broken}"
    );

    // Instant query: 200 req/s in total; range: the breached service's error rps went from
    // 0.05 to 5 within the last two hours.
    let total = table
        .lines()
        .find(|l| l.starts_with("total rps"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(total.contains("200.0"), "{total}");
    let range = table
        .lines()
        .find(|l| l.starts_with("error rps") && l.contains("breached"))
        .unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = range.split_whitespace().collect();
    assert_eq!(
        &cells[cells.len() - 3..],
        ["5.0", "0.0500", "5.0"],
        "last/min/max: {range}"
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_fails_the_step_with_the_address() {
    let port = free_port();
    let steps = format!(
        "      - kind: prometheus\n        url: http://127.0.0.1:{port}\n        queries: [{{name: up, query: up}}]\n"
    );
    let report = triage(&steps).await;
    let step = &report.steps[0];
    assert_eq!(step.status, StepStatus::Error, "{step:#?}");
    let error = step.error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "cannot reach Prometheus at http://127.0.0.1:{port}/api/v1/query"
        )) && error.to_lowercase().contains("refused"),
        "{error}"
    );
}

#[tokio::test]
async fn a_prometheus_that_hangs_fails_the_step_before_the_runner_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let steps = format!(
        "      - kind: prometheus\n        url: http://127.0.0.1:{port}\n        timeout: 1s\n        queries: [{{name: up, query: up}}]\n"
    );
    let report = triage(&steps).await;
    hold.abort();
    let step = &report.steps[0];
    assert_eq!(step.status, StepStatus::Error, "{step:#?}");
    let error = step.error.clone().unwrap_or_default();
    assert!(error.contains("did not answer within 800ms"), "{error}");
}

#[test]
fn mistakes_in_the_step_are_refused_when_the_runbook_loads() {
    let cases = [
        ("queries: [{name: a, query: up, rnage: 1h}]", "rnage"),
        (
            "thresholds: [{name: a, query: up}]",
            "needs `above:` or `below:`",
        ),
        (
            "burn_rate: [{name: a, objective: 99.9, error_ratio: 'rate(x[5m])'}]",
            "$window",
        ),
        (
            "burn_rate: [{name: a, objective: 100, error_ratio: 'rate(x[$window])'}]",
            "strictly between",
        ),
        (
            "at: yesterday\n        queries: [{name: a, query: up}]",
            "RFC 3339",
        ),
        (
            "thresholds: [{name: a, query: up, above: 1, signal: latency}]",
            "latency",
        ),
    ];
    // The README's example loads.
    runbook(
        r#"      - kind: prometheus
        url: http://prometheus.monitoring:9090
        burn_rate:
          - name: availability
            objective: 99.9
            error_ratio: 'sum(rate(http_requests_total{code=~"5.."}[$window])) / sum(rate(http_requests_total[$window]))'
        thresholds:
          - {name: TTFT p95, query: 'histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[5m])))', above: 2, signal: latency_slo}
"#,
    );
    for (body, expected) in cases {
        let yaml = format!(
            "service: s\nnamespace: n\nselector: app=s\ndeployment: s\nstages:\n  triage:\n    steps:\n      - kind: prometheus\n        url: http://p:9090\n        {body}\n"
        );
        let err = Runbook::from_yaml(&yaml, "rb.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{body}: {err}");
    }
}

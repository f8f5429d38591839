//! The `gpu` and `pipelines` steps against the simulator over real HTTP: GPU exhaustion with a
//! Pending pod, NotReady nodes, DCGM XIDs, a stale RAG index CronJob and its failed Jobs.

use firebreak::cluster::Cluster;
use firebreak::render::Severity;
use firebreak::runbook::signal::Signal;
use firebreak::runbook::steps::{Finding, run_stage};
use firebreak::runbook::{Runbook, Stage, StepReport};
use firebreak::sim::Scenario;

use crate::support::sim;

const OOM: &str = include_str!("../src/sim/scenarios/oom.yaml");
const KV_CACHE: &str = include_str!("../src/sim/scenarios/kv-cache.yaml");

fn runbook(steps: &str) -> Runbook {
    let text = format!(
        "service: model-server\nnamespace: ai-production\nselector: app=model-server\ndeployment: model-server\nstages:\n  triage:\n    steps:\n{steps}"
    );
    Runbook::from_yaml(&text, "gpu-pipelines-test.yaml").expect("test runbook parses")
}

/// Run the one-step triage stage of `steps` against `scenario`; return that step's report.
async fn run_one(scenario: Scenario, steps: &str) -> StepReport {
    let sim = sim(scenario).await;
    let cluster = Cluster::from_url(&sim.url()).expect("client builds");
    let report = run_stage(&runbook(steps), Stage::Triage, &cluster, &|_| {}).await;
    report.steps.into_iter().next().expect("one step")
}

fn with_signal(step: &StepReport, signal: Signal) -> Vec<&Finding> {
    step.findings
        .iter()
        .filter(|f| f.signal == Some(signal))
        .collect()
}

fn dump(step: &StepReport) -> String {
    let lines: Vec<String> = step
        .findings
        .iter()
        .map(|f| format!("{:?} {:?} {}", f.severity, f.signal, f.text))
        .collect();
    format!(
        "status {:?} error {:?}\n{}\n{}",
        step.status,
        step.error,
        lines.join("\n"),
        step.table.clone().unwrap_or_default()
    )
}

/// `text` with the first `from` after `anchor` replaced by `to`.
fn edit_after(text: &str, anchor: &str, from: &str, to: &str) -> String {
    let at = text.find(anchor).expect("anchor in scenario");
    let (head, tail) = text.split_at(at);
    assert!(tail.contains(from), "{from:?} after {anchor:?}");
    format!("{head}{}", tail.replacen(from, to, 1))
}

const GPU_STEP: &str = "      - kind: gpu\n";

#[tokio::test]
async fn oom_scenario_has_no_free_gpu_for_the_pending_pod() {
    let step = run_one(Scenario::load("oom").unwrap(), GPU_STEP).await;
    let all = dump(&step);
    assert_eq!(
        step.status,
        firebreak::runbook::StepStatus::Critical,
        "{all}"
    );
    let exhausted = with_signal(&step, Signal::GpuExhausted);
    assert_eq!(exhausted.len(), 1, "{all}");
    assert_eq!(exhausted[0].severity, Severity::Critical);
    assert!(
        exhausted[0].text.contains("model-server-5b8c6d9f4-p4n8s")
            && exhausted[0].text.contains("none of the 3"),
        "{all}"
    );
    assert!(
        step.findings
            .iter()
            .any(|f| f.text.starts_with("0 of 3 nvidia.com/gpu free")),
        "{all}"
    );
    assert!(with_signal(&step, Signal::NodeNotReady).is_empty(), "{all}");
    let table = step.table.clone().unwrap_or_default();
    assert!(
        table.starts_with("NODE") && table.contains("GPU ALLOCATABLE"),
        "{table}"
    );
    for node in ["gpu-node-a", "gpu-node-b", "gpu-node-c"] {
        let row = table.lines().find(|l| l.starts_with(node)).expect(node);
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells, [node, "True", "1", "1", "0", "-"], "{table}");
    }
}

#[tokio::test]
async fn healthy_gpus_are_neither_exhausted_nor_not_ready() {
    for name in ["kv-cache", "bad-prompt"] {
        let step = run_one(Scenario::load(name).unwrap(), GPU_STEP).await;
        let all = dump(&step);
        assert!(step.error.is_none(), "{name}: {all}");
        assert!(
            with_signal(&step, Signal::GpuExhausted).is_empty(),
            "{name}: {all}"
        );
        assert!(
            with_signal(&step, Signal::NodeNotReady).is_empty(),
            "{name}: {all}"
        );
    }
}

#[tokio::test]
async fn a_not_ready_node_and_memory_pressure_are_reported() {
    let text = edit_after(
        KV_CACHE,
        "name: gpu-node-c",
        "    status: \"True\"\n    reason: KubeletReady\n    message: kubelet is posting ready status",
        "    status: \"Unknown\"\n    reason: NodeStatusUnknown\n    message: Kubelet stopped posting node status.",
    );
    let text = edit_after(
        &text,
        "name: gpu-node-b",
        "    status: \"False\"\n    reason: KubeletHasSufficientMemory",
        "    status: \"True\"\n    reason: KubeletHasInsufficientMemory",
    );
    let scenario = Scenario::from_yaml(&text, "kv-cache-node-c-down").unwrap();
    let step = run_one(scenario, GPU_STEP).await;
    let all = dump(&step);
    let nodes = with_signal(&step, Signal::NodeNotReady);
    let down = nodes
        .iter()
        .find(|f| f.text.contains("`gpu-node-c` is NotReady"))
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(down.severity, Severity::Critical);
    assert!(down.text.contains("Kubelet stopped posting"), "{all}");
    let pressure = nodes
        .iter()
        .find(|f| f.text.contains("`gpu-node-b` has MemoryPressure"))
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(pressure.severity, Severity::Warning);
    let table = step.table.clone().unwrap_or_default();
    let row = table.lines().find(|l| l.starts_with("gpu-node-b")).unwrap();
    assert!(row.ends_with("MemoryPressure"), "{table}");
}

#[tokio::test]
async fn dcgm_xid_79_is_critical_and_framebuffer_is_shown() {
    // No built-in scenario has a non-zero XID: give r7kqz's GPU one.
    let text = edit_after(
        OOM,
        "kind: PodWorkload\nmetadata:\n  name: model-server-5b8c6d9f4-r7kqz",
        "xid: 0",
        "xid: 79",
    );
    let scenario = Scenario::from_yaml(&text, "oom-xid-79").unwrap();
    let step = run_one(scenario, "      - kind: gpu\n        dcgm_port: 9400\n").await;
    let all = dump(&step);
    let xids = with_signal(&step, Signal::GpuXid);
    assert_eq!(xids.len(), 1, "{all}");
    assert_eq!(xids[0].severity, Severity::Critical);
    assert!(
        xids[0].text.contains("model-server-5b8c6d9f4-r7kqz")
            && xids[0].text.contains("XID error 79")
            && xids[0].text.contains("fallen off the bus"),
        "{all}"
    );
    assert!(
        step.findings
            .iter()
            .any(|f| f.text.contains("75020 MiB used, 6075 MiB free")),
        "{all}"
    );
}

#[tokio::test]
async fn dcgm_on_a_healthy_scenario_has_no_xid() {
    let step = run_one(
        Scenario::load("bad-prompt").unwrap(),
        "      - kind: gpu\n        dcgm_port: 9400\n        timeout: 5s\n",
    )
    .await;
    let all = dump(&step);
    assert!(step.error.is_none(), "{all}");
    assert!(with_signal(&step, Signal::GpuXid).is_empty(), "{all}");
    assert!(
        step.findings
            .iter()
            .any(|f| f.text.contains("framebuffer 75080 MiB used")),
        "{all}"
    );
}

const PIPELINE_STEP: &str = "      - kind: pipelines\n        cronjobs:\n          - name: rag-index-rebuild\n            max_age: 26h\n";

#[tokio::test]
async fn stale_rag_index_is_stale_and_its_jobs_failed() {
    let step = run_one(Scenario::load("stale-index").unwrap(), PIPELINE_STEP).await;
    let all = dump(&step);
    assert_eq!(
        step.status,
        firebreak::runbook::StepStatus::Critical,
        "{all}"
    );
    let stale = with_signal(&step, Signal::PipelineStale);
    assert_eq!(stale.len(), 1, "{all}");
    assert_eq!(
        stale[0].text,
        "`rag-index-rebuild` last succeeded 3d ago (freshness target 26h)"
    );
    let failed = with_signal(&step, Signal::PipelineFailed);
    assert_eq!(failed.len(), 1, "{all}");
    assert_eq!(failed[0].severity, Severity::Critical);
    assert!(
        failed[0].text.contains("the last 3 runs failed")
            && failed[0].text.contains("BackoffLimitExceeded"),
        "{all}"
    );
    let table = step.table.clone().unwrap_or_default();
    assert!(table.starts_with("PIPELINE"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("rag-index-rebuild"))
        .unwrap();
    assert!(
        row.contains("3d ago") && row.contains("Failed (BackoffLimitExceeded)"),
        "{table}"
    );
}

#[tokio::test]
async fn a_generous_target_is_fresh_but_failures_still_count() {
    let steps = "      - kind: pipelines\n        cronjobs:\n          - name: rag-index-rebuild\n            max_age: 4d\n";
    let step = run_one(Scenario::load("stale-index").unwrap(), steps).await;
    let all = dump(&step);
    assert!(
        with_signal(&step, Signal::PipelineStale).is_empty(),
        "{all}"
    );
    assert_eq!(with_signal(&step, Signal::PipelineFailed).len(), 1, "{all}");
}

#[tokio::test]
async fn name_prefix_jobs_find_the_same_failures() {
    let steps = "      - kind: pipelines\n        jobs:\n          - name_prefix: rag-index-rebuild-\n            max_age: 90m\n";
    let step = run_one(Scenario::load("stale-index").unwrap(), steps).await;
    let all = dump(&step);
    assert_eq!(with_signal(&step, Signal::PipelineStale).len(), 1, "{all}");
    assert!(
        with_signal(&step, Signal::PipelineFailed)[0]
            .text
            .contains("BackoffLimitExceeded"),
        "{all}"
    );
}

#[tokio::test]
async fn a_missing_cronjob_is_named() {
    let missing = PIPELINE_STEP.replace("rag-index-rebuild", "feature-store-refresh");
    let step = run_one(Scenario::load("kv-cache").unwrap(), &missing).await;
    let all = dump(&step);
    assert!(step.error.is_none(), "{all}");
    assert!(
        step.findings.iter().any(|f| f.severity == Severity::Warning
            && f.text
                .contains("CronJob `feature-store-refresh` not found in `ai-production`")),
        "{all}"
    );
    assert!(
        with_signal(&step, Signal::PipelineStale).is_empty(),
        "{all}"
    );
}

#[test]
fn options_are_checked_when_the_runbook_loads() {
    let load = |steps: &str| {
        let text = format!(
            "service: s\nnamespace: n\nselector: app=s\ndeployment: s\nstages:\n  triage:\n    steps:\n{steps}"
        );
        Runbook::from_yaml(&text, "t.yaml").map(drop)
    };
    assert!(load("      - kind: gpu\n        dcgm_prot: 9400\n").is_err());
    assert!(
        load(
            "      - kind: gpu\n        dcgm_port: 9400\n        dcgm_url: http://d:9400/metrics\n"
        )
        .is_err()
    );
    assert!(
        load("      - kind: gpu\n        resource: amd.com/gpu\n        dcgm_port: 9400\n").is_ok()
    );
    assert!(load("      - kind: pipelines\n        cronjobs:\n          - name: x\n            max_age: 3 days\n").is_err());
    assert!(
        load(
            "      - kind: pipelines\n        jobs:\n          - {name_prefix: a, selector: b=c}\n"
        )
        .is_err()
    );
    assert!(load("      - kind: pipelines\n        cronjobs: [{name: x, max_age: 26h}]\n        jobs: [{selector: app=x, max_age: 3d}]\n").is_ok());
}

#[tokio::test]
async fn node_selector_narrows_the_nodes_and_an_empty_match_says_so() {
    let step = run_one(
        Scenario::load("oom").unwrap(),
        "      - kind: gpu\n        node_selector: kubernetes.io/hostname=gpu-node-b\n",
    )
    .await;
    let all = dump(&step);
    let table = step.table.clone().unwrap_or_default();
    assert_eq!(table.lines().count(), 2, "{all}");
    assert!(table.contains("gpu-node-b"), "{all}");
    let step = run_one(
        Scenario::load("oom").unwrap(),
        "      - kind: gpu\n        node_selector: pool=tpu\n",
    )
    .await;
    let all = dump(&step);
    assert!(
        step.findings
            .iter()
            .any(|f| f.text.contains("no nodes match `pool=tpu`")),
        "{all}"
    );
}

#[tokio::test]
async fn dcgm_url_reads_one_exporter() {
    use axum::Router;
    use axum::routing::get;
    let app = Router::new().route(
        "/metrics",
        get(|| async {
            "# TYPE DCGM_FI_DEV_XID_ERRORS gauge\nDCGM_FI_DEV_XID_ERRORS{gpu=\"0\",Hostname=\"h1\"} 0\nDCGM_FI_DEV_XID_ERRORS{gpu=\"1\",Hostname=\"h1\"} 48\n"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let step = run_one(
        Scenario::load("kv-cache").unwrap(),
        &format!("      - kind: gpu\n        dcgm_url: {url}\n"),
    )
    .await;
    let all = dump(&step);
    let xids = with_signal(&step, Signal::GpuXid);
    assert_eq!(xids.len(), 1, "{all}");
    assert!(
        xids[0].text.contains("GPU 1 on `h1`") && xids[0].text.contains("double-bit ECC"),
        "{all}"
    );
}

#[tokio::test]
async fn a_healthy_pipeline_is_fresh() {
    // kv-cache's RAG index last succeeded 3h ago, inside the 26h target.
    let step = run_one(Scenario::load("kv-cache").unwrap(), PIPELINE_STEP).await;
    let all = dump(&step);
    assert!(
        with_signal(&step, Signal::PipelineStale).is_empty(),
        "{all}"
    );
    assert!(
        with_signal(&step, Signal::PipelineFailed).is_empty(),
        "{all}"
    );
    assert!(
        all.contains("rag-index-rebuild") && all.contains("3h ago"),
        "{all}"
    );
}

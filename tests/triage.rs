//! Stage commands end to end: the bot queries the simulated API server over HTTP.

use std::sync::Mutex;
use std::time::Duration;

use firebreak::chat::{ChannelRef, Invocation, Platform, UserRef};
use firebreak::cluster::Cluster;
use firebreak::render::{ButtonStyle, Severity};
use firebreak::sim::Scenario;

use crate::support::{SHIPPED_RUNBOOK, bot, demo, finding_line, say, shown, sim};

#[tokio::test]
async fn triage_names_every_broken_pod_and_the_kv_cache_per_pod() {
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[SHIPPED_RUNBOOK]);
    let reply = say(&bot, "/triage model-server").await;
    let text = shown(&reply);
    assert_eq!(reply.severity, Severity::Critical, "{text}");
    assert!(reply.title.contains("Triage: model-server"), "{text}");
    let line_with = |needle: &str| finding_line(&text, needle);
    let oom = line_with("x2k9p` was OOMKilled");
    assert!(
        oom.contains("exit 137") && oom.contains("6 restarts"),
        "{oom}"
    );
    assert!(line_with("q8w4n` is in CrashLoopBackOff").contains("4 restarts"));
    assert!(line_with("m3z7t` is Pending").contains("Insufficient nvidia.com/gpu"));
    assert!(line_with("x2k9p` KV cache usage").contains("97.0%"));
    assert!(line_with("h5r2c` KV cache usage").contains("88.5%"));
    assert!(
        line_with("FailedScheduling on `model-server-7c9d4f8b6-m3z7t`")
            .contains("Insufficient nvidia.com/gpu")
    );
    assert!(
        line_with("current revision 2").contains("vllm/vllm-openai:v0.10.1"),
        "previous revision's image"
    );
    let commands: Vec<&str> = reply.buttons.iter().map(|b| b.command.as_str()).collect();
    assert_eq!(
        commands,
        ["/mitigate model-server", "/rollback model-server"]
    );
    assert_eq!(reply.buttons[0].style, ButtonStyle::Primary);
}

#[tokio::test]
async fn progress_snapshots_arrive_before_the_final_report() {
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[SHIPPED_RUNBOOK]);
    let seen = Mutex::new(Vec::new());
    let inv = Invocation::from_text(
        Platform::Console,
        UserRef {
            id: "u".into(),
            name: "u".into(),
        },
        ChannelRef { id: "c".into() },
        "/triage",
    )
    .unwrap();
    let reply = bot
        .handle(&inv, &|r| seen.lock().unwrap().push(r.clone()))
        .await;
    let seen = seen.into_inner().unwrap();
    assert_eq!(
        seen.len(),
        triage_steps() - 1,
        "one snapshot per finished step but the last"
    );
    assert!(
        seen.iter()
            .all(|r| r.in_progress && shown(r).contains("steps done"))
    );
    assert!(!reply.in_progress);
    assert!(!shown(&reply).contains("running..."));
}

#[tokio::test]
async fn unknown_command_and_service_say_what_exists() {
    let sim = sim(demo()).await;
    let bot = bot(&sim, &[SHIPPED_RUNBOOK]);
    let text = shown(&say(&bot, "/frobnicate now").await);
    assert!(text.contains("unknown command `/frobnicate`"), "{text}");
    for command in [
        "/triage [service]",
        "/mitigate",
        "/rollback",
        "/postmortem",
        "/incident",
        "/help",
    ] {
        assert!(text.contains(command), "lists {command}:\n{text}");
    }
    let text = shown(&say(&bot, "/triage payments").await);
    assert!(
        text.contains("no runbook for service `payments`") && text.contains("model-server"),
        "{text}"
    );
    let text = shown(&say(&bot, "/triage a b").await);
    assert!(text.contains("usage: `/triage [service]`"), "{text}");
    let text = shown(&say(&bot, "/incident frob").await);
    assert!(text.contains("expected one of declare, status"), "{text}");
}

#[tokio::test]
async fn a_slow_step_times_out_and_the_report_still_comes_back() {
    let sim = sim(demo()).await;
    sim.set_latency(
        "/apis/apps/v1/namespaces/ai-production/deployments",
        Duration::from_secs(5),
    );
    let runbook = SHIPPED_RUNBOOK.replacen(
        "      - kind: rollout_history\n        limit: 3",
        "      - kind: rollout_history\n        limit: 3\n        timeout: 300ms",
        1,
    );
    let bot = bot(&sim, &[&runbook]);
    let reply = say(&bot, "/triage model-server").await;
    let text = shown(&reply);
    assert!(
        text.contains("timeout**: timed out after 300ms")
            || text.contains("timeout: timed out after 300ms"),
        "{text}"
    );
    assert!(
        text.contains("was OOMKilled"),
        "the other steps still report:\n{text}"
    );
}

#[tokio::test]
async fn pods_are_listed_across_pages() {
    let mut yaml =
        String::from("apiVersion: v1\nkind: Namespace\nmetadata: {name: ai-production}\n");
    for i in 0..25 {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: worker-{i:02}, namespace: ai-production, labels: {{app: model-server}}}}\nspec:\n  containers: [{{name: vllm, image: vllm/vllm-openai:v0.11.0}}]\nstatus:\n  phase: Running\n  containerStatuses: [{{name: vllm, ready: true, restartCount: 0, image: vllm, imageID: '', state: {{running: {{startedAt: now-1h}}}}}}]\n"
        ));
    }
    let sim = sim(Scenario::from_yaml(&yaml, "many-pods.yaml").expect("scenario parses")).await;
    let runbook = "service: model-server\nnamespace: ai-production\nselector: app=model-server\ndeployment: model-server\nstages:\n  triage:\n    steps:\n      - kind: pods\n        page_size: 10\n";
    let bot = bot(&sim, &[runbook]);
    let text = shown(&say(&bot, "/triage").await);
    assert!(text.contains("25/25 pods healthy"), "{text}");
    assert!(text.contains("worker-00") && text.contains("worker-24"));
    let pages: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.contains("/pods?") && r.contains("limit=10"))
        .collect();
    assert_eq!(pages.len(), 3, "{pages:#?}");
    assert_eq!(
        pages.iter().filter(|r| r.contains("continue=")).count(),
        2,
        "{pages:#?}"
    );
}

#[tokio::test]
async fn missing_namespace_and_deployment_are_reported_not_fatal() {
    let sim = sim(demo()).await;
    let runbook = SHIPPED_RUNBOOK.replace("namespace: ai-production", "namespace: ai-staging");
    let bot = bot(&sim, &[&runbook]);
    let text = shown(&say(&bot, "/triage").await);
    assert!(
        text.contains("no pods match `app=model-server` in namespace `ai-staging`"),
        "{text}"
    );
    assert!(
        text.contains("deployment `model-server` not found in namespace `ai-staging`"),
        "{text}"
    );
}

#[tokio::test]
async fn an_api_server_that_is_down_gives_error_lines_not_a_crash() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cluster = Cluster::from_url(&format!("http://127.0.0.1:{port}")).unwrap();
    let runbooks = firebreak::runbook::Runbooks::embedded().unwrap();
    let templates = firebreak::render::Templates::load_dir("templates".as_ref()).unwrap();
    let store = firebreak::store::Store::in_memory().unwrap();
    let bot = firebreak::Bot::new(runbooks, templates, cluster, store);
    let reply = say(&bot, "/triage model-server").await;
    let text = shown(&reply);
    assert_eq!(
        text.matches("cannot reach the Kubernetes API").count(),
        triage_steps(),
        "every step says so:\n{text}"
    );
    assert_eq!(reply.severity, Severity::Warning);
}

fn triage_steps() -> usize {
    let runbook = firebreak::runbook::Runbook::from_yaml(SHIPPED_RUNBOOK, "shipped").unwrap();
    runbook
        .stage(firebreak::runbook::Stage::Triage)
        .unwrap()
        .steps
        .len()
}

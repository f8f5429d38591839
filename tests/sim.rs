//! Tests of the simulated Kubernetes API server, over real HTTP with kube-rs and the real kubectl.

use crate::support::kubectl;
use firebreak::sim::{Scenario, SimError, SimServer};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const NS: &str = "ai-production";

async fn demo() -> Result<SimServer, SimError> {
    SimServer::start(Scenario::load("demo")?, ([127, 0, 0, 1], 0).into()).await
}

fn client(server: &SimServer) -> Result<kube::Client, Box<dyn std::error::Error + Send + Sync>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(kube::Client::try_from(kube::Config::new(
        server.url().parse()?,
    ))?)
}

/// A scenario with `n` pods named pod-000.. in namespace `bulk`, for pagination.
fn bulk_scenario(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: pod-{i:03}\n  namespace: bulk\n  labels:\n    app: bulk\n    even: \"{}\"\nspec:\n  containers:\n  - name: c\n    image: busybox\nstatus:\n  phase: Running\n",
            i % 2 == 0
        ));
    }
    text
}

#[tokio::test]
async fn kube_rs_lists_demo_pods_by_label() -> TestResult {
    let server = demo().await?;
    let pods: Api<Pod> = Api::namespaced(client(&server)?, NS);
    let list = pods
        .list(&ListParams::default().labels("app=model-server"))
        .await?;
    let mut names: Vec<String> = list
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "model-server-7c9d4f8b6-h5r2c",
            "model-server-7c9d4f8b6-m3z7t",
            "model-server-7c9d4f8b6-q8w4n",
            "model-server-7c9d4f8b6-x2k9p"
        ]
    );
    let none = pods
        .list(&ListParams::default().labels("app notin (model-server)"))
        .await?;
    assert!(none.items.is_empty());
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kube_rs_pages_through_with_continue_tokens() -> TestResult {
    let server = SimServer::start(
        Scenario::from_yaml(&bulk_scenario(25), "bulk.yaml")?,
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client(&server)?, "bulk");
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(2);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = pods.list(&lp).await?;
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().filter_map(|p| p.metadata.name.clone()));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(t) => {
                assert_eq!(
                    page.metadata.remaining_item_count,
                    Some(25 - seen.len() as i64)
                );
                token = Some(t);
            }
            None => break,
        }
        assert!(pages < 50, "pagination does not terminate");
    }
    let expected: Vec<String> = (0..25).map(|i| format!("pod-{i:03}")).collect();
    assert_eq!(seen, expected, "every pod exactly once, in name order");
    assert_eq!(pages, 13);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.contains("limit=2") && r.contains("continue="))
    );

    // Paging composes with a selector.
    let even = pods
        .list(&ListParams::default().labels("even=true").limit(5))
        .await?;
    assert_eq!(even.items.len(), 5);
    assert!(even.metadata.continue_.is_some_and(|t| !t.is_empty()));

    // A forged token is a 400 Status, not a crash.
    let bad = pods
        .list(&ListParams::default().limit(2).continue_token("not-a-token"))
        .await;
    match bad {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 400);
            assert!(s.message.contains("continue"), "{}", s.message);
        }
        other => panic!("expected a 400 for a bad continue token, got {other:?}"),
    }
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kube_rs_field_selector_filters_warning_events() -> TestResult {
    let server = demo().await?;
    let events: Api<Event> = Api::namespaced(client(&server)?, NS);
    let warnings = events
        .list(
            &ListParams::default()
                .fields("involvedObject.name=model-server-7c9d4f8b6-x2k9p,type=Warning"),
        )
        .await?;
    assert_eq!(
        warnings.items.len(),
        1,
        "the Normal Pulled event must be filtered out"
    );
    assert_eq!(warnings.items[0].reason.as_deref(), Some("OOMKilled"));
    let all_x2k9p = events
        .list(&ListParams::default().fields("involvedObject.name=model-server-7c9d4f8b6-x2k9p"))
        .await?;
    assert_eq!(all_x2k9p.items.len(), 2);
    let not_warning = events
        .list(&ListParams::default().fields("type!=Warning"))
        .await?;
    assert!(
        not_warning
            .items
            .iter()
            .all(|e| e.type_.as_deref() == Some("Normal"))
    );

    let bad = events
        .list(&ListParams::default().labels("app in (x"))
        .await;
    assert!(
        matches!(bad, Err(kube::Error::Api(ref s)) if s.code == 400),
        "{bad:?}"
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kube_rs_reads_logs_and_gets_404s() -> TestResult {
    let server = demo().await?;
    let pods: Api<Pod> = Api::namespaced(client(&server)?, NS);
    let name = "model-server-7c9d4f8b6-x2k9p";
    let full = pods.logs(name, &LogParams::default()).await?;
    let tail = pods
        .logs(
            name,
            &LogParams {
                tail_lines: Some(3),
                ..LogParams::default()
            },
        )
        .await?;
    let full_lines: Vec<&str> = full.lines().collect();
    let tail_lines: Vec<&str> = tail.lines().collect();
    assert_eq!(tail_lines.len(), 3);
    assert_eq!(tail_lines, full_lines[full_lines.len() - 3..]);
    assert!(
        tail_lines[2].contains("GPU KV cache usage: 97.0%"),
        "{tail}"
    );
    assert!((20..=40).contains(&full_lines.len()));

    let crash = pods
        .logs("model-server-7c9d4f8b6-q8w4n", &LogParams::default())
        .await?;
    assert!(
        crash
            .trim_end()
            .ends_with("is reserved by PyTorch but unallocated."),
        "{crash}"
    );
    assert!(crash.contains("torch.OutOfMemoryError: CUDA out of memory"));
    let pending = pods
        .logs("model-server-7c9d4f8b6-m3z7t", &LogParams::default())
        .await?;
    assert!(pending.is_empty());

    match pods.get("no-such-pod").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.reason, "NotFound");
            assert_eq!(s.message, "pods \"no-such-pod\" not found");
        }
        other => panic!("expected 404, got {other:?}"),
    }
    match pods.logs("no-such-pod", &LogParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }
    let pod = pods.get(name).await?;
    assert_eq!(pod.metadata.namespace.as_deref(), Some(NS));
    assert!(pod.metadata.uid.is_some() && pod.metadata.resource_version.is_some());
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn multi_container_log_needs_a_container_name() -> TestResult {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: two, namespace: x}\nspec:\n  containers:\n  - {name: a, image: i}\n  - {name: b, image: i}\n---\napiVersion: sim.firebreak.dev/v1\nkind: PodLogs\nmetadata: {name: two, namespace: x}\ncontainer: b\ntext: |\n  hello from b\n";
    let server = SimServer::start(
        Scenario::from_yaml(yaml, "two.yaml")?,
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client(&server)?, "x");
    match pods.logs("two", &LogParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 400);
            assert_eq!(
                s.message,
                "a container name must be specified for pod two, choose one of: [a b]"
            );
        }
        other => panic!("expected 400, got {other:?}"),
    }
    let b = pods
        .logs(
            "two",
            &LogParams {
                container: Some("b".into()),
                ..LogParams::default()
            },
        )
        .await?;
    assert_eq!(b, "hello from b\n");
    let a = pods
        .logs(
            "two",
            &LogParams {
                container: Some("a".into()),
                ..LogParams::default()
            },
        )
        .await?;
    assert_eq!(a, "");
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kubectl_get_pods_sorted_by_restarts() -> TestResult {
    let server = demo().await?;
    let out = kubectl(
        &server,
        &[
            "get",
            "pods",
            "-n",
            NS,
            "-l",
            "app=model-server",
            "--sort-by=.status.containerStatuses[0].restartCount",
        ],
    )
    .await?;
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.first().map(Vec::as_slice),
        Some(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"][..]),
        "{out}"
    );
    let names: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
    assert_eq!(
        names,
        [
            "model-server-7c9d4f8b6-m3z7t",
            "model-server-7c9d4f8b6-h5r2c",
            "model-server-7c9d4f8b6-q8w4n",
            "model-server-7c9d4f8b6-x2k9p"
        ],
        "{out}"
    );
    let status: Vec<&str> = rows[1..].iter().map(|r| r[2]).collect();
    assert_eq!(
        status,
        ["Pending", "Running", "CrashLoopBackOff", "Running"],
        "{out}"
    );
    assert_eq!(rows[1][1], "0/1");
    assert_eq!(rows[2][1], "1/1");
    assert_eq!(rows[4][3], "6", "{out}");
    // Under three minutes kubectl adds seconds (`2m1s`), and a loaded machine may take one.
    assert!(
        rows[4][4].starts_with("(2m"),
        "restarts read `6 (2m ago)`: {out}"
    );
    assert!(
        rows[1..].iter().all(|r| r.last() == Some(&"120m")),
        "2h reads as 120m, as kubectl prints it: {out}"
    );
    assert!(server.requests().iter().any(|r| r.starts_with("GET /apis")));
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kubectl_gets_deployments_replicasets_and_logs() -> TestResult {
    let server = demo().await?;
    let out = kubectl(&server, &["get", "deploy,rs", "-n", NS]).await?;
    assert!(out.contains("deployment.apps/model-server"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("deployment.apps/model-server") && l.contains("1/4")),
        "{out}"
    );
    assert!(
        out.contains("replicaset.apps/model-server-6d8f7b9c5"),
        "{out}"
    );
    assert!(
        out.contains("replicaset.apps/model-server-7c9d4f8b6"),
        "{out}"
    );
    assert!(
        out.contains("DESIRED") && out.contains("UP-TO-DATE"),
        "{out}"
    );

    let logs = kubectl(
        &server,
        &["logs", "--tail=3", "-n", NS, "model-server-7c9d4f8b6-h5r2c"],
    )
    .await?;
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 3, "{logs}");
    assert!(lines[2].contains("GPU KV cache usage: 88.5%"), "{logs}");

    let previous = kubectl(
        &server,
        &[
            "logs",
            "--previous",
            "-n",
            NS,
            "model-server-7c9d4f8b6-x2k9p",
        ],
    )
    .await?;
    assert!(
        previous
            .trim_end()
            .ends_with("GPU KV cache usage: 98.3%, Prefix cache hit rate: 41.0%"),
        "{previous}"
    );

    let events = kubectl(
        &server,
        &[
            "get",
            "events",
            "-n",
            NS,
            "--field-selector",
            "type=Warning",
        ],
    )
    .await?;
    assert!(
        events.contains("FailedScheduling") && events.contains("BackOff"),
        "{events}"
    );
    assert!(!events.contains("Pulled"), "{events}");

    let nodes = kubectl(&server, &["get", "nodes"]).await?;
    assert_eq!(
        nodes
            .lines()
            .filter(|l| l.contains("Ready") && l.contains("v1.34.0"))
            .count(),
        3,
        "{nodes}"
    );

    let missing = kubectl(&server, &["get", "pod", "nope", "-n", NS]).await;
    let err = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("pods \"nope\" not found"), "{err}");
    server.shutdown().await;
    Ok(())
}

#[test]
fn bad_yaml_reports_file_and_line() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n";
    let err = Scenario::from_yaml(text, "broken.yaml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("broken.yaml:"), "{err}");
    let line: usize = err
        .split(':')
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or_default();
    assert!(
        (9..=10).contains(&line),
        "line should point into the second document: {err}"
    );
}

#[test]
fn unknown_kind_names_supported_kinds() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n";
    let err = Scenario::from_yaml(text, "k.yaml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("k.yaml:7:"), "{err}");
    assert!(
        err.contains("document 2") && err.contains("`Secret`"),
        "{err}"
    );
    for kind in [
        "Pod",
        "Event",
        "Node",
        "ConfigMap",
        "Namespace",
        "Deployment",
        "ReplicaSet",
        "Job",
        "CronJob",
        "PodLogs",
    ] {
        assert!(err.contains(kind), "missing {kind}: {err}");
    }
}

#[test]
fn typo_in_a_field_type_surfaces_at_load() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers: nope\n";
    let err = Scenario::from_yaml(text, "t.yaml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("t.yaml:1:") && err.contains("(Pod) is invalid"),
        "{err}"
    );
    assert!(Scenario::load("no-such-scenario").is_err());
    assert_eq!(
        Scenario::builtin_names(),
        ["demo", "oom", "kv-cache", "bad-prompt", "stale-index"]
    );
}

#[tokio::test]
async fn relative_times_become_timestamps() -> TestResult {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: t\n  creationTimestamp: now-5m\ndata:\n  at: now\n  keep: now-ish\n";
    let server = SimServer::start(
        Scenario::from_yaml(text, "t.yaml")?,
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client(&server)?, "t");
    let cm = cms.get("c").await?;
    let created = cm
        .metadata
        .creation_timestamp
        .ok_or("no creationTimestamp")?
        .0;
    let age = jiff::Timestamp::now().as_second() - created.as_second();
    assert!((299..=302).contains(&age), "age {age}s");
    let data = cm.data.unwrap_or_default();
    assert!(
        data.get("at")
            .is_some_and(|v| v.ends_with('Z') && v.len() == 20),
        "{data:?}"
    );
    assert_eq!(data.get("keep").map(String::as_str), Some("now-ish"));
    // The namespace `t` exists although no document declares it.
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client(&server)?);
    assert!(ns.get("t").await.is_ok());
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn discovery_tables_latency_and_unknown_groups() -> TestResult {
    let server = demo().await?;
    let client = client(&server)?;
    let get = |path: &str, accept: &str| {
        axum::http::Request::get(path)
            .header("Accept", accept)
            .body(Vec::new())
    };
    let groups: serde_json::Value = client.request(get("/apis", "application/json")?).await?;
    assert_eq!(
        groups["groups"][0]["preferredVersion"]["groupVersion"],
        "apps/v1"
    );
    assert_eq!(groups["groups"][1]["name"], "batch");
    let core: serde_json::Value = client.request(get("/api/v1", "application/json")?).await?;
    let resources = core["resources"].as_array().cloned().unwrap_or_default();
    let pods = resources
        .iter()
        .find(|r| r["name"] == "pods")
        .ok_or("no pods in /api/v1")?;
    assert_eq!(pods["shortNames"][0], "po");
    assert_eq!(pods["namespaced"], true);
    let nodes = resources
        .iter()
        .find(|r| r["name"] == "nodes")
        .ok_or("no nodes in /api/v1")?;
    assert_eq!(nodes["namespaced"], false);

    match client
        .request_text(get("/apis/nope/v1", "application/json")?)
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (404, "NotFound")),
        other => panic!("expected a 404 Status for an unknown group, got {other:?}"),
    }

    let table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let table: serde_json::Value = client
        .request(get(
            "/api/v1/namespaces/ai-production/pods?includeObject=None",
            table_accept,
        )?)
        .await?;
    assert_eq!(
        (table["kind"].as_str(), table["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(columns[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
    let rows = table["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter().all(|r| r.get("object").is_none()
            && r["cells"].as_array().map(Vec::len) == Some(columns.len()))
    );

    let path = "/api/v1/namespaces/ai-production/configmaps";
    server.set_latency(path, std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let _: serde_json::Value = client.request(get(path, "application/json")?).await?;
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert!(
        server.requests().contains(&format!("GET {path}")),
        "{:?}",
        server.requests()
    );
    server.shutdown().await;
    Ok(())
}

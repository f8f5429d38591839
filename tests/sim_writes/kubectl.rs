//! The real kubectl's writes against the simulator: rollout history/undo/restart/status,
//! scale, patch and delete.

use firebreak::sim::SimServer;

use firebreak::sim::Scenario;

use super::{DEPLOY_PATH, NS, TestResult, demo, route_scenario};
use crate::support::kubectl;

/// The REVISION column of `kubectl rollout history`.
fn revisions(history: &str) -> Vec<String> {
    history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn kubectl_rollout_undo_to_revision_one() -> TestResult {
    let server = demo().await?;
    let history = kubectl(
        &server,
        &["rollout", "history", "deployment/model-server", "-n", NS],
    )
    .await?;
    assert_eq!(revisions(&history), ["1", "2"], "{history}");
    let out = kubectl(
        &server,
        &[
            "rollout",
            "undo",
            "deployment/model-server",
            "-n",
            NS,
            "--to-revision=1",
        ],
    )
    .await?;
    assert!(out.contains("rolled back"), "{out}");
    let history = kubectl(
        &server,
        &["rollout", "history", "deployment/model-server", "-n", NS],
    )
    .await?;
    assert_eq!(revisions(&history), ["2", "3"], "{history}");
    let img = kubectl(
        &server,
        &[
            "get",
            "deploy",
            "model-server",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    )
    .await?;
    assert_eq!(img, "vllm/vllm-openai:v0.10.1");
    let status = kubectl(
        &server,
        &[
            "rollout",
            "status",
            "deployment/model-server",
            "-n",
            NS,
            "--watch=false",
        ],
    )
    .await?;
    assert!(status.contains("successfully rolled out"), "{status}");
    assert_eq!(
        server.writes().iter().filter(|w| *w == DEPLOY_PATH).count(),
        1
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kubectl_rollout_restart_makes_a_new_revision() -> TestResult {
    let server = demo().await?;
    kubectl(
        &server,
        &["rollout", "restart", "deployment/model-server", "-n", NS],
    )
    .await?;
    let at = kubectl(
        &server,
        &[
            "get",
            "deploy",
            "model-server",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
        ],
    )
    .await?;
    assert!(!at.is_empty(), "restartedAt is set");
    let history = kubectl(
        &server,
        &["rollout", "history", "deployment/model-server", "-n", NS],
    )
    .await?;
    assert_eq!(revisions(&history), ["1", "2", "3"], "{history}");
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kubectl_scale_and_patch() -> TestResult {
    let server = demo().await?;
    let out = kubectl(
        &server,
        &["scale", "deployment/model-server", "-n", NS, "--replicas=6"],
    )
    .await?;
    assert!(out.contains("scaled"), "{out}");
    let n = kubectl(
        &server,
        &[
            "get",
            "deploy",
            "model-server",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.replicas}",
        ],
    )
    .await?;
    assert_eq!(n, "6");
    let cms = kubectl(&server, &["get", "configmaps", "-n", NS, "-o", "name"]).await?;
    let cm = cms
        .lines()
        .next()
        .ok_or("the demo has a configmap")?
        .to_string();
    let out = kubectl(
        &server,
        &[
            "patch",
            &cm,
            "-n",
            NS,
            "--type",
            "merge",
            "-p",
            r#"{"data":{"firebreak":"on"}}"#,
        ],
    )
    .await?;
    assert!(out.contains("patched"), "{out}");
    let v = kubectl(
        &server,
        &["get", &cm, "-n", NS, "-o", "jsonpath={.data.firebreak}"],
    )
    .await?;
    assert_eq!(v, "on");
    let out = kubectl(
        &server,
        &["delete", "pod", "model-server-7c9d4f8b6-x2k9p", "-n", NS],
    )
    .await?;
    assert!(out.contains("deleted"), "{out}");
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kubectl_patches_an_httproute_from_a_scenario() -> TestResult {
    let server = SimServer::start(
        Scenario::from_yaml(route_scenario(), "route.yaml")?,
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let out = kubectl(&server, &["get", "httproutes", "-n", NS]).await?;
    assert!(
        out.contains("model-server") && out.contains("llm.example.com"),
        "{out}"
    );
    let patch = r#"[{"op":"replace","path":"/spec/rules/0/backendRefs/1/weight","value":50}]"#;
    let out = kubectl(
        &server,
        &[
            "patch",
            "httproute",
            "model-server",
            "-n",
            NS,
            "--type",
            "json",
            "-p",
            patch,
        ],
    )
    .await?;
    assert!(out.contains("patched"), "{out}");
    let w = kubectl(
        &server,
        &[
            "get",
            "httproute",
            "model-server",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.rules[0].backendRefs[1].weight}",
        ],
    )
    .await?;
    assert_eq!(w, "50");
    server.shutdown().await;
    Ok(())
}

//! The real kubectl's writes against the simulator: rollout history/undo/restart/status,
//! scale, patch and delete.

use std::path::Path;
use std::process::Command;

use firebreak::sim::SimServer;

use firebreak::sim::Scenario;

use super::{DEPLOY_PATH, NS, TestResult, demo, route_scenario};

async fn kubectl(
    server: &SimServer,
    args: &[&str],
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("kubectl").is_file()));
    assert!(
        found,
        "kubectl is not on PATH; these tests need the real kubectl: install Debian's `kubernetes-client` package (apt-get install kubernetes-client)"
    );
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig_yaml(NS))?;
    let home = dir.path().to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let output =
        tokio::task::spawn_blocking(move || run_kubectl(&home, &kubeconfig, &args)).await??;
    Ok(output)
}

fn run_kubectl(
    home: &Path,
    kubeconfig: &Path,
    args: &[String],
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let out = Command::new("kubectl")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(home.join("cache"))
        .args(args)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "kubectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(stdout)
}

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

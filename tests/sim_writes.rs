//! Writes against the simulated API server, over real HTTP: kube-rs patches, the scale
//! subresource, pod deletion, and the real kubectl's rollout undo/restart/history, scale, patch.

use firebreak::sim::{Scenario, SimError, SimServer};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

mod kubectl;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const NS: &str = "ai-production";
const DEPLOY_PATH: &str = "PATCH /apis/apps/v1/namespaces/ai-production/deployments/model-server";

async fn demo() -> Result<SimServer, SimError> {
    SimServer::start(Scenario::load("demo")?, ([127, 0, 0, 1], 0).into()).await
}

fn client(server: &SimServer) -> Result<kube::Client, Box<dyn std::error::Error + Send + Sync>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(kube::Client::try_from(kube::Config::new(
        server.url().parse()?,
    ))?)
}

fn image(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

/// Send an RFC 6902 JSON patch with plain HTTP (kube-rs needs its `jsonpatch` feature for
/// `Patch::Json`, which Firebreak does not enable); returns the status code and body.
async fn json_patch(
    server: &SimServer,
    path: &str,
    ops: serde_json::Value,
) -> Result<(u16, serde_json::Value), Box<dyn std::error::Error + Send + Sync>> {
    let r = reqwest::Client::new()
        .patch(format!("{}{path}", server.url()))
        .header("content-type", "application/json-patch+json")
        .body(ops.to_string())
        .send()
        .await?;
    Ok((r.status().as_u16(), r.json().await?))
}

const DEPLOY_URL: &str = "/apis/apps/v1/namespaces/ai-production/deployments/model-server";

/// The status code of a kube-rs error answered by the server.
fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

#[tokio::test]
async fn kube_rs_patches_a_deployment_three_ways() -> TestResult {
    let server = demo().await?;
    let deploys: Api<Deployment> = Api::namespaced(client(&server)?, NS);
    let before = deploys.get("model-server").await?;

    // Dry run: answered, not stored.
    let dry = deploys
        .patch(
            "model-server",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "gpu"}}})),
        )
        .await?;
    assert_eq!(
        dry.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("tier"))
            .map(String::as_str),
        Some("gpu")
    );
    let after_dry = deploys.get("model-server").await?;
    assert_eq!(
        after_dry.metadata.resource_version,
        before.metadata.resource_version
    );
    assert!(server.writes().is_empty());

    // Strategic merge: containers merge by name, so args and ports survive an image change.
    let patched = deploys
        .patch(
            "model-server",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.1"}]}}}})),
        )
        .await?;
    assert_eq!(image(&patched).as_deref(), Some("vllm/vllm-openai:v0.11.1"));
    let c = &patched
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .map(|s| s.containers)
        .unwrap_or_default();
    assert!(c[0].args.as_ref().is_some_and(|a| !a.is_empty()));
    assert!(patched.metadata.generation > before.metadata.generation);
    assert_ne!(
        patched.metadata.resource_version,
        before.metadata.resource_version
    );
    // The controller rolled out revision 3 with ready pods.
    let rev = patched
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned();
    assert_eq!(rev.as_deref(), Some("3"));
    assert_eq!(
        patched.status.as_ref().and_then(|s| s.ready_replicas),
        Some(4)
    );
    let pods: Api<Pod> = Api::namespaced(client(&server)?, NS);
    let list = pods
        .list(&ListParams::default().labels("app=model-server"))
        .await?;
    assert_eq!(list.items.len(), 4);
    for p in &list.items {
        let img = p
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        assert_eq!(img.as_deref(), Some("vllm/vllm-openai:v0.11.1"));
    }

    // JSON patch, with a failing test op leaving things as they were.
    let (status, _) = json_patch(
        &server,
        DEPLOY_URL,
        json!([{"op": "test", "path": "/spec/replicas", "value": 99}]),
    )
    .await?;
    assert_eq!(status, 422);
    let (status, _) = json_patch(&server, DEPLOY_URL, json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "vllm/vllm-openai:v0.10.1"}])).await?;
    assert_eq!(status, 200);
    let json_patched = deploys.get("model-server").await?;
    assert_eq!(
        image(&json_patched).as_deref(),
        Some("vllm/vllm-openai:v0.10.1")
    );
    // Back to revision 1's template: the old ReplicaSet is reused with revision 4.
    let rs: Api<ReplicaSet> = Api::namespaced(client(&server)?, NS);
    let old = rs.get("model-server-6d8f7b9c5").await?;
    assert_eq!(old.spec.as_ref().and_then(|s| s.replicas), Some(4));
    let rev = old
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned();
    assert_eq!(rev.as_deref(), Some("4"));

    // Invalid result: 422, nothing stored.
    let invalid = deploys
        .patch(
            "model-server",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": "many"}})),
        )
        .await;
    assert_eq!(invalid.as_ref().err().and_then(code), Some(422));
    assert_eq!(
        server.writes().iter().filter(|w| *w == DEPLOY_PATH).count(),
        2
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kube_rs_patches_a_configmap_and_dry_run_stores_nothing() -> TestResult {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: router\n  namespace: ai\ndata:\n  mode: fast\n  keep: \"yes\"\n";
    let server = SimServer::start(
        Scenario::from_yaml(text, "cm.yaml")?,
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server)?, "ai");
    let dry = cms
        .patch(
            "router",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"data": {"mode": "safe"}})),
        )
        .await?;
    assert_eq!(
        dry.data
            .as_ref()
            .and_then(|d| d.get("mode"))
            .map(String::as_str),
        Some("safe")
    );
    let got = cms.get("router").await?;
    assert_eq!(
        got.data
            .as_ref()
            .and_then(|d| d.get("mode"))
            .map(String::as_str),
        Some("fast")
    );
    let merged = cms
        .patch(
            "router",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"mode": "safe", "keep": null}})),
        )
        .await?;
    let data = merged.data.unwrap_or_default();
    assert_eq!(data.get("mode").map(String::as_str), Some("safe"));
    assert!(!data.contains_key("keep"));
    let (status, json_patched) = json_patch(
        &server,
        "/api/v1/namespaces/ai/configmaps/router",
        json!([{"op": "add", "path": "/data/extra", "value": "1"}]),
    )
    .await?;
    assert_eq!(status, 200);
    assert_eq!(json_patched["data"]["extra"], "1");
    let strategic = cms
        .patch(
            "router",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"annotations": {"by": "firebreak"}}})),
        )
        .await?;
    assert_eq!(
        strategic
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("by"))
            .map(String::as_str),
        Some("firebreak")
    );
    assert_eq!(server.writes().len(), 3);
    // A wrong data type is rejected as Invalid.
    let bad = cms
        .patch(
            "router",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"mode": 3}})),
        )
        .await;
    assert_eq!(bad.as_ref().err().and_then(code), Some(422));
    // Not found is 404.
    let missing = cms
        .patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
        .await;
    assert_eq!(missing.as_ref().err().and_then(code), Some(404));
    server.shutdown().await;
    Ok(())
}

/// Raw requests the typed client cannot make: wrong content type, broken bodies.
#[tokio::test]
async fn bad_writes_get_status_answers() -> TestResult {
    let server = demo().await?;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/apis/apps/v1/namespaces/{NS}/deployments/model-server",
        server.url()
    );
    let send = |ct: &'static str, body: &'static str| {
        http.patch(&url)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = send("application/yaml", "{}").await?;
    assert_eq!(r.status().as_u16(), 415);
    let status: serde_json::Value = r.json().await?;
    assert_eq!(status["kind"], "Status");
    assert_eq!(
        send("application/merge-patch+json", "{not json")
            .await?
            .status()
            .as_u16(),
        400
    );
    assert_eq!(
        send("application/json-patch+json", "{}")
            .await?
            .status()
            .as_u16(),
        422
    );
    assert_eq!(
        send(
            "application/json-patch+json",
            r#"[{"op":"remove","path":"/nope"}]"#
        )
        .await?
        .status()
        .as_u16(),
        422
    );
    assert_eq!(
        send(
            "application/json-patch+json",
            r#"[{"op":"bogus","path":"/x"}]"#
        )
        .await?
        .status()
        .as_u16(),
        422
    );
    assert_eq!(
        send("application/merge-patch+json", "[1]")
            .await?
            .status()
            .as_u16(),
        422
    );
    let r = send(
        "application/merge-patch+json",
        r#"{"spec":{"template":{"spec":{"containers":"x"}}}}"#,
    )
    .await?;
    assert_eq!(r.status().as_u16(), 422);
    let status: serde_json::Value = r.json().await?;
    assert_eq!(status["reason"], "Invalid");
    let r = http
        .patch(format!("{url}?dryRun=Some"))
        .header("content-type", "application/merge-patch+json")
        .body("{}")
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 400);
    assert!(server.writes().is_empty());
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn scale_subresource_changes_only_replicas() -> TestResult {
    let server = demo().await?;
    let deploys: Api<Deployment> = Api::namespaced(client(&server)?, NS);
    let scale = deploys.get_scale("model-server").await?;
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4));
    let scaled = deploys
        .patch_scale(
            "model-server",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await?;
    assert_eq!(scaled.spec.and_then(|s| s.replicas), Some(6));
    let d = deploys.get("model-server").await?;
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(6));
    assert_eq!(image(&d).as_deref(), Some("vllm/vllm-openai:v0.11.0"));
    let rev = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned();
    assert_eq!(rev.as_deref(), Some("2"), "a scale is not a new revision");
    let pods: Api<Pod> = Api::namespaced(client(&server)?, NS);
    let list = pods
        .list(&ListParams::default().labels("app=model-server"))
        .await?;
    assert_eq!(list.items.len(), 6);
    assert_eq!(
        server.writes(),
        ["PATCH /apis/apps/v1/namespaces/ai-production/deployments/model-server/scale"]
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn deleting_a_pod_gets_it_replaced() -> TestResult {
    let server = demo().await?;
    let pods: Api<Pod> = Api::namespaced(client(&server)?, NS);
    let victim = "model-server-7c9d4f8b6-x2k9p";
    // Metadata patches on pods (e.g. labelling one out of service) store without a rollout.
    let labelled = pods
        .patch(
            victim,
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"quarantine": "true"}}})),
        )
        .await?;
    let label = labelled
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("quarantine"))
        .cloned();
    assert_eq!(label.as_deref(), Some("true"));
    pods.delete(victim, &DeleteParams::default().dry_run())
        .await?;
    assert!(
        pods.get_opt(victim).await?.is_some(),
        "dry run keeps the pod"
    );
    pods.delete(victim, &DeleteParams::default()).await?;
    assert!(pods.get_opt(victim).await?.is_none());
    let list = pods
        .list(&ListParams::default().labels("app=model-server"))
        .await?;
    assert_eq!(list.items.len(), 4);
    let fresh: Vec<&Pod> = list
        .items
        .iter()
        .filter(|p| {
            p.metadata.name.as_deref().is_some_and(|n| {
                !n.ends_with("x2k9p")
                    && !n.ends_with("q8w4n")
                    && !n.ends_with("m3z7t")
                    && !n.ends_with("h5r2c")
            })
        })
        .collect();
    assert_eq!(fresh.len(), 1);
    assert_eq!(
        fresh[0].status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running")
    );
    let missing = pods.delete(victim, &DeleteParams::default()).await;
    assert_eq!(missing.as_ref().err().and_then(code), Some(404));
    server.shutdown().await;
    Ok(())
}

pub(super) fn route_scenario() -> &'static str {
    "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: model-server
  namespace: ai-production
spec:
  hostnames: [llm.example.com]
  rules:
  - backendRefs:
    - name: model-server-stable
      port: 8000
      weight: 90
    - name: model-server-canary
      port: 8000
      weight: 10
"
}

#[tokio::test]
async fn httproute_weight_changes_by_json_patch() -> TestResult {
    let server = SimServer::start(
        Scenario::from_yaml(route_scenario(), "route.yaml")?,
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "httproutes");
    let routes: Api<DynamicObject> = Api::namespaced_with(client(&server)?, NS, &ar);
    assert_eq!(routes.list(&ListParams::default()).await?.items.len(), 1);
    let url = "/apis/gateway.networking.k8s.io/v1/namespaces/ai-production/httproutes/model-server";
    let (status, patched) = json_patch(
        &server,
        url,
        json!([
            {"op": "test", "path": "/spec/rules/0/backendRefs/1/weight", "value": 10},
            {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 100},
            {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 0},
        ]),
    )
    .await?;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["spec"]["rules"][0]["backendRefs"][1]["weight"], 0);
    let (status, _) = json_patch(
        &server,
        url,
        json!([{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": -5}]),
    )
    .await?;
    assert_eq!(status, 422);
    // kube-rs' merge patch works on the dynamic type too.
    routes
        .patch(
            "model-server",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"canary": "off"}}})),
        )
        .await?;
    let got = routes.get("model-server").await?;
    assert_eq!(
        got.data["spec"]["rules"][0]["backendRefs"][0]["weight"],
        100
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn kube_rs_replace_and_stale_resource_version_conflicts() -> TestResult {
    let server = demo().await?;
    let deploys: Api<Deployment> = Api::namespaced(client(&server)?, NS);
    let mut d = deploys.get("model-server").await?;
    let stale = d.clone();
    if let Some(spec) = d.spec.as_mut() {
        spec.replicas = Some(2);
    }
    let replaced = deploys
        .replace("model-server", &PostParams::default(), &d)
        .await?;
    assert_eq!(replaced.spec.as_ref().and_then(|s| s.replicas), Some(2));
    assert_eq!(replaced.status.as_ref().and_then(|s| s.replicas), Some(2));
    let conflict = deploys
        .replace("model-server", &PostParams::default(), &stale)
        .await;
    assert_eq!(conflict.as_ref().err().and_then(code), Some(409));
    assert_eq!(
        server.writes(),
        ["PUT /apis/apps/v1/namespaces/ai-production/deployments/model-server"]
    );
    server.shutdown().await;
    Ok(())
}

/// A Deployment with no ReplicaSets or pods yet: the first write creates revision 1 and pods.
#[tokio::test]
async fn first_rollout_of_a_bare_deployment() -> TestResult {
    let text = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
";
    let server = SimServer::start(
        Scenario::from_yaml(text, "web.yaml")?,
        ([127, 0, 0, 1], 0).into(),
    )
    .await?;
    let deploys: Api<Deployment> = Api::namespaced(client(&server)?, "shop");
    let d = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}})),
        )
        .await?;
    let rev = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned();
    assert_eq!(rev.as_deref(), Some("1"));
    let status = d.status.unwrap_or_default();
    assert_eq!(
        (
            status.replicas,
            status.ready_replicas,
            status.updated_replicas
        ),
        (Some(2), Some(2), Some(2))
    );
    let rs: Api<ReplicaSet> = Api::namespaced(client(&server)?, "shop");
    let sets = rs.list(&ListParams::default()).await?;
    assert_eq!(sets.items.len(), 1);
    let rs_name = sets.items[0].metadata.name.clone().unwrap_or_default();
    assert!(rs_name.starts_with("web-"), "{rs_name}");
    let pods: Api<Pod> = Api::namespaced(client(&server)?, "shop");
    let list = pods.list(&ListParams::default().labels("app=web")).await?;
    assert_eq!(list.items.len(), 2);
    assert!(list.items.iter().all(|p| {
        p.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with(&rs_name))
    }));
    server.shutdown().await;
    Ok(())
}

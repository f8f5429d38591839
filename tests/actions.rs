//! Action kinds against the simulated API server: each is planned (changing nothing), applied
//! from the plan, verified, and checked with the real kubectl; plus the refusals.

use firebreak::cluster::Cluster;
use firebreak::runbook::actions::{
    self, ActionCx, ActionError, ActionSpec, DryRun, Plan, VersionChange,
};
use firebreak::runbook::{Runbook, Stage};
use firebreak::sim::{Scenario, SimServer};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::time::Duration;

use crate::support::{SHIPPED_RUNBOOK, demo, kubectl, sim};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const NS: &str = "ai-production";
const VERIFY: Duration = Duration::from_secs(20);

/// The demo simulator, a client and the shipped runbook.
struct Fixture {
    server: SimServer,
    cluster: Cluster,
    runbook: Runbook,
}

impl Fixture {
    async fn demo() -> Fixture {
        Fixture::with(demo()).await
    }

    async fn with(scenario: Scenario) -> Fixture {
        let server = sim(scenario).await;
        let cluster = Cluster::from_url(&server.url()).expect("client builds");
        let runbook =
            Runbook::from_yaml(SHIPPED_RUNBOOK, "model-server.yaml").expect("runbook parses");
        Fixture {
            server,
            cluster,
            runbook,
        }
    }

    fn cx(&self) -> ActionCx<'_> {
        ActionCx {
            runbook: &self.runbook,
            cluster: &self.cluster,
        }
    }

    fn action(&self, stage: Stage, id: &str) -> ActionSpec {
        self.runbook
            .stage(stage)
            .and_then(|s| s.actions.iter().find(|a| a.id() == id))
            .unwrap_or_else(|| panic!("the shipped runbook has no {stage} action {id}"))
            .clone()
    }

    async fn plan(&self, stage: Stage, id: &str, arg: Option<&str>) -> Result<Plan, ActionError> {
        actions::plan(&self.action(stage, id), &self.cx(), arg).await
    }

    async fn kubectl_get(
        &self,
        what: &[&str],
        jsonpath: &str,
    ) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        let jp = format!("jsonpath={jsonpath}");
        args.extend_from_slice(&["-n", NS, "-o", &jp]);
        kubectl(&self.server, &args).await
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.cluster.client(), NS)
    }
}

fn change(what: &str, from: &str, to: &str) -> VersionChange {
    VersionChange {
        what: what.into(),
        from: from.into(),
        to: to.into(),
    }
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
async fn rollout_undo_plans_applies_and_kubectl_agrees() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Rollback, "undo", None).await?;
    assert_eq!(plan.kind, "rollout_undo");
    assert_eq!(plan.target, "deployment/model-server -n ai-production");
    assert!(
        plan.summary.contains(
            "from revision 2 (vllm/vllm-openai:v0.11.0) to revision 1 (vllm/vllm-openai:v0.10.1)"
        ),
        "{}",
        plan.summary
    );
    assert!(plan.summary.contains("revision 3"), "{}", plan.summary);
    assert_eq!(
        plan.versions,
        [
            change("revision", "2", "1"),
            change(
                "image",
                "vllm/vllm-openai:v0.11.0",
                "vllm/vllm-openai:v0.10.1"
            )
        ]
    );
    assert!(
        plan.diff.contains("- spec.template.spec.containers[0].image: vllm/vllm-openai:v0.11.0\n+ spec.template.spec.containers[0].image: vllm/vllm-openai:v0.10.1"),
        "{}",
        plan.diff
    );
    assert!(
        !plan.diff.contains("args"),
        "unchanged fields stay out:\n{}",
        plan.diff
    );
    assert_eq!(plan.dry_run, DryRun::Passed);
    assert_eq!(plan.calls.len(), 1);
    assert_eq!(plan.calls[0].content_type, "application/json-patch+json");
    assert!(
        f.server.writes().is_empty(),
        "planning wrote: {:?}",
        f.server.writes()
    );

    let applied = actions::apply(&plan, &f.cluster).await?;
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].method, "PATCH");
    assert_eq!(applied[0].status, 200);
    assert_eq!(f.server.writes().len(), 1);

    let verified = actions::verify(&plan, &f.cx(), VERIFY).await;
    assert!(verified.settled, "{}", verified.detail);
    assert_eq!(
        verified.detail,
        "deployment/model-server: 4/4 replicas updated and available"
    );

    let history = kubectl(
        &f.server,
        &["rollout", "history", "deployment/model-server", "-n", NS],
    )
    .await?;
    assert_eq!(revisions(&history), ["2", "3"], "{history}");
    let rev3 = kubectl(
        &f.server,
        &[
            "rollout",
            "history",
            "deployment/model-server",
            "-n",
            NS,
            "--revision=3",
        ],
    )
    .await?;
    assert!(rev3.contains("vllm/vllm-openai:v0.10.1"), "{rev3}");
    let image = f
        .kubectl_get(
            &["deploy", "model-server"],
            "{.spec.template.spec.containers[0].image}",
        )
        .await?;
    assert_eq!(image, "vllm/vllm-openai:v0.10.1");

    // Undo again goes back to what was current before: revision 2's template.
    let again = f.plan(Stage::Rollback, "undo", None).await?;
    assert_eq!(again.versions[0], change("revision", "3", "2"));
    Ok(())
}

#[tokio::test]
async fn rollout_undo_refuses_unknown_current_and_malformed_revisions() -> TestResult {
    let f = Fixture::demo().await;
    match f.plan(Stage::Rollback, "undo", Some("7")).await {
        Err(ActionError::NotFound(m)) => {
            assert!(
                m.contains("no revision 7; revisions that exist: 2, 1"),
                "{m}"
            )
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    match f.plan(Stage::Rollback, "undo", Some("2")).await {
        Err(ActionError::NothingToDo(m)) => assert!(m.contains("current revision"), "{m}"),
        other => panic!("expected NothingToDo, got {other:?}"),
    }
    assert!(matches!(
        f.plan(Stage::Rollback, "undo", Some("latest")).await,
        Err(ActionError::BadArgument(_))
    ));
    // An explicit revision works like the default here.
    let plan = f.plan(Stage::Rollback, "undo", Some("1")).await?;
    assert_eq!(plan.versions[0], change("revision", "2", "1"));
    assert!(f.server.writes().is_empty());
    Ok(())
}

/// A deployment with one revision only.
const FIRST_DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: model-server
  namespace: ai-production
  uid: 11111111-2222-3333-4444-555555555555
  generation: 1
  annotations: {deployment.kubernetes.io/revision: \"1\"}
spec:
  replicas: 1
  selector: {matchLabels: {app: model-server}}
  template:
    metadata: {labels: {app: model-server}}
    spec:
      containers: [{name: vllm, image: vllm/vllm-openai:v0.11.0}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: model-server-abc
  namespace: ai-production
  labels: {app: model-server, pod-template-hash: abc}
  annotations: {deployment.kubernetes.io/revision: \"1\"}
  ownerReferences:
  - {apiVersion: apps/v1, kind: Deployment, name: model-server, uid: 11111111-2222-3333-4444-555555555555, controller: true}
spec:
  replicas: 1
  selector: {matchLabels: {app: model-server, pod-template-hash: abc}}
  template:
    metadata: {labels: {app: model-server, pod-template-hash: abc}}
    spec:
      containers: [{name: vllm, image: vllm/vllm-openai:v0.11.0}]
";

#[tokio::test]
async fn rollout_undo_without_a_previous_revision_says_so() -> TestResult {
    let f = Fixture::with(Scenario::from_yaml(FIRST_DEPLOY, "first.yaml")?).await;
    match f.plan(Stage::Rollback, "undo", None).await {
        Err(ActionError::NothingToDo(m)) => {
            assert!(m.contains("no revision before 1"), "{m}");
            assert!(m.contains("(revisions: 1)"), "{m}");
        }
        other => panic!("expected NothingToDo, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn stale_undo_plan_is_refused_and_overwrites_nothing() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Rollback, "undo", None).await?;
    // Someone ships a hotfix between the plan and its approval.
    f.deployments()
        .patch(
            "model-server",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "vllm", "image": "vllm/vllm-openai:v0.11.1"}
            ]}}}})),
        )
        .await?;
    let writes = f.server.writes().len();
    match actions::apply(&plan, &f.cluster).await {
        Err(e @ ActionError::Stale { .. }) => {
            let m = e.to_string();
            assert!(m.contains("changed since the plan"), "{m}");
            assert!(m.contains("Run the action again"), "{m}");
        }
        other => panic!("expected Stale, got {other:?}"),
    }
    assert_eq!(f.server.writes().len(), writes, "nothing more was written");
    let image = f
        .kubectl_get(
            &["deploy", "model-server"],
            "{.spec.template.spec.containers[0].image}",
        )
        .await?;
    assert_eq!(image, "vllm/vllm-openai:v0.11.1");
    Ok(())
}

#[tokio::test]
async fn rollout_restart_sets_restarted_at_like_kubectl() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Mitigate, "restart", None).await?;
    assert_eq!(
        plan.summary,
        "restart all 4 pods of deployment/model-server -n ai-production (a rolling replacement)"
    );
    assert_eq!(plan.versions.len(), 1);
    let stamp = plan.versions[0].to.clone();
    assert_eq!(plan.versions[0].from, "-");
    assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{stamp}");
    assert_eq!(
        plan.diff,
        format!("+ spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]: {stamp}")
    );
    assert_eq!(plan.dry_run, DryRun::Passed);
    assert!(f.server.writes().is_empty());
    assert!(matches!(
        f.plan(Stage::Mitigate, "restart", Some("now")).await,
        Err(ActionError::BadArgument(_))
    ));

    let applied = actions::apply(&plan, &f.cluster).await?;
    assert_eq!(applied.len(), 1);
    let verified = actions::verify(&plan, &f.cx(), VERIFY).await;
    assert!(verified.settled, "{}", verified.detail);
    let got = f
        .kubectl_get(
            &["deploy", "model-server"],
            "{.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
        )
        .await?;
    assert_eq!(got, stamp);
    let history = kubectl(
        &f.server,
        &["rollout", "history", "deployment/model-server", "-n", NS],
    )
    .await?;
    assert_eq!(revisions(&history), ["1", "2", "3"], "{history}");
    Ok(())
}

#[tokio::test]
async fn scale_out_within_bounds_through_the_scale_subresource() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Mitigate, "scale-out", None).await?;
    assert_eq!(
        plan.summary,
        "scale deployment/model-server -n ai-production from 4 to 5 replicas"
    );
    assert_eq!(plan.versions, [change("replicas", "4", "5")]);
    assert_eq!(plan.diff, "- spec.replicas: 4\n+ spec.replicas: 5");
    assert!(
        plan.calls[0]
            .path
            .ends_with("/deployments/model-server/scale")
    );
    assert_eq!(plan.dry_run, DryRun::Passed);
    assert!(f.server.writes().is_empty());

    let applied = actions::apply(&plan, &f.cluster).await?;
    assert_eq!(applied[0].status, 200);
    let verified = actions::verify(&plan, &f.cx(), VERIFY).await;
    // The demo's pods are sick, so the new replica exists but not all are available.
    assert!(verified.settled, "{}", verified.detail);
    assert!(
        verified.detail.starts_with("deployment/model-server: 5/5"),
        "{}",
        verified.detail
    );
    let replicas = f
        .kubectl_get(&["deploy", "model-server"], "{.spec.replicas}")
        .await?;
    assert_eq!(replicas, "5");

    // A command argument overrides the runbook's `+1`.
    let plan = f.plan(Stage::Mitigate, "scale-out", Some("-2")).await?;
    assert_eq!(plan.versions, [change("replicas", "5", "3")]);
    Ok(())
}

#[tokio::test]
async fn scale_refuses_out_of_bounds_and_no_ops() -> TestResult {
    let f = Fixture::demo().await;
    match f.plan(Stage::Mitigate, "scale-out", Some("9")).await {
        Err(ActionError::OutOfBounds(m)) => {
            assert!(m.contains("above the runbook's max of 8"), "{m}")
        }
        other => panic!("expected OutOfBounds, got {other:?}"),
    }
    match f.plan(Stage::Mitigate, "scale-out", Some("-4")).await {
        Err(ActionError::OutOfBounds(m)) => {
            assert!(m.contains("below the runbook's min of 1"), "{m}")
        }
        other => panic!("expected OutOfBounds, got {other:?}"),
    }
    assert!(matches!(
        f.plan(Stage::Mitigate, "scale-out", Some("4")).await,
        Err(ActionError::NothingToDo(_))
    ));
    assert!(matches!(
        f.plan(Stage::Mitigate, "scale-out", Some("lots")).await,
        Err(ActionError::BadArgument(_))
    ));
    assert!(f.server.writes().is_empty());
    Ok(())
}

#[tokio::test]
async fn stale_scale_plan_is_refused() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Mitigate, "scale-out", None).await?;
    f.deployments()
        .patch(
            "model-server",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await?;
    assert!(matches!(
        actions::apply(&plan, &f.cluster).await,
        Err(ActionError::Stale { .. })
    ));
    let replicas = f
        .kubectl_get(&["deploy", "model-server"], "{.spec.replicas}")
        .await?;
    assert_eq!(replicas, "6");
    Ok(())
}

#[tokio::test]
async fn prompt_rollback_switches_the_active_version() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Rollback, "prompt", None).await?;
    assert_eq!(plan.target, "configmap/prompt-versions -n ai-production");
    assert_eq!(
        plan.summary,
        "switch the active prompt in configmap/prompt-versions -n ai-production from v7 to v6"
    );
    assert_eq!(plan.versions, [change("prompt version", "v7", "v6")]);
    assert_eq!(plan.diff, "- data.active: v7\n+ data.active: v6");
    assert_eq!(plan.dry_run, DryRun::Passed);
    assert!(f.server.writes().is_empty());

    actions::apply(&plan, &f.cluster).await?;
    let verified = actions::verify(&plan, &f.cx(), VERIFY).await;
    assert!(verified.settled, "{}", verified.detail);
    assert_eq!(
        verified.detail,
        "configmap/prompt-versions -n ai-production: reads back data.active = v6"
    );
    let active = f
        .kubectl_get(&["configmap", "prompt-versions"], "{.data.active}")
        .await?;
    assert_eq!(active, "v6");

    // Nothing before the oldest version; an explicit version still works.
    match f.plan(Stage::Rollback, "prompt", None).await {
        Err(ActionError::NothingToDo(m)) => {
            assert!(m.contains("no prompt version before v6"), "{m}")
        }
        other => panic!("expected NothingToDo, got {other:?}"),
    }
    let forward = f.plan(Stage::Rollback, "prompt", Some("v7")).await?;
    assert_eq!(forward.versions, [change("prompt version", "v6", "v7")]);
    match f.plan(Stage::Rollback, "prompt", Some("v9")).await {
        Err(ActionError::NotFound(m)) => assert!(m.contains("versions: v6, v7"), "{m}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn stale_prompt_plan_is_refused() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Rollback, "prompt", None).await?;
    let cms: Api<ConfigMap> = Api::namespaced(f.cluster.client(), NS);
    cms.patch(
        "prompt-versions",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"active": "v6"}})),
    )
    .await?;
    assert!(matches!(
        actions::apply(&plan, &f.cluster).await,
        Err(ActionError::Stale { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn failover_shifts_httproute_weights() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Mitigate, "failover", None).await?;
    assert_eq!(plan.target, "httproute/model-server -n ai-production");
    assert_eq!(
        plan.summary,
        "shift traffic on httproute/model-server -n ai-production rule 0: model-server-us-east 100, model-server-us-west 0 → model-server-us-east 0, model-server-us-west 100"
    );
    assert_eq!(
        plan.versions,
        [
            change("weight model-server-us-east", "100", "0"),
            change("weight model-server-us-west", "0", "100"),
        ]
    );
    assert_eq!(plan.dry_run, DryRun::Passed);
    assert!(f.server.writes().is_empty());
    let policy = f.action(Stage::Mitigate, "failover");
    assert_eq!(policy.policy().map(|p| p.approvals), Some(2));

    actions::apply(&plan, &f.cluster).await?;
    let verified = actions::verify(&plan, &f.cx(), VERIFY).await;
    assert!(verified.settled, "{}", verified.detail);
    let weights = f
        .kubectl_get(
            &["httproute", "model-server"],
            "{.spec.rules[0].backendRefs[*].weight}",
        )
        .await?;
    assert_eq!(weights, "0 100");
    assert!(matches!(
        f.plan(Stage::Mitigate, "failover", None).await,
        Err(ActionError::NothingToDo(_))
    ));
    Ok(())
}

#[tokio::test]
async fn dry_run_refusal_is_surfaced_in_the_plan() -> TestResult {
    let f = Fixture::demo().await;
    // Runbook loading refuses this weight; parsed alone, it reaches the API server's dry run.
    let spec: ActionSpec = serde_norway::from_str(
        "kind: traffic_shift\nid: bad\nroute: model-server\nweights: {model-server-us-west: 2000000}\n",
    )?;
    let plan = actions::plan(&spec, &f.cx(), None).await?;
    match &plan.dry_run {
        DryRun::Refused(m) => assert!(m.contains("1000000"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(f.server.writes().is_empty());
    // Unknown backends are refused before any call.
    let spec: ActionSpec = serde_norway::from_str(
        "kind: traffic_shift\nid: bad\nroute: model-server\nweights: {model-server-eu: 100}\n",
    )?;
    match actions::plan(&spec, &f.cx(), None).await {
        Err(ActionError::BadArgument(m)) => {
            assert!(
                m.contains("model-server-us-east, model-server-us-west"),
                "{m}"
            )
        }
        other => panic!("expected BadArgument, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn delete_pod_named_or_worst_and_only_the_services_pods() -> TestResult {
    let f = Fixture::demo().await;
    match f
        .plan(Stage::Mitigate, "delete-pod", Some("rag-index-rebuild-1"))
        .await
    {
        Err(ActionError::BadArgument(m)) => {
            assert!(
                m.contains("not one of model-server's pods (selector `app=model-server`"),
                "{m}"
            );
            assert!(m.contains("model-server-7c9d4f8b6-x2k9p"), "{m}");
        }
        other => panic!("expected BadArgument, got {other:?}"),
    }
    // `pick: worst`: not ready with the most restarts.
    let worst = f.plan(Stage::Mitigate, "delete-pod", None).await?;
    assert_eq!(
        worst.target,
        "pod/model-server-7c9d4f8b6-x2k9p -n ai-production"
    );
    assert!(
        worst.summary.contains("not ready, 6 restarts, gpu-node-a"),
        "{}",
        worst.summary
    );

    let plan = f
        .plan(
            Stage::Mitigate,
            "delete-pod",
            Some("model-server-7c9d4f8b6-q8w4n"),
        )
        .await?;
    assert_eq!(plan.calls[0].method, "DELETE");
    assert_eq!(plan.dry_run, DryRun::Passed);
    assert!(
        plan.diff
            .starts_with("- pod/model-server-7c9d4f8b6-q8w4n: Running, not ready, 4 restarts"),
        "{}",
        plan.diff
    );
    assert!(f.server.writes().is_empty());

    let applied = actions::apply(&plan, &f.cluster).await?;
    assert_eq!(applied[0].method, "DELETE");
    let verified = actions::verify(&plan, &f.cx(), VERIFY).await;
    assert!(verified.settled, "{}", verified.detail);
    assert!(
        verified
            .detail
            .starts_with("pod/model-server-7c9d4f8b6-q8w4n is gone"),
        "{}",
        verified.detail
    );
    let names = f
        .kubectl_get(
            &["pods", "-l", "app=model-server"],
            "{.items[*].metadata.name}",
        )
        .await?;
    assert!(!names.contains("q8w4n"), "{names}");
    assert_eq!(names.split_whitespace().count(), 4, "{names}");

    // Applying the same plan again finds the pod gone: refused, nothing else deleted.
    let writes = f.server.writes().len();
    match actions::apply(&plan, &f.cluster).await {
        Err(ActionError::NotFound(m)) => assert!(m.contains("no longer exists"), "{m}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(f.server.writes().len(), writes);
    Ok(())
}

#[tokio::test]
async fn a_plan_stored_as_json_applies_identically() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Rollback, "undo", None).await?;
    let stored = serde_json::to_string(&plan)?;
    let loaded: Plan = serde_json::from_str(&stored)?;
    assert_eq!(loaded, plan);
    // A fresh client, as after a restart.
    let cluster = Cluster::from_url(&f.server.url())?;
    let applied = actions::apply(&loaded, &cluster).await?;
    assert_eq!(applied.len(), 1);
    assert_eq!(
        applied[0].path,
        "/apis/apps/v1/namespaces/ai-production/deployments/model-server"
    );
    let image = f
        .kubectl_get(
            &["deploy", "model-server"],
            "{.spec.template.spec.containers[0].image}",
        )
        .await?;
    assert_eq!(image, "vllm/vllm-openai:v0.10.1");
    Ok(())
}

#[test]
fn policies_default_and_safe_actions_need_none() -> TestResult {
    let runbook = Runbook::from_yaml(SHIPPED_RUNBOOK, "model-server.yaml")?;
    let mitigate = runbook.stage(Stage::Mitigate).map(|s| s.actions.len());
    assert_eq!(mitigate, Some(4));
    let spec: ActionSpec = serde_norway::from_str("kind: rollout_restart\nid: r\n")?;
    let policy = spec.policy().cloned().unwrap_or_default();
    assert_eq!(policy.approvals, 1);
    assert!(!policy.self_approve);
    let safe: ActionSpec = serde_norway::from_str("kind: rollout_restart\nid: r\nsafe: true\n")?;
    assert!(safe.policy().is_none());
    assert_eq!(safe.kind(), "rollout_restart");
    Ok(())
}

#[test]
fn runbook_action_mistakes_fail_at_load() {
    let bad = |stage_yaml: &str| {
        let text = SHIPPED_RUNBOOK.replace(
            "    description: Evidence for the post-mortem draft.\n",
            &format!(
                "    description: Evidence for the post-mortem draft.\n    actions:\n{stage_yaml}"
            ),
        );
        Runbook::from_yaml(&text, "bad.yaml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let dup = bad("      - {kind: rollout_restart, id: x}\n      - {kind: rollout_undo, id: x}\n");
    assert!(dup.contains("two actions are called `x`"), "{dup}");
    let bounds = bad("      - {kind: scale, id: s, replicas: 2, min: 3, max: 2}\n");
    assert!(bounds.contains("min 3 / max 2"), "{bounds}");
    let typo = bad("      - {kind: scale, id: s, replicas: 2, maximum: 3}\n");
    assert!(typo.contains("unknown field `maximum`"), "{typo}");
    let unquoted = bad("      - {kind: scale, id: s, replicas: lots, max: 3}\n");
    assert!(unquoted.contains("not a replica count"), "{unquoted}");
}

#[tokio::test]
async fn stale_failover_plan_is_refused() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Mitigate, "failover", None).await?;
    kubectl(
        &f.server,
        &[
            "patch",
            "httproute",
            "model-server",
            "-n",
            NS,
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/rules/0/backendRefs/0/weight","value":50}]"#,
        ],
    )
    .await?;
    assert!(matches!(
        actions::apply(&plan, &f.cluster).await,
        Err(ActionError::Stale { .. })
    ));
    let weights = f
        .kubectl_get(
            &["httproute", "model-server"],
            "{.spec.rules[0].backendRefs[*].weight}",
        )
        .await?;
    assert_eq!(weights, "50 0");
    Ok(())
}

/// The demo's deployment has 1 of 4 replicas available; a rollout check cannot settle, and
/// verify says what it saw rather than waiting past its budget.
#[tokio::test]
async fn verify_reports_what_did_not_settle() -> TestResult {
    let f = Fixture::demo().await;
    let plan = f.plan(Stage::Rollback, "undo", None).await?;
    let verified = actions::verify(&plan, &f.cx(), Duration::ZERO).await;
    assert!(!verified.settled);
    assert_eq!(
        verified.detail,
        "timed out after 0s: deployment/model-server: 4/4 updated, 1/4 available"
    );
    Ok(())
}

/// A pod replaced under the same name (StatefulSet-style) has a new uid: the planned DELETE's
/// uid precondition refuses it rather than deleting the replacement.
#[tokio::test]
async fn delete_pod_refuses_a_same_named_replacement() -> TestResult {
    let f = Fixture::demo().await;
    let mut plan = f
        .plan(
            Stage::Mitigate,
            "delete-pod",
            Some("model-server-7c9d4f8b6-x2k9p"),
        )
        .await?;
    let Some(body) = plan.calls[0].body.as_mut() else {
        panic!("the DELETE carries DeleteOptions");
    };
    assert!(body.pointer("/preconditions/uid").is_some(), "{body}");
    body["preconditions"]["uid"] = "00000000-0000-0000-0000-000000000000".into();
    match actions::apply(&plan, &f.cluster).await {
        Err(e @ ActionError::Stale { .. }) => {
            assert!(e.to_string().contains("Precondition failed: UID"), "{e}")
        }
        other => panic!("expected Stale, got {other:?}"),
    }
    assert!(f.server.writes().is_empty());
    Ok(())
}

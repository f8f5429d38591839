//! `delete_pod`: delete one serving pod so its ReplicaSet starts a fresh one.
//!
//! The command argument names the pod; it must be one of the runbook's selector's pods in its
//! namespace, so a typo cannot delete some other workload's pod. Without an argument the
//! runbook may say `pick: worst`: the pod that is not ready with the most container restarts
//! (not-ready first, then restarts, then name, so the choice is stable). The DELETE carries a
//! `uid` precondition: if the pod was already replaced by one of the same name, the API server
//! refuses (409) instead of deleting the new one.

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, get_json};
use super::{ActionCx, ActionError, ApiCall, Draft, Plan, VersionChange};
use crate::approval::Policy;
use crate::cluster::ClusterError;

/// Runbook form of the `delete_pod` action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletePod {
    /// What commands call it.
    pub id: String,
    /// Heading shown with the plan.
    pub title: Option<String>,
    /// Who must approve; the default policy when absent.
    pub approval: Option<Policy>,
    /// No approval needed.
    #[serde(default)]
    pub safe: bool,
    /// Which pod to delete when the command names none; without it a pod name is required.
    pub pick: Option<Pick>,
}

/// How to choose a pod when the command names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// Not ready first, then most container restarts.
    Worst,
}

/// A pod's health, for choosing and for the plan.
struct Health {
    ready: bool,
    restarts: i32,
    phase: String,
    node: String,
}

fn health(pod: &Pod) -> Health {
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let restarts = status
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum());
    Health {
        ready,
        restarts,
        phase: status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into()),
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| "no node".into()),
    }
}

impl DeletePod {
    pub(super) async fn plan(
        &self,
        cx: &ActionCx<'_>,
        arg: Option<&str>,
    ) -> Result<Draft, ActionError> {
        let runbook = cx.runbook;
        let ns = &runbook.namespace;
        let api = cx.cluster.namespaced::<Pod>(ns);
        let pods: Vec<Pod> = cx
            .cluster
            .list_all(&api, &ListParams::default().labels(&runbook.selector.0), ns)
            .await?
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let names = || {
            pods.iter()
                .filter_map(|p| p.metadata.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let pod = match (arg, self.pick) {
            (Some(name), _) => pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(name))
                .ok_or_else(|| {
                    ActionError::BadArgument(format!(
                        "pod `{name}` is not one of {}'s pods (selector `{}` in `{ns}`); pods that are: {}",
                        runbook.service,
                        runbook.selector,
                        names()
                    ))
                })?,
            (None, Some(Pick::Worst)) => pods
                .iter()
                .max_by(|a, b| {
                    let (ha, hb) = (health(a), health(b));
                    (!ha.ready, ha.restarts)
                        .cmp(&(!hb.ready, hb.restarts))
                        // Reversed so the alphabetically first wins a tie.
                        .then_with(|| b.metadata.name.cmp(&a.metadata.name))
                })
                .ok_or_else(|| {
                    ActionError::NotFound(format!(
                        "no pods match `{}` in `{ns}`; nothing to delete",
                        runbook.selector
                    ))
                })?,
            (None, None) => {
                return Err(ActionError::BadArgument(format!(
                    "name the pod to delete: `{} POD`; {}'s pods: {}",
                    self.id,
                    runbook.service,
                    names()
                )));
            }
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let h = health(pod);
        let described = format!(
            "{}, {}, {} restarts, {}",
            h.phase,
            if h.ready { "ready" } else { "not ready" },
            h.restarts,
            h.node
        );
        let target = format!("pod/{name} -n {ns}");
        let mut options = json!({"apiVersion": "v1", "kind": "DeleteOptions"});
        if !uid.is_empty() {
            options["preconditions"] = json!({"uid": uid});
        }
        Ok(Draft {
            summary: format!(
                "delete pod {name} ({described}); its ReplicaSet starts a replacement"
            ),
            diff: wire::diff_lines(&[(format!("pod/{name}"), described.clone())], &[]),
            calls: vec![ApiCall {
                method: "DELETE".into(),
                path: format!("/api/v1/namespaces/{ns}/pods/{name}"),
                content_type: "application/json".into(),
                body: Some(options),
            }],
            versions: vec![VersionChange::new("pod", name, "(replacement)")],
            target,
        })
    }
}

/// Verification of a delete: the pod is gone (or another pod has its name) and the deployment
/// has its replicas again.
pub(super) async fn gone(plan: &Plan, cx: &ActionCx<'_>) -> Result<(bool, String), ClusterError> {
    let Some(call) = plan.calls.first() else {
        return Ok((true, "nothing was deleted".into()));
    };
    let planned_uid = call
        .body
        .as_ref()
        .and_then(|b| b.pointer("/preconditions/uid"))
        .and_then(Value::as_str);
    let still_there = match get_json(cx, &call.path, &plan.target).await {
        Ok(pod) => {
            let uid = pod.pointer("/metadata/uid").and_then(Value::as_str);
            uid.is_none() || uid == planned_uid
        }
        Err(ClusterError::NotFound { .. }) => false,
        Err(e) => return Err(e),
    };
    if still_there {
        return Ok((false, format!("{} is still terminating", plan.target)));
    }
    let (settled, detail) = wire::rollout_status(cx, false).await?;
    let pod = plan.target.split(" -n ").next().unwrap_or(&plan.target);
    Ok((settled, format!("{pod} is gone; {detail}")))
}

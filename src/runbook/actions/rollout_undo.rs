//! `rollout_undo`: put an older revision's pod template back, as `kubectl rollout undo` does.
//!
//! kubectl's rollback (`rollback.go`): find the ReplicaSet owned by the deployment whose
//! `deployment.kubernetes.io/revision` is the target, drop its `pod-template-hash` label, and
//! send a JSON Patch that replaces `/spec/template` and `/metadata/annotations`. The new
//! annotations are the deployment's own revision-bookkeeping annotations plus every annotation
//! of the ReplicaSet except those (so `kubernetes.io/change-cause` comes back with the
//! template). A JSON Patch rather than a strategic merge, so fields the newer revision added
//! are dropped. Firebreak adds a `test` of `/metadata/generation`: a deployment changed since
//! the plan refuses the patch instead of being overwritten.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::ListParams;
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, deployment, deployment_path, deployment_target};
use super::{ActionCx, ActionError, ApiCall, Draft, VersionChange};
use crate::approval::Policy;
use crate::runbook::steps::rollout_history::{REVISION_ANNOTATION, revisions};

/// Annotations kubectl never copies from a ReplicaSet onto the deployment on rollback.
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// Runbook form of the `rollout_undo` action. The command argument, if any, is the revision to
/// go back to (`/rollback model-server undo 3`); without one, the revision before the current.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutUndo {
    /// What commands call it.
    pub id: String,
    /// Heading shown with the plan.
    pub title: Option<String>,
    /// Who must approve; the default policy when absent.
    pub approval: Option<Policy>,
    /// No approval needed.
    #[serde(default)]
    pub safe: bool,
}

impl RolloutUndo {
    pub(super) async fn plan(
        &self,
        cx: &ActionCx<'_>,
        arg: Option<&str>,
    ) -> Result<Draft, ActionError> {
        let wanted = match arg {
            None => None,
            Some(a) => Some(
                a.trim_start_matches("revision=")
                    .trim_start_matches("--to-revision=")
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        ActionError::BadArgument(format!(
                            "`{a}` is not a revision number; give one from the rollout history, e.g. `undo 2`, or none for the previous revision"
                        ))
                    })?,
            ),
        };
        let runbook = cx.runbook;
        let ns = &runbook.namespace;
        let target = deployment_target(cx);
        let deploy = deployment(cx).await?;
        let rs_api = cx.cluster.namespaced::<ReplicaSet>(ns);
        let replica_sets = cx
            .cluster
            .list_all(&rs_api, &ListParams::default(), ns)
            .await?;
        let history = revisions(&deploy, &replica_sets);
        let annotations = deploy.metadata.annotations.clone().unwrap_or_default();
        let current: i64 = annotations
            .get(REVISION_ANNOTATION)
            .and_then(|r| r.parse().ok())
            .or_else(|| history.first().map(|r| r.number))
            .unwrap_or(0);
        let known = || {
            history
                .iter()
                .map(|r| r.number.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let to = match wanted {
            Some(n) if n == current => {
                return Err(ActionError::NothingToDo(format!(
                    "revision {n} is the current revision of {target}"
                )));
            }
            Some(n) => history.iter().find(|r| r.number == n).ok_or_else(|| {
                ActionError::NotFound(format!(
                    "{target} has no revision {n}; revisions that exist: {}",
                    known()
                ))
            })?,
            None => history.iter().find(|r| r.number < current).ok_or_else(|| {
                ActionError::NothingToDo(format!(
                    "{target} has no revision before {current} to roll back to (revisions: {})",
                    if history.is_empty() {
                        "none".to_string()
                    } else {
                        known()
                    }
                ))
            })?,
        };
        let from_images = history
            .iter()
            .find(|r| r.number == current)
            .map(|r| r.images.clone())
            .unwrap_or_else(|| "?".to_string());
        let rs = replica_sets
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(to.replica_set.as_str()))
            .ok_or_else(|| ActionError::NotFound(format!("ReplicaSet {}", to.replica_set)))?;

        let mut template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| ActionError::BadArgument(format!("ReplicaSet template: {e}")))?
            .unwrap_or(Value::Null);
        if let Some(labels) = template
            .pointer_mut("/metadata/labels")
            .and_then(Value::as_object_mut)
        {
            labels.remove("pod-template-hash");
        }
        let current_template = deploy
            .spec
            .as_ref()
            .map(|s| serde_json::to_value(&s.template))
            .transpose()
            .map_err(|e| ActionError::BadArgument(format!("deployment template: {e}")))?
            .unwrap_or(Value::Null);
        if template == current_template {
            return Err(ActionError::NothingToDo(format!(
                "the current template of {target} already matches revision {}",
                to.number
            )));
        }

        let mut new_annotations: BTreeMap<String, String> = annotations
            .iter()
            .filter(|(k, _)| ANNOTATIONS_TO_SKIP.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in rs.metadata.annotations.iter().flatten() {
            if !ANNOTATIONS_TO_SKIP.contains(&k.as_str()) {
                new_annotations.insert(k.clone(), v.clone());
            }
        }
        let generation = deploy.metadata.generation.unwrap_or(0);
        let body = json!([
            {"op": "test", "path": "/metadata/generation", "value": generation},
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "add", "path": "/metadata/annotations", "value": new_annotations},
        ]);

        let old_annotations = serde_json::to_value(&annotations).unwrap_or(Value::Null);
        let new_annotations = serde_json::to_value(&new_annotations).unwrap_or(Value::Null);
        let mut before = wire::flatten("metadata.annotations", &old_annotations);
        before.extend(wire::flatten("spec.template", &current_template));
        let mut after = wire::flatten("metadata.annotations", &new_annotations);
        after.extend(wire::flatten("spec.template", &template));

        let next = history.first().map_or(current, |r| r.number).max(current) + 1;
        Ok(Draft {
            summary: format!(
                "roll back {target} from revision {current} ({from_images}) to revision {} ({}); Kubernetes records it as revision {next}",
                to.number, to.images
            ),
            diff: wire::diff_lines(&before, &after),
            calls: vec![ApiCall {
                method: "PATCH".into(),
                path: deployment_path(cx),
                content_type: "application/json-patch+json".into(),
                body: Some(body),
            }],
            versions: vec![
                VersionChange::new("revision", current.to_string(), to.number.to_string()),
                VersionChange::new("image", from_images, to.images.clone()),
            ],
            target,
        })
    }
}

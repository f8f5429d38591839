//! `rollout_history`: the deployment's revisions (its ReplicaSets by
//! `deployment.kubernetes.io/revision`), newest first, with image and age.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::ListParams;
use serde::Deserialize;

use super::{Finding, StepCx, StepError, StepOutput, Timeout, age, aligned_table};
use crate::render::Severity;

/// The annotation Kubernetes keeps a deployment's revision number in.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Runbook form of the `rollout_history` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutHistory {
    /// Heading shown in the report.
    pub title: Option<String>,
    /// Time limit for this step.
    pub timeout: Option<Timeout>,
    /// How many revisions to show.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    5
}

/// One revision of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// Revision number.
    pub number: i64,
    /// ReplicaSet name.
    pub replica_set: String,
    /// Container images, comma-separated.
    pub images: String,
    /// Desired replicas of this ReplicaSet.
    pub replicas: i32,
    /// When the ReplicaSet was created.
    pub created: Option<jiff::Timestamp>,
    /// `kubernetes.io/change-cause`, if recorded.
    pub change_cause: Option<String>,
}

/// The revisions of `deployment`, newest first, from ReplicaSets it controls.
pub fn revisions(deployment: &Deployment, replica_sets: &[ReplicaSet]) -> Vec<Revision> {
    let uid = deployment.metadata.uid.clone();
    let name = deployment.metadata.name.clone();
    let mut revisions: Vec<Revision> = replica_sets
        .iter()
        .filter(|rs| {
            rs.metadata.owner_references.as_ref().is_some_and(|owners| {
                owners.iter().any(|o| {
                    o.kind == "Deployment"
                        && (Some(&o.uid) == uid.as_ref() || Some(&o.name) == name.as_ref())
                })
            })
        })
        .filter_map(|rs| {
            let annotations = rs.metadata.annotations.as_ref()?;
            let number = annotations.get(REVISION_ANNOTATION)?.parse().ok()?;
            let pod_spec = rs.spec.as_ref()?.template.as_ref()?.spec.as_ref()?;
            let images = pod_spec
                .containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect::<Vec<_>>()
                .join(", ");
            Some(Revision {
                number,
                replica_set: rs.metadata.name.clone().unwrap_or_default(),
                images,
                replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
                created: rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
                change_cause: annotations.get("kubernetes.io/change-cause").cloned(),
            })
        })
        .collect();
    revisions.sort_by_key(|r| std::cmp::Reverse(r.number));
    revisions
}

impl RolloutHistory {
    pub(super) async fn run(&self, cx: &StepCx<'_>) -> Result<StepOutput, StepError> {
        let runbook = cx.runbook;
        let ns = &runbook.namespace;
        let deployments = cx.cluster.namespaced::<Deployment>(ns);
        let deployment = deployments.get(&runbook.deployment).await.map_err(|e| {
            cx.cluster
                .explain(e, &format!("deployment `{}`", runbook.deployment), ns)
        })?;
        let rs_api = cx.cluster.namespaced::<ReplicaSet>(ns);
        let replica_sets = cx
            .cluster
            .list_all(
                &rs_api,
                &ListParams::default().labels(&runbook.selector.0),
                ns,
            )
            .await?;
        let mut history = revisions(&deployment, &replica_sets);
        let current: Option<i64> = deployment
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .and_then(|r| r.parse().ok());

        let mut findings = Vec::new();
        match history.first() {
            Some(newest) => {
                let mut text = format!(
                    "current revision {} runs {}",
                    current.unwrap_or(newest.number),
                    newest.images
                );
                if let Some(previous) = history.get(1) {
                    text.push_str(&format!(
                        "; previous revision {} ran {}",
                        previous.number, previous.images
                    ));
                }
                findings.push(Finding::new(Severity::Info, text));
            }
            None => findings.push(Finding::new(
                Severity::Warning,
                format!(
                    "deployment `{}` has no ReplicaSets with a revision; nothing to roll back to",
                    runbook.deployment
                ),
            )),
        }
        history.truncate(self.limit);
        let now = jiff::Timestamp::now();
        let rows: Vec<Vec<String>> = history
            .iter()
            .map(|r| {
                let marker = if Some(r.number) == current {
                    " (current)"
                } else {
                    ""
                };
                vec![
                    format!("{}{marker}", r.number),
                    r.replica_set.clone(),
                    r.images.clone(),
                    r.replicas.to_string(),
                    r.created.map(|t| age(now, t)).unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let table = (!rows.is_empty()).then(|| {
            aligned_table(
                &["REVISION", "REPLICASET", "IMAGE", "REPLICAS", "AGE"],
                &rows,
            )
        });
        Ok(StepOutput { findings, table })
    }
}

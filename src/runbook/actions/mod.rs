//! Action kinds: the steps of `mitigate` and `rollback` that change the cluster.
//!
//! An action never changes anything directly. [`plan`] reads the live object and builds a
//! [`Plan`]: the exact API calls that will be made, a readable diff, and the versions involved,
//! checked with a server-side dry run. The plan is stored with the approval request; after
//! approval [`apply`] makes exactly the planned calls (even after a restart), and [`verify`]
//! waits for the result to settle.
//!
//! An action kind is one file here plus one variant of [`ActionSpec`]. Every kind also accepts
//! `id:`, `title:`, `approval:` and `safe:`; each struct declares them itself, because serde's
//! `flatten` would stop `deny_unknown_fields` from catching typos.

pub mod delete_pod;
pub mod prompt_rollback;
pub mod rollout_restart;
pub mod rollout_undo;
pub mod scale;
pub mod traffic_shift;
mod wire;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::approval::Policy;
use crate::approval::policy::DEFAULT_EXPIRY;
use crate::cluster::{Cluster, ClusterError};
use crate::runbook::Runbook;
use crate::runbook::steps::Timeout;

pub use wire::{diff_lines, flatten, pointer_escape};

/// The policy of an action that names none: one approval from anyone but the requester.
static DEFAULT_POLICY: Policy = Policy {
    approvers: Vec::new(),
    approvals: 1,
    self_approve: false,
    expires: Timeout(DEFAULT_EXPIRY),
    reason: false,
};

/// One action a runbook stage offers, tagged by `kind:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionSpec {
    /// Roll the deployment back to the previous (or a given) revision, as `kubectl rollout undo`.
    RolloutUndo(rollout_undo::RolloutUndo),
    /// Restart every pod of the deployment, as `kubectl rollout restart`.
    RolloutRestart(rollout_restart::RolloutRestart),
    /// Scale the deployment to N or by a delta, within the runbook's bounds.
    Scale(scale::Scale),
    /// Switch a prompt-versions ConfigMap's active key to the previous (or a given) version.
    PromptRollback(prompt_rollback::PromptRollback),
    /// Set the backend weights of a Gateway API HTTPRoute rule (failover between regions).
    TrafficShift(traffic_shift::TrafficShift),
    /// Delete one serving pod so its ReplicaSet replaces it.
    DeletePod(delete_pod::DeletePod),
}

/// The fields every action kind declares, borrowed.
struct Common<'a> {
    id: &'a str,
    title: Option<&'a String>,
    approval: Option<&'a Policy>,
    safe: bool,
}

impl<'a> Common<'a> {
    fn of(
        id: &'a str,
        title: &'a Option<String>,
        approval: &'a Option<Policy>,
        safe: bool,
    ) -> Common<'a> {
        Common {
            id,
            title: title.as_ref(),
            approval: approval.as_ref(),
            safe,
        }
    }
}

impl ActionSpec {
    /// The `kind:` name.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionSpec::RolloutUndo(_) => "rollout_undo",
            ActionSpec::RolloutRestart(_) => "rollout_restart",
            ActionSpec::Scale(_) => "scale",
            ActionSpec::PromptRollback(_) => "prompt_rollback",
            ActionSpec::TrafficShift(_) => "traffic_shift",
            ActionSpec::DeletePod(_) => "delete_pod",
        }
    }

    fn common(&self) -> Common<'_> {
        match self {
            ActionSpec::RolloutUndo(s) => Common::of(&s.id, &s.title, &s.approval, s.safe),
            ActionSpec::RolloutRestart(s) => Common::of(&s.id, &s.title, &s.approval, s.safe),
            ActionSpec::Scale(s) => Common::of(&s.id, &s.title, &s.approval, s.safe),
            ActionSpec::PromptRollback(s) => Common::of(&s.id, &s.title, &s.approval, s.safe),
            ActionSpec::TrafficShift(s) => Common::of(&s.id, &s.title, &s.approval, s.safe),
            ActionSpec::DeletePod(s) => Common::of(&s.id, &s.title, &s.approval, s.safe),
        }
    }

    /// The id commands name it by (`/rollback model-server undo`).
    pub fn id(&self) -> &str {
        self.common().id
    }

    /// The heading shown for it: the runbook's `title:`, else the kind in words.
    pub fn title(&self) -> String {
        self.common().title.cloned().unwrap_or_else(|| {
            match self {
                ActionSpec::RolloutUndo(_) => "Roll back the deployment",
                ActionSpec::RolloutRestart(_) => "Restart the deployment's pods",
                ActionSpec::Scale(_) => "Scale the deployment",
                ActionSpec::PromptRollback(_) => "Roll back the prompt version",
                ActionSpec::TrafficShift(_) => "Shift traffic",
                ActionSpec::DeletePod(_) => "Delete a pod",
            }
            .to_string()
        })
    }

    /// Its approval policy; `None` when the runbook marks it `safe: true`. An action without
    /// `approval:` gets the default: one approval from anyone but the requester.
    pub fn policy(&self) -> Option<&Policy> {
        let common = self.common();
        if common.safe {
            return None;
        }
        Some(common.approval.unwrap_or(&DEFAULT_POLICY))
    }
}

/// One API call that changes the cluster, exactly as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiCall {
    /// `PATCH`, `PUT` or `DELETE`.
    pub method: String,
    /// Path and query below the API server, e.g.
    /// `/apis/apps/v1/namespaces/ai-production/deployments/model-server`.
    pub path: String,
    /// The body's content type (`application/json-patch+json`, ...); empty without a body.
    pub content_type: String,
    /// The body, if any.
    pub body: Option<serde_json::Value>,
}

/// What an action will do, built before anyone approves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The runbook's action id.
    pub action: String,
    /// The action kind.
    pub kind: String,
    /// The object changed: `deployment/model-server -n ai-production`.
    pub target: String,
    /// One line a person approves: "roll back from revision 3 (…:v2) to revision 2 (…:v1)".
    pub summary: String,
    /// Readable diff of the object, `-`/`+` lines.
    pub diff: String,
    /// The calls [`apply`] will make, in order.
    pub calls: Vec<ApiCall>,
    /// What the server-side dry run said.
    pub dry_run: DryRun,
    /// Versions involved, before and after (image, revision, prompt version, weights), for the
    /// timeline and the post-mortem.
    pub versions: Vec<VersionChange>,
}

/// The result of checking a plan with `dryRun=All`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum DryRun {
    /// The API server accepted every call.
    Passed,
    /// The API server refused a call; the message says why.
    Refused(String),
    /// The call cannot be dry-run.
    NotSupported,
}

/// One thing that changes: `image: vllm:v2 → vllm:v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionChange {
    /// What: `image`, `revision`, `prompt version`, `weight model-server-us-east`, `replicas`.
    pub what: String,
    /// Before.
    pub from: String,
    /// After.
    pub to: String,
}

impl VersionChange {
    fn new(what: impl Into<String>, from: impl Into<String>, to: impl Into<String>) -> Self {
        VersionChange {
            what: what.into(),
            from: from.into(),
            to: to.into(),
        }
    }
}

/// What an action needs to plan and verify.
pub struct ActionCx<'a> {
    /// The service's runbook: namespace, deployment and selector are the targets.
    pub runbook: &'a Runbook,
    /// The cluster to change.
    pub cluster: &'a Cluster,
}

/// One call [`apply`] made, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedCall {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The API server's HTTP status.
    pub status: u16,
}

/// Whether the change settled, after [`apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// True when the change is in effect (rollout complete, value reads back).
    pub settled: bool,
    /// One line: "deployment/model-server: 3/3 replicas updated and available", or
    /// "timed out after 2m: 1/3 available".
    pub detail: String,
}

/// Why an action could not be planned or applied, worded for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Reading or writing the cluster failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The command argument (or runbook field) does not make sense for this action.
    #[error("{0}")]
    BadArgument(String),
    /// The change would leave the runbook's bounds.
    #[error("{0}")]
    OutOfBounds(String),
    /// The cluster is already in the state the action would produce.
    #[error("nothing to do: {0}")]
    NothingToDo(String),
    /// The object changed between planning and applying; nothing was overwritten.
    #[error(
        "{target} changed since the plan ({detail}); nothing was changed. Run the action again to plan against what is there now"
    )]
    Stale {
        /// The object, e.g. `deployment/model-server -n ai-production`.
        target: String,
        /// The API server's message.
        detail: String,
    },
    /// The API server refused a planned call.
    #[error("the API server refused {call} ({status}): {message}")]
    Refused {
        /// `PATCH /apis/...`.
        call: String,
        /// HTTP status.
        status: u16,
        /// The message of the API server's Status.
        message: String,
    },
    /// Something the action needs is not there.
    #[error("{0}")]
    NotFound(String),
}

/// Plan `spec` against the live cluster: read the object, build the calls and diff, dry-run
/// them. Changes nothing. `arg` is the command's argument after the action id, if any.
pub async fn plan(
    spec: &ActionSpec,
    cx: &ActionCx<'_>,
    arg: Option<&str>,
) -> Result<Plan, ActionError> {
    let arg = arg.map(str::trim).filter(|a| !a.is_empty());
    let draft = match spec {
        ActionSpec::RolloutUndo(s) => s.plan(cx, arg).await?,
        ActionSpec::RolloutRestart(s) => s.plan(cx, arg).await?,
        ActionSpec::Scale(s) => s.plan(cx, arg).await?,
        ActionSpec::PromptRollback(s) => s.plan(cx, arg).await?,
        ActionSpec::TrafficShift(s) => s.plan(cx, arg).await?,
        ActionSpec::DeletePod(s) => s.plan(cx, arg).await?,
    };
    let dry_run = wire::dry_run(cx.cluster, &draft.calls).await?;
    Ok(Plan {
        action: spec.id().to_string(),
        kind: spec.kind().to_string(),
        target: draft.target,
        summary: draft.summary,
        diff: draft.diff,
        calls: draft.calls,
        dry_run,
        versions: draft.versions,
    })
}

/// What a kind's planner returns; [`plan`] adds the id, kind and dry run.
struct Draft {
    target: String,
    summary: String,
    diff: String,
    calls: Vec<ApiCall>,
    versions: Vec<VersionChange>,
}

/// Make exactly `plan.calls`, in order, from the plan alone (it may have been stored and
/// reloaded). Stops at the first failure: a failed `test` operation or a conflict is
/// [`ActionError::Stale`], and nothing of that call was applied. Every kind plans a single call
/// today, so an error means nothing was changed.
pub async fn apply(plan: &Plan, cluster: &Cluster) -> Result<Vec<AppliedCall>, ActionError> {
    let mut applied = Vec::with_capacity(plan.calls.len());
    for call in &plan.calls {
        let answer = wire::send(cluster, call, false).await?;
        tracing::info!(action = %plan.action, method = %call.method, path = %call.path, status = answer.status, "action call");
        if !(200..300).contains(&answer.status) {
            return Err(wire::refusal(plan, call, answer));
        }
        applied.push(AppliedCall {
            method: call.method.clone(),
            path: call.path.clone(),
            status: answer.status,
        });
    }
    Ok(applied)
}

/// Wait, polling about once a second for at most `timeout`, until the applied plan has taken
/// effect: for deployment actions, the rollout as `kubectl rollout status` judges it (scale and
/// delete_pod only need the replicas created, since a sick deployment may never become
/// available); for ConfigMap and HTTPRoute changes, the new values read back.
pub async fn verify(plan: &Plan, cx: &ActionCx<'_>, timeout: Duration) -> Verification {
    let started = Instant::now();
    loop {
        let check = match plan.kind.as_str() {
            "rollout_undo" | "rollout_restart" => wire::rollout_status(cx, true).await,
            "scale" => wire::rollout_status(cx, false).await,
            "delete_pod" => delete_pod::gone(plan, cx).await,
            _ => wire::reads_back(plan, cx).await,
        };
        let (settled, detail) = match check {
            Ok(state) => state,
            Err(e) => (false, e.to_string()),
        };
        if settled {
            return Verification { settled, detail };
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Verification {
                settled: false,
                detail: format!("timed out after {}: {detail}", human(timeout)),
            };
        }
        tokio::time::sleep(Duration::from_secs(1).min(timeout - waited)).await;
    }
}

/// `2m`, `90s`, `1500ms`.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 && secs < 10 {
        format!("{}ms", d.as_millis())
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Check what serde cannot: action ids unique within a stage and usable in a command, and each
/// kind's fields consistent. Called when a runbook loads, so mistakes show at `firebreak check`.
pub fn check(stage: &str, actions: &[ActionSpec]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for action in actions {
        let id = action.id();
        if id.is_empty() || id.contains(char::is_whitespace) {
            return Err(format!(
                "stage {stage}: action id `{id}` must be one word, as typed after `/{stage} SERVICE`"
            ));
        }
        if !seen.insert(id) {
            return Err(format!(
                "stage {stage}: two actions are called `{id}`; give each its own id"
            ));
        }
        match action {
            ActionSpec::Scale(s) if s.min < 0 || s.min > s.max => {
                return Err(format!(
                    "stage {stage}: action `{id}`: bounds min {} / max {} are not 0 <= min <= max",
                    s.min, s.max
                ));
            }
            ActionSpec::TrafficShift(s) if s.weights.is_empty() => {
                return Err(format!(
                    "stage {stage}: action `{id}`: `weights:` names no backend"
                ));
            }
            ActionSpec::TrafficShift(s) if s.weights.values().any(|w| *w > 1_000_000) => {
                return Err(format!(
                    "stage {stage}: action `{id}`: a Gateway API weight is at most 1000000"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

//! Action kinds: the steps of `mitigate` and `rollback` that change the cluster.
//!
//! An action never changes anything directly. [`plan`] reads the live object and builds a
//! [`Plan`]: the exact API calls that will be made, a readable diff, and the versions involved,
//! checked with a server-side dry run. The plan is stored with the approval request; after
//! approval [`apply`] makes exactly the planned calls (even after a restart), and [`verify`]
//! waits for the result to settle.
//!
//! An action kind is one file here plus one variant of [`ActionSpec`].

use serde::{Deserialize, Serialize};

use crate::approval::Policy;

/// One action a runbook stage offers, tagged by `kind:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionSpec {}

impl ActionSpec {
    /// The `kind:` name.
    pub fn kind(&self) -> &'static str {
        match *self {}
    }

    /// The id commands name it by (`/rollback model-server undo`).
    pub fn id(&self) -> &str {
        match *self {}
    }

    /// Its approval policy; `None` when the runbook marks it `safe: true`.
    pub fn policy(&self) -> Option<&Policy> {
        match *self {}
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

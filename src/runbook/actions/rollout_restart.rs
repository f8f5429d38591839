//! `rollout_restart`: replace every pod of the deployment, as `kubectl rollout restart` does —
//! a strategic merge patch setting the pod template annotation
//! `kubectl.kubernetes.io/restartedAt` to the time of the plan.
//!
//! No `test` operation: a restart on top of someone else's change still only restarts. The
//! timestamp is fixed when planning, so applying the stored plan later writes the same value.

use serde::Deserialize;
use serde_json::json;

use super::wire::{self, deployment, deployment_path, deployment_target};
use super::{ActionCx, ActionError, ApiCall, Draft, VersionChange};
use crate::approval::Policy;

/// The pod template annotation kubectl writes (kube-rs' `Api::restart` writes another one).
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Runbook form of the `rollout_restart` action; it takes no command argument.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutRestart {
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

impl RolloutRestart {
    pub(super) async fn plan(
        &self,
        cx: &ActionCx<'_>,
        arg: Option<&str>,
    ) -> Result<Draft, ActionError> {
        if let Some(a) = arg {
            return Err(ActionError::BadArgument(format!(
                "`{}` takes no argument (got `{a}`); it restarts every pod of deployment {}",
                self.id, cx.runbook.deployment
            )));
        }
        let target = deployment_target(cx);
        let deploy = deployment(cx).await?;
        let previous = deploy
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(RESTARTED_AT))
            .cloned();
        // RFC 3339 in UTC with seconds, as kubectl's `time.Now().Format(time.RFC3339)`.
        let now = jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .map_err(|e| ActionError::BadArgument(format!("cannot read the clock: {e}")))?;
        let now = now.to_string();
        let replicas = deploy.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let body = json!({
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}
        });
        let key = format!("spec.template.metadata.annotations[{RESTARTED_AT}]");
        let before: Vec<(String, String)> =
            previous.iter().map(|p| (key.clone(), p.clone())).collect();
        let after = vec![(key, now.clone())];
        Ok(Draft {
            summary: format!("restart all {replicas} pods of {target} (a rolling replacement)"),
            diff: wire::diff_lines(&before, &after),
            calls: vec![ApiCall {
                method: "PATCH".into(),
                path: deployment_path(cx),
                content_type: "application/strategic-merge-patch+json".into(),
                body: Some(body),
            }],
            versions: vec![VersionChange::new(
                "restartedAt",
                previous.unwrap_or_else(|| "-".into()),
                now,
            )],
            target,
        })
    }
}

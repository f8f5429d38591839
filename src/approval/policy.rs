//! An action's approval policy, as written in a runbook under `approval:`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runbook::steps::Timeout;

/// How long a request stays clickable when the runbook does not say.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// Who may approve an action, and how.
///
/// ```yaml
/// approval:
///   approvers: [U024BE7LH, group:oncall]   # user ids, or groups from firebreak.yaml
///   approvals: 1                           # distinct approvers needed
///   self_approve: false                    # may the requester approve their own request?
///   expires: 15m
///   reason: true                           # approvers must say why: /approve ID <reason>
/// ```
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Chat user ids and `group:NAME` references. Empty means anyone but the requester.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Distinct approvals needed before the action runs.
    #[serde(default = "one")]
    pub approvals: u32,
    /// Whether the requester may approve their own request.
    #[serde(default)]
    pub self_approve: bool,
    /// How long the request stays open.
    #[serde(default = "default_expiry")]
    pub expires: Timeout,
    /// Whether an approval or denial must carry a reason.
    #[serde(default)]
    pub reason: bool,
}

fn one() -> u32 {
    1
}

fn default_expiry() -> Timeout {
    Timeout(DEFAULT_EXPIRY)
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            approvers: Vec::new(),
            approvals: 1,
            self_approve: false,
            expires: Timeout(DEFAULT_EXPIRY),
            reason: false,
        }
    }
}

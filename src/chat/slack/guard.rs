//! What a Slack request must pass before anything runs: it comes from a workspace Firebreak
//! serves ([`crate::chat::access`]), and it was not accepted before (a replayed request
//! carries the same `trigger_id`, event id, or timestamp and signature).
//!
//! Both ways in (HTTP and Socket Mode) pass the same check; HTTP additionally remembers each
//! accepted `(timestamp, signature)` pair, since a captured signed request stays valid for
//! Slack's five-minute window.

use serde_json::Value;

use super::Slack;
use super::api::ApiError;
use crate::chat::access::{AccessConfig, NOT_ENABLED_SLACK, audit_refusal};
use crate::store::replay::Sighting;
use crate::store::{Actor, StoreError};

/// How long an accepted request's keys are kept: Slack's 300 s signature window on either
/// side of now, plus a margin for clock skew.
pub const REPLAY_WINDOW_SECS: i64 = 2 * 300 + 60;

/// The workspaces and organisations let in.
#[derive(Debug, Default)]
pub(crate) struct Allowed {
    workspaces: Vec<String>,
    enterprises: Vec<String>,
}

/// Where a request comes from, as its payload says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workspace {
    /// The workspace (`team_id`, `team.id`).
    pub team: String,
    /// The Enterprise Grid organisation, when there is one.
    pub enterprise: Option<String>,
    /// The acting user's own workspace, when the payload names it (Slack Connect: it can
    /// differ from the channel's).
    pub user_team: Option<String>,
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Workspace {
    /// A slash command's form (as JSON: Socket Mode's payload, or the HTTP form's fields).
    pub fn of_command(payload: &Value) -> Workspace {
        Workspace {
            team: text(payload, &["team_id"]).unwrap_or_default(),
            enterprise: text(payload, &["enterprise_id"]),
            user_team: None,
        }
    }

    /// An interaction payload (`block_actions`, ...).
    pub fn of_interaction(payload: &Value) -> Workspace {
        Workspace {
            team: text(payload, &["team", "id"]).unwrap_or_default(),
            enterprise: text(payload, &["enterprise", "id"]),
            user_team: text(payload, &["user", "team_id"]),
        }
    }

    /// An Events API callback.
    pub fn of_event(payload: &Value) -> Workspace {
        let enterprise = text(payload, &["enterprise_id"]).or_else(|| {
            payload
                .get("authorizations")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|a| text(a, &["enterprise_id"]))
        });
        Workspace {
            team: text(payload, &["team_id"]).unwrap_or_default(),
            enterprise,
            user_team: text(payload, &["event", "user_team"]),
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Run it.
    Run,
    /// Do not run it; tell the sender this.
    Refused(String),
    /// Already accepted once: do not run it again.
    Repeat,
}

/// What a request whose keys cannot be recorded gets: failing open would reopen replays.
const STATE_UNWRITABLE: &str = "Firebreak cannot record this request because its state file cannot be written, so nothing was run. Whoever runs Firebreak: check the state file's disk and permissions.";

impl Slack {
    /// Let in the workspaces and organisations listed in the config.
    pub fn allow(&self, access: &AccessConfig) {
        let mut allowed = self
            .inner
            .allowed
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        allowed
            .workspaces
            .extend(access.slack_workspaces.iter().map(|t| t.trim().to_string()));
        allowed.enterprises.extend(
            access
                .slack_enterprises
                .iter()
                .map(|e| e.trim().to_string()),
        );
    }

    /// Let in the bot token's own workspace, asking Slack which it is (`auth.test`). Run it
    /// once at start; until then only the configured workspaces are let in.
    pub async fn allow_own_workspace(&self) -> Result<String, ApiError> {
        let team = self.api().own_workspace().await?;
        self.inner
            .allowed
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .workspaces
            .push(team.clone());
        tracing::info!(team = %team, "Slack: serving the bot token's workspace");
        Ok(team)
    }

    /// Whether requests from `from` are let in.
    pub fn admits(&self, from: &Workspace) -> bool {
        let allowed = self
            .inner
            .allowed
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let listed = |team: &str| !team.is_empty() && allowed.workspaces.iter().any(|t| t == team);
        let organisation = from
            .enterprise
            .as_deref()
            .is_some_and(|e| allowed.enterprises.iter().any(|x| x == e));
        organisation || (listed(&from.team) && from.user_team.as_deref().is_none_or(listed))
    }

    /// The whole check for one request: its workspace, then whether any of `once` (its
    /// trigger id, event id) was accepted before. A refusal is audited; `what` says what was
    /// asked, for the audit line.
    pub(crate) async fn admit(
        &self,
        from: &Workspace,
        user: &str,
        channel: &str,
        what: &str,
        once: Vec<String>,
    ) -> Admission {
        if !self.admits(from) {
            let actor = Actor {
                id: user.to_string(),
                name: user.to_string(),
                platform: "slack".to_string(),
                channel: channel.to_string(),
            };
            let detail = format!(
                "refused: Slack workspace {} (enterprise {}) is not allowed: {what}",
                or_dash(&from.team),
                from.enterprise.as_deref().unwrap_or("-"),
            );
            audit_refusal(self.bot(), actor, detail).await;
            return Admission::Refused(NOT_ENABLED_SLACK.to_string());
        }
        self.first_time(once).await
    }

    /// Whether none of `keys` was accepted before (recording them if so).
    pub(crate) async fn first_time(&self, keys: Vec<String>) -> Admission {
        if keys.is_empty() {
            return Admission::Run;
        }
        let until = jiff::Timestamp::now().as_second() + REPLAY_WINDOW_SECS;
        match self.bot().store().sighting_all(keys, until).await {
            Ok(Sighting::First) => Admission::Run,
            Ok(Sighting::Repeat) => {
                tracing::warn!(
                    "Slack request already accepted once (a replay or a retry); not run again"
                );
                Admission::Repeat
            }
            Err(error) => {
                unwritable(&error);
                Admission::Refused(STATE_UNWRITABLE.to_string())
            }
        }
    }
}

fn unwritable(error: &StoreError) {
    tracing::error!(%error, "cannot record an accepted Slack request; refusing it rather than risk running a replay");
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn workspaces_are_read_from_each_payload_kind() {
        let command = Workspace::of_command(&json!({"team_id": "T1", "enterprise_id": "E1"}));
        assert_eq!(command.team, "T1");
        assert_eq!(command.enterprise.as_deref(), Some("E1"));
        let click = Workspace::of_interaction(&json!({
            "team": {"id": "T1"}, "enterprise": null, "user": {"id": "U1", "team_id": "T2"}
        }));
        assert_eq!(
            (
                click.team.as_str(),
                click.enterprise,
                click.user_team.as_deref()
            ),
            ("T1", None, Some("T2"))
        );
        let event = Workspace::of_event(&json!({
            "team_id": "T1", "authorizations": [{"enterprise_id": "E9", "team_id": "T1"}]
        }));
        assert_eq!(event.enterprise.as_deref(), Some("E9"));
        assert_eq!(
            Workspace::of_event(&json!("not an object")),
            Workspace::default()
        );
    }
}

//! Who may talk to Firebreak at all: the Slack workspaces and Discord servers (guilds) it
//! serves. Default-deny: a Slack workspace is let in when it is the bot token's own (read
//! with `auth.test` at start) or listed here; a Discord guild when listed here, or, with no
//! list, when it is `FIREBREAK_DISCORD_GUILD_ID`; Discord DMs never. A refused request gets
//! [`NOT_ENABLED_SLACK`] / [`NOT_ENABLED_DISCORD`] and an audit line; nothing runs.

use serde::Deserialize;

use crate::bot::Bot;
use crate::store::{Actor, AuditKind, Record};

/// The `access:` section of `firebreak.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// Slack workspace ids (`T…`) let in besides the bot token's own.
    #[serde(default)]
    pub slack_workspaces: Vec<String>,
    /// Slack Enterprise Grid organisation ids (`E…`): every workspace of the organisation.
    #[serde(default)]
    pub slack_enterprises: Vec<String>,
    /// Discord guild (server) ids; when empty, `FIREBREAK_DISCORD_GUILD_ID` if set.
    #[serde(default)]
    pub discord_guilds: Vec<String>,
}

/// What a refused Slack user sees.
pub const NOT_ENABLED_SLACK: &str = "Firebreak is not enabled for this workspace. Ask whoever runs Firebreak to add it to `access.slack_workspaces`.";
/// What a refused Discord user sees.
pub const NOT_ENABLED_DISCORD: &str = "Firebreak is not enabled for this server, or in direct messages. Ask whoever runs Firebreak to add the server to `access.discord_guilds`.";
/// What a Discord interaction without a user gets.
pub const NO_USER_DISCORD: &str =
    "Firebreak cannot tell who sent this interaction, so it does nothing.";

/// Record a refused request in the audit log, and log it.
pub(crate) async fn audit_refusal(bot: &Bot, actor: Actor, detail: String) {
    tracing::warn!(user = %actor.id, platform = %actor.platform, %detail, "request refused: not an allowed workspace or server");
    bot.audit_quietly(Record {
        kind: AuditKind::Refused,
        actor: &actor,
        incident: None,
        request: None,
        detail,
    })
    .await;
}

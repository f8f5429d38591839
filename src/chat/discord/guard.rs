//! What a Discord interaction must pass before anything runs: it names who sent it, it comes
//! from a server (guild) Firebreak serves ([`crate::chat::access`]; DMs never), and its id
//! was not accepted before (a captured, signed interaction replayed within the timestamp
//! window carries the same id). Both transports answer through [`Discord::answer`].

use serenity::model::application::Interaction;
use serenity::model::guild::Member;
use serenity::model::id::UserId;
use serenity::model::user::User;

use super::{Discord, Dispatch, embeds};
use crate::chat::access::{AccessConfig, NO_USER_DISCORD, NOT_ENABLED_DISCORD, audit_refusal};
use crate::config::ConfigError;
use crate::store::Actor;
use crate::store::replay::Sighting;

/// How long an accepted interaction id is kept: the 300 s timestamp window on either side
/// of now, plus a margin for clock skew.
pub const REPLAY_WINDOW_SECS: i64 = 2 * 300 + 60;

/// What a repeated interaction is answered with.
const ALREADY_RECEIVED: &str = "Already received: Firebreak runs each interaction once.";
/// What an interaction whose id cannot be recorded gets.
const STATE_UNWRITABLE: &str = "Firebreak cannot record this interaction because its state file cannot be written, so nothing was run.";

/// An ephemeral message as the immediate interaction response.
fn ephemeral(text: &str) -> Dispatch {
    Dispatch {
        response: serde_json::json!({
            "type": 4,
            "data": {
                "content": text,
                "flags": embeds::EPHEMERAL,
                "allowed_mentions": embeds::no_mentions(),
            }
        }),
        job: None,
    }
}

/// Who sent it: the member's user in a guild, else the user; `None` when the payload has
/// neither (serenity then fills in a placeholder user whose id is the smallest snowflake).
pub fn sender<'a>(user: &'a User, member: Option<&'a Member>) -> Option<&'a User> {
    member
        .map(|m| &m.user)
        .or(Some(user))
        .filter(|u| u.id != UserId::default())
}

impl Discord {
    /// Replace the guilds let in with the config's `access.discord_guilds`, when it lists
    /// any (otherwise `FIREBREAK_DISCORD_GUILD_ID` stays the one).
    pub fn allow(mut self, access: &AccessConfig) -> Result<Discord, ConfigError> {
        if !access.discord_guilds.is_empty() {
            self.allowed_guilds = access
                .discord_guilds
                .iter()
                .map(|id| super::snowflake("access.discord_guilds", id))
                .collect::<Result<_, _>>()?;
        }
        if self.allowed_guilds.is_empty() {
            tracing::warn!(
                "Discord: no server is allowed (set FIREBREAK_DISCORD_GUILD_ID or access.discord_guilds); every interaction is refused"
            );
        }
        Ok(self)
    }

    /// The guilds let in.
    pub fn allowed_guilds(&self) -> &[u64] {
        &self.allowed_guilds
    }

    /// Check an interaction, then answer it ([`Discord::dispatch`]) if it passes.
    pub async fn answer(&self, interaction: Interaction) -> Dispatch {
        match self.refusal(&interaction).await {
            Some(refused) => refused,
            None => self.dispatch(interaction),
        }
    }

    /// `None` when the interaction may run; else the answer that ends it.
    async fn refusal(&self, interaction: &Interaction) -> Option<Dispatch> {
        let (id, guild, channel, user, member, what) = match interaction {
            Interaction::Command(c) | Interaction::Autocomplete(c) => (
                c.id.get(),
                c.guild_id,
                c.channel_id,
                &c.user,
                c.member.as_deref(),
                super::commands::to_text(&c.data),
            ),
            Interaction::Component(c) => (
                c.id.get(),
                c.guild_id,
                c.channel_id,
                &c.user,
                c.member.as_ref(),
                format!("click {}", c.data.custom_id),
            ),
            // PING and kinds Firebreak does not handle run nothing.
            _ => return None,
        };
        let Some(sender) = sender(user, member) else {
            tracing::warn!(
                interaction = id,
                "Discord interaction without a member or user refused"
            );
            return Some(ephemeral(NO_USER_DISCORD));
        };
        let allowed = guild.is_some_and(|g| self.allowed_guilds.contains(&g.get()));
        if !allowed {
            let actor = Actor {
                id: sender.id.to_string(),
                name: sender.name.clone(),
                platform: "discord".to_string(),
                channel: channel.to_string(),
            };
            let place =
                guild.map_or_else(|| "a direct message".to_string(), |g| format!("guild {g}"));
            audit_refusal(
                &self.bot,
                actor,
                format!("refused: Discord {place} is not allowed: {what}"),
            )
            .await;
            return Some(ephemeral(NOT_ENABLED_DISCORD));
        }
        if matches!(interaction, Interaction::Autocomplete(_)) {
            // Suggestions change nothing and are asked for on every keystroke.
            return None;
        }
        let until = jiff::Timestamp::now().as_second() + REPLAY_WINDOW_SECS;
        match self
            .bot
            .store()
            .sighting(&format!("discord:interaction:{id}"), until)
            .await
        {
            Ok(Sighting::First) => None,
            Ok(Sighting::Repeat) => {
                tracing::warn!(
                    interaction = id,
                    "Discord interaction already accepted once (a replay); not run again"
                );
                Some(ephemeral(ALREADY_RECEIVED))
            }
            Err(error) => {
                tracing::error!(%error, "cannot record an accepted Discord interaction; refusing it rather than risk running a replay");
                Some(ephemeral(STATE_UNWRITABLE))
            }
        }
    }
}

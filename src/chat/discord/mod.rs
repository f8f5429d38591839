//! The Discord adapter: slash commands, buttons and autocomplete over the interactions
//! endpoint (`POST /discord/interactions`) or the gateway, replies as embeds.
//!
//! Both transports end in [`Discord::dispatch`]: it answers the interaction at once (PONG,
//! a deferred response, a component acknowledgement or autocomplete choices) and hands back the
//! slow part, a [`Job`] that runs the command through [`Bot::handle`] and edits or posts
//! messages through the interaction webhook as steps finish. Over HTTP the immediate answer is
//! the response body; over the gateway it is POSTed to the interaction callback endpoint.
//! Once a reply is delivered, its effects follow (`effects.rs`: a thread per declared
//! incident, the incident summary kept in one message, the post-mortem as an attachment);
//! [`Discord`] is also the [`crate::chat::Outbox`] alert-opened incidents are announced with.
//!
//! Settings (each secret also as `NAME_FILE`):
//! - `FIREBREAK_DISCORD_BOT_TOKEN` (secret) and `FIREBREAK_DISCORD_APPLICATION_ID`: required.
//! - `FIREBREAK_DISCORD_PUBLIC_KEY` (secret): the application's Ed25519 key, required over HTTP.
//! - `FIREBREAK_DISCORD_MODE`: `http` or `gateway`; unset means `http` when a public key is
//!   set and `gateway` otherwise.
//! - `FIREBREAK_DISCORD_GUILD_ID`: register the commands in one guild (instant) instead of
//!   globally.
//! - `FIREBREAK_DISCORD_API_URL`: the API origin (default `https://discord.com`), for tests.

pub mod api;
pub mod commands;
mod effects;
pub mod embeds;
pub mod gateway;
pub mod guard;
pub mod http;
mod job;

use std::sync::Arc;

use serenity::interactions_endpoint::Verifier;
use serenity::model::application::{CommandInteraction, ComponentInteraction, Interaction};
use serenity::model::guild::Member;
use serenity::model::user::User;

use crate::bot::Bot;
use crate::chat::{ChannelRef, Invocation, ParseError, Platform, UserRef};
use crate::config::{self, ConfigError, Env, Secret};

pub use job::{Job, Origin, deliver};

/// The API origin used when `FIREBREAK_DISCORD_API_URL` is unset.
pub const DEFAULT_API_URL: &str = "https://discord.com";

/// How Discord reaches Firebreak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Discord POSTs interactions to `/discord/interactions` (needs a public URL).
    Http,
    /// Firebreak holds a gateway websocket open and receives interactions on it.
    Gateway,
}

/// Everything the Discord adapter is configured with.
#[derive(Clone)]
pub struct DiscordSettings {
    /// The bot token (`Bot ...` authorization for command registration and the gateway).
    pub bot_token: Secret,
    /// The application's id (a snowflake).
    pub application_id: u64,
    /// Checks interaction signatures; present whenever a public key is set.
    pub verifier: Option<Verifier>,
    /// HTTP endpoint or gateway.
    pub mode: Mode,
    /// Register commands in this guild only, or globally when `None`.
    pub guild_id: Option<u64>,
    /// API origin, without `/api/v10`.
    pub api_url: String,
}

impl std::fmt::Debug for DiscordSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordSettings")
            .field("bot_token", &self.bot_token)
            .field("application_id", &self.application_id)
            .field("public_key", &self.verifier.as_ref().map(|_| "set"))
            .field("mode", &self.mode)
            .field("guild_id", &self.guild_id)
            .field("api_url", &self.api_url)
            .finish()
    }
}

const TOKEN: &str = "FIREBREAK_DISCORD_BOT_TOKEN";
const APPLICATION_ID: &str = "FIREBREAK_DISCORD_APPLICATION_ID";
const PUBLIC_KEY: &str = "FIREBREAK_DISCORD_PUBLIC_KEY";
const MODE: &str = "FIREBREAK_DISCORD_MODE";
const GUILD_ID: &str = "FIREBREAK_DISCORD_GUILD_ID";
const API_URL: &str = "FIREBREAK_DISCORD_API_URL";

impl DiscordSettings {
    /// Read the settings; `Ok(None)` when no Discord variable is set at all.
    pub fn from_env(env: &dyn Env) -> Result<Option<DiscordSettings>, ConfigError> {
        let token = config::secret(env, TOKEN)?;
        let application_id = config::secret(env, APPLICATION_ID)?;
        let public_key = config::secret(env, PUBLIC_KEY)?;
        let token = match (token, &application_id, &public_key) {
            (None, None, None) => {
                // A mode or guild without credentials is a half-done setup, not "no Discord".
                return match [MODE, GUILD_ID]
                    .into_iter()
                    .find(|name| config::setting(env, name).is_some())
                {
                    Some(name) => Err(incomplete(name, TOKEN)),
                    None => Ok(None),
                };
            }
            (Some(token), _, _) => token,
            (None, Some(_), _) => return Err(incomplete(APPLICATION_ID, TOKEN)),
            (None, None, Some(_)) => return Err(incomplete(PUBLIC_KEY, TOKEN)),
        };
        let application_id = match application_id {
            Some(id) => snowflake(APPLICATION_ID, id.expose())?,
            None => return Err(incomplete(TOKEN, APPLICATION_ID)),
        };
        let verifier = public_key.map(|key| verifier(key.expose())).transpose()?;
        let mode = match config::setting(env, MODE).as_deref().map(str::trim) {
            None if verifier.is_some() => Mode::Http,
            None => Mode::Gateway,
            Some("http") => Mode::Http,
            Some("gateway") => Mode::Gateway,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: MODE.to_string(),
                    problem: format!("`{other}` is neither `http` nor `gateway`"),
                });
            }
        };
        if mode == Mode::Http && verifier.is_none() {
            return Err(ConfigError::Incomplete {
                present: format!("{MODE}=http"),
                missing: PUBLIC_KEY.to_string(),
                purpose: "verifying Discord's requests to /discord/interactions".to_string(),
            });
        }
        let guild_id = config::setting(env, GUILD_ID)
            .map(|id| snowflake(GUILD_ID, &id))
            .transpose()?;
        let api_url = config::setting(env, API_URL)
            .map(|url| url.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_API_URL.to_string());
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: API_URL.to_string(),
                problem: format!("`{api_url}` is not an http(s) URL"),
            });
        }
        Ok(Some(DiscordSettings {
            bot_token: token,
            application_id,
            verifier,
            mode,
            guild_id,
            api_url,
        }))
    }
}

fn incomplete(present: &str, missing: &str) -> ConfigError {
    ConfigError::Incomplete {
        present: present.to_string(),
        missing: missing.to_string(),
        purpose: "the Discord adapter".to_string(),
    }
}

fn snowflake(name: &str, value: &str) -> Result<u64, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|id| *id != 0)
        .ok_or_else(|| ConfigError::Invalid {
            name: name.to_string(),
            problem: "not a Discord id (a number, e.g. 1234567890123456789); copy it from the Developer Portal".to_string(),
        })
}

/// Parse the Developer Portal's public key (64 hex digits) without panicking.
fn verifier(key: &str) -> Result<Verifier, ConfigError> {
    let invalid = |problem: String| ConfigError::Invalid {
        name: PUBLIC_KEY.to_string(),
        problem: format!(
            "{problem}; copy the PUBLIC KEY (64 hex digits) from the application's General Information page in the Discord Developer Portal"
        ),
    };
    let key = key.trim();
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "not 64 hexadecimal digits (got {} characters)",
            key.len()
        )));
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        // Checked above: every pair is two hex digits.
        let pair = key.get(2 * i..2 * i + 2).unwrap_or_default();
        *byte = u8::from_str_radix(pair, 16).map_err(|error| invalid(error.to_string()))?;
    }
    Verifier::try_new(bytes)
        .map_err(|error| invalid(format!("not a valid Ed25519 public key ({error})")))
}

/// Why the Discord adapter cannot start or answer.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// A REST call to Discord failed.
    #[error(transparent)]
    Api(#[from] api::ApiError),
    /// The gateway client could not be built or stopped with an error.
    #[error(
        "Discord gateway: {0}; check FIREBREAK_DISCORD_BOT_TOKEN and the network path to Discord"
    )]
    Gateway(#[source] Box<serenity::Error>),
}

/// The adapter: the bot, the REST client and the settings.
pub struct Discord {
    bot: Arc<Bot>,
    api: api::Api,
    settings: DiscordSettings,
    /// Guilds whose interactions run ([`guard`]); DMs never do.
    allowed_guilds: Vec<u64>,
}

/// What to answer an interaction with at once, and what to do after.
pub struct Dispatch {
    /// The interaction response (`{"type": 5}`, ...): the HTTP response body, or the body of
    /// the callback POST over the gateway.
    pub response: serde_json::Value,
    /// Work to run once the response is sent.
    pub job: Option<Job>,
}

impl Discord {
    /// An adapter for `bot` with these settings.
    pub fn new(bot: Arc<Bot>, settings: DiscordSettings) -> Result<Discord, DiscordError> {
        let api = api::Api::new(&settings)?;
        let allowed_guilds = settings.guild_id.into_iter().collect();
        Ok(Discord {
            bot,
            api,
            settings,
            allowed_guilds,
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &DiscordSettings {
        &self.settings
    }

    /// The REST client.
    pub fn api(&self) -> &api::Api {
        &self.api
    }

    /// Register every command with one bulk overwrite, so a restart replaces rather than adds.
    pub async fn register_commands(&self) -> Result<(), DiscordError> {
        let body = commands::definitions();
        self.api
            .overwrite_commands(self.settings.guild_id, &body)
            .await?;
        tracing::info!(
            commands = body.as_array().map_or(0, Vec::len),
            guild = ?self.settings.guild_id,
            "Discord commands registered"
        );
        Ok(())
    }

    /// Answer an interaction: the immediate response, and the job that finishes it.
    pub fn dispatch(&self, interaction: Interaction) -> Dispatch {
        match interaction {
            Interaction::Ping(_) => Dispatch {
                response: serde_json::json!({ "type": 1 }),
                job: None,
            },
            Interaction::Command(command) => {
                let text = commands::to_text(&command.data);
                let job = Job::new(
                    self.bot.clone(),
                    self.api.clone(),
                    Origin::Command,
                    command.token.clone(),
                    command_invocation(&command, &text),
                );
                Dispatch {
                    response: serde_json::json!({ "type": 5 }),
                    job: Some(job),
                }
            }
            Interaction::Component(component) => {
                let job = Job::new(
                    self.bot.clone(),
                    self.api.clone(),
                    Origin::Click,
                    component.token.clone(),
                    component_invocation(&component),
                );
                Dispatch {
                    response: serde_json::json!({ "type": 6 }),
                    job: Some(job),
                }
            }
            Interaction::Autocomplete(command) => Dispatch {
                response: commands::autocomplete(&command.data, &self.bot.runbooks().services()),
                job: None,
            },
            other => {
                tracing::warn!(kind = ?other.kind(), "Discord interaction type not handled");
                Dispatch {
                    response: serde_json::json!({
                        "type": 4,
                        "data": {
                            "content": "Firebreak does not handle this kind of interaction.",
                            "flags": 64,
                            "allowed_mentions": embeds::no_mentions(),
                        }
                    }),
                    job: None,
                }
            }
        }
    }
}

fn user_ref(user: &User, member: Option<&Member>) -> UserRef {
    // The member's user is the sender in a guild (serenity copies it to `user` only when the
    // payload also names the guild).
    let user = guard::sender(user, member).unwrap_or(user);
    let name = member
        .and_then(|m| m.nick.clone())
        .or_else(|| user.global_name.clone())
        .unwrap_or_else(|| user.name.clone());
    UserRef {
        id: user.id.to_string(),
        name,
    }
}

/// A slash command as the core's invocation: `/incident declare sev2 "KV cache full"`.
pub fn command_invocation(
    command: &CommandInteraction,
    text: &str,
) -> Result<Invocation, ParseError> {
    Invocation::from_text(
        Platform::Discord,
        user_ref(&command.user, command.member.as_deref()),
        ChannelRef {
            id: command.channel_id.to_string(),
        },
        text,
    )
}

/// A button click as the core's invocation: the clicker, the channel, and the button's
/// `custom_id`, which is the command the button runs.
pub fn component_invocation(component: &ComponentInteraction) -> Result<Invocation, ParseError> {
    Invocation::from_text(
        Platform::Discord,
        user_ref(&component.user, component.member.as_ref()),
        ChannelRef {
            id: component.channel_id.to_string(),
        },
        &component.data.custom_id,
    )
}

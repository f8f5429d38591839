//! The Slack adapter: slash commands, buttons and mentions in; Block Kit messages out.
//!
//! Two ways in, one path through: signed HTTP requests ([`http`]) and Socket Mode ([`socket`])
//! both become an [`Invocation`] ([`events`]), which [`Slack::start`] runs in the background
//! after the platform has been answered, posting progress and the final reply (`run.rs`),
//! then what the reply's effects ask (`effects.rs`: an incident channel, the summary kept in
//! one message, the post-mortem upload). A 📌 reaction in an incident's channel pins the
//! message to its timeline; [`Slack`] is also an [`crate::chat::Outbox`] for alert
//! announcements.

pub mod api;
pub mod blocks;
mod effects;
pub mod events;
pub mod guard;
pub mod http;
mod run;
pub mod socket;

use std::sync::Arc;
use std::time::Duration;

use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;
use tracing::Instrument;

use crate::bot::Bot;
use crate::chat::Invocation;
use crate::config::{ConfigError, Env, Secret, secret, setting};

pub use api::{ApiError, SlackApi};
pub use events::Origin;

/// The bot token variable (`xoxb-...`), also read as `..._FILE`.
pub const BOT_TOKEN: &str = "FIREBREAK_SLACK_BOT_TOKEN";
/// The signing secret variable, which enables the HTTP endpoints.
pub const SIGNING_SECRET: &str = "FIREBREAK_SLACK_SIGNING_SECRET";
/// The app-level token variable (`xapp-...`), which enables Socket Mode.
pub const APP_TOKEN: &str = "FIREBREAK_SLACK_APP_TOKEN";
/// The Web API base URL variable (GovSlack, tests).
pub const API_URL: &str = "FIREBREAK_SLACK_API_URL";
/// Slack's Web API.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// Slack's settings, from the environment.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    /// Bot token, for the Web API.
    pub bot_token: Secret,
    /// Signing secret: with it, Firebreak serves `/slack/commands`, `/slack/interactions`
    /// and `/slack/events`.
    pub signing_secret: Option<Secret>,
    /// App-level token: with it, Firebreak connects over Socket Mode.
    pub app_token: Option<Secret>,
    /// Web API base URL, without a trailing slash.
    pub api_url: String,
}

impl SlackSettings {
    /// Slack's settings; `None` when none of them is set, an error naming the variable when
    /// they are set but cannot work.
    pub fn from_env(env: &dyn Env) -> Result<Option<SlackSettings>, ConfigError> {
        let bot_token = secret(env, BOT_TOKEN)?;
        let signing_secret = secret(env, SIGNING_SECRET)?;
        let app_token = secret(env, APP_TOKEN)?;
        let api_url = setting(env, API_URL);
        let Some(bot_token) = bot_token else {
            let present = [
                (SIGNING_SECRET, signing_secret.is_some()),
                (APP_TOKEN, app_token.is_some()),
                (API_URL, api_url.is_some()),
            ]
            .into_iter()
            .find(|(_, set)| *set);
            return match present {
                Some((present, _)) => Err(ConfigError::Incomplete {
                    present: present.to_string(),
                    missing: BOT_TOKEN.to_string(),
                    purpose: "Slack".to_string(),
                }),
                None => Ok(None),
            };
        };
        if signing_secret.is_none() && app_token.is_none() {
            return Err(ConfigError::Incomplete {
                present: BOT_TOKEN.to_string(),
                missing: format!("{SIGNING_SECRET} (HTTP) or {APP_TOKEN} (Socket Mode)"),
                purpose: "Slack".to_string(),
            });
        }
        if bot_token.expose().starts_with("xapp-") {
            return Err(ConfigError::Invalid {
                name: BOT_TOKEN.to_string(),
                problem: format!(
                    "this is an app-level token (xapp-); put it in {APP_TOKEN} and the bot token (xoxb-, OAuth & Permissions page) here"
                ),
            });
        }
        if let Some(app_token) = &app_token
            && !app_token.expose().starts_with("xapp-")
        {
            return Err(ConfigError::Invalid {
                name: APP_TOKEN.to_string(),
                problem: "an app-level token starts with xapp-; create one with the connections:write scope on the app's Basic Information page".to_string(),
            });
        }
        let api_url = api_url.unwrap_or_else(|| DEFAULT_API_URL.to_string());
        let api_url = api_url.trim().trim_end_matches('/').to_string();
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: API_URL.to_string(),
                problem: format!(
                    "`{api_url}` is not an http(s) URL; the default is {DEFAULT_API_URL}"
                ),
            });
        }
        Ok(Some(SlackSettings {
            bot_token,
            signing_secret,
            app_token,
            api_url,
        }))
    }
}

/// Tuning that tests shorten; the defaults suit Slack.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Largest request body accepted on the HTTP endpoints.
    pub body_limit: usize,
    /// Least time between two progress updates of one message (Slack allows about one
    /// chat.update per second per channel).
    pub progress_interval: Duration,
    /// First wait before reconnecting a Socket Mode connection that failed.
    pub reconnect_delay: Duration,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            // Interaction payloads carry the clicked message: up to 50 blocks of 3,000
            // characters, form-encoded.
            body_limit: 1024 * 1024,
            progress_interval: Duration::from_secs(1),
            reconnect_delay: Duration::from_secs(1),
        }
    }
}

/// Why the Slack adapter cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// The Web API client cannot be built.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// The Slack adapter. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Slack {
    inner: Arc<Inner>,
}

struct Inner {
    bot: Arc<Bot>,
    api: SlackApi,
    verifier: Option<SlackEventSignatureVerifier>,
    app_token: Option<Secret>,
    tuning: Tuning,
    /// Workspaces let in ([`guard`]): none until configured or learned at start.
    allowed: std::sync::RwLock<guard::Allowed>,
}

impl Slack {
    /// The adapter for `bot` with these settings.
    pub fn new(
        bot: Arc<Bot>,
        settings: &SlackSettings,
        tuning: Tuning,
    ) -> Result<Slack, SlackError> {
        let api = SlackApi::new(&settings.api_url, &settings.bot_token)?;
        let verifier = settings.signing_secret.as_ref().map(|secret| {
            SlackEventSignatureVerifier::new(&SlackSigningSecret(secret.expose().to_string()))
        });
        Ok(Slack {
            inner: Arc::new(Inner {
                bot,
                api,
                verifier,
                app_token: settings.app_token.clone(),
                tuning,
                allowed: Default::default(),
            }),
        })
    }

    /// The HTTP endpoints, when a signing secret is configured.
    pub fn routes(&self) -> Option<axum::Router> {
        let verifier = self.inner.verifier.clone()?;
        Some(http::routes(
            self.clone(),
            verifier,
            self.inner.tuning.body_limit,
        ))
    }

    /// Whether an app-level token is configured, so [`Slack::run_socket_mode`] can connect.
    pub fn has_socket_mode(&self) -> bool {
        self.inner.app_token.is_some()
    }

    /// Serve Socket Mode until the process ends, reconnecting whenever the socket drops.
    /// Returns at once when no app-level token is configured.
    pub async fn run_socket_mode(self) {
        let Some(token) = self.inner.app_token.clone() else {
            return;
        };
        socket::run(self, token).await;
    }

    /// What to say at once for `inv`, and the work started in the background: the reply is
    /// posted (and updated while it progresses), then delivered where its `Delivery` says.
    pub fn start(&self, inv: Invocation, origin: Origin) -> String {
        let ack = self.inner.bot.acknowledgement(&inv);
        let span = tracing::info_span!(
            "slack",
            command = %inv.command,
            user = %inv.user.id,
            channel = %inv.channel.id,
        );
        let this = self.clone();
        tokio::spawn(async move { this.run(inv, origin).await }.instrument(span));
        ack
    }

    pub(crate) fn bot(&self) -> &Bot {
        &self.inner.bot
    }

    pub(crate) fn api(&self) -> &SlackApi {
        &self.inner.api
    }

    pub(crate) fn tuning(&self) -> &Tuning {
        &self.inner.tuning
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn absent_settings_disable_slack() {
        assert!(SlackSettings::from_env(&env(&[])).unwrap().is_none());
    }

    #[test]
    fn settings_need_a_way_in_and_name_the_variable() {
        let error = SlackSettings::from_env(&env(&[(BOT_TOKEN, "xoxb-1")])).unwrap_err();
        assert!(error.to_string().contains(SIGNING_SECRET), "{error}");
        let error = SlackSettings::from_env(&env(&[(SIGNING_SECRET, "s")])).unwrap_err();
        assert!(error.to_string().contains(BOT_TOKEN), "{error}");
        let error = SlackSettings::from_env(&env(&[(BOT_TOKEN, "xoxb-1"), (APP_TOKEN, "xoxb-2")]))
            .unwrap_err();
        assert!(error.to_string().starts_with(APP_TOKEN), "{error}");
        let error = SlackSettings::from_env(&env(&[(BOT_TOKEN, "xapp-1"), (APP_TOKEN, "xapp-2")]))
            .unwrap_err();
        assert!(error.to_string().starts_with(BOT_TOKEN), "{error}");
    }

    #[test]
    fn settings_default_the_api_url_and_keep_secrets_out_of_debug() {
        let settings = SlackSettings::from_env(&env(&[
            (BOT_TOKEN, "xoxb-very-secret"),
            (SIGNING_SECRET, "signing-very-secret"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(settings.api_url, DEFAULT_API_URL);
        let shown = format!("{settings:?}");
        assert!(!shown.contains("very-secret"), "{shown}");

        let settings = SlackSettings::from_env(&env(&[
            (BOT_TOKEN, "xoxb-1"),
            (APP_TOKEN, "xapp-1"),
            (API_URL, "http://127.0.0.1:9/api/"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(settings.api_url, "http://127.0.0.1:9/api");
    }
}

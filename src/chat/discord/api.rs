//! Discord's REST API, the few calls Firebreak makes: interaction callbacks, webhook edits and
//! followups (one with a file attached), the bulk overwrite of commands, and with the bot
//! token: channel messages, incident threads and their members.
//!
//! These go through reqwest rather than serenity's `Http`: serenity's rate limiter ignores a
//! custom API URL, and with it off serenity surfaces a 429 without its `retry_after`. Here a
//! 429 is retried after the time Discord asks for (body `retry_after` or `Retry-After`), at
//! most [`MAX_RETRIES`] times and never waiting longer than [`MAX_WAIT`] at once.
//!
//! Interaction tokens authorize webhook calls and stay valid for 15 minutes, so they are
//! never logged and never part of an error message.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::DiscordSettings;
use crate::config::Secret;

/// Retries after a 429 before giving up.
pub const MAX_RETRIES: u32 = 3;
/// The longest single wait after a 429.
pub const MAX_WAIT: Duration = Duration::from_secs(10);

/// A REST call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The HTTP client could not be built.
    #[error("cannot build the Discord HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// Discord could not be reached.
    #[error("Discord API call `{call}` failed: {source}; check the network path to {origin}")]
    Unreachable {
        /// Which call.
        call: &'static str,
        /// The API origin.
        origin: String,
        /// Why.
        source: reqwest::Error,
    },
    /// Discord answered with an error status.
    #[error("Discord API call `{call}` answered {status}: {body}{hint}")]
    Status {
        /// Which call.
        call: &'static str,
        /// The status.
        status: StatusCode,
        /// Discord's error body (no secrets: Discord does not echo tokens).
        body: String,
        /// What to check.
        hint: &'static str,
    },
    /// Still rate limited after every retry.
    #[error("Discord API call `{call}` is still rate limited after {MAX_RETRIES} retries")]
    RateLimited {
        /// Which call.
        call: &'static str,
    },
    /// A channel, message or user id that is not a snowflake (it goes into the URL path).
    #[error("Discord API call `{call}` not made: `{id}` is not a Discord id")]
    InvalidId {
        /// Which call.
        call: &'static str,
        /// The offending id, cut short.
        id: String,
    },
    /// An attachment's multipart body could not be built.
    #[error("Discord API call `{call}`: cannot build the attachment: {source}")]
    Attachment {
        /// Which call.
        call: &'static str,
        /// Why.
        source: reqwest::Error,
    },
}

/// A file sent with a message (Discord's "Uploading Files": `payload_json` plus `files[0]`).
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The file name shown in the channel.
    pub filename: &'a str,
    /// Its bytes.
    pub content: &'a [u8],
}

/// What a request carries.
#[derive(Clone, Copy)]
enum Body<'a> {
    None,
    Json(&'a Value),
    /// `payload_json` (with its `attachments` entry) and the file as `files[0]`.
    Multipart(&'a Value, Upload<'a>),
}

/// Whether a call goes with the bot token (`Authorization: Bot ...`); interaction webhooks and
/// callbacks are authorized by their token in the path instead.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Bot,
    Webhook,
}

/// The REST client. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    origin: String,
    token: Secret,
    application_id: u64,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("origin", &self.origin)
            .field("application_id", &self.application_id)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// A client for the configured origin and application.
    pub fn new(settings: &DiscordSettings) -> Result<Api, ApiError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!(
                "DiscordBot (https://github.com/firebreak, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(ApiError::Client)?;
        Ok(Api {
            client,
            origin: settings.api_url.clone(),
            token: settings.bot_token.clone(),
            application_id: settings.application_id,
        })
    }

    /// Answer an interaction received over the gateway.
    pub async fn callback(&self, id: u64, token: &str, body: &Value) -> Result<(), ApiError> {
        let path = format!("/interactions/{id}/{token}/callback");
        self.send(
            "interaction callback",
            Method::POST,
            &path,
            Body::Json(body),
            Auth::Webhook,
        )
        .await
        .map(drop)
    }

    /// Edit the interaction's original message: the deferred response of a command, or the
    /// message holding the clicked button.
    pub async fn edit_original(&self, token: &str, body: &Value) -> Result<(), ApiError> {
        let path = format!(
            "/webhooks/{}/{token}/messages/@original",
            self.application_id
        );
        // Over HTTP the first edit can overtake Discord's handling of the deferred response
        // it follows, and then finds no message yet: a 404 here is retried briefly.
        self.send(
            "edit original message",
            Method::PATCH,
            &path,
            Body::Json(body),
            Auth::Webhook,
        )
        .await
        .map(drop)
    }

    /// Delete the interaction's original message.
    pub async fn delete_original(&self, token: &str) -> Result<(), ApiError> {
        let path = format!(
            "/webhooks/{}/{token}/messages/@original",
            self.application_id
        );
        self.send(
            "delete original message",
            Method::DELETE,
            &path,
            Body::None,
            Auth::Webhook,
        )
        .await
        .map(drop)
    }

    /// Post a followup message; returns its id.
    pub async fn followup(&self, token: &str, body: &Value) -> Result<String, ApiError> {
        let path = format!("/webhooks/{}/{token}", self.application_id);
        let answer = self
            .send(
                "post followup message",
                Method::POST,
                &path,
                Body::Json(body),
                Auth::Webhook,
            )
            .await?;
        Ok(message_id(answer.as_ref()))
    }

    /// Edit a followup message.
    pub async fn edit_followup(&self, token: &str, id: &str, body: &Value) -> Result<(), ApiError> {
        let path = format!("/webhooks/{}/{token}/messages/{id}", self.application_id);
        self.send(
            "edit followup message",
            Method::PATCH,
            &path,
            Body::Json(body),
            Auth::Webhook,
        )
        .await
        .map(drop)
    }

    /// Delete a followup message.
    pub async fn delete_followup(&self, token: &str, id: &str) -> Result<(), ApiError> {
        let path = format!("/webhooks/{}/{token}/messages/{id}", self.application_id);
        self.send(
            "delete followup message",
            Method::DELETE,
            &path,
            Body::None,
            Auth::Webhook,
        )
        .await
        .map(drop)
    }

    /// Replace every command of the application (in one guild, or global).
    pub async fn overwrite_commands(
        &self,
        guild: Option<u64>,
        body: &Value,
    ) -> Result<(), ApiError> {
        let path = match guild {
            Some(guild) => format!(
                "/applications/{}/guilds/{guild}/commands",
                self.application_id
            ),
            None => format!("/applications/{}/commands", self.application_id),
        };
        self.send(
            "register commands",
            Method::PUT,
            &path,
            Body::Json(body),
            Auth::Bot,
        )
        .await
        .map(drop)
    }

    /// Post a followup message with a file attached; returns its id.
    pub async fn followup_with_file(
        &self,
        token: &str,
        body: &Value,
        file: Upload<'_>,
    ) -> Result<String, ApiError> {
        let path = format!("/webhooks/{}/{token}", self.application_id);
        let payload = with_attachment(body, file.filename);
        let answer = self
            .send(
                "post followup message with a file",
                Method::POST,
                &path,
                Body::Multipart(&payload, file),
                Auth::Webhook,
            )
            .await?;
        Ok(message_id(answer.as_ref()))
    }

    /// Post a message in a channel or thread (bot token); returns its id.
    pub async fn create_message(&self, channel: &str, body: &Value) -> Result<String, ApiError> {
        const CALL: &str = "create message";
        let path = format!("/channels/{}/messages", snowflake(CALL, channel)?);
        let answer = self
            .send(CALL, Method::POST, &path, Body::Json(body), Auth::Bot)
            .await?;
        Ok(message_id(answer.as_ref()))
    }

    /// Edit a message the bot posted in a channel or thread (bot token).
    pub async fn edit_message(
        &self,
        channel: &str,
        message: &str,
        body: &Value,
    ) -> Result<(), ApiError> {
        const CALL: &str = "edit message";
        let path = format!(
            "/channels/{}/messages/{}",
            snowflake(CALL, channel)?,
            snowflake(CALL, message)?
        );
        self.send(CALL, Method::PATCH, &path, Body::Json(body), Auth::Bot)
            .await
            .map(drop)
    }

    /// Start a public thread without a starting message in `channel`; returns the thread's id.
    /// `name` is cut to Discord's 100 characters.
    pub async fn start_thread(&self, channel: &str, name: &str) -> Result<String, ApiError> {
        const CALL: &str = "start thread";
        let path = format!("/channels/{}/threads", snowflake(CALL, channel)?);
        let name: String = name.chars().take(MAX_THREAD_NAME).collect();
        let body = serde_json::json!({
            "name": name,
            "type": PUBLIC_THREAD,
            "auto_archive_duration": AUTO_ARCHIVE_MINUTES,
        });
        let answer = self
            .send(CALL, Method::POST, &path, Body::Json(&body), Auth::Bot)
            .await?;
        let id = message_id(answer.as_ref());
        if id.is_empty() {
            return Err(ApiError::Status {
                call: CALL,
                status: StatusCode::OK,
                body: "the answer carries no thread id".to_string(),
                hint: "",
            });
        }
        Ok(id)
    }

    /// Add a member to a thread (bot token).
    pub async fn add_thread_member(&self, thread: &str, user: &str) -> Result<(), ApiError> {
        const CALL: &str = "add thread member";
        let path = format!(
            "/channels/{}/thread-members/{}",
            snowflake(CALL, thread)?,
            snowflake(CALL, user)?
        );
        self.send(CALL, Method::PUT, &path, Body::None, Auth::Bot)
            .await
            .map(drop)
    }

    async fn send(
        &self,
        call: &'static str,
        method: Method,
        path: &str,
        body: Body<'_>,
        auth: Auth,
    ) -> Result<Option<Value>, ApiError> {
        let url = format!("{}/api/v10{path}", self.origin);
        let mut not_found_retries = if method == Method::PATCH && path.ends_with("/@original") {
            2
        } else {
            0
        };
        for attempt in 0..=MAX_RETRIES {
            let mut request = self.client.request(method.clone(), &url);
            if auth == Auth::Bot {
                request = request.header("Authorization", format!("Bot {}", self.token.expose()));
            }
            request = match body {
                Body::None => request,
                Body::Json(body) => request.json(body),
                // A multipart form is consumed by sending: built again for each attempt.
                Body::Multipart(payload, file) => request.multipart(form(call, payload, file)?),
            };
            let response = match request.send().await {
                Ok(response) => response,
                Err(source) => {
                    return Err(ApiError::Unreachable {
                        call,
                        origin: self.origin.clone(),
                        source: source.without_url(),
                    });
                }
            };
            let status = response.status();
            let header_wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok());
            let text = response.text().await.unwrap_or_default();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let body_wait = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v.get("retry_after").and_then(Value::as_f64));
                let wait = retry_wait(body_wait.or(header_wait));
                tracing::warn!(
                    call,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "Discord rate limited a call; retrying"
                );
                if attempt < MAX_RETRIES {
                    tokio::time::sleep(wait).await;
                }
                continue;
            }
            if status == StatusCode::NOT_FOUND && not_found_retries > 0 {
                not_found_retries -= 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            if !status.is_success() {
                return Err(ApiError::Status {
                    call,
                    status,
                    body: crate::chat::discord::embeds::truncate(&text, 500),
                    hint: hint(status, path),
                });
            }
            if text.trim().is_empty() {
                return Ok(None);
            }
            return Ok(serde_json::from_str(&text).ok());
        }
        Err(ApiError::RateLimited { call })
    }
}

/// Discord's longest thread name.
pub const MAX_THREAD_NAME: usize = 100;
/// Channel type of a public thread.
const PUBLIC_THREAD: u8 = 11;
/// Threads archive after a day without messages.
const AUTO_ARCHIVE_MINUTES: u32 = 1440;

/// `id` if it is a snowflake, so nothing else reaches a URL path.
fn snowflake<'a>(call: &'static str, id: &'a str) -> Result<&'a str, ApiError> {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(ApiError::InvalidId {
            call,
            id: id.chars().take(32).collect(),
        })
    }
}

fn message_id(answer: Option<&Value>) -> String {
    answer
        .and_then(|v| v.get("id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The message body with its one attachment described, as `payload_json` carries it.
fn with_attachment(body: &Value, filename: &str) -> Value {
    let mut payload = body.clone();
    if let Some(object) = payload.as_object_mut() {
        object.insert(
            "attachments".to_string(),
            serde_json::json!([{ "id": 0, "filename": filename }]),
        );
    }
    payload
}

fn form(
    call: &'static str,
    payload: &Value,
    file: Upload<'_>,
) -> Result<reqwest::multipart::Form, ApiError> {
    let part = reqwest::multipart::Part::bytes(file.content.to_vec())
        .file_name(file.filename.to_string())
        .mime_str(mime(file.filename))
        .map_err(|source| ApiError::Attachment { call, source })?;
    let json = reqwest::multipart::Part::text(payload.to_string())
        .mime_str("application/json")
        .map_err(|source| ApiError::Attachment { call, source })?;
    Ok(reqwest::multipart::Form::new()
        .part("payload_json", json)
        .part("files[0]", part))
}

fn mime(filename: &str) -> &'static str {
    if filename.ends_with(".md") {
        "text/markdown; charset=utf-8"
    } else if filename.ends_with(".txt") || filename.ends_with(".log") {
        "text/plain; charset=utf-8"
    } else if filename.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

fn retry_wait(seconds: Option<f64>) -> Duration {
    let seconds = seconds
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0);
    Duration::from_secs_f64(seconds).min(MAX_WAIT)
}

fn hint(status: StatusCode, path: &str) -> &'static str {
    if path.starts_with("/channels/") {
        return match status {
            StatusCode::UNAUTHORIZED => {
                "; check FIREBREAK_DISCORD_BOT_TOKEN (Developer Portal → Bot → Reset Token)"
            }
            StatusCode::FORBIDDEN => {
                "; the bot lacks a permission in that channel: Send Messages, Send Messages in Threads, Create Public Threads, Attach Files (README \"Running on Discord\")"
            }
            StatusCode::NOT_FOUND => {
                "; the channel, thread or message is gone, or the bot cannot see it"
            }
            _ => "",
        };
    }
    match status {
        StatusCode::UNAUTHORIZED => {
            "; check FIREBREAK_DISCORD_BOT_TOKEN (Developer Portal → Bot → Reset Token)"
        }
        StatusCode::FORBIDDEN => {
            "; the bot lacks access: invite it with the applications.commands scope, or check FIREBREAK_DISCORD_GUILD_ID"
        }
        StatusCode::NOT_FOUND => {
            "; the interaction may have expired (15 minutes), or FIREBREAK_DISCORD_APPLICATION_ID is wrong"
        }
        _ => "",
    }
}

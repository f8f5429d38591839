//! The few Slack Web API calls Firebreak makes, through slack-morphism's client, with Slack's
//! rate limits honoured (HTTP 429 and Retry-After).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::config::Secret;

/// How often a rate-limited call is retried before giving up.
pub const MAX_RETRIES: u32 = 3;
/// The longest Retry-After honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Why a Web API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The HTTP client cannot be built (no CA certificates on the machine?).
    #[error("cannot build the Slack HTTP client (are CA certificates installed?): {0}")]
    Connector(#[source] std::io::Error),
    /// Slack answered with an error, or could not be reached.
    #[error("Slack {method} failed: {source}{}", hint(source))]
    Call {
        /// The Web API method.
        method: &'static str,
        /// What slack-morphism reported.
        #[source]
        source: SlackClientError,
    },
    /// Slack kept answering 429.
    #[error("Slack {method} is still rate-limited after {retries} retries")]
    RateLimited {
        /// The Web API method.
        method: &'static str,
        /// Retries made.
        retries: u32,
    },
}

impl ApiError {
    /// Slack's error code (`name_taken`, `already_in_channel`, ...), when Slack answered one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Call {
                source: SlackClientError::ApiError(error),
                ..
            } => Some(error.code.as_str()),
            _ => None,
        }
    }
}

/// What to do about the Slack errors people meet while setting up.
fn hint(error: &SlackClientError) -> &'static str {
    let text = error.to_string();
    if text.contains("not_in_channel") || text.contains("channel_not_found") {
        "; invite the bot to the channel (/invite @Firebreak) or add the chat:write.public scope"
    } else if text.contains("invalid_auth") || text.contains("not_authed") {
        "; check FIREBREAK_SLACK_BOT_TOKEN (and FIREBREAK_SLACK_APP_TOKEN for Socket Mode)"
    } else if text.contains("missing_scope") {
        "; add the scope deploy/slack/manifest.yaml lists and reinstall the app"
    } else {
        ""
    }
}

type Connector = SlackClientHyperConnector<SlackHyperHttpsConnector>;

/// A Web API client holding the bot token.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<SlackClient<Connector>>,
    token: SlackApiToken,
}

/// A message for a `response_url`: where it goes relative to the invoking message.
#[derive(Serialize)]
struct ResponseUrlMessage<'a> {
    #[serde(flatten)]
    content: &'a SlackMessageContent,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replace_original: Option<bool>,
}

/// Where a `response_url` message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// Only the invoker sees it.
    Ephemeral,
    /// A new message in the channel.
    InChannel,
    /// In place of the message that held the clicked button.
    ReplaceOriginal,
}

impl SlackApi {
    /// A client for the Web API at `api_url` (no trailing slash). Plain `http://` is allowed
    /// so a loopback fake can stand in for Slack; Slack itself is https.
    pub fn new(api_url: &str, bot_token: &Secret) -> Result<SlackApi, ApiError> {
        crate::cluster::install_crypto_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(ApiError::Connector)?
            .https_or_http()
            .enable_http1()
            .build();
        let connector =
            SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_url);
        Ok(SlackApi {
            client: Arc::new(SlackClient::new(connector)),
            token: token(bot_token),
        })
    }

    /// auth.test: the workspace (`team_id`) the bot token belongs to.
    pub async fn own_workspace(&self) -> Result<String, ApiError> {
        let response = self
            .retry(
                "auth.test",
                || async move { self.session().auth_test().await },
            )
            .await?;
        Ok(response.team_id.0)
    }

    /// chat.postMessage; the new message's timestamp.
    pub async fn post_message(
        &self,
        channel: &str,
        content: SlackMessageContent,
    ) -> Result<SlackTs, ApiError> {
        let request =
            SlackApiChatPostMessageRequest::new(SlackChannelId(channel.to_string()), content);
        let request = &request;
        let response = self
            .retry("chat.postMessage", || async move {
                self.session().chat_post_message(request).await
            })
            .await?;
        Ok(response.ts)
    }

    /// chat.update of the message at `ts`.
    pub async fn update(
        &self,
        channel: &str,
        ts: &SlackTs,
        content: SlackMessageContent,
    ) -> Result<(), ApiError> {
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId(channel.to_string()),
            content,
            ts.clone(),
        );
        let request = &request;
        self.retry("chat.update", || async move {
            self.session().chat_update(request).await
        })
        .await?;
        Ok(())
    }

    /// chat.postEphemeral: a message only `user` sees.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        content: SlackMessageContent,
    ) -> Result<(), ApiError> {
        let request = SlackApiChatPostEphemeralRequest::new(
            SlackChannelId(channel.to_string()),
            SlackUserId(user.to_string()),
            content,
        );
        let request = &request;
        self.retry("chat.postEphemeral", || async move {
            self.session().chat_post_ephemeral(request).await
        })
        .await?;
        Ok(())
    }

    /// chat.delete of the message at `ts`.
    pub async fn delete(&self, channel: &str, ts: &SlackTs) -> Result<(), ApiError> {
        let request =
            SlackApiChatDeleteRequest::new(SlackChannelId(channel.to_string()), ts.clone());
        let request = &request;
        self.retry("chat.delete", || async move {
            self.session().chat_delete(request).await
        })
        .await?;
        Ok(())
    }

    /// Post to an interaction's or command's `response_url` (valid 30 minutes, 5 uses).
    pub async fn respond(
        &self,
        response_url: &SlackResponseUrl,
        content: &SlackMessageContent,
        kind: ResponseKind,
    ) -> Result<(), ApiError> {
        let message = ResponseUrlMessage {
            content,
            response_type: match kind {
                ResponseKind::Ephemeral => Some("ephemeral"),
                ResponseKind::InChannel => Some("in_channel"),
                ResponseKind::ReplaceOriginal => None,
            },
            replace_original: match kind {
                ResponseKind::ReplaceOriginal => Some(true),
                _ => None,
            },
        };
        let message = &message;
        let span = tracing::debug_span!("slack response_url");
        let span = &span;
        self.retry("response_url", || async move {
            let context = SlackClientApiCallContext {
                rate_control_params: None,
                token: None,
                tracing_span: span,
                // The URL is a credential of sorts: keep it out of logs.
                is_sensitive_url: true,
            };
            self.client
                .http_api
                .connector
                .http_post_uri::<_, serde_json::Value>(response_url.0.clone(), message, context)
                .await
        })
        .await?;
        Ok(())
    }

    /// conversations.create: a public channel named `name`; its id.
    pub async fn create_channel(&self, name: &str) -> Result<String, ApiError> {
        let request = SlackApiConversationsCreateRequest::new(name.to_string());
        let request = &request;
        let response = self
            .retry("conversations.create", || async move {
                self.session().conversations_create(request).await
            })
            .await?;
        Ok(response.channel.id.0)
    }

    /// conversations.setTopic.
    pub async fn set_topic(&self, channel: &str, topic: &str) -> Result<(), ApiError> {
        let request = SlackApiConversationsSetTopicRequest::new(
            SlackChannelId(channel.to_string()),
            topic.to_string(),
        );
        let request = &request;
        self.retry("conversations.setTopic", || async move {
            self.session().conversations_set_topic(request).await
        })
        .await?;
        Ok(())
    }

    /// conversations.invite of `users` into `channel`.
    pub async fn invite(&self, channel: &str, users: &[String]) -> Result<(), ApiError> {
        let request = SlackApiConversationsInviteRequest::new(
            SlackChannelId(channel.to_string()),
            users.iter().map(|u| SlackUserId(u.clone())).collect(),
        );
        let request = &request;
        self.retry("conversations.invite", || async move {
            self.session().conversations_invite(request).await
        })
        .await?;
        Ok(())
    }

    /// The text of the message at `ts` in `channel`: conversations.history, then
    /// conversations.replies for a message inside a thread. `None` when it is gone.
    pub async fn message_text(&self, channel: &str, ts: &str) -> Result<Option<String>, ApiError> {
        let ts = SlackTs(ts.to_string());
        let request = SlackApiConversationsHistoryRequest::new()
            .with_channel(SlackChannelId(channel.to_string()))
            .with_latest(ts.clone())
            .with_inclusive(true)
            .with_limit(1);
        let request = &request;
        let history = self
            .retry("conversations.history", || async move {
                self.session().conversations_history(request).await
            })
            .await?;
        if let Some(found) = history.messages.iter().find(|m| m.origin.ts == ts) {
            return Ok(Some(found.content.text.clone().unwrap_or_default()));
        }
        // A thread reply is not in the channel's history; its thread is.
        let request = SlackApiConversationsRepliesRequest::new(
            SlackChannelId(channel.to_string()),
            ts.clone(),
        )
        .with_latest(ts.clone())
        .with_oldest(ts.clone())
        .with_inclusive(true)
        .with_limit(1);
        let request = &request;
        let replies = self
            .retry("conversations.replies", || async move {
                self.session().conversations_replies(request).await
            })
            .await?;
        Ok(replies
            .messages
            .iter()
            .find(|m| m.origin.ts == ts)
            .map(|m| m.content.text.clone().unwrap_or_default()))
    }

    /// Upload `content` as `filename` into `channel` the way Slack wants files now:
    /// files.getUploadURLExternal, the bytes to the upload URL, files.completeUploadExternal.
    pub async fn upload(
        &self,
        channel: &str,
        filename: &str,
        content: &str,
    ) -> Result<(), ApiError> {
        let request =
            SlackApiFilesGetUploadUrlExternalRequest::new(filename.to_string(), content.len());
        let request = &request;
        let target = self
            .retry("files.getUploadURLExternal", || async move {
                self.session().get_upload_url_external(request).await
            })
            .await?;
        let span = tracing::debug_span!("slack file upload");
        let span = &span;
        let url = &target.upload_url;
        let token = &self.token;
        self.retry("file upload", || async move {
            let context = SlackClientApiCallContext {
                rate_control_params: None,
                token: Some(token),
                tracing_span: span,
                // The upload URL carries a signature: keep it out of logs.
                is_sensitive_url: true,
            };
            self.client
                .http_api
                .connector
                .http_post_uri_binary::<serde_json::Value>(
                    url.0.clone(),
                    "text/markdown; charset=utf-8".to_string(),
                    content.as_bytes(),
                    context,
                )
                .await
        })
        .await?;
        let request = SlackApiFilesCompleteUploadExternalRequest::new(vec![
            SlackApiFilesComplete::new(target.file_id.clone()).with_title(filename.to_string()),
        ])
        .with_channel_id(SlackChannelId(channel.to_string()));
        let request = &request;
        self.retry("files.completeUploadExternal", || async move {
            self.session().files_complete_upload_external(request).await
        })
        .await?;
        Ok(())
    }

    /// apps.connections.open with the app-level token: a Socket Mode websocket URL.
    pub async fn open_socket(&self, app_token: &Secret) -> Result<String, ApiError> {
        let token = token(app_token);
        let token = &token;
        let request = SlackApiAppsConnectionOpenRequest::new();
        let request = &request;
        let response = self
            .retry("apps.connections.open", || async move {
                self.client
                    .open_session(token)
                    .apps_connections_open(request)
                    .await
            })
            .await?;
        Ok(response.url.0.to_string())
    }

    fn session(&self) -> SlackClientSession<'_, Connector> {
        self.client.open_session(&self.token)
    }

    /// Run `call`, waiting out 429s as Slack's Retry-After asks, a bounded number of times.
    async fn retry<T, F, Fut>(&self, method: &'static str, call: F) -> Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SlackClientError>>,
    {
        let mut retries = 0;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(SlackClientError::RateLimitError(limit)) => {
                    if retries >= MAX_RETRIES {
                        return Err(ApiError::RateLimited { method, retries });
                    }
                    let wait = limit
                        .retry_after
                        .unwrap_or(Duration::from_secs(1))
                        .min(MAX_RETRY_AFTER);
                    tracing::info!(
                        method,
                        wait_ms = wait.as_millis() as u64,
                        "Slack rate limit; waiting"
                    );
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
                Err(source) => return Err(ApiError::Call { method, source }),
            }
        }
    }
}

fn token(secret: &Secret) -> SlackApiToken {
    SlackApiToken::new(SlackApiTokenValue(secret.expose().to_string()))
}

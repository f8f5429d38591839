//! Slack's request URLs: `/slack/commands`, `/slack/interactions`, `/slack/events`.
//!
//! Every request is checked before anything in it is parsed: the body must fit the limit
//! (413), and its `X-Slack-Signature` must be the HMAC-SHA256 of `v0:{timestamp}:{body}`
//! under the signing secret, with a timestamp within five minutes (401). Only then is the
//! body read (400 when it is not what Slack sends). Slack is answered at once; the work runs
//! in the background ([`Slack::start`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use serde::Deserialize;
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use super::Slack;
use super::events::{EventError, click_invocation, command_invocation, mention_invocation};
use super::guard::{Admission, Workspace};

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The signature is missing, wrong, or its timestamp is stale.
    #[error("request not signed by Slack: {0}")]
    Signature(String),
    /// The body is not a Slack payload.
    #[error("malformed Slack payload: {0}")]
    Malformed(String),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = match self {
            Rejection::Signature(_) => StatusCode::UNAUTHORIZED,
            Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
        };
        tracing::info!(status = status.as_u16(), reason = %self, "Slack request refused");
        (status, format!("{self}\n")).into_response()
    }
}

/// The reaction that pins a message to the incident's timeline (📌).
pub const PIN_REACTION: &str = "pushpin";

#[derive(Clone)]
struct Endpoint {
    slack: Slack,
    verifier: SlackEventSignatureVerifier,
}

impl Endpoint {
    /// The body as text, once its signature is verified.
    fn verify<'b>(&self, headers: &HeaderMap, body: &'b Bytes) -> Result<&'b str, Rejection> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| Rejection::Signature(format!("no {name} header")))
        };
        let signature = header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER)?;
        let timestamp = header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP)?;
        // Slack signs UTF-8 text; other bytes cannot carry a valid signature.
        let text = std::str::from_utf8(body)
            .map_err(|_| Rejection::Signature("body is not UTF-8".to_string()))?;
        self.verifier
            .verify(signature, text, timestamp)
            .map_err(|error| Rejection::Signature(error.to_string()))?;
        Ok(text)
    }

    /// `None` when this signed request is new; otherwise the answer that ends it: a replay
    /// of an accepted request (same timestamp and signature) gets an empty 200 and runs
    /// nothing.
    async fn replayed(&self, headers: &HeaderMap) -> Option<Response> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let key = format!(
            "slack:signed:{}:{}",
            header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
            header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER)
        );
        match self.slack.first_time(vec![key]).await {
            Admission::Run => None,
            Admission::Repeat => Some(StatusCode::OK.into_response()),
            Admission::Refused(text) => {
                Some((StatusCode::SERVICE_UNAVAILABLE, format!("{text}\n")).into_response())
            }
        }
    }
}

/// A form body as JSON fields, for reading the workspace the way Socket Mode's payload is
/// read.
fn form_fields(text: &str) -> serde_json::Value {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text).unwrap_or_default();
    serde_json::Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    )
}

/// The router for Slack's three request URLs.
pub fn routes(slack: Slack, verifier: SlackEventSignatureVerifier, body_limit: usize) -> Router {
    Router::new()
        .route("/slack/commands", post(commands))
        .route("/slack/interactions", post(interactions))
        .route("/slack/events", post(events))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(Endpoint { slack, verifier })
}

/// What slack-morphism's command model leaves out.
#[derive(Deserialize)]
struct CommandExtras {
    user_name: Option<String>,
}

async fn commands(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let text = endpoint.verify(&headers, &body)?;
    let event: SlackCommandEvent = serde_urlencoded::from_str(text)
        .map_err(|error| Rejection::Malformed(format!("slash command form: {error}")))?;
    let extras: CommandExtras = serde_urlencoded::from_str(text)
        .map_err(|error| Rejection::Malformed(format!("slash command form: {error}")))?;
    if let Some(stop) = endpoint.replayed(&headers).await {
        return Ok(stop);
    }
    let from = Workspace::of_command(&form_fields(text));
    Ok(
        Json(command_ack(&endpoint.slack, &event, extras.user_name.as_deref(), &from).await)
            .into_response(),
    )
}

/// The immediate, ephemeral answer to a slash command (HTTP body or Socket Mode ack
/// payload); the command itself runs in the background.
pub(crate) async fn command_ack(
    slack: &Slack,
    event: &SlackCommandEvent,
    user_name: Option<&str>,
    from: &Workspace,
) -> serde_json::Value {
    let what = format!(
        "{} {}",
        event.command.0,
        event.text.as_deref().unwrap_or("")
    );
    let once = vec![format!("slack:trigger:{}", event.trigger_id.0)];
    let text = match slack
        .admit(from, &event.user_id.0, &event.channel_id.0, &what, once)
        .await
    {
        Admission::Run => match command_invocation(event, user_name) {
            Ok((inv, origin)) => slack.start(inv, origin),
            Err(error) => error.to_string(),
        },
        Admission::Refused(text) => text,
        Admission::Repeat => ALREADY_RECEIVED.to_string(),
    };
    serde_json::json!({ "response_type": "ephemeral", "text": text })
}

/// What a repeated slash command is answered with.
const ALREADY_RECEIVED: &str = "Already received: Firebreak runs each command once.";

#[derive(Deserialize)]
struct InteractionForm {
    payload: String,
}

async fn interactions(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let text = endpoint.verify(&headers, &body)?;
    let form: InteractionForm = serde_urlencoded::from_str(text)
        .map_err(|error| Rejection::Malformed(format!("interaction form: {error}")))?;
    let payload: serde_json::Value = serde_json::from_str(&form.payload)
        .map_err(|error| Rejection::Malformed(format!("interaction payload: {error}")))?;
    let event: SlackInteractionEvent = serde_json::from_value(payload.clone())
        .map_err(|error| Rejection::Malformed(format!("interaction payload: {error}")))?;
    if let Some(stop) = endpoint.replayed(&headers).await {
        return Ok(stop);
    }
    handle_interaction(
        &endpoint.slack,
        &event,
        &Workspace::of_interaction(&payload),
    )
    .await
    .map_err(|error| Rejection::Malformed(error.to_string()))?;
    Ok(StatusCode::OK.into_response())
}

/// Start the command behind a button click; other interactions are acknowledged and ignored.
pub(crate) async fn handle_interaction(
    slack: &Slack,
    event: &SlackInteractionEvent,
    from: &Workspace,
) -> Result<(), EventError> {
    match event {
        SlackInteractionEvent::BlockActions(click) => {
            let user = click.user.as_ref().map(|u| u.id.0.as_str()).unwrap_or("");
            let channel = click
                .channel
                .as_ref()
                .map(|c| c.id.0.as_str())
                .unwrap_or("");
            let value = click
                .actions
                .iter()
                .flatten()
                .find_map(|a| a.value.as_deref())
                .unwrap_or("");
            let once = vec![format!("slack:trigger:{}", click.trigger_id.0)];
            match slack
                .admit(from, user, channel, &format!("click {value}"), once)
                .await
            {
                Admission::Run => {}
                Admission::Repeat => return Ok(()),
                Admission::Refused(text) => {
                    if let Some(url) = click.response_url.clone() {
                        let api = slack.api().clone();
                        tokio::spawn(async move {
                            let content = SlackMessageContent::new().with_text(text);
                            if let Err(error) = api
                                .respond(&url, &content, super::api::ResponseKind::Ephemeral)
                                .await
                            {
                                tracing::warn!(%error, "Slack: explaining a refused click failed");
                            }
                        });
                    }
                    return Ok(());
                }
            }
            start_click(slack, click)
        }
        _ => {
            tracing::debug!("Slack interaction other than block_actions ignored");
            Ok(())
        }
    }
}

fn start_click(slack: &Slack, click: &SlackInteractionBlockActionsEvent) -> Result<(), EventError> {
    {
        match click_invocation(click) {
            Ok((inv, origin)) => {
                slack.start(inv, origin);
                Ok(())
            }
            Err(EventError::Parse(error)) => {
                // A button whose command does not parse is Firebreak's bug, not Slack's.
                tracing::warn!(%error, "a clicked button's command does not parse");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

async fn events(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let text = endpoint.verify(&headers, &body)?;
    let payload: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| Rejection::Malformed(format!("event: {error}")))?;
    let event: SlackPushEvent = serde_json::from_value(payload.clone())
        .map_err(|error| Rejection::Malformed(format!("event: {error}")))?;
    // Slack retries an event it thinks was missed; the first delivery already ran it.
    let retry = headers.contains_key("x-slack-retry-num");
    if !retry && let Some(stop) = endpoint.replayed(&headers).await {
        return Ok(stop);
    }
    match event {
        SlackPushEvent::UrlVerification(check) => {
            Ok(Json(serde_json::json!({ "challenge": check.challenge })).into_response())
        }
        SlackPushEvent::EventCallback(callback) => {
            if retry {
                tracing::debug!("Slack event retry ignored");
            } else {
                handle_event(&endpoint.slack, &callback, &Workspace::of_event(&payload)).await;
            }
            Ok(StatusCode::OK.into_response())
        }
        SlackPushEvent::AppRateLimited(_) => {
            tracing::warn!("Slack is rate-limiting this app's events");
            Ok(StatusCode::OK.into_response())
        }
    }
}

/// Start the command in an `app_mention`, pin a 📌'd message to its incident; other events
/// are ignored.
pub(crate) async fn handle_event(
    slack: &Slack,
    callback: &SlackPushEventCallback,
    from: &Workspace,
) {
    let (user, channel, what) = match &callback.event {
        SlackEventCallbackBody::ReactionAdded(reaction) if reaction.reaction.0 == PIN_REACTION => {
            (reaction.user.0.as_str(), "", "📌 reaction".to_string())
        }
        SlackEventCallbackBody::AppMention(mention) => (
            mention.user.0.as_str(),
            mention.channel.0.as_str(),
            format!("mention: {}", mention.content.text.as_deref().unwrap_or("")),
        ),
        _ => return,
    };
    let once = vec![format!("slack:event:{}", callback.event_id.0)];
    if slack.admit(from, user, channel, &what, once).await != Admission::Run {
        return;
    }
    if let SlackEventCallbackBody::ReactionAdded(reaction) = &callback.event {
        if reaction.reaction.0 != PIN_REACTION {
            return;
        }
        let SlackReactionsItem::Message(message) = &reaction.item else {
            return;
        };
        let Some(channel) = message.origin.channel.clone() else {
            tracing::debug!("a 📌 reaction without a channel ignored");
            return;
        };
        let (slack, user, ts) = (
            slack.clone(),
            reaction.user.0.clone(),
            message.origin.ts.0.clone(),
        );
        tokio::spawn(async move { slack.pin(&channel.0, &user, &ts).await });
        return;
    }
    if let SlackEventCallbackBody::AppMention(mention) = &callback.event {
        match mention_invocation(mention) {
            Ok((inv, origin)) => {
                slack.start(inv, origin);
            }
            Err(error) => {
                tracing::info!(%error, "a mention's command does not parse");
                let api = slack.api().clone();
                let (channel, user) = (mention.channel.0.clone(), mention.user.0.clone());
                tokio::spawn(async move {
                    let content = SlackMessageContent::new().with_text(error.to_string());
                    if let Err(error) = api.post_ephemeral(&channel, &user, content).await {
                        tracing::warn!(%error, "Slack: explaining a bad mention failed");
                    }
                });
            }
        }
    }
}

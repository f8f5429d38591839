//! Slack Socket Mode, for a bot behind a firewall: the app-level token opens a websocket
//! (apps.connections.open) over which Slack sends the same commands, clicks and events as
//! over HTTP, each in an envelope Firebreak acknowledges by its `envelope_id` at once.
//!
//! The connection is reopened whenever it drops or Slack asks (`disconnect`), with a growing
//! pause after failures.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use slack_morphism::prelude::*;
use tokio_tungstenite::tungstenite::Message;

use super::Slack;
use super::api::ApiError;
use super::guard::Workspace;
use super::http::{command_ack, handle_event, handle_interaction};
use crate::config::Secret;

/// The longest pause between reconnection attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(60);

/// Why a Socket Mode connection ended.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// apps.connections.open failed.
    #[error("cannot open a Socket Mode connection: {0}")]
    Open(#[from] ApiError),
    /// The websocket failed.
    #[error("Socket Mode websocket: {0}")]
    Websocket(#[from] tokio_tungstenite::tungstenite::Error),
}

/// Keep a Socket Mode connection up for as long as the process runs.
pub(crate) async fn run(slack: Slack, app_token: Secret) {
    let first_delay = slack.tuning().reconnect_delay;
    let mut delay = first_delay;
    loop {
        match serve_one(&slack, &app_token).await {
            // A connection that said hello worked: reconnect at once.
            Ok(true) => {
                tracing::info!("Slack Socket Mode connection closed; reconnecting");
                delay = first_delay;
                continue;
            }
            Ok(false) => {
                tracing::warn!(
                    retry_in_ms = delay.as_millis() as u64,
                    "Slack Socket Mode connection closed before hello; reconnecting"
                );
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "Slack Socket Mode connection failed; reconnecting");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

/// The fields every envelope shares.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    envelope_id: Option<String>,
    #[serde(default)]
    payload: serde_json::Value,
    reason: Option<String>,
}

/// Open one connection and serve it until it ends; whether Slack said hello on it.
async fn serve_one(slack: &Slack, app_token: &Secret) -> Result<bool, SocketError> {
    let url = slack.api().open_socket(app_token).await?;
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let mut greeted = false;
    while let Some(message) = socket.next().await {
        let text = match message? {
            Message::Text(text) => text,
            Message::Close(_) => break,
            // tungstenite answers pings itself.
            _ => continue,
        };
        let envelope: Envelope = match serde_json::from_str(text.as_str()) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, "unreadable Socket Mode frame ignored");
                continue;
            }
        };
        match envelope.kind.as_str() {
            "hello" => {
                tracing::info!("Slack Socket Mode connected");
                greeted = true;
                continue;
            }
            "disconnect" => {
                tracing::info!(
                    reason = envelope.reason.as_deref().unwrap_or("-"),
                    "Slack asks to reconnect"
                );
                break;
            }
            _ => {}
        }
        let Some(envelope_id) = envelope.envelope_id.clone() else {
            tracing::debug!(kind = %envelope.kind, "Socket Mode frame without envelope ignored");
            continue;
        };
        let payload = dispatch(slack, &envelope).await;
        let mut ack = serde_json::json!({ "envelope_id": envelope_id });
        if let Some(payload) = payload
            && let Some(ack) = ack.as_object_mut()
        {
            ack.insert("payload".to_string(), payload);
        }
        socket.send(Message::Text(ack.to_string().into())).await?;
    }
    Ok(greeted)
}

/// Start what an envelope asks for; the acknowledgement's payload, if it has one.
async fn dispatch(slack: &Slack, envelope: &Envelope) -> Option<serde_json::Value> {
    match envelope.kind.as_str() {
        "slash_commands" => {
            match serde_json::from_value::<SlackCommandEvent>(envelope.payload.clone()) {
                Ok(event) => {
                    let user_name = envelope
                        .payload
                        .get("user_name")
                        .and_then(serde_json::Value::as_str);
                    let from = Workspace::of_command(&envelope.payload);
                    Some(command_ack(slack, &event, user_name, &from).await)
                }
                Err(error) => {
                    tracing::warn!(%error, "malformed Socket Mode slash command ignored");
                    None
                }
            }
        }
        "interactive" => {
            match serde_json::from_value::<SlackInteractionEvent>(envelope.payload.clone()) {
                Ok(event) => {
                    let from = Workspace::of_interaction(&envelope.payload);
                    if let Err(error) = handle_interaction(slack, &event, &from).await {
                        tracing::warn!(%error, "Socket Mode interaction ignored");
                    }
                }
                Err(error) => tracing::warn!(%error, "malformed Socket Mode interaction ignored"),
            }
            None
        }
        "events_api" => {
            match serde_json::from_value::<SlackPushEventCallback>(envelope.payload.clone()) {
                Ok(callback) => {
                    handle_event(slack, &callback, &Workspace::of_event(&envelope.payload)).await
                }
                Err(error) => tracing::warn!(%error, "malformed Socket Mode event ignored"),
            }
            None
        }
        other => {
            tracing::debug!(
                kind = other,
                "Socket Mode envelope of unknown type acknowledged"
            );
            None
        }
    }
}

//! What a reply asks of Discord besides showing itself ([`Effect`]): a thread for the
//! incident, the incident summary kept current in one message, a file attachment; and
//! Discord as an [`Outbox`] for what the core posts unprompted (alert-opened incidents).
//!
//! Threads, channel messages and their edits go with the bot token (`/channels/...`); an
//! attachment answering a command is a followup on the interaction's webhook.

use std::collections::HashMap;

use futures::future::BoxFuture;
use serde_json::Value;

use super::api::{Api, ApiError, Upload};
use super::embeds::{self, Message};
use crate::bot::Bot;
use crate::chat::{Outbox, OutboxError, Platform};
use crate::render::{Effect, Reply};

/// The platform name incidents remember Discord threads and messages under.
const PLATFORM: &str = "discord";

/// Carry out `effects` of a reply delivered for the interaction `token` in `channel`.
/// Threads are opened first, so a summary in the same reply lands in the incident's new
/// thread. Failures are logged: the reply itself is already delivered.
pub(super) async fn apply(bot: &Bot, api: &Api, token: &str, channel: &str, effects: &[Effect]) {
    let mut opened: HashMap<&str, String> = HashMap::new();
    for effect in effects {
        if let Effect::OpenChannel {
            incident,
            name,
            topic: _,
            invite,
        } = effect
            && let Some(thread) = open_thread(bot, api, channel, incident, name, invite).await
        {
            opened.insert(incident.as_str(), thread);
        }
    }
    for effect in effects {
        match effect {
            Effect::OpenChannel { .. } => {}
            Effect::Summary { incident, summary } => {
                let target = opened
                    .get(incident.as_str())
                    .map_or(channel, |thread| thread.as_str());
                bot.keep_summary(api, incident, target, summary).await;
            }
            Effect::Attach { filename, content } => {
                let body = json(&embeds::text_message(&format!("📎 {filename}")));
                let file = Upload {
                    filename,
                    content: content.as_bytes(),
                };
                if let Err(error) = api.followup_with_file(token, &body, file).await {
                    tracing::warn!(%error, filename, "Discord: attaching a file failed");
                }
            }
        }
    }
}

/// Start a public thread for the incident in `channel`, add people to it, and bind it to the
/// incident. The thread's id.
async fn open_thread(
    bot: &Bot,
    api: &Api,
    channel: &str,
    incident: &str,
    name: &str,
    invite: &[String],
) -> Option<String> {
    let thread = match api.start_thread(channel, name).await {
        Ok(thread) => thread,
        Err(error) => {
            tracing::warn!(%error, incident, "Discord: starting the incident thread failed");
            return None;
        }
    };
    for user in invite {
        if let Err(error) = api.add_thread_member(&thread, user).await {
            tracing::warn!(%error, incident, "Discord: adding someone to the incident thread failed");
        }
    }
    bot.bind_channel(incident, PLATFORM, &thread).await;
    Some(thread)
}

/// The first message of a reply's rendering (the whole reply when it fits one, as a summary
/// does).
fn first_message(reply: &Reply) -> Message {
    embeds::render(reply).into_iter().next().unwrap_or_default()
}

fn json(message: &Message) -> Value {
    serde_json::to_value(message).unwrap_or(Value::Null)
}

fn outbox_error(error: ApiError) -> OutboxError {
    OutboxError {
        platform: Platform::Discord,
        message: error.to_string(),
    }
}

impl Outbox for Api {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    /// Every message of the rendering in order (a long report keeps its buttons on the last);
    /// the first one's id is the one returned, and the one [`Outbox::update`] later edits.
    fn post<'a>(
        &'a self,
        channel: &'a str,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<String, OutboxError>> {
        Box::pin(async move {
            let mut messages = embeds::render(reply).into_iter();
            let first = messages.next().unwrap_or_default();
            let id = self
                .create_message(channel, &json(&first))
                .await
                .map_err(outbox_error)?;
            for rest in messages {
                if let Err(error) = self.create_message(channel, &json(&rest)).await {
                    tracing::warn!(%error, "Discord: the rest of a long message not posted");
                    break;
                }
            }
            Ok(id)
        })
    }

    fn update<'a>(
        &'a self,
        channel: &'a str,
        message: &'a str,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<(), OutboxError>> {
        Box::pin(async move {
            self.edit_message(channel, message, &json(&first_message(reply)))
                .await
                .map_err(outbox_error)
        })
    }
}

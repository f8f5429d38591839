//! The slow half of an interaction: run the command, show progress, deliver the reply.
//!
//! Where messages go (`reply.delivery`, see [`crate::render::Delivery`]):
//!
//! | delivery        | slash command                                  | button click                               |
//! |-----------------|------------------------------------------------|--------------------------------------------|
//! | `NewMessage`    | the deferred original message                  | a followup message (progress edits it)    |
//! | `ReplaceOrigin` | the deferred original (typed: nothing to replace) | an edit of the message holding the button |
//! | `Ephemeral`     | the deferred message is deleted, an ephemeral followup takes its place | an ephemeral followup |
//!
//! A deferred response cannot become ephemeral afterwards, hence the delete-and-followup.
//! Once the reply is delivered, its effects run (`effects.rs`: an incident thread, the
//! summary kept current, a file attached as a followup).
//! Progress snapshots arrive on a sync callback; they go into a `watch` channel and one task
//! edits the message with the newest, so a burst of fast steps costs one edit, not one each.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;

use super::api::{Api, ApiError};
use super::effects;
use super::embeds::{self, EPHEMERAL, Message};
use crate::bot::Bot;
use crate::chat::{Invocation, ParseError};
use crate::render::{Delivery, Reply};

/// What the interaction was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A slash command, answered with a deferred response (type 5).
    Command,
    /// A button click, acknowledged with a deferred update (type 6).
    Click,
}

/// The work left after the immediate response.
pub struct Job {
    bot: Arc<Bot>,
    api: Api,
    origin: Origin,
    token: String,
    invocation: Result<Invocation, ParseError>,
}

impl Job {
    pub(super) fn new(
        bot: Arc<Bot>,
        api: Api,
        origin: Origin,
        token: String,
        invocation: Result<Invocation, ParseError>,
    ) -> Job {
        Job {
            bot,
            api,
            origin,
            token,
            invocation,
        }
    }

    /// The invocation the interaction became, or why it could not.
    pub fn invocation(&self) -> &Result<Invocation, ParseError> {
        &self.invocation
    }

    /// Run it on its own task.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// Run the command and deliver every message; failures go to the log.
    pub async fn run(self) {
        let Job {
            bot,
            api,
            origin,
            token,
            invocation,
        } = self;
        let invocation = match invocation {
            Ok(invocation) => invocation,
            Err(error) => {
                let message = embeds::text_message(&format!(
                    "Firebreak cannot read that command: {error}. Try /help."
                ));
                let result = match origin {
                    Origin::Command => api.edit_original(&token, &json(&message)).await,
                    Origin::Click => {
                        let body = json(&ephemeral(message));
                        match api.followup(&token, &body).await {
                            Ok(_) => Ok(()),
                            Err(error) => Err(error),
                        }
                    }
                };
                log_failure("an unreadable command's answer", result);
                return;
            }
        };
        if origin == Origin::Command {
            let ack = embeds::text_message(&bot.acknowledgement(&invocation));
            log_failure(
                "the acknowledgement",
                api.edit_original(&token, &json(&ack)).await,
            );
        }
        let (sender, receiver) = watch::channel::<Option<Reply>>(None);
        let editor = tokio::spawn(edit_progress(api.clone(), token.clone(), origin, receiver));
        let reply = bot
            .handle(&invocation, &|snapshot: &Reply| {
                sender.send_replace(Some(snapshot.clone()));
            })
            .await;
        drop(sender);
        let progress_message = editor.await.unwrap_or_else(|error| {
            tracing::warn!(%error, "the Discord progress task failed");
            None
        });
        log_failure(
            "the reply",
            deliver(&api, &token, origin, &reply, progress_message.as_deref()).await,
        );
        // Then what the reply asks besides showing itself (a thread, the summary, a file).
        if !reply.effects.is_empty() {
            effects::apply(&bot, &api, &token, &invocation.channel.id, &reply.effects).await;
        }
    }
}

/// Edit one message with the newest snapshot until the sender is dropped. For a click, the
/// first snapshot creates a followup; its id is returned so the reply can take its place.
async fn edit_progress(
    api: Api,
    token: String,
    origin: Origin,
    mut receiver: watch::Receiver<Option<Reply>>,
) -> Option<String> {
    let mut followup: Option<String> = None;
    while receiver.changed().await.is_ok() {
        let Some(snapshot) = receiver.borrow_and_update().clone() else {
            continue;
        };
        let body = json(&embeds::render_progress(&snapshot));
        let result = match (origin, followup.clone()) {
            (Origin::Command, _) => api.edit_original(&token, &body).await,
            (Origin::Click, Some(id)) => api.edit_followup(&token, &id, &body).await,
            (Origin::Click, None) => match api.followup(&token, &body).await {
                Ok(id) => {
                    followup = Some(id);
                    Ok(())
                }
                Err(error) => Err(error),
            },
        };
        log_failure("a progress update", result);
    }
    followup
}

/// Deliver a final reply for the interaction `token` (see the module's table). `progress` is
/// the followup that showed a click's progress, if one was posted.
pub async fn deliver(
    api: &Api,
    token: &str,
    origin: Origin,
    reply: &Reply,
    progress: Option<&str>,
) -> Result<(), ApiError> {
    let messages = embeds::render(reply);
    let Some((first, rest)) = messages.split_first() else {
        return Ok(());
    };
    let first = first.clone();
    match (origin, reply.delivery) {
        (Origin::Command, Delivery::NewMessage | Delivery::ReplaceOrigin) => {
            api.edit_original(token, &json(&first)).await?;
        }
        (Origin::Command, Delivery::Ephemeral) => {
            api.delete_original(token).await?;
            api.followup(token, &json(&ephemeral(first))).await?;
        }
        (Origin::Click, Delivery::NewMessage) => match progress {
            Some(id) => api.edit_followup(token, id, &json(&first)).await?,
            None => {
                api.followup(token, &json(&first)).await?;
            }
        },
        (Origin::Click, Delivery::ReplaceOrigin | Delivery::Ephemeral) => {
            if let Some(id) = progress {
                api.delete_followup(token, id).await?;
            }
            if reply.delivery == Delivery::ReplaceOrigin {
                api.edit_original(token, &json(&first)).await?;
            } else {
                api.followup(token, &json(&ephemeral(first))).await?;
            }
        }
    }
    let private = reply.delivery == Delivery::Ephemeral;
    for message in rest {
        let message = if private {
            ephemeral(message.clone())
        } else {
            message.clone()
        };
        api.followup(token, &json(&message)).await?;
    }
    Ok(())
}

fn ephemeral(mut message: Message) -> Message {
    message.flags = Some(EPHEMERAL);
    message
}

fn json(message: &Message) -> Value {
    serde_json::to_value(message).unwrap_or(Value::Null)
}

fn log_failure(what: &str, result: Result<(), ApiError>) {
    if let Err(error) = result {
        tracing::error!(error = %error, "cannot deliver {what} to Discord");
    }
}

//! One invocation, after Slack has been answered: run it, show its progress in one message,
//! and deliver the final reply where [`Delivery`] says.
//!
//! The progress message is posted with the first snapshot and updated (coalesced, at most
//! once per `progress_interval`) as steps finish; a `NewMessage` reply ends as that same
//! message, so the channel keeps one clean report.

use slack_morphism::prelude::*;
use tokio::sync::watch;
use tracing::Instrument;

use super::api::{ApiError, ResponseKind};
use super::events::Origin;
use super::{Slack, blocks};
use crate::chat::Invocation;
use crate::render::{Delivery, Reply};

impl Slack {
    /// Run `inv` and post its reply; errors go to the log, never back to the caller.
    pub(crate) async fn run(self, inv: Invocation, origin: Origin) {
        // A slash command was acknowledged in Slack's response to it; a click or a mention
        // gets an empty 200, so its invoker hears here that something is happening (and
        // does not click again).
        if origin.clicked.is_some() || origin.response_url.is_none() {
            let this = self.clone();
            let (inv, origin) = (inv.clone(), origin.clone());
            tokio::spawn(async move { this.acknowledge(&inv, &origin).await }.in_current_span());
        }
        let (tx, rx) = watch::channel(None::<Reply>);
        let updater = tokio::spawn(
            self.clone()
                .show_progress(inv.channel.id.clone(), rx)
                .in_current_span(),
        );
        let reply = {
            let on_progress = |snapshot: &Reply| {
                tx.send_replace(Some(snapshot.clone()));
            };
            self.bot().handle(&inv, &on_progress).await
        };
        drop(tx);
        let progress_ts = match updater.await {
            Ok(ts) => ts,
            Err(error) => {
                tracing::error!(%error, "the Slack progress task failed");
                None
            }
        };
        self.deliver_final(&inv, &origin, &reply, progress_ts).await;
    }

    /// Deliver a finished reply to `inv` where its [`Delivery`] says and carry out its
    /// effects, as [`Slack::start`] does once the core has answered (no progress message).
    pub async fn deliver(&self, inv: &Invocation, origin: &Origin, reply: &Reply) {
        self.deliver_final(inv, origin, reply, None).await;
    }

    /// Post the first snapshot, then update it with later ones until the sender is dropped.
    /// Returns the progress message's timestamp, if one was posted.
    async fn show_progress(
        self,
        channel: String,
        mut rx: watch::Receiver<Option<Reply>>,
    ) -> Option<SlackTs> {
        let mut ts: Option<SlackTs> = None;
        while rx.changed().await.is_ok() {
            let Some(snapshot) = rx.borrow_and_update().clone() else {
                continue;
            };
            let content = blocks::message(&snapshot);
            match &ts {
                None => match self.api().post_message(&channel, content).await {
                    Ok(posted) => ts = Some(posted),
                    Err(error) => {
                        log_failure("posting the progress message", &error);
                        // Without a message to update, further snapshots are noise.
                        return None;
                    }
                },
                Some(posted) => {
                    if let Err(error) = self.api().update(&channel, posted, content).await {
                        log_failure("updating the progress message", &error);
                    }
                }
            }
            // Snapshots that arrive meanwhile collapse into the latest.
            tokio::time::sleep(self.tuning().progress_interval).await;
        }
        ts
    }

    /// The reply where its [`Delivery`] says, then what its effects ask for.
    async fn deliver_final(
        &self,
        inv: &Invocation,
        origin: &Origin,
        reply: &Reply,
        progress_ts: Option<SlackTs>,
    ) {
        self.deliver_reply(inv, origin, reply, progress_ts).await;
        if !reply.effects.is_empty() {
            self.apply_effects(&inv.channel.id, &reply.effects).await;
        }
    }

    async fn deliver_reply(
        &self,
        inv: &Invocation,
        origin: &Origin,
        reply: &Reply,
        progress_ts: Option<SlackTs>,
    ) {
        let channel = inv.channel.id.as_str();
        let content = blocks::message(reply);
        let api = self.api();
        match reply.delivery {
            Delivery::NewMessage => {
                self.post_or_update(origin, channel, content, progress_ts.as_ref())
                    .await;
                return;
            }
            Delivery::ReplaceOrigin => match &origin.clicked {
                Some(clicked) if !clicked.ephemeral => {
                    if let Err(error) = api
                        .update(&clicked.channel, &clicked.ts, content.clone())
                        .await
                    {
                        // Not the bot's message, or gone: the response_url can still replace it.
                        log_failure("replacing the clicked message", &error);
                        self.respond(origin, &content, ResponseKind::ReplaceOriginal)
                            .await;
                    }
                }
                Some(_) if origin.response_url.is_some() => {
                    self.respond(origin, &content, ResponseKind::ReplaceOriginal)
                        .await;
                }
                _ => {
                    self.post_or_update(origin, channel, content, progress_ts.as_ref())
                        .await;
                    return;
                }
            },
            Delivery::Ephemeral => {
                if origin.response_url.is_some() {
                    self.respond(origin, &content, ResponseKind::Ephemeral)
                        .await;
                } else if let Err(error) = api.post_ephemeral(channel, &inv.user.id, content).await
                {
                    log_failure("posting the ephemeral reply", &error);
                }
            }
        }
        // The reply went elsewhere: the progress message would be a stale duplicate.
        if let Some(ts) = progress_ts
            && let Err(error) = api.delete(channel, &ts).await
        {
            log_failure("deleting the progress message", &error);
        }
    }

    /// The final state of the progress message, or a new message when there was none; the
    /// response_url as a last resort (it works where the bot was not invited).
    async fn post_or_update(
        &self,
        origin: &Origin,
        channel: &str,
        content: SlackMessageContent,
        progress_ts: Option<&SlackTs>,
    ) {
        let result = match progress_ts {
            Some(ts) => self.api().update(channel, ts, content.clone()).await,
            None => self
                .api()
                .post_message(channel, content.clone())
                .await
                .map(|_| ()),
        };
        if let Err(error) = result {
            log_failure("posting the reply", &error);
            if origin.response_url.is_some() {
                self.respond(origin, &content, ResponseKind::InChannel)
                    .await;
            }
        }
    }

    /// The acknowledgement, only to the invoker.
    async fn acknowledge(&self, inv: &Invocation, origin: &Origin) {
        let content = SlackMessageContent::new().with_text(self.bot().acknowledgement(inv));
        match &origin.response_url {
            Some(_) => {
                self.respond(origin, &content, ResponseKind::Ephemeral)
                    .await
            }
            None => {
                if let Err(error) = self
                    .api()
                    .post_ephemeral(&inv.channel.id, &inv.user.id, content)
                    .await
                {
                    log_failure("acknowledging", &error);
                }
            }
        }
    }

    async fn respond(&self, origin: &Origin, content: &SlackMessageContent, kind: ResponseKind) {
        let Some(url) = &origin.response_url else {
            return;
        };
        if let Err(error) = self.api().respond(url, content, kind).await {
            log_failure("answering through the response_url", &error);
        }
    }
}

fn log_failure(what: &str, error: &ApiError) {
    tracing::warn!(error = %error, "Slack: {what} failed");
}

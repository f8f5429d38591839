//! What a reply asks of Slack besides showing itself ([`Effect`]): an incident channel, the
//! incident summary kept current in one message, a file upload; and Slack as an [`Outbox`]
//! for what the core posts unprompted (alert-opened incidents).

use std::collections::HashMap;

use futures::future::BoxFuture;
use slack_morphism::prelude::*;

use super::api::ApiError;
use super::{Slack, blocks};
use crate::chat::{Outbox, OutboxError, Platform, UserRef};
use crate::render::{Effect, Reply};

/// The platform name incidents remember Slack channels and messages under.
const PLATFORM: &str = "slack";
/// How many `-2`, `-3`, ... suffixes are tried when a channel name is taken.
const NAME_ATTEMPTS: usize = 20;
/// Slack's longest channel name.
const MAX_CHANNEL_NAME: usize = 80;

impl Slack {
    /// Carry out `effects` of a reply delivered in `channel`. Channels are opened first, so
    /// a summary in the same reply lands in the incident's new channel.
    pub(crate) async fn apply_effects(&self, channel: &str, effects: &[Effect]) {
        let mut opened: HashMap<&str, String> = HashMap::new();
        for effect in effects {
            if let Effect::OpenChannel {
                incident,
                name,
                topic,
                invite,
            } = effect
                && let Some(id) = self.open_channel(incident, name, topic, invite).await
            {
                opened.insert(incident.as_str(), id);
            }
        }
        for effect in effects {
            match effect {
                Effect::OpenChannel { .. } => {}
                Effect::Summary { incident, summary } => {
                    let target = opened
                        .get(incident.as_str())
                        .map_or(channel, |c| c.as_str());
                    self.bot()
                        .keep_summary(self, incident, target, summary)
                        .await;
                }
                Effect::Attach { filename, content } => {
                    if let Err(error) = self.api().upload(channel, filename, content).await {
                        tracing::warn!(%error, filename, "Slack: uploading a file failed");
                    }
                }
            }
        }
    }

    /// Create the incident's channel (the next free `-N` name when taken), set its topic,
    /// invite people, and bind it to the incident. The new channel's id.
    async fn open_channel(
        &self,
        incident: &str,
        name: &str,
        topic: &str,
        invite: &[String],
    ) -> Option<String> {
        let base = channel_name(name);
        let mut created = None;
        for attempt in 1..=NAME_ATTEMPTS {
            let candidate = candidate_name(&base, attempt);
            match self.api().create_channel(&candidate).await {
                Ok(id) => {
                    created = Some(id);
                    break;
                }
                Err(error) if error.code() == Some("name_taken") => continue,
                Err(error) => {
                    tracing::warn!(%error, incident, "Slack: creating the incident channel failed");
                    return None;
                }
            }
        }
        let Some(id) = created else {
            tracing::warn!(
                incident,
                name = %base,
                "Slack: every incident channel name tried is taken"
            );
            return None;
        };
        if let Err(error) = self.api().set_topic(&id, topic).await {
            tracing::warn!(%error, incident, "Slack: setting the incident channel topic failed");
        }
        if !invite.is_empty() {
            match self.api().invite(&id, invite).await {
                Ok(()) => {}
                Err(error) if error.code() == Some("already_in_channel") => {}
                Err(error) => {
                    tracing::warn!(%error, incident, "Slack: inviting people to the incident channel failed")
                }
            }
        }
        self.bot().bind_channel(incident, PLATFORM, &id).await;
        Some(id)
    }

    /// Add the message at `ts` in `channel` to the timeline of the incident bound there.
    pub(crate) async fn pin(&self, channel: &str, user: &str, ts: &str) {
        // Most pins are in channels without an incident: skip the history call for those.
        match self.bot().store().incident_in(PLATFORM, channel).await {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "incident lookup for a 📌 failed");
                return;
            }
        }
        let text = match self.api().message_text(channel, ts).await {
            Ok(Some(text)) if !text.trim().is_empty() => super::events::unescape(text.trim()),
            Ok(Some(_)) => format!("(a message without text, ts {ts})"),
            Ok(None) => {
                tracing::info!("the 📌'd message is gone; nothing pinned");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "Slack: reading the 📌'd message failed (channels:history / groups:history scopes?)");
                return;
            }
        };
        let user = UserRef {
            id: user.to_string(),
            // The event carries no display name; the id is what the timeline can trust.
            name: user.to_string(),
        };
        if self.bot().pin(Platform::Slack, channel, user, &text).await {
            tracing::info!("message pinned to the incident timeline");
        }
    }
}

/// A valid Slack channel name from `name`: lower-case letters, digits, `-` and `_`, at most
/// 80 characters.
fn channel_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out = out.trim_matches('-').to_string();
    if out.is_empty() {
        out = "incident".to_string();
    }
    truncate(&out, MAX_CHANNEL_NAME).to_string()
}

/// `base` for the first attempt, then `base-2`, `base-3`, ... cut to fit 80 characters.
fn candidate_name(base: &str, attempt: usize) -> String {
    if attempt <= 1 {
        return base.to_string();
    }
    let suffix = format!("-{attempt}");
    format!(
        "{}{suffix}",
        truncate(base, MAX_CHANNEL_NAME - suffix.len()).trim_end_matches('-')
    )
}

/// `text` cut to at most `max` bytes (channel names are ASCII, so this is exact).
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

fn outbox_error(error: ApiError) -> OutboxError {
    OutboxError {
        platform: Platform::Slack,
        message: error.to_string(),
    }
}

impl Outbox for Slack {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    fn post<'a>(
        &'a self,
        channel: &'a str,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<String, OutboxError>> {
        Box::pin(async move {
            let ts = self
                .api()
                .post_message(channel, blocks::message(reply))
                .await
                .map_err(outbox_error)?;
            Ok(ts.0)
        })
    }

    fn update<'a>(
        &'a self,
        channel: &'a str,
        message: &'a str,
        reply: &'a Reply,
    ) -> BoxFuture<'a, Result<(), OutboxError>> {
        Box::pin(async move {
            self.api()
                .update(
                    channel,
                    &SlackTs(message.to_string()),
                    blocks::message(reply),
                )
                .await
                .map_err(outbox_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_fit_slack() {
        assert_eq!(channel_name("INC-7 KV Cache!"), "inc-7-kv-cache");
        assert_eq!(channel_name("!!!"), "incident");
        let long = "x".repeat(200);
        assert_eq!(channel_name(&long).len(), 80);
        assert_eq!(candidate_name("inc-7", 1), "inc-7");
        assert_eq!(candidate_name("inc-7", 3), "inc-7-3");
        let taken = candidate_name(&channel_name(&long), 12);
        assert!(taken.len() <= 80 && taken.ends_with("-12"), "{taken}");
    }
}

//! Slack events as [`Invocation`]s: a slash command, a button click, a mention.

use slack_morphism::prelude::*;

use crate::chat::{ChannelRef, Invocation, ParseError, Platform, UserRef};

/// Where the answer to an invocation can go besides the channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The command's or click's `response_url`, when Slack gave one.
    pub response_url: Option<SlackResponseUrl>,
    /// The message whose button was clicked.
    pub clicked: Option<ClickedMessage>,
}

/// The message that held a clicked button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickedMessage {
    /// Its channel.
    pub channel: String,
    /// Its timestamp, Slack's message id.
    pub ts: SlackTs,
    /// Ephemeral messages cannot be edited with chat.update, only through the response_url.
    pub ephemeral: bool,
}

/// Why a Slack payload cannot become an invocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The command text does not parse.
    #[error("cannot read that command: {0}; try /help")]
    Parse(#[from] ParseError),
    /// A payload lacks something Firebreak needs.
    #[error("the Slack payload has no {0}")]
    Missing(&'static str),
}

/// A slash command: `/triage` with text `model-server` is `/triage model-server`.
/// `user_name` is the form's `user_name` field, which slack-morphism's model leaves out.
pub fn command_invocation(
    event: &SlackCommandEvent,
    user_name: Option<&str>,
) -> Result<(Invocation, Origin), EventError> {
    let line = format!(
        "{} {}",
        event.command.0,
        unescape(event.text.as_deref().unwrap_or(""))
    );
    let user = UserRef {
        id: event.user_id.0.clone(),
        name: user_name.unwrap_or(&event.user_id.0).to_string(),
    };
    let channel = ChannelRef {
        id: event.channel_id.0.clone(),
    };
    let inv = Invocation::from_text(Platform::Slack, user, channel, &line)?;
    let origin = Origin {
        response_url: Some(event.response_url.clone()),
        clicked: None,
    };
    Ok((inv, origin))
}

/// A button click: the clicked button's value is the command it runs, run as the clicker.
pub fn click_invocation(
    event: &SlackInteractionBlockActionsEvent,
) -> Result<(Invocation, Origin), EventError> {
    let command = event
        .actions
        .iter()
        .flatten()
        .find_map(|action| action.value.as_deref())
        .ok_or(EventError::Missing("button value (actions[].value)"))?;
    let clicker = event.user.as_ref().ok_or(EventError::Missing("user"))?;
    let name = clicker
        .username
        .as_deref()
        .or(clicker.name.as_deref())
        .unwrap_or(&clicker.id.0);
    let container = match &event.container {
        SlackInteractionActionContainer::Message(message) => Some((
            message.channel_id.as_ref(),
            &message.message_ts,
            message.is_ephemeral.unwrap_or(false),
        )),
        SlackInteractionActionContainer::MessageAttachment(message) => Some((
            message.channel_id.as_ref(),
            &message.message_ts,
            message.is_ephemeral.unwrap_or(false),
        )),
        SlackInteractionActionContainer::View(_) => None,
    };
    let channel = event
        .channel
        .as_ref()
        .map(|c| c.id.0.clone())
        .or_else(|| container.and_then(|(c, _, _)| c.map(|c| c.0.clone())))
        .ok_or(EventError::Missing("channel"))?;
    let inv = Invocation::from_text(
        Platform::Slack,
        UserRef {
            id: clicker.id.0.clone(),
            name: name.to_string(),
        },
        ChannelRef {
            id: channel.clone(),
        },
        command,
    )?;
    let origin = Origin {
        response_url: event.response_url.clone(),
        clicked: container.map(|(_, ts, ephemeral)| ClickedMessage {
            channel,
            ts: ts.clone(),
            ephemeral,
        }),
    };
    Ok((inv, origin))
}

/// A mention, `@Firebreak triage model-server`: the text after the mention is the command;
/// a bare mention asks for help.
pub fn mention_invocation(
    event: &SlackAppMentionEvent,
) -> Result<(Invocation, Origin), EventError> {
    let text = event.content.text.as_deref().unwrap_or("");
    let command = unescape(&strip_mentions(text));
    let command = if command.is_empty() { "help" } else { &command };
    let inv = Invocation::from_text(
        Platform::Slack,
        UserRef {
            id: event.user.0.clone(),
            // The event carries no display name; the id is what the audit log can trust.
            name: event.user.0.clone(),
        },
        ChannelRef {
            id: event.channel.0.clone(),
        },
        command,
    )?;
    Ok((inv, Origin::default()))
}

/// The text without the leading `<@U123>` mentions.
fn strip_mentions(text: &str) -> String {
    let mut rest = text.trim_start();
    while let Some(after) = rest.strip_prefix("<@") {
        match after.split_once('>') {
            Some((_, tail)) => rest = tail.trim_start(),
            None => break,
        }
    }
    rest.trim().to_string()
}

/// Slack escapes `&`, `<` and `>` in message text.
pub(crate) fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_stripped() {
        assert_eq!(
            strip_mentions("<@U0BOT> triage model-server"),
            "triage model-server"
        );
        assert_eq!(strip_mentions("  <@U0BOT|firebreak>   "), "");
        assert_eq!(strip_mentions("/help"), "/help");
    }
}

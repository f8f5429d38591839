//! What the core knows of chat: who asked, where, and what they typed or clicked.
//!
//! Adapters (the console here; Slack and Discord beside it) translate platform events into an
//! [`Invocation`] and render a [`crate::render::Reply`] back. Nothing below this line knows
//! which platform it serves.
//!
//! An adapter's whole contract with the core:
//! - A typed command or a button click becomes one `Invocation` ([`Invocation::from_text`] on
//!   the command text, or on the clicked [`crate::render::Button`]'s `command`, which adapters
//!   carry as the button's opaque value), with the platform's user id, display name and channel.
//! - While [`crate::Bot::handle`] runs, [`crate::Bot::acknowledgement`] is what to say at once;
//!   `on_progress` snapshots (`in_progress: true`) update one message in place; the returned
//!   reply is the final state of that message.
//! - [`crate::render::Delivery`] says where a reply goes: a new message, in place of the
//!   message whose button was clicked, or only to the invoker.
// Outside text flows through here: no byte slicing or indexing that can panic on it.
#![cfg_attr(not(test), warn(clippy::string_slice, clippy::indexing_slicing))]

pub mod access;
pub mod alertmanager;
pub mod console;
pub mod discord;
pub mod slack;

/// The person behind an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserRef {
    /// Platform user id (`U024BE7LH` on Slack, a snowflake on Discord, a name on the console).
    pub id: String,
    /// Display name, for replies and the audit log.
    pub name: String,
}

/// Where an invocation came from and where its reply goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelRef {
    /// Platform channel id.
    pub id: String,
}

/// Which adapter an invocation arrived through. The core records it (the audit log says where
/// a decision was made) and never branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// The local console chat.
    Console,
    /// Slack, over HTTP or Socket Mode.
    Slack,
    /// Discord, over the interactions endpoint or the gateway.
    Discord,
    /// An Alertmanager webhook.
    Alertmanager,
}

impl Platform {
    /// Lower-case name, as stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Console => "console",
            Platform::Slack => "slack",
            Platform::Discord => "discord",
            Platform::Alertmanager => "alertmanager",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One command given to Firebreak, typed or clicked, on any platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Which adapter it came through.
    pub platform: Platform,
    /// Who.
    pub user: UserRef,
    /// Where.
    pub channel: ChannelRef,
    /// The command name without its slash, lower-cased: `triage`, `incident`, ...
    pub command: String,
    /// Whitespace-separated arguments, quotes removed.
    pub args: Vec<String>,
    /// The incident this was run in, when the channel belongs to one.
    pub incident: Option<String>,
}

/// Why a line of text is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line is empty.
    #[error("empty command")]
    Empty,
    /// A quote was opened and never closed.
    #[error("unclosed quote in `{0}`")]
    UnclosedQuote(String),
}

impl Invocation {
    /// Parse a typed line like `/triage model-server` (the slash is optional) into an invocation.
    pub fn from_text(
        platform: Platform,
        user: UserRef,
        channel: ChannelRef,
        line: &str,
    ) -> Result<Invocation, ParseError> {
        let mut words = split_words(line)?.into_iter();
        let command = words.next().ok_or(ParseError::Empty)?;
        Ok(Invocation {
            platform,
            user,
            channel,
            command: command.trim_start_matches('/').to_lowercase(),
            args: words.collect(),
            incident: None,
        })
    }

    /// The arguments joined back into one string, for free text like a note or a title.
    pub fn rest(&self) -> String {
        self.args.join(" ")
    }
}

/// Split on whitespace, keeping "double" or 'single' quoted words together.
pub fn split_words(line: &str) -> Result<Vec<String>, ParseError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(ParseError::UnclosedQuote(line.trim().to_string()));
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserRef {
        UserRef {
            id: "alice".into(),
            name: "alice".into(),
        }
    }

    fn here() -> ChannelRef {
        ChannelRef {
            id: "console".into(),
        }
    }

    #[test]
    fn parses_slash_commands_with_quotes() {
        let inv = Invocation::from_text(
            Platform::Console,
            user(),
            here(),
            r#"/Incident declare sev2 "KV cache full""#,
        )
        .unwrap();
        assert_eq!(inv.command, "incident");
        assert_eq!(inv.args, vec!["declare", "sev2", "KV cache full"]);
    }

    #[test]
    fn refuses_empty_and_unclosed() {
        assert_eq!(
            Invocation::from_text(Platform::Console, user(), here(), "   "),
            Err(ParseError::Empty)
        );
        assert!(matches!(
            Invocation::from_text(Platform::Console, user(), here(), "/note 'oops"),
            Err(ParseError::UnclosedQuote(_))
        ));
    }
}

/// Why a message could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("{platform}: {message}")]
pub struct OutboxError {
    /// Which platform.
    pub platform: Platform,
    /// What went wrong, e.g. the Web API's error code.
    pub message: String,
}

/// Posting without being asked: how the core reaches a channel when no command is being
/// answered (an alert-opened incident). Each chat adapter implements it once.
pub trait Outbox: Send + Sync {
    /// The platform it posts to.
    fn platform(&self) -> Platform;

    /// Post `reply` in `channel`; returns the platform's id for the new message.
    fn post<'a>(
        &'a self,
        channel: &'a str,
        reply: &'a crate::render::Reply,
    ) -> futures::future::BoxFuture<'a, Result<String, OutboxError>>;

    /// Replace message `message` in `channel` with `reply`.
    fn update<'a>(
        &'a self,
        channel: &'a str,
        message: &'a str,
        reply: &'a crate::render::Reply,
    ) -> futures::future::BoxFuture<'a, Result<(), OutboxError>>;
}

//! What the core knows of chat: who asked, where, and what they typed or clicked.
//!
//! Adapters (the console here; Slack and Discord beside it) translate platform events into an
//! [`Invocation`] and render a [`crate::render::Reply`] back. Nothing below this line knows
//! which platform it serves.

pub mod console;

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

/// One command given to Firebreak, typed or clicked, on any platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
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
        user: UserRef,
        channel: ChannelRef,
        line: &str,
    ) -> Result<Invocation, ParseError> {
        let mut words = split_words(line)?.into_iter();
        let command = words.next().ok_or(ParseError::Empty)?;
        Ok(Invocation {
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
        let inv =
            Invocation::from_text(user(), here(), r#"/Incident declare sev2 "KV cache full""#)
                .unwrap();
        assert_eq!(inv.command, "incident");
        assert_eq!(inv.args, vec!["declare", "sev2", "KV cache full"]);
    }

    #[test]
    fn refuses_empty_and_unclosed() {
        assert_eq!(
            Invocation::from_text(user(), here(), "   "),
            Err(ParseError::Empty)
        );
        assert!(matches!(
            Invocation::from_text(user(), here(), "/note 'oops"),
            Err(ParseError::UnclosedQuote(_))
        ));
    }
}

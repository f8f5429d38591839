//! A [`Reply`] as Discord messages: embeds coloured by severity, action rows of buttons.
//!
//! Discord's limits are met by splitting where a reader loses nothing (a long report becomes
//! several embeds, then several messages) and by truncating visibly where it must
//! (`… (truncated)`), never silently:
//! - 4,096 characters of embed description, 256 of title, 25 fields of 1,024 characters
//!   (names 256), 6,000 characters across all embeds of a message, 10 embeds a message;
//! - 2,000 characters of content;
//! - 5 buttons a row, 5 rows, labels of 80 characters, `custom_id` of 100 characters.
//!
//! A button's `custom_id` is its command, handed back verbatim on a click. A command longer
//! than 100 characters cannot be carried: the button is left out and the embed says so, with
//! the command to type instead. Discord has no confirmation dialog: a button's confirmation
//! question is shown as a `⚠` line in the last embed, and its label gets a `⚠` prefix.

use serde::{Deserialize, Serialize};

use crate::render::{Block, Button, ButtonStyle, Reply, Severity};

/// Characters of message content.
pub const MAX_CONTENT: usize = 2000;
/// Characters of an embed title.
pub const MAX_TITLE: usize = 256;
/// Characters of an embed description.
pub const MAX_DESCRIPTION: usize = 4096;
/// Fields in one embed.
pub const MAX_FIELDS: usize = 25;
/// Characters of a field name.
pub const MAX_FIELD_NAME: usize = 256;
/// Characters of a field value.
pub const MAX_FIELD_VALUE: usize = 1024;
/// Characters across every embed of one message.
pub const MAX_MESSAGE_EMBED_CHARS: usize = 6000;
/// Embeds in one message.
pub const MAX_EMBEDS: usize = 10;
/// Buttons in one action row.
pub const MAX_ROW: usize = 5;
/// Action rows in one message.
pub const MAX_ROWS: usize = 5;
/// Characters of a button label.
pub const MAX_LABEL: usize = 80;
/// Characters of a component `custom_id`.
pub const MAX_CUSTOM_ID: usize = 100;
/// Messages one reply may become; the rest is cut, visibly.
pub const MAX_MESSAGES: usize = 4;

/// What marks a cut.
pub const TRUNCATED: &str = "… (truncated)";

/// Message flag: only the invoking user sees it.
pub const EPHEMERAL: u64 = 64;

/// One message to create or edit (the JSON body of the webhook calls).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Message {
    /// Plain content; empty for embed-only messages.
    pub content: String,
    /// Embeds, in order.
    pub embeds: Vec<Embed>,
    /// Action rows.
    pub components: Vec<ActionRow>,
    /// Message flags ([`EPHEMERAL`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub flags: Option<u64>,
    /// Who the message may ping. Always sent, and empty by default: text Firebreak echoes
    /// (a service name, a note, a title) must not turn `@everyone` or `<@&role>` into a page.
    #[serde(default)]
    pub allowed_mentions: AllowedMentions,
}

/// Discord's `allowed_mentions`: no mention kind is parsed from the text; only the user ids
/// listed here, where Firebreak means to ping someone, would be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AllowedMentions {
    /// Mention kinds parsed from the content (`users`, `roles`, `everyone`): always empty.
    pub parse: Vec<String>,
    /// User ids that may be pinged.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub users: Vec<String>,
}

/// The `allowed_mentions` value for a message that pings nobody.
pub fn no_mentions() -> serde_json::Value {
    serde_json::json!({ "parse": [] })
}

/// One embed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Embed {
    /// Title (the reply's, on the first embed only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub title: Option<String>,
    /// Markdown body.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub description: String,
    /// Side colour, from the severity.
    pub color: u32,
    /// Key/value fields.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub fields: Vec<Field>,
}

/// An embed field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Key.
    pub name: String,
    /// Value.
    pub value: String,
    /// Side by side with its neighbours.
    pub inline: bool,
}

/// A row of up to five buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRow {
    /// Always 1 (action row).
    #[serde(rename = "type")]
    pub kind: u8,
    /// The buttons.
    pub components: Vec<DiscordButton>,
}

/// A button component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscordButton {
    /// Always 2 (button).
    #[serde(rename = "type")]
    pub kind: u8,
    /// 1 primary, 2 secondary, 4 danger.
    pub style: u8,
    /// Label.
    pub label: String,
    /// The command a click runs.
    pub custom_id: String,
}

/// The embed colour of a severity.
pub fn colour(severity: Severity) -> u32 {
    match severity {
        Severity::Ok => 0x2E_CC_71,
        Severity::Info => 0x34_98_DB,
        Severity::Warning => 0xE6_7E_22,
        Severity::Critical => 0xE7_4C_3C,
    }
}

/// Discord's button style for ours.
pub fn button_style(style: ButtonStyle) -> u8 {
    match style {
        ButtonStyle::Primary => 1,
        ButtonStyle::Danger => 4,
        ButtonStyle::Default => 2,
    }
}

/// Render a reply as one or more messages; buttons go on the last one.
pub fn render(reply: &Reply) -> Vec<Message> {
    let colour = colour(reply.severity);
    let (rows, notes) = buttons(&reply.buttons);
    let mut embeds = EmbedBuilder::new(colour, truncate(&reply.title, MAX_TITLE));
    for block in &reply.blocks {
        match block {
            Block::Heading { text } => embeds.paragraph(&format!("**{}**", text.trim())),
            Block::Text { text } => embeds.paragraph(text),
            Block::Context { text } => embeds.paragraph(&subtext(text)),
            Block::Code { text } => {
                for chunk in code_chunks(text, MAX_DESCRIPTION) {
                    embeds.paragraph(&chunk);
                }
            }
            Block::Fields { fields } => {
                for (name, value) in fields {
                    embeds.field(name, value);
                }
            }
        }
    }
    for note in notes {
        embeds.paragraph(&note);
    }
    let mut messages = pack(embeds.finish());
    if let Some(last) = messages.last_mut() {
        last.components = rows;
    }
    messages
}

/// A progress snapshot: only what fits in one message, without buttons.
pub fn render_progress(reply: &Reply) -> Message {
    let mut messages = render(reply).into_iter();
    let mut first = messages.next().unwrap_or_default();
    first.components.clear();
    if messages.next().is_some()
        && let Some(last) = first.embeds.last_mut()
    {
        push_line(
            &mut last.description,
            "-# … more when the report is done",
            MAX_DESCRIPTION,
        );
    }
    first
}

/// Plain text as a message (an acknowledgement, an error), cut to the content limit.
pub fn text_message(text: &str) -> Message {
    Message {
        content: truncate(text, MAX_CONTENT),
        ..Message::default()
    }
}

fn subtext(text: &str) -> String {
    text.lines()
        .map(|line| format!("-# {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Up to 25 buttons in rows of five; notes for what could not be a button.
fn buttons(buttons: &[Button]) -> (Vec<ActionRow>, Vec<String>) {
    let mut notes = Vec::new();
    let mut accepted: Vec<DiscordButton> = Vec::new();
    let mut left_out = Vec::new();
    for button in buttons {
        if button.command.chars().count() > MAX_CUSTOM_ID {
            notes.push(format!(
                "⚠ The **{}** button is left out: its command is longer than Discord's {MAX_CUSTOM_ID} characters. Type it instead: `{}`",
                button.label,
                truncate(&button.command, 1000)
            ));
            continue;
        }
        // Discord refuses a message with two components of one custom_id; the same
        // command twice is one action.
        if accepted.iter().any(|b| b.custom_id == button.command) {
            continue;
        }
        if accepted.len() == MAX_ROW * MAX_ROWS {
            left_out.push(format!("`{}`", button.command));
            continue;
        }
        let label = match &button.confirm {
            Some(question) => {
                notes.push(format!("⚠ **{}**: {}", button.label, question));
                format!("⚠ {}", button.label)
            }
            None => button.label.clone(),
        };
        accepted.push(DiscordButton {
            kind: 2,
            style: button_style(button.style),
            label: truncate(&label, MAX_LABEL),
            custom_id: button.command.clone(),
        });
    }
    if !left_out.is_empty() {
        notes.push(format!(
            "{} more actions than Discord shows as buttons; type them: {}",
            left_out.len(),
            left_out.join(", ")
        ));
    }
    let rows = accepted
        .chunks(MAX_ROW)
        .map(|chunk| ActionRow {
            kind: 1,
            components: chunk.to_vec(),
        })
        .collect();
    (rows, notes)
}

/// Builds embeds in display order: paragraphs into descriptions, fields after them, a new
/// embed whenever text follows fields or a limit is reached.
struct EmbedBuilder {
    colour: u32,
    done: Vec<Embed>,
    current: Embed,
}

impl EmbedBuilder {
    fn new(colour: u32, title: String) -> EmbedBuilder {
        EmbedBuilder {
            colour,
            done: Vec::new(),
            current: Embed {
                title: Some(title).filter(|t| !t.is_empty()),
                color: colour,
                ..Embed::default()
            },
        }
    }

    fn next(&mut self) {
        let fresh = Embed {
            color: self.colour,
            ..Embed::default()
        };
        let full = std::mem::replace(&mut self.current, fresh);
        if !is_empty(&full) {
            self.done.push(full);
        }
    }

    fn paragraph(&mut self, text: &str) {
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        for piece in split_text(text, MAX_DESCRIPTION) {
            let separator = if self.current.description.is_empty() {
                0
            } else {
                2
            };
            let fits = self.current.fields.is_empty()
                && chars(&self.current.description) + separator + chars(&piece) <= MAX_DESCRIPTION
                && embed_chars(&self.current) + separator + chars(&piece)
                    <= MAX_MESSAGE_EMBED_CHARS;
            if !fits {
                self.next();
            }
            if !self.current.description.is_empty() {
                self.current.description.push_str("\n\n");
            }
            self.current.description.push_str(&piece);
        }
    }

    fn field(&mut self, name: &str, value: &str) {
        let field = Field {
            name: non_empty(truncate(name, MAX_FIELD_NAME)),
            value: non_empty(truncate(value, MAX_FIELD_VALUE)),
            inline: true,
        };
        let size = chars(&field.name) + chars(&field.value);
        if self.current.fields.len() == MAX_FIELDS
            || embed_chars(&self.current) + size > MAX_MESSAGE_EMBED_CHARS
        {
            self.next();
        }
        self.current.fields.push(field);
    }

    fn finish(mut self) -> Vec<Embed> {
        self.next();
        if self.done.is_empty() {
            self.done.push(Embed {
                color: self.colour,
                description: "(empty reply)".to_string(),
                ..Embed::default()
            });
        }
        self.done
    }
}

/// Group embeds into messages (10 embeds and 6,000 characters each), at most
/// [`MAX_MESSAGES`], marking a cut on the last one kept.
fn pack(embeds: Vec<Embed>) -> Vec<Message> {
    let mut messages: Vec<Message> = Vec::new();
    let mut total = usize::MAX;
    let mut dropped = 0;
    for embed in embeds {
        let size = embed_chars(&embed);
        let last_full = messages
            .last()
            .is_none_or(|m| m.embeds.len() == MAX_EMBEDS || total + size > MAX_MESSAGE_EMBED_CHARS);
        if last_full {
            if messages.len() == MAX_MESSAGES {
                dropped += 1;
                continue;
            }
            messages.push(Message::default());
            total = 0;
        }
        total += size;
        if let Some(message) = messages.last_mut() {
            message.embeds.push(embed);
        }
    }
    if dropped > 0
        && let Some(embed) = messages.last_mut().and_then(|m| m.embeds.last_mut())
    {
        let note =
            format!("{TRUNCATED}: {dropped} more sections did not fit in Discord's messages");
        cut_to_fit(embed, &note);
    }
    messages
}

/// Append `note` to the embed's description, shortening the description if needed so the
/// embed still fits every limit.
fn cut_to_fit(embed: &mut Embed, note: &str) {
    let others = embed_chars(embed) - chars(&embed.description);
    let room = MAX_DESCRIPTION
        .min(MAX_MESSAGE_EMBED_CHARS.saturating_sub(others))
        .saturating_sub(chars(note) + 2);
    if chars(&embed.description) > room {
        embed.description = embed.description.chars().take(room).collect();
    }
    push_line(&mut embed.description, note, MAX_DESCRIPTION);
}

fn push_line(text: &mut String, line: &str, limit: usize) {
    if chars(text) + chars(line) < limit {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line);
    }
}

fn is_empty(embed: &Embed) -> bool {
    embed.title.is_none() && embed.description.is_empty() && embed.fields.is_empty()
}

fn non_empty(text: String) -> String {
    if text.trim().is_empty() {
        "—".to_string()
    } else {
        text
    }
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Characters Discord counts against the 6,000 limit.
pub fn embed_chars(embed: &Embed) -> usize {
    embed.title.as_deref().map_or(0, chars)
        + chars(&embed.description)
        + embed
            .fields
            .iter()
            .map(|f| chars(&f.name) + chars(&f.value))
            .sum::<usize>()
}

/// `text` cut to `limit` characters, ending in [`TRUNCATED`] when cut.
pub fn truncate(text: &str, limit: usize) -> String {
    if chars(text) <= limit {
        return text.to_string();
    }
    let keep = limit.saturating_sub(chars(TRUNCATED));
    let mut cut: String = text.chars().take(keep).collect();
    cut.push_str(TRUNCATED);
    cut
}

/// Split text into pieces of at most `limit` characters, at line breaks where possible.
fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for line in text.split('\n') {
        for part in hard_split(line, limit) {
            if !current.is_empty() && chars(&current) + 1 + chars(&part) > limit {
                pieces.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(&part);
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

fn hard_split(line: &str, limit: usize) -> Vec<String> {
    let all: Vec<char> = line.chars().collect();
    if all.len() <= limit {
        return vec![line.to_string()];
    }
    all.chunks(limit.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// A code block as fenced pieces, each within `limit` characters fences included.
fn code_chunks(text: &str, limit: usize) -> Vec<String> {
    // A fence inside the text would end the block early.
    let text = text.trim_end_matches('\n').replace("```", "`\u{200b}``");
    let fence = "```\n".len() + "\n```".len();
    split_text(&text, limit - fence)
        .into_iter()
        .map(|piece| format!("```\n{piece}\n```"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_visible_and_within_the_limit() {
        let cut = truncate(&"x".repeat(300), MAX_TITLE);
        assert_eq!(cut.chars().count(), MAX_TITLE);
        assert!(cut.ends_with(TRUNCATED));
        assert_eq!(truncate("short", MAX_TITLE), "short");
    }

    #[test]
    fn code_is_fenced_and_split() {
        let text = "line\n".repeat(2000);
        let chunks = code_chunks(&text, MAX_DESCRIPTION);
        assert!(chunks.len() > 1);
        for chunk in &chunks {
            assert!(chunk.starts_with("```\n") && chunk.ends_with("\n```"));
            assert!(chunk.chars().count() <= MAX_DESCRIPTION);
        }
    }
}

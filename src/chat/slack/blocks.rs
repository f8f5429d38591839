//! A [`Reply`] as a Slack message: Block Kit blocks within Slack's limits, plus a text fallback.
//!
//! Limits (Block Kit reference): 50 blocks per message, 150 characters of header text, 3,000
//! characters per section or context text, 10 fields per section of 2,000 characters each, 25
//! elements per actions block, 75 characters of button text, 2,000 of button value. Long text
//! is split across sections; what still does not fit is cut with a visible marker, never
//! dropped silently.

use slack_morphism::prelude::*;

use crate::render::{Block, ButtonStyle, Reply, Severity, text};

/// Blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Characters of a header block's text.
pub const MAX_HEADER: usize = 150;
/// Characters of a section's (or a context element's) text.
pub const MAX_SECTION: usize = 3000;
/// Fields in one section.
pub const MAX_FIELDS: usize = 10;
/// Characters of one field.
pub const MAX_FIELD: usize = 2000;
/// Elements in one actions block.
pub const MAX_ACTIONS: usize = 25;
/// Characters of a button's label.
pub const MAX_BUTTON_LABEL: usize = 75;
/// Characters of a button's value.
pub const MAX_BUTTON_VALUE: usize = 2000;
/// Characters of the plain-text fallback (Slack truncates at 40,000; notifications show far less).
pub const MAX_FALLBACK: usize = 4000;

/// The emoji that stands for a severity in headers and fallbacks.
pub fn severity_emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Ok => ":white_check_mark:",
        Severity::Info => ":information_source:",
        Severity::Warning => ":warning:",
        Severity::Critical => ":red_circle:",
    }
}

/// The message content for `reply`: blocks and a plain-text fallback.
pub fn message(reply: &Reply) -> SlackMessageContent {
    SlackMessageContent::new()
        .with_text(fallback(reply))
        .with_blocks(render(reply))
}

/// The plain-text fallback Slack shows in notifications and to clients without Block Kit.
pub fn fallback(reply: &Reply) -> String {
    let body = escape(&text::render(reply));
    format!(
        "{} {}",
        severity_emoji(reply.severity),
        truncate(&body, MAX_FALLBACK)
    )
}

/// `reply` as Block Kit blocks, within Slack's limits.
pub fn render(reply: &Reply) -> Vec<SlackBlock> {
    let header = SlackHeaderBlock::new(plain(&truncate(
        &format!("{} {}", severity_emoji(reply.severity), reply.title),
        MAX_HEADER,
    )))
    .into();

    let mut body: Vec<SlackBlock> = Vec::new();
    for block in &reply.blocks {
        match block {
            Block::Heading { text } => body.push(section(&truncate(
                &format!("*{}*", escape(text)),
                MAX_SECTION,
            ))),
            Block::Text { text } => {
                for chunk in split(&mrkdwn(text), MAX_SECTION) {
                    body.push(section(&chunk));
                }
            }
            Block::Fields { fields } => {
                for group in fields.chunks(MAX_FIELDS) {
                    let fields = group
                        .iter()
                        .map(|(key, value)| {
                            markdown(&truncate(
                                &format!("*{}*\n{}", escape(key), mrkdwn(value)),
                                MAX_FIELD,
                            ))
                        })
                        .collect();
                    body.push(SlackSectionBlock::new().with_fields(fields).into());
                }
            }
            Block::Code { text } => {
                // mrkdwn has no escape for a fence inside a code block: a zero-width space
                // keeps a ``` in the text (a markdown log line) from closing it early.
                let text = escape(text).replace("```", "`\u{200b}``");
                // The fences take 8 characters of each section's 3,000.
                for chunk in split(&text, MAX_SECTION - 8) {
                    body.push(section(&format!("```\n{chunk}\n```")));
                }
            }
            Block::Context { text } => body.push(context(&truncate(&mrkdwn(text), MAX_SECTION))),
        }
    }

    let mut tail: Vec<SlackBlock> = Vec::new();
    if reply.in_progress {
        tail.push(context(
            ":hourglass_flowing_sand: in progress, this message updates as steps finish",
        ));
    }
    tail.extend(actions(reply));

    // The header, the tail and one marker block must fit beside the body.
    let room = MAX_BLOCKS - 1 - tail.len().min(MAX_BLOCKS - 2);
    if body.len() > room {
        let cut = body.len() - (room - 1);
        body.truncate(room - 1);
        body.push(context(&format!(
            "… (truncated, {cut} more blocks; Slack shows at most {MAX_BLOCKS})"
        )));
    }

    let mut blocks = Vec::with_capacity(1 + body.len() + tail.len());
    blocks.push(header);
    blocks.extend(body);
    blocks.extend(tail);
    blocks.truncate(MAX_BLOCKS);
    blocks
}

/// The reply's buttons as actions blocks of at most 25 buttons each. Each button's value is
/// its command, the opaque id a click hands back.
fn actions(reply: &Reply) -> Vec<SlackBlock> {
    let buttons: Vec<SlackActionBlockElement> = reply
        .buttons
        .iter()
        .enumerate()
        .filter_map(|(i, button)| {
            if button.command.chars().count() > MAX_BUTTON_VALUE {
                tracing::warn!(label = %button.label, "button command longer than Slack allows; button left out");
                return None;
            }
            let mut element = SlackBlockButtonElement::new(plain(&truncate(
                &button.label,
                MAX_BUTTON_LABEL,
            )))
            .with_action_id(SlackActionId(format!("fb-{i}")))
            .with_value(button.command.clone());
            match button.style {
                ButtonStyle::Default => {}
                ButtonStyle::Primary => element = element.with_style(SlackBlockButtonStyle::Primary),
                ButtonStyle::Danger => element = element.with_style(SlackBlockButtonStyle::Danger),
            }
            if let Some(question) = &button.confirm {
                let mut confirm = SlackBlockConfirmItem::new(
                    plain(&truncate(&button.label, 100)),
                    SlackBlockPlainText::new(truncate(question, 300)).into(),
                    plain(&truncate(&button.label, 30)),
                    plain("Cancel"),
                );
                if button.style == ButtonStyle::Danger {
                    confirm = confirm.with_style("danger".to_string());
                }
                element = element.with_confirm(confirm);
            }
            Some(SlackActionBlockElement::Button(element))
        })
        .collect();
    buttons
        .chunks(MAX_ACTIONS)
        .map(|chunk| SlackActionsBlock::new(chunk.to_vec()).into())
        .collect()
}

fn plain(text: &str) -> SlackBlockPlainTextOnly {
    SlackBlockPlainText::new(text.to_string())
        .with_emoji(true)
        .into()
}

fn markdown(text: &str) -> SlackBlockText {
    SlackBlockMarkDownText::new(text.to_string()).into()
}

fn section(text: &str) -> SlackBlock {
    SlackSectionBlock::new().with_text(markdown(text)).into()
}

fn context(text: &str) -> SlackBlock {
    SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
        SlackBlockMarkDownText::new(text.to_string()),
    )])
    .into()
}

/// Slack's mrkdwn from the reply model's light markup: `**bold**` becomes `*bold*`, and the
/// three characters Slack reserves are escaped.
pub fn mrkdwn(text: &str) -> String {
    escape(text).replace("**", "*")
}

/// Escape `&`, `<` and `>`, which Slack reads as entities and links.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` cut to at most `max` characters, the cut said in the text itself.
pub fn truncate(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_string();
    }
    // Keep as much as fits beside the marker, whose length depends on the number in it.
    let mut keep = max.saturating_sub(marker(total).chars().count());
    loop {
        let cut = marker(total - keep);
        if keep + cut.chars().count() <= max || keep == 0 {
            let kept: String = text.chars().take(keep).collect();
            let out = format!("{kept}{cut}");
            return if out.chars().count() <= max {
                out
            } else {
                out.chars().take(max).collect()
            };
        }
        keep -= 1;
    }
}

fn marker(omitted: usize) -> String {
    format!("… (truncated, {omitted} more characters)")
}

/// `text` in pieces of at most `max` characters, broken at line ends where possible.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut current_len = 0;
    for line in text.split_inclusive('\n') {
        let len = line.chars().count();
        if current_len + len > max && !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
            current_len = 0;
        }
        if len > max {
            let chars: Vec<char> = line.chars().collect();
            for piece in chars.chunks(max) {
                chunks.push(piece.iter().collect());
            }
            continue;
        }
        current.push_str(line);
        current_len += len;
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(current);
    }
    chunks
        .into_iter()
        .map(|c| c.trim_end_matches('\n').to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_is_visible_and_within_the_limit() {
        let long = "x".repeat(5000);
        let cut = truncate(&long, 3000);
        assert_eq!(cut.chars().count(), 3000);
        assert!(cut.ends_with("more characters)"), "{cut}");
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn fences_inside_code_do_not_close_the_block() {
        let reply = Reply {
            blocks: vec![Block::Code {
                text: "```rust\nfn main() {}\n```".into(),
            }],
            ..Default::default()
        };
        let rendered = serde_json::to_value(render(&reply)).unwrap();
        let text = rendered[1]["text"]["text"].as_str().unwrap();
        assert!(
            text.starts_with("```\n") && text.ends_with("\n```"),
            "{text}"
        );
        assert_eq!(text.matches("```").count(), 2, "{text}");
    }

    #[test]
    fn split_breaks_at_lines_and_long_lines() {
        let text = format!("{}\n{}\n{}", "a".repeat(6), "b".repeat(6), "c".repeat(20));
        let chunks = split(&text, 10);
        assert!(chunks.iter().all(|c| c.chars().count() <= 10), "{chunks:?}");
        assert_eq!(chunks[0], "aaaaaa");
        assert_eq!(chunks.concat().replace('\n', ""), text.replace('\n', ""));
    }
}

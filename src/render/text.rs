//! Plain-text rendering of a [`Reply`], for the console and for logs.

use std::fmt::Write;

use super::{Block, ButtonStyle, Reply, Severity};

/// Render a reply for a terminal: title with severity, blocks, then buttons as the commands
/// that press them.
pub fn render(reply: &Reply) -> String {
    let mut out = String::new();
    let badge = match reply.severity {
        Severity::Ok => "OK",
        Severity::Info => "INFO",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    };
    let _ = writeln!(out, "== {} [{badge}]", reply.title);
    for block in &reply.blocks {
        match block {
            Block::Heading { text } => {
                let _ = writeln!(out, "\n-- {text}");
            }
            Block::Text { text } => {
                let _ = writeln!(out, "{}", text.replace("**", ""));
            }
            Block::Fields { fields } => {
                let width = fields
                    .iter()
                    .map(|(k, _)| k.chars().count())
                    .max()
                    .unwrap_or(0);
                for (key, value) in fields {
                    let _ = writeln!(out, "  {key:<width$}  {}", value.replace("**", ""));
                }
            }
            Block::Code { text } => {
                for line in text.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Block::Context { text } => {
                let _ = writeln!(out, "  ({text})");
            }
        }
    }
    if !reply.buttons.is_empty() {
        let _ = writeln!(out);
        for button in &reply.buttons {
            let mark = if button.style == ButtonStyle::Danger {
                " (changes the cluster)"
            } else {
                ""
            };
            let _ = writeln!(out, "  [{}] {}{mark}", button.label, button.command);
        }
    }
    out
}

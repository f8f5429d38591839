//! The markup templates write: Markdown's common subset plus one line form for fields.
//!
//! ```text
//! # Title                      first `# ` line: the reply's title
//! ## Heading                   a heading block
//! Key:: value                  a field (consecutive field lines form one fields block)
//! > context                    a context line
//! ```                          fenced code block (verbatim)
//! anything else                text; a blank line ends a paragraph
//! ```
//! Keeping the grammar this small lets one template serve Block Kit, Discord embeds and the
//! console alike.

use super::Block;

/// Parse template output into a title (if the text had a `# ` line) and blocks.
pub fn parse(text: &str) -> (Option<String>, Vec<Block>) {
    let mut title = None;
    let mut blocks = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut code: Option<Vec<&str>> = None;

    fn flush(
        paragraph: &mut Vec<&str>,
        fields: &mut Vec<(String, String)>,
        blocks: &mut Vec<Block>,
    ) {
        if !paragraph.is_empty() {
            blocks.push(Block::Text {
                text: paragraph.join("\n"),
            });
            paragraph.clear();
        }
        if !fields.is_empty() {
            blocks.push(Block::Fields {
                fields: std::mem::take(fields),
            });
        }
    }

    for line in text.lines() {
        if let Some(lines) = code.as_mut() {
            if line.trim_start().starts_with("```") {
                blocks.push(Block::Code {
                    text: lines.join("\n"),
                });
                code = None;
            } else {
                lines.push(line);
            }
            continue;
        }
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            flush(&mut paragraph, &mut fields, &mut blocks);
            code = Some(Vec::new());
        } else if trimmed.is_empty() {
            flush(&mut paragraph, &mut fields, &mut blocks);
        } else if let Some(rest) = trimmed.strip_prefix("## ") {
            flush(&mut paragraph, &mut fields, &mut blocks);
            blocks.push(Block::Heading {
                text: rest.trim().to_string(),
            });
        } else if let Some(rest) = trimmed.strip_prefix("# ") {
            flush(&mut paragraph, &mut fields, &mut blocks);
            if title.is_none() {
                title = Some(rest.trim().to_string());
            } else {
                blocks.push(Block::Heading {
                    text: rest.trim().to_string(),
                });
            }
        } else if let Some(rest) = trimmed.strip_prefix('>') {
            flush(&mut paragraph, &mut fields, &mut blocks);
            blocks.push(Block::Context {
                text: rest.trim().to_string(),
            });
        } else if let Some((key, value)) = field(trimmed) {
            if !paragraph.is_empty() {
                flush(&mut paragraph, &mut fields, &mut blocks);
            }
            fields.push((key.to_string(), value.to_string()));
        } else {
            if !fields.is_empty() {
                flush(&mut paragraph, &mut fields, &mut blocks);
            }
            paragraph.push(line.trim_end());
        }
    }
    // An unterminated fence still shows its content rather than losing it.
    if let Some(lines) = code {
        blocks.push(Block::Code {
            text: lines.join("\n"),
        });
    }
    flush(&mut paragraph, &mut fields, &mut blocks);
    (title, blocks)
}

fn field(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(":: ")?;
    // A key is a short label, not a sentence that happens to contain "::".
    if key.is_empty() || key.len() > 80 {
        return None;
    }
    Some((key.trim(), value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let (title, blocks) = parse(
            "# Triage: model-server\n\n## Pods\nService:: model-server\nNamespace:: ai-production\n\nTwo pods are **down**.\nSecond line.\n\n```\nNAME  READY\nx     0/1\n```\n> took 1.2s\n",
        );
        assert_eq!(title.as_deref(), Some("Triage: model-server"));
        assert_eq!(
            blocks,
            vec![
                Block::Heading {
                    text: "Pods".into()
                },
                Block::Fields {
                    fields: vec![
                        ("Service".into(), "model-server".into()),
                        ("Namespace".into(), "ai-production".into())
                    ]
                },
                Block::Text {
                    text: "Two pods are **down**.\nSecond line.".into()
                },
                Block::Code {
                    text: "NAME  READY\nx     0/1".into()
                },
                Block::Context {
                    text: "took 1.2s".into()
                },
            ]
        );
    }

    #[test]
    fn unterminated_fence_keeps_its_text() {
        let (_, blocks) = parse("```\nkept\n");
        assert_eq!(
            blocks,
            vec![Block::Code {
                text: "kept".into()
            }]
        );
    }
}

//! Block Kit rendering: Slack's limits kept by splitting or visible truncation, and buttons.

use firebreak::chat::slack::blocks::{self, MAX_BLOCKS, MAX_FIELD, MAX_HEADER, MAX_SECTION};
use firebreak::render::{Block, Button, ButtonStyle, Reply, Severity};
use serde_json::Value;

fn render(reply: &Reply) -> Vec<Value> {
    let blocks = blocks::render(reply);
    match serde_json::to_value(blocks).unwrap() {
        Value::Array(blocks) => blocks,
        other => panic!("blocks are an array: {other}"),
    }
}

fn reply(blocks: Vec<Block>, buttons: Vec<Button>) -> Reply {
    Reply {
        title: "Triage: model-server (ai-production)".to_string(),
        severity: Severity::Critical,
        blocks,
        buttons,
        ..Default::default()
    }
}

fn button(label: &str, command: &str, style: ButtonStyle, confirm: Option<&str>) -> Button {
    Button {
        label: label.to_string(),
        command: command.to_string(),
        style,
        confirm: confirm.map(str::to_string),
    }
}

fn text_of(block: &Value) -> String {
    block["text"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_reply_renders_as_header_sections_fields_code_context_and_buttons() {
    let reply = reply(
        vec![
            Block::Heading {
                text: "Evidence".into(),
            },
            Block::Text {
                text: "Verdict: **OOMKilled** <script>".into(),
            },
            Block::Fields {
                fields: vec![("Replicas".into(), "2/4".into())],
            },
            Block::Code {
                text: "vllm: CUDA out of memory".into(),
            },
            Block::Context {
                text: "took 1.2s".into(),
            },
        ],
        vec![button(
            "Mitigate",
            "/mitigate model-server",
            ButtonStyle::Primary,
            None,
        )],
    );
    let blocks = render(&reply);
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(
        text_of(&blocks[0]),
        ":red_circle: Triage: model-server (ai-production)"
    );
    assert_eq!(text_of(&blocks[1]), "*Evidence*");
    assert_eq!(text_of(&blocks[2]), "Verdict: *OOMKilled* &lt;script&gt;");
    assert_eq!(blocks[2]["text"]["type"], "mrkdwn");
    assert_eq!(blocks[3]["fields"][0]["text"], "*Replicas*\n2/4");
    assert_eq!(text_of(&blocks[4]), "```\nvllm: CUDA out of memory\n```");
    assert_eq!(blocks[5]["type"], "context");
    assert_eq!(blocks[5]["elements"][0]["text"], "took 1.2s");
    assert_eq!(blocks[6]["type"], "actions");
    assert_eq!(blocks.len(), 7);

    let fallback = blocks::fallback(&reply);
    assert!(
        fallback.starts_with(":red_circle: == Triage: model-server"),
        "{fallback}"
    );
    assert!(
        fallback.contains("[Mitigate] /mitigate model-server"),
        "{fallback}"
    );
}

#[test]
fn buttons_carry_their_command_style_and_confirmation() {
    let reply = reply(
        Vec::new(),
        vec![
            button(
                "Mitigate",
                "/mitigate model-server",
                ButtonStyle::Primary,
                None,
            ),
            button("Triage", "/triage model-server", ButtonStyle::Default, None),
            button(
                "Roll back",
                "/rollback model-server",
                ButtonStyle::Danger,
                Some("Roll model-server back to revision 41?"),
            ),
        ],
    );
    let blocks = render(&reply);
    let elements = blocks.last().unwrap()["elements"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(elements.len(), 3);
    for (i, element) in elements.iter().enumerate() {
        assert_eq!(element["type"], "button");
        assert_eq!(element["action_id"], format!("fb-{i}"));
    }
    assert_eq!(elements[0]["value"], "/mitigate model-server");
    assert_eq!(elements[0]["style"], "primary");
    assert!(elements[0].get("confirm").is_none());
    assert!(elements[1].get("style").is_none());
    assert_eq!(elements[2]["value"], "/rollback model-server");
    assert_eq!(elements[2]["style"], "danger");
    let confirm = &elements[2]["confirm"];
    assert_eq!(confirm["title"]["type"], "plain_text");
    assert_eq!(
        confirm["text"]["text"],
        "Roll model-server back to revision 41?"
    );
    assert_eq!(confirm["confirm"]["text"], "Roll back");
    assert_eq!(confirm["deny"]["text"], "Cancel");
    assert_eq!(confirm["style"], "danger");
}

#[test]
fn long_text_is_split_across_sections_and_nothing_is_lost() {
    let line = "kv cache usage 0.99 on worker-3, requests waiting 412\n";
    let text = line.repeat(200); // about 10,800 characters
    let blocks = render(&reply(vec![Block::Text { text: text.clone() }], Vec::new()));
    let sections: Vec<String> = blocks[1..].iter().map(text_of).collect();
    assert!(sections.len() >= 4, "{}", sections.len());
    assert!(sections.iter().all(|s| s.chars().count() <= MAX_SECTION));
    assert_eq!(sections.join("\n"), text.trim_end());
}

#[test]
fn long_code_is_split_and_each_piece_fenced() {
    let code = "x".repeat(7000);
    let blocks = render(&reply(vec![Block::Code { text: code }], Vec::new()));
    let sections: Vec<String> = blocks[1..].iter().map(text_of).collect();
    assert_eq!(sections.len(), 3);
    for section in &sections {
        assert!(section.starts_with("```\n") && section.ends_with("\n```"));
        assert!(section.chars().count() <= MAX_SECTION);
    }
}

#[test]
fn too_many_blocks_are_cut_visibly_and_the_buttons_kept() {
    let body = (0..80)
        .map(|i| Block::Text {
            text: format!("finding {i}"),
        })
        .collect();
    let buttons = (0..30)
        .map(|i| {
            button(
                &format!("B{i}"),
                &format!("/help {i}"),
                ButtonStyle::Default,
                None,
            )
        })
        .collect();
    let blocks = render(&reply(body, buttons));
    assert_eq!(blocks.len(), MAX_BLOCKS);
    let actions: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "actions").collect();
    assert_eq!(actions.len(), 2, "30 buttons need two actions blocks");
    assert_eq!(actions[0]["elements"].as_array().unwrap().len(), 25);
    assert_eq!(actions[1]["elements"].as_array().unwrap().len(), 5);
    let marker = &blocks[MAX_BLOCKS - 3];
    assert_eq!(marker["type"], "context");
    let marker = marker["elements"][0]["text"].as_str().unwrap();
    assert!(marker.contains("truncated, 34 more blocks"), "{marker}");
}

#[test]
fn long_headers_and_fields_are_truncated_visibly_and_fields_grouped_by_ten() {
    let mut reply = reply(
        vec![Block::Fields {
            fields: (0..23)
                .map(|i| {
                    (
                        format!("key {i}"),
                        "v".repeat(if i == 0 { 5000 } else { 3 }),
                    )
                })
                .collect(),
        }],
        Vec::new(),
    );
    reply.title = "T".repeat(400);
    let blocks = render(&reply);
    let title = text_of(&blocks[0]);
    assert_eq!(title.chars().count(), MAX_HEADER);
    assert!(title.contains("more characters)"), "{title}");
    let sections = &blocks[1..];
    assert_eq!(sections.len(), 3);
    let counts: Vec<usize> = sections
        .iter()
        .map(|s| s["fields"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, vec![10, 10, 3]);
    let first = sections[0]["fields"][0]["text"].as_str().unwrap();
    assert_eq!(first.chars().count(), MAX_FIELD);
    assert!(first.contains("(truncated, "), "{first}");
}

#[test]
fn progress_snapshots_say_so() {
    let mut snapshot = reply(Vec::new(), Vec::new());
    snapshot.in_progress = true;
    let blocks = render(&snapshot);
    assert!(
        blocks.last().unwrap()["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("in progress")
    );
}

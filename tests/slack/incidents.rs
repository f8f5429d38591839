//! Incidents through Slack, end to end against the fake: an Alertmanager notification opens an
//! incident and announces it in the alerts channel, a rollback is requested and approved there,
//! the incident is resolved and its post-mortem uploaded; a declared incident gets its own
//! channel whose summary stays one message; a 📌 pins a message to the timeline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use firebreak::Bot;
use firebreak::chat::alertmanager::{self, Destination};
use firebreak::chat::slack::{API_URL, BOT_TOKEN, SIGNING_SECRET, Slack, SlackSettings, Tuning};
use serde_json::{Value, json};

use super::fake::{Call, FakeSlack};
use super::{BODY_LIMIT, SECRET, block_actions, button_values};
use crate::support::{SHIPPED_RUNBOOK, bot, demo, sim};

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";
const ALERTS: &str = "C_ALERTS";
const TOKEN: &str = "am-s3cret";

const FIRING: &str = r#"{
  "version": "4", "groupKey": "{}/{}:{alertname=\"VLLMKVCacheFull\"}", "truncatedAlerts": 0,
  "status": "firing", "receiver": "firebreak",
  "groupLabels": {"alertname": "VLLMKVCacheFull"},
  "commonLabels": {"alertname": "VLLMKVCacheFull", "severity": "critical", "service": "model-server"},
  "commonAnnotations": {"summary": "KV cache above 95% on model-server"},
  "externalURL": "http://alertmanager:9093",
  "alerts": [{"status": "firing", "labels": {"alertname": "VLLMKVCacheFull", "pod": "model-server-0"},
              "annotations": {}, "startsAt": "2026-11-28T02:51:00Z", "endsAt": "0001-01-01T00:00:00Z",
              "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a1b2"}]
}"#;

/// Slack's routes and the Alertmanager webhook in one server, announcing on Slack.
struct Story {
    fake: FakeSlack,
    bot: Arc<Bot>,
    url: String,
    client: reqwest::Client,
    commands: usize,
    _sim: firebreak::sim::SimServer,
}

impl Story {
    async fn start() -> Story {
        let fake = FakeSlack::start().await;
        let sim = sim(demo()).await;
        let groups: firebreak::approval::Groups = [(
            "oncall".to_string(),
            vec!["U_ALICE".to_string(), "U_BOB".to_string()],
        )]
        .into_iter()
        .collect();
        let bot = Arc::new(bot(&sim, &[SHIPPED_RUNBOOK]).with_groups(groups));
        let env: std::collections::BTreeMap<String, String> = [
            (BOT_TOKEN, "xoxb-test-bot"),
            (API_URL, fake.api_url.as_str()),
            (SIGNING_SECRET, SECRET),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let settings = SlackSettings::from_env(&env).unwrap().unwrap();
        let tuning = Tuning {
            body_limit: BODY_LIMIT,
            progress_interval: Duration::from_millis(50),
            reconnect_delay: Duration::from_millis(50),
        };
        let slack = Slack::new(Arc::clone(&bot), &settings, tuning).unwrap();
        slack
            .allow_own_workspace()
            .await
            .expect("the fake answers auth.test");
        let destinations = vec![Destination {
            outbox: Arc::new(slack.clone()),
            channel: ALERTS.to_string(),
        }];
        let routes = vec![
            slack.routes().expect("HTTP mode"),
            alertmanager::routes(
                Arc::clone(&bot),
                Some(firebreak::config::Secret::new(TOKEN)),
                destinations,
            ),
        ];
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(firebreak::server::serve(
            listener,
            firebreak::server::app(routes),
            std::future::pending(),
        ));
        Story {
            fake,
            bot,
            url,
            client: reqwest::Client::new(),
            commands: 0,
            _sim: sim,
        }
    }

    async fn signed(&self, path: &str, content_type: &str, body: &str) -> u16 {
        let ts = super::fake::now().to_string();
        let signature = super::fake::sign(SECRET, &ts, body);
        self.client
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body.to_string())
            .send()
            .await
            .expect("Firebreak answers")
            .status()
            .as_u16()
    }

    /// A slash command typed by `user` in `channel`.
    async fn command(&mut self, user: (&str, &str), channel: &str, command: &str, text: &str) {
        self.commands += 1;
        let response_url = self.fake.response_url(&format!("cmd-{}", self.commands));
        let form = serde_urlencoded::to_string([
            ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
            ("team_id", "T0001"),
            ("channel_id", channel),
            ("user_id", user.0),
            ("user_name", user.1),
            ("command", command),
            ("text", text),
            ("api_app_id", "A0FIREBRK"),
            ("response_url", response_url.as_str()),
            (
                "trigger_id",
                &format!("13345224609.738474920.{:x}", self.commands),
            ),
        ])
        .unwrap();
        assert_eq!(self.signed("/slack/commands", FORM, &form).await, 200);
    }
}

/// The ts of a posted or updated message.
fn ts_of(call: &Call) -> String {
    match call.method.as_str() {
        "chat.postMessage" => call.response["ts"].as_str().unwrap_or_default().to_string(),
        _ => call.body["ts"].as_str().unwrap_or_default().to_string(),
    }
}

fn shows(call: &Call, needle: &str) -> bool {
    matches!(call.method.as_str(), "chat.postMessage" | "chat.update")
        && call.body["blocks"].to_string().contains(needle)
}

/// The text of a section of the uploaded Markdown.
fn section<'a>(draft: &'a str, heading: &str) -> &'a str {
    let start = draft
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in the draft:\n{draft}"));
    let rest = &draft[start..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map_or(rest.len(), |i| i + heading.len());
    &rest[..end]
}

#[tokio::test]
async fn alert_to_post_mortem_then_a_declared_incident_channel_and_a_pin() {
    let mut story = Story::start().await;

    // An Alertmanager notification opens INC-1 and announces it in the alerts channel:
    // the summary first, then the automatic triage.
    let response = story
        .client
        .post(format!("{}/alertmanager", story.url))
        .bearer_auth(TOKEN)
        .header("content-type", JSON)
        .body(FIRING)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["incident"], "INC-1");
    let calls = story
        .fake
        .wait_for("the incident summary and the triage report", |calls| {
            calls
                .iter()
                .any(|c| c.body["channel"] == ALERTS && shows(c, "Triage: model-server"))
        })
        .await;
    let posts: Vec<&Call> = calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.body["channel"] == ALERTS)
        .collect();
    assert!(posts.len() >= 2, "{posts:#?}");
    assert!(shows(posts[0], "INC-1"), "{:#}", posts[0].body);
    assert!(
        shows(posts[1], "Triage: model-server"),
        "{:#}",
        posts[1].body
    );
    assert_eq!(posts[0].auth.as_deref(), Some("Bearer xoxb-test-bot"));

    // In the alerts channel (bound to INC-1), alice asks for a rollback: an approval prompt.
    story
        .command(
            ("U_ALICE", "alice"),
            ALERTS,
            "/rollback",
            "model-server undo",
        )
        .await;
    let calls = story
        .fake
        .wait_for("the approval prompt", |calls| {
            calls.iter().any(|c| {
                c.body["channel"] == ALERTS
                    && button_values(&c.body)
                        .iter()
                        .any(|v| v.starts_with("/approve "))
            })
        })
        .await;
    let prompt = calls
        .iter()
        .rev()
        .find(|c| {
            c.body["channel"] == ALERTS
                && button_values(&c.body)
                    .iter()
                    .any(|v| v.starts_with("/approve "))
        })
        .unwrap();
    let prompt_ts = ts_of(prompt);
    let approve = button_values(&prompt.body)
        .into_iter()
        .find(|v| v.starts_with("/approve "))
        .unwrap();
    assert!(
        button_values(&prompt.body)
            .iter()
            .any(|v| v.starts_with("/deny ")),
        "{:#}",
        prompt.body
    );

    // bob clicks Approve: the prompt becomes the outcome, in place.
    let mut click = block_actions(
        &story.fake.response_url("click-1"),
        ("U_BOB", "bob"),
        &approve,
        &prompt_ts,
    );
    click["channel"]["id"] = json!(ALERTS);
    click["container"]["channel_id"] = json!(ALERTS);
    let form = serde_urlencoded::to_string([("payload", click.to_string())]).unwrap();
    assert_eq!(story.signed("/slack/interactions", FORM, &form).await, 200);
    story
        .fake
        .wait_for("the prompt updated to the outcome", |calls| {
            calls.iter().any(|c| {
                c.method == "chat.update"
                    && c.body["channel"] == ALERTS
                    && c.body["ts"] == prompt_ts.as_str()
                    && shows(c, "Done: undo")
            })
        })
        .await;

    // Resolved: the post-mortem draft is uploaded into the channel, the current way.
    story
        .command(("U_ALICE", "alice"), ALERTS, "/incident", "resolve")
        .await;
    let calls = story
        .fake
        .wait_for("the post-mortem upload", |calls| {
            calls
                .iter()
                .any(|c| c.method == "files.completeUploadExternal")
        })
        .await;
    let get_url = calls
        .iter()
        .find(|c| c.method == "files.getUploadURLExternal")
        .expect("files.getUploadURLExternal");
    assert_eq!(get_url.body["filename"], "INC-1-postmortem.md");
    let file_id = get_url.response["file_id"].as_str().unwrap().to_string();
    let upload = calls
        .iter()
        .find(|c| c.method == "upload")
        .expect("the bytes posted to the upload URL");
    assert_eq!(upload.body["file_id"], file_id.as_str());
    let draft = upload.body["content"].as_str().unwrap();
    assert_eq!(
        get_url.body["length"],
        draft.len().to_string().as_str(),
        "the announced length is the uploaded one"
    );
    let timeline = section(draft, "## Timeline");
    assert!(
        timeline.lines().any(|l| l.contains("| alice |")),
        "{timeline}"
    );
    assert!(
        timeline.lines().any(|l| l.contains("| bob |")),
        "{timeline}"
    );
    let complete = calls
        .iter()
        .find(|c| c.method == "files.completeUploadExternal")
        .unwrap();
    assert_eq!(complete.body["channel_id"], ALERTS);
    assert_eq!(complete.body["files"][0]["id"], file_id.as_str());
    assert_eq!(complete.body["files"][0]["title"], "INC-1-postmortem.md");
    assert!(
        !calls.iter().any(|c| c.method == "files.upload"),
        "files.upload is retired"
    );

    // A declared incident gets its own channel (the first name is taken), its topic, alice
    // invited, and its summary posted there.
    story.fake.take_channel_name("inc-2-gpu-node-lost");
    // alice is somehow in it already: that is not a failure.
    story
        .fake
        .fail_next("conversations.invite", "already_in_channel");
    story
        .command(
            ("U_ALICE", "alice"),
            ALERTS,
            "/incident",
            "declare sev2 GPU node lost",
        )
        .await;
    let calls = story
        .fake
        .wait_for("the incident channel and its summary", |calls| {
            let created = calls
                .iter()
                .filter(|c| c.method == "conversations.create")
                .find_map(|c| c.response["channel"]["id"].as_str());
            created.is_some_and(|channel| {
                calls
                    .iter()
                    .any(|c| c.method == "chat.postMessage" && c.body["channel"] == channel)
            })
        })
        .await;
    let creates: Vec<&Call> = calls
        .iter()
        .filter(|c| c.method == "conversations.create")
        .collect();
    assert_eq!(creates[0].body["name"], "inc-2-gpu-node-lost");
    assert_eq!(creates[0].response["error"], "name_taken");
    assert_eq!(creates[1].body["name"], "inc-2-gpu-node-lost-2");
    let channel = creates[1].response["channel"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let topic = calls
        .iter()
        .find(|c| c.method == "conversations.setTopic")
        .expect("the topic is set");
    assert_eq!(topic.body["channel"], channel.as_str());
    assert!(
        topic.body["topic"]
            .as_str()
            .unwrap()
            .contains("INC-2 (sev2)")
    );
    let invite = calls
        .iter()
        .find(|c| c.method == "conversations.invite")
        .expect("alice is invited");
    assert_eq!(invite.body["channel"], channel.as_str());
    assert_eq!(invite.body["users"], json!(["U_ALICE"]));
    assert_eq!(invite.response["error"], "already_in_channel");
    let summary = calls
        .iter()
        .find(|c| c.method == "chat.postMessage" && c.body["channel"] == channel.as_str())
        .unwrap();
    assert!(shows(summary, "INC-2"), "{:#}", summary.body);
    let summary_ts = ts_of(summary);
    assert_eq!(
        story.bot.message("INC-2", "slack", "summary").await,
        Some((channel.clone(), summary_ts.clone()))
    );

    // A status in the new channel attaches to INC-2 and updates that summary in place.
    story
        .command(
            ("U_ALICE", "alice"),
            &channel,
            "/incident",
            "status draining the node",
        )
        .await;
    let calls = story
        .fake
        .wait_for("the summary updated in place", |calls| {
            calls.iter().any(|c| {
                c.method == "chat.update"
                    && c.body["channel"] == channel.as_str()
                    && c.body["ts"] == summary_ts.as_str()
                    && shows(c, "draining the node")
            })
        })
        .await;
    let summaries_posted = calls
        .iter()
        .filter(|c| c.method == "chat.postMessage" && c.body["channel"] == channel.as_str())
        .filter(|c| ts_of(c) == summary_ts)
        .count();
    assert_eq!(summaries_posted, 1);
    assert_eq!(
        story.bot.message("INC-2", "slack", "summary").await,
        Some((channel.clone(), summary_ts.clone()))
    );

    // 📌 on carol's message in the incident channel: the timeline gains it. Another
    // reaction, and a 📌 in a channel without an incident, add nothing.
    let pinned_text = "node ip-10-0-3-7 was reclaimed by the cloud provider";
    story
        .fake
        .add_message(&channel, "1700000500.000100", pinned_text);
    story
        .fake
        .add_message("C_RANDOM", "1700000500.000200", "lunch?");
    for (reaction, in_channel, ts, id) in [
        ("thumbsup", channel.as_str(), "1700000500.000100", "Ev0UP"),
        ("pushpin", "C_RANDOM", "1700000500.000200", "Ev0RANDOM"),
        ("pushpin", channel.as_str(), "1700000500.000100", "Ev0PIN"),
    ] {
        let event = json!({
            "token": "ZZZZZZWSxiZZZ2yIvs3peJ",
            "team_id": "T0001",
            "api_app_id": "A0FIREBRK",
            "event": {
                "type": "reaction_added",
                "user": "U_CAROL",
                "reaction": reaction,
                "item_user": "U_CAROL",
                "item": {"type": "message", "channel": in_channel, "ts": ts},
                "event_ts": "1700000600.000200"
            },
            "type": "event_callback",
            "authed_users": ["U0BOT"],
            "event_id": id,
            "event_time": 1700000600
        });
        assert_eq!(
            story
                .signed("/slack/events", JSON, &event.to_string())
                .await,
            200
        );
    }
    let mut pinned = Vec::new();
    for _ in 0..600 {
        pinned = story
            .bot
            .store()
            .timeline("INC-2")
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "pinned")
            .collect();
        if !pinned.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pinned.len(), 1, "{pinned:#?}");
    assert_eq!(pinned[0].text, pinned_text);
    assert_eq!(pinned[0].actor.id, "U_CAROL");
    let history = story.fake.calls_of("conversations.history");
    assert!(
        history
            .iter()
            .all(|c| c.body["channel"] == channel.as_str()),
        "no history read outside incident channels: {history:#?}"
    );
    let read = &history[0].body;
    assert_eq!(read["latest"], "1700000500.000100");
    assert_eq!(read["inclusive"], "true");
    assert_eq!(read["limit"], "1");
    assert!(
        story
            .bot
            .store()
            .timeline("INC-1")
            .await
            .unwrap()
            .iter()
            .all(|e| e.kind != "pinned")
    );
}

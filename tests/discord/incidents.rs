//! Incidents through Discord, end to end against the fake: an Alertmanager notification opens
//! an incident and announces it in the alerts channel, a rollback is requested and approved
//! there, the incident is resolved and its post-mortem attached; a declared incident gets its
//! own thread whose summary stays one message.

use std::net::SocketAddr;
use std::sync::Arc;

use ed25519_dalek::Signer;
use firebreak::Bot;
use firebreak::chat::alertmanager::{self, Destination};
use firebreak::chat::discord::{Discord, DiscordSettings, http};
use serde_json::{Value, json};

use super::fake::{Call, FakeDiscord};
use super::payloads::{self, CHANNEL_ID};
use super::{ALICE, BOB, TOKEN, custom_ids, followup_path, hex, original, signing_key, title};
use crate::support::{SHIPPED_RUNBOOK, bot, demo, sim};

const ALERTMANAGER_TOKEN: &str = "am-s3cret";

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

/// Discord's interactions endpoint and the Alertmanager webhook in one server, announcing in
/// the alerts channel (`CHANNEL_ID`, where the payloads' commands are typed).
struct Story {
    fake: FakeDiscord,
    bot: Arc<Bot>,
    url: String,
    client: reqwest::Client,
    interactions: u64,
    _sim: firebreak::sim::SimServer,
}

impl Story {
    async fn start() -> Story {
        let sim = sim(demo()).await;
        let fake = FakeDiscord::start().await;
        let groups = [(
            "oncall".to_string(),
            vec![ALICE.to_string(), BOB.to_string()],
        )]
        .into_iter()
        .collect();
        let bot = Arc::new(bot(&sim, &[SHIPPED_RUNBOOK]).with_groups(groups));
        let public_key = hex(&signing_key().verifying_key().to_bytes());
        let env = super::env(
            &fake,
            &[
                ("FIREBREAK_DISCORD_PUBLIC_KEY", &public_key),
                ("FIREBREAK_DISCORD_MODE", "http"),
            ],
        );
        let settings = DiscordSettings::from_env(&env).unwrap().unwrap();
        let discord = Arc::new(Discord::new(Arc::clone(&bot), settings).unwrap());
        let destinations = vec![Destination {
            outbox: Arc::new(discord.api().clone()),
            channel: CHANNEL_ID.to_string(),
        }];
        let routes = vec![
            http::routes(discord),
            alertmanager::routes(
                Arc::clone(&bot),
                Some(firebreak::config::Secret::new(ALERTMANAGER_TOKEN)),
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
            interactions: 0,
            _sim: sim,
        }
    }

    /// POST a signed interaction to the endpoint; the immediate response body.
    async fn interact(&self, payload: &Value) -> Value {
        let body = serde_json::to_vec(payload).unwrap();
        let timestamp = super::now().to_string();
        let signed = [timestamp.as_bytes(), &body].concat();
        let signature = hex(&signing_key().sign(&signed).to_bytes());
        let response = self
            .client
            .post(format!("{}{}", self.url, http::PATH))
            .header("X-Signature-Ed25519", signature)
            .header("X-Signature-Timestamp", timestamp)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the endpoint answers");
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// `/name options` typed by `user` in `channel`; its interaction token.
    async fn command(
        &mut self,
        user: (&str, &str),
        channel: &str,
        name: &str,
        options: Value,
    ) -> String {
        self.interactions += 1;
        let token = format!("{name}-token-{}", self.interactions);
        let id = format!("8800000000000001{:02}", self.interactions);
        let mut payload = payloads::command(&id, &token, name, options);
        payload["member"] = payloads::member(user.0, user.1, None);
        if channel != CHANNEL_ID {
            // A thread of the alerts channel.
            payload["channel_id"] = json!(channel);
            payload["channel"] = json!({
                "id": channel, "type": 11, "name": "thread", "parent_id": CHANNEL_ID,
                "guild_id": payloads::GUILD_ID, "permissions": "2248473465835073"
            });
        }
        assert_eq!(self.interact(&payload).await, json!({ "type": 5 }));
        token
    }
}

fn messages_in(channel: &str) -> String {
    format!("/api/v10/channels/{channel}/messages")
}

fn posted_in<'a>(calls: &'a [Call], channel: &str) -> Vec<&'a Call> {
    calls
        .iter()
        .filter(|c| c.method == "POST" && c.path == messages_in(channel))
        .collect()
}

fn shows(call: &Call, needle: &str) -> bool {
    call.body.to_string().contains(needle)
}

fn id_of(call: &Call) -> String {
    call.response["id"].as_str().unwrap_or_default().to_string()
}

fn subcommand(name: &str, options: Value) -> Value {
    json!([{ "name": name, "type": 1, "options": options }])
}

/// The text of a section of the attached Markdown.
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
async fn alert_to_post_mortem_then_a_declared_incident_thread() {
    let mut story = Story::start().await;
    let alice = (ALICE, "alice");
    let bot_auth = format!("Bot {TOKEN}");

    // An Alertmanager notification opens INC-1 and announces it in the alerts channel with
    // the bot token: the summary first, then the automatic triage with its buttons.
    let response = story
        .client
        .post(format!("{}/alertmanager", story.url))
        .bearer_auth(ALERTMANAGER_TOKEN)
        .header("content-type", "application/json")
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
            posted_in(calls, CHANNEL_ID)
                .iter()
                .any(|c| !custom_ids(c).is_empty())
        })
        .await;
    let posts = posted_in(&calls, CHANNEL_ID);
    assert!(posts.len() >= 2, "{posts:#?}");
    assert!(shows(posts[0], "INC-1"), "{:#}", posts[0].body);
    assert!(
        title(posts[1]).contains("Triage: model-server"),
        "{:#}",
        posts[1].body
    );
    assert!(
        posts
            .iter()
            .all(|c| c.authorization.as_deref() == Some(bot_auth.as_str()))
    );
    assert!(
        posts
            .iter()
            .flat_map(|c| custom_ids(c))
            .any(|id| id.starts_with("/mitigate ")),
        "{posts:#?}"
    );
    assert_eq!(
        story.bot.message("INC-1", "discord", "alert").await,
        Some((CHANNEL_ID.to_string(), id_of(posts[0])))
    );

    // In the alerts channel (bound to INC-1), alice asks for a rollback: an approval prompt
    // in the deferred response, with Approve and Deny.
    let request = story
        .command(
            alice,
            CHANNEL_ID,
            "rollback",
            json!([
                payloads::string_option("action", "undo"),
                payloads::string_option("service", "model-server"),
            ]),
        )
        .await;
    let prompt_of = |calls: &[Call]| {
        calls
            .iter()
            .filter(|c| c.method == "PATCH" && c.path == original(&request))
            .find(|c| custom_ids(c).iter().any(|id| id.starts_with("/approve ")))
            .cloned()
    };
    let calls = story
        .fake
        .wait_for("the approval prompt", |calls| prompt_of(calls).is_some())
        .await;
    let prompt = prompt_of(&calls).unwrap();
    let ids = custom_ids(&prompt);
    let approve = ids
        .iter()
        .find(|id| id.starts_with("/approve "))
        .unwrap()
        .clone();
    assert!(ids.iter().any(|id| id.starts_with("/deny ")), "{ids:?}");

    // bob clicks Approve: the prompt becomes the outcome, in place.
    let click = payloads::click(
        "880000000000000201",
        "approve-click-token",
        &approve,
        payloads::member(BOB, "bob", None),
    );
    assert_eq!(story.interact(&click).await, json!({ "type": 6 }));
    story
        .fake
        .wait_for("the prompt edited to the outcome", |calls| {
            calls.iter().any(|c| {
                c.method == "PATCH"
                    && c.path == original("approve-click-token")
                    && shows(c, "Done: undo")
            })
        })
        .await;

    // Resolved: the post-mortem draft is attached to a followup as a file.
    let resolve = story
        .command(
            alice,
            CHANNEL_ID,
            "incident",
            subcommand("resolve", json!([])),
        )
        .await;
    let calls = story
        .fake
        .wait_for("the post-mortem attachment", |calls| {
            calls
                .iter()
                .any(|c| c.path == followup_path(&resolve) && !c.files.is_empty())
        })
        .await;
    let attached = calls
        .iter()
        .find(|c| c.path == followup_path(&resolve) && !c.files.is_empty())
        .unwrap();
    assert_eq!(attached.method, "POST");
    assert_eq!(attached.status, 200);
    assert_eq!(attached.files.len(), 1, "{attached:#?}");
    let file = &attached.files[0];
    assert_eq!(file.field, "files[0]");
    assert_eq!(file.filename, "INC-1-postmortem.md");
    assert_eq!(
        attached.body["attachments"],
        json!([{ "id": 0, "filename": "INC-1-postmortem.md" }])
    );
    let timeline = section(&file.content, "## Timeline");
    assert!(
        timeline.lines().any(|l| l.contains("| alice |")),
        "{timeline}"
    );
    assert!(
        timeline.lines().any(|l| l.contains("| bob |")),
        "{timeline}"
    );

    // A declared incident gets a public thread in the channel it was declared in, alice
    // added, and its summary posted in the thread.
    let declare = story
        .command(
            alice,
            CHANNEL_ID,
            "incident",
            subcommand(
                "declare",
                json!([
                    payloads::string_option("severity", "sev2"),
                    payloads::string_option("title", "GPU node lost"),
                ]),
            ),
        )
        .await;
    let threads_path = format!("/api/v10/channels/{CHANNEL_ID}/threads");
    let calls = story
        .fake
        .wait_for("the incident thread and its summary", |calls| {
            calls
                .iter()
                .find(|c| c.method == "POST" && c.path == threads_path)
                .is_some_and(|thread| !posted_in(calls, &id_of(thread)).is_empty())
        })
        .await;
    let created = calls
        .iter()
        .find(|c| c.method == "POST" && c.path == threads_path)
        .unwrap();
    assert_eq!(
        created.body,
        json!({ "name": "inc-2-gpu-node-lost", "type": 11, "auto_archive_duration": 1440 })
    );
    assert_eq!(created.authorization.as_deref(), Some(bot_auth.as_str()));
    let thread = id_of(created);
    let reply_at = calls
        .iter()
        .position(|c| c.method == "PATCH" && c.path == original(&declare) && shows(c, "INC-2"))
        .expect("the declaration's reply");
    let thread_at = calls.iter().position(|c| c.path == threads_path).unwrap();
    assert!(reply_at < thread_at, "the reply first, then its effects");
    assert!(
        calls.iter().any(|c| c.method == "PUT"
            && c.path == format!("/api/v10/channels/{thread}/thread-members/{ALICE}")),
        "alice is added to the thread: {calls:#?}"
    );
    let summary = posted_in(&calls, &thread)[0];
    assert!(shows(summary, "INC-2"), "{:#}", summary.body);
    let summary_id = id_of(summary);
    assert_eq!(
        story.bot.message("INC-2", "discord", "summary").await,
        Some((thread.clone(), summary_id.clone()))
    );

    // A status typed in the thread attaches to INC-2 and edits that summary in place.
    story
        .command(
            alice,
            &thread,
            "incident",
            subcommand(
                "status",
                json!([payloads::string_option("text", "draining the node")]),
            ),
        )
        .await;
    let edited_path = format!("/api/v10/channels/{thread}/messages/{summary_id}");
    let calls = story
        .fake
        .wait_for("the summary edited in place", |calls| {
            calls.iter().any(|c| {
                c.method == "PATCH" && c.path == edited_path && shows(c, "draining the node")
            })
        })
        .await;
    assert_eq!(
        posted_in(&calls, &thread).len(),
        1,
        "one summary message in the thread"
    );
    assert_eq!(
        story.bot.message("INC-2", "discord", "summary").await,
        Some((thread, summary_id))
    );
}

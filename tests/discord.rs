//! The Discord adapter against a fake Discord on loopback: signed interactions over HTTP,
//! the same through a fake gateway, command registration, clicks, rejections, embeds.

mod fake;
mod incidents;
mod payloads;
mod security;
mod serve;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use firebreak::chat::discord::embeds::{self, TRUNCATED};
use firebreak::chat::discord::{Discord, DiscordSettings, Mode, gateway, http};
use firebreak::render::{Block, Button, ButtonStyle, Reply, Severity};
use firebreak::sim::SimServer;
use serde_json::{Value, json};

use self::fake::{Call, FakeDiscord};
use self::payloads::{APPLICATION_ID, GUILD_ID};
use crate::support::{SHIPPED_RUNBOOK, bot, demo, sim};

const TOKEN: &str = "test-bot-token";

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn env(fake: &FakeDiscord, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("FIREBREAK_DISCORD_BOT_TOKEN", TOKEN.to_string()),
        (
            "FIREBREAK_DISCORD_APPLICATION_ID",
            APPLICATION_ID.to_string(),
        ),
        ("FIREBREAK_DISCORD_API_URL", fake.url.clone()),
        ("FIREBREAK_DISCORD_GUILD_ID", GUILD_ID.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

/// A bot over the demo scenario, the fake Discord, and the adapter's HTTP endpoint.
struct Harness {
    sim: SimServer,
    fake: FakeDiscord,
    discord: Arc<Discord>,
    endpoint: String,
    client: reqwest::Client,
}

impl Harness {
    async fn start(mode: &str) -> Harness {
        Harness::start_with(mode, BTreeMap::new()).await
    }

    /// With approver groups (chat user ids).
    async fn start_with(mode: &str, groups: BTreeMap<String, Vec<String>>) -> Harness {
        let sim = sim(demo()).await;
        let fake = FakeDiscord::start().await;
        let public_key = hex(&signing_key().verifying_key().to_bytes());
        let env = env(
            &fake,
            &[
                ("FIREBREAK_DISCORD_PUBLIC_KEY", &public_key),
                ("FIREBREAK_DISCORD_MODE", mode),
            ],
        );
        let settings = DiscordSettings::from_env(&env)
            .expect("settings are valid")
            .expect("Discord is configured");
        let bot = Arc::new(bot(&sim, &[SHIPPED_RUNBOOK]).with_groups(groups));
        let discord = Arc::new(Discord::new(bot, settings).expect("adapter builds"));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let endpoint = format!("http://{}{}", listener.local_addr().unwrap(), http::PATH);
        let app = firebreak::server::app(vec![http::routes(discord.clone())]);
        tokio::spawn(firebreak::server::serve(
            listener,
            app,
            std::future::pending(),
        ));
        Harness {
            sim,
            fake,
            discord,
            endpoint,
            client: reqwest::Client::new(),
        }
    }

    /// POST a body signed with `key` at `timestamp`.
    async fn post_raw(&self, body: &[u8], key: &SigningKey, timestamp: i64) -> reqwest::Response {
        let timestamp = timestamp.to_string();
        let signed = [timestamp.as_bytes(), body].concat();
        let signature = hex(&key.sign(&signed).to_bytes());
        self.client
            .post(&self.endpoint)
            .header("X-Signature-Ed25519", signature)
            .header("X-Signature-Timestamp", timestamp)
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("the endpoint answers")
    }

    /// POST a correctly signed, fresh interaction; return status and JSON body.
    async fn post(&self, payload: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(payload).unwrap();
        let response = self.post_raw(&body, &signing_key(), now()).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(json!(text)))
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn original(token: &str) -> String {
    format!("/api/v10/webhooks/{APPLICATION_ID}/{token}/messages/@original")
}

fn followup_path(token: &str) -> String {
    format!("/api/v10/webhooks/{APPLICATION_ID}/{token}")
}

fn title(call: &Call) -> String {
    call.body["embeds"][0]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn custom_ids(call: &Call) -> Vec<String> {
    call.body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(str::to_string))
        .collect()
}

fn is_final(call: &Call) -> bool {
    call.status == 200 && !custom_ids(call).is_empty()
}

/// Slow the simulated API down so steps finish one by one and progress edits are seen.
fn slow(sim: &SimServer) {
    sim.set_latency("/api", Duration::from_millis(60));
}

/// The edits of @original in order: the acknowledgement, progress, and the final report.
fn assert_command_flow(calls: &[Call], token: &str) {
    let edits: Vec<&Call> = calls
        .iter()
        .filter(|c| c.method == "PATCH" && c.path == original(token))
        .collect();
    assert!(
        edits[0].body["content"]
            .as_str()
            .unwrap()
            .contains("Running triage on model-server"),
        "the acknowledgement comes first: {:#?}",
        edits[0].body
    );
    let last = edits.last().unwrap();
    assert!(
        title(last).contains("Triage: model-server"),
        "{:#?}",
        last.body
    );
    assert_eq!(
        last.body["embeds"][0]["color"],
        json!(embeds::colour(Severity::Critical))
    );
    // A report longer than one message continues in followups; the buttons go on the last.
    let with_buttons = calls
        .iter()
        .filter(|c| c.path.starts_with(&followup_path(token)) && is_final(c))
        .collect::<Vec<_>>();
    assert_eq!(with_buttons.len(), 1, "{calls:#?}");
    assert_eq!(
        custom_ids(with_buttons[0]),
        ["/mitigate model-server", "/rollback model-server"]
    );
    assert_eq!(
        with_buttons[0].body["components"][0]["components"][0]["style"],
        json!(1)
    );
    let progress: Vec<&&Call> = edits[1..edits.len() - 1]
        .iter()
        .filter(|c| c.body["embeds"].as_array().is_some_and(|e| !e.is_empty()))
        .collect();
    assert!(
        !progress.is_empty(),
        "at least one progress edit between the acknowledgement and the report: {edits:#?}"
    );
    assert!(progress.iter().all(|c| custom_ids(c).is_empty()));
}

#[tokio::test]
async fn a_slash_command_is_deferred_then_edited_as_steps_finish() {
    let h = Harness::start("http").await;
    slow(&h.sim);
    let command = payloads::command(
        "880000000000000001",
        "cmd-token",
        "triage",
        json!([payloads::string_option("service", "model-server")]),
    );
    let (status, body) = h.post(&command).await;
    assert_eq!((status, body), (200, json!({ "type": 5 })));
    let calls = h
        .fake
        .wait_for("the final triage report", |calls| {
            calls
                .iter()
                .any(|c| c.path.starts_with(&followup_path("cmd-token")) && is_final(c))
        })
        .await;
    assert_command_flow(&calls, "cmd-token");
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let h = Harness::start("http").await;
    assert_eq!(h.post(&payloads::ping()).await, (200, json!({ "type": 1 })));
}

#[tokio::test]
async fn the_gateway_answers_through_the_callback_endpoint() {
    let h = Harness::start("gateway").await;
    assert_eq!(h.discord.settings().mode, Mode::Gateway);
    slow(&h.sim);
    let gateway = gateway::start(h.discord.clone())
        .await
        .expect("the gateway client starts");
    let identify = h.fake.wait_for_identify().await;
    assert_eq!(identify["op"], json!(2));
    assert!(identify["d"]["token"].as_str().unwrap().contains(TOKEN));
    let command = payloads::command(
        "880000000000000002",
        "gw-token",
        "triage",
        json!([payloads::string_option("service", "model-server")]),
    );
    h.fake.dispatch("INTERACTION_CREATE", command);
    let calls = h
        .fake
        .wait_for("the final triage report", |calls| {
            calls
                .iter()
                .any(|c| c.path.starts_with(&followup_path("gw-token")) && is_final(c))
        })
        .await;
    let callback = calls
        .iter()
        .find(|c| c.path == "/api/v10/interactions/880000000000000002/gw-token/callback")
        .expect("the interaction was answered through the callback endpoint");
    assert_eq!(callback.body, json!({ "type": 5 }));
    let callback_at = calls.iter().position(|c| c.path.ends_with("/callback"));
    let first_edit = calls.iter().position(|c| c.path == original("gw-token"));
    assert!(callback_at < first_edit, "deferred before any edit");
    assert_command_flow(&calls, "gw-token");
    gateway.shutdown().await;
}

#[tokio::test]
async fn commands_are_registered_with_one_bulk_overwrite() {
    let h = Harness::start("http").await;
    h.discord.register_commands().await.expect("registration");
    h.discord
        .register_commands()
        .await
        .expect("again, idempotent");
    let calls = h.fake.calls();
    let path = format!("/api/v10/applications/{APPLICATION_ID}/guilds/{GUILD_ID}/commands");
    let puts: Vec<&Call> = calls.iter().filter(|c| c.method == "PUT").collect();
    assert_eq!(puts.len(), 2);
    assert!(puts.iter().all(|c| c.path == path));
    assert_eq!(puts[0].body, puts[1].body);
    assert_eq!(
        puts[0].authorization.as_deref(),
        Some(format!("Bot {TOKEN}").as_str())
    );
    let commands = puts[0].body.as_array().unwrap();
    let names: Vec<&str> = commands
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "triage",
            "mitigate",
            "rollback",
            "postmortem",
            "incident",
            "approve",
            "deny",
            "help"
        ]
    );
    let triage = &commands[0];
    assert_eq!(triage["options"][0]["name"], json!("service"));
    assert_eq!(triage["options"][0]["type"], json!(3));
    assert_eq!(triage["options"][0]["autocomplete"], json!(true));
    let incident = &commands[4];
    let subs: Vec<&str> = incident["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["type"], json!(1));
            s["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        subs,
        [
            "declare", "status", "severity", "role", "note", "resolve", "list"
        ]
    );
}

#[tokio::test]
async fn global_registration_without_a_guild() {
    let fake = FakeDiscord::start().await;
    let sim = sim(demo()).await;
    let mut env = env(&fake, &[]);
    env.remove("FIREBREAK_DISCORD_GUILD_ID");
    let settings = DiscordSettings::from_env(&env).unwrap().unwrap();
    assert_eq!(settings.mode, Mode::Gateway, "no public key: gateway");
    let discord = Discord::new(Arc::new(bot(&sim, &[SHIPPED_RUNBOOK])), settings).unwrap();
    discord.register_commands().await.unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].path,
        format!("/api/v10/applications/{APPLICATION_ID}/commands")
    );
}

#[tokio::test]
async fn services_are_autocompleted_from_the_runbooks() {
    let h = Harness::start("http").await;
    let (status, body) = h.post(&payloads::autocomplete("model")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({ "type": 8, "data": { "choices": [{ "name": "model-server", "value": "model-server" }] } })
    );
    let (_, none) = h.post(&payloads::autocomplete("zzz")).await;
    assert_eq!(none["data"]["choices"], json!([]));
}

#[tokio::test]
async fn clicking_mitigate_on_the_triage_report_runs_mitigate_for_the_clicker() {
    let h = Harness::start("http").await;
    let click = payloads::click(
        "880000000000000003",
        "click-token",
        "/mitigate model-server",
        payloads::member("222000000000000002", "bob", None),
    );
    slow(&h.sim);
    let (status, body) = h.post(&click).await;
    assert_eq!((status, body), (200, json!({ "type": 6 })));
    let calls = h
        .fake
        .wait_for("the mitigate report", |calls| {
            calls.iter().any(|c| {
                (c.path.starts_with(&followup_path("click-token")))
                    && title(c).contains("Mitigate")
                    && !c.body["components"].as_array().is_none_or(Vec::is_empty)
            })
        })
        .await;
    // A click's NewMessage reply is a new message, never an edit of the triage report.
    assert!(
        !calls.iter().any(|c| c.path == original("click-token")),
        "{calls:#?}"
    );
    // Progress opens a followup; the report replaces it, so the channel gets one message.
    let mine: Vec<&Call> = calls
        .iter()
        .filter(|c| c.path.starts_with(&followup_path("click-token")))
        .collect();
    assert_eq!(mine[0].method, "POST", "{mine:#?}");
    assert!(custom_ids(mine[0]).is_empty(), "progress has no buttons");
    let report = mine.last().unwrap();
    assert_eq!(report.method, "PATCH");
    assert_eq!(
        report.path,
        format!("{}/messages/900", followup_path("click-token")),
        "the progress followup (the fake's first id) is edited into the report"
    );
    assert!(
        title(report).contains("Mitigate: model-server"),
        "{:#?}",
        report.body
    );
}

#[test]
fn a_click_becomes_an_invocation_of_the_clicker_and_the_button_command() {
    let payload = payloads::click(
        "880000000000000003",
        "t",
        "/mitigate model-server",
        payloads::member("222000000000000002", "bob", Some("Bob (SRE)")),
    );
    let component: serenity::model::application::ComponentInteraction =
        serde_json::from_value(payload).expect("serenity reads the documented shape");
    let inv = firebreak::chat::discord::component_invocation(&component).unwrap();
    assert_eq!(inv.platform, firebreak::chat::Platform::Discord);
    assert_eq!(inv.user.id, "222000000000000002");
    assert_eq!(inv.user.name, "Bob (SRE)");
    assert_eq!(inv.channel.id, payloads::CHANNEL_ID);
    assert_eq!(inv.command, "mitigate");
    assert_eq!(inv.args, ["model-server"]);
}

#[test]
fn slash_command_options_become_the_command_text() {
    let payload = payloads::command(
        "1",
        "t",
        "incident",
        json!([{ "name": "declare", "type": 1, "options": [
            // Filled in out of order: the text follows the declared order.
            payloads::string_option("title", "KV cache full"),
            payloads::string_option("severity", "sev2"),
        ]}]),
    );
    let command: serenity::model::application::CommandInteraction =
        serde_json::from_value(payload).unwrap();
    let text = firebreak::chat::discord::commands::to_text(&command.data);
    assert_eq!(text, "/incident declare sev2 \"KV cache full\"");
    let inv = firebreak::chat::discord::command_invocation(&command, &text).unwrap();
    assert_eq!(inv.command, "incident");
    assert_eq!(inv.args, ["declare", "sev2", "KV cache full"]);
    assert_eq!(inv.user.id, "111000000000000001");
    assert_eq!(inv.user.name, "Alice (on call)");
}

#[tokio::test]
async fn rate_limited_calls_are_retried_after_retry_after() {
    let h = Harness::start("http").await;
    h.fake.rate_limit_next(1);
    let command = payloads::command("880000000000000005", "help-token", "help", json!([]));
    assert_eq!(h.post(&command).await.0, 200);
    let calls = h
        .fake
        .wait_for("the help reply", |calls| {
            calls
                .iter()
                .any(|c| c.path == original("help-token") && title(c).contains("Firebreak"))
        })
        .await;
    assert_eq!(calls[0].status, 429, "{calls:#?}");
    assert_eq!(calls[1].path, calls[0].path, "the same call again");
    assert_eq!(calls[1].status, 200);
}

#[tokio::test]
async fn forged_stale_malformed_and_oversize_requests_are_refused() {
    let h = Harness::start("http").await;
    let body = serde_json::to_vec(&payloads::ping()).unwrap();
    let forger = SigningKey::from_bytes(&[9u8; 32]);
    assert_eq!(h.post_raw(&body, &forger, now()).await.status(), 401);
    assert_eq!(
        h.post_raw(&body, &signing_key(), now() - 600)
            .await
            .status(),
        401,
        "a correctly signed request from ten minutes ago is a replay"
    );
    assert_eq!(
        h.post_raw(b"{\"type\": \"nope\"", &signing_key(), now())
            .await
            .status(),
        400
    );
    let huge = vec![b' '; http::MAX_BODY + 1];
    assert_eq!(h.post_raw(&huge, &signing_key(), now()).await.status(), 413);
    let unsigned = h
        .client
        .post(&h.endpoint)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert!(h.fake.calls().is_empty(), "nothing refused reaches Discord");
}

#[test]
fn a_bad_public_key_is_refused_with_a_clear_message() {
    for key in ["not-hex", &"zz".repeat(32), &"ab".repeat(31)] {
        let env: BTreeMap<String, String> = [
            ("FIREBREAK_DISCORD_BOT_TOKEN", TOKEN),
            ("FIREBREAK_DISCORD_APPLICATION_ID", APPLICATION_ID),
            ("FIREBREAK_DISCORD_PUBLIC_KEY", key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let error = DiscordSettings::from_env(&env).unwrap_err().to_string();
        assert!(
            error.starts_with("FIREBREAK_DISCORD_PUBLIC_KEY:") && error.contains("64 hex digits"),
            "{error}"
        );
    }
    let no_key: BTreeMap<String, String> = [
        ("FIREBREAK_DISCORD_BOT_TOKEN", TOKEN),
        ("FIREBREAK_DISCORD_APPLICATION_ID", APPLICATION_ID),
        ("FIREBREAK_DISCORD_MODE", "http"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let error = DiscordSettings::from_env(&no_key).unwrap_err().to_string();
    assert!(error.contains("FIREBREAK_DISCORD_PUBLIC_KEY"), "{error}");
    assert!(
        DiscordSettings::from_env(&BTreeMap::new())
            .unwrap()
            .is_none()
    );
    let debug = format!(
        "{:?}",
        DiscordSettings::from_env(
            &[
                ("FIREBREAK_DISCORD_BOT_TOKEN", TOKEN),
                ("FIREBREAK_DISCORD_APPLICATION_ID", APPLICATION_ID)
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
        )
        .unwrap()
        .unwrap()
    );
    assert!(!debug.contains(TOKEN), "{debug}");
}

fn reply(blocks: Vec<Block>, buttons: Vec<Button>) -> Reply {
    Reply {
        title: "Triage: model-server".into(),
        severity: Severity::Warning,
        blocks,
        buttons,
        ..Reply::default()
    }
}

fn button(n: usize, style: ButtonStyle) -> Button {
    Button {
        label: format!("Step {n}"),
        command: format!("/triage svc-{n}"),
        style,
        confirm: None,
    }
}

fn check_limits(messages: &[embeds::Message]) {
    for message in messages {
        assert!(message.embeds.len() <= embeds::MAX_EMBEDS);
        assert!(message.content.chars().count() <= embeds::MAX_CONTENT);
        let total: usize = message.embeds.iter().map(embeds::embed_chars).sum();
        assert!(total <= embeds::MAX_MESSAGE_EMBED_CHARS, "{total}");
        for embed in &message.embeds {
            assert!(embed.description.chars().count() <= embeds::MAX_DESCRIPTION);
            assert!(embed.title.as_deref().unwrap_or("").chars().count() <= embeds::MAX_TITLE);
            assert!(embed.fields.len() <= embeds::MAX_FIELDS);
            for field in &embed.fields {
                assert!(field.value.chars().count() <= embeds::MAX_FIELD_VALUE);
                assert!(field.name.chars().count() <= embeds::MAX_FIELD_NAME);
            }
        }
        assert!(message.components.len() <= embeds::MAX_ROWS);
        assert!(
            message
                .components
                .iter()
                .all(|r| r.components.len() <= embeds::MAX_ROW)
        );
    }
}

#[test]
fn embeds_keep_order_and_severity_colour() {
    let messages = embeds::render(&reply(
        vec![
            Block::Heading {
                text: "Findings".into(),
            },
            Block::Text {
                text: "`x2k9p` was **OOMKilled**".into(),
            },
            Block::Fields {
                fields: vec![("Pods".into(), "3/4 ready".into())],
            },
            Block::Code {
                text: "kubectl get pods".into(),
            },
            Block::Context {
                text: "took 2.1 s".into(),
            },
        ],
        vec![],
    ));
    assert_eq!(messages.len(), 1);
    let embeds = &messages[0].embeds;
    assert_eq!(embeds[0].title.as_deref(), Some("Triage: model-server"));
    assert_eq!(embeds[0].color, embeds::colour(Severity::Warning));
    assert_eq!(
        embeds[0].description,
        "**Findings**\n\n`x2k9p` was **OOMKilled**"
    );
    assert_eq!(embeds[0].fields[0].name, "Pods");
    assert_eq!(
        embeds[1].description,
        "```\nkubectl get pods\n```\n\n-# took 2.1 s"
    );
    assert!(
        embeds
            .iter()
            .all(|e| e.color == embeds::colour(Severity::Warning))
    );
}

#[test]
fn long_replies_split_into_embeds_and_messages_and_cut_visibly() {
    let para = "finding ".repeat(400); // 3,200 characters
    let blocks = (0..40)
        .map(|_| Block::Text { text: para.clone() })
        .collect();
    let messages = embeds::render(&reply(blocks, vec![button(1, ButtonStyle::Primary)]));
    check_limits(&messages);
    assert_eq!(messages.len(), embeds::MAX_MESSAGES);
    let last_embed = messages.last().unwrap().embeds.last().unwrap();
    assert!(
        last_embed.description.contains(TRUNCATED),
        "the cut is visible"
    );
    assert!(
        messages[..messages.len() - 1]
            .iter()
            .all(|m| m.components.is_empty())
    );
    assert_eq!(
        messages.last().unwrap().components.len(),
        1,
        "buttons on the last message"
    );

    let one_line = "y".repeat(10_000);
    let messages = embeds::render(&reply(vec![Block::Text { text: one_line }], vec![]));
    check_limits(&messages);
    let kept: usize = messages
        .iter()
        .flat_map(|m| &m.embeds)
        .map(|e| e.description.chars().count())
        .sum();
    assert_eq!(kept, 10_000, "split, not cut");
}

#[test]
fn fields_and_titles_are_truncated_visibly() {
    let fields = (0..30)
        .map(|i| {
            (
                format!("pod {i}"),
                "v".repeat(if i == 0 { 2000 } else { 150 }),
            )
        })
        .collect();
    let mut long = reply(vec![Block::Fields { fields }], vec![]);
    long.title = "T".repeat(300);
    let messages = embeds::render(&long);
    check_limits(&messages);
    let title = messages[0].embeds[0].title.clone().unwrap();
    assert_eq!(title.chars().count(), embeds::MAX_TITLE);
    assert!(title.ends_with(TRUNCATED));
    let fields: Vec<&embeds::Field> = messages
        .iter()
        .flat_map(|m| &m.embeds)
        .flat_map(|e| &e.fields)
        .collect();
    assert_eq!(fields.len(), 30, "every field kept, over several embeds");
    assert_eq!(fields[0].value.chars().count(), embeds::MAX_FIELD_VALUE);
    assert!(fields[0].value.ends_with(TRUNCATED));
    assert!(fields[1..].iter().all(|f| f.value.len() == 150));
    assert!(
        messages.iter().flat_map(|m| &m.embeds).count() >= 2,
        "25 fields an embed"
    );
}

#[test]
fn buttons_go_in_rows_of_five_with_discord_styles() {
    let buttons = vec![
        button(0, ButtonStyle::Primary),
        button(1, ButtonStyle::Danger),
        button(2, ButtonStyle::Default),
        button(3, ButtonStyle::Default),
        button(4, ButtonStyle::Default),
        button(5, ButtonStyle::Default),
        button(6, ButtonStyle::Default),
    ];
    let messages = embeds::render(&reply(vec![], buttons));
    let rows = &messages[0].components;
    assert_eq!(
        rows.iter().map(|r| r.components.len()).collect::<Vec<_>>(),
        [5, 2]
    );
    let styles: Vec<u8> = rows[0].components.iter().map(|b| b.style).collect();
    assert_eq!(styles, [1, 4, 2, 2, 2]);
    assert_eq!(rows[0].components[0].custom_id, "/triage svc-0");
    assert!(
        rows.iter()
            .all(|r| r.kind == 1 && r.components.iter().all(|b| b.kind == 2))
    );

    let many: Vec<Button> = (0..30).map(|i| button(i, ButtonStyle::Default)).collect();
    let messages = embeds::render(&reply(vec![], many));
    check_limits(&messages);
    assert_eq!(messages[0].components.len(), 5);
    let text: String = messages[0]
        .embeds
        .iter()
        .map(|e| e.description.clone())
        .collect();
    assert!(
        text.contains("5 more actions") && text.contains("/triage svc-29"),
        "{text}"
    );
}

#[test]
fn a_command_too_long_for_a_custom_id_is_refused_visibly_and_confirms_are_shown() {
    let long = Button {
        label: "Scale".into(),
        command: format!("/mitigate {}", "x".repeat(120)),
        style: ButtonStyle::Danger,
        confirm: None,
    };
    let confirm = Button {
        label: "Restart".into(),
        command: "/mitigate model-server".into(),
        style: ButtonStyle::Danger,
        confirm: Some("Restart every model-server pod?".into()),
    };
    let messages = embeds::render(&reply(vec![], vec![long, confirm]));
    let ids: Vec<&str> = messages[0].components[0]
        .components
        .iter()
        .map(|b| b.custom_id.as_str())
        .collect();
    assert_eq!(ids, ["/mitigate model-server"]);
    assert_eq!(messages[0].components[0].components[0].label, "⚠ Restart");
    let text: String = messages[0]
        .embeds
        .iter()
        .map(|e| e.description.clone())
        .collect();
    assert!(
        text.contains("**Scale** button is left out") && text.contains("100 characters"),
        "{text}"
    );
    assert!(text.contains("Restart every model-server pod?"), "{text}");
}

/// Where a final reply goes, for each origin and delivery (the table in `discord::job`).
#[tokio::test]
async fn replies_go_where_their_delivery_says() {
    use firebreak::chat::discord::{Origin, deliver};
    use firebreak::render::Delivery;
    let h = Harness::start("http").await;
    let api = h.discord.api();
    let with = |delivery| Reply {
        delivery,
        ..reply(
            vec![Block::Text {
                text: "Approved by bob".into(),
            }],
            vec![],
        )
    };
    let cases = [
        (
            Origin::Command,
            Delivery::NewMessage,
            None,
            vec![("PATCH", "@original")],
        ),
        (
            Origin::Command,
            Delivery::ReplaceOrigin,
            None,
            vec![("PATCH", "@original")],
        ),
        (
            Origin::Command,
            Delivery::Ephemeral,
            None,
            vec![("DELETE", "@original"), ("POST", "followup")],
        ),
        (
            Origin::Click,
            Delivery::NewMessage,
            None,
            vec![("POST", "followup")],
        ),
        (
            Origin::Click,
            Delivery::NewMessage,
            Some("901"),
            vec![("PATCH", "901")],
        ),
        (
            Origin::Click,
            Delivery::ReplaceOrigin,
            None,
            vec![("PATCH", "@original")],
        ),
        (
            Origin::Click,
            Delivery::ReplaceOrigin,
            Some("902"),
            vec![("DELETE", "902"), ("PATCH", "@original")],
        ),
        (
            Origin::Click,
            Delivery::Ephemeral,
            None,
            vec![("POST", "followup")],
        ),
    ];
    for (i, (origin, delivery, progress, expected)) in cases.into_iter().enumerate() {
        let token = format!("delivery-{i}");
        deliver(api, &token, origin, &with(delivery), progress)
            .await
            .expect("delivered");
        let calls: Vec<Call> = h
            .fake
            .calls()
            .into_iter()
            .filter(|c| c.path.starts_with(&followup_path(&token)))
            .collect();
        let seen: Vec<(&str, String)> = calls
            .iter()
            .map(|c| {
                let target = if c.path == followup_path(&token) {
                    "followup".to_string()
                } else {
                    c.path.rsplit('/').next().unwrap().to_string()
                };
                (c.method.as_str(), target)
            })
            .collect();
        let expected: Vec<(&str, String)> =
            expected.iter().map(|(m, t)| (*m, t.to_string())).collect();
        assert_eq!(seen, expected, "{origin:?} {delivery:?} {progress:?}");
        let last = calls.last().unwrap();
        let private = last.body["flags"] == json!(embeds::EPHEMERAL);
        assert_eq!(
            private,
            delivery == Delivery::Ephemeral,
            "only Ephemeral replies carry flag 64: {origin:?} {delivery:?}"
        );
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn settings_choose_the_mode_and_refuse_half_setups() {
    let key = hex(&signing_key().verifying_key().to_bytes());
    let base = [
        ("FIREBREAK_DISCORD_BOT_TOKEN", TOKEN),
        ("FIREBREAK_DISCORD_APPLICATION_ID", APPLICATION_ID),
    ];
    let with_key = [&base[..], &[("FIREBREAK_DISCORD_PUBLIC_KEY", key.as_str())]].concat();
    let http = DiscordSettings::from_env(&map(&with_key)).unwrap().unwrap();
    assert_eq!(http.mode, Mode::Http);
    assert_eq!(http.api_url, "https://discord.com");
    assert_eq!(http.guild_id, None);
    let forced = [&with_key[..], &[("FIREBREAK_DISCORD_MODE", "gateway")]].concat();
    assert_eq!(
        DiscordSettings::from_env(&map(&forced))
            .unwrap()
            .unwrap()
            .mode,
        Mode::Gateway
    );
    let error = |pairs: &[(&str, &str)]| {
        DiscordSettings::from_env(&map(pairs))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error(&[("FIREBREAK_DISCORD_BOT_TOKEN", TOKEN)]),
        "FIREBREAK_DISCORD_BOT_TOKEN is set but FIREBREAK_DISCORD_APPLICATION_ID is not; the Discord adapter needs both"
    );
    assert!(
        error(&[("FIREBREAK_DISCORD_MODE", "gateway")]).contains("FIREBREAK_DISCORD_BOT_TOKEN")
    );
    let typo = [&base[..], &[("FIREBREAK_DISCORD_MODE", "websocket")]].concat();
    assert!(error(&typo).contains("neither `http` nor `gateway`"));
    let bad_id = [
        ("FIREBREAK_DISCORD_BOT_TOKEN", TOKEN),
        ("FIREBREAK_DISCORD_APPLICATION_ID", "my-app"),
    ];
    assert!(error(&bad_id).starts_with("FIREBREAK_DISCORD_APPLICATION_ID: not a Discord id"));
}

const ALICE: &str = "111000000000000001";
const BOB: &str = "222000000000000002";

/// The approval flow as Discord shows it: the prompt from a slash command, a refused
/// self-approval only its clicker sees, and an approval that replaces the prompt.
#[tokio::test]
async fn an_approval_replaces_its_prompt_and_a_refusal_is_ephemeral() {
    let groups = [(
        "oncall".to_string(),
        vec![ALICE.to_string(), BOB.to_string()],
    )]
    .into_iter()
    .collect();
    let h = Harness::start_with("http", groups).await;
    let request = payloads::command(
        "880000000000000010",
        "request-token",
        "rollback",
        json!([
            payloads::string_option("action", "undo"),
            payloads::string_option("service", "model-server"),
        ]),
    );
    assert_eq!(h.post(&request).await, (200, json!({ "type": 5 })));
    let approve_of = |calls: &[Call]| {
        calls
            .iter()
            .filter(|c| c.path.starts_with(&followup_path("request-token")))
            .flat_map(custom_ids)
            .find(|id| id.starts_with("/approve "))
    };
    let calls = h
        .fake
        .wait_for("the approval prompt", |calls| approve_of(calls).is_some())
        .await;
    let approve = approve_of(&calls).unwrap();

    let own = payloads::click(
        "880000000000000011",
        "own-token",
        &approve,
        payloads::member(ALICE, "alice", None),
    );
    assert_eq!(h.post(&own).await, (200, json!({ "type": 6 })));
    let calls = h
        .fake
        .wait_for("the refusal", |calls| {
            calls.iter().any(|c| c.path == followup_path("own-token"))
        })
        .await;
    let own_calls: Vec<&Call> = calls
        .iter()
        .filter(|c| c.path.starts_with(&followup_path("own-token")))
        .collect();
    assert_eq!(own_calls.len(), 1, "{own_calls:#?}");
    assert_eq!(own_calls[0].method, "POST");
    assert_eq!(own_calls[0].body["flags"], json!(embeds::EPHEMERAL));

    let bobs = payloads::click(
        "880000000000000012",
        "bob-token",
        &approve,
        payloads::member(BOB, "bob", None),
    );
    assert_eq!(h.post(&bobs).await, (200, json!({ "type": 6 })));
    let calls = h
        .fake
        .wait_for("the prompt replaced by its outcome", |calls| {
            calls.iter().any(|c| {
                c.method == "PATCH" && c.path == original("bob-token") && !has_no_embeds(c)
            })
        })
        .await;
    let outcome = calls
        .iter()
        .rfind(|c| c.method == "PATCH" && c.path == original("bob-token"))
        .unwrap();
    assert!(
        !custom_ids(outcome).contains(&approve),
        "the replaced prompt has no Approve button left: {:#?}",
        outcome.body
    );
    let posted: Vec<&Call> = calls
        .iter()
        .filter(|c| c.method == "POST" && c.path == followup_path("bob-token"))
        .collect();
    let deleted = calls
        .iter()
        .filter(|c| c.method == "DELETE" && c.path.starts_with(&followup_path("bob-token")))
        .count();
    assert_eq!(
        posted.len(),
        deleted,
        "a progress followup, if any, is removed once the prompt shows the outcome"
    );
}

fn has_no_embeds(call: &Call) -> bool {
    call.body["embeds"].as_array().is_none_or(|e| e.is_empty())
}

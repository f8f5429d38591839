//! The Slack adapter against a fake Slack on loopback: signed HTTP requests, Socket Mode,
//! Block Kit rendering, and where replies go.

mod blocks;
mod delivery;
mod fake;
mod http;
mod incidents;
mod security;
mod socket;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use firebreak::chat::slack::{
    API_URL, APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, Slack, SlackSettings, Tuning,
};
use firebreak::sim::SimServer;
use serde_json::{Value, json};

use crate::support::{SHIPPED_RUNBOOK, bot, demo, sim};
use fake::{FakeSlack, now, sign};

/// The signing secret the tests sign with (Slack's documentation example).
pub const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// The body limit the tests run with.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How the bot reaches Slack in a test.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Signing secret: the HTTP endpoints.
    Http,
    /// App-level token: Socket Mode, no HTTP endpoints.
    Socket,
}

/// A simulated cluster, a fake Slack, and the Slack adapter between them.
pub struct Harness {
    pub fake: FakeSlack,
    pub sim: SimServer,
    pub slack: Slack,
    /// The bot behind the adapter.
    pub bot: Arc<firebreak::Bot>,
    /// Base URL of Firebreak's HTTP server.
    pub url: String,
    client: reqwest::Client,
}

impl Harness {
    pub async fn start(mode: Mode) -> Harness {
        let fake = FakeSlack::start().await;
        let sim = sim(demo()).await;
        let bot = Arc::new(bot(&sim, &[SHIPPED_RUNBOOK]));
        let mut env = BTreeMap::new();
        env.insert(BOT_TOKEN.to_string(), "xoxb-test-bot".to_string());
        env.insert(API_URL.to_string(), fake.api_url.clone());
        match mode {
            Mode::Http => env.insert(SIGNING_SECRET.to_string(), SECRET.to_string()),
            Mode::Socket => env.insert(APP_TOKEN.to_string(), "xapp-test-app".to_string()),
        };
        let settings = SlackSettings::from_env(&env)
            .expect("settings are valid")
            .expect("Slack is configured");
        let tuning = Tuning {
            body_limit: BODY_LIMIT,
            progress_interval: Duration::from_millis(50),
            reconnect_delay: Duration::from_millis(50),
        };
        let slack = Slack::new(Arc::clone(&bot), &settings, tuning).expect("adapter builds");
        slack
            .allow_own_workspace()
            .await
            .expect("the fake answers auth.test");
        let routes: Vec<_> = slack.routes().into_iter().collect();
        assert_eq!(routes.is_empty(), mode == Mode::Socket);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = firebreak::server::app(routes);
        tokio::spawn(async move { axum::serve(listener, app).await });
        if slack.has_socket_mode() {
            tokio::spawn(slack.clone().run_socket_mode());
        }
        Harness {
            fake,
            sim,
            slack,
            bot,
            url,
            client: reqwest::Client::new(),
        }
    }

    /// POST `body` to `path` with the given timestamp and signature headers.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, String)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.expect("Firebreak answers")
    }

    /// POST `body` signed the way Slack signs, at `timestamp`.
    pub async fn post_signed_at(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        timestamp: i64,
    ) -> reqwest::Response {
        let ts = timestamp.to_string();
        let signature = sign(SECRET, &ts, body);
        self.post_raw(
            path,
            content_type,
            body.to_string(),
            &[
                ("x-slack-request-timestamp", ts),
                ("x-slack-signature", signature),
            ],
        )
        .await
    }

    /// POST `body` signed now.
    pub async fn post_signed(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> reqwest::Response {
        self.post_signed_at(path, content_type, body, now()).await
    }
}

/// A slash command form, as Slack posts it.
pub fn command_form(fake: &FakeSlack, command: &str, text: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "gIkuvaNzQIHg97ATvDxqgjtO"),
        ("team_id", "T0001"),
        ("team_domain", "example"),
        ("channel_id", "C_INC"),
        ("channel_name", "inc-model-server"),
        ("user_id", "U_ALICE"),
        ("user_name", "alice"),
        ("command", command),
        ("text", text),
        ("api_app_id", "A0FIREBRK"),
        ("is_enterprise_install", "false"),
        ("response_url", fake.response_url("cmd-1").as_str()),
        ("trigger_id", &unique_trigger_id()),
    ])
    .unwrap()
}

/// A trigger id no other request of this test run carries: Slack gives each command and
/// click its own, and Firebreak runs a repeated one only once.
pub fn unique_trigger_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("13345224609.{nanos:x}.{n:x}")
}

/// Slack's `block_actions` payload for a click on a Firebreak report (`data/block_actions.json`),
/// with who clicked, the button's value, the message's ts and the response_url filled in.
pub fn block_actions(
    response_url: &str,
    user: (&str, &str),
    value: &str,
    message_ts: &str,
) -> Value {
    let mut payload = data("block_actions.json");
    payload["user"]["id"] = json!(user.0);
    payload["user"]["username"] = json!(user.1);
    payload["user"]["name"] = json!(user.1);
    payload["container"]["message_ts"] = json!(message_ts);
    payload["message"]["ts"] = json!(message_ts);
    payload["response_url"] = json!(response_url);
    payload["actions"][0]["value"] = json!(value);
    payload["trigger_id"] = json!(unique_trigger_id());
    payload
}

/// A payload from `tests/slack/data/`.
pub fn data(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/slack/data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The header text of a posted message body.
pub fn header(body: &Value) -> String {
    body["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Whether a posted message is a progress snapshot.
pub fn in_progress(body: &Value) -> bool {
    body["blocks"].to_string().contains("in progress")
}

/// The button values of a posted message, in order.
pub fn button_values(body: &Value) -> Vec<String> {
    body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["value"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_app_manifest_declares_every_command_the_endpoints_and_the_scopes() {
    let text = std::fs::read_to_string("deploy/slack/manifest.yaml").unwrap();
    let manifest: Value = serde_norway::from_str(&text).expect("the manifest is YAML");
    let commands: Vec<&str> = manifest["features"]["slash_commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    for info in firebreak::command::COMMANDS {
        let slash = format!("/{}", info.name);
        assert!(
            commands.contains(&slash.as_str()),
            "{slash} missing: {commands:?}"
        );
    }
    for approval in ["/approve", "/deny"] {
        assert!(commands.contains(&approval), "{approval} missing");
    }
    for command in manifest["features"]["slash_commands"].as_array().unwrap() {
        assert!(
            command["url"]
                .as_str()
                .unwrap()
                .ends_with("/slack/commands")
        );
    }
    let settings = &manifest["settings"];
    assert!(
        settings["interactivity"]["request_url"]
            .as_str()
            .unwrap()
            .ends_with("/slack/interactions")
    );
    assert!(
        settings["event_subscriptions"]["request_url"]
            .as_str()
            .unwrap()
            .ends_with("/slack/events")
    );
    assert_eq!(
        settings["event_subscriptions"]["bot_events"],
        json!(["app_mention", "reaction_added"])
    );
    assert!(settings["socket_mode_enabled"].is_boolean());
    let scopes = &manifest["oauth_config"]["scopes"]["bot"];
    for scope in [
        "commands",
        "chat:write",
        "chat:write.public",
        "app_mentions:read",
        "channels:manage",
        "files:write",
        "reactions:read",
        "channels:history",
        "groups:history",
    ] {
        assert!(
            scopes.as_array().unwrap().iter().any(|s| s == scope),
            "{scope} missing"
        );
    }
}

#[tokio::test]
async fn serve_refuses_inconsistent_slack_settings_and_names_the_variable() {
    let sim = sim(demo()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig_yaml("ai-production")).unwrap();
    let cases = [
        (vec![(BOT_TOKEN, "xoxb-secret-value")], SIGNING_SECRET),
        (
            vec![
                (BOT_TOKEN, "xoxb-secret-value"),
                (APP_TOKEN, "xoxb-secret-value"),
            ],
            APP_TOKEN,
        ),
        (vec![(SIGNING_SECRET, "secret-value")], BOT_TOKEN),
    ];
    for (vars, named) in cases {
        let kubeconfig = kubeconfig.clone();
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // The simulator answers on this runtime, so the binary runs off it.
        let output = tokio::task::spawn_blocking(move || {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_firebreak"));
            command
                .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig"])
                .arg(&kubeconfig)
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            for name in [BOT_TOKEN, SIGNING_SECRET, APP_TOKEN, API_URL] {
                command.env_remove(name).env_remove(format!("{name}_FILE"));
            }
            for name in [
                "FIREBREAK_LISTEN",
                "FIREBREAK_RUNBOOKS",
                "FIREBREAK_TEMPLATES",
            ] {
                command.env_remove(name);
            }
            command.envs(vars).output().unwrap()
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(stderr.contains(named), "{named} not named: {stderr}");
        assert!(
            !stderr.contains("secret-value"),
            "a secret was printed: {stderr}"
        );
    }
}

/// Kills the child process it holds when dropped, so a failing test leaves nothing running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn firebreak_serve_answers_a_command_over_socket_mode() {
    let fake = FakeSlack::start().await;
    let sim = sim(demo()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig_yaml("ai-production")).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_firebreak"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for name in [BOT_TOKEN, SIGNING_SECRET, APP_TOKEN, API_URL] {
        command.env_remove(name).env_remove(format!("{name}_FILE"));
    }
    for name in [
        "FIREBREAK_LISTEN",
        "FIREBREAK_RUNBOOKS",
        "FIREBREAK_TEMPLATES",
    ] {
        command.env_remove(name);
    }
    command
        .env(BOT_TOKEN, "xoxb-test-bot")
        .env(APP_TOKEN, "xapp-test-app")
        .env(API_URL, &fake.api_url)
        // Its own state: accepted trigger ids are remembered across runs of the test.
        .env("FIREBREAK_STATE", dir.path().join("state.db"));
    let _child = KillOnDrop(command.spawn().expect("firebreak starts"));

    let mut socket = fake.next_socket().await;
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let hello = json!({"type": "hello", "num_connections": 1, "debug_info": {"host": "applink-fake"}, "connection_info": {"app_id": "A0FIREBRK"}});
    socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    let envelope = json!({
        "envelope_id": "env-serve-1", "type": "slash_commands", "accepts_response_payload": true,
        "payload": {
            "team_id": "T0001", "channel_id": "C_INC", "user_id": "U_ALICE", "user_name": "alice",
            "command": "/help", "text": "", "response_url": fake.response_url("cmd-serve"),
            "trigger_id": unique_trigger_id()
        }
    });
    socket
        .send(Message::Text(envelope.to_string().into()))
        .await
        .unwrap();
    let ack = loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                break serde_json::from_str::<Value>(&text).unwrap();
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no ack from firebreak serve: {other:?}"),
        }
    };
    assert_eq!(ack["envelope_id"], "env-serve-1");
    let calls = fake
        .wait_for("the help reply", |calls| {
            calls.iter().any(|c| c.method == "chat.postMessage")
        })
        .await;
    let post = calls
        .iter()
        .find(|c| c.method == "chat.postMessage")
        .unwrap();
    assert_eq!(post.body["channel"], "C_INC");
    assert_eq!(post.auth.as_deref(), Some("Bearer xoxb-test-bot"));
}

#[tokio::test]
async fn firebreak_serve_announces_alerts_in_the_configured_slack_channel() {
    let fake = FakeSlack::start().await;
    let sim = sim(demo()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, sim.kubeconfig_yaml("ai-production")).unwrap();
    let config = dir.path().join("firebreak.yaml");
    std::fs::write(
        &config,
        format!(
            "state: {}\nalerts:\n  slack_channel: C_ALERTS\n",
            dir.path().join("state.db").display()
        ),
    )
    .unwrap();
    // A free port for --listen (the binary binds it right after).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_firebreak"));
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .arg("--config")
        .arg(&config)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for name in [BOT_TOKEN, SIGNING_SECRET, APP_TOKEN, API_URL] {
        command.env_remove(name).env_remove(format!("{name}_FILE"));
    }
    for name in [
        "FIREBREAK_LISTEN",
        "FIREBREAK_RUNBOOKS",
        "FIREBREAK_TEMPLATES",
        "FIREBREAK_CONFIG",
        "FIREBREAK_STATE",
        "FIREBREAK_ALERTMANAGER_TOKEN",
        "FIREBREAK_ALERTMANAGER_TOKEN_FILE",
    ] {
        command.env_remove(name);
    }
    command
        .env(BOT_TOKEN, "xoxb-test-bot")
        .env(SIGNING_SECRET, SECRET)
        .env(API_URL, &fake.api_url);
    let _child = KillOnDrop(command.spawn().expect("firebreak starts"));

    let firing = r#"{
      "version": "4", "groupKey": "{}:{alertname=\"VLLMKVCacheFull\"}", "status": "firing",
      "receiver": "firebreak", "groupLabels": {"alertname": "VLLMKVCacheFull"},
      "commonLabels": {"alertname": "VLLMKVCacheFull", "severity": "critical", "service": "model-server"},
      "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
      "alerts": [{"status": "firing", "labels": {"alertname": "VLLMKVCacheFull"}, "annotations": {},
                  "startsAt": "2026-11-28T02:51:00Z", "endsAt": "0001-01-01T00:00:00Z",
                  "generatorURL": "", "fingerprint": "a1b2"}]
    }"#;
    let client = reqwest::Client::new();
    let mut answered = None;
    for _ in 0..600 {
        let sent = client
            .post(format!("http://127.0.0.1:{port}/alertmanager"))
            .header("content-type", "application/json")
            .body(firing)
            .send()
            .await;
        if let Ok(response) = sent {
            answered = Some(response.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered, Some(200), "the webhook answers");
    let calls = fake
        .wait_for("the alert announced in C_ALERTS", |calls| {
            calls.iter().any(|c| {
                c.method == "chat.postMessage"
                    && c.body["channel"] == "C_ALERTS"
                    && c.body["blocks"].to_string().contains("INC-1")
            })
        })
        .await;
    assert!(
        calls
            .iter()
            .filter(|c| c.method == "chat.postMessage")
            .all(|c| c.body["channel"] == "C_ALERTS"),
        "{calls:#?}"
    );
}

//! The issue-14 findings against `/discord/interactions`, signed as Discord signs: non-ASCII
//! arguments, other servers and DMs, strangers changing incidents, options taken by position,
//! replayed interaction ids, mentions, and payloads that name no user.

use std::sync::atomic::{AtomicU64, Ordering};

use firebreak::chat::access::{NO_USER_DISCORD, NOT_ENABLED_DISCORD};
use serde_json::{Value, json};

use super::Harness;
use super::fake::Call;
use super::payloads;

/// A fresh interaction id and token: Discord never sends one twice.
fn fresh() -> (String, String) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    (
        format!("{}", 881_000_000_000_000_000 + n),
        format!("sec-token-{n}"),
    )
}

/// `/incident <sub>` with string options, as alice in the usual channel.
fn incident(sub: &str, options: &[(&str, &str)]) -> (Value, String) {
    let (id, token) = fresh();
    let options: Vec<Value> = options
        .iter()
        .map(|(name, value)| payloads::string_option(name, value))
        .collect();
    let payload = payloads::command(
        &id,
        &token,
        "incident",
        json!([{ "name": sub, "type": 1, "options": options }]),
    );
    (payload, token)
}

fn as_member(mut payload: Value, user_id: &str, name: &str) -> Value {
    payload["member"] = payloads::member(user_id, name, None);
    payload
}

fn in_channel(mut payload: Value, channel: &str) -> Value {
    payload["channel_id"] = json!(channel);
    payload["channel"]["id"] = json!(channel);
    payload
}

/// Post it (answered with a deferral) and wait for the reply that contains `needle`.
async fn run(h: &Harness, (payload, token): (Value, String), needle: &str) -> Vec<Call> {
    let (status, body) = h.post(&payload).await;
    assert_eq!((status, &body), (200, &json!({ "type": 5 })), "{needle}");
    h.fake
        .wait_for(needle, |calls| {
            calls
                .iter()
                .any(|c| c.path.contains(&token) && c.body.to_string().contains(needle))
        })
        .await
}

const EVE: &str = "111000000000000066";

#[tokio::test]
async fn finding_1_non_ascii_arguments_are_answered_not_a_panic() {
    let h = Harness::start("http").await;
    run(
        &h,
        incident("note", &[("text", "Noté")]),
        "this channel has none open",
    )
    .await;
    run(
        &h,
        incident("declare", &[("severity", "sev2"), ("title", "数据库 down")]),
        "INC-1",
    )
    .await;
    run(&h, incident("note", &[("text", "Noté")]), "Noted").await;
    run(&h, incident("note", &[("text", "数据库 down")]), "Noted").await;
    run(&h, incident("resolve", &[("summary", "ñoño")]), "Resolved").await;
}

#[tokio::test]
async fn finding_2_other_servers_and_direct_messages_are_refused() {
    let h = Harness::start("http").await;
    let (mut other, _) = incident("declare", &[("severity", "sev1"), ("title", "pwned")]);
    other["guild_id"] = json!("999000000000000009");
    other["data"]["guild_id"] = json!("999000000000000009");
    let (mut direct, _) = incident("declare", &[("severity", "sev1"), ("title", "via DM")]);
    let user = direct["member"]["user"].clone();
    let object = direct.as_object_mut().unwrap();
    for key in ["guild_id", "member", "channel"] {
        object.remove(key);
    }
    object.insert("user".into(), user);
    object["data"].as_object_mut().unwrap().remove("guild_id");
    for payload in [other, direct] {
        let (status, body) = h.post(&payload).await;
        assert_eq!(status, 200);
        assert_eq!(body["type"], 4, "{body}");
        assert_eq!(body["data"]["content"], NOT_ENABLED_DISCORD);
        assert_eq!(body["data"]["flags"], 64);
    }
    // Nothing ran: the next declaration in our server is INC-1.
    run(
        &h,
        incident("declare", &[("severity", "sev3"), ("title", "ours")]),
        "INC-1 (sev3): ours",
    )
    .await;
}

#[tokio::test]
async fn finding_3_strangers_cannot_change_an_incident_and_options_are_taken_by_name() {
    let h = Harness::start("http").await;
    run(
        &h,
        incident(
            "declare",
            &[("severity", "sev2"), ("title", "KV cache full")],
        ),
        "INC-1",
    )
    .await;
    let (payload, token) = incident("severity", &[("severity", "sev4")]);
    run(
        &h,
        (as_member(payload, EVE, "eve"), token),
        "only INC-1's commander",
    )
    .await;
    let (payload, token) = incident("resolve", &[("summary", "nothing to see")]);
    run(
        &h,
        (as_member(payload, EVE, "eve"), token),
        "only INC-1's commander",
    )
    .await;
    // A summary that starts like an incident id is the summary, not the incident: in a
    // channel with no incident this needs one, and INC-1 stays open.
    let (payload, token) = incident("resolve", &[("summary", "INC-1")]);
    run(
        &h,
        (in_channel(payload, "777000000000000002"), token),
        "this channel has none open",
    )
    .await;
    // Named by its option, it is the incident.
    let (payload, token) = incident("resolve", &[("summary", "fixed"), ("incident", "INC-1")]);
    run(
        &h,
        (in_channel(payload, "777000000000000002"), token),
        "Resolved",
    )
    .await;
    // And a role given with the user picker names the person by id: eve may act once ops.
    run(
        &h,
        incident("declare", &[("severity", "sev2"), ("title", "second")]),
        "INC-2",
    )
    .await;
    let (id, token) = fresh();
    let role = payloads::command(
        &id,
        &token,
        "incident",
        json!([{ "name": "role", "type": 1, "options": [
            payloads::string_option("role", "ops"),
            { "name": "person", "type": 6, "value": EVE }
        ]}]),
    );
    run(&h, (role, token), "Updated").await;
    let (payload, token) = incident("severity", &[("severity", "sev1")]);
    run(&h, (as_member(payload, EVE, "eve"), token), "INC-2 (sev1)").await;
}

#[tokio::test]
async fn finding_4_a_replayed_interaction_runs_once() {
    let h = Harness::start("http").await;
    let (payload, token) = incident("declare", &[("severity", "sev2"), ("title", "replayed")]);
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(h.post(&payload).await);
    }
    assert_eq!(answers[0], (200, json!({ "type": 5 })));
    for (status, body) in &answers[1..] {
        assert_eq!(*status, 200);
        assert!(
            body["data"]["content"]
                .as_str()
                .unwrap()
                .contains("Already received"),
            "{body}"
        );
    }
    h.fake
        .wait_for("the one declaration", |calls| {
            calls
                .iter()
                .any(|c| c.path.contains(&token) && c.body.to_string().contains("INC-1"))
        })
        .await;
    run(
        &h,
        incident("declare", &[("severity", "sev3"), ("title", "next")]),
        "INC-2 (sev3): next",
    )
    .await;
}

#[tokio::test]
async fn finding_6_no_message_can_ping_anyone() {
    let h = Harness::start("http").await;
    let (id, token) = fresh();
    let triage = payloads::command(
        &id,
        &token,
        "triage",
        json!([payloads::string_option("service", "@everyone")]),
    );
    let calls = run(&h, (triage, token), "@everyone").await;
    let calls = run(
        &h,
        incident(
            "declare",
            &[
                ("severity", "sev2"),
                ("title", "@here <@&123> <@111000000000000066>"),
            ],
        ),
        "INC-1",
    )
    .await
    .into_iter()
    .chain(calls)
    .collect::<Vec<_>>();
    let messages: Vec<&Call> = calls
        .iter()
        .filter(|c| c.body.get("content").is_some() || c.body.get("embeds").is_some())
        .collect();
    assert!(messages.len() >= 2, "{calls:#?}");
    for call in messages {
        assert_eq!(
            call.body["allowed_mentions"],
            json!({ "parse": [] }),
            "{} {} may ping: {:#}",
            call.method,
            call.path,
            call.body
        );
    }
}

#[tokio::test]
async fn finding_7_an_interaction_that_names_no_user_is_refused() {
    let h = Harness::start("http").await;
    let (mut payload, _) = incident("declare", &[("severity", "sev1"), ("title", "nobody")]);
    payload.as_object_mut().unwrap().remove("member");
    let (status, body) = h.post(&payload).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["content"], NO_USER_DISCORD, "{body}");
    // A member without its guild is no better.
    let (mut payload, _) = incident("declare", &[("severity", "sev1"), ("title", "nobody")]);
    payload["member"].as_object_mut().unwrap().remove("user");
    let (status, body) = h.post(&payload).await;
    assert!(
        status == 400 || body["data"]["content"] == NO_USER_DISCORD,
        "{status} {body}"
    );
    run(
        &h,
        incident("declare", &[("severity", "sev3"), ("title", "somebody")]),
        "INC-1 (sev3): somebody",
    )
    .await;
}

/// An adapter whose bot keeps its state in `state` (a file), served on a fresh port: what a
/// restarted `firebreak serve` is. Its interactions URL.
async fn serve_on_file(
    sim: &firebreak::sim::SimServer,
    fake: &super::fake::FakeDiscord,
    state: &std::path::Path,
) -> String {
    use firebreak::chat::discord::{Discord, DiscordSettings, http};
    use firebreak::render::Templates;
    use firebreak::runbook::{Runbook, Runbooks};
    let public_key = super::hex(&super::signing_key().verifying_key().to_bytes());
    let env = super::env(
        fake,
        &[
            ("FIREBREAK_DISCORD_PUBLIC_KEY", &public_key),
            ("FIREBREAK_DISCORD_MODE", "http"),
        ],
    );
    let settings = DiscordSettings::from_env(&env).unwrap().unwrap();
    let mut runbooks = Runbooks::default();
    runbooks
        .add(Runbook::from_yaml(crate::support::SHIPPED_RUNBOOK, "model-server.yaml").unwrap())
        .unwrap();
    let bot = firebreak::Bot::new(
        runbooks,
        Templates::load_dir("templates".as_ref()).unwrap(),
        firebreak::cluster::Cluster::from_url(&sim.url()).unwrap(),
        firebreak::store::Store::open(state).unwrap(),
    );
    let discord = std::sync::Arc::new(Discord::new(std::sync::Arc::new(bot), settings).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{}", listener.local_addr().unwrap(), http::PATH);
    tokio::spawn(firebreak::server::serve(
        listener,
        firebreak::server::app(vec![http::routes(discord)]),
        std::future::pending(),
    ));
    url
}

#[tokio::test]
async fn finding_4_a_restart_inside_the_window_still_refuses_the_replay() {
    use ed25519_dalek::Signer;
    let sim = crate::support::sim(crate::support::demo()).await;
    let fake = super::fake::FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let (payload, _) = incident("declare", &[("severity", "sev2"), ("title", "replayed")]);
    let body = serde_json::to_vec(&payload).unwrap();
    let timestamp = super::now().to_string();
    let signature = hex::encode(
        super::signing_key()
            .sign(&[timestamp.as_bytes(), &body].concat())
            .to_bytes(),
    );
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    // Before and after the "restart": a new adapter, bot and server on the same state file.
    for _ in 0..2 {
        let url = serve_on_file(&sim, &fake, &state).await;
        let answer: Value = client
            .post(&url)
            .header("X-Signature-Ed25519", &signature)
            .header("X-Signature-Timestamp", &timestamp)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answers.push(answer);
    }
    assert_eq!(answers[0], json!({ "type": 5 }));
    assert!(
        answers[1]["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("Already received"),
        "{answers:?}"
    );
}

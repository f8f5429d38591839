//! Socket Mode: the same commands and clicks over a websocket, each envelope acknowledged,
//! and a dropped connection reopened.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::{Harness, Mode, block_actions, button_values, header, in_progress};

type Socket = WebSocketStream<TcpStream>;

async fn send(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .expect("the bot reads the socket");
}

async fn hello(socket: &mut Socket) {
    send(socket, super::data("socket_hello.json")).await;
}

/// The next text frame the bot sends (bounded wait).
async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("the bot acknowledges")
            .expect("the socket stays open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("the ack is JSON");
        }
    }
}

#[tokio::test]
async fn socket_mode_runs_commands_and_clicks_acks_envelopes_and_reconnects() {
    let h = Harness::start(Mode::Socket).await;

    // The first connection drops right after hello; the bot opens another.
    let mut first = h.fake.next_socket().await;
    hello(&mut first).await;
    first.close(None).await.ok();
    drop(first);
    let mut socket = h.fake.next_socket().await;
    hello(&mut socket).await;
    let opens = h.fake.calls_of("apps.connections.open");
    assert!(opens.len() >= 2, "{opens:#?}");
    assert!(
        opens
            .iter()
            .all(|c| c.auth.as_deref() == Some("Bearer xapp-test-app")),
        "apps.connections.open uses the app-level token: {opens:#?}"
    );

    send(
        &mut socket,
        json!({
            "envelope_id": "dbdd0ef3-1543-4f94-bfb4-133d0e6c1545",
            "type": "slash_commands",
            "accepts_response_payload": true,
            "payload": {
                "token": "bHKJ2n9AW6Ju3MjciOHfbA1b", "team_id": "T0001", "team_domain": "example",
                "channel_id": "C_INC", "channel_name": "inc-model-server",
                "user_id": "U_ALICE", "user_name": "alice",
                "command": "/triage", "text": "model-server", "api_app_id": "A0FIREBRK",
                "is_enterprise_install": "false",
                "response_url": h.fake.response_url("cmd-socket"),
                "trigger_id": "2402583434483.1234.b6d4bbd3"
            }
        }),
    )
    .await;
    let ack = next_frame(&mut socket).await;
    assert_eq!(ack["envelope_id"], "dbdd0ef3-1543-4f94-bfb4-133d0e6c1545");
    assert_eq!(ack["payload"]["text"], "Running triage on model-server…");
    assert_eq!(ack["payload"]["response_type"], "ephemeral");

    let calls = h
        .fake
        .wait_for("the final triage report", |calls| {
            calls.iter().any(|c| {
                (c.method == "chat.postMessage" || c.method == "chat.update")
                    && header(&c.body).contains("Triage: model-server")
                    && !in_progress(&c.body)
            })
        })
        .await;
    let last = calls
        .iter()
        .rev()
        .find(|c| c.method == "chat.postMessage" || c.method == "chat.update")
        .unwrap();
    assert_eq!(last.body["channel"], "C_INC");
    assert_eq!(last.auth.as_deref(), Some("Bearer xoxb-test-bot"));
    assert!(button_values(&last.body).contains(&"/mitigate model-server".to_string()));

    // A click on that report's Mitigate button, delivered over the socket.
    send(
        &mut socket,
        json!({
            "envelope_id": "9b8a5e7e-1d4c-4a36-9d2f-59a1a5a7c2b0",
            "type": "interactive",
            "accepts_response_payload": false,
            "payload": block_actions(&h.fake.response_url("click-1"), ("U_BOB", "bob"), "/mitigate model-server", "1700000000.000001")
        }),
    )
    .await;
    let ack = next_frame(&mut socket).await;
    assert_eq!(ack["envelope_id"], "9b8a5e7e-1d4c-4a36-9d2f-59a1a5a7c2b0");
    h.fake
        .wait_for("the mitigate report", |calls| {
            calls.iter().any(|c| {
                (c.method == "chat.postMessage" || c.method == "chat.update")
                    && header(&c.body).contains("Mitigate: model-server")
                    && !in_progress(&c.body)
            })
        })
        .await;

    // A mention, delivered as an Events API envelope.
    send(
        &mut socket,
        json!({
            "envelope_id": "e-mention", "type": "events_api", "accepts_response_payload": false,
            "retry_attempt": 0, "retry_reason": "",
            "payload": {
                "token": "XXYYZZ", "team_id": "T0001", "api_app_id": "A0FIREBRK",
                "event": {
                    "type": "app_mention", "user": "U_CAROL", "text": "<@U0BOT> help triage",
                    "ts": "1700000300.000100", "channel": "C_INC", "event_ts": "1700000300.000100"
                },
                "type": "event_callback", "event_id": "Ev0002", "event_time": 1700000300
            }
        }),
    )
    .await;
    assert_eq!(next_frame(&mut socket).await["envelope_id"], "e-mention");
    h.fake
        .wait_for("the help for /triage", |calls| {
            calls.iter().any(|c| {
                let text = c.body["text"].as_str().unwrap_or("");
                c.method == "chat.postMessage"
                    && text.contains("/triage [service]")
                    && !text.contains("/incident")
            })
        })
        .await;

    // An envelope Firebreak has no use for is still acknowledged, so Slack does not resend it.
    send(
        &mut socket,
        json!({"envelope_id": "e-unknown", "type": "something_new", "payload": {}}),
    )
    .await;
    assert_eq!(next_frame(&mut socket).await["envelope_id"], "e-unknown");

    // Slack asks the bot to reconnect: it does, on a new socket.
    send(
        &mut socket,
        json!({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "applink-fake"}}),
    )
    .await;
    let mut again = h.fake.next_socket().await;
    hello(&mut again).await;
}

#[tokio::test]
async fn a_pushpin_over_socket_mode_pins_the_message_to_the_incident() {
    let h = Harness::start(Mode::Socket).await;
    let mut socket = h.fake.next_socket().await;
    hello(&mut socket).await;

    // An incident declared in C_INC binds it (and opens its own channel).
    send(
        &mut socket,
        json!({
            "envelope_id": "env-declare", "type": "slash_commands", "accepts_response_payload": true,
            "payload": {
                "team_id": "T0001", "channel_id": "C_INC", "user_id": "U_ALICE",
                "user_name": "alice", "command": "/incident", "text": "declare sev3 slow tokens",
                "response_url": h.fake.response_url("cmd-declare"), "trigger_id": "1.2.3"
            }
        }),
    )
    .await;
    assert_eq!(next_frame(&mut socket).await["envelope_id"], "env-declare");
    h.fake
        .wait_for("the incident channel", |calls| {
            calls.iter().any(|c| c.method == "conversations.create")
        })
        .await;

    h.fake
        .add_message("C_INC", "1700000700.000100", "p99 TTFT doubled at 04:10");
    send(
        &mut socket,
        json!({
            "envelope_id": "env-pin", "type": "events_api", "accepts_response_payload": false,
            "retry_attempt": 0, "retry_reason": "",
            "payload": {
                "token": "ZZZZZZWSxiZZZ2yIvs3peJ", "team_id": "T0001", "api_app_id": "A0FIREBRK",
                "event": {
                    "type": "reaction_added", "user": "U_BOB", "reaction": "pushpin",
                    "item_user": "U_ALICE",
                    "item": {"type": "message", "channel": "C_INC", "ts": "1700000700.000100"},
                    "event_ts": "1700000800.000100"
                },
                "type": "event_callback", "event_id": "Ev0SOCKPIN", "event_time": 1700000800
            }
        }),
    )
    .await;
    assert_eq!(next_frame(&mut socket).await["envelope_id"], "env-pin");
    let mut pinned = Vec::new();
    for _ in 0..600 {
        pinned = h
            .bot
            .store()
            .timeline("INC-1")
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
    assert_eq!(pinned[0].text, "p99 TTFT doubled at 04:10");
    assert_eq!(pinned[0].actor.id, "U_BOB");
}

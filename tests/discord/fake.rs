//! A fake Discord on loopback: the REST API (recording every call) and a gateway websocket
//! that says HELLO, takes IDENTIFY, sends READY, ACKs heartbeats and delivers dispatches.
//! Channel messages, threads and thread members are answered as Discord does; a
//! `multipart/form-data` body (an attachment) is recorded as its `payload_json` and files.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// One REST call the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub authorization: Option<String>,
    /// The status the fake answered.
    pub status: u16,
    /// What the fake answered (a created message or thread carries its new `id`).
    pub response: Value,
    /// Files of a multipart body: (form field, filename, content).
    pub files: Vec<Upload>,
}

/// One file part of a multipart body.
#[derive(Debug, Clone)]
pub struct Upload {
    pub field: String,
    pub filename: String,
    pub content: String,
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    identifies: Mutex<Vec<Value>>,
    rate_limit_next: AtomicU32,
    next_id: AtomicU64,
    gateway_url: Mutex<String>,
}

/// The fake: REST at `url`, gateway at `gateway_url`.
pub struct FakeDiscord {
    pub url: String,

    shared: Arc<Shared>,
    dispatch: mpsc::UnboundedSender<(String, Value)>,
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        let shared = Arc::new(Shared::default());
        shared.next_id.store(900, Ordering::SeqCst);
        let rest = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", rest.local_addr().unwrap());
        let ws = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let gateway_url = format!("ws://{}", ws.local_addr().unwrap());
        *shared.gateway_url.lock().unwrap() = gateway_url.clone();
        let app = Router::new().fallback(rest_call).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(rest, app).await });
        let (dispatch, receiver) = mpsc::unbounded_channel();
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let gateway_shared = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = ws.accept().await {
                let shared = gateway_shared.clone();
                let receiver = receiver.clone();
                tokio::spawn(async move { gateway_session(stream, shared, receiver).await });
            }
        });
        FakeDiscord {
            url,

            shared,
            dispatch,
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// Answer the next `n` calls with 429.
    pub fn rate_limit_next(&self, n: u32) {
        self.shared.rate_limit_next.store(n, Ordering::SeqCst);
    }

    /// Wait (bounded) until `done` holds for the calls; returns them.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        for _ in 0..600 {
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}; calls: {:#?}", self.calls());
    }

    /// Wait (bounded) for the bot's IDENTIFY on the gateway.
    pub async fn wait_for_identify(&self) -> Value {
        for _ in 0..600 {
            if let Some(identify) = self.shared.identifies.lock().unwrap().first() {
                return identify.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the bot never identified on the gateway; calls: {:#?}",
            self.calls()
        );
    }

    /// Send a dispatch event (`t`, `d`) on the gateway.
    pub fn dispatch(&self, event: &str, data: Value) {
        self.dispatch.send((event.to_string(), data)).unwrap();
    }
}

async fn rest_call(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (body, files) = match content_type
        .strip_prefix("multipart/form-data")
        .and_then(|rest| rest.split("boundary=").nth(1))
    {
        Some(boundary) => multipart(&body, boundary.trim_matches('"')),
        None => (
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            Vec::new(),
        ),
    };
    let limited = shared
        .rate_limit_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let (status, answer) = if limited {
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "message": "You are being rate limited.", "retry_after": 0.05, "global": false }),
        )
    } else {
        answer(&shared, &method, &path, &body)
    };
    shared.calls.lock().unwrap().push(Call {
        method: method.to_string(),
        path,
        body,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        status: status.as_u16(),
        response: answer.clone(),
        files,
    });
    if answer.is_null() {
        return status.into_response();
    }
    (status, axum::Json(answer)).into_response()
}

fn answer(shared: &Shared, method: &Method, path: &str, body: &Value) -> (StatusCode, Value) {
    let gateway = shared.gateway_url.lock().unwrap().clone();
    let message = |id: String| {
        let mut message = body.clone();
        if let Some(object) = message.as_object_mut() {
            object.insert("id".into(), json!(id));
        }
        message
    };
    match (method.as_str(), path) {
        ("GET", "/api/v10/gateway") => (StatusCode::OK, json!({ "url": gateway })),
        ("GET", "/api/v10/gateway/bot") => (
            StatusCode::OK,
            json!({
                "url": gateway,
                "shards": 1,
                "session_start_limit": { "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1 }
            }),
        ),
        ("PUT", p) if p.ends_with("/commands") => (StatusCode::OK, body.clone()),
        ("POST", p) if p.ends_with("/callback") => (StatusCode::NO_CONTENT, Value::Null),
        ("POST", p) if p.starts_with("/api/v10/webhooks/") => {
            let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
            (StatusCode::OK, message(id.to_string()))
        }
        ("PATCH", p) if p.starts_with("/api/v10/webhooks/") => {
            let id = p.rsplit('/').next().unwrap_or_default().to_string();
            (StatusCode::OK, message(id))
        }
        ("POST", p) if p.starts_with("/api/v10/channels/") && p.ends_with("/messages") => {
            let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
            let mut created = message(id.to_string());
            created["channel_id"] = json!(channel_of(p));
            (StatusCode::OK, created)
        }
        ("PATCH", p) if p.starts_with("/api/v10/channels/") && p.contains("/messages/") => {
            let id = p.rsplit('/').next().unwrap_or_default().to_string();
            let mut edited = message(id);
            edited["channel_id"] = json!(channel_of(p));
            (StatusCode::OK, edited)
        }
        ("POST", p) if p.starts_with("/api/v10/channels/") && p.ends_with("/threads") => {
            let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
            (
                StatusCode::CREATED,
                json!({
                    "id": id.to_string(),
                    "type": body["type"],
                    "name": body["name"],
                    "parent_id": channel_of(p),
                    "thread_metadata": { "archived": false, "auto_archive_duration": body["auto_archive_duration"], "locked": false }
                }),
            )
        }
        ("PUT", p) if p.starts_with("/api/v10/channels/") && p.contains("/thread-members/") => {
            (StatusCode::NO_CONTENT, Value::Null)
        }
        ("DELETE", _) => (StatusCode::NO_CONTENT, Value::Null),
        _ => (
            StatusCode::NOT_FOUND,
            json!({ "message": "404: Not Found", "code": 0 }),
        ),
    }
}

/// `/api/v10/channels/{id}/...` → `id`.
fn channel_of(path: &str) -> String {
    path.trim_start_matches("/api/v10/channels/")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Enough of RFC 7578 for the bot's attachments: `payload_json` becomes the body, every part
/// with a filename a recorded file.
fn multipart(body: &[u8], boundary: &str) -> (Value, Vec<Upload>) {
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let mut payload = Value::Null;
    let mut files = Vec::new();
    for part in text.split(delimiter.as_str()) {
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .unwrap_or_default();
        let param = |name: &str| {
            disposition
                .split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(&format!("{name}=")))
                .map(|v| v.trim_matches('"').to_string())
        };
        let field = param("name").unwrap_or_default();
        match param("filename") {
            Some(filename) => files.push(Upload {
                field,
                filename,
                content: content.to_string(),
            }),
            None if field == "payload_json" => {
                payload = serde_json::from_str(content).unwrap_or(Value::Null)
            }
            None => {}
        }
    }
    (payload, files)
}

async fn gateway_session(
    stream: tokio::net::TcpStream,
    shared: Arc<Shared>,
    dispatches: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>,
) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": 41250 } });
    if ws
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut sequence = 0u64;
    let mut ready = false;
    let mut dispatches = dispatches.lock().await;
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let Some(Ok(message)) = incoming else { return };
                let Message::Text(text) = message else { continue };
                let Ok(payload) = serde_json::from_str::<Value>(&text) else { continue };
                match payload["op"].as_u64() {
                    Some(2) => {
                        shared.identifies.lock().unwrap().push(payload.clone());
                        sequence += 1;
                        let gateway = shared.gateway_url.lock().unwrap().clone();
                        let ready_event = json!({
                            "op": 0, "s": sequence, "t": "READY",
                            "d": {
                                "v": 10,
                                "user": { "id": "555000000000000001", "username": "firebreak", "discriminator": "0", "global_name": null, "avatar": null, "bot": true },
                                "guilds": [],
                                "session_id": "fake-session",
                                "resume_gateway_url": gateway,
                                "shard": [0, 1],
                                "application": { "id": "555000000000000001", "flags": 0 }
                            }
                        });
                        if ws.send(Message::Text(ready_event.to_string().into())).await.is_err() { return; }
                        ready = true;
                    }
                    // A failed send shows up as the next read failing.
                    Some(1) => drop(ws.send(Message::Text(json!({ "op": 11 }).to_string().into())).await),
                    _ => {}
                }
            }
            event = dispatches.recv(), if ready => {
                let Some((name, data)) = event else { return };
                sequence += 1;
                let payload = json!({ "op": 0, "s": sequence, "t": name, "d": data });
                if ws.send(Message::Text(payload.to_string().into())).await.is_err() { return; }
            }
        }
    }
}

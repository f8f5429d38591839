//! A fake Slack on loopback: the Web API methods Firebreak calls, response URLs, and a Socket
//! Mode websocket server. It records every call and answers with Slack's response shapes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio_tungstenite::WebSocketStream;

/// One request the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    /// `chat.postMessage`, `chat.update`, ..., or `response_url`.
    pub method: String,
    /// The `Authorization` header.
    pub auth: Option<String>,
    /// The body, as JSON.
    pub body: Value,
    /// What the fake answered (Web API methods only; `Null` otherwise).
    pub response: Value,
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    next_ts: AtomicUsize,
    rate_limited: AtomicUsize,
    failures: Mutex<Vec<(String, String)>>,
    ws_url: Mutex<String>,
    base: Mutex<String>,
    /// Channel names conversations.create has handed out (or the test took).
    channel_names: Mutex<Vec<String>>,
    next_id: AtomicUsize,
    /// Messages people wrote: `(channel, ts, text)`, for conversations.history.
    messages: Mutex<Vec<(String, String, String)>>,
}

/// The fake Slack.
pub struct FakeSlack {
    shared: Arc<Shared>,
    /// `http://127.0.0.1:P/api`, for FIREBREAK_SLACK_API_URL.
    pub api_url: String,
    base: String,
    sockets: AsyncMutex<mpsc::UnboundedReceiver<WebSocketStream<TcpStream>>>,
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl FakeSlack {
    /// Start the Web API and the websocket server.
    pub async fn start() -> FakeSlack {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/api/{method}", post(api).get(api_get))
            .route("/response/{id}", post(response_url))
            .route("/upload/{id}", post(upload))
            .with_state(shared.clone());
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        *shared.base.lock().unwrap() = base.clone();

        let ws_listener = TcpListener::bind(loopback()).await.unwrap();
        *shared.ws_url.lock().unwrap() = format!(
            "ws://{}/link/?ticket=fake-ticket",
            ws_listener.local_addr().unwrap()
        );
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = ws_listener.accept().await {
                if let Ok(ws) = tokio_tungstenite::accept_async(stream).await
                    && tx.send(ws).is_err()
                {
                    break;
                }
            }
        });
        FakeSlack {
            shared,
            api_url: format!("{base}/api"),
            base,
            sockets: AsyncMutex::new(rx),
        }
    }

    /// A response_url for one command or click.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.base)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// Calls of one method.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Take a channel name, so conversations.create answers `name_taken` for it.
    pub fn take_channel_name(&self, name: &str) {
        self.shared
            .channel_names
            .lock()
            .unwrap()
            .push(name.to_string());
    }

    /// A message someone wrote in `channel` at `ts`, for conversations.history.
    pub fn add_message(&self, channel: &str, ts: &str, text: &str) {
        self.shared.messages.lock().unwrap().push((
            channel.to_string(),
            ts.to_string(),
            text.to_string(),
        ));
    }

    /// Answer the next `n` Web API calls with 429 and `Retry-After: 0`.
    pub fn rate_limit_next(&self, n: usize) {
        self.shared.rate_limited.store(n, Ordering::SeqCst);
    }

    /// Answer the next call of `method` with Slack's error `error` (`{"ok": false, ...}`).
    pub fn fail_next(&self, method: &str, error: &str) {
        self.shared
            .failures
            .lock()
            .unwrap()
            .push((method.to_string(), error.to_string()));
    }

    /// Wait (bounded) until `done` holds for the calls; panics with them if it never does.
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

    /// The next websocket connection the bot opens (bounded wait).
    pub async fn next_socket(&self) -> WebSocketStream<TcpStream> {
        tokio::time::timeout(Duration::from_secs(30), self.sockets.lock().await.recv())
            .await
            .expect("the bot opens a Socket Mode connection")
            .expect("the websocket server runs")
    }
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = parse_body(&headers, &body);
    answer(&shared, method, &headers, body)
}

/// The Web API methods slack-morphism calls with GET and query parameters.
async fn api_get(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let body = Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    );
    answer(&shared, method, &headers, body)
}

fn answer(shared: &Shared, method: String, headers: &HeaderMap, body: Value) -> Response {
    if method == "auth.test" {
        // Asked once at start (the bot token's workspace); not one of the calls tests count.
        let answer = json!({
            "ok": true, "url": "https://example.slack.com/", "team": "Example",
            "user": "firebreak", "team_id": "T0001", "user_id": "U0BOT", "bot_id": "B0BOT"
        });
        return (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            answer.to_string(),
        )
            .into_response();
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let index = {
        let mut calls = shared.calls.lock().unwrap();
        calls.push(Call {
            method: method.clone(),
            auth,
            body: body.clone(),
            response: Value::Null,
        });
        calls.len() - 1
    };
    if shared
        .rate_limited
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::RETRY_AFTER, "0"),
            ],
            json!({"ok": false, "error": "ratelimited"}).to_string(),
        )
            .into_response();
    }
    let failure = {
        let mut failures = shared.failures.lock().unwrap();
        let found = failures.iter().position(|(m, _)| *m == method);
        found.map(|i| failures.remove(i).1)
    };
    let channel = body["channel"].clone();
    let answer = match method.as_str() {
        _ if failure.is_some() => json!({"ok": false, "error": failure}),
        "chat.postMessage" => {
            let n = shared.next_ts.fetch_add(1, Ordering::SeqCst);
            let ts = format!("1700000000.{:06}", n + 1);
            json!({
                "ok": true,
                "channel": channel,
                "ts": ts,
                "message": {
                    "type": "message", "subtype": "bot_message", "text": body["text"],
                    "ts": ts, "user": "U0BOT", "bot_id": "B0BOT", "blocks": body["blocks"]
                }
            })
        }
        "chat.update" => json!({
            "ok": true, "channel": channel, "ts": body["ts"], "text": body["text"],
            "message": { "text": body["text"], "user": "U0BOT", "bot_id": "B0BOT", "blocks": body["blocks"] }
        }),
        "chat.postEphemeral" => json!({"ok": true, "message_ts": "1700000099.000001"}),
        "chat.delete" => json!({"ok": true, "channel": channel, "ts": body["ts"]}),
        "conversations.create" => {
            let name = body["name"].as_str().unwrap_or_default().to_string();
            let mut names = shared.channel_names.lock().unwrap();
            if names.contains(&name) {
                json!({"ok": false, "error": "name_taken"})
            } else {
                names.push(name.clone());
                let n = shared.next_id.fetch_add(1, Ordering::SeqCst) + 1;
                json!({"ok": true, "channel": {
                    "id": format!("C_NEW{n}"), "name": name, "is_channel": true,
                    "created": 1700000000, "creator": "U0BOT", "is_archived": false,
                    "is_general": false, "is_member": true, "is_private": false
                }})
            }
        }
        "conversations.setTopic" => json!({"ok": true, "topic": body["topic"]}),
        "conversations.invite" => json!({"ok": true, "channel": {
            "id": channel, "created": 1700000000, "is_channel": true
        }}),
        "conversations.history" | "conversations.replies" => {
            let latest = body["latest"]
                .as_str()
                .or(body["ts"].as_str())
                .unwrap_or("");
            let messages: Vec<Value> = shared
                .messages
                .lock()
                .unwrap()
                .iter()
                .filter(|(c, ts, _)| Some(c.as_str()) == channel.as_str() && ts.as_str() <= latest)
                .rev()
                .take(1)
                .map(|(_, ts, text)| json!({"type": "message", "user": "U_CAROL", "text": text, "ts": ts}))
                .collect();
            json!({"ok": true, "messages": messages, "has_more": false})
        }
        "files.getUploadURLExternal" => {
            let n = shared.next_id.fetch_add(1, Ordering::SeqCst) + 1;
            let id = format!("F_FILE{n}");
            json!({
                "ok": true,
                "upload_url": format!("{}/upload/{id}", shared.base.lock().unwrap()),
                "file_id": id
            })
        }
        "files.completeUploadExternal" => {
            let files = body["files"].clone();
            json!({"ok": true, "files": files})
        }
        "apps.connections.open" => {
            json!({"ok": true, "url": *shared.ws_url.lock().unwrap()})
        }
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    shared.calls.lock().unwrap()[index].response = answer.clone();
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        answer.to_string(),
    )
        .into_response()
}

/// The upload URL files.getUploadURLExternal hands out: takes the bytes, as Slack does.
async fn upload(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    shared.calls.lock().unwrap().push(Call {
        method: "upload".to_string(),
        auth,
        body: json!({
            "file_id": id,
            "content_type": headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
            "content": String::from_utf8_lossy(&body),
        }),
        response: Value::Null,
    });
    (
        [(header::CONTENT_TYPE, "text/plain")],
        format!("OK - {}", body.len()),
    )
        .into_response()
}

async fn response_url(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut body = parse_body(&headers, &body);
    body["_response_url_id"] = json!(id);
    shared.calls.lock().unwrap().push(Call {
        method: "response_url".to_string(),
        auth: None,
        body,
        response: Value::Null,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"ok": true}).to_string(),
    )
        .into_response()
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Value {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    }
}

/// Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Now, as Slack's `X-Slack-Request-Timestamp`.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

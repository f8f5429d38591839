//! The OpenAI-compatible endpoints vLLM serves: `/v1/chat/completions` and `/v1/models`.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::spec::{FinishReason, Version, Workload};

/// Request ids only need to differ between requests, like vLLM's random ones.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An answer from the model server: status and JSON body.
pub(crate) type Answer = (StatusCode, Value);

/// vLLM's (and OpenAI's) error body.
pub(crate) fn error(code: StatusCode, kind: &str, message: impl Into<String>) -> Answer {
    (
        code,
        json!({"error": {"message": message.into(), "type": kind, "param": null, "code": code.as_u16()}}),
    )
}

/// `GET /v1/models`.
pub(crate) fn models(w: &Workload, created: i64) -> Answer {
    (
        StatusCode::OK,
        json!({
            "object": "list",
            "data": [{
                "id": w.model,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": w.model,
                "parent": null,
                "max_model_len": 131072,
            }],
        }),
    )
}

/// The parts of a chat request the simulator looks at, checked as vLLM would.
struct ChatRequest {
    last_user: String,
    prompt_words: usize,
    max_tokens: Option<usize>,
}

fn parse(w: &Workload, body: &[u8]) -> Result<ChatRequest, Answer> {
    let bad = |m: String| error(StatusCode::BAD_REQUEST, "BadRequestError", m);
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(bad("request body must be a JSON object".into()));
    };
    if let Some(model) = obj.get("model") {
        match model.as_str() {
            Some(m) if m == w.model => {}
            Some(m) => {
                return Err(error(
                    StatusCode::NOT_FOUND,
                    "NotFoundError",
                    format!("The model `{m}` does not exist."),
                ));
            }
            None => return Err(bad("model: Input should be a valid string".into())),
        }
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        // Better a clear refusal than a JSON body where the client waits for server-sent events.
        return Err(bad(
            "stream: the simulated model server does not stream; send \"stream\": false".into(),
        ));
    }
    let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
        return Err(bad(
            "messages: Field required (a list of {role, content} objects)".into(),
        ));
    };
    if messages.is_empty() {
        return Err(bad("messages: List should have at least 1 item".into()));
    }
    let mut last_user = None;
    let mut prompt_words = 0;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        let content = m.get("content").and_then(Value::as_str);
        let (Some(role), Some(content)) = (role, content) else {
            return Err(bad(format!(
                "messages.{i}: each message needs a string `role` and a string `content`"
            )));
        };
        prompt_words += content.split_whitespace().count();
        if role == "user" {
            last_user = Some(content.to_string());
        }
    }
    let max_tokens = match obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
    {
        None | Some(Value::Null) => None,
        Some(n) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n > 0 => Some(n),
            _ => return Err(bad("max_tokens: must be a positive integer".into())),
        },
    };
    Ok(ChatRequest {
        last_user: last_user.unwrap_or_default(),
        prompt_words,
        max_tokens,
    })
}

/// What the active version makes of a request, before any delay.
pub(crate) enum Outcome {
    /// Answer now (after the version's latency).
    Answer(Answer),
    /// Never answer: the caller's timeout is the test.
    Hang,
}

/// `POST /v1/chat/completions` while `version` (named `version_name`) is the active prompt.
pub(crate) fn complete(
    w: &Workload,
    version_name: &str,
    version: &Version,
    body: &[u8],
    now: i64,
) -> Outcome {
    let req = match parse(w, body) {
        Ok(req) => req,
        Err(answer) => return Outcome::Answer(answer),
    };
    if version.hang {
        return Outcome::Hang;
    }
    if let Some(code) = version.status {
        let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Outcome::Answer(error(
            code,
            "InternalServerError",
            "EngineCore encountered an issue. See stack trace (above) for the root cause.",
        ));
    }
    let wanted = req.last_user.to_lowercase();
    let (text, mut finish) = version
        .rules
        .iter()
        .find(|r| wanted.contains(&r.when_prompt_contains.to_lowercase()))
        .map_or((version.default.as_str(), version.finish_reason), |r| {
            (
                r.answer.as_str(),
                r.finish_reason.unwrap_or(version.finish_reason),
            )
        });
    let mut words: Vec<&str> = text.split_whitespace().collect();
    if let Some(max) = req.max_tokens
        && words.len() > max
    {
        words.truncate(max);
        finish = FinishReason::Length;
    }
    let content = if words.len() == text.split_whitespace().count() {
        text.to_string()
    } else {
        words.join(" ")
    };
    // Roughly 1.3 tokens per English word, plus the chat template's few tokens per message.
    let prompt_tokens = req.prompt_words * 13 / 10 + 8;
    let completion_tokens = words.len() * 13 / 10;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(
        version = version_name,
        finish = finish.as_str(),
        "simulated chat completion"
    );
    Outcome::Answer((
        StatusCode::OK,
        json!({
            "id": format!("chatcmpl-{id:032x}"),
            "object": "chat.completion",
            "created": now,
            "model": w.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "tool_calls": []},
                "logprobs": null,
                "finish_reason": finish.as_str(),
                "stop_reason": null,
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }),
    ))
}

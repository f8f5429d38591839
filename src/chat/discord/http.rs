//! `POST /discord/interactions`: verify, answer at once, finish in the background.
//!
//! Discord signs every request with the application's Ed25519 key over
//! `X-Signature-Timestamp` followed by the body. A request is refused before its body is
//! parsed when the signature does not verify (401), when its timestamp is more than
//! [`MAX_AGE_SECS`] away from now (401: a replayed request carries an old one, and the
//! signature alone cannot tell), and when the body is over [`MAX_BODY`] bytes (413).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serenity::model::application::Interaction;

use super::Discord;

/// The path Discord's "Interactions Endpoint URL" points at.
pub const PATH: &str = "/discord/interactions";
/// Largest accepted body. Interactions are a few kilobytes; a command with many resolved
/// users and attachments stays far below this.
pub const MAX_BODY: usize = 256 * 1024;
/// How far a request's timestamp may be from now.
pub const MAX_AGE_SECS: i64 = 300;

/// Why a request is refused, with its status.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// A signature header is missing.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// The timestamp is not a number of seconds, or too old or new.
    #[error("stale or invalid X-Signature-Timestamp")]
    Stale,
    /// The signature does not verify against the public key.
    #[error("invalid request signature")]
    BadSignature,
    /// The body is not an interaction.
    #[error("not an interaction: {0}")]
    Malformed(String),
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = match self {
            Rejection::Malformed(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        (status, self.to_string()).into_response()
    }
}

/// The route, for `firebreak serve`'s router.
pub fn routes(discord: Arc<Discord>) -> Router {
    Router::new()
        .route(PATH, post(interactions))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(discord)
}

async fn interactions(
    State(discord): State<Arc<Discord>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<serde_json::Value>, Rejection> {
    verify(
        &discord,
        &headers,
        &body,
        jiff::Timestamp::now().as_second(),
    )
    .inspect_err(|rejection| tracing::warn!(%rejection, "Discord interaction refused"))?;
    let interaction: Interaction = serde_json::from_slice(&body).map_err(|error| {
        tracing::warn!(%error, "Discord interaction body not understood");
        Rejection::Malformed(error.to_string())
    })?;
    tracing::debug!(kind = ?interaction.kind(), "Discord interaction received");
    let dispatch = discord.answer(interaction).await;
    if let Some(job) = dispatch.job {
        job.spawn();
    }
    Ok(axum::Json(dispatch.response))
}

/// Check the signature and the timestamp's age (`now` in Unix seconds).
pub fn verify(
    discord: &Discord,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), Rejection> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(Rejection::MissingHeader(name))
    };
    let signature = header("x-signature-ed25519")?;
    let timestamp = header("x-signature-timestamp")?;
    let Some(verifier) = &discord.settings().verifier else {
        // Settings refuse HTTP mode without a key; an unverifiable request is refused too.
        return Err(Rejection::BadSignature);
    };
    verifier
        .verify(signature, timestamp, body)
        .map_err(|()| Rejection::BadSignature)?;
    let sent: i64 = timestamp.trim().parse().map_err(|_| Rejection::Stale)?;
    if (now - sent).abs() > MAX_AGE_SECS {
        return Err(Rejection::Stale);
    }
    Ok(())
}

//! `POST /alertmanager`: Alertmanager's webhook as an adapter. It checks the optional bearer
//! token, records the notification through the core ([`crate::Bot::alert`]) before answering,
//! then announces it through the configured [`Outbox`]es — the incident summary, then the
//! automatic triage — without holding Alertmanager's request open for the triage.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::Outbox;
use crate::bot::Bot;
use crate::config::Secret;
use crate::incident::alerts::{AlertError, Announcement, Notification};

/// Bodies larger than this are refused (413): Alertmanager groups are a few KiB.
pub const MAX_BODY: usize = 1024 * 1024;

/// One place to announce alert-opened incidents: an outbox and its channel there.
#[derive(Clone)]
pub struct Destination {
    /// The platform's outbox.
    pub outbox: Arc<dyn Outbox>,
    /// The channel id on that platform.
    pub channel: String,
}

#[derive(Clone)]
struct Webhook {
    bot: Arc<Bot>,
    token: Option<Secret>,
    destinations: Arc<Vec<Destination>>,
}

/// The route, for [`crate::server::app`].
pub fn routes(bot: Arc<Bot>, token: Option<Secret>, destinations: Vec<Destination>) -> Router {
    Router::new()
        .route("/alertmanager", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Webhook {
            bot,
            token,
            destinations: Arc::new(destinations),
        })
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({"error": message}))).into_response()
}

async fn receive(State(hook): State<Webhook>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(token) = &hook.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let matches = given.is_some_and(|given| token.matches(given.as_bytes()));
        if !matches {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (Alertmanager: http_config.authorization.credentials)".into(),
            );
        }
    }
    let notification = match Notification::parse(&body) {
        Ok(notification) => notification,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, error.to_string()),
    };
    let (outcome, announcement) = match hook.bot.alert(&notification).await {
        Ok(recorded) => recorded,
        Err(AlertError::Malformed(message)) => return refuse(StatusCode::BAD_REQUEST, message),
        Err(error @ AlertError::State(_)) => {
            tracing::error!(%error, "alert not recorded");
            // 503: Alertmanager retries, and nothing was half-recorded.
            return refuse(StatusCode::SERVICE_UNAVAILABLE, error.to_string());
        }
    };
    tracing::info!(incident = ?outcome.incident, outcome = outcome.outcome, "alert notification");
    tokio::spawn(announce(
        hook.bot.clone(),
        hook.destinations.clone(),
        announcement,
    ));
    (StatusCode::OK, axum::Json(outcome)).into_response()
}

/// Post (or update) what a notification changed, on every destination.
pub async fn announce(
    bot: Arc<Bot>,
    destinations: Arc<Vec<Destination>>,
    announcement: Announcement,
) {
    match announcement {
        Announcement::Nothing => {}
        Announcement::Update { incident, summary } => {
            for destination in destinations.iter() {
                let platform = destination.outbox.platform().as_str();
                let sent = match bot.message(&incident.id, platform, "alert").await {
                    Some((channel, message)) => destination
                        .outbox
                        .update(&channel, &message, &summary)
                        .await
                        .map(|()| None),
                    None => destination
                        .outbox
                        .post(&destination.channel, &summary)
                        .await
                        .map(Some),
                };
                match sent {
                    Ok(Some(message)) => {
                        bot.remember_message(
                            &incident.id,
                            platform,
                            "alert",
                            &destination.channel,
                            &message,
                        )
                        .await
                    }
                    Ok(None) => {}
                    Err(error) => tracing::error!(%error, platform, "alert update not delivered"),
                }
            }
        }
        Announcement::Opened {
            incident,
            summary,
            triage,
        } => {
            for destination in destinations.iter() {
                let platform = destination.outbox.platform().as_str();
                match destination
                    .outbox
                    .post(&destination.channel, &summary)
                    .await
                {
                    Ok(message) => {
                        bot.remember_message(
                            &incident.id,
                            platform,
                            "alert",
                            &destination.channel,
                            &message,
                        )
                        .await;
                        bot.bind_channel(&incident.id, platform, &destination.channel)
                            .await;
                    }
                    Err(error) => {
                        tracing::error!(%error, platform, "incident announcement not delivered")
                    }
                }
            }
            let Some(triage) = triage else {
                return;
            };
            let report = bot.handle(&triage, &|_| {}).await;
            for destination in destinations.iter() {
                if let Err(error) = destination.outbox.post(&destination.channel, &report).await {
                    tracing::error!(%error, platform = destination.outbox.platform().as_str(), "automatic triage not delivered");
                }
            }
        }
    }
}

//! Incidents: the thread that ties the stages together. This module owns what an incident
//! means to the core — severities, the timeline events stages and approvals add, the summary
//! that stays current, and the post-mortem draft written from the timeline ([`postmortem`]);
//! the store keeps them, the adapters only show them.

pub mod alerts;
pub mod authority;
pub mod postmortem;

use serde::Serialize;

use crate::bot::Bot;
use crate::chat::{Invocation, Outbox, Platform, UserRef};
use crate::render::{Effect, Reply, Severity, TemplateError};
use crate::store::{Actor, Incident, TimelineEntry};

/// The severities `/incident declare` and `/incident severity` accept, worst first.
pub const SEVERITIES: &[&str] = &["sev1", "sev2", "sev3", "sev4"];

/// `sev2`, `SEV2` or `2` → `sev2`.
pub fn parse_severity(text: &str) -> Option<&'static str> {
    let text = text.trim().to_lowercase();
    let text = text.strip_prefix("sev").unwrap_or(&text);
    SEVERITIES.iter().copied().find(|s| &s[3..] == text)
}

/// A chat channel name for an incident: `inc-7-kv-cache-full`, at most 80 characters, the
/// characters Slack and Discord both accept.
pub fn channel_name(incident: &str, title: &str) -> String {
    let mut name = incident.to_lowercase();
    let mut dash = true;
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            if dash {
                name.push('-');
            }
            name.push(c);
            dash = false;
        } else {
            dash = true;
        }
        if name.len() >= 80 {
            break;
        }
    }
    name.truncate(80);
    name
}

/// What the `incident` template renders: the incident and its latest events.
#[derive(Debug, Serialize)]
pub(crate) struct SummaryView<'a> {
    pub incident: &'a Incident,
    pub recent: &'a [TimelineEntry],
    pub notice: Option<String>,
}

impl Bot {
    /// Bind a channel the adapter opened for an incident (after [`Effect::OpenChannel`]), so
    /// commands there attach to it, and note it on the timeline.
    pub async fn bind_channel(&self, incident: &str, platform: &str, channel: &str) {
        if let Err(error) = self.store.bind_channel(incident, platform, channel).await {
            tracing::error!(%error, incident, "channel not bound to the incident");
            return;
        }
        let actor = Actor {
            id: "firebreak".into(),
            name: "Firebreak".into(),
            platform: platform.into(),
            channel: channel.into(),
        };
        self.record(
            incident,
            &actor,
            "channel",
            format!("opened a {platform} channel for the incident"),
            serde_json::Value::Null,
        )
        .await;
    }

    /// Pin a message to the timeline of the open incident bound to `channel` (a 📌 reaction):
    /// a `pinned` event with its text. Whether an incident took it.
    pub async fn pin(&self, platform: Platform, channel: &str, user: UserRef, text: &str) -> bool {
        let incident = match self.store.incident_in(platform.as_str(), channel).await {
            Ok(Some(incident)) => incident,
            Ok(None) => return false,
            Err(error) => {
                tracing::error!(%error, "incident lookup failed; pin not recorded");
                return false;
            }
        };
        let actor = Actor {
            id: user.id,
            name: user.name,
            platform: platform.as_str().into(),
            channel: channel.into(),
        };
        self.record(
            &incident.id,
            &actor,
            "pinned",
            text.to_string(),
            serde_json::Value::Null,
        )
        .await;
        true
    }

    /// Remember the platform message that shows an incident's `summary` (or its `alert`).
    pub async fn remember_message(
        &self,
        incident: &str,
        platform: &str,
        role: &str,
        channel: &str,
        message: &str,
    ) {
        if let Err(error) = self
            .store
            .remember_message(incident, platform, role, channel, message)
            .await
        {
            tracing::error!(%error, incident, role, "message reference not stored");
        }
    }

    /// Keep an incident's summary current on `outbox`'s platform: update the remembered
    /// summary message in place; when there is none, or it cannot be updated (deleted, its
    /// channel archived), post `summary` in `channel` and remember that one.
    pub async fn keep_summary(
        &self,
        outbox: &dyn Outbox,
        incident: &str,
        channel: &str,
        summary: &Reply,
    ) {
        let platform = outbox.platform().as_str();
        if let Some((posted_in, message)) = self.message(incident, platform, "summary").await {
            match outbox.update(&posted_in, &message, summary).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, incident, "updating the incident summary failed; posting it again")
                }
            }
        }
        match outbox.post(channel, summary).await {
            Ok(message) => {
                self.remember_message(incident, platform, "summary", channel, &message)
                    .await
            }
            Err(error) => tracing::warn!(%error, incident, "posting the incident summary failed"),
        }
    }

    /// The remembered message for an incident's `role` on `platform`: `(channel, message id)`.
    pub async fn message(
        &self,
        incident: &str,
        platform: &str,
        role: &str,
    ) -> Option<(String, String)> {
        self.store
            .message(incident, platform, role)
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, incident, role, "message reference not read");
                None
            })
    }

    /// Add to an incident's timeline; a failure is logged (the event already happened).
    pub(crate) async fn record(
        &self,
        incident: &str,
        actor: &Actor,
        kind: &str,
        text: String,
        data: serde_json::Value,
    ) {
        if let Err(error) = self
            .store
            .timeline_event(incident, actor, kind, text, data)
            .await
        {
            tracing::error!(%error, incident, kind, "timeline event not written");
        }
    }

    /// The incident summary reply, current as of now.
    pub(crate) async fn summary(
        &self,
        incident: &Incident,
        notice: Option<String>,
    ) -> Result<Reply, TemplateError> {
        let timeline = self
            .store
            .timeline(&incident.id)
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, incident = %incident.id, state = %self.store.location(), "cannot read the incident's timeline; the summary shows none");
                Vec::new()
            });
        let recent = &timeline[timeline.len().saturating_sub(5)..];
        let view = SummaryView {
            incident,
            recent,
            notice,
        };
        let severity = if !incident.open {
            Severity::Ok
        } else if matches!(incident.severity.as_str(), "sev1" | "sev2") {
            Severity::Critical
        } else {
            Severity::Warning
        };
        self.templates
            .render("incident", &view, severity, Vec::new())
    }

    /// The summary as an effect, for replies that change what it shows.
    pub(crate) async fn summary_effect(&self, incident: &Incident) -> Option<Effect> {
        match self.summary(incident, None).await {
            Ok(summary) => Some(Effect::Summary {
                incident: incident.id.clone(),
                summary: Box::new(summary),
            }),
            Err(error) => {
                tracing::warn!(%error, "incident summary not rendered");
                None
            }
        }
    }

    /// The open incident an invocation belongs to: named, else bound to its channel.
    pub(crate) async fn attach_incident(&self, inv: &Invocation) -> Option<Incident> {
        let found = match &inv.incident {
            Some(id) => self.store.incident(id).await,
            None => {
                self.store
                    .incident_in(inv.platform.as_str(), &inv.channel.id)
                    .await
            }
        };
        found.unwrap_or_else(|error| {
            tracing::error!(%error, "incident lookup failed; continuing without one");
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_and_channel_names() {
        assert_eq!(parse_severity("SEV2"), Some("sev2"));
        assert_eq!(parse_severity("4"), Some("sev4"));
        assert_eq!(parse_severity("sev5"), None);
        assert_eq!(
            channel_name("INC-7", "KV cache full: model-server (us-east)!"),
            "inc-7-kv-cache-full-model-server-us-east"
        );
        assert!(channel_name("INC-1", &"x ".repeat(100)).len() <= 80);
    }
}

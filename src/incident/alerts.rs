//! Alertmanager's webhook (payload version 4) as a way into incidents: a firing group opens an
//! incident (one per `groupKey`) and gets an automatic triage; a resolved notification updates
//! what was posted and the timeline instead of posting again.
// Outside text flows through here: no byte slicing or indexing that can panic on it.
#![cfg_attr(not(test), warn(clippy::string_slice, clippy::indexing_slicing))]

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::bot::Bot;
use crate::chat::{ChannelRef, Invocation, Platform, UserRef};
use crate::render::Reply;
use crate::store::{Actor, Declaration, Incident};

/// One alert of a notification.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    /// Labels (`alertname`, `severity`, `service`, ...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations (`summary`, `description`, `runbook_url`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339; `0001-01-01T00:00:00Z` while firing.
    #[serde(default)]
    pub ends_at: Option<String>,
    /// Link to the expression in Prometheus.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
    /// Alertmanager's id for the alert.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// Alertmanager's webhook payload, version 4.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Must be `4`.
    pub version: String,
    /// Identifies the alert group; the deduplication key.
    pub group_key: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// The receiver's name.
    #[serde(default)]
    pub receiver: String,
    /// Labels the group was formed by.
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    /// Labels every alert shares.
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    /// Annotations every alert shares.
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Alertmanager's URL.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// The alerts.
    pub alerts: Vec<Alert>,
}

/// Why a notification was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// Not JSON, or not Alertmanager's shape.
    #[error("not an Alertmanager webhook payload: {0}")]
    Malformed(String),
    /// The state store failed.
    #[error("{0}")]
    State(#[from] crate::store::StoreError),
}

/// What happened to a notification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertOutcome {
    /// The incident it opened or joined, if any.
    pub incident: Option<String>,
    /// `opened`, `joined`, `resolved` or `ignored`.
    pub outcome: &'static str,
}

/// What to post for a notification, after it was recorded.
#[derive(Debug, Clone)]
pub enum Announcement {
    /// A new incident: post its summary, then its automatic triage.
    Opened {
        /// The incident.
        incident: Incident,
        /// The summary.
        summary: Reply,
        /// The triage run to post after it.
        triage: Option<Invocation>,
    },
    /// An update of the incident's alert message in place.
    Update {
        /// The incident.
        incident: Incident,
        /// The new summary.
        summary: Reply,
    },
    /// Nothing to post.
    Nothing,
}

impl Notification {
    /// Parse and check a webhook body.
    pub fn parse(body: &[u8]) -> Result<Notification, AlertError> {
        let notification: Notification = serde_json::from_slice(body)
            .map_err(|error| AlertError::Malformed(error.to_string()))?;
        if notification.version != "4" {
            return Err(AlertError::Malformed(format!(
                "version `{}`; Firebreak reads version 4 (Alertmanager 0.x has sent 4 since 2017)",
                notification.version
            )));
        }
        if notification.group_key.trim().is_empty() {
            return Err(AlertError::Malformed("empty `groupKey`".into()));
        }
        if !matches!(notification.status.as_str(), "firing" | "resolved") {
            return Err(AlertError::Malformed(format!(
                "status `{}`; expected firing or resolved",
                notification.status
            )));
        }
        if notification.alerts.is_empty() {
            return Err(AlertError::Malformed("no alerts in the group".into()));
        }
        Ok(notification)
    }

    fn label(&self, name: &str) -> Option<&str> {
        self.common_labels
            .get(name)
            .or_else(|| self.group_labels.get(name))
            .map(String::as_str)
    }

    fn alertname(&self) -> &str {
        self.label("alertname").unwrap_or("alert")
    }

    fn severity(&self) -> &'static str {
        match self.label("severity").unwrap_or_default() {
            "critical" | "page" => "sev2",
            "warning" | "ticket" => "sev3",
            "info" | "none" => "sev4",
            other => crate::incident::parse_severity(other).unwrap_or("sev3"),
        }
    }

    fn title(&self) -> String {
        let summary = self.common_annotations.get("summary").or_else(|| {
            self.alerts
                .first()
                .and_then(|a| a.annotations.get("summary"))
        });
        match summary {
            Some(summary) => format!("{}: {summary}", self.alertname()),
            None => self.alertname().to_string(),
        }
    }

    fn started_at(&self) -> Option<String> {
        self.alerts
            .iter()
            .filter_map(|a| a.starts_at.as_deref())
            .filter_map(|at| at.parse::<jiff::Timestamp>().ok())
            .min()
            .map(|at| {
                jiff::Timestamp::from_second(at.as_second())
                    .unwrap_or(at)
                    .to_string()
            })
    }
}

fn alertmanager() -> Actor {
    Actor {
        id: "alertmanager".into(),
        name: "Alertmanager".into(),
        platform: Platform::Alertmanager.as_str().into(),
        channel: "alertmanager".into(),
    }
}

impl Bot {
    /// The runbook an alert group is about: its `service`, `app`, `deployment` or `job` label,
    /// else the only runbook.
    fn service_of(&self, notification: &Notification) -> Option<String> {
        ["service", "app", "deployment", "job"]
            .iter()
            .filter_map(|label| notification.label(label))
            .find(|name| self.runbooks.get(name).is_some())
            .map(str::to_string)
            .or_else(|| self.runbooks.only().map(|r| r.service.clone()))
    }

    /// Record a notification (durably, before anything is posted) and say what to post.
    pub async fn alert(
        &self,
        notification: &Notification,
    ) -> Result<(AlertOutcome, Announcement), AlertError> {
        let actor = alertmanager();
        let names: Vec<String> = notification
            .alerts
            .iter()
            .map(|a| {
                format!(
                    "{} ({})",
                    a.labels
                        .get("alertname")
                        .map(String::as_str)
                        .unwrap_or("alert"),
                    a.status
                )
            })
            .collect();
        if notification.status == "resolved" {
            let Some(incident) = self
                .store
                .incident_by_group(&notification.group_key)
                .await?
            else {
                return Ok((
                    AlertOutcome {
                        incident: None,
                        outcome: "ignored",
                    },
                    Announcement::Nothing,
                ));
            };
            self.record(
                &incident.id,
                &actor,
                "alert",
                format!(
                    "Alertmanager reports the group resolved: {}",
                    names.join(", ")
                ),
                serde_json::json!({"group_key": notification.group_key, "status": "resolved"}),
            )
            .await;
            let summary = self
                .summary(
                    &incident,
                    Some("✅ Alertmanager reports these alerts resolved. Resolve the incident with `/incident resolve` when you agree.".into()),
                )
                .await
                .map_err(|e| AlertError::Malformed(e.to_string()))?;
            return Ok((
                AlertOutcome {
                    incident: Some(incident.id.clone()),
                    outcome: "resolved",
                },
                Announcement::Update { incident, summary },
            ));
        }
        let service = self.service_of(notification);
        let (incident, new) = self
            .store
            .declare(Declaration {
                title: notification.title(),
                severity: notification.severity().to_string(),
                declarer: actor.clone(),
                service: service.clone(),
                group_key: Some(notification.group_key.clone()),
                detected_by: format!("alert {}", notification.alertname()),
                started_at: notification.started_at(),
            })
            .await?;
        if !new {
            tracing::info!(incident = %incident.id, "duplicate firing notification; already open");
            return Ok((
                AlertOutcome {
                    incident: Some(incident.id),
                    outcome: "joined",
                },
                Announcement::Nothing,
            ));
        }
        self.record(
            &incident.id,
            &actor,
            "alert",
            format!("firing: {}", names.join(", ")),
            serde_json::json!({
                "group_key": notification.group_key,
                "labels": notification.common_labels,
                "annotations": notification.common_annotations,
                "generator_urls": notification.alerts.iter().filter_map(|a| a.generator_url.clone()).collect::<Vec<_>>(),
            }),
        )
        .await;
        let summary = self
            .summary(
                &incident,
                Some("Opened by Alertmanager; automatic triage follows.".into()),
            )
            .await
            .map_err(|e| AlertError::Malformed(e.to_string()))?;
        let triage = service.map(|service| Invocation {
            platform: Platform::Alertmanager,
            user: UserRef {
                id: actor.id.clone(),
                name: actor.name.clone(),
            },
            channel: ChannelRef {
                id: actor.channel.clone(),
            },
            command: "triage".into(),
            args: vec![service],
            incident: Some(incident.id.clone()),
        });
        Ok((
            AlertOutcome {
                incident: Some(incident.id.clone()),
                outcome: "opened",
            },
            Announcement::Opened {
                incident,
                summary,
                triage,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRING: &str = include_str!("../../tests/data/alertmanager-firing.json");

    #[test]
    fn reads_alertmanagers_payload() {
        let n = Notification::parse(FIRING.as_bytes()).unwrap();
        assert_eq!(n.severity(), "sev2");
        assert_eq!(
            n.title(),
            "VLLMKVCacheFull: KV cache above 95% on model-server"
        );
        assert_eq!(n.started_at().as_deref(), Some("2026-11-28T02:51:00Z"));
    }

    #[test]
    fn refuses_what_is_not_a_notification() {
        for bad in [
            "not json",
            "{}",
            r#"{"version": "3", "groupKey": "k", "status": "firing", "alerts": [{"status": "firing"}]}"#,
            r#"{"version": "4", "groupKey": "", "status": "firing", "alerts": [{"status": "firing"}]}"#,
            r#"{"version": "4", "groupKey": "k", "status": "firing", "alerts": []}"#,
            r#"{"version": "4", "groupKey": "k", "status": "burning", "alerts": [{"status": "firing"}]}"#,
        ] {
            assert!(
                matches!(
                    Notification::parse(bad.as_bytes()),
                    Err(AlertError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }
}

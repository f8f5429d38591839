//! The post-mortem draft: the SRE book's sections, filled from the incident's timeline, its
//! approval requests and the runbook's SLOs, rendered by `templates/postmortem.md.hbs`.
//! Running it again regenerates it from the timeline; nothing is kept between runs.

use serde::Serialize;

use crate::bot::Bot;
use crate::render::{Effect, TemplateError};
use crate::runbook::Slo;
use crate::store::{Incident, Request, TimelineEntry};

/// One action taken, with who asked and who approved.
#[derive(Debug, Serialize)]
pub(crate) struct ActionTaken {
    pub id: String,
    pub action: String,
    pub kind: String,
    pub target: String,
    pub summary: String,
    pub requested_by: String,
    pub requested_at: String,
    pub approvals: Vec<String>,
    pub state: String,
    pub outcome: Option<String>,
    pub versions: Vec<String>,
}

/// Everything the template may use.
#[derive(Debug, Serialize)]
pub(crate) struct Draft<'a> {
    pub incident: &'a Incident,
    pub generated_at: String,
    pub started: String,
    pub detected: String,
    pub mitigated: Option<String>,
    pub resolved: Option<String>,
    /// Started → resolved (or → now, while open).
    pub duration: String,
    pub time_to_detect: String,
    pub time_to_mitigate: Option<String>,
    pub slo: Option<&'a Slo>,
    pub slo_breaches: Vec<String>,
    pub failure_class: Option<String>,
    pub evidence: Vec<String>,
    pub timeline: &'a [TimelineEntry],
    pub actions: Vec<ActionTaken>,
    pub versions: Vec<String>,
    pub notes: Vec<String>,
}

fn parse(at: &str) -> Option<jiff::Timestamp> {
    at.parse().ok()
}

/// `1h 12m`, `4m 3s`, `12s`.
pub fn span(from: &str, to: &str) -> String {
    let (Some(from), Some(to)) = (parse(from), parse(to)) else {
        return "unknown".to_string();
    };
    let seconds = to.as_second().saturating_sub(from.as_second()).max(0);
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m"),
    }
}

fn action_taken(request: &Request) -> ActionTaken {
    ActionTaken {
        id: request.id.clone(),
        action: request.action.clone(),
        kind: request.plan.kind.clone(),
        target: request.plan.target.clone(),
        summary: request.plan.summary.clone(),
        requested_by: request.requester.name.clone(),
        requested_at: request.created_at.clone(),
        approvals: request
            .decisions
            .iter()
            .map(|d| {
                format!(
                    "{} by {} at {}{}",
                    match d.decision {
                        crate::store::Decision::Approve => "approved",
                        crate::store::Decision::Deny => "denied",
                    },
                    d.actor.name,
                    d.at,
                    d.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )
            })
            .collect(),
        state: request.state.as_str().to_string(),
        outcome: request.outcome.clone(),
        versions: request
            .plan
            .versions
            .iter()
            .map(|v| format!("{}: {} → {}", v.what, v.from, v.to))
            .collect(),
    }
}

impl<'a> Draft<'a> {
    /// A draft with every section filled, for `firebreak check`.
    pub(crate) fn sample(
        incident: &'a Incident,
        timeline: &'a [TimelineEntry],
        requests: &[Request],
    ) -> Draft<'a> {
        Draft {
            incident,
            generated_at: "2026-11-28T04:00:00Z".into(),
            started: incident.data.started_at.clone(),
            detected: incident.declared_at.clone(),
            mitigated: incident.data.mitigated_at.clone(),
            resolved: incident.data.resolved_at.clone(),
            duration: "1h 9m".into(),
            time_to_detect: "9m 0s".into(),
            time_to_mitigate: Some("19m 0s".into()),
            slo: None,
            slo_breaches: vec!["TTFT p95 3s (SLO 1.5s)".into()],
            failure_class: Some("serving-engine".into()),
            evidence: vec!["KV cache 97%".into()],
            timeline,
            actions: requests.iter().map(action_taken).collect(),
            versions: vec!["image: v2 → v1".into()],
            notes: vec!["v2 doubled max_num_seqs".into()],
        }
    }
}

impl Bot {
    /// Render the draft for `incident` from its timeline; also write it to the configured
    /// directory. Returns the attach effect carrying it.
    pub(crate) async fn postmortem_draft(
        &self,
        incident: &Incident,
    ) -> Result<Effect, TemplateError> {
        let timeline = self
            .store
            .timeline(&incident.id)
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, "timeline not read for the post-mortem");
                Vec::new()
            });
        let requests = self
            .store
            .incident_requests(&incident.id)
            .await
            .unwrap_or_default();
        let now = crate::store::now_text();
        let data = &incident.data;
        let end = data.resolved_at.clone().unwrap_or_else(|| now.clone());
        let last_verdict = timeline.iter().rev().find(|e| e.kind == "verdict");
        let evidence = last_verdict
            .and_then(|e| e.data.get("evidence"))
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .unwrap_or_default();
        let failure_class = last_verdict
            .and_then(|e| e.data.get("class"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let slo = data
            .service
            .as_deref()
            .and_then(|s| self.runbooks.get(s))
            .map(|r| &r.slo);
        let slo_breaches = timeline
            .iter()
            .filter(|e| e.kind == "verdict")
            .flat_map(|e| {
                e.data
                    .get("slo_breaches")
                    .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
                    .unwrap_or_default()
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let actions: Vec<ActionTaken> = requests.iter().map(action_taken).collect();
        let versions = requests
            .iter()
            .filter(|r| r.state == crate::store::RequestState::Succeeded)
            .flat_map(|r| r.plan.versions.iter())
            .map(|v| format!("{}: {} → {}", v.what, v.from, v.to))
            .collect();
        let draft = Draft {
            incident,
            generated_at: now.clone(),
            started: data.started_at.clone(),
            detected: incident.declared_at.clone(),
            mitigated: data.mitigated_at.clone(),
            resolved: data.resolved_at.clone(),
            duration: span(&data.started_at, &end),
            time_to_detect: span(&data.started_at, &incident.declared_at),
            time_to_mitigate: data
                .mitigated_at
                .as_deref()
                .map(|m| span(&data.started_at, m)),
            slo,
            slo_breaches,
            failure_class,
            evidence,
            timeline: &timeline,
            actions,
            versions,
            notes: timeline
                .iter()
                .filter(|e| matches!(e.kind.as_str(), "note" | "pinned"))
                .map(|e| format!("{} ({}, {})", e.text, e.actor.name, e.at))
                .collect(),
        };
        let content = self.templates.render_text("postmortem.md", &draft)?;
        let filename = format!("{}-postmortem.md", incident.id);
        if let Some(dir) = &self.postmortem_dir {
            let path = dir.join(&filename);
            let written =
                std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &content));
            match written {
                Ok(()) => tracing::info!(path = %path.display(), "post-mortem draft written"),
                Err(error) => {
                    tracing::error!(%error, path = %path.display(), "post-mortem draft not written")
                }
            }
        }
        Ok(Effect::Attach { filename, content })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_a_person_wrote_them() {
        assert_eq!(span("2026-11-28T03:00:00Z", "2026-11-28T03:00:12Z"), "12s");
        assert_eq!(
            span("2026-11-28T03:00:00Z", "2026-11-28T03:04:03Z"),
            "4m 3s"
        );
        assert_eq!(
            span("2026-11-28T03:00:00Z", "2026-11-28T04:12:00Z"),
            "1h 12m"
        );
        assert_eq!(span("nonsense", "2026-11-28T04:12:00Z"), "unknown");
    }
}

//! `events`: recent Warning events for the service's pods, ReplicaSets and Deployment.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::ListParams;
use serde::Deserialize;

use super::{Finding, StepCx, StepError, StepOutput, Timeout, age, aligned_table};
use crate::render::Severity;

/// Runbook form of the `events` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// Heading shown in the report.
    pub title: Option<String>,
    /// Time limit for this step.
    pub timeout: Option<Timeout>,
    /// How many events to show, newest first.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    10
}

impl Events {
    pub(super) async fn run(&self, cx: &StepCx<'_>) -> Result<StepOutput, StepError> {
        let runbook = cx.runbook;
        let ns = &runbook.namespace;
        let by_selector = ListParams::default().labels(&runbook.selector.0);
        let pods_api = cx.cluster.namespaced::<Pod>(ns);
        let rs_api = cx.cluster.namespaced::<ReplicaSet>(ns);
        let events_api = cx.cluster.namespaced::<Event>(ns);
        let warnings = ListParams::default().fields("type=Warning");
        let (pods, replica_sets, events) = tokio::try_join!(
            cx.cluster.list_all(&pods_api, &by_selector, ns),
            cx.cluster.list_all(&rs_api, &by_selector, ns),
            cx.cluster.list_all(&events_api, &warnings, ns),
        )?;
        let mut ours: BTreeSet<(String, String)> = BTreeSet::new();
        ours.insert(("Deployment".to_string(), runbook.deployment.clone()));
        ours.extend(
            pods.iter()
                .filter_map(|p| Some(("Pod".to_string(), p.metadata.name.clone()?))),
        );
        ours.extend(
            replica_sets
                .iter()
                .filter_map(|r| Some(("ReplicaSet".to_string(), r.metadata.name.clone()?))),
        );

        let mut relevant: Vec<&Event> = events
            .iter()
            .filter(|e| {
                let o = &e.involved_object;
                ours.contains(&(
                    o.kind.clone().unwrap_or_default(),
                    o.name.clone().unwrap_or_default(),
                ))
            })
            .collect();
        relevant.sort_by_key(|e| std::cmp::Reverse(last_seen(e)));
        relevant.truncate(self.limit);

        let now = jiff::Timestamp::now();
        let mut findings: Vec<Finding> = Vec::new();
        let mut seen_reasons = BTreeSet::new();
        for event in &relevant {
            let reason = event.reason.clone().unwrap_or_default();
            let object = event.involved_object.name.clone().unwrap_or_default();
            // One finding per (reason, object): a crash loop repeats the same event for hours.
            if seen_reasons.insert((reason.clone(), object.clone())) {
                let message = event.message.clone().unwrap_or_default();
                let count = event.count.unwrap_or(1);
                let times = if count > 1 {
                    format!(" (x{count})")
                } else {
                    String::new()
                };
                findings.push(Finding::new(
                    Severity::Warning,
                    format!("{reason} on `{object}`{times}: {}", message.trim()),
                ));
            }
        }
        if relevant.is_empty() {
            findings.push(Finding::new(
                Severity::Ok,
                "no Warning events for this service",
            ));
        }
        let rows: Vec<Vec<String>> = relevant
            .iter()
            .map(|e| {
                let age = last_seen(e)
                    .map(|t| age(now, t))
                    .unwrap_or_else(|| "-".into());
                let kind = e
                    .involved_object
                    .kind
                    .clone()
                    .unwrap_or_default()
                    .to_lowercase();
                let name = e.involved_object.name.clone().unwrap_or_default();
                vec![
                    age,
                    e.reason.clone().unwrap_or_default(),
                    format!("{kind}/{name}"),
                    e.count.unwrap_or(1).to_string(),
                ]
            })
            .collect();
        let table = (!rows.is_empty())
            .then(|| aligned_table(&["LAST SEEN", "REASON", "OBJECT", "COUNT"], &rows));
        Ok(StepOutput { findings, table })
    }
}

fn last_seen(event: &Event) -> Option<jiff::Timestamp> {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.first_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

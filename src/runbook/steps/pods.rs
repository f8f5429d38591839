//! `pods`: the serving pods' health: restarts, OOMKills, crash loops and why a pod is Pending.

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde::Deserialize;

use super::{Finding, StepCx, StepError, StepOutput, Timeout, aligned_table};
use crate::render::Severity;
use crate::runbook::signal::Signal;

/// Runbook form of the `pods` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pods {
    /// Heading shown in the report.
    pub title: Option<String>,
    /// Time limit for this step.
    pub timeout: Option<Timeout>,
    /// Items per list call (`limit`); pages are followed with `continue`.
    pub page_size: Option<u32>,
    /// Restarts at or above this count are a warning.
    #[serde(default = "default_restart_warning")]
    pub restarts_warn: i32,
}

fn default_restart_warning() -> i32 {
    3
}

/// What one pod looks like to an on-call engineer.
#[derive(Debug, Clone, PartialEq)]
pub struct PodHealth {
    /// Pod name.
    pub name: String,
    /// Phase, e.g. Running.
    pub phase: String,
    /// What kubectl's STATUS column would say.
    pub status: String,
    /// Ready containers / all containers.
    pub ready: String,
    /// Restarts over all containers.
    pub restarts: i32,
    /// The last termination's reason and exit code, e.g. (OOMKilled, 137).
    pub last_termination: Option<(String, i32)>,
    /// Why the scheduler could not place it.
    pub unschedulable: Option<String>,
    /// Node it runs on.
    pub node: String,
}

impl PodHealth {
    /// Read a pod's health from its status.
    pub fn of(pod: &Pod) -> PodHealth {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let containers = status.container_statuses.clone().unwrap_or_default();
        let phase = status
            .phase
            .clone()
            .unwrap_or_else(|| "Unknown".to_string());
        let restarts = containers.iter().map(|c| c.restart_count).sum();
        let ready_count = containers.iter().filter(|c| c.ready).count();
        let declared = pod
            .spec
            .as_ref()
            .map(|s| s.containers.len())
            .unwrap_or(containers.len());
        let waiting = containers
            .iter()
            .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
        let terminated_now = containers
            .iter()
            .find_map(|c| c.state.as_ref()?.terminated.as_ref()?.reason.clone());
        let last_termination = containers.iter().find_map(|c| {
            let t = c.last_state.as_ref()?.terminated.as_ref()?;
            Some((
                t.reason.clone().unwrap_or_else(|| "Terminated".to_string()),
                t.exit_code,
            ))
        });
        let unschedulable = status.conditions.as_ref().and_then(|conditions| {
            conditions
                .iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                .map(|c| {
                    c.message
                        .clone()
                        .or(c.reason.clone())
                        .unwrap_or_else(|| "unschedulable".to_string())
                })
        });
        let display_status = waiting
            .or(terminated_now)
            .or_else(|| status.reason.clone())
            .unwrap_or_else(|| phase.clone());
        PodHealth {
            name,
            phase,
            status: display_status,
            ready: format!("{ready_count}/{declared}"),
            restarts,
            last_termination,
            unschedulable,
            node: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| "-".to_string()),
        }
    }
}

impl Pods {
    pub(super) async fn run(&self, cx: &StepCx<'_>) -> Result<StepOutput, StepError> {
        let runbook = cx.runbook;
        let api = cx.cluster.namespaced::<Pod>(&runbook.namespace);
        let mut params = ListParams::default().labels(&runbook.selector.0);
        params.limit = self.page_size;
        let pods = cx
            .cluster
            .list_all(&api, &params, &runbook.namespace)
            .await?;
        let mut health: Vec<PodHealth> = pods.iter().map(PodHealth::of).collect();
        health.sort_by(|a, b| {
            b.restarts
                .cmp(&a.restarts)
                .then_with(|| a.name.cmp(&b.name))
        });

        let mut findings = Vec::new();
        if health.is_empty() {
            findings.push(
                Finding::new(
                    Severity::Critical,
                    format!(
                        "no pods match `{}` in namespace `{}`",
                        runbook.selector, runbook.namespace
                    ),
                )
                .signal(Signal::Unschedulable),
            );
        }
        for pod in &health {
            findings.extend(self.judge(pod));
        }
        let healthy = health.iter().filter(|p| self.judge(p).is_empty()).count();
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        findings.push(Finding::new(
            Severity::Info,
            format!("{healthy}/{} pods healthy", health.len()),
        ));

        let rows: Vec<Vec<String>> = health
            .iter()
            .map(|p| {
                let last = p
                    .last_termination
                    .as_ref()
                    .map(|(r, c)| format!("{r} ({c})"))
                    .unwrap_or_else(|| "-".into());
                vec![
                    p.name.clone(),
                    p.ready.clone(),
                    p.status.clone(),
                    p.restarts.to_string(),
                    last,
                    p.node.clone(),
                ]
            })
            .collect();
        let table = (!rows.is_empty()).then(|| {
            aligned_table(
                &[
                    "NAME",
                    "READY",
                    "STATUS",
                    "RESTARTS",
                    "LAST TERMINATION",
                    "NODE",
                ],
                &rows,
            )
        });
        Ok(StepOutput { findings, table })
    }

    /// Findings for one pod; empty when it is healthy.
    fn judge(&self, pod: &PodHealth) -> Vec<Finding> {
        let mut findings = Vec::new();
        let oom = matches!(&pod.last_termination, Some((reason, code)) if reason == "OOMKilled" || *code == 137);
        if oom {
            let (reason, code) = pod.last_termination.clone().unwrap_or_default();
            findings.push(
                Finding::new(
                    Severity::Critical,
                    format!(
                        "`{}` was {reason} (exit {code}), {} restarts",
                        pod.name, pod.restarts
                    ),
                )
                .signal(Signal::OomKilled),
            );
        }
        if pod.status == "CrashLoopBackOff" {
            let last = pod
                .last_termination
                .as_ref()
                .map(|(r, c)| format!(", last exit: {r} ({c})"))
                .unwrap_or_default();
            findings.push(
                Finding::new(
                    Severity::Critical,
                    format!(
                        "`{}` is in CrashLoopBackOff, {} restarts{last}",
                        pod.name, pod.restarts
                    ),
                )
                .signal(Signal::CrashLoop),
            );
        } else if !oom && pod.restarts >= self.restarts_warn {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    format!("`{}` restarted {} times", pod.name, pod.restarts),
                )
                .signal(Signal::Restarts),
            );
        }
        if let Some(reason) = &pod.unschedulable {
            findings.push(
                Finding::new(
                    Severity::Critical,
                    format!("`{}` is Pending: {reason}", pod.name),
                )
                .signal(Signal::Unschedulable),
            );
        } else if pod.phase == "Pending" {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    format!("`{}` is Pending ({})", pod.name, pod.status),
                )
                .signal(Signal::Unschedulable),
            );
        } else if pod.phase == "Failed" || pod.phase == "Unknown" {
            findings.push(
                Finding::new(
                    Severity::Critical,
                    format!("`{}` is {}", pod.name, pod.phase),
                )
                .signal(Signal::Restarts),
            );
        }
        findings
    }
}

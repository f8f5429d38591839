//! `gpu`: GPU capacity and node health under the service: allocatable GPUs against what bound
//! pods request, node conditions, and optionally DCGM's XID and framebuffer gauges per pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use kube::Api;
use kube::api::ListParams;
use serde::Deserialize;
use tokio::time::Instant;

use super::{DEFAULT_TIMEOUT, Finding, StepCx, StepError, StepOutput, Timeout, aligned_table};
use crate::cluster::ClusterError;
use crate::metrics::exposition;
use crate::probe::transport::{self, TransportError};
use crate::render::Severity;
use crate::runbook::signal::Signal;

/// Runbook form of the `gpu` step, checked when the runbook loads.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "GpuDef")]
pub struct Gpu {
    /// Heading shown in the report.
    pub title: Option<String>,
    /// Time limit for this step.
    pub timeout: Option<Timeout>,
    /// The extended resource that counts as a GPU.
    pub resource: String,
    /// Label selector for the nodes to look at, e.g. `nvidia.com/gpu.present=true`.
    pub node_selector: Option<String>,
    /// DCGM exporter's port on each Running serving pod, read through the pod proxy.
    pub dcgm_port: Option<u16>,
    /// One DCGM exporter URL instead of the pods' ports.
    pub dcgm_url: Option<String>,
}

/// The YAML as written; [`Gpu`] is built from it after cross-field checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GpuDef {
    title: Option<String>,
    timeout: Option<Timeout>,
    #[serde(default = "default_resource")]
    resource: String,
    node_selector: Option<String>,
    dcgm_port: Option<u16>,
    dcgm_url: Option<String>,
}

fn default_resource() -> String {
    "nvidia.com/gpu".to_string()
}

impl TryFrom<GpuDef> for Gpu {
    type Error = String;

    fn try_from(d: GpuDef) -> Result<Gpu, String> {
        if d.dcgm_port.is_some() && d.dcgm_url.is_some() {
            return Err(
                "gpu: `dcgm_url:` reads one exporter, `dcgm_port:` reads each serving pod's; keep one"
                    .to_string(),
            );
        }
        if d.resource.trim().is_empty() {
            return Err("gpu: `resource:` is empty; the default is `nvidia.com/gpu`".to_string());
        }
        Ok(Gpu {
            title: d.title,
            timeout: d.timeout,
            resource: d.resource,
            node_selector: d.node_selector,
            dcgm_port: d.dcgm_port,
            dcgm_url: d.dcgm_url,
        })
    }
}

/// Why one DCGM target could not be read; the step goes on with the others.
#[derive(Debug, thiserror::Error)]
enum DcgmError {
    /// The API server or its pod proxy refused.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Nothing answered at the URL.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The URL answered with an error status.
    #[error("answered HTTP {0}")]
    Http(u16),
    /// No answer before the step's deadline.
    #[error("no answer before the step's deadline; is the exporter running on that port?")]
    Timeout,
}

/// One node as the table shows it.
struct NodeRow {
    name: String,
    ready: String,
    allocatable: u64,
    requested: u64,
    conditions: Vec<String>,
    usable: bool,
}

impl Gpu {
    pub(super) async fn run(&self, cx: &StepCx<'_>) -> Result<StepOutput, StepError> {
        let budget = self.timeout.map(|t| t.0).unwrap_or(DEFAULT_TIMEOUT);
        let deadline = crate::probe::step_deadline(budget);
        let client = cx.cluster.client();
        let mut node_params = ListParams::default();
        if let Some(selector) = &self.node_selector {
            node_params = node_params.labels(selector);
        }
        let nodes = cx
            .cluster
            .list_all(&Api::<Node>::all(client.clone()), &node_params, "(cluster)")
            .await?;
        // Succeeded and Failed pods hold no resources; the scheduler ignores them too.
        let active = ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed");
        let pods = cx
            .cluster
            .list_all(&Api::<Pod>::all(client), &active, "(all namespaces)")
            .await?;
        let mut requested: BTreeMap<&str, u64> = BTreeMap::new();
        for pod in &pods {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Succeeded" | "Failed")) {
                continue;
            }
            if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
                *requested.entry(node).or_default() += self.wanted(pod);
            }
        }

        let mut findings = Vec::new();
        let mut rows = Vec::new();
        for node in &nodes {
            let row = self.node_row(node, requested.get(node_name(node)).copied());
            judge_conditions(node, &mut findings);
            rows.push(row);
        }
        let total: u64 = rows.iter().map(|r| r.allocatable).sum();
        let free: u64 = rows
            .iter()
            .filter(|r| r.usable)
            .map(|r| r.allocatable.saturating_sub(r.requested))
            .sum();
        let resource = &self.resource;

        let serving = cx.serving_pods().await?;
        let pending: Vec<(&str, u64)> = serving
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending"))
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
            .map(|p| (p.metadata.name.as_deref().unwrap_or("?"), self.wanted(p)))
            .filter(|(_, n)| *n > 0)
            .collect();
        for (pod, want) in &pending {
            if free == 0 {
                findings.push(
                    Finding::new(
                        Severity::Critical,
                        format!(
                            "`{pod}` is Pending and wants {want} {resource}, but none of the {total} on {} nodes is free",
                            rows.len()
                        ),
                    )
                    .signal(Signal::GpuExhausted),
                );
            } else {
                // GPUs are free but the pod still waits: placement rules, not capacity.
                findings.push(Finding::new(
                    Severity::Warning,
                    format!(
                        "`{pod}` is Pending and wants {want} {resource} while {free} are free: check its node selector, affinity and the nodes' taints"
                    ),
                ));
            }
        }
        if nodes.is_empty() {
            findings.push(Finding::new(
                Severity::Warning,
                match &self.node_selector {
                    Some(s) => format!("no nodes match `{s}`; check the step's `node_selector`"),
                    None => "the cluster lists no nodes".to_string(),
                },
            ));
        }
        findings.push(Finding::new(
            Severity::Info,
            format!(
                "{free} of {total} {resource} free on {} nodes (only Ready, schedulable nodes count as free)",
                rows.len()
            ),
        ));

        if self.dcgm_port.is_some() || self.dcgm_url.is_some() {
            findings.extend(self.dcgm(cx, &serving, deadline).await);
        }

        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.ready.clone(),
                    r.allocatable.to_string(),
                    r.requested.to_string(),
                    r.allocatable.saturating_sub(r.requested).to_string(),
                    if r.conditions.is_empty() {
                        "-".to_string()
                    } else {
                        r.conditions.join(",")
                    },
                ]
            })
            .collect();
        let table = (!table_rows.is_empty()).then(|| aligned_table(&HEADERS, &table_rows));
        Ok(StepOutput { findings, table })
    }

    /// GPUs a pod holds: as the scheduler counts extended resources, a container's request,
    /// else its limit (the API server copies one to the other); init containers run one at a
    /// time, so the pod needs the larger of their maximum and the app containers' sum.
    fn wanted(&self, pod: &Pod) -> u64 {
        let Some(spec) = &pod.spec else { return 0 };
        let sum: u64 = spec.containers.iter().map(|c| self.of(c)).sum();
        let init = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| self.of(c))
            .max()
            .unwrap_or(0);
        sum.max(init)
    }

    fn of(&self, c: &Container) -> u64 {
        let Some(res) = &c.resources else { return 0 };
        res.requests
            .as_ref()
            .and_then(|r| r.get(&self.resource))
            .or_else(|| res.limits.as_ref().and_then(|l| l.get(&self.resource)))
            .and_then(|q| count(&q.0))
            .unwrap_or(0)
    }

    fn node_row(&self, node: &Node, requested: Option<u64>) -> NodeRow {
        let status = node.status.as_ref();
        let allocatable = status
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| a.get(&self.resource))
            .and_then(|q| count(&q.0))
            .unwrap_or(0);
        let conditions = status.and_then(|s| s.conditions.as_ref());
        let ready = conditions
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone())
            .unwrap_or_else(|| "Unknown".to_string());
        let cordoned = node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        let mut flags: Vec<String> = conditions
            .into_iter()
            .flatten()
            .filter(|c| c.type_ != "Ready" && c.status == "True")
            .map(|c| c.type_.clone())
            .collect();
        if cordoned {
            flags.push("SchedulingDisabled".to_string());
        }
        NodeRow {
            name: node_name(node).to_string(),
            ready: ready.clone(),
            allocatable,
            requested: requested.unwrap_or(0),
            conditions: flags,
            usable: ready == "True" && !cordoned,
        }
    }

    /// DCGM gauges of each Running serving pod (or of `dcgm_url`), each read bounded by the
    /// step's deadline: a pod proxy to a dead port answers 503, and a hung exporter must not eat the
    /// whole step.
    async fn dcgm(&self, cx: &StepCx<'_>, serving: &[Pod], deadline: Instant) -> Vec<Finding> {
        let ns = &cx.runbook.namespace;
        let targets: Vec<(String, Option<String>)> = match (&self.dcgm_url, self.dcgm_port) {
            (Some(url), _) => vec![(url.clone(), None)],
            (None, Some(port)) => {
                let mut names: Vec<String> = serving
                    .iter()
                    .filter(|p| {
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    })
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                names.sort();
                names
                    .into_iter()
                    .map(|pod| {
                        let path =
                            format!("/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/metrics");
                        (pod, Some(path))
                    })
                    .collect()
            }
            (None, None) => Vec::new(),
        };
        let reads =
            futures::future::join_all(targets.into_iter().map(|(target, proxy)| async move {
                let read = async {
                    match &proxy {
                        Some(path) => {
                            let request =
                                http::Request::get(path).body(Vec::new()).map_err(|e| {
                                    TransportError::BadPath {
                                        path: path.clone(),
                                        reason: e.to_string(),
                                    }
                                })?;
                            cx.cluster
                                .client()
                                .request_text(request)
                                .await
                                .map_err(|e| {
                                    let what = format!("DCGM exporter of pod `{target}`");
                                    DcgmError::Cluster(cx.cluster.explain(e, &what, ns))
                                })
                        }
                        None => {
                            let answer = transport::get(&target).await?;
                            if (200..300).contains(&answer.status) {
                                Ok(answer.body)
                            } else {
                                Err(DcgmError::Http(answer.status))
                            }
                        }
                    }
                };
                let outcome = match tokio::time::timeout_at(deadline, read).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(DcgmError::Timeout),
                };
                (target, outcome)
            }))
            .await;
        let mut findings = Vec::new();
        for (target, outcome) in reads {
            match outcome {
                Ok(text) => findings.extend(judge_dcgm(&target, &exposition::parse(&text))),
                Err(e) => {
                    tracing::info!(target = %target, error = %e, "DCGM read failed");
                    findings.push(Finding::new(
                        Severity::Warning,
                        format!("`{target}`: cannot read DCGM metrics: {e}"),
                    ));
                }
            }
        }
        findings
    }
}

const HEADERS: [&str; 6] = [
    "NODE",
    "READY",
    "GPU ALLOCATABLE",
    "REQUESTED",
    "FREE",
    "CONDITIONS",
];

fn node_name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("?")
}

/// A GPU count from a quantity: GPUs are whole devices, so `"8"`; anything else is unreadable.
fn count(quantity: &str) -> Option<u64> {
    quantity.trim().parse().ok()
}

/// NotReady is critical (nothing new lands there, and what runs there may be gone); pressure
/// conditions are warnings: the kubelet starts evicting.
fn judge_conditions(node: &Node, findings: &mut Vec<Finding>) {
    let name = node_name(node);
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    let why = |reason: &Option<String>, message: &Option<String>| match (reason, message) {
        (Some(r), Some(m)) => format!(" ({r}: {m})"),
        (Some(x), None) | (None, Some(x)) => format!(" ({x})"),
        (None, None) => String::new(),
    };
    match conditions.and_then(|cs| cs.iter().find(|c| c.type_ == "Ready")) {
        Some(c) if c.status == "True" => {}
        Some(c) => findings.push(
            Finding::new(
                Severity::Critical,
                format!(
                    "node `{name}` is NotReady (Ready={}){}",
                    c.status,
                    why(&c.reason, &c.message)
                ),
            )
            .signal(Signal::NodeNotReady),
        ),
        None => findings.push(
            Finding::new(
                Severity::Critical,
                format!("node `{name}` reports no Ready condition"),
            )
            .signal(Signal::NodeNotReady),
        ),
    }
    for c in conditions.into_iter().flatten() {
        if matches!(
            c.type_.as_str(),
            "MemoryPressure" | "DiskPressure" | "PIDPressure"
        ) && c.status == "True"
        {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    format!(
                        "node `{name}` has {}{}",
                        c.type_,
                        why(&c.reason, &c.message)
                    ),
                )
                .signal(Signal::NodeNotReady),
            );
        }
    }
}

/// What an XID code means, for the codes an on-call engineer meets most.
pub fn xid_meaning(code: u32) -> &'static str {
    match code {
        13 => "graphics engine exception (often an application fault)",
        31 => "GPU memory page fault (often an application fault)",
        43 => "GPU stopped processing (a user application fault)",
        45 => "preemptive cleanup after an earlier error",
        48 => {
            "double-bit ECC error: the GPU's memory is failing; drain the node and reset or replace the GPU"
        }
        63 | 64 => "ECC page retirement or row remapping event",
        74 => "NVLink error",
        79 => {
            "the GPU has fallen off the bus: drain the node, the GPU needs a reset or the node a reboot"
        }
        92 => "high single-bit ECC error rate",
        94 | 95 => "contained/uncontained ECC error",
        _ => "see NVIDIA's XID catalogue",
    }
}

/// Findings from one DCGM exporter text: a non-zero last XID, and framebuffer use per GPU.
fn judge_dcgm(target: &str, x: &exposition::Exposition) -> Vec<Finding> {
    let mut findings = Vec::new();
    let gpu_of = |s: &exposition::Sample| {
        let gpu = s.label("gpu").unwrap_or("?");
        match s.label("Hostname") {
            Some(host) => format!("GPU {gpu} on `{host}`"),
            None => format!("GPU {gpu}"),
        }
    };
    for s in x.named("DCGM_FI_DEV_XID_ERRORS") {
        if s.value > 0.0 {
            let code = s.value as u32;
            findings.push(
                Finding::new(
                    Severity::Critical,
                    format!(
                        "`{target}` {}: last XID error {code}: {}",
                        gpu_of(s),
                        xid_meaning(code)
                    ),
                )
                .signal(Signal::GpuXid),
            );
        }
    }
    for used in x.named("DCGM_FI_DEV_FB_USED") {
        let gpu = used.label("gpu");
        let free = x
            .named("DCGM_FI_DEV_FB_FREE")
            .find(|f| f.label("gpu") == gpu)
            .map(|f| f.value);
        let text = match free {
            Some(free) if used.value + free > 0.0 => format!(
                "`{target}` {} framebuffer {:.0} MiB used, {free:.0} MiB free ({:.0}% used)",
                gpu_of(used),
                used.value,
                100.0 * used.value / (used.value + free)
            ),
            _ => format!(
                "`{target}` {} framebuffer {:.0} MiB used",
                gpu_of(used),
                used.value
            ),
        };
        findings.push(Finding::new(Severity::Info, text));
    }
    if x.named("DCGM_FI_DEV_XID_ERRORS").next().is_none()
        && x.named("DCGM_FI_DEV_FB_USED").next().is_none()
    {
        findings.push(Finding::new(
            Severity::Warning,
            format!("`{target}`: the answer holds no DCGM gauges; is `dcgm_port` DCGM's exporter?"),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xid_79_is_critical_and_named() {
        let text = "DCGM_FI_DEV_XID_ERRORS{gpu=\"0\",Hostname=\"n1\"} 79\nDCGM_FI_DEV_FB_USED{gpu=\"0\"} 100\nDCGM_FI_DEV_FB_FREE{gpu=\"0\"} 300\n";
        let f = judge_dcgm("p", &exposition::parse(text));
        assert_eq!(f[0].signal, Some(Signal::GpuXid));
        assert!(f[0].text.contains("fallen off the bus"), "{}", f[0].text);
        assert!(f[1].text.contains("25% used"), "{}", f[1].text);
    }

    #[test]
    fn counts_are_whole_gpus() {
        assert_eq!(count("8"), Some(8));
        assert_eq!(count("500m"), None);
    }
}

//! Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for, with kubectl's columns.
//!
//! The cell logic follows Kubernetes' `pkg/printers/internalversion/printers.go`, which the
//! real API server runs with `Wide: true`: every column is sent, kubectl hides priority 1.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::columns::columns;
use super::resources::Resource;

/// What to embed in each row's `object`, from the `includeObject` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    /// Parse `includeObject`. kubectl's `--sort-by` reads the row objects, so an absent
    /// parameter gets the full object rather than the real server's metadata-only default.
    pub(crate) fn parse(v: Option<&str>) -> Result<IncludeObject, String> {
        match v {
            None | Some("") | Some("Object") => Ok(IncludeObject::Object),
            Some("None") => Ok(IncludeObject::None),
            Some("Metadata") => Ok(IncludeObject::Metadata),
            Some(other) => Err(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"None\", \"Metadata\", \"Object\""
            )),
        }
    }
}

/// Build a Table for `objects` of `resource`; `list_meta` becomes the Table's metadata.
pub(crate) fn table(
    resource: Resource,
    objects: &[Value],
    include: IncludeObject,
    now: Timestamp,
    list_meta: Value,
) -> Value {
    let columns: Vec<Value> = columns(resource)
        .iter()
        .map(|(name, ty, priority, description)| {
            let format = if *name == "Name" { "name" } else { "" };
            json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = json!({"cells": cells(resource, obj, now)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Object => row["object"] = obj.clone(),
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj.get("metadata").cloned().unwrap_or(Value::Null),
                    })
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn s<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(v: &str) -> String {
    if v.is_empty() {
        "<none>".into()
    } else {
        v.to_string()
    }
}

fn arr<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn cells(resource: Resource, obj: &Value, now: Timestamp) -> Vec<Value> {
    let name = s(obj, "/metadata/name");
    let age = since(s(obj, "/metadata/creationTimestamp"), now);
    match resource {
        Resource::Pods => pod_cells(obj, now),
        Resource::Events => event_cells(obj, now),
        Resource::Nodes => {
            let ready = arr(obj, "/status/conditions")
                .iter()
                .find(|c| s(c, "/type") == "Ready")
                .map(|c| s(c, "/status"));
            let mut status = match ready {
                Some("True") => "Ready".to_string(),
                Some("False") => "NotReady".to_string(),
                _ => "Unknown".to_string(),
            };
            if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            let mut roles: Vec<&str> = obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .filter(|r| !r.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            roles.sort_unstable();
            let address = |ty: &str| {
                arr(obj, "/status/addresses")
                    .iter()
                    .find(|a| s(a, "/type") == ty)
                    .map_or_else(|| "<none>".to_string(), |a| s(a, "/address").to_string())
            };
            vec![
                name.into(),
                status.into(),
                or_none(&roles.join(",")).into(),
                age.into(),
                s(obj, "/status/nodeInfo/kubeletVersion").into(),
                address("InternalIP").into(),
                address("ExternalIP").into(),
                or_none(s(obj, "/status/nodeInfo/osImage")).into(),
                or_none(s(obj, "/status/nodeInfo/kernelVersion")).into(),
                or_none(s(obj, "/status/nodeInfo/containerRuntimeVersion")).into(),
            ]
        }
        Resource::Namespaces => vec![name.into(), s(obj, "/status/phase").into(), age.into()],
        Resource::ConfigMaps => {
            let data = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + obj
                    .get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name.into(), data.into(), age.into()]
        }
        Resource::Deployments => {
            let desired = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let mut cells = vec![
                name.into(),
                format!("{}/{desired}", int(obj, "/status/readyReplicas")).into(),
                int(obj, "/status/updatedReplicas").into(),
                int(obj, "/status/availableReplicas").into(),
                age.into(),
            ];
            cells.extend(template_cells(obj));
            cells
        }
        Resource::ReplicaSets => {
            let desired = obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let mut cells = vec![
                name.into(),
                desired.into(),
                int(obj, "/status/replicas").into(),
                int(obj, "/status/readyReplicas").into(),
                age.into(),
            ];
            cells.extend(template_cells(obj));
            cells
        }
        Resource::Jobs => {
            let completions = obj.pointer("/spec/completions").and_then(Value::as_i64);
            let succeeded = int(obj, "/status/succeeded");
            let completions = match completions {
                Some(c) => format!("{succeeded}/{c}"),
                None => format!("{succeeded}/1"),
            };
            let condition = |ty: &str| {
                arr(obj, "/status/conditions")
                    .iter()
                    .any(|c| s(c, "/type") == ty && s(c, "/status") == "True")
            };
            let status = if condition("Complete") {
                "Complete"
            } else if condition("Failed") {
                "Failed"
            } else if condition("FailureTarget") {
                "FailureTarget"
            } else if obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                "Suspended"
            } else {
                "Running"
            };
            let start = s(obj, "/status/startTime");
            let end = s(obj, "/status/completionTime");
            let duration = match (start.parse::<Timestamp>(), end.parse::<Timestamp>()) {
                (Ok(a), Ok(b)) => human_duration(b.as_second() - a.as_second()),
                (Ok(a), Err(_)) => human_duration(now.as_second() - a.as_second()),
                _ => String::new(),
            };
            let mut cells = vec![
                name.into(),
                status.into(),
                completions.into(),
                duration.into(),
                age.into(),
            ];
            cells.extend(template_cells(obj));
            cells
        }
        Resource::HttpRoutes => {
            let hosts: Vec<&str> = arr(obj, "/spec/hostnames")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            vec![name.into(), hosts.join(",").into(), age.into()]
        }
        Resource::CronJobs => {
            let last = s(obj, "/status/lastScheduleTime");
            let last = if last.is_empty() {
                "<none>".to_string()
            } else {
                since(last, now)
            };
            let mut cells = vec![
                name.into(),
                s(obj, "/spec/schedule").into(),
                or_none(s(obj, "/spec/timeZone")).into(),
                obj.pointer("/spec/suspend")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .into(),
                arr(obj, "/status/active").len().into(),
                last.into(),
                age.into(),
            ];
            let template = obj
                .pointer("/spec/jobTemplate")
                .cloned()
                .unwrap_or(Value::Null);
            cells.extend(template_cells(&template));
            cells
        }
    }
}

/// CONTAINERS, IMAGES and SELECTOR for workloads with a pod template.
fn template_cells(obj: &Value) -> Vec<Value> {
    let containers = arr(obj, "/spec/template/spec/containers");
    let names: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, "/image")).collect();
    let mut selector: Vec<String> = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    selector.sort();
    vec![
        names.join(",").into(),
        images.join(",").into(),
        or_none(&selector.join(",")).into(),
    ]
}

/// READY, STATUS and RESTARTS as kubectl's printPod computes them.
fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let total = arr(pod, "/spec/containers").len();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut reason = s(pod, "/status/phase").to_string();
    if !s(pod, "/status/reason").is_empty() {
        reason = s(pod, "/status/reason").to_string();
    }
    let mut note_restart = |c: &Value| {
        if let Ok(t) = s(c, "/lastState/terminated/finishedAt").parse::<Timestamp>() {
            last_restart = Some(last_restart.map_or(t, |l| l.max(t)));
        }
    };
    let mut initializing = false;
    let init = arr(pod, "/status/initContainerStatuses");
    let init_total = arr(pod, "/spec/initContainers").len();
    for (i, c) in init.iter().enumerate() {
        restarts += int(c, "/restartCount");
        note_restart(c);
        let terminated = c.pointer("/state/terminated");
        let waiting_reason = s(c, "/state/waiting/reason");
        if terminated.is_some() && int(c, "/state/terminated/exitCode") == 0 {
            continue;
        }
        initializing = true;
        reason = if terminated.is_some() {
            let r = s(c, "/state/terminated/reason");
            if !r.is_empty() {
                format!("Init:{r}")
            } else if int(c, "/state/terminated/signal") != 0 {
                format!("Init:Signal:{}", int(c, "/state/terminated/signal"))
            } else {
                format!("Init:ExitCode:{}", int(c, "/state/terminated/exitCode"))
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{init_total}")
        };
        break;
    }
    let initialized = arr(pod, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == "Initialized" && s(c, "/status") == "True");
    if !initializing || initialized {
        restarts = 0;
        last_restart = None;
        let mut note_restart = |c: &Value| {
            if let Ok(t) = s(c, "/lastState/terminated/finishedAt").parse::<Timestamp>() {
                last_restart = Some(last_restart.map_or(t, |l| l.max(t)));
            }
        };
        let mut has_running = false;
        for c in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(c, "/restartCount");
            note_restart(c);
            let waiting = s(c, "/state/waiting/reason");
            let terminated = c.pointer("/state/terminated");
            let terminated_reason = s(c, "/state/terminated/reason");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if terminated.is_some() && !terminated_reason.is_empty() {
                reason = terminated_reason.to_string();
            } else if terminated.is_some() {
                let signal = int(c, "/state/terminated/signal");
                reason = if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", int(c, "/state/terminated/exitCode"))
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = arr(pod, "/status/conditions")
                .iter()
                .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }
    let phase = s(pod, "/status/phase");
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        if s(pod, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if phase != "Failed" && phase != "Succeeded" {
            reason = "Terminating".into();
        }
    }
    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!(
            "{restarts} ({} ago)",
            human_duration(now.as_second() - t.as_second())
        ),
        _ => restarts.to_string(),
    };
    let gates = arr(pod, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let met = gates
            .iter()
            .filter(|g| {
                arr(pod, "/status/conditions")
                    .iter()
                    .any(|c| s(c, "/type") == s(g, "/conditionType") && s(c, "/status") == "True")
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    vec![
        s(pod, "/metadata/name").into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts.into(),
        since(s(pod, "/metadata/creationTimestamp"), now).into(),
        or_none(s(pod, "/status/podIP")).into(),
        or_none(s(pod, "/spec/nodeName")).into(),
        or_none(s(pod, "/status/nominatedNodeName")).into(),
        gates.into(),
    ]
}

fn event_cells(ev: &Value, now: Timestamp) -> Vec<Value> {
    let mut first = since(s(ev, "/firstTimestamp"), now);
    if s(ev, "/firstTimestamp").is_empty() {
        first = since(s(ev, "/eventTime"), now);
    }
    let mut last = since(s(ev, "/lastTimestamp"), now);
    if s(ev, "/lastTimestamp").is_empty() {
        last = first.clone();
    }
    let mut count = int(ev, "/count");
    if ev.get("series").is_some_and(|v| !v.is_null()) {
        last = since(s(ev, "/series/lastObservedTime"), now);
        count = int(ev, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = s(ev, "/involvedObject/kind").to_lowercase();
    let target = match s(ev, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let mut source = s(ev, "/source/component").to_string();
    if source.is_empty() {
        source = s(ev, "/reportingComponent").to_string();
    }
    if !s(ev, "/source/host").is_empty() {
        source = format!("{source}, {}", s(ev, "/source/host"));
    }
    vec![
        last.into(),
        s(ev, "/type").into(),
        s(ev, "/reason").into(),
        target.into(),
        s(ev, "/involvedObject/fieldPath").into(),
        source.into(),
        s(ev, "/message").trim().into(),
        first.into(),
        count.into(),
        s(ev, "/metadata/name").into(),
    ]
}

/// kubectl's `translateTimestampSince`: `"<unknown>"` for no timestamp.
fn since(ts: &str, now: Timestamp) -> String {
    match ts.parse::<Timestamp>() {
        Ok(t) => human_duration(now.as_second() - t.as_second()),
        Err(_) => "<unknown>".into(),
    }
}

/// Kubernetes' `duration.HumanDuration`, so ages read exactly as kubectl prints them.
pub(crate) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(300), "5m");
        assert_eq!(human_duration(330), "5m30s");
        assert_eq!(human_duration(3 * 3600), "3h");
        assert_eq!(human_duration(2 * 86400), "2d");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
    }
}

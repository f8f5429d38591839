//! What every action kind shares: raw API calls (planned, dry-run, applied), reading objects as
//! JSON, the rollout check `kubectl rollout status` makes, and the `-`/`+` diff.

use k8s_openapi::api::apps::v1::Deployment;
use kube::client::Body;
use serde_json::Value;

use super::{ActionCx, ActionError, ApiCall, DryRun, Plan};
use crate::cluster::{Cluster, ClusterError};

/// An API server's answer to one call.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: String,
}

impl Answer {
    /// The `message` of a Kubernetes `Status` body, else the body itself.
    fn message(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| self.body.trim().chars().take(300).collect())
    }
}

/// Send `call` as planned; with `dry_run`, the same request with `dryRun=All` added.
/// Any HTTP status is an answer; only a transport failure is an error.
pub(super) async fn send(
    cluster: &Cluster,
    call: &ApiCall,
    dry_run: bool,
) -> Result<Answer, ClusterError> {
    let path = if dry_run {
        let sep = if call.path.contains('?') { '&' } else { '?' };
        format!("{}{sep}dryRun=All", call.path)
    } else {
        call.path.clone()
    };
    let body = match &call.body {
        Some(b) => serde_json::to_vec(b).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut request = http::Request::builder()
        .method(call.method.as_str())
        .uri(&path);
    if !call.content_type.is_empty() {
        request = request.header(http::header::CONTENT_TYPE, &call.content_type);
    }
    let unreachable = |reason: String| ClusterError::Unreachable {
        endpoint: cluster.endpoint().to_string(),
        reason,
    };
    let request = request
        .body(Body::from(body))
        .map_err(|e| unreachable(format!("cannot build {} {path}: {e}", call.method)))?;
    let response = cluster
        .client()
        .send(request)
        .await
        .map_err(|e| unreachable(root_cause(&e)))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| unreachable(root_cause(&e)))?;
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Check every call with `dryRun=All`; the first refusal is the answer.
pub(super) async fn dry_run(cluster: &Cluster, calls: &[ApiCall]) -> Result<DryRun, ActionError> {
    if calls.is_empty() {
        return Ok(DryRun::NotSupported);
    }
    for call in calls {
        let answer = send(cluster, call, true).await?;
        if !(200..300).contains(&answer.status) {
            tracing::info!(method = %call.method, path = %call.path, status = answer.status, "dry run refused");
            return Ok(DryRun::Refused(answer.message()));
        }
    }
    Ok(DryRun::Passed)
}

/// The error for a call the API server did not accept.
pub(super) fn refusal(plan: &Plan, call: &ApiCall, answer: Answer) -> ActionError {
    let message = answer.message();
    let has_test = call
        .body
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|ops| ops.iter().any(|op| op["op"] == "test"));
    // The API server answers a failed JSON Patch `test` with 422 and the patch library's
    // "testing value PATH failed" (apiserver handlers/patch.go); a failed DELETE precondition
    // (uid) or resourceVersion is 409. Either way the object is not what was planned.
    let stale = answer.status == 409
        || (answer.status == 422 && has_test && message.to_lowercase().contains("test"));
    if stale {
        return ActionError::Stale {
            target: plan.target.clone(),
            detail: message,
        };
    }
    if answer.status == 404 {
        return ActionError::NotFound(format!(
            "{} no longer exists ({message}); nothing was changed",
            plan.target
        ));
    }
    ActionError::Refused {
        call: format!("{} {}", call.method, call.path),
        status: answer.status,
        message,
    }
}

/// GET `path` as JSON; `what` names it in a not-found error.
pub(super) async fn get_json(
    cx: &ActionCx<'_>,
    path: &str,
    what: &str,
) -> Result<Value, ClusterError> {
    let request =
        http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| ClusterError::Unreachable {
                endpoint: cx.cluster.endpoint().to_string(),
                reason: format!("cannot build GET {path}: {e}"),
            })?;
    cx.cluster
        .client()
        .request::<Value>(request)
        .await
        .map_err(|e| cx.cluster.explain(e, what, &cx.runbook.namespace))
}

/// The API path of the runbook's deployment.
pub(super) fn deployment_path(cx: &ActionCx<'_>) -> String {
    format!(
        "/apis/apps/v1/namespaces/{}/deployments/{}",
        cx.runbook.namespace, cx.runbook.deployment
    )
}

/// `deployment/NAME -n NS`.
pub(super) fn deployment_target(cx: &ActionCx<'_>) -> String {
    format!(
        "deployment/{} -n {}",
        cx.runbook.deployment, cx.runbook.namespace
    )
}

/// The runbook's deployment, typed.
pub(super) async fn deployment(cx: &ActionCx<'_>) -> Result<Deployment, ClusterError> {
    let ns = &cx.runbook.namespace;
    cx.cluster
        .namespaced::<Deployment>(ns)
        .get(&cx.runbook.deployment)
        .await
        .map_err(|e| {
            cx.cluster
                .explain(e, &format!("deployment `{}`", cx.runbook.deployment), ns)
        })
}

/// Whether the deployment's rollout is done, as `kubectl rollout status` decides: the
/// controller has seen the latest spec and every replica is updated (and, with
/// `need_available`, available).
pub(super) async fn rollout_status(
    cx: &ActionCx<'_>,
    need_available: bool,
) -> Result<(bool, String), ClusterError> {
    let d = deployment(cx).await?;
    let name = format!("deployment/{}", cx.runbook.deployment);
    let generation = d.metadata.generation.unwrap_or(0);
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.unwrap_or_default();
    if status.observed_generation.unwrap_or(0) < generation {
        return Ok((
            false,
            format!("{name}: waiting for the controller to see generation {generation}"),
        ));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let created = updated >= want && total == updated;
    let settled = created && (!need_available || available >= updated);
    let detail = if settled && available >= want {
        format!("{name}: {want}/{want} replicas updated and available")
    } else if settled {
        format!("{name}: {updated}/{want} replicas updated, {available} available")
    } else {
        format!("{name}: {updated}/{want} updated, {available}/{want} available")
    };
    Ok((settled, detail))
}

/// Whether every value a plan's JSON patches set reads back from its object now.
pub(super) async fn reads_back(
    plan: &Plan,
    cx: &ActionCx<'_>,
) -> Result<(bool, String), ClusterError> {
    let mut checked = Vec::new();
    for call in &plan.calls {
        let Some(ops) = call.body.as_ref().and_then(Value::as_array) else {
            continue;
        };
        let path = call.path.split('?').next().unwrap_or(&call.path);
        let obj = get_json(cx, path, &plan.target).await?;
        for op in ops {
            if op["op"] != "replace" && op["op"] != "add" {
                continue;
            }
            let pointer = op["path"].as_str().unwrap_or_default();
            let got = obj.pointer(pointer);
            if got != op.get("value") {
                return Ok((
                    false,
                    format!(
                        "{}: {} reads {}, not {} yet",
                        plan.target,
                        pointer_path(pointer),
                        got.map_or("nothing".to_string(), scalar),
                        op.get("value").map_or("-".to_string(), scalar),
                    ),
                ));
            }
            checked.push(format!(
                "{} = {}",
                pointer_path(pointer),
                op.get("value").map_or("-".to_string(), scalar)
            ));
        }
    }
    Ok((
        true,
        format!("{}: reads back {}", plan.target, checked.join(", ")),
    ))
}

/// Escape one JSON Pointer token (RFC 6901): `~` → `~0`, `/` → `~1`.
pub fn pointer_escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `/data/active` → `data.active`, for messages.
fn pointer_path(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

/// A JSON value on one line: strings bare, the rest as JSON.
pub(super) fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Flatten `value` into `path: value` lines, depth first in document order: objects as
/// `prefix.key` (`prefix[key]` when the key has a `.` or `/`, like annotation names), arrays
/// as `prefix[i]`, multi-line strings shortened to their first line.
pub fn flatten(prefix: &str, value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(prefix, value, &mut out);
    out
}

fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let path = if k.contains('.') || k.contains('/') {
                    format!("{prefix}[{k}]")
                } else if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&path, v, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, v) in a.iter().enumerate() {
                walk(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::String(s) if s.contains('\n') => {
            let first = s.lines().next().unwrap_or_default();
            out.push((prefix.to_string(), format!("{first} …")));
        }
        other => out.push((prefix.to_string(), scalar(other))),
    }
}

/// The `-`/`+` lines between two flattened documents: each changed or removed path as `- `,
/// then its new value as `+ `; paths only in `after` come last. Unchanged paths are left out,
/// so a chat message shows only what the action changes.
pub fn diff_lines(before: &[(String, String)], after: &[(String, String)]) -> String {
    let find = |list: &[(String, String)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let mut lines = Vec::new();
    for (k, old) in before {
        match find(after, k) {
            Some(new) if new == *old => {}
            Some(new) => {
                lines.push(format!("- {k}: {old}"));
                lines.push(format!("+ {k}: {new}"));
            }
            None => lines.push(format!("- {k}: {old}")),
        }
    }
    for (k, new) in after {
        if find(before, k).is_none() {
            lines.push(format!("+ {k}: {new}"));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_shows_only_changes() {
        let before = flatten("data", &json!({"active": "v7", "v6": "a", "x.y/z": "q\nr"}));
        let after = flatten("data", &json!({"active": "v6", "v6": "a", "new": 1}));
        assert_eq!(
            diff_lines(&before, &after),
            "- data.active: v7\n+ data.active: v6\n- data[x.y/z]: q …\n+ data.new: 1"
        );
    }

    #[test]
    fn pointer_tokens_escape() {
        assert_eq!(pointer_escape("a/b~c"), "a~1b~0c");
        assert_eq!(pointer_path("/data/a~1b"), "data.a/b");
    }
}

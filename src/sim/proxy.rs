//! The pod proxy (`/api/v1/namespaces/NS/pods/NAME[:PORT]/proxy/PATH`): the API server's way
//! to reach a pod's port, and what the simulated pod answers there.
//!
//! Like the real server, the proxy does not care about readiness, only whether something
//! listens: a pod that is not Running (or has no IP) and a port nothing listens on both give a
//! 503 Status; otherwise the pod's [`Workload`] answers, and its status and body pass through.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::resources::Resource;
use super::status::ApiError;
use super::store::Store;
use super::workload::chat::{self, Outcome};
use super::workload::{Workload, metrics};

/// How long a `hang: true` endpoint holds a request before the simulator gives up on it, so a
/// client with no timeout of its own does not wait forever.
const HANG_LIMIT: Duration = Duration::from_secs(300);

/// What to send back, decided under the store lock and sent after it is released.
pub(crate) enum Plan {
    /// Answer after `delay` (zero for at once).
    After(Duration, Response),
    /// Hold the request, then give up as an upstream timeout.
    Hang,
}

impl Plan {
    /// Wait as planned and produce the response.
    pub(crate) async fn run(self) -> Response {
        match self {
            Plan::After(delay, response) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                response
            }
            Plan::Hang => {
                tokio::time::sleep(HANG_LIMIT).await;
                ApiError::service_unavailable(
                    "error trying to reach service: the model server accepted the connection but sent no response (a hanging endpoint)",
                )
                .into_response()
            }
        }
    }
}

/// `[scheme:]name[:port]`, as `kubectl proxy` and the API server split a proxy target.
fn split_target(target: &str) -> Result<(&str, Option<&str>), ApiError> {
    let invalid = || ApiError::bad_request(format!("invalid pod request {target:?}"));
    let parts: Vec<&str> = target.split(':').collect();
    let (name, port) = match parts.as_slice() {
        [name] => (*name, None),
        [name, port] => (*name, Some(*port)),
        [scheme, name, port] if matches!(*scheme, "http" | "https" | "") => (*name, Some(*port)),
        _ => return Err(invalid()),
    };
    if name.is_empty() {
        return Err(invalid());
    }
    Ok((name, port.filter(|p| !p.is_empty())))
}

/// The first declared container port, which the real server uses when the path gives none.
fn first_container_port(pod: &Value) -> Option<u16> {
    pod.pointer("/spec/containers")?
        .as_array()?
        .iter()
        .filter_map(|c| {
            c.get("ports")?
                .as_array()?
                .first()?
                .get("containerPort")?
                .as_u64()
        })
        .find_map(|p| u16::try_from(p).ok())
}

/// The container declaring `port` (or the only container), and whether it is running.
fn container_running(pod: &Value, port: u16) -> bool {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let declares = |c: &&Value| {
        c.get("ports").and_then(Value::as_array).is_some_and(|ps| {
            ps.iter()
                .any(|p| p.get("containerPort").and_then(Value::as_u64) == Some(u64::from(port)))
        })
    };
    let owner = containers
        .iter()
        .find(declares)
        .or(if containers.len() == 1 {
            containers.first()
        } else {
            None
        });
    let Some(name) = owner.and_then(|c| c.get("name")).and_then(Value::as_str) else {
        return false;
    };
    pod.pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|ss| {
            ss.iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
        })
        .is_some_and(|s| s.pointer("/state/running").is_some())
}

/// Route a proxied request: check the pod as the API server would, then play its workload.
pub(crate) fn plan(
    store: &Store,
    method: &Method,
    ns: &str,
    target: &str,
    path: &str,
    body: &[u8],
) -> Result<Plan, ApiError> {
    let (name, port) = split_target(target)?;
    let pod = store
        .get(Resource::Pods, ns, name)
        .ok_or_else(|| ApiError::not_found(Resource::Pods, name))?;
    let port: u16 = match port {
        Some(p) => p.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid pod request {target:?}: port {p:?} is not a number"
            ))
        })?,
        // With no port and no declared one the real server dials port 80.
        None => first_container_port(pod).unwrap_or(80),
    };
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Unknown");
    let ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty());
    let Some(ip) = ip.filter(|_| phase == "Running") else {
        return Err(ApiError::service_unavailable(format!(
            "error trying to reach service: pod {name} is not running (phase {phase}), so nothing answers on port {port}; see its events for why"
        )));
    };
    let refused = || {
        ApiError::service_unavailable(format!(
            "error trying to reach service: dial tcp {ip}:{port}: connect: connection refused"
        ))
    };
    let workload = store.workload(ns, name).ok_or_else(refused)?;
    let dcgm = workload.dcgm.as_ref().filter(|d| d.port == port);
    if port != workload.port && dcgm.is_none() {
        return Err(refused());
    }
    // DCGM's exporter runs apart from vLLM, so it still answers while vLLM crash-loops: that is
    // when its XID and memory gauges matter most.
    if dcgm.is_none() && !container_running(pod, workload.port) {
        return Err(refused());
    }
    let path = format!("/{}", path.trim_start_matches('/'));
    let now = Timestamp::now().as_second();
    if let Some(d) = dcgm {
        return Ok(match (method, path.as_str()) {
            (&Method::GET, "/metrics") => {
                let node = pod
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                now_text(metrics::dcgm(d, node, name, ns))
            }
            _ => now_json(StatusCode::NOT_FOUND, json!({"detail": "Not Found"})),
        });
    }
    vllm(store, workload, ns, method, &path, body, now)
}

/// vLLM's HTTP routes.
fn vllm(
    store: &Store,
    w: &Workload,
    ns: &str,
    method: &Method,
    path: &str,
    body: &[u8],
    now: i64,
) -> Result<Plan, ApiError> {
    let plan = match (method, path) {
        (&Method::GET, "/metrics") => now_text(metrics::vllm(w)),
        (&Method::GET, "/health") => Plan::After(Duration::ZERO, StatusCode::OK.into_response()),
        (&Method::GET, "/v1/models") => answer(chat::models(w, now)),
        (&Method::POST, "/v1/chat/completions") => chat_completion(store, w, ns, body, now),
        (_, "/metrics" | "/health" | "/v1/models" | "/v1/chat/completions") => now_json(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"detail": "Method Not Allowed"}),
        ),
        _ => now_json(StatusCode::NOT_FOUND, json!({"detail": "Not Found"})),
    };
    Ok(plan)
}

/// Read the active prompt version from its ConfigMap now, then answer as that version would.
fn chat_completion(store: &Store, w: &Workload, ns: &str, body: &[u8], now: i64) -> Plan {
    let Some(chat_spec) = &w.chat else {
        return answer(chat::error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            "this simulated pod has no `chat:` section in its PodWorkload",
        ));
    };
    let cfg = &chat_spec.prompt_config;
    let active = store
        .get(Resource::ConfigMaps, ns, &cfg.configmap)
        .and_then(|cm| cm.pointer(&format!("/data/{}", cfg.active_key)))
        .and_then(Value::as_str)
        .map(str::trim);
    let Some(active) = active else {
        return answer(chat::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!(
                "cannot read the active prompt version: ConfigMap {ns}/{} has no data key `{}`",
                cfg.configmap, cfg.active_key
            ),
        ));
    };
    let Some(version) = chat_spec.versions.get(active) else {
        return answer(chat::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!(
                "prompt version `{active}` is active, but the PodWorkload has no behaviour for it; known versions: {}",
                chat_spec
                    .versions
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    match chat::complete(w, active, version, body, now) {
        Outcome::Hang => Plan::Hang,
        Outcome::Answer(a) => {
            let delay = if a.0.is_success() {
                Duration::from_millis(version.latency_ms)
            } else {
                Duration::ZERO
            };
            Plan::After(delay, (a.0, Json(a.1)).into_response())
        }
    }
}

fn answer((code, body): chat::Answer) -> Plan {
    now_json(code, body)
}

fn now_json(code: StatusCode, body: Value) -> Plan {
    Plan::After(Duration::ZERO, (code, Json(body)).into_response())
}

fn now_text(body: String) -> Plan {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    Plan::After(Duration::ZERO, response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Scenario;

    async fn ask(store: &Store, pod: &str, question: &str) -> String {
        let body = json!({"messages": [{"role": "user", "content": question}]}).to_string();
        let plan = plan(
            store,
            &Method::POST,
            "ai-production",
            pod,
            "v1/chat/completions",
            body.as_bytes(),
        );
        let Ok(Plan::After(_, response)) = plan else {
            panic!("expected an answer");
        };
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        v.pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_string()
    }

    /// The active version is read per request, so rolling the ConfigMap back fixes answers
    /// without touching the workload.
    #[tokio::test]
    async fn prompt_rollback_changes_answers() {
        let Ok(scenario) = Scenario::load("bad-prompt") else {
            panic!("bad-prompt loads");
        };
        let mut store = Store::new(scenario);
        let pod = "model-server-3d7e9a1c6-n2rwy";
        assert!(
            ask(&store, pod, "capital of France?")
                .await
                .starts_with("the the")
        );
        if let Some(cm) = store.get_mut(Resource::ConfigMaps, "ai-production", "prompt-versions") {
            cm["data"]["active"] = "v7".into();
        }
        assert_eq!(
            ask(&store, pod, "capital of France?").await,
            "Paris is the capital of France."
        );
    }

    #[test]
    fn splits_proxy_targets() {
        assert_eq!(split_target("p").ok(), Some(("p", None)));
        assert_eq!(split_target("p:8000").ok(), Some(("p", Some("8000"))));
        assert_eq!(split_target("https:p:443").ok(), Some(("p", Some("443"))));
        assert_eq!(split_target("p:").ok(), Some(("p", None)));
        assert!(split_target(":80").is_err());
        assert!(split_target("a:b:c:d").is_err());
    }
}

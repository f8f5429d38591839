//! The HTTP side: binding, the request log and latency hooks, and routing paths to handlers.
//!
//! Routing is one hand-written parser into [`Route`] plus one `match` on (method, route), so
//! the pod proxy, PATCH and the scale subresource are new arms, not a new router.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::api;
use super::discovery;
use super::proxy;
use super::resources::Resource;
use super::scenario::{Scenario, SimError};
use super::status::ApiError;
use super::store::Store;
use super::write;

/// How long `shutdown` waits for open connections before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The largest body the pod proxy reads; chat requests are a few KiB.
const MAX_PROXY_BODY: usize = 4 << 20;

/// The largest body a write reads; a whole Deployment is a few KiB.
const MAX_WRITE_BODY: usize = 4 << 20;

/// State shared by every request.
pub(crate) struct Shared {
    /// The objects; a RwLock so writes (PATCH, scale, DELETE) take it exclusively.
    pub(crate) store: RwLock<Store>,
    requests: Mutex<Vec<String>>,
    /// "METHOD path" of every write that was stored (dry runs and failures are not).
    writes: Mutex<Vec<String>>,
    latency: Mutex<Vec<(String, Duration)>>,
    addr: SocketAddr,
}

/// A running simulated Kubernetes API server on loopback HTTP.
///
/// Dropping it stops the server too; [`SimServer::shutdown`] also waits for it to stop.
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Bind (use 127.0.0.1:0 for an ephemeral port) and serve in a background tokio task.
    pub async fn start(scenario: Scenario, listen: SocketAddr) -> Result<SimServer, SimError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            store: RwLock::new(Store::new(scenario)),
            requests: Mutex::new(Vec::new()),
            writes: Mutex::new(Vec::new()),
            latency: Mutex::new(Vec::new()),
            addr,
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "simulated API server stopped with an error");
            }
        });
        tracing::info!(%addr, "simulated Kubernetes API server listening");
        Ok(SimServer {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig (YAML text) pointing at this server, with the given default namespace.
    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        // A JSON string is a valid YAML double-quoted scalar, so any namespace text is safe.
        let ns = serde_json::Value::from(namespace).to_string();
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: firebreak-sim
  cluster:
    server: {url}
contexts:
- name: firebreak-sim
  context:
    cluster: firebreak-sim
    user: firebreak-sim
    namespace: {ns}
current-context: firebreak-sim
users:
- name: firebreak-sim
  user: {{}}
preferences: {{}}
",
            url = self.url()
        )
    }

    /// Test hook: every request served so far, as "GET /api/v1/namespaces/x/pods?limit=2&continue=..." (path+query).
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    /// Test hook: every write that changed the store, as
    /// "PATCH /apis/apps/v1/namespaces/ai-production/deployments/model-server" (path only), so
    /// tests can count how often a change was applied. Dry runs and rejected writes are absent.
    pub fn writes(&self) -> Vec<String> {
        lock(&self.shared.writes).clone()
    }

    /// Test hook: delay answers to requests whose path starts with `path_prefix`.
    /// A zero delay removes the hook for that prefix.
    pub fn set_latency(&self, path_prefix: &str, delay: Duration) {
        let mut latency = lock(&self.shared.latency);
        latency.retain(|(p, _)| p != path_prefix);
        if !delay.is_zero() {
            latency.push((path_prefix.to_string(), delay));
        }
    }

    /// Stop serving and wait (briefly) for the server task to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            // Clients holding keep-alive connections can delay a graceful stop; don't hang on them.
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Lock a mutex, carrying on past poisoning: the guarded data are plain lists.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a request path names.
#[derive(Debug, PartialEq)]
pub(crate) enum Route {
    Version,
    CoreVersions,
    Groups,
    Group(String),
    ResourceList(String),
    /// A collection: all namespaces (or cluster-scoped) when `namespace` is `None`.
    Collection {
        resource: Resource,
        namespace: Option<String>,
    },
    Object {
        resource: Resource,
        namespace: Option<String>,
        name: String,
    },
    /// `.../NAME/SUB[/REST]`, e.g. `log`, and later `proxy/...` or `scale`.
    Subresource {
        resource: Resource,
        namespace: Option<String>,
        name: String,
        sub: String,
        rest: String,
    },
}

/// Parse a request path; `None` when nothing is served there.
pub(crate) fn route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest): (&str, &[&str]) = match segs.as_slice() {
        ["version"] => return Some(Route::Version),
        ["api"] => return Some(Route::CoreVersions),
        ["apis"] => return Some(Route::Groups),
        ["api", "v1"] => return Some(Route::ResourceList(String::new())),
        ["apis", g] => return Some(Route::Group((*g).to_string())),
        ["apis", g, "v1"] => return Some(Route::ResourceList((*g).to_string())),
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, "v1", rest @ ..] => (*g, rest),
        _ => return None,
    };
    let find = |plural: &str| Resource::from_plural(group, plural);
    match rest {
        // `/api/v1/namespaces/NS/...` is namespaced, unless it is the namespace object itself.
        ["namespaces", ns, plural, tail @ ..] if !ns.is_empty() && *plural != "status" => {
            let resource = find(plural).filter(|r| r.namespaced())?;
            object_route(resource, Some((*ns).to_string()), tail)
        }
        [plural, tail @ ..] if !plural.is_empty() => {
            let resource = find(plural)?;
            if resource.namespaced() && !tail.is_empty() {
                return None; // namespaced objects are only addressed under /namespaces/NS
            }
            object_route(resource, None, tail)
        }
        _ => None,
    }
}

fn object_route(resource: Resource, namespace: Option<String>, tail: &[&str]) -> Option<Route> {
    match tail {
        [] => Some(Route::Collection {
            resource,
            namespace,
        }),
        [name] if !name.is_empty() => Some(Route::Object {
            resource,
            namespace,
            name: (*name).to_string(),
        }),
        [name, sub, rest @ ..] if !name.is_empty() && !sub.is_empty() => Some(Route::Subresource {
            resource,
            namespace,
            name: (*name).to_string(),
            sub: (*sub).to_string(),
            rest: rest.join("/"),
        }),
        _ => None,
    }
}

/// Every request lands here: log it, apply test latency, route, answer.
async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.to_string());
    lock(&shared.requests).push(format!("{method} {path_and_query}"));
    let delay = lock(&shared.latency)
        .iter()
        .filter(|(prefix, _)| uri.path().starts_with(prefix.as_str()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, d)| *d);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let result = match route(uri.path()) {
        Some(Route::Subresource {
            resource: Resource::Pods,
            namespace: Some(ns),
            name,
            sub,
            rest,
        }) if sub == "proxy" => proxy_request(&shared, &method, &ns, &name, &rest, req).await,
        _ if method == Method::GET => dispatch(&shared, &method, &uri, req.headers()),
        _ => write_request(&shared, &method, &uri, req).await,
    };
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(%method, path = %path_and_query, code = %e.code(), "simulator answered an error");
            e.into_response()
        }
    };
    tracing::trace!(%method, path = %path_and_query, status = %response.status(), "simulator request");
    response
}

/// The pod proxy: read the body, decide under the store lock, then wait (if the simulated pod
/// is slow) with the lock released.
async fn proxy_request(
    shared: &Shared,
    method: &Method,
    ns: &str,
    target: &str,
    path: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(req.into_body(), MAX_PROXY_BODY)
        .await
        .map_err(|e| {
            ApiError::bad_request(format!(
                "cannot read the request body for the pod proxy (at most {MAX_PROXY_BODY} bytes): {e}"
            ))
        })?;
    let plan = {
        let store = shared.store.read().unwrap_or_else(|e| e.into_inner());
        proxy::plan(&store, method, ns, target, path, &body)?
    };
    Ok(plan.run().await)
}

/// PATCH, PUT, DELETE: read the body, then apply the write under the exclusive store lock.
async fn write_request(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    req: Request,
) -> Result<Response, ApiError> {
    let route = route(uri.path()).ok_or_else(ApiError::no_route)?;
    let query = parse_query(uri)?;
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), MAX_WRITE_BODY)
        .await
        .map_err(|e| {
            ApiError::bad_request(format!(
                "cannot read the request body (at most {MAX_WRITE_BODY} bytes): {e}"
            ))
        })?;
    let written = {
        let mut store = shared.store.write().unwrap_or_else(|e| e.into_inner());
        write::dispatch(&mut store, method, route, &query, &headers, &body)?
    };
    if written.stored {
        lock(&shared.writes).push(format!("{method} {}", uri.path()));
    }
    Ok(written.response)
}

fn parse_query(uri: &Uri) -> Result<HashMap<String, String>, ApiError> {
    Ok(Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?
        .0
        .into_iter()
        .collect())
}

fn dispatch(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let route = route(uri.path()).ok_or_else(ApiError::no_route)?;
    let query = parse_query(uri)?;
    if *method != Method::GET {
        return Err(ApiError::method_not_allowed(&format!(
            "{method} is not served here"
        )));
    }
    let store = shared.store.read().unwrap_or_else(|e| e.into_inner());
    let json = |v: serde_json::Value| Ok(Json(v).into_response());
    match route {
        Route::Version => json(discovery::version()),
        Route::CoreVersions => json(discovery::core_versions(&shared.addr.to_string())),
        Route::Groups => json(discovery::group_list()),
        Route::Group(g) => discovery::api_group(&g).map_or_else(|| Err(ApiError::no_route()), json),
        Route::ResourceList(g) => {
            discovery::resource_list(&g).map_or_else(|| Err(ApiError::no_route()), json)
        }
        Route::Collection {
            resource,
            namespace,
        } => api::list(&store, resource, namespace.as_deref(), &query, headers),
        Route::Object {
            resource,
            namespace,
            name,
        } => api::get(
            &store,
            resource,
            namespace.as_deref(),
            &name,
            &query,
            headers,
        ),
        Route::Subresource {
            resource: Resource::Pods,
            namespace: Some(ns),
            name,
            sub,
            rest,
        } if sub == "log" && rest.is_empty() => api::pod_log(&store, &ns, &name, &query),
        Route::Subresource {
            resource: Resource::Deployments,
            namespace: Some(ns),
            name,
            sub,
            rest,
        } if sub == "scale" && rest.is_empty() => store
            .get(Resource::Deployments, &ns, &name)
            .map(write::scale_of)
            .map_or_else(
                || Err(ApiError::not_found(Resource::Deployments, &name)),
                json,
            ),
        Route::Subresource { .. } => Err(ApiError::no_route()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/api"), Some(Route::CoreVersions));
        assert_eq!(
            route("/api/v1/namespaces/ai/pods"),
            Some(Route::Collection {
                resource: Resource::Pods,
                namespace: Some("ai".into())
            })
        );
        assert_eq!(
            route("/api/v1/namespaces/ai"),
            Some(Route::Object {
                resource: Resource::Namespaces,
                namespace: None,
                name: "ai".into()
            })
        );
        assert_eq!(
            route("/apis/apps/v1/namespaces/ai/deployments/m/scale"),
            Some(Route::Subresource {
                resource: Resource::Deployments,
                namespace: Some("ai".into()),
                name: "m".into(),
                sub: "scale".into(),
                rest: String::new()
            })
        );
        assert_eq!(route("/apis/apps/v1/pods"), None);
        assert_eq!(route("/api/v1/pods/x"), None);
        assert_eq!(
            route("/apis/nope/v1"),
            Some(Route::ResourceList("nope".into()))
        );
        assert_eq!(route("/healthz"), None);
        assert_eq!(
            route("/api/v1/namespaces/ai/pods/p:8000/proxy/v1/chat/completions"),
            Some(Route::Subresource {
                resource: Resource::Pods,
                namespace: Some("ai".into()),
                name: "p:8000".into(),
                sub: "proxy".into(),
                rest: "v1/chat/completions".into()
            })
        );
    }
}

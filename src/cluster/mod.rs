//! The Kubernetes connection: building a kube client from a kubeconfig or URL, paginated
//! lists, and API errors turned into messages an on-call engineer can act on.
//!
//! The same code talks to a real cluster and to `firebreak sim`; there is no trait to swap.

use std::path::Path;

use kube::api::{Api, ListParams, ObjectList};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::de::DeserializeOwned;

/// Page size for list calls, so a namespace with thousands of pods is never one huge answer.
pub const PAGE_SIZE: u32 = 100;

/// Why a cluster call failed, worded for the person who must fix it.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The kubeconfig could not be read or used.
    #[error("cannot use kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// Which file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// No connection to the API server.
    #[error(
        "cannot reach the Kubernetes API at {endpoint}: {reason}. Is the cluster up and the kubeconfig current?"
    )]
    Unreachable {
        /// The API server URL.
        endpoint: String,
        /// The transport error.
        reason: String,
    },
    /// The object does not exist.
    #[error("{what} not found in namespace `{namespace}`; check the runbook's names")]
    NotFound {
        /// e.g. `deployment model-server`.
        what: String,
        /// The namespace searched.
        namespace: String,
    },
    /// RBAC refused the call.
    #[error(
        "forbidden: {message}. Firebreak's service account needs this permission (see deploy/)"
    )]
    Forbidden {
        /// The API server's message.
        message: String,
    },
    /// Any other API error.
    #[error("Kubernetes API error {code}: {message}")]
    Api {
        /// HTTP status.
        code: u16,
        /// The API server's message.
        message: String,
    },
}

/// A connection to one Kubernetes API server.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    endpoint: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Cluster {
    /// Connect as kubectl would: the given kubeconfig, else `$KUBECONFIG`, `~/.kube/config`
    /// or the in-cluster service account.
    pub async fn connect(kubeconfig: Option<&Path>) -> Result<Cluster, ClusterError> {
        install_crypto_provider();
        let config = match kubeconfig {
            Some(path) => {
                let bad = |reason: String| ClusterError::Kubeconfig {
                    path: path.display().to_string(),
                    reason,
                };
                let kc = Kubeconfig::read_from(path).map_err(|e| bad(e.to_string()))?;
                kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| bad(e.to_string()))?
            }
            None => kube::Config::infer()
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: "(default: $KUBECONFIG, ~/.kube/config or in-cluster)".to_string(),
                    reason: e.to_string(),
                })?,
        };
        Cluster::from_config(config)
    }

    /// Connect to an API server URL without credentials (a local simulator or `kubectl proxy`).
    pub fn from_url(url: &str) -> Result<Cluster, ClusterError> {
        install_crypto_provider();
        let uri = url.parse().map_err(|e| ClusterError::Kubeconfig {
            path: url.to_string(),
            reason: format!("not a URL: {e}"),
        })?;
        Cluster::from_config(kube::Config::new(uri))
    }

    fn from_config(mut config: kube::Config) -> Result<Cluster, ClusterError> {
        // kube retries 503s with backoff growing to minutes; a pod proxy answers 503 for a pod
        // that is not running. Each step has its own timeout and reports the error instead.
        config.default_retry = false;
        let endpoint = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let client = kube::Client::try_from(config).map_err(|e| ClusterError::Unreachable {
            endpoint: endpoint.clone(),
            reason: e.to_string(),
        })?;
        Ok(Cluster { client, endpoint })
    }

    /// The underlying client, for typed `Api` calls.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// The API server URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A namespaced typed API.
    pub fn namespaced<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Every object matching `params`, following `continue` tokens page by page.
    pub async fn list_all<K>(
        &self,
        api: &Api<K>,
        params: &ListParams,
        namespace: &str,
    ) -> Result<Vec<K>, ClusterError>
    where
        K: Clone + DeserializeOwned + std::fmt::Debug,
    {
        let mut params = params.clone();
        if params.limit.is_none() {
            params.limit = Some(PAGE_SIZE);
        }
        let mut items = Vec::new();
        loop {
            let page: ObjectList<K> = api
                .list(&params)
                .await
                .map_err(|e| self.explain(e, "list", namespace))?;
            items.extend(page.items);
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params.continue_token = Some(token),
                None => return Ok(items),
            }
        }
    }

    /// Turn a kube error into one a person can act on; `what` names the object asked for.
    pub fn explain(&self, error: kube::Error, what: &str, namespace: &str) -> ClusterError {
        match error {
            kube::Error::Api(status) if status.code == 404 => ClusterError::NotFound {
                what: what.to_string(),
                namespace: namespace.to_string(),
            },
            kube::Error::Api(status) if status.code == 403 => ClusterError::Forbidden {
                message: status.message,
            },
            kube::Error::Api(status) => ClusterError::Api {
                code: status.code,
                message: status.message,
            },
            other => ClusterError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: root_cause(&other),
            },
        }
    }
}

/// The innermost error message: "connection refused" beats "client error (Connect)".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Install ring as rustls's one crypto provider; safe to call more than once.
pub fn install_crypto_provider() {
    // An Err means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

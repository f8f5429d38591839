//! Where golden prompts go: an OpenAI-compatible base URL (reqwest) or a pod's port through
//! the Kubernetes API server's pod proxy (the kube client, so in-cluster RBAC and kubeconfig
//! credentials apply and no Service or port-forward is needed).

/// An OpenAI-compatible server to send chat completions to.
#[derive(Clone)]
pub enum Target {
    /// A base URL such as `http://model-server:8000` or `http://model-server:8000/v1`.
    Url {
        /// The base URL as written in the runbook.
        base: String,
        /// A reused HTTP client.
        client: reqwest::Client,
    },
    /// `POST /api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/v1/chat/completions`.
    PodProxy {
        /// The kube client.
        client: kube::Client,
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// The serving port.
        port: u16,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Why no HTTP answer came back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransportError {
    /// The HTTP client could not be built (TLS initialisation).
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
    /// Connection refused, DNS, reset, TLS: nothing answered.
    #[error(
        "{method} {url} failed: {reason}; is the server up and the address in the runbook right?"
    )]
    Request {
        /// `GET` or `POST`.
        method: &'static str,
        /// Where to.
        url: String,
        /// The innermost cause, e.g. `Connection refused (os error 111)`.
        reason: String,
    },
    /// The answer started but its body could not be read.
    #[error("reading the answer of {url} failed: {reason}")]
    Body {
        /// From where.
        url: String,
        /// The innermost cause.
        reason: String,
    },
    /// A pod-proxy path that `http` refuses (a pod name cannot cause this; a bad `path:` can).
    #[error("bad proxy path `{path}`: {reason}; check `path:` in the runbook")]
    BadPath {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A response that arrived, whatever its status.
#[derive(Debug, Clone, PartialEq)]
pub struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// Body, lossily decoded.
    pub body: String,
}

impl Target {
    /// A URL target with a fresh client.
    pub fn url(base: &str) -> Result<Target, TransportError> {
        Ok(Target::Url {
            base: base.to_string(),
            client: http_client()?,
        })
    }

    /// Name for reports: the URL, or `pod/NAME:PORT`.
    pub fn describe(&self) -> String {
        match self {
            Target::Url { base, .. } => base.clone(),
            Target::PodProxy { pod, port, .. } => format!("pod/{pod}:{port}"),
        }
    }

    /// The chat completions endpoint: accepts a base with or without the `/v1` that OpenAI
    /// clients put in their base URL.
    pub fn completions_url(base: &str) -> String {
        let base = base.trim_end_matches('/');
        if base.ends_with("/v1") {
            format!("{base}/chat/completions")
        } else {
            format!("{base}/v1/chat/completions")
        }
    }

    /// POST a JSON body to the chat completions endpoint. `Err` only when no HTTP answer
    /// came back (refused, reset, DNS); a 500 is an `Ok` with its status.
    pub async fn post_json(&self, body: Vec<u8>) -> Result<RawAnswer, TransportError> {
        match self {
            Target::Url { base, client } => {
                let url = Target::completions_url(base);
                let response = client
                    .post(&url)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| TransportError::Request {
                        method: "POST",
                        url: url.clone(),
                        reason: root_cause(&e),
                    })?;
                read_answer(&url, response).await
            }
            Target::PodProxy {
                client,
                namespace,
                pod,
                port,
            } => {
                let path = format!(
                    "/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/v1/chat/completions"
                );
                let request = http::Request::post(&path)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(kube::client::Body::from(body))
                    .map_err(|e| TransportError::BadPath {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                // `send`, not `request_text`: the canary reports the model server's own status
                // and body, which `request_text` would turn into a kube error.
                let via = format!("the API server's proxy to pod {pod}:{port}");
                let response = client
                    .send(request)
                    .await
                    .map_err(|e| TransportError::Request {
                        method: "POST",
                        url: via.clone(),
                        reason: root_cause(&e),
                    })?;
                let status = response.status().as_u16();
                let bytes = response.into_body().collect_bytes().await.map_err(|e| {
                    TransportError::Body {
                        url: via,
                        reason: root_cause(&e),
                    }
                })?;
                Ok(RawAnswer {
                    status,
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                })
            }
        }
    }
}

/// GET `url` with reqwest; any status is an answer.
pub async fn get(url: &str) -> Result<RawAnswer, TransportError> {
    let response = http_client()?
        .get(url)
        .send()
        .await
        .map_err(|e| TransportError::Request {
            method: "GET",
            url: url.to_string(),
            reason: root_cause(&e),
        })?;
    read_answer(url, response).await
}

async fn read_answer(url: &str, response: reqwest::Response) -> Result<RawAnswer, TransportError> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| TransportError::Body {
        url: url.to_string(),
        reason: root_cause(&e),
    })?;
    Ok(RawAnswer {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// A plain HTTP client; building one only fails when TLS cannot initialise.
pub fn http_client() -> Result<reqwest::Client, TransportError> {
    reqwest::Client::builder()
        .build()
        .map_err(|e| TransportError::Client(root_cause(&e)))
}

/// The innermost cause: "connection refused" beats "error sending request".
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_with_or_without_v1() {
        assert_eq!(
            Target::completions_url("http://m:8000"),
            "http://m:8000/v1/chat/completions"
        );
        assert_eq!(
            Target::completions_url("http://m:8000/v1/"),
            "http://m:8000/v1/chat/completions"
        );
    }
}

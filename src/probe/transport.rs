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
    pub fn url(base: &str) -> Result<Target, String> {
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
    pub async fn post_json(&self, body: Vec<u8>) -> Result<RawAnswer, String> {
        match self {
            Target::Url { base, client } => {
                let url = Target::completions_url(base);
                let response = client
                    .post(&url)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("POST {url} failed: {}", root_cause(&e)))?;
                let status = response.status().as_u16();
                let bytes = response.bytes().await.map_err(|e| {
                    format!("reading the answer of {url} failed: {}", root_cause(&e))
                })?;
                Ok(RawAnswer {
                    status,
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                })
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
                    .map_err(|e| format!("bad proxy path `{path}`: {e}"))?;
                // `send`, not `request_text`: the canary reports the model server's own status
                // and body, which `request_text` would turn into a kube error.
                let response = client.send(request).await.map_err(|e| {
                    format!(
                        "POST via the API server to {pod}:{port} failed: {}",
                        root_cause(&e)
                    )
                })?;
                let status = response.status().as_u16();
                let bytes = response.into_body().collect_bytes().await.map_err(|e| {
                    format!(
                        "reading the answer of {pod}:{port} failed: {}",
                        root_cause(&e)
                    )
                })?;
                Ok(RawAnswer {
                    status,
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                })
            }
        }
    }
}

/// A plain HTTP client; building one only fails when TLS cannot initialise.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", root_cause(&e)))
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

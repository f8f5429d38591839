//! The HTTP surface of `firebreak serve`: one axum router that each enabled adapter adds its
//! routes to, plus `/healthz` for the kubelet.
//!
//! Adapters own their paths (`/slack/...`, `/discord/...`) and verify their own requests; this
//! module only composes them and serves until shutdown.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;

/// The router: `/healthz` and every adapter's routes.
pub fn app(adapter_routes: Vec<Router>) -> Router {
    adapter_routes.into_iter().fold(
        Router::new().route("/healthz", get(|| async { "ok\n" })),
        Router::merge,
    )
}

/// Serve `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Bind `addr`, with a message that says what to do when the port is taken.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!(
                "cannot listen on {addr}: {error} (is another firebreak running? pass --listen)"
            ),
        )
    })
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends a pod it stops).
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

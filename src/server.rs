//! The HTTP surface of `firebreak serve`: one axum router that each enabled adapter adds its
//! routes to, plus `/healthz` for the kubelet.
//!
//! Adapters own their paths (`/slack/...`, `/discord/...`) and verify their own requests; this
//! module composes them and serves until shutdown, with [`Limits`] on what one client may
//! hold: a slow or idle client cannot keep a connection (or a file descriptor) for long, and
//! past a cap new connections wait in the kernel's backlog instead of exhausting descriptors
//! that `/healthz` and the chat endpoints need.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower_http::timeout::TimeoutLayer;

/// The router: `/healthz` and every adapter's routes.
pub fn app(adapter_routes: Vec<Router>) -> Router {
    adapter_routes.into_iter().fold(
        Router::new().route("/healthz", get(|| async { "ok\n" })),
        Router::merge,
    )
}

/// What one client may hold. The defaults suit Slack and Discord, whose requests are small
/// and sent at once.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to send a request's headers, counted from the connection's start or the end of
    /// the previous response; hyper closes the connection after it. It is also the idle
    /// keep-alive timeout: a connection with no request under way is closed after it.
    pub header_read_timeout: Duration,
    /// Time for the whole request, body included (the handlers answer at once and run the
    /// work in the background); after it the client gets `408 Request Timeout`.
    pub request_timeout: Duration,
    /// Connections served at once; more wait, unaccepted, until one closes.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            // Well under the usual 1,024 descriptors, leaving room for the state file, the
            // Kubernetes client, Slack's and Discord's APIs and the gateway.
            max_connections: 512,
        }
    }
}

/// Serve `app` on `listener` until `shutdown` completes, with the default [`Limits`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, Limits::default()).await
}

/// Serve `app` on `listener` until `shutdown` completes; then stop accepting, let requests in
/// flight finish, and return once every connection is closed.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()> {
    let app = app.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let service = TowerToHyperService::new(app);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached: new connections wait in the listen backlog until one closes (slow or idle clients are cut off after {:?})",
                    limits.header_read_timeout,
                );
                tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of descriptors (EMFILE) and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection =
            graceful.watch(http.serve_connection(TokioIo::new(stream), service.clone()));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts and clients that hang up: theirs to fix, not an error of ours.
                tracing::debug!(%error, "connection closed");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
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

//! The HTTP server: `/healthz` and `/metrics` for now; the API arrives in a later issue.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Counters;

/// Serves until shutdown.
pub(super) async fn serve(l: TcpListener, counters: Counters, mut shutdown: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(counters);
    let stop = async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(l, app).with_graceful_shutdown(stop).await {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

async fn metrics(State(c): State<Counters>) -> String {
    c.render()
}

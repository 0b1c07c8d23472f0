//! The HTTP server: `/healthz`, `/metrics`, and the Scheduler API ([`crate::api`]).

use std::net::SocketAddr;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{ApiState, HttpMetrics};
use crate::callback::service::Service;
use crate::metrics::Counters;

#[derive(Clone)]
struct MetricsState {
    counters: Counters,
    http: HttpMetrics,
    callbacks: Service,
}

/// Serves until shutdown.
pub(super) async fn serve(
    l: TcpListener,
    counters: Counters,
    api: ApiState,
    shutdown: watch::Receiver<bool>,
) {
    let http = HttpMetrics::default();
    let state = MetricsState {
        counters,
        http: http.clone(),
        callbacks: api.service.clone(),
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(crate::api::router(api))
        .layer(axum::middleware::from_fn_with_state(
            http,
            crate::api::metrics::count,
        ))
        .into_make_service_with_connect_info::<SocketAddr>();
    let stop = super::stopped(shutdown);
    if let Err(e) = axum::serve(l, app).with_graceful_shutdown(stop).await {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

async fn metrics(State(s): State<MetricsState>) -> String {
    let mut out = s.counters.render();
    out.push_str(&s.callbacks.render_metrics());
    out.push_str(&s.http.render());
    out
}

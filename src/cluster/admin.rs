//! The admin listener (`[admin] listen`): not the public API, open only to `[admin] allow`.
//!
//! * `POST /admin/drain`: the node drains as on SIGTERM (readiness false, new INVITEs 503,
//!   the lead given up at once, no new launch, calls in progress finish up to
//!   `[calls] drain_secs`), then stops.
//! * `GET /admin/node`: this node's id, whether it leads, where requests go, whether it
//!   drains.
//! * `POST /internal/callbacks`: callback requests other nodes forward to the leader.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::watch;

use super::forward::{Request, PATH};
use crate::callback::service::{Route, Service};

/// What the admin handlers share.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// The callback service.
    pub service: Service,
    /// This node's id.
    pub node_id: Arc<str>,
    /// Who may use the listener.
    pub allow: Arc<[ipnet::IpNet]>,
    /// Set to start the drain (the runtime's stop signal).
    pub drain: watch::Sender<bool>,
}

impl AdminState {
    fn allowed(&self, peer: SocketAddr) -> bool {
        let ip = match peer.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|n| n.contains(&ip))
    }
}

fn forbidden(peer: SocketAddr) -> Response {
    tracing::warn!(%peer, "admin request from outside [admin] allow refused");
    (StatusCode::FORBIDDEN, "not allowed\n").into_response()
}

/// The admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/drain", post(drain))
        .route("/admin/node", get(node))
        .route(PATH, post(forwarded))
        .with_state(state)
}

async fn drain(
    State(s): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !s.allowed(peer) {
        return forbidden(peer);
    }
    tracing::info!(%peer, "drain asked for on the admin listener");
    s.service.drain();
    let _ = s.drain.send(true);
    (StatusCode::ACCEPTED, "draining\n").into_response()
}

async fn node(State(s): State<AdminState>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if !s.allowed(peer) {
        return forbidden(peer);
    }
    let route = s.service.route();
    Json(serde_json::json!({
        "node_id": &*s.node_id,
        "leads": route == Route::Local,
        "leader": match &route {
            Route::Local => serde_json::Value::Null,
            Route::Leader(addr) => addr.as_str().into(),
            Route::NoLeader => serde_json::Value::Null,
        },
        "draining": s.service.draining(),
    }))
    .into_response()
}

async fn forwarded(
    State(s): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(req): Json<Request>,
) -> Response {
    if !s.allowed(peer) {
        return forbidden(peer);
    }
    Json(s.service.serve_forwarded(req).await).into_response()
}

/// Serves the admin routes on `listener` until `stop` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "admin listener failed");
    }
}

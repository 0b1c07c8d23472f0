//! The HTTP Scheduler API (shaped like Mindful's): widget status, callback registration,
//! status and cancellation per organization, call records by hour
//! (`/v2/data/historical/{YYYYMMDD}/{HH}`), plus `/readyz` and `/openapi.json`. Handlers
//! authenticate, parse and render; every decision is the callback engine's, reached
//! through the [`Service`].

pub mod auth;
pub mod body;
pub mod error;
pub mod handlers;
pub mod historical;
pub mod metrics;
pub mod openapi;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Json, Router};

use crate::callback::service::Service;
use crate::config::Config;

pub use auth::Directory;
pub use error::ApiError;
pub use metrics::HttpMetrics;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The callback service.
    pub service: Service,
    /// Organizations, tokens, widgets.
    pub dir: Arc<Directory>,
}

impl ApiState {
    /// State for a validated configuration.
    pub fn new(service: Service, cfg: &Config) -> Self {
        ApiState {
            service,
            dir: Arc::new(Directory::new(cfg)),
        }
    }
}

/// The API routes, `/readyz` and `/openapi.json`; unknown paths answer a JSON 404.
pub fn router(state: ApiState) -> Router {
    let doc = Arc::new(openapi::document());
    Router::new()
        .route("/api/widget/{widget_id}", get(handlers::widget_status))
        .route(
            "/api/widget/{widget_id}/request_callback",
            post(handlers::request_callback),
        )
        .route(
            "/api/organization/{org_id}/widget_status",
            get(handlers::org_widget_status),
        )
        .route(
            "/api/organization/{org_id}/callback_status",
            post(handlers::callback_status),
        )
        .route(
            "/api/organization/{org_id}/cancel_callback",
            post(handlers::cancel_callback),
        )
        .route(
            "/api/organization/{org_id}/callback/{callback_id}",
            get(handlers::get_callback),
        )
        .route(
            "/v2/data/historical/{date}/{hour}",
            get(historical::historical),
        )
        .route("/readyz", get(handlers::readyz))
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json((*doc).clone()) }
            }),
        )
        .fallback(handlers::not_found)
        .with_state(state)
}

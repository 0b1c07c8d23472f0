//! HTTP requests by route (the matched path template, so widget ids do not explode the
//! label set) and status code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::callback::service::label;

/// Request counters; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HttpMetrics {
    counts: Arc<Mutex<BTreeMap<(String, u16), u64>>>,
}

impl HttpMetrics {
    /// Counts one request.
    pub fn count(&self, route: &str, status: u16) {
        let mut m = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *m.entry((route.to_owned(), status)).or_insert(0) += 1;
    }

    /// Prometheus text.
    pub fn render(&self) -> String {
        let m = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::from(
            "# HELP holdless_api_requests_total HTTP requests by route and status\n\
             # TYPE holdless_api_requests_total counter\n",
        );
        for ((route, status), n) in m.iter() {
            out.push_str(&format!(
                "holdless_api_requests_total{{route=\"{}\",status=\"{status}\"}} {n}\n",
                label(route)
            ));
        }
        out
    }
}

/// Middleware counting every request by route template and status.
pub async fn count(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    m.count(&route, res.status().as_u16());
    res
}

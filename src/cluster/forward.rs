//! Callback requests a node forwards to the leader, and the leader's answers: JSON over
//! HTTP/1.1 to the leader's admin listener (`POST /internal/callbacks`), one connection
//! per request (nodes sit on one network; a request is a few hundred bytes).

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};

use crate::callback::attempt::AttemptReport;
use crate::callback::engine::{
    CancelOutcome, EngineError, Launch, Refused, RegisterRequest, Registered, StatusView,
    TargetView,
};
use crate::callback::model::AttemptResult;
use crate::callback::record::RecordEntry;
use crate::callback::service::{Found, ServiceError, WidgetViews};

/// The path on the admin listener.
pub const PATH: &str = "/internal/callbacks";

/// Longest a forwarded request may take (connect, leader's commit, answer).
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Largest answer accepted (a status of many callbacks stays far below).
const MAX_ANSWER: usize = 4 << 20;

/// A callback-service request, as forwarded to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// [`crate::callback::service::Service::register`].
    Register(Box<RegisterRequest>),
    /// [`crate::callback::service::Service::cancel`].
    Cancel {
        /// Organization.
        org: String,
        /// Number as given.
        number: String,
        /// Call target, if named.
        call_target: Option<String>,
    },
    /// [`crate::callback::service::Service::status`].
    Status {
        /// Organization.
        org: String,
        /// Number as given.
        number: String,
    },
    /// [`crate::callback::service::Service::get`].
    Get {
        /// Organization.
        org: String,
        /// Callback id.
        id: String,
    },
    /// [`crate::callback::service::Service::views`].
    Views(Vec<String>),
    /// [`crate::callback::service::Service::widget_views`].
    WidgetViews(Vec<String>),
    /// [`crate::callback::service::Service::agent_connected`].
    AgentConnected(String),
    /// [`crate::callback::service::Service::attempt_report`] (or `attempt_ended`).
    AttemptEnded {
        /// Callback id.
        id: String,
        /// How it ended.
        result: AttemptResult,
        /// What the dialler saw.
        report: Option<Box<AttemptReport>>,
    },
    /// [`crate::callback::service::Service::record`].
    Record(Box<RecordEntry>),
    /// A launch the leader hands to this node's dialler (the node named in it).
    Dial(Box<Launch>),
}

/// The leader's answer to a [`Request`] of the same name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // each variant answers the request of its name
pub enum Answer {
    Register(Box<Result<Registered, Refused>>),
    Cancel(CancelOutcome),
    Status(Vec<StatusView>),
    Get(Option<Found>),
    Views((DateTime<Utc>, Vec<TargetView>)),
    WidgetViews(WidgetViews),
    Engine(Result<(), EngineError>),
    Record,
    Dial,
}

/// Sends `req` to the leader at `addr` (host:port of its admin listener) and returns its
/// answer. Any failure to reach it, or an answer that does not parse, is
/// [`ServiceError::Unavailable`] (logged): the caller answers as when the store is down.
pub async fn forward(addr: &str, req: &Request) -> Result<Answer, ServiceError> {
    match tokio::time::timeout(TIMEOUT, exchange(addr, req)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            tracing::warn!(node = %addr, error = %e, "a request to another node failed");
            Err(ServiceError::Unavailable)
        }
        Err(_) => {
            tracing::warn!(node = %addr, "another node did not answer in time");
            Err(ServiceError::Unavailable)
        }
    }
}

async fn exchange(addr: &str, req: &Request) -> Result<Result<Answer, ServiceError>, String> {
    let body = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = hyper::Request::post(PATH)
        .header(hyper::header::HOST, addr)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("answer: {e}"))
}

//! API errors: every one answers `{"data":[{"status": …, "message": …}]}` with the HTTP
//! status of its kind, so flows written for Mindful's Scheduler API read them the same way.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::callback::Refusal;

/// An API request that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No bearer token, or one no organization has (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token of another organization, or an address outside the organization's
    /// access policy (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such widget or callback (404).
    #[error("{0}")]
    NotFound(String),
    /// The body is larger than the API accepts (413).
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The body is not a JSON object (400 `InvalidRequest`).
    #[error("{0}")]
    InvalidRequest(String),
    /// A field has the wrong type or value (400 `InvalidParameters`).
    #[error("{0}")]
    InvalidParameters(String),
    /// `time_zone` is neither an IANA zone nor a UTC offset in minutes (400).
    #[error("{0}")]
    InvalidTimeZone(String),
    /// `contact_number` is missing or empty (400 `ContactRequired`).
    #[error("contact_number is required")]
    ContactRequired,
    /// The number fails the call target's rules (400 `InvalidContact`).
    #[error("{0}")]
    InvalidContact(String),
    /// A request for the same number is still being processed (400 `DuplicateRequest`,
    /// Mindful's meaning: within seconds of the first one). A number that simply has a
    /// callback already is refused as `RequestRefusedDueToOperationMode` with outcome
    /// `duplicateCallback`.
    #[error("{0}")]
    DuplicateRequest(String),
    /// `appointment_time` has passed (400 `AppointmentTimeInThePast`).
    #[error("{0}")]
    AppointmentTimeInThePast(String),
    /// The widget does not accept this request now (400
    /// `RequestRefusedDueToOperationMode`).
    #[error("{0}")]
    OperationMode(String),
    /// The store is unreachable or the service stopped (503).
    #[error("the callback platform is unavailable")]
    Unavailable,
    /// Too many requests queued (503 with Retry-After).
    #[error("holdless is overloaded; retry shortly")]
    Overloaded,
}

impl ApiError {
    /// The `status` string of the body.
    pub fn status_name(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound(_) => "NotFound",
            ApiError::TooLarge(_) => "PayloadTooLarge",
            ApiError::InvalidRequest(_) => "InvalidRequest",
            ApiError::InvalidParameters(_) => "InvalidParameters",
            ApiError::InvalidTimeZone(_) => "InvalidTimeZone",
            ApiError::ContactRequired => "ContactRequired",
            ApiError::InvalidContact(_) => "InvalidContact",
            ApiError::DuplicateRequest(_) => "DuplicateRequest",
            ApiError::AppointmentTimeInThePast(_) => "AppointmentTimeInThePast",
            ApiError::OperationMode(_) => "RequestRefusedDueToOperationMode",
            ApiError::Unavailable => "PlatformUnavailable",
            ApiError::Overloaded => "Overloaded",
        }
    }

    /// The HTTP status.
    pub fn http_status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable | ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The API error for a refused registration.
    pub fn from_refusal(r: Refusal, detail: String) -> ApiError {
        match r {
            Refusal::InvalidNumber | Refusal::MaxTollRateExceeded => {
                ApiError::InvalidContact(detail)
            }
            Refusal::DuplicateRequest => ApiError::DuplicateRequest(detail),
            Refusal::AppointmentInThePast => ApiError::AppointmentTimeInThePast(detail),
            Refusal::InvalidAppointment => ApiError::InvalidParameters(detail),
            _ => ApiError::OperationMode(detail),
        }
    }
}

impl From<crate::callback::service::ServiceError> for ApiError {
    fn from(e: crate::callback::service::ServiceError) -> Self {
        match e {
            crate::callback::service::ServiceError::Overloaded => ApiError::Overloaded,
            _ => ApiError::Unavailable,
        }
    }
}

/// The error body, with the engine's outcome name when a rule refused the request.
pub fn body(e: &ApiError, outcome: Option<Refusal>) -> serde_json::Value {
    let mut item = json!({ "status": e.status_name(), "message": e.to_string() });
    if let Some(o) = outcome {
        item["outcome"] = json!(o.as_str());
    }
    json!({ "data": [item] })
}

/// An error response with the engine's outcome attached.
#[derive(Debug)]
pub struct RefusalResponse(pub ApiError, pub Refusal);

impl IntoResponse for RefusalResponse {
    fn into_response(self) -> Response {
        respond(&self.0, Some(self.1))
    }
}

fn respond(e: &ApiError, outcome: Option<Refusal>) -> Response {
    let mut r = (e.http_status(), axum::Json(body(e, outcome))).into_response();
    match e {
        ApiError::Unauthorized(_) => {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"holdless\""),
            );
        }
        ApiError::Overloaded => {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        respond(&self, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mindful's DuplicateRequest is a repeat of a request still being processed; a number
    /// that already has a callback is a rule refusal like the others.
    #[test]
    fn duplicate_request_and_duplicate_callback_stay_distinct() {
        let e = ApiError::from_refusal(Refusal::DuplicateRequest, String::new());
        assert_eq!(e.status_name(), "DuplicateRequest");
        let e = ApiError::from_refusal(Refusal::DuplicateCallback, String::new());
        assert_eq!(e.status_name(), "RequestRefusedDueToOperationMode");
        assert_eq!(
            body(&e, Some(Refusal::DuplicateCallback))["data"][0]["outcome"],
            "duplicateCallback"
        );
        let e = ApiError::from_refusal(Refusal::AppointmentInThePast, String::new());
        assert_eq!(
            (e.status_name(), e.http_status()),
            ("AppointmentTimeInThePast", StatusCode::BAD_REQUEST)
        );
    }
}

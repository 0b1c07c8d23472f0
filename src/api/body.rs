//! Request bodies: read with a size limit, parsed as a JSON object, fields checked one by
//! one so every mistake gets the Scheduler API status that names it. Unknown fields are
//! ignored (flows written for Mindful send `widget_id` in the body too).

use axum::body::Body;
use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::error::ApiError;

/// Largest request body accepted: a registration is a few hundred bytes; 16 KiB leaves
/// room for generous `user_data` and keeps a flood of large bodies cheap.
pub const MAX_BODY: usize = 16 * 1024;

/// Most `user_data` keys kept with a callback.
pub const MAX_USER_DATA_KEYS: usize = 50;

/// Largest `user_data` once serialized, bytes.
pub const MAX_USER_DATA_BYTES: usize = 8 * 1024;

/// Latest `appointment_time` accepted (9999-12-31T23:59:59Z); anything later is no slot.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// Longest `channel`.
pub const MAX_CHANNEL: usize = 64;

/// Reads a body of at most [`MAX_BODY`] bytes and parses it as a JSON object.
pub async fn read_object(headers: &HeaderMap, body: Body) -> Result<Map<String, Value>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ApiError::TooLarge(MAX_BODY));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::TooLarge(MAX_BODY))?;
    parse_object(&bytes)
}

/// Parses bytes as a JSON object; the error says where and what was wrong.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidRequest(
            "empty body: expected a JSON object".into(),
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ApiError::InvalidRequest(format!(
            "expected a JSON object, got {}",
            kind(&other)
        ))),
        Err(e) => Err(ApiError::InvalidRequest(format!("malformed JSON: {e}"))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `contact_number`: a non-empty string (a JSON integer is taken as its digits).
pub fn contact_number(m: &Map<String, Value>) -> Result<String, ApiError> {
    match m.get("contact_number") {
        None | Some(Value::Null) => Err(ApiError::ContactRequired),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ApiError::ContactRequired),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
        Some(v) => Err(ApiError::InvalidParameters(format!(
            "contact_number must be a string, got {}",
            kind(v)
        ))),
    }
}

/// `appointment_time`: Unix seconds, as a string of digits or an integer; absent = ASAP.
pub fn appointment_time(m: &Map<String, Value>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let secs = match m.get("appointment_time") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        Some(_) => None,
    };
    secs.filter(|s| (0..=MAX_TIMESTAMP).contains(s))
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .map(Some)
        .ok_or_else(|| {
            ApiError::InvalidParameters(
                "appointment_time must be a Unix timestamp (seconds) from scheduled_timeslots"
                    .into(),
            )
        })
}

/// `user_data`: an object of bounded size (absent = empty).
pub fn user_data(m: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    match m.get("user_data") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => {
            if o.len() > MAX_USER_DATA_KEYS {
                return Err(ApiError::InvalidParameters(format!(
                    "user_data has {} keys; at most {MAX_USER_DATA_KEYS}",
                    o.len()
                )));
            }
            let size = serde_json::to_vec(o).map(|v| v.len()).unwrap_or(usize::MAX);
            if size > MAX_USER_DATA_BYTES {
                return Err(ApiError::InvalidParameters(format!(
                    "user_data is {size} bytes; at most {MAX_USER_DATA_BYTES}"
                )));
            }
            Ok(o.clone())
        }
        Some(v) => Err(ApiError::InvalidParameters(format!(
            "user_data must be an object, got {}",
            kind(v)
        ))),
    }
}

/// An optional short string field.
pub fn short_string(
    m: &Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max && !s.chars().any(char::is_control) => {
            Ok((!s.is_empty()).then(|| s.clone()))
        }
        Some(Value::String(_)) => Err(ApiError::InvalidParameters(format!(
            "{field} must be at most {max} characters, without control characters"
        ))),
        Some(v) => Err(ApiError::InvalidParameters(format!(
            "{field} must be a string, got {}",
            kind(v)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        let e = parse_object(b"{\"contact_number\": ").unwrap_err();
        assert!(
            matches!(&e, ApiError::InvalidRequest(m) if m.contains("line 1 column")),
            "{e}"
        );
        assert!(
            matches!(parse_object(b"[1]"), Err(ApiError::InvalidRequest(m)) if m.contains("an array"))
        );
        assert!(matches!(
            parse_object(b"  "),
            Err(ApiError::InvalidRequest(_))
        ));
        assert!(parse_object(b"{}").unwrap().is_empty());
    }

    #[test]
    fn fields() {
        let m = obj(
            json!({"contact_number": "+1 555", "appointment_time": "1768384800",
                           "user_data": {"a": 1}, "channel": "mobile"}),
        );
        assert_eq!(contact_number(&m).unwrap(), "+1 555");
        assert_eq!(
            appointment_time(&m).unwrap().unwrap().timestamp(),
            1768384800
        );
        assert_eq!(user_data(&m).unwrap()["a"], 1);
        assert_eq!(
            short_string(&m, "channel", 64).unwrap().as_deref(),
            Some("mobile")
        );
        assert_eq!(
            contact_number(&obj(json!({}))),
            Err(ApiError::ContactRequired)
        );
        assert_eq!(
            contact_number(&obj(json!({"contact_number": " "}))),
            Err(ApiError::ContactRequired)
        );
        assert_eq!(
            contact_number(&obj(json!({"contact_number": 15551234567u64}))).unwrap(),
            "15551234567"
        );
        assert!(matches!(
            contact_number(&obj(json!({"contact_number": [1]}))),
            Err(ApiError::InvalidParameters(_))
        ));
        assert_eq!(
            appointment_time(&obj(json!({"appointment_time": 1768384800})))
                .unwrap()
                .unwrap()
                .timestamp(),
            1768384800
        );
        assert!(appointment_time(&obj(json!({}))).unwrap().is_none());
        for bad in [
            json!("soon"),
            json!(1.5),
            json!(true),
            json!(i64::MAX),
            json!(-1),
            json!(i64::MIN),
        ] {
            assert!(appointment_time(&obj(json!({"appointment_time": bad}))).is_err());
        }
        assert!(user_data(&obj(json!({"user_data": "x"}))).is_err());
        let big: Map<String, Value> = (0..51).map(|i| (i.to_string(), json!(i))).collect();
        assert!(user_data(&obj(json!({"user_data": big}))).is_err());
        assert!(short_string(&obj(json!({"channel": "x".repeat(65)})), "channel", 64).is_err());
        assert!(short_string(&obj(json!({"channel": 3})), "channel", 64).is_err());
    }
}

//! The Scheduler API routes, shaped like Mindful's so flows written for it work unchanged.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body;
use super::error::{ApiError, RefusalResponse};
use super::ApiState;
use crate::callback::config::{render_template, QuoteText, Widget};
use crate::callback::engine::{CancelOutcome, RegisterRequest, StatusView, TargetView};
use crate::callback::model::{Callback, Kind, Source, Status};
use crate::callback::number::NumberRules;
use crate::callback::quote::{self, Quote};
use crate::callback::record::RecordType;
use crate::callback::service::Found;
use crate::callback::WidgetState;

/// Longest path parameter looked up (ids are at most 64 characters; callback ids 32).
const MAX_ID: usize = 128;

fn param(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(v) = p.map_err(|e| ApiError::InvalidParameters(e.body_text()))?;
    if v.len() > MAX_ID {
        return Err(ApiError::NotFound(format!(
            "no such resource (id longer than {MAX_ID})"
        )));
    }
    Ok(v)
}

/// The widget, after checking the caller may use it.
fn widget(
    s: &ApiState,
    headers: &HeaderMap,
    peer: SocketAddr,
    id: &str,
) -> Result<Widget, ApiError> {
    let token_org = s.dir.authenticate(headers)?;
    let w = s
        .dir
        .widgets
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("no widget {id:?}")))?;
    s.dir.authorize(token_org, &w.organization, peer.ip())?;
    Ok(w.clone())
}

fn organization(
    s: &ApiState,
    headers: &HeaderMap,
    peer: SocketAddr,
    org: &str,
) -> Result<(), ApiError> {
    let token_org = s.dir.authenticate(headers)?;
    s.dir.authorize(token_org, org, peer.ip())
}

/// A display zone for message times: an IANA zone or a fixed UTC offset.
#[derive(Debug, Clone, Copy)]
enum Zone {
    Iana(chrono_tz::Tz),
    Fixed(FixedOffset),
}

impl Zone {
    fn parse(v: &str) -> Result<Zone, ApiError> {
        let v = v.trim();
        if let Ok(minutes) = v.parse::<i32>() {
            return (minutes.abs() <= 18 * 60)
                .then(|| FixedOffset::east_opt(minutes * 60))
                .flatten()
                .map(Zone::Fixed)
                .ok_or_else(|| {
                    ApiError::InvalidTimeZone(format!(
                        "UTC offset {minutes} minutes is out of range"
                    ))
                });
        }
        v.parse::<chrono_tz::Tz>().map(Zone::Iana).map_err(|_| {
            ApiError::InvalidTimeZone(format!(
                "time_zone must be an IANA name (America/New_York) or a UTC offset in minutes: {v:?}"
            ))
        })
    }

    /// The local wall-clock time of an instant.
    fn local(self, t: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Iana(tz) => t.with_timezone(&tz).naive_local(),
            Zone::Fixed(o) => t.with_timezone(&o).naive_local(),
        }
    }

    /// A zone given as `time_zone` (query or body); omitted or empty means UTC, as in
    /// Mindful's API ("If left blank, the response message will return times in the UTC
    /// time zone").
    fn given(v: Option<&str>) -> Result<Zone, ApiError> {
        match v {
            Some(v) if !v.trim().is_empty() => Zone::parse(v),
            _ => Ok(Zone::Iana(chrono_tz::Tz::UTC)),
        }
    }
}

/// What a message quotes: the wait of an ASAP callback today (`secs` from `now`), or the
/// day and time of a next-business-day callback or an appointment (`at`).
fn quote_text(now: DateTime<Utc>, secs: u64, at: Option<DateTime<Utc>>, zone: Zone) -> QuoteText {
    let expected = at.unwrap_or_else(|| now + chrono::Duration::seconds(secs as i64));
    let local = zone.local(expected);
    let q = match at {
        Some(_) => Quote::At(local),
        None => Quote::Wait(secs),
    };
    QuoteText {
        secs,
        date: local.format("%Y-%m-%d").to_string(),
        time: local.format("%H:%M").to_string(),
        when: quote::when(q, zone.local(now)),
        wait: quote::wait(q, zone.local(now)),
    }
}

/// A call target's widget view and, for a next-business-day offer, when that callback
/// would be expected to launch.
type WidgetView = (TargetView, Option<DateTime<Utc>>);

/// Query of the widget status routes.
#[derive(Debug, Deserialize)]
pub struct ZoneQuery {
    time_zone: Option<String>,
}

fn zone_of(q: Result<Query<ZoneQuery>, QueryRejection>) -> Result<Zone, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::InvalidParameters(e.body_text()))?;
    Zone::given(q.time_zone.as_deref())
}

fn status_item(w: &Widget, v: &WidgetView, now: DateTime<Utc>, zone: Zone) -> Value {
    let (v, next_day_at) = (&v.0, v.1);
    let state = if w.enabled {
        v.state
    } else {
        WidgetState::PlatformUnavailable
    };
    let template = w
        .messages
        .by_state
        .get(state.as_str())
        .unwrap_or(&w.messages.default);
    let quote = v.ewt.map(|e| quote_text(now, e, next_day_at, zone));
    let on = w.enabled;
    json!({
        "widget_state": state.as_str(),
        "message": render_template(template, quote.as_ref()),
        "offer_asap": on && v.offer_asap,
        "offer_scheduled": on && v.offer_scheduled,
        "ewt": if on { v.ewt } else { None },
        "scheduled_timeslots": if on {
            v.timeslots.iter().map(|t| t.timestamp()).collect::<Vec<_>>()
        } else {
            vec![]
        },
    })
}

/// What a widget says when the service cannot be asked (degrades, never 5xx: the flow
/// routes the caller to an agent queue).
fn unavailable_view() -> WidgetView {
    let v = TargetView {
        state: WidgetState::PlatformUnavailable,
        offer_asap: false,
        offer_scheduled: false,
        ewt: None,
        timeslots: vec![],
    };
    (v, None)
}

/// `GET /api/widget/{widget_id}`
pub async fn widget_status(
    State(s): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ZoneQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let w = widget(&s, &headers, peer, &param(id)?)?;
    let zone = zone_of(q)?;
    let (now, view) = match s.service.widget_views(vec![w.call_target.clone()]).await {
        Ok((now, mut v)) => (now, v.pop().unwrap_or_else(unavailable_view)),
        Err(_) => (Utc::now(), unavailable_view()),
    };
    Ok(Json(json!({ "data": [status_item(&w, &view, now, zone)] })))
}

/// `GET /api/organization/{org_id}/widget_status`
pub async fn org_widget_status(
    State(s): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    org: Result<Path<String>, PathRejection>,
    q: Result<Query<ZoneQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let org = param(org)?;
    organization(&s, &headers, peer, &org)?;
    let zone = zone_of(q)?;
    let widgets: Vec<Widget> = s
        .dir
        .org_widgets
        .get(&org)
        .into_iter()
        .flatten()
        .filter_map(|id| s.dir.widgets.get(id).cloned())
        .collect();
    let targets = widgets.iter().map(|w| w.call_target.clone()).collect();
    let (now, views) = match s.service.widget_views(targets).await {
        Ok(r) => r,
        Err(_) => (Utc::now(), vec![]),
    };
    let data: Vec<Value> = widgets
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let v = views.get(i).cloned().unwrap_or_else(unavailable_view);
            let mut item = status_item(w, &v, now, zone);
            item["widget_id"] = json!(w.id);
            item["call_target_id"] = json!(w.call_target);
            item
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// `POST /api/widget/{widget_id}/request_callback`
pub async fn request_callback(
    State(s): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let w = widget(&s, &headers, peer, &param(id)?)?;
    let m = body::read_object(&headers, body).await?;
    let number = body::contact_number(&m)?;
    let appointment = body::appointment_time(&m)?;
    let user_data = body::user_data(&m)?;
    let channel = body::short_string(&m, "channel", body::MAX_CHANNEL)?;
    let zone = Zone::given(body::short_string(&m, "time_zone", body::MAX_CHANNEL)?.as_deref())?;
    if !w.enabled {
        return Err(ApiError::OperationMode("this widget is not active".into()));
    }
    let req = RegisterRequest {
        call_target: w.call_target.clone(),
        number,
        appointment,
        widget: Some(w.id.clone()),
        source: Some(Source::Api),
        channel,
        user_data,
        sip_headers: vec![],
        inbound: None,
    };
    let reg = match s.service.register(req).await? {
        Ok(r) => r,
        Err(refused) => {
            let e = ApiError::from_refusal(refused.outcome, refused.detail);
            return Ok(RefusalResponse(e, refused.outcome).into_response());
        }
    };
    let cb = &reg.callback;
    let (template, at) = match cb.kind {
        Kind::Scheduled => (&w.messages.scheduled, cb.appointment),
        Kind::NextDay => (&w.messages.requested, Some(cb.estimated_for)),
        Kind::Asap => (&w.messages.requested, None),
    };
    let quote = quote_text(cb.requested_at, cb.ecbt_secs, at, zone);
    let message = render_template(template, Some(&quote));
    let item = json!({
        "status": "Requested",
        "message": message,
        "callback_request_id": cb.id,
        "requested_at": cb.requested_at.timestamp(),
        "ewt": cb.ecbt_secs,
    });
    Ok((StatusCode::OK, Json(json!({ "data": [item] }))).into_response())
}

/// `type`: `asap` or `scheduled` (a next-business-day callback is an ASAP one), as in
/// Mindful's call records.
fn type_name(k: Kind) -> &'static str {
    match RecordType::of(k) {
        RecordType::Scheduled => "scheduled",
        RecordType::Asap | RecordType::Unknown => "asap",
    }
}

/// An RFC 3339 UTC timestamp, whole seconds (`2026-01-14T10:00:00Z`).
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Pending => "Pending",
        Status::Waitlisted => "Waitlisted",
        Status::InProgress => "InProgress",
        Status::Completed => "Completed",
        Status::Failed => "Failed",
        Status::Canceled => "Canceled",
    }
}

fn status_entry(v: &StatusView) -> Value {
    let cb = &v.callback;
    json!({
        "contact_uri": format!("tel:{}", cb.number),
        "callback_number": cb.number,
        "call_request_id": cb.id,
        "type": type_name(cb.kind),
        "created_at": cb.requested_at.timestamp().to_string(),
        "estimated_for": cb.estimated_for.timestamp().to_string(),
        "forecast_waitlist_position": v.position.to_string(),
        "estimated_wait_time": v.estimated_wait_secs.to_string(),
        "source": cb.source_label(),
        "call_target_id": cb.call_target,
        "status": status_name(cb.status),
    })
}

/// A contact number well-formed enough to look up (each call target normalizes it with
/// its own rules).
fn lookup_number(m: &serde_json::Map<String, Value>) -> Result<String, ApiError> {
    let n = body::contact_number(m)?;
    NumberRules::default()
        .normalize(&n)
        .map_err(|e| ApiError::InvalidContact(e.to_string()))?;
    Ok(n)
}

/// `POST /api/organization/{org_id}/callback_status`
pub async fn callback_status(
    State(s): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    org: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let org = param(org)?;
    organization(&s, &headers, peer, &org)?;
    let m = body::read_object(&headers, body).await?;
    let number = lookup_number(&m)?;
    let views = s.service.status(&org, &number).await?;
    Ok(Json(
        json!({ "data": views.iter().map(status_entry).collect::<Vec<_>>() }),
    ))
}

/// `POST /api/organization/{org_id}/cancel_callback`
pub async fn cancel_callback(
    State(s): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    org: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let org = param(org)?;
    organization(&s, &headers, peer, &org)?;
    let m = body::read_object(&headers, body).await?;
    let number = lookup_number(&m)?;
    let target = body::short_string(&m, "call_target_id", 64)?;
    let item = match s.service.cancel(&org, &number, target.as_deref()).await? {
        CancelOutcome::Canceled(id) => {
            json!({"status": "Canceled", "cancel_callback_request_id": id})
        }
        CancelOutcome::NotFound => json!({"status": "InteractionNotFound"}),
        CancelOutcome::TooMany => json!({"status": "TooManyInteractions"}),
        CancelOutcome::Failed(id) => json!({"status": "FAILED", "cancel_callback_request_id": id}),
    };
    Ok(Json(json!({ "data": [item] })))
}

fn ts(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(rfc3339(t)))
}

/// The full record of a callback (holdless extension): metadata, ECBT and punctuality.
/// Fields named like the historical API's mean what they mean there: timestamps are RFC 3339
/// UTC strings, `actualCallbackTime` the wait in seconds (processedAt − createdAt),
/// `estimatePercentAccuracy` a fraction, `source` `CBWidget:<id>` or `Phone:<number>`.
pub fn record(cb: &Callback, position: u64, wait: u64) -> Value {
    let p = cb.punctuality.as_ref();
    json!({
        "callback_request_id": cb.id,
        "organization_id": cb.organization,
        "call_target_id": cb.call_target,
        "widget_id": cb.widget,
        "callback_number": cb.number,
        "type": type_name(cb.kind),
        "next_business_day": cb.kind == Kind::NextDay,
        "status": status_name(cb.status),
        "source": cb.source_label(),
        "channel": cb.channel,
        "user_data": cb.user_data,
        "sip_headers": cb.sip_headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        "sip_metadata": cb.inbound.as_ref().map(|i| &i.metadata),
        "createdAt": rfc3339(cb.created_at()),
        "requested_at": rfc3339(cb.requested_at),
        "ecbt": cb.ecbt_secs,
        "estimatedFor": rfc3339(cb.estimated_for),
        "appointment_time": ts(cb.appointment),
        "due_at": rfc3339(cb.due_at),
        "position": position,
        "estimated_wait_time": wait,
        "attempts": cb.attempts,
        "last_result": cb.last_result.map(|r| r.as_str()),
        "processedAt": ts(p.map(|p| p.processed_at)),
        "actualCallbackTime": cb.actual_callback_secs(),
        "punctuality": p.map(|p| p.punctuality_secs),
        "wasPunctual": p.map(|p| p.was_punctual),
        "estimatePercentAccuracy": p.map(|p| p.estimate_percent_accuracy),
        "finished_at": ts(cb.finished_at),
    })
}

/// `GET /api/organization/{org_id}/callback/{callback_id}` (holdless extension)
pub async fn get_callback(
    State(s): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((org, id)) = p.map_err(|e| ApiError::InvalidParameters(e.body_text()))?;
    organization(&s, &headers, peer, &org)?;
    if id.len() > MAX_ID {
        return Err(ApiError::NotFound("no such callback".into()));
    }
    let item = match s.service.get(&org, &id).await? {
        Some(Found::Active(v)) => record(&v.callback, v.position, v.estimated_wait_secs),
        Some(Found::Finished(cb)) => record(&cb, 0, 0),
        None => {
            return Err(ApiError::NotFound(format!(
                "no callback {id:?} in this organization"
            )))
        }
    };
    Ok(Json(json!({ "data": [item] })))
}

/// `GET /readyz`: 200 only when the store answers and the node is not draining.
pub async fn readyz(State(s): State<ApiState>) -> Response {
    if s.service.draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), s.service.ping()).await;
    match ping {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    }
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::config::WidgetMessages;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn widget(message: &str) -> Widget {
        Widget {
            id: "w".into(),
            call_target: "billing".into(),
            organization: "acme".into(),
            enabled: true,
            messages: WidgetMessages {
                default: message.into(),
                by_state: Default::default(),
                requested: String::new(),
                scheduled: String::new(),
            },
        }
    }

    fn view(ewt: Option<u64>) -> TargetView {
        TargetView {
            state: WidgetState::OfferAsapCallback,
            offer_asap: true,
            offer_scheduled: false,
            ewt,
            timeslots: vec![],
        }
    }

    #[test]
    fn an_omitted_time_zone_is_utc() {
        let zone = Zone::given(None).unwrap();
        let now = utc("2026-01-14T22:30:00Z");
        let w = widget("at {date} {time}");
        let item = status_item(&w, &(view(Some(600)), None), now, zone);
        assert_eq!(item["message"], "at 2026-01-14 22:40");
        let ny = Zone::given(Some("America/New_York")).unwrap();
        let item = status_item(&w, &(view(Some(600)), None), now, ny);
        assert_eq!(item["message"], "at 2026-01-14 17:40");
        assert!(matches!(
            Zone::given(Some("")),
            Ok(Zone::Iana(chrono_tz::Tz::UTC))
        ));
    }

    #[test]
    fn quotes_read_naturally_and_next_day_offers_name_a_day_and_a_time() {
        let now = utc("2026-01-14T21:50:00Z"); // Wednesday, after closing
        let utc_zone = Zone::given(None).unwrap();
        let w = widget("We can call you back {when}.");
        let msg = |ewt: u64, at: Option<DateTime<Utc>>, zone: Zone| {
            status_item(&w, &(view(Some(ewt)), at), now, zone)["message"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            msg(0, None, utc_zone),
            "We can call you back in less than a minute."
        );
        assert_eq!(
            msg(60, None, utc_zone),
            "We can call you back in about 1 minute."
        );
        assert_eq!(
            msg(1500, None, utc_zone),
            "We can call you back in about 25 minutes."
        );
        // A next-business-day offer 11 h 25 min away: a day and a time, not 685 minutes.
        let next = utc("2026-01-15T09:15:00Z");
        let secs = (next - now).num_seconds() as u64;
        assert_eq!(
            msg(secs, Some(next), utc_zone),
            "We can call you back tomorrow at 09:15."
        );
        let ny = Zone::given(Some("America/New_York")).unwrap();
        assert_eq!(
            msg(secs, Some(next), ny),
            "We can call you back tomorrow at 04:15."
        );
        // The API's ewt stays Mindful's: seconds.
        let item = status_item(&w, &(view(Some(secs)), Some(next)), now, utc_zone);
        assert_eq!(item["ewt"], secs);
    }

    #[test]
    fn callback_types_are_mindfuls() {
        assert_eq!(type_name(Kind::Asap), "asap");
        assert_eq!(type_name(Kind::NextDay), "asap");
        assert_eq!(type_name(Kind::Scheduled), "scheduled");
        assert_eq!(
            rfc3339(utc("2026-01-14T10:00:00.250Z")),
            "2026-01-14T10:00:00Z"
        );
    }
}

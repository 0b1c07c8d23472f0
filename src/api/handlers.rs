//! The Scheduler API routes, shaped like Mindful's so flows written for it work unchanged.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body;
use super::error::{ApiError, RefusalResponse};
use super::ApiState;
use crate::callback::config::{render_template, Widget};
use crate::callback::engine::{CancelOutcome, RegisterRequest, StatusView, TargetView};
use crate::callback::model::{Callback, Kind, Source, Status};
use crate::callback::number::NumberRules;
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

    fn format(self, t: DateTime<Utc>) -> (String, String) {
        let f = |d: String, h: String| (d, h);
        match self {
            Zone::Iana(tz) => {
                let l = t.with_timezone(&tz);
                f(
                    l.format("%Y-%m-%d").to_string(),
                    l.format("%H:%M").to_string(),
                )
            }
            Zone::Fixed(o) => {
                let l = t.with_timezone(&o);
                f(
                    l.format("%Y-%m-%d").to_string(),
                    l.format("%H:%M").to_string(),
                )
            }
        }
    }
}

/// Query of the widget status routes.
#[derive(Debug, Deserialize)]
pub struct ZoneQuery {
    time_zone: Option<String>,
}

fn zone_of(
    s: &ApiState,
    q: Result<Query<ZoneQuery>, QueryRejection>,
    call_target: &str,
) -> Result<Zone, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::InvalidParameters(e.body_text()))?;
    match q.time_zone.as_deref() {
        Some(v) if !v.is_empty() => Zone::parse(v),
        _ => Ok(Zone::Iana(
            s.dir
                .target_tz
                .get(call_target)
                .copied()
                .unwrap_or(chrono_tz::Tz::UTC),
        )),
    }
}

fn status_item(w: &Widget, v: &TargetView, now: DateTime<Utc>, zone: Zone) -> Value {
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
    let at = v
        .ewt
        .map(|e| zone.format(now + chrono::Duration::seconds(e as i64)));
    let on = w.enabled;
    json!({
        "widget_state": state.as_str(),
        "message": render_template(template, v.ewt, at),
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
fn unavailable_view() -> TargetView {
    TargetView {
        state: WidgetState::PlatformUnavailable,
        offer_asap: false,
        offer_scheduled: false,
        ewt: None,
        timeslots: vec![],
    }
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
    let zone = zone_of(&s, q, &w.call_target)?;
    let (now, view) = match s.service.views(vec![w.call_target.clone()]).await {
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
    let Query(q) = q.map_err(|e| ApiError::InvalidParameters(e.body_text()))?;
    let fixed = match q.time_zone.as_deref() {
        Some(v) if !v.is_empty() => Some(Zone::parse(v)?),
        _ => None,
    };
    let widgets: Vec<Widget> = s
        .dir
        .org_widgets
        .get(&org)
        .into_iter()
        .flatten()
        .filter_map(|id| s.dir.widgets.get(id).cloned())
        .collect();
    let targets = widgets.iter().map(|w| w.call_target.clone()).collect();
    let (now, views) = match s.service.views(targets).await {
        Ok(r) => r,
        Err(_) => (Utc::now(), vec![]),
    };
    let data: Vec<Value> = widgets
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let v = views.get(i).cloned().unwrap_or_else(unavailable_view);
            let zone = fixed.unwrap_or_else(|| {
                Zone::Iana(
                    s.dir
                        .target_tz
                        .get(&w.call_target)
                        .copied()
                        .unwrap_or(chrono_tz::Tz::UTC),
                )
            });
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
    let zone = Zone::Iana(
        s.dir
            .target_tz
            .get(&cb.call_target)
            .copied()
            .unwrap_or(chrono_tz::Tz::UTC),
    );
    let message = match cb.kind {
        Kind::Scheduled => render_template(
            &w.messages.scheduled,
            Some(cb.ecbt_secs),
            cb.appointment.map(|t| zone.format(t)),
        ),
        _ => render_template(
            &w.messages.requested,
            Some(cb.ecbt_secs),
            Some(zone.format(cb.estimated_for)),
        ),
    };
    let item = json!({
        "status": "Requested",
        "message": message,
        "callback_request_id": cb.id,
        "requested_at": cb.requested_at.timestamp(),
        "ewt": cb.ecbt_secs,
    });
    Ok((StatusCode::OK, Json(json!({ "data": [item] }))).into_response())
}

fn type_name(k: Kind) -> &'static str {
    match k {
        Kind::Asap => "ASAP",
        Kind::Scheduled => "Scheduled",
        Kind::NextDay => "NextBusinessDay",
    }
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
        "source": cb.channel.clone().unwrap_or_else(|| cb.source.as_str().to_owned()),
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
    t.map_or(Value::Null, |t| json!(t.timestamp()))
}

/// The full record of a callback (holdless extension): metadata, ECBT and punctuality.
pub fn record(cb: &Callback, position: u64, wait: u64) -> Value {
    let p = cb.punctuality.as_ref();
    json!({
        "callback_request_id": cb.id,
        "organization_id": cb.organization,
        "call_target_id": cb.call_target,
        "widget_id": cb.widget,
        "callback_number": cb.number,
        "type": type_name(cb.kind),
        "status": status_name(cb.status),
        "source": cb.source.as_str(),
        "channel": cb.channel,
        "user_data": cb.user_data,
        "sip_headers": cb.sip_headers.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        "sip_metadata": cb.inbound.as_ref().map(|i| &i.metadata),
        "requested_at": cb.requested_at.timestamp(),
        "ecbt": cb.ecbt_secs,
        "estimatedFor": cb.estimated_for.timestamp(),
        "appointment_time": ts(cb.appointment),
        "due_at": cb.due_at.timestamp(),
        "position": position,
        "estimated_wait_time": wait,
        "attempts": cb.attempts,
        "last_result": cb.last_result.map(|r| r.as_str()),
        "actualCallbackTime": ts(p.map(|p| p.actual_callback_time)),
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

/// `GET /readyz`: 200 only when the store answers.
pub async fn readyz(State(s): State<ApiState>) -> Response {
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

//! The OpenAPI 3 document served at `GET /openapi.json`: every route, every status it can
//! answer, and the exact shape of each body (schemathesis checks the server against it).

use serde_json::{json, Value};

fn error_response(description: &str, statuses: &[&str]) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["data"],
            "properties": {"data": {
                "type": "array", "minItems": 1, "maxItems": 1,
                "items": {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": {
                        "status": {"type": "string", "enum": statuses},
                        "message": {"type": "string"},
                        "outcome": {"type": "string", "description": "The engine rule that refused the registration (e.g. maxEcbtExceeded)."}
                    }
                }
            }}
        }}}
    })
}

fn unauthorized() -> Value {
    let mut r = error_response("No bearer token, or not a valid one.", &["Unauthorized"]);
    r["headers"] = json!({"WWW-Authenticate": {"schema": {"type": "string"}}});
    r
}

fn forbidden() -> Value {
    error_response(
        "The token belongs to another organization, or the client address is outside the organization's access policy.",
        &["Forbidden"],
    )
}

fn not_found() -> Value {
    error_response("No such widget, callback or route.", &["NotFound"])
}

fn too_large() -> Value {
    error_response("The body is larger than 16 KiB.", &["PayloadTooLarge"])
}

fn unavailable() -> Value {
    let mut r = error_response(
        "The callback store is unreachable, or holdless is overloaded (Retry-After).",
        &["PlatformUnavailable", "Overloaded"],
    );
    r["headers"] = json!({"Retry-After": {"schema": {"type": "string"}}});
    r
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
           "schema": {"type": "string", "minLength": 1}})
}

fn time_zone_param() -> Value {
    json!({"name": "time_zone", "in": "query", "required": false,
           "description": "Zone for the times in `message`: an IANA name (America/New_York) or a UTC offset in minutes (-300). Default: UTC, as in Mindful's API.",
           "schema": {"type": "string", "pattern": "^(|-?[0-9]{1,4}|[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*)$"}})
}

fn widget_status_item(with_ids: bool) -> Value {
    let mut item = json!({
        "type": "object",
        "required": ["widget_state", "message", "offer_asap", "offer_scheduled", "ewt", "scheduled_timeslots"],
        "properties": {
            "widget_state": {"type": "string", "enum": [
                "offer_callback", "offer_asap_callback", "offer_scheduled_callback",
                "display_ewt_only", "platform_unavailable"]},
            "message": {"type": "string"},
            "offer_asap": {"type": "boolean"},
            "offer_scheduled": {"type": "boolean"},
            "ewt": {"type": "integer", "minimum": 0, "nullable": true,
                    "description": "ECBT in seconds; null when not relevant."},
            "scheduled_timeslots": {"type": "array", "items": {"type": "integer"},
                    "description": "Bookable appointment times, Unix seconds (UTC)."}
        }
    });
    if with_ids {
        if let Some(r) = item["required"].as_array_mut() {
            r.extend([json!("widget_id"), json!("call_target_id")]);
        }
        item["properties"]["widget_id"] = json!({"type": "string"});
        item["properties"]["call_target_id"] = json!({"type": "string"});
    }
    item
}

fn data(item: Value, one: bool) -> Value {
    let mut arr = json!({"type": "array", "items": item});
    if one {
        arr["minItems"] = json!(1);
        arr["maxItems"] = json!(1);
    }
    json!({"type": "object", "required": ["data"], "properties": {"data": arr}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn contact_body(extra: Value) -> Value {
    let mut props = json!({
        "contact_number": {"type": "string", "minLength": 1, "maxLength": 64,
            "pattern": "^(tel:)?[+]?[0-9 ().\\-/]*[0-9][0-9 ().\\-/]*$",
            "example": "+15551234567",
            "description": "The customer's number (E.164 preferred; national forms are normalized by the call target's rules, which may still refuse it)."}
    });
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": ["contact_number"], "properties": props
    }}}})
}

/// The `CallRecord` schema: every field of the historical data API, always present,
/// `null` when it does not apply.
pub fn call_record_schema() -> Value {
    const INT: &[&str] = &[
        "activeDuration",
        "actualCallbackTime",
        "agentDelay",
        "agentWaitDuration",
        "customerDelay",
        "customerWaitDuration",
        "estimatedCallbackTime",
        "registrationDuration",
        "talkDuration",
        "waitlistDelay",
        "retryAttempt",
    ];
    const BOOL: &[&str] = &[
        "agentBusy",
        "agentHangup",
        "agentLegError",
        "agentLegRejected",
        "agentLegTimeout",
        "choseToHold",
        "customerBusy",
        "customerHangup",
        "customerLegError",
        "customerLegRejected",
        "customerLegTimeout",
        "customerRescheduled",
        "disconnectRescue",
        "duplicateCallback",
        "earlyHangup",
        "endOfBusinessDay",
        "hasRetry",
        "leaveVoicemail",
        "maxEcbtExceeded",
        "maxScheduledCallsExceeded",
        "maxTollRateExceeded",
        "nextDayCallbackOffered",
        "nextDayCallbackScheduled",
        "outsideHours",
        "priorityQueueTimedOut",
        "systemHangup",
        "wasPunctual",
    ];
    const TEXT: &[&str] = &[
        "ani",
        "callTargetId",
        "callTargetName",
        "phoneNumber",
        "segmentName",
        "source",
    ];
    let mut props = serde_json::Map::new();
    for n in INT {
        props.insert(
            (*n).into(),
            json!({"type": "integer", "minimum": 0, "nullable": true}),
        );
    }
    for n in BOOL {
        props.insert((*n).into(), json!({"type": "boolean", "nullable": true}));
    }
    for n in TEXT {
        props.insert((*n).into(), json!({"type": "string", "nullable": true}));
    }
    for n in ["createdAt", "endedAt"] {
        props.insert(n.into(), json!({"type": "string", "format": "date-time"}));
    }
    for n in ["estimatedFor", "processedAt"] {
        props.insert(
            n.into(),
            json!({"type": "string", "format": "date-time", "nullable": true}),
        );
    }
    for n in ["id", "originalId"] {
        props.insert(n.into(), json!({"type": "string"}));
    }
    props.insert(
        "punctuality".into(),
        json!({"type": "integer", "nullable": true,
        "description": "processedAt − estimatedFor, seconds: positive is late."}),
    );
    props.insert("estimatePercentAccuracy".into(), json!({"type": "number", "minimum": 0, "maximum": 1, "nullable": true,
        "description": "A fraction: 1 − |actual − estimated wait| / max(estimated wait, 60 s), clamped to 0–1, five decimals."}));
    props.insert(
        "firstPartyCalled".into(),
        json!({"type": "string", "enum": ["customer", "agent"], "nullable": true}),
    );
    props.insert("metadata".into(), json!({"type": "object", "nullable": true, "additionalProperties": true,
        "description": "API user_data and captured SIP headers: `<Header>` decoded, `<Header>.raw`, `.encoding`, `.purpose`, `.content`, and `.truncated`, `.badHex`, `.binary` when set."}));
    props.insert("outcome".into(), json!({"type": "string", "enum": [
        "Successful", "Unavailable", "Failure", "Canceled", "Abandoned", "Rescheduled", "Held", "Refused", "NotOffered"]}));
    props.insert(
        "type".into(),
        json!({"type": "string", "enum": ["asap", "scheduled", "unknown"]}),
    );
    let required: Vec<&String> = props.keys().collect();
    json!({"type": "object", "required": required, "properties": props})
}

/// The document.
pub fn document() -> Value {
    let security = json!([{"bearer": []}]);
    let status_entry = json!({
        "type": "object",
        "required": ["contact_uri", "callback_number", "call_request_id", "type", "created_at",
                     "estimated_for", "forecast_waitlist_position", "estimated_wait_time",
                     "source", "call_target_id", "status"],
        "properties": {
            "contact_uri": {"type": "string"},
            "callback_number": {"type": "string"},
            "call_request_id": {"type": "string"},
            "type": {"type": "string", "enum": ["asap", "scheduled"]},
            "created_at": {"type": "string", "pattern": "^[0-9]+$"},
            "estimated_for": {"type": "string", "pattern": "^[0-9]+$"},
            "forecast_waitlist_position": {"type": "string", "pattern": "^[0-9]+$"},
            "estimated_wait_time": {"type": "string", "pattern": "^[0-9]+$"},
            "source": {"type": "string", "nullable": true, "description": "`CBWidget:<widget id>` or `Phone:<dialled number>`."},
            "call_target_id": {"type": "string"},
            "status": {"type": "string", "enum": ["Pending", "Waitlisted", "InProgress"]}
        }
    });
    let record = json!({
        "type": "object",
        "required": ["callback_request_id", "call_target_id", "callback_number", "status", "user_data",
                     "sip_headers", "requested_at", "ecbt", "estimatedFor", "position"],
        "properties": {
            "callback_request_id": {"type": "string"},
            "organization_id": {"type": "string"},
            "call_target_id": {"type": "string"},
            "widget_id": {"type": "string", "nullable": true},
            "callback_number": {"type": "string"},
            "type": {"type": "string", "enum": ["asap", "scheduled"]},
            "next_business_day": {"type": "boolean"},
            "status": {"type": "string", "enum": ["Pending", "Waitlisted", "InProgress", "Completed", "Failed", "Canceled"]},
            "source": {"type": "string", "nullable": true, "description": "`CBWidget:<widget id>` or `Phone:<dialled number>`."},
            "channel": {"type": "string", "nullable": true},
            "user_data": {"type": "object"},
            "sip_headers": {"type": "array", "items": {"type": "object", "required": ["name", "value"],
                "properties": {"name": {"type": "string"}, "value": {"type": "string"}}}},
            "sip_metadata": {"type": "object", "nullable": true, "additionalProperties": true,
                "description": "Captured SIP headers, decoded (registered over SIP): `<Header>`, `<Header>.raw`, `.encoding`, `.purpose`, `.content`, `.truncated`, `.badHex`, `.binary`."},
            "createdAt": {"type": "string", "format": "date-time"},
            "requested_at": {"type": "string", "format": "date-time"},
            "ecbt": {"type": "integer", "minimum": 0},
            "estimatedFor": {"type": "string", "format": "date-time"},
            "appointment_time": {"type": "string", "format": "date-time", "nullable": true},
            "due_at": {"type": "string", "format": "date-time"},
            "position": {"type": "integer", "minimum": 0},
            "estimated_wait_time": {"type": "integer", "minimum": 0},
            "attempts": {"type": "integer", "minimum": 0},
            "last_result": {"type": "string", "nullable": true},
            "processedAt": {"type": "string", "format": "date-time", "nullable": true},
            "actualCallbackTime": {"type": "integer", "minimum": 0, "nullable": true,
                "description": "The wait, seconds: processedAt − createdAt."},
            "punctuality": {"type": "integer", "nullable": true},
            "wasPunctual": {"type": "boolean", "nullable": true},
            "estimatePercentAccuracy": {"type": "number", "minimum": 0, "maximum": 1, "nullable": true},
            "finished_at": {"type": "string", "format": "date-time", "nullable": true}
        }
    });
    let body_errors = [
        "ContactRequired",
        "InvalidContact",
        "InvalidRequest",
        "InvalidParameters",
        "RequestRefusedDueToOperationMode",
        "DuplicateRequest",
        "AppointmentTimeInThePast",
    ];
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "holdless Scheduler API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Callback scheduling shaped like Mindful's Scheduler API. Every /api route needs `Authorization: Bearer <token>` of the organization it touches, from an address in that organization's `api_allow`."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"CallRecord": call_record_schema()}
        },
        "paths": {
            "/api/widget/{widget_id}": {"get": {
                "operationId": "widgetStatus",
                "summary": "Whether the widget offers callbacks now, its ECBT and bookable slots.",
                "security": security,
                "parameters": [path_param("widget_id", "Widget id."), time_zone_param()],
                "responses": {
                    "200": ok("The widget's state.", data(widget_status_item(false), true)),
                    "400": error_response("Bad time_zone or query.", &["InvalidTimeZone", "InvalidParameters"]),
                    "401": unauthorized(), "403": forbidden(), "404": not_found()
                }
            }},
            "/api/widget/{widget_id}/request_callback": {"post": {
                "operationId": "requestCallback",
                "summary": "Registers an ASAP callback, or a scheduled one at one of the widget's timeslots.",
                "security": security,
                "parameters": [path_param("widget_id", "Widget id.")],
                "requestBody": contact_body(json!({
                    "appointment_time": {"oneOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer"}],
                        "nullable": true, "description": "A Unix timestamp from scheduled_timeslots; absent = ASAP."},
                    "user_data": {"type": "object", "nullable": true, "additionalProperties": true, "maxProperties": 50},
                    "channel": {"type": "string", "nullable": true, "maxLength": 64},
                    "time_zone": {"type": "string", "nullable": true, "maxLength": 64,
                        "description": "holdless extension: zone for the times in `message`, as in widget status; default UTC."}
                })),
                "responses": {
                    "200": ok("Registered.", data(json!({
                        "type": "object",
                        "required": ["status", "message", "callback_request_id", "requested_at", "ewt"],
                        "properties": {
                            "status": {"type": "string", "enum": ["Requested"]},
                            "message": {"type": "string"},
                            "callback_request_id": {"type": "string"},
                            "requested_at": {"type": "integer"},
                            "ewt": {"type": "integer", "minimum": 0}
                        }
                    }), true)),
                    "400": error_response("Refused; `status` says why and `outcome` names the rule.", &body_errors),
                    "401": unauthorized(), "403": forbidden(), "404": not_found(),
                    "413": too_large(), "503": unavailable()
                }
            }},
            "/api/organization/{org_id}/widget_status": {"get": {
                "operationId": "organizationWidgetStatus",
                "summary": "The state of every active widget of the organization.",
                "security": security,
                "parameters": [path_param("org_id", "Organization id."), time_zone_param()],
                "responses": {
                    "200": ok("One entry per active widget.", data(widget_status_item(true), false)),
                    "400": error_response("Bad time_zone or query.", &["InvalidTimeZone", "InvalidParameters"]),
                    "401": unauthorized(), "403": forbidden()
                }
            }},
            "/api/organization/{org_id}/callback_status": {"post": {
                "operationId": "callbackStatus",
                "summary": "The organization's active callbacks for a number.",
                "security": security,
                "parameters": [path_param("org_id", "Organization id.")],
                "requestBody": contact_body(json!({})),
                "responses": {
                    "200": ok("Active callbacks (an empty list when none).", data(status_entry, false)),
                    "400": error_response("Bad body or number.", &["ContactRequired", "InvalidContact", "InvalidRequest", "InvalidParameters"]),
                    "401": unauthorized(), "403": forbidden(), "413": too_large(), "503": unavailable()
                }
            }},
            "/api/organization/{org_id}/cancel_callback": {"post": {
                "operationId": "cancelCallback",
                "summary": "Cancels the organization's pending callback for a number.",
                "security": security,
                "parameters": [path_param("org_id", "Organization id.")],
                "requestBody": contact_body(json!({
                    "call_target_id": {"type": "string", "nullable": true, "maxLength": 64,
                        "description": "holdless extension: which call target, when the number waits on several."}
                })),
                "responses": {
                    "200": ok("What happened (always 200, as in Mindful's API).", data(json!({
                        "type": "object", "required": ["status"],
                        "properties": {
                            "status": {"type": "string", "enum": ["Canceled", "InteractionNotFound", "TooManyInteractions", "FAILED"]},
                            "cancel_callback_request_id": {"type": "string"}
                        }
                    }), true)),
                    "400": error_response("Bad body or number.", &["ContactRequired", "InvalidContact", "InvalidRequest", "InvalidParameters"]),
                    "401": unauthorized(), "403": forbidden(), "413": too_large(), "503": unavailable()
                }
            }},
            "/api/organization/{org_id}/callback/{callback_id}": {"get": {
                "operationId": "getCallback",
                "summary": "holdless extension: one callback with its metadata, ECBT, position and punctuality.",
                "security": security,
                "parameters": [path_param("org_id", "Organization id."), path_param("callback_id", "callback_request_id.")],
                "responses": {
                    "200": ok("The callback.", data(record, true)),
                    "400": error_response("Bad path.", &["InvalidParameters"]),
                    "401": unauthorized(), "403": forbidden(), "404": not_found(), "503": unavailable()
                }
            }},
            "/v2/data/historical/{date}/{hour}": {"get": {
                "operationId": "historicalData",
                "summary": "The token's organization's call records (one per callback attempt and per inbound call without a callback) that ended in one UTC hour, in (endedAt, id) order; streamed.",
                "security": security,
                "parameters": [
                    {"name": "date", "in": "path", "required": true, "description": "UTC date, YYYYMMDD.",
                     "schema": {"type": "string", "pattern": "^[0-9]{8}$"}},
                    {"name": "hour", "in": "path", "required": true,
                     "description": "The UTC hour by its end, 01-24: 04 is 03:00-04:00, 24 is 23:00-24:00.",
                     "schema": {"type": "string", "pattern": "^(0[1-9]|1[0-9]|2[0-4])$"}}
                ],
                "responses": {
                    "200": ok("The records (an empty list when none).", json!({
                        "type": "object", "required": ["data"],
                        "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/CallRecord"}}}
                    })),
                    "400": error_response("Not a real date, or an hour outside 01-24.", &["InvalidParameters"]),
                    "401": unauthorized(), "403": forbidden(), "503": unavailable()
                }
            }},
            "/healthz": {"get": {
                "operationId": "healthz", "summary": "Liveness.",
                "responses": {"200": {"description": "Alive.", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }},
            "/readyz": {"get": {
                "operationId": "readyz", "summary": "Readiness: 200 only when the store answers.",
                "responses": {
                    "200": {"description": "Ready.", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "503": {"description": "The store is unreachable.", "content": {"text/plain": {"schema": {"type": "string"}}}}
                }
            }},
            "/metrics": {"get": {
                "operationId": "metrics", "summary": "Prometheus text: callbacks per call target, registrations by outcome, API requests, SIP counters.",
                "responses": {"200": {"description": "Metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }}
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_with_its_statuses() {
        let d = super::document();
        let paths = d["paths"].as_object().unwrap();
        assert_eq!(paths.len(), 11);
        for (p, ops) in paths {
            for (_, op) in ops.as_object().unwrap() {
                let codes = op["responses"].as_object().unwrap();
                assert!(codes.contains_key("200"), "{p}");
                if p.starts_with("/api/") {
                    assert!(
                        codes.contains_key("401") && codes.contains_key("403"),
                        "{p}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_call_record_schema_has_every_field_of_a_record() {
        use crate::callback::record::{CallRecord, Outcome};
        let r = CallRecord::blank(
            "x".into(),
            chrono::DateTime::UNIX_EPOCH,
            chrono::DateTime::UNIX_EPOCH,
            Outcome::Held,
        );
        let v = serde_json::to_value(r).unwrap();
        let mut got: Vec<&String> = v.as_object().unwrap().keys().collect();
        let schema = super::call_record_schema();
        let mut want: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(schema["required"].as_array().unwrap().len(), want.len());
    }
}

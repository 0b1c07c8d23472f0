//! The Scheduler API over real HTTP against a running holdless (in-process, real sockets on
//! loopback, a real SQLite file in a temp dir): widget status, registration rules,
//! callback status and cancellation, access control across organizations, limits,
//! readiness, metrics and the OpenAPI document.

mod api_support;

use api_support::{config, free_port, get, post, request, wait_healthy};
use holdless::config::Config;
use serde_json::Value;
use tokio::sync::watch;

const ACME: Option<&str> = Some("acme-token-1");
const GLOBEX: Option<&str> = Some("globex-token-1");

struct Server {
    sip: u16,
    http: u16,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Server {
    async fn shutdown(self) -> tempfile::TempDir {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.task).await;
        self.dir
    }
}

async fn start() -> Server {
    start_with("").await
}

/// [`start`] with more TOML appended to the shared test configuration.
async fn start_with(extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (sip, http) = (free_port(), free_port());
    let toml = config(sip, http, &dir.path().display().to_string()) + extra;
    let cfg = Config::parse(&toml).unwrap_or_else(|e| panic!("{e:?}"));
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        holdless::runtime::serve(cfg, rx).await.expect("serve");
    });
    wait_healthy(http).await;
    Server {
        sip,
        http,
        stop,
        task,
        dir,
    }
}

fn register_body(number: &str) -> String {
    format!(
        r#"{{"contact_number": "{number}", "user_data": {{"account": "A-{number}"}}, "channel": "ivr"}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widget_status_offers_callbacks_with_ecbt_and_timeslots() {
    let s = start().await;
    let r = get(s.http, "/api/widget/billing-widget", ACME).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let w = r.item();
    assert_eq!(w["widget_state"], "offer_callback");
    assert_eq!(
        (w["offer_asap"].as_bool(), w["offer_scheduled"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(w["ewt"], 0);
    assert_eq!(w["message"], "About 1 min");
    let slots = w["scheduled_timeslots"].as_array().unwrap();
    assert!(
        slots.len() > 40,
        "today and tomorrow in 30-minute slots: {}",
        slots.len()
    );
    assert!(slots.windows(2).all(|p| p[1].as_i64() > p[0].as_i64()));

    // A call target that is never open, without next-day callbacks.
    let r = get(s.http, "/api/widget/sales-widget", ACME).await;
    let w = r.item();
    assert_eq!(w["widget_state"], "platform_unavailable");
    assert_eq!(w["ewt"], Value::Null);
    assert_eq!(w["offer_asap"], false);

    // Every active widget of the organization, with ids; none of another's.
    let r = get(s.http, "/api/organization/acme/widget_status", ACME).await;
    assert_eq!(r.status, 200);
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["widget_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["billing-widget", "sales-widget"]);

    // time_zone: IANA or minutes; anything else is refused.
    assert_eq!(
        get(s.http, "/api/widget/billing-widget?time_zone=-300", ACME)
            .await
            .status,
        200
    );
    assert_eq!(
        get(
            s.http,
            "/api/widget/billing-widget?time_zone=Asia/Tokyo",
            ACME
        )
        .await
        .status,
        200
    );
    let r = get(
        s.http,
        "/api/widget/billing-widget?time_zone=Mars/Base",
        ACME,
    )
    .await;
    assert_eq!(
        (r.status, r.item()["status"].as_str()),
        (400, Some("InvalidTimeZone"))
    );
    let r = get(s.http, "/api/widget/nope", ACME).await;
    assert_eq!(
        (r.status, r.item()["status"].as_str()),
        (404, Some("NotFound"))
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_status_cancel_round_trip() {
    let s = start().await;
    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &register_body("555-010-0001"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let item = r.item();
    assert_eq!(item["status"], "Requested");
    let first = item["callback_request_id"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 32);
    assert!(item["requested_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(item["ewt"], 0);

    // The same number again at once, in another notation: a repeat of the request being
    // processed, Mindful's DuplicateRequest (a number that has had a callback for 10 s or
    // more is refused as duplicateCallback: src/api/error.rs and the engine's tests).
    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &register_body("+1 (555) 010-0001"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.item()["status"], "DuplicateRequest");
    assert_eq!(r.item()["outcome"], "duplicateRequest");

    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &register_body("5550100002"),
    )
    .await;
    let second = r.item()["callback_request_id"].as_str().unwrap().to_owned();

    let r = post(
        s.http,
        "/api/organization/acme/callback_status",
        ACME,
        r#"{"contact_number": "+15550100002"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let st = r.item();
    assert_eq!(st["call_request_id"], second.as_str());
    assert_eq!(st["forecast_waitlist_position"], "2");
    assert_eq!(st["status"], "Pending");
    assert_eq!(st["type"], "asap");
    assert_eq!(st["call_target_id"], "billing");
    assert_eq!(st["callback_number"], "+15550100002");
    assert_eq!(st["contact_uri"], "tel:+15550100002");
    assert_eq!(st["source"], "CBWidget:billing-widget");
    // Mindful's callback_status: "10-digit Unix time stamp" strings.
    assert!(st["created_at"].as_str().unwrap().parse::<i64>().is_ok());
    assert!(st["estimated_for"].as_str().unwrap().parse::<i64>().is_ok());

    let r = post(
        s.http,
        "/api/organization/acme/cancel_callback",
        ACME,
        r#"{"contact_number": "555 010 0001"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.item()["status"], "Canceled");
    assert_eq!(r.item()["cancel_callback_request_id"], first.as_str());
    let r = post(
        s.http,
        "/api/organization/acme/callback_status",
        ACME,
        r#"{"contact_number": "+15550100002"}"#,
    )
    .await;
    assert_eq!(r.item()["forecast_waitlist_position"], "1", "moved up");
    let r = post(
        s.http,
        "/api/organization/acme/cancel_callback",
        ACME,
        r#"{"contact_number": "555 010 0001"}"#,
    )
    .await;
    assert_eq!(r.item()["status"], "InteractionNotFound");
    let r = post(
        s.http,
        "/api/organization/acme/callback_status",
        ACME,
        r#"{"contact_number": "555 010 0001"}"#,
    )
    .await;
    assert_eq!(r.json()["data"], Value::Array(vec![]));

    // The full record (holdless extension), the canceled one from the store.
    let r = get(
        s.http,
        &format!("/api/organization/acme/callback/{first}"),
        ACME,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rec = r.item();
    assert_eq!(rec["status"], "Canceled");
    assert_eq!(rec["user_data"]["account"], "A-555-010-0001");
    assert_eq!(rec["channel"], "ivr");
    assert_eq!(rec["type"], "asap");
    assert_eq!(rec["source"], "CBWidget:billing-widget");
    // Timestamps of the record are RFC 3339 UTC strings, as in the historical API.
    for k in [
        "estimatedFor",
        "createdAt",
        "requested_at",
        "due_at",
        "finished_at",
    ] {
        let v = rec[k].as_str().unwrap_or_else(|| panic!("{k}: {rec}"));
        assert!(
            chrono::DateTime::parse_from_rfc3339(v).is_ok() && v.ends_with('Z'),
            "{k}: {v}"
        );
    }
    assert_eq!(rec["estimatedFor"], rec["requested_at"], "ECBT 0");
    assert_eq!(rec["actualCallbackTime"], Value::Null, "never called");
    assert_eq!(rec["processedAt"], Value::Null);
    let r = get(
        s.http,
        &format!("/api/organization/acme/callback/{second}"),
        ACME,
    )
    .await;
    assert_eq!(
        (r.item()["status"].as_str(), r.item()["position"].as_u64()),
        (Some("Pending"), Some(1))
    );

    // An appointment at one of the widget's slots.
    let w = get(s.http, "/api/widget/billing-widget", ACME).await.item();
    let slot = w["scheduled_timeslots"][3].as_i64().unwrap();
    let body = format!(r#"{{"contact_number": "5550100003", "appointment_time": "{slot}"}}"#);
    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        s.http,
        "/api/organization/acme/callback_status",
        ACME,
        r#"{"contact_number": "5550100003"}"#,
    )
    .await;
    assert_eq!(r.item()["type"], "scheduled");
    assert_eq!(r.item()["estimated_for"], slot.to_string().as_str());
    // An appointment that has passed: Mindful's AppointmentTimeInThePast.
    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        r#"{"contact_number": "5550100009", "appointment_time": 1700000000}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.item()["status"].as_str()),
        (400, Some("AppointmentTimeInThePast"))
    );
    assert_eq!(r.item()["outcome"], "appointmentTimeInThePast");
    let body = format!(
        r#"{{"contact_number": "5550100004", "appointment_time": {}}}"#,
        slot + 60
    );
    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &body,
    )
    .await;
    assert_eq!(
        (r.status, r.item()["status"].as_str()),
        (400, Some("InvalidParameters"))
    );
    assert_eq!(r.item()["outcome"], "invalidAppointmentTime");
    // The slot takes two; the third booking is refused.
    let body =
        |n: u32| format!(r#"{{"contact_number": "555010{n:04}", "appointment_time": {slot}}}"#);
    assert_eq!(
        post(
            s.http,
            "/api/widget/billing-widget/request_callback",
            ACME,
            &body(5)
        )
        .await
        .status,
        200
    );
    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &body(6),
    )
    .await;
    assert_eq!(r.item()["status"], "RequestRefusedDueToOperationMode");
    assert_eq!(r.item()["outcome"], "maxScheduledCallsExceeded");
    let dir = s.shutdown().await;

    // Everything acknowledged is in the SQLite file.
    let mut store = holdless::store::sqlite::SqliteStore::open(dir.path()).unwrap();
    use holdless::store::Store;
    let snap = store.load().unwrap();
    // Active: the second ASAP one and the two appointments (the rest were refused or canceled).
    assert_eq!(snap.callbacks.len(), 3);
    let canceled = store.get(&first).unwrap().unwrap();
    assert_eq!(canceled.status, holdless::callback::Status::Canceled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_status() {
    let s = start().await;
    let reg = |body: &'static str| {
        post(
            s.http,
            "/api/widget/billing-widget/request_callback",
            ACME,
            body,
        )
    };
    let cases: [(&str, &str, Option<&str>); 11] = [
        ("{}", "ContactRequired", None),
        (r#"{"contact_number": ""}"#, "ContactRequired", None),
        (r#"{"contact_number": null}"#, "ContactRequired", None),
        (
            r#"{"contact_number": "call me"}"#,
            "InvalidContact",
            Some("invalidNumber"),
        ),
        (
            r#"{"contact_number": "+4930123456"}"#,
            "InvalidContact",
            Some("invalidNumber"),
        ),
        (
            r#"{"contact_number": "+19005550100"}"#,
            "InvalidContact",
            Some("maxTollRateExceeded"),
        ),
        (
            r#"{"contact_number": ["+15550100009"]}"#,
            "InvalidParameters",
            None,
        ),
        (
            r#"{"contact_number": "5550100009", "user_data": "x"}"#,
            "InvalidParameters",
            None,
        ),
        (
            r#"{"contact_number": "5550100009", "appointment_time": "soon"}"#,
            "InvalidParameters",
            None,
        ),
        (r#"["contact_number"]"#, "InvalidRequest", None),
        (r#"{"contact_number": "5550100009""#, "InvalidRequest", None),
    ];
    for (body, status, outcome) in cases {
        let r = reg(body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let item = r.item();
        assert_eq!(item["status"], status, "{body}");
        assert_eq!(item["outcome"].as_str(), outcome, "{body}");
        assert!(!item["message"].as_str().unwrap().is_empty());
    }
    let r = reg(r#"{"contact_number": "5550100009""#).await;
    let msg = r.item()["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("line 1 column"), "says what was wrong: {msg}");

    // Closed call target, no next-day offers.
    let r = post(
        s.http,
        "/api/widget/sales-widget/request_callback",
        ACME,
        r#"{"contact_number": "5550100009"}"#,
    )
    .await;
    assert_eq!(r.item()["status"], "RequestRefusedDueToOperationMode");
    assert_eq!(r.item()["outcome"], "outsideHours");
    // Appointments on a call target without them.
    let r = post(
        s.http,
        "/api/widget/support-widget/request_callback",
        GLOBEX,
        r#"{"contact_number": "+15550100009", "appointment_time": 1900000000}"#,
    )
    .await;
    assert_eq!(r.item()["outcome"], "scheduledCallbacksNotOffered");

    // Refusals are counted by outcome on /metrics.
    let m = get(s.http, "/metrics", None).await.text();
    for line in [
        r#"holdless_callback_registrations_total{call_target="billing",outcome="invalidNumber"} 2"#,
        r#"holdless_callback_registrations_total{call_target="billing",outcome="maxTollRateExceeded"} 1"#,
        r#"holdless_callback_registrations_total{call_target="sales",outcome="outsideHours"} 1"#,
    ] {
        assert!(m.contains(line), "{line} missing in\n{m}");
    }
    s.shutdown().await;
}

/// An organization whose call targets fill up: `crowded` (one pacing slot, 300 s per
/// callback, ECBT at most 600 s) and `capped` (two requested callbacks at most).
const LIMITED: &str = r#"
[[organizations]]
id = "limited"
api_tokens = ["limited-token-1"]
api_allow = ["127.0.0.0/8"]

[[call_targets]]
id = "crowded"
name = "Crowded"
numbers = ["+15550005000"]
organization = "limited"
contact_center = "sip:+15550009995@127.0.0.1:5090"
pacing = 1
max_ecbt_secs = 600
[call_targets.ecbt]
initial_handle_secs = 300

[[call_targets]]
id = "capped"
name = "Capped"
numbers = ["+15550006000"]
organization = "limited"
contact_center = "sip:+15550009994@127.0.0.1:5090"
max_requested = 2

[[widgets]]
id = "crowded-widget"
call_target = "crowded"
[[widgets]]
id = "capped-widget"
call_target = "capped"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_call_targets_refuse_with_operation_mode_and_count_it() {
    let s = start_with(LIMITED).await;
    let limited = Some("limited-token-1");
    let reg = |widget: &'static str, number: String| {
        let path = format!("/api/widget/{widget}/request_callback");
        async move { post(s.http, &path, limited, &register_body(&number)).await }
    };
    // ECBT = (callbacks ahead) × 300 s with one pacing slot: 0, 300, 600, then 900 > 600.
    for (i, ewt) in [0, 300, 600].into_iter().enumerate() {
        let r = reg("crowded-widget", format!("555070000{i}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.item()["ewt"], ewt);
    }
    let r = reg("crowded-widget", "5550700009".into()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let item = r.item();
    assert_eq!(item["status"], "RequestRefusedDueToOperationMode");
    assert_eq!(item["outcome"], "maxEcbtExceeded");
    assert!(item["message"].as_str().unwrap().contains("ECBT"), "{item}");
    // The flow sees the wait only.
    let w = get(s.http, "/api/widget/crowded-widget", limited)
        .await
        .item();
    assert_eq!(w["widget_state"], "display_ewt_only");
    assert_eq!(w["ewt"], 900);

    // Two requested callbacks at most: the third is refused.
    for i in 0..2 {
        let r = reg("capped-widget", format!("555080000{i}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for _ in 0..2 {
        let r = reg("capped-widget", "5550800009".into()).await;
        assert_eq!(r.status, 400, "{}", r.text());
        let item = r.item();
        assert_eq!(item["status"], "RequestRefusedDueToOperationMode");
        assert_eq!(item["outcome"], "maxRequestedCallbacksExceeded");
    }
    let w = get(s.http, "/api/widget/capped-widget", limited)
        .await
        .item();
    assert_eq!(w["widget_state"], "display_ewt_only");

    let m = get(s.http, "/metrics", None).await.text();
    for line in [
        r#"holdless_callback_registrations_total{call_target="crowded",outcome="registered"} 3"#,
        r#"holdless_callback_registrations_total{call_target="crowded",outcome="maxEcbtExceeded"} 1"#,
        r#"holdless_callback_registrations_total{call_target="capped",outcome="registered"} 2"#,
        r#"holdless_callback_registrations_total{call_target="capped",outcome="maxRequestedCallbacksExceeded"} 2"#,
        r#"holdless_callbacks_pending{call_target="crowded"} 3"#,
        r#"holdless_callbacks_pending{call_target="capped"} 2"#,
    ] {
        assert!(m.contains(line), "{line} missing in\n{m}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_cross_organizations() {
    let s = start().await;
    // acme registers a callback.
    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &register_body("5550200001"),
    )
    .await;
    assert_eq!(r.status, 200);
    let id = r.item()["callback_request_id"].as_str().unwrap().to_owned();
    let number = r#"{"contact_number": "5550200001"}"#;

    // globex's valid token can neither read nor change anything of acme's.
    let forbidden = [
        get(s.http, "/api/widget/billing-widget", GLOBEX).await,
        get(s.http, "/api/organization/acme/widget_status", GLOBEX).await,
        post(
            s.http,
            "/api/widget/billing-widget/request_callback",
            GLOBEX,
            &register_body("5550200002"),
        )
        .await,
        post(
            s.http,
            "/api/organization/acme/callback_status",
            GLOBEX,
            number,
        )
        .await,
        post(
            s.http,
            "/api/organization/acme/cancel_callback",
            GLOBEX,
            number,
        )
        .await,
        get(
            s.http,
            &format!("/api/organization/acme/callback/{id}"),
            GLOBEX,
        )
        .await,
    ];
    for r in &forbidden {
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.item()["status"], "Forbidden");
        assert!(!r.text().contains("5550200001"), "nothing of acme's leaks");
    }
    // Within its own organization globex finds nothing of acme's either.
    let r = post(
        s.http,
        "/api/organization/globex/callback_status",
        GLOBEX,
        number,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["data"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let r = post(
        s.http,
        "/api/organization/globex/cancel_callback",
        GLOBEX,
        number,
    )
    .await;
    assert_eq!(r.item()["status"], "InteractionNotFound");
    let r = get(
        s.http,
        &format!("/api/organization/globex/callback/{id}"),
        GLOBEX,
    )
    .await;
    assert_eq!(r.status, 404);
    // acme's callback is untouched, and only acme's widget registration went through.
    let r = post(
        s.http,
        "/api/organization/acme/callback_status",
        Some("acme-token-2"),
        number,
    )
    .await;
    assert_eq!(r.item()["call_request_id"], id.as_str());
    assert_eq!(r.item()["status"], "Pending");
    let r = post(
        s.http,
        "/api/organization/acme/callback_status",
        ACME,
        r#"{"contact_number": "5550200002"}"#,
    )
    .await;
    assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(0));

    // No token or a wrong one: 401 with a challenge, on every route.
    for token in [None, Some("acme-token-3"), Some("")] {
        for r in [
            get(s.http, "/api/widget/billing-widget", token).await,
            get(s.http, "/api/organization/acme/widget_status", token).await,
            post(
                s.http,
                "/api/widget/billing-widget/request_callback",
                token,
                number,
            )
            .await,
            post(
                s.http,
                "/api/organization/acme/callback_status",
                token,
                number,
            )
            .await,
            post(
                s.http,
                "/api/organization/acme/cancel_callback",
                token,
                number,
            )
            .await,
            get(
                s.http,
                &format!("/api/organization/acme/callback/{id}"),
                token,
            )
            .await,
        ] {
            assert_eq!(r.status, 401, "{token:?}: {}", r.text());
            assert_eq!(r.item()["status"], "Unauthorized");
            assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
        }
    }
    let r = request(
        s.http,
        "GET",
        "/api/widget/billing-widget",
        None,
        None,
        &[("Authorization", "Basic YWNtZTp4")],
    )
    .await;
    assert_eq!(r.status, 401);

    // The right token from an address outside the organization's policy: 403.
    let walled = Some("walled-token-1");
    for r in [
        get(s.http, "/api/widget/vault-widget", walled).await,
        get(s.http, "/api/organization/walled/widget_status", walled).await,
        post(
            s.http,
            "/api/widget/vault-widget/request_callback",
            walled,
            number,
        )
        .await,
        post(
            s.http,
            "/api/organization/walled/callback_status",
            walled,
            number,
        )
        .await,
    ] {
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.item()["message"]
            .as_str()
            .unwrap()
            .contains("access policy"));
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_odd_requests() {
    let s = start().await;
    let big = format!(
        r#"{{"contact_number": "5550300001", "user_data": {{"x": "{}"}}}}"#,
        "a".repeat(20_000)
    );
    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &big,
    )
    .await;
    assert_eq!(
        (r.status, r.item()["status"].as_str()),
        (413, Some("PayloadTooLarge"))
    );
    // Without Content-Length (chunked), the limit still holds.
    let r = request(
        s.http,
        "POST",
        "/api/widget/billing-widget/request_callback",
        ACME,
        Some(big.as_bytes()),
        &[
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "application/json"),
        ],
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.text());
    // Nothing was registered.
    let r = post(
        s.http,
        "/api/organization/acme/callback_status",
        ACME,
        r#"{"contact_number": "5550300001"}"#,
    )
    .await;
    assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(0));
    // Unknown routes and ids answer JSON 404s.
    let r = get(s.http, "/api/nothing/here", ACME).await;
    assert_eq!(
        (r.status, r.item()["status"].as_str()),
        (404, Some("NotFound"))
    );
    let r = get(s.http, &format!("/api/widget/{}", "w".repeat(300)), ACME).await;
    assert_eq!(r.status, 404);
    // Unknown fields are ignored (Mindful flows send widget_id in the body too).
    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        r#"{"contact_number": "5550300002", "widget_id": "billing-widget"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_metrics_and_the_openapi_document() {
    let s = start().await;
    let r = get(s.http, "/readyz", None).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ready\n"));
    // One SIP OPTIONS so the SIP core has something to count.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = udp.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:holdless@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-m1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=a\r\nTo: <sip:holdless@127.0.0.1>\r\n\
         Call-ID: metrics-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    udp.send_to(options.as_bytes(), ("127.0.0.1", s.sip))
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let got =
        tokio::time::timeout(std::time::Duration::from_secs(5), udp.recv_from(&mut buf)).await;
    assert!(got.is_ok(), "holdless answered the OPTIONS");
    post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &register_body("5550400001"),
    )
    .await;
    get(s.http, "/api/widget/billing-widget", GLOBEX).await;
    let m = get(s.http, "/metrics", None).await.text();
    for want in [
        r#"holdless_callbacks_pending{call_target="billing"} 1"#,
        r#"holdless_callbacks_pending{call_target="sales"} 0"#,
        r#"holdless_callback_registrations_total{call_target="billing",outcome="registered"} 1"#,
        r#"holdless_api_requests_total{route="/api/widget/{widget_id}/request_callback",status="200"} 1"#,
        r#"holdless_api_requests_total{route="/api/widget/{widget_id}",status="403"} 1"#,
        r#"holdless_api_requests_total{route="/readyz",status="200"} 1"#,
        "holdless_store_up 1",
        r#"holdless_sip_received_total{what="OPTIONS"} 1"#,
    ] {
        assert!(m.contains(want), "{want} missing in\n{m}");
    }
    let doc = get(s.http, "/openapi.json", None).await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/widget/{widget_id}",
        "/api/widget/{widget_id}/request_callback",
        "/api/organization/{org_id}/widget_status",
        "/api/organization/{org_id}/callback_status",
        "/api/organization/{org_id}/cancel_callback",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} not documented");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_store_makes_holdless_unready_and_widgets_unavailable() {
    let s = start().await;
    assert_eq!(
        get(s.http, "/api/widget/billing-widget", ACME).await.item()["widget_state"],
        "offer_callback"
    );
    // The data directory is wiped under the running server (a real failure: writes would
    // go to a deleted file and be lost at the next restart).
    std::fs::remove_file(s.dir.path().join("holdless.sqlite3")).unwrap();
    let r = get(s.http, "/readyz", None).await;
    assert_eq!(r.status, 503);
    let w = get(s.http, "/api/widget/billing-widget", ACME).await.item();
    assert_eq!(w["widget_state"], "platform_unavailable");
    assert_eq!(w["offer_asap"], false);
    let r = post(
        s.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &register_body("5550500001"),
    )
    .await;
    assert_eq!(
        (r.status, r.item()["status"].as_str()),
        (503, Some("PlatformUnavailable"))
    );
    let m = get(s.http, "/metrics", None).await.text();
    assert!(m.contains("holdless_store_up 0"), "{m}");
    s.shutdown().await;
}

//! Registered callbacks survive `kill -9`: the real holdless binary registers callbacks over
//! HTTP, is killed with SIGKILL, restarted on the same data directory, and every callback
//! is found pending with its metadata, ECBT (`estimatedFor`) and queue position. Once on
//! the SQLite file, once on a PostgreSQL database.

mod api_support;

use std::collections::HashMap;

use api_support::{config, free_port, get, post, wait_healthy, Holdless};
use serde_json::Value;

const ACME: Option<&str> = Some("acme-token-1");

/// What the API says about one callback.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    id: String,
    status: String,
    kind: String,
    position: String,
    estimated_for: String,
    user_data: Value,
    channel: Value,
    ecbt: Value,
}

async fn seen(http: u16, number: &str) -> Option<Seen> {
    let r = post(
        http,
        "/api/organization/acme/callback_status",
        ACME,
        &format!(r#"{{"contact_number": "{number}"}}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let data = r.json()["data"].as_array()?.clone();
    assert!(data.len() <= 1);
    let st = data.first()?.clone();
    let id = st["call_request_id"].as_str().unwrap().to_owned();
    let rec = get(http, &format!("/api/organization/acme/callback/{id}"), ACME)
        .await
        .item();
    Some(Seen {
        id,
        status: st["status"].as_str().unwrap().to_owned(),
        kind: st["type"].as_str().unwrap().to_owned(),
        position: st["forecast_waitlist_position"]
            .as_str()
            .unwrap()
            .to_owned(),
        estimated_for: st["estimated_for"].as_str().unwrap().to_owned(),
        user_data: rec["user_data"].clone(),
        channel: rec["channel"].clone(),
        ecbt: rec["ecbt"].clone(),
    })
}

fn number(i: u32) -> String {
    format!("+1555060{i:04}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_survive_kill_9_with_metadata_ecbt_and_position() {
    survive_kill_9(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_survive_kill_9_on_postgresql() {
    if let Some(db) = holdless::store::testing::TestDb::create("kill_9") {
        survive_kill_9(Some(db.url())).await;
    }
}

/// On PostgreSQL a restarted node is a new instance: it leads once its predecessor's lease
/// (1 s here) has run out. Until then the callbacks are unavailable (503), never wrong.
async fn wait_lead(http: u16, pg: bool) {
    let t0 = std::time::Instant::now();
    if !pg {
        return;
    }
    loop {
        let r = post(
            http,
            "/api/organization/acme/callback_status",
            ACME,
            &format!(r#"{{"contact_number": "{}"}}"#, number(1)),
        )
        .await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(t0.elapsed() < std::time::Duration::from_secs(5));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The scenario on SQLite under the data directory, or on the PostgreSQL database `pg`.
async fn survive_kill_9(pg: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();

    let (sip, http) = (free_port(), free_port());
    let cfg = dir.path().join("holdless.toml");
    let data = dir.path().join("data").display().to_string();
    let mut text = config(sip, http, &data);
    if let Some(url) = pg {
        text = text.replace(
            &format!("data_dir = \"{data}\""),
            &format!("data_dir = \"{data}\"\nurl = \"{url}\"\n[cluster]\nlease_secs = 1"),
        );
        assert!(text.contains(url));
    }
    std::fs::write(&cfg, text).unwrap();

    let first = Holdless::spawn(&cfg, &dir.path().join("run1.log"));
    wait_healthy(http).await;
    // 12 ASAP callbacks (pacing 5: from the 5th on they wait, so ECBTs differ), with
    // user_data and channel; 2 appointments.
    for i in 1..=12 {
        let body = format!(
            r#"{{"contact_number": "{}", "channel": "chat-{i}", "user_data": {{"order": {i}, "tags": ["vip", "è"], "nested": {{"k": "v{i}"}}}}}}"#,
            number(i)
        );
        let r = post(
            http,
            "/api/widget/billing-widget/request_callback",
            ACME,
            &body,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let w = get(http, "/api/widget/billing-widget", ACME).await.item();
    for (k, i) in [(2, 13), (5, 14)] {
        let slot = w["scheduled_timeslots"][k].as_i64().unwrap();
        let body = format!(
            r#"{{"contact_number": "{}", "appointment_time": {slot}, "user_data": {{"order": {i}}}}}"#,
            number(i)
        );
        let r = post(
            http,
            "/api/widget/billing-widget/request_callback",
            ACME,
            &body,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // One canceled before the crash: it must stay canceled.
    let r = post(
        http,
        "/api/organization/acme/cancel_callback",
        ACME,
        &format!(r#"{{"contact_number": "{}"}}"#, number(3)),
    )
    .await;
    assert_eq!(r.item()["status"], "Canceled");
    let canceled_id = r.item()["cancel_callback_request_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut before: HashMap<u32, Seen> = HashMap::new();
    for i in (1..=14).filter(|i| *i != 3) {
        before.insert(i, seen(http, &number(i)).await.expect("registered"));
    }
    assert_eq!(before[&12].position, "11", "12 registered, one canceled");
    assert!(before[&12].ecbt.as_u64().unwrap() > before[&4].ecbt.as_u64().unwrap());

    first.kill_9();
    let second = Holdless::spawn(&cfg, &dir.path().join("run2.log"));
    wait_healthy(http).await;
    wait_lead(http, pg.is_some()).await;

    for (i, b) in &before {
        let a = seen(http, &number(*i))
            .await
            .unwrap_or_else(|| panic!("callback {i} lost"));
        assert_eq!(&a, b, "callback {i} changed across kill -9");
        assert_eq!(a.status, "Pending");
    }
    assert_eq!(before[&13].kind, "scheduled");
    assert!(
        seen(http, &number(3)).await.is_none(),
        "the canceled one stays canceled"
    );
    let r = get(
        http,
        &format!("/api/organization/acme/callback/{canceled_id}"),
        ACME,
    )
    .await;
    assert_eq!(r.item()["status"], "Canceled");

    // The engine picks up where it was: duplicates are still refused, new callbacks queue
    // behind the restored ones.
    let dup = format!(r#"{{"contact_number": "{}"}}"#, number(7));
    let r = post(
        http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &dup,
    )
    .await;
    // Within 10 s of its registration a repeat is Mindful's DuplicateRequest, later a
    // duplicate callback; either way refused, the status matching the outcome.
    let refused = (
        r.item()["status"].as_str().map(String::from),
        r.item()["outcome"].as_str().map(String::from),
    );
    assert!(
        matches!(
            (refused.0.as_deref(), refused.1.as_deref()),
            (Some("DuplicateRequest"), Some("duplicateRequest"))
                | (
                    Some("RequestRefusedDueToOperationMode"),
                    Some("duplicateCallback")
                )
        ),
        "{refused:?}"
    );
    let new = format!(r#"{{"contact_number": "{}"}}"#, number(20));
    assert_eq!(
        post(
            http,
            "/api/widget/billing-widget/request_callback",
            ACME,
            &new
        )
        .await
        .status,
        200
    );
    assert_eq!(seen(http, &number(20)).await.unwrap().position, "12");

    // Killed once more: the callback registered after the first restart is there too.
    second.kill_9();
    let third = Holdless::spawn(&cfg, &dir.path().join("run3.log"));
    wait_healthy(http).await;
    wait_lead(http, pg.is_some()).await;
    assert_eq!(seen(http, &number(20)).await.unwrap().position, "12");
    assert_eq!(seen(http, &number(1)).await.unwrap(), before[&1]);
    drop(third);
}

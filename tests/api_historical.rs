//! `GET /v2/data/historical/{YYYYMMDD}/{HH}` over real HTTP against a running holdless
//! (in-process, real sockets on loopback) with a real SQLite file: call records are filed
//! through the store's write path, then read back per organization and UTC hour, streamed
//! page by page.

mod api_support;

use api_support::{config, free_port, get};
use chrono::{DateTime, Duration, Utc};
use holdless::callback::engine::Write;
use holdless::callback::record::{
    CallRecord, InboundCall, InboundEnd, Outcome, RecordEntry, TargetRef,
};
use holdless::callback::Refusal;
use holdless::config::Config;
use holdless::store::sqlite::SqliteStore;
use holdless::store::{Store, RECORD_PAGE};
use serde_json::{json, Value};
use tokio::sync::watch;

const ACME: Option<&str> = Some("acme-token-1");
const GLOBEX: Option<&str> = Some("globex-token-1");

/// Records in the big hour: more than two pages.
const MANY: usize = 2 * RECORD_PAGE + 203;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn inbound(created: &str) -> InboundCall {
    InboundCall {
        ani: Some("+15557654321".into()),
        dialled: "+15550001000".into(),
        created_at: at(created),
        registration_duration_secs: Some(17),
        metadata: json!({
            "X-User-To-User": "ABC-12345",
            "X-User-To-User.raw": "4142432d3132333435;encoding=hex",
            "X-User-To-User.encoding": "hex"
        })
        .as_object()
        .cloned()
        .unwrap(),
    }
}

fn billing() -> Option<TargetRef<'static>> {
    Some(TargetRef {
        id: "billing",
        name: "Billing",
    })
}

fn filed(org: &str, record: CallRecord) -> Write {
    Write::Record(Box::new(RecordEntry {
        organization: org.into(),
        record,
    }))
}

/// A plain record that ended at `ended`.
fn plain(org: &str, id: &str, ended: DateTime<Utc>) -> Write {
    filed(
        org,
        CallRecord::blank(
            id.into(),
            ended - Duration::seconds(30),
            ended,
            Outcome::NotOffered,
        ),
    )
}

/// Files the test's records through the store's own write path (one transaction).
fn seed(data_dir: &std::path::Path) {
    let mut store = SqliteStore::open(data_dir).unwrap();
    let held = CallRecord::inbound_without_callback(
        "held-0300".into(),
        billing(),
        &inbound("2026-01-14T02:58:00Z"),
        at("2026-01-14T03:00:00Z"),
        InboundEnd::ChoseToHold,
    );
    let early = CallRecord::inbound_without_callback(
        "early-0359".into(),
        billing(),
        &inbound("2026-01-14T03:59:00Z"),
        at("2026-01-14T03:59:59.999Z"),
        InboundEnd::EarlyHangup,
    );
    let dup = CallRecord::inbound_without_callback(
        "dup-0330".into(),
        billing(),
        &inbound("2026-01-14T03:29:00Z"),
        at("2026-01-14T03:30:00Z"),
        InboundEnd::Refused(Refusal::DuplicateCallback),
    );
    let mut w = vec![
        plain("acme", "before-0259", at("2026-01-14T02:59:59.999Z")),
        filed("acme", held),
        filed("acme", early),
        filed("acme", dup),
        plain("acme", "after-0400", at("2026-01-14T04:00:00Z")),
        plain("globex", "globex-0330", at("2026-01-14T03:30:00Z")),
    ];
    // The big hour, 05:00-06:00: several records share each second (the id orders them).
    let start = at("2026-01-14T05:00:00Z");
    for i in 0..MANY {
        let ended = start + Duration::seconds((i / 3) as i64);
        w.push(plain("acme", &format!("many-{i:05}"), ended));
    }
    store.apply(&w).unwrap();
}

struct Server {
    http: u16,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (sip, http) = (free_port(), free_port());
    let toml = config(sip, http, &dir.path().display().to_string());
    let cfg = Config::parse(&toml).unwrap_or_else(|e| panic!("{e:?}"));
    seed(&cfg.data_dir);
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        holdless::runtime::serve(cfg, rx).await.expect("serve");
    });
    api_support::wait_healthy(http).await;
    Server {
        http,
        stop,
        task,
        _dir: dir,
    }
}

impl Server {
    async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.task).await;
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {body}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_is_named_by_its_end_and_holds_exactly_what_ended_in_it() {
    let s = start().await;
    let r = get(s.http, "/v2/data/historical/20260114/04", ACME).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("transfer-encoding"),
        Some("chunked"),
        "streamed, not buffered"
    );
    let body = r.json();
    // 03:00:00 is in; 04:00:00 and 02:59:59.999 are not; globex's record is not acme's.
    assert_eq!(ids(&body), ["held-0300", "dup-0330", "early-0359"]);

    let held = &body["data"][0];
    assert_eq!(held.as_object().unwrap().len(), 56, "every reference field");
    assert_eq!(held["ani"], "+15557654321");
    assert_eq!(held["type"], "unknown");
    assert_eq!(held["choseToHold"], true);
    assert_eq!(held["earlyHangup"], false);
    assert_eq!(held["createdAt"], "2026-01-14T02:58:00Z");
    assert_eq!(held["endedAt"], "2026-01-14T03:00:00Z");
    assert_eq!(held["registrationDuration"], 17);
    assert_eq!(held["activeDuration"], 120);
    assert_eq!(held["source"], "Phone:+15550001000");
    assert_eq!(held["callTargetId"], "billing");
    assert_eq!(held["callTargetName"], "Billing");
    assert_eq!(held["originalId"], "held-0300");
    assert_eq!(held["outcome"], "Held");
    assert_eq!(held["metadata"]["X-User-To-User"], "ABC-12345");
    assert_eq!(
        held["metadata"]["X-User-To-User.raw"],
        "4142432d3132333435;encoding=hex"
    );
    assert_eq!(held["agentBusy"], Value::Null);
    assert_eq!(held["phoneNumber"], Value::Null);
    let dup = &body["data"][1];
    assert_eq!(dup["duplicateCallback"], true);
    assert_eq!(dup["outcome"], "Refused");
    let early = &body["data"][2];
    assert_eq!(early["earlyHangup"], true);
    assert_eq!(early["choseToHold"], false);
    assert_eq!(early["outcome"], "Abandoned");

    let r = get(s.http, "/v2/data/historical/20260114/03", ACME).await;
    assert_eq!(ids(&r.json()), ["before-0259"]);
    let r = get(s.http, "/v2/data/historical/20260114/05", ACME).await;
    assert_eq!(ids(&r.json()), ["after-0400"]);
    // globex sees its own record only.
    let r = get(s.http, "/v2/data/historical/20260114/04", GLOBEX).await;
    assert_eq!(ids(&r.json()), ["globex-0330"]);
    // An empty hour is an empty list.
    let r = get(s.http, "/v2/data/historical/20260114/24", ACME).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"data": []}));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_records_than_a_page_come_back_all_in_order() {
    let s = start().await;
    let r = get(s.http, "/v2/data/historical/20260114/06", ACME).await;
    assert_eq!(r.status, 200);
    let got = ids(&r.json());
    let want: Vec<String> = (0..MANY).map(|i| format!("many-{i:05}")).collect();
    assert_eq!(got.len(), MANY);
    assert_eq!(got, want);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dates_hours_and_tokens_are_refused() {
    let s = start().await;
    for hh in ["00", "25"] {
        let r = get(s.http, &format!("/v2/data/historical/20260114/{hh}"), ACME).await;
        assert_eq!(r.status, 400, "{hh}");
        let item = r.item();
        assert_eq!(item["status"], "InvalidParameters");
        let m = item["message"].as_str().unwrap();
        assert!(m.contains("hour") && m.contains(hh), "{m}");
    }
    for date in ["20261399", "20250229", "2026011", "2026-01-1"] {
        let r = get(s.http, &format!("/v2/data/historical/{date}/04"), ACME).await;
        assert_eq!(r.status, 400, "{date}");
        let m = r.item()["message"].as_str().unwrap().to_owned();
        assert!(m.contains("date") && m.contains(date), "{m}");
    }
    let r = get(s.http, "/v2/data/historical/20260114/04", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.item()["status"], "Unauthorized");
    assert!(r.header("www-authenticate").is_some());
    let r = get(
        s.http,
        "/v2/data/historical/20260114/04",
        Some("nope-nope-nope"),
    )
    .await;
    assert_eq!(r.status, 401);
    // The token is checked before the path: no hint about dates without a token.
    let r = get(s.http, "/v2/data/historical/20261399/00", None).await;
    assert_eq!(r.status, 401);
    // An organization whose allow-list excludes loopback is refused.
    let r = get(
        s.http,
        "/v2/data/historical/20260114/04",
        Some("walled-token-1"),
    )
    .await;
    assert_eq!(r.status, 403);
    let doc = get(s.http, "/openapi.json", None).await.json();
    assert!(doc["paths"]["/v2/data/historical/{date}/{hour}"]["get"].is_object());
    assert_eq!(
        doc["components"]["schemas"]["CallRecord"]["properties"]
            .as_object()
            .unwrap()
            .len(),
        56
    );
    s.shutdown().await;
}

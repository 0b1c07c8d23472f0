//! Two real holdless nodes on one PostgreSQL database: one leads, the other forwards, and
//! both answer the same; the leader killed with SIGKILL, the other takes over within the
//! lease with every callback; a drained node gives the lead up at once and stops.

mod api_support;

use std::path::Path;
use std::time::{Duration, Instant};

use api_support::{config, free_port, get, post, wait_healthy, Holdless};
use holdless::store::testing::TestDb;
use serde_json::Value;

const ACME: Option<&str> = Some("acme-token-1");

struct Node {
    http: u16,
    admin: u16,
    cfg: std::path::PathBuf,
}

impl Node {
    fn new(dir: &Path, id: &str, url: &str) -> Node {
        let (sip, http, admin) = (free_port(), free_port(), free_port());
        let data = dir.join(format!("data-{id}")).display().to_string();
        let text = config(sip, http, &data).replace(
            &format!("data_dir = \"{data}\""),
            &format!(
                "data_dir = \"{data}\"\nurl = \"{url}\"\n\
                 [cluster]\nnode_id = \"{id}\"\nlease_secs = 1.5\n\
                 [admin]\nlisten = \"127.0.0.1:{admin}\"\n"
            ),
        );
        assert!(text.contains(url) && text.contains("[cluster]"));
        let cfg = dir.join(format!("{id}.toml"));
        std::fs::write(&cfg, text).unwrap();
        Node { http, admin, cfg }
    }

    fn spawn(&self, dir: &Path, run: &str) -> Holdless {
        Holdless::spawn(&self.cfg, &dir.join(format!("{run}.log")))
    }

    async fn state(&self) -> Value {
        get(self.admin, "/admin/node", None).await.json()
    }

    /// Waits until the node says it leads (`true`) or follows the leader at `leader`.
    async fn wait_role(&self, leads: bool, within: Duration) {
        let t0 = Instant::now();
        loop {
            let s = self.state().await;
            if s["leads"] == leads && (leads || s["leader"].is_string()) {
                return;
            }
            assert!(t0.elapsed() < within, "node never got there: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn number(i: u32) -> String {
    format!("+1555070{i:04}")
}

async fn register(http: u16, i: u32) -> Value {
    let body = format!(
        r#"{{"contact_number": "{}", "user_data": {{"order": {i}}}}}"#,
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
    r.item()
}

/// What a node says about a number (status, then the callback by id).
async fn seen(http: u16, i: u32) -> Value {
    let r = post(
        http,
        "/api/organization/acme/callback_status",
        ACME,
        &format!(r#"{{"contact_number": "{}"}}"#, number(i)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_engine_and_fail_over() {
    let Some(db) = TestDb::create("cluster") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        Node::new(dir.path(), "a", db.url()),
        Node::new(dir.path(), "b", db.url()),
    );
    let first_a = a.spawn(dir.path(), "a1");
    wait_healthy(a.http).await;
    a.wait_role(true, Duration::from_secs(5)).await;
    let run_b = b.spawn(dir.path(), "b1");
    wait_healthy(b.http).await;
    b.wait_role(false, Duration::from_secs(5)).await;
    assert_eq!(
        b.state().await["leader"],
        format!("127.0.0.1:{}", a.admin),
        "b forwards to a's admin listener"
    );

    // Registrations through both nodes land in the one engine: positions run on across
    // nodes, and every node answers the same.
    for i in 1..=6 {
        let http = if i % 2 == 0 { a.http } else { b.http };
        register(http, i).await;
    }
    for i in 1..=6 {
        let (on_a, on_b) = (seen(a.http, i).await, seen(b.http, i).await);
        assert_eq!(on_a, on_b, "callback {i}");
        assert_eq!(on_a[0]["status"], "Pending", "{on_a}");
    }
    assert_eq!(seen(b.http, 6).await[0]["forecast_waitlist_position"], "6");
    let widget = |http| get(http, "/api/widget/billing-widget", ACME);
    assert_eq!(widget(a.http).await.item(), widget(b.http).await.item());
    // A repeat through the other node is still a repeat.
    let r = post(
        a.http,
        "/api/widget/billing-widget/request_callback",
        ACME,
        &format!(r#"{{"contact_number": "{}"}}"#, number(1)),
    )
    .await;
    assert_ne!(r.item()["status"], "Registered", "{}", r.text());
    // Cancel through the follower.
    let r = post(
        b.http,
        "/api/organization/acme/cancel_callback",
        ACME,
        &format!(r#"{{"contact_number": "{}"}}"#, number(2)),
    )
    .await;
    assert_eq!(r.item()["status"], "Canceled", "{}", r.text());
    let before: Vec<Value> = futures_util::future::join_all((1..=6).map(|i| seen(b.http, i))).await;

    // The leader dies: b leads within the lease, with every callback.
    let killed = Instant::now();
    first_a.kill_9();
    b.wait_role(true, Duration::from_secs(6)).await;
    let took = killed.elapsed();
    for (i, was) in (1..=6).zip(&before) {
        let now = seen(b.http, i).await;
        assert_eq!(
            now.as_array().map(Vec::len),
            was.as_array().map(Vec::len),
            "{i}"
        );
        if let Some(w) = was.get(0) {
            assert_eq!(now[0]["call_request_id"], w["call_request_id"], "{i}");
            assert_eq!(now[0]["status"], "Pending");
        }
    }
    assert!(
        took >= Duration::from_millis(1000),
        "not before the lease ran out: {took:?}"
    );
    register(b.http, 7).await;

    // a comes back as a new instance: it follows b and answers the same.
    let second_a = a.spawn(dir.path(), "a2");
    wait_healthy(a.http).await;
    a.wait_role(false, Duration::from_secs(5)).await;
    assert_eq!(seen(a.http, 7).await, seen(b.http, 7).await);

    // b drains: it gives the lead up at once (a takes it within a heartbeat, not a
    // lease), says it is not ready, and stops (no calls in progress).
    let r = post(b.admin, "/admin/drain", None, "").await;
    assert_eq!(r.status, 202, "{}", r.text());
    a.wait_role(true, Duration::from_secs(3)).await;
    let mut run_b = run_b;
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = run_b.child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "b did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    for i in [1, 3, 7] {
        assert_eq!(seen(a.http, i).await[0]["status"], "Pending", "{i}");
    }
    drop(second_a);
}

/// The admin listener answers only `[admin] allow`; the public API has no admin route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_is_not_the_public_api() {
    let dir = tempfile::tempdir().unwrap();
    let (sip, http, admin) = (free_port(), free_port(), free_port());
    let data = dir.path().join("data").display().to_string();
    let text = format!(
        "{}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\nallow = [\"10.0.0.0/8\"]\n",
        config(sip, http, &data)
    );
    let cfg = dir.path().join("h.toml");
    std::fs::write(&cfg, text).unwrap();
    let _h = Holdless::spawn(&cfg, &dir.path().join("h.log"));
    wait_healthy(http).await;
    assert_eq!(post(admin, "/admin/drain", None, "").await.status, 403);
    assert_eq!(get(admin, "/admin/node", None).await.status, 403);
    assert_eq!(post(http, "/admin/drain", None, "").await.status, 404);
    assert_eq!(get(http, "/readyz", None).await.status, 200, "not drained");
}

/// A node that cannot reach PostgreSQL says so: `/readyz` 503 (a load balancer stops
/// sending it traffic), widget status `platform_unavailable` (never a 5xx); once the
/// database answers again, it is ready and takes registrations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_out_of_reach_of_postgres_is_not_ready() {
    let Some(db) = TestDb::create("unreachable") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Node::new(dir.path(), "node-a", db.url());
    let _a = a.spawn(dir.path(), "a");
    wait_healthy(a.http).await;
    a.wait_role(true, Duration::from_secs(10)).await;
    assert_eq!(get(a.http, "/readyz", None).await.status, 200);
    register(a.http, 1).await;

    db.allow_connections(false);
    db.terminate_sessions();
    let t0 = Instant::now();
    while get(a.http, "/readyz", None).await.status != 503 {
        assert!(t0.elapsed() < Duration::from_secs(15), "still ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let w = get(a.http, "/api/widget/billing-widget", ACME).await;
    assert_eq!(w.status, 200, "{}", w.text());
    assert_eq!(w.item()["widget_state"], "platform_unavailable");

    db.allow_connections(true);
    let t0 = Instant::now();
    while get(a.http, "/readyz", None).await.status != 200 {
        assert!(t0.elapsed() < Duration::from_secs(20), "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.wait_role(true, Duration::from_secs(10)).await;
    register(a.http, 2).await;
    assert_eq!(seen(a.http, 1).await[0]["status"], "Pending", "kept");
}

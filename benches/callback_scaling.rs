//! How registration and dispatch cost grow with the number of pending callbacks.
//!
//!     cargo bench --bench callback_scaling                 # 10k, 100k, 1M pending
//!     cargo bench --bench callback_scaling -- 10000 50000  # own sizes
//!
//! For each size N, one call target is filled with N pending ASAP callbacks, then:
//! * engine only (the sans-IO core): 10 000 more registrations, widget views, a status
//!   lookups across the queue (each position is a rank query), and 10 000
//!   dispatches (release + attempt ended);
//! * engine + SQLite (the real store, WAL, synchronous=FULL, in a temp dir): 1 000
//!   registrations committed one per transaction (one fsync each: the worst case, one
//!   API request at a time) and in batches of 64 (group commit under load), 1 000
//!   dispatches committed one by one, and a restart (load N rows + rebuild the engine).
//!
//! Wall-clock numbers from one run on this machine; nothing here asserts on time.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use holdless::callback::engine::{Engine, RegisterRequest, TargetConfig, Write};
use holdless::callback::{AttemptResult, CallbackSettings};
use holdless::store::sqlite::SqliteStore;
use holdless::store::Store;

fn target() -> TargetConfig {
    TargetConfig {
        id: "billing".into(),
        name: "Billing".into(),
        settings: CallbackSettings {
            organization: Some("acme".into()),
            pacing: 50,
            max_requested: u32::MAX,
            max_ecbt_secs: u64::MAX / 4,
            ..CallbackSettings::default()
        },
    }
}

fn req(i: u64) -> RegisterRequest {
    let mut user_data = serde_json::Map::new();
    user_data.insert("account".into(), serde_json::json!(i));
    RegisterRequest {
        call_target: "billing".into(),
        number: format!("+1{:010}", 2_000_000_000 + i),
        user_data,
        channel: Some("bench".into()),
        ..RegisterRequest::default()
    }
}

fn drain(e: &mut Engine) -> Vec<Write> {
    std::iter::from_fn(|| e.poll_write()).collect()
}

fn per_op(d: Duration, n: u64) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6 / n as f64)
}

fn fill(e: &mut Engine, now: DateTime<Utc>, from: u64, to: u64, mut sink: impl FnMut(Vec<Write>)) {
    for i in from..to {
        e.handle_register(now, req(i)).expect("registered");
        if i % 10_000 == 9_999 {
            sink(drain(e));
        }
    }
    sink(drain(e));
}

/// Releases and completes `k` callbacks; returns the time taken.
fn dispatch(
    e: &mut Engine,
    now: DateTime<Utc>,
    k: u64,
    mut sink: impl FnMut(Vec<Write>),
) -> Duration {
    e.set_dialling(true);
    let t = Instant::now();
    let mut done = 0;
    while done < k {
        let Some(l) = e.poll_launch(now) else { break };
        e.handle_attempt_ended(now, &l.callback_id, AttemptResult::Completed)
            .expect("in progress");
        sink(drain(e));
        done += 1;
    }
    let d = t.elapsed();
    e.set_dialling(false);
    d
}

fn engine_only(n: u64, now: DateTime<Utc>) {
    let mut e = Engine::new(vec![target()], 1);
    let t = Instant::now();
    fill(&mut e, now, 0, n, drop);
    let prefill = t.elapsed();
    let k = 10_000;
    let t = Instant::now();
    fill(&mut e, now, n, n + k, drop);
    let reg = t.elapsed();
    let t = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(e.target_view(now, "billing", true));
    }
    let view = t.elapsed();
    // Status lookups spread over the whole queue (each a rank query for the position).
    let t = Instant::now();
    for j in 0..1000u64 {
        let i = j * n / 1000;
        let st = e.status(now, "acme", &format!("+1{:010}", 2_000_000_000 + i));
        assert_eq!(st[0].position, i + 1);
    }
    let status = t.elapsed();
    let disp = dispatch(&mut e, now, k, drop);
    println!(
        "{n:>9} engine   prefill {:>7.0}/s | register {:>6} us | widget view {:>6} us | status lookup {:>6} us | dispatch {:>6} us",
        n as f64 / prefill.as_secs_f64(),
        per_op(reg, k),
        per_op(view, 1000),
        per_op(status, 1000),
        per_op(disp, k),
    );
}

fn with_store(n: u64, now: DateTime<Utc>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = SqliteStore::open(dir.path()).expect("store");
    let mut e = Engine::new(vec![target()], 2);
    let t = Instant::now();
    fill(&mut e, now, 0, n, |w| store.apply(&w).expect("apply"));
    let prefill = t.elapsed();
    let k = 1000;
    let t = Instant::now();
    for i in n..n + k {
        e.handle_register(now, req(i)).expect("registered");
        store.apply(&drain(&mut e)).expect("apply");
    }
    let single = t.elapsed();
    let t = Instant::now();
    for chunk in (n + k..n + 2 * k).collect::<Vec<_>>().chunks(64) {
        for &i in chunk {
            e.handle_register(now, req(i)).expect("registered");
        }
        store.apply(&drain(&mut e)).expect("apply");
    }
    let grouped = t.elapsed();
    let disp = dispatch(&mut e, now, k, |w| store.apply(&w).expect("apply"));
    drop(store);
    let size = std::fs::metadata(dir.path().join("holdless.sqlite3")).map_or(0, |m| m.len());
    let t = Instant::now();
    let mut store = SqliteStore::open(dir.path()).expect("reopen");
    let snap = store.load().expect("load");
    let rows = snap.callbacks.len();
    let mut e2 = Engine::new(vec![target()], 3);
    e2.restore(now, snap.callbacks, snap.estimators, snap.max_seq);
    let restart = t.elapsed();
    assert_eq!(e2.active(), rows);
    println!(
        "{n:>9} +sqlite  prefill {:>7.0}/s | register {:>6} us (1/commit) {:>6} us (64/commit) | dispatch {:>6} us (1/commit) | restart {:>6.2} s ({rows} rows, {} MB)",
        n as f64 / prefill.as_secs_f64(),
        per_op(single, k),
        per_op(grouped, k),
        per_op(disp, k),
        restart.as_secs_f64(),
        size / 1_000_000,
    );
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    let now = DateTime::parse_from_rfc3339("2026-01-14T10:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    println!("pending  | per-operation wall time, one thread");
    for &n in &sizes {
        engine_only(n, now);
        with_store(n, now);
    }
}

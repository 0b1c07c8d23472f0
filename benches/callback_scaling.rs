//! How registration and dispatch cost grow with the number of pending callbacks.
//!
//!     cargo bench --bench callback_scaling                 # 10k, 100k, 1M pending
//!     cargo bench --bench callback_scaling -- 10000 50000  # own sizes
//!     PENDING=100000,1000000 cargo bench --bench callback_scaling   # memory/CPU sizes
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
//! Then the dialler's side:
//! * the launch decision, [`Engine::poll_launch`], per call, with N pending in one call
//!   target and with N spread over 50 call targets, each with pacing 10: when every target
//!   is at its pacing (the answer is `None`: what the service loop asks after every batch)
//!   and when a slot is free (the last target in the engine's order, so every other target
//!   is looked at first; the launch itself, one callback cloned and one store write, is
//!   included). The queue is kept at N (each launched callback is completed and a new one
//!   registered, outside the timing). Also [`Engine::poll_timeout`], asked before every
//!   wait of the service loop;
//! * first (so no freed memory is reused), the engine's memory and CPU with 100 000 pending
//!   (or `PENDING`, comma-separated): resident memory grown while filling (`/proc/self/statm`, with holdless's allocator, mimalloc), and
//!   thread CPU time (`CLOCK_THREAD_CPUTIME_ID`) per callback for a whole life with the
//!   SQLite store: registered, launched and completed, 50 (the pacing) per commit.
//!
//! Wall-clock numbers from one run on this machine; nothing here asserts on time.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use holdless::callback::engine::{Engine, RegisterRequest, TargetConfig, Write};
use holdless::callback::{AttemptResult, CallbackSettings};
use holdless::store::sqlite::SqliteStore;
use holdless::store::Store;

/// The allocator of the holdless binary, so resident memory per callback is holdless's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn target() -> TargetConfig {
    target_with("billing", 50)
}

fn target_with(id: &str, pacing: u32) -> TargetConfig {
    TargetConfig {
        id: id.into(),
        name: id.into(),
        settings: CallbackSettings {
            organization: Some("acme".into()),
            pacing,
            max_requested: u32::MAX,
            max_ecbt_secs: u64::MAX / 4,
            ..CallbackSettings::default()
        },
    }
}

fn req(i: u64) -> RegisterRequest {
    req_for("billing", i)
}

fn req_for(call_target: &str, i: u64) -> RegisterRequest {
    let mut user_data = serde_json::Map::new();
    user_data.insert("account".into(), serde_json::json!(i));
    RegisterRequest {
        call_target: call_target.into(),
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

/// Pacing of every call target in the launch-decision runs.
const DECISION_PACING: u32 = 10;

/// Nanoseconds per call, as text.
fn per_call_ns(d: Duration, n: u64) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e9 / n as f64)
}

/// The thread's CPU time so far (user + system).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Resident memory of the process, bytes (`/proc/self/statm`, second field, in pages).
fn rss_bytes() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// `poll_launch` per call with `n` pending over `targets` call targets (pacing
/// [`DECISION_PACING`] each): every target full, then one slot free in the last target.
fn launch_decision(n: u64, targets: usize, now: DateTime<Utc>) {
    let ids: Vec<String> = (0..targets).map(|t| format!("t{t:03}")).collect();
    let cfgs = ids
        .iter()
        .map(|id| target_with(id, DECISION_PACING))
        .collect();
    let mut e = Engine::new(cfgs, 4);
    let mut next = 0u64;
    for i in 0..n {
        let id = &ids[(i % targets as u64) as usize];
        e.handle_register(now, req_for(id, i)).expect("registered");
        if i % 10_000 == 9_999 {
            drain(&mut e);
        }
        next = i + 1;
    }
    drain(&mut e);
    // Fill every target's pacing (this also moves the due callbacks to the ready queue).
    e.set_dialling(true);
    let mut running: Vec<holdless::callback::engine::Launch> = Vec::new();
    while let Some(l) = e.poll_launch(now) {
        running.push(l);
    }
    drain(&mut e);
    assert_eq!(running.len(), targets * DECISION_PACING as usize);
    // Full: the answer is None after looking at every target.
    let calls = 200_000u64;
    let t = Instant::now();
    for _ in 0..calls {
        assert!(std::hint::black_box(e.poll_launch(now)).is_none());
    }
    let full = t.elapsed();
    let t = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(e.poll_timeout(now));
    }
    let timeout = t.elapsed();
    // Free: one slot of the last target is freed before each call (and its queue topped
    // up to keep it as long), so every call looks at the other targets, then launches.
    let last = ids.last().cloned().unwrap_or_default();
    let mut slot = running
        .iter()
        .rposition(|l| l.call_target == last)
        .map(|i| running.swap_remove(i))
        .expect("a launch of the last target");
    let k = 20_000u64;
    let mut free = Duration::ZERO;
    for _ in 0..k {
        e.handle_attempt_ended(now, &slot.callback_id, AttemptResult::Completed)
            .expect("in progress");
        e.handle_register(now, req_for(&last, next))
            .expect("registered");
        next += 1;
        drain(&mut e);
        let t = Instant::now();
        let l = e.poll_launch(now);
        free += t.elapsed();
        slot = l.expect("a free slot launches");
    }
    println!(
        "{n:>9} pending, {targets:>2} target(s) ({:>7} each) | poll_launch: all targets full {:>5} ns | a slot free (launch included) {:>5} ns | poll_timeout {:>5} ns",
        n / targets as u64,
        per_call_ns(full, calls),
        per_call_ns(free, k),
        per_call_ns(timeout, calls),
    );
}

/// Memory and CPU of the engine (with the SQLite store) with `n` pending.
fn pending_cost(n: u64, now: DateTime<Utc>) {
    // Measured first in the process: nothing has been freed yet for the allocator to hand
    // out again, so the growth is the engine's (allocator slack and the tables' spare
    // capacity included, as in holdless) plus SQLite's page cache (bounded, ~2 MB).
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = SqliteStore::open(dir.path()).expect("store");
    let before = rss_bytes();
    let mut e = Engine::new(vec![target()], 5);
    fill(&mut e, now, 0, n, |w| store.apply(&w).expect("apply"));
    let grown = rss_bytes().saturating_sub(before);
    // Whole lives: registered, launched, completed, a pacing's worth per commit.
    let k = 10_000u64;
    let batch = target().settings.pacing as usize;
    e.set_dialling(true);
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    let mut ended = Vec::with_capacity(batch);
    for chunk in (n..n + k).collect::<Vec<_>>().chunks(batch) {
        for &i in chunk {
            e.handle_register(now, req(i)).expect("registered");
        }
        store.apply(&drain(&mut e)).expect("apply");
        for _ in chunk {
            let l = e.poll_launch(now).expect("launch");
            ended.push(l.callback_id);
        }
        store.apply(&drain(&mut e)).expect("apply");
        for id in ended.drain(..) {
            e.handle_attempt_ended(now, &id, AttemptResult::Completed)
                .expect("in progress");
        }
        store.apply(&drain(&mut e)).expect("apply");
    }
    let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
    assert_eq!(e.active() as u64, n);
    println!(
        "{n:>9} pending | resident memory grown {:>6.1} MB = {:>5.0} B per pending callback | one callback's life (register + launch + complete, SQLite, 50 per commit): CPU {:>5.1} us, wall {:>5.1} us",
        grown as f64 / 1e6,
        grown as f64 / n as f64,
        cpu.as_secs_f64() * 1e6 / k as f64,
        wall.as_secs_f64() * 1e6 / k as f64,
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
    println!("the dialler's engine with N pending: memory and CPU per callback");
    let pending: Vec<u64> = std::env::var("PENDING")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000]);
    for &n in &pending {
        pending_cost(n, now);
    }
    println!();
    println!("pending  | per-operation wall time, one thread");
    for &n in &sizes {
        engine_only(n, now);
        with_store(n, now);
    }
    println!();
    println!("the launch decision (Engine::poll_launch), pacing {DECISION_PACING} per target");
    for &n in &sizes {
        launch_decision(n, 1, now);
        launch_decision(n, 50, now);
    }
}

//! The store behaviour suite: every case runs against SQLite (a temporary file) and
//! PostgreSQL (a database of its own on 127.0.0.1:5432, created and dropped per case).
//!
//! Where no PostgreSQL answers, the PostgreSQL cases print why they were skipped and pass
//! (see [`TestDb`]).

use chrono::{DateTime, Utc};

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::testing::TestDb;
use super::*;
use crate::callback::engine::{Engine, RegisterRequest, TargetConfig, Write};
use crate::callback::model::{AttemptResult, Status};
use crate::callback::record::{CallRecord, InboundCall, Outcome, RecordEntry};
use crate::callback::{CallbackSettings, Refusal};

pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-14T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) fn engine() -> Engine {
    let settings = CallbackSettings {
        organization: Some("acme".into()),
        ..CallbackSettings::default()
    };
    let mut e = Engine::new(
        vec![TargetConfig {
            id: "billing".into(),
            name: "Billing".into(),
            settings,
        }],
        3,
    );
    e.set_dialling(true);
    e
}

pub(crate) fn drain(e: &mut Engine) -> Vec<Write> {
    std::iter::from_fn(|| e.poll_write()).collect()
}

pub(crate) fn register(e: &mut Engine, n: u32) -> Callback {
    let mut user_data = serde_json::Map::new();
    user_data.insert("account".into(), serde_json::json!({"id": n, "vip": true}));
    e.handle_register(
        t0(),
        RegisterRequest {
            call_target: "billing".into(),
            number: format!("+1555000{n:04}"),
            user_data,
            sip_headers: vec![("User-to-User".into(), format!("{n:04x};encoding=hex"))],
            channel: Some("ivr".into()),
            inbound: n.is_multiple_of(2).then(|| InboundCall {
                ani: Some("+15557654321".into()),
                dialled: "+15550001000".into(),
                created_at: t0() - chrono::Duration::seconds(40),
                registration_duration_secs: Some(35),
                metadata: serde_json::json!({"User-to-User": "é", "User-to-User.raw": "c3a9;encoding=hex"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            }),
            ..RegisterRequest::default()
        },
    )
    .unwrap()
    .callback
}

pub(crate) fn entry(org: &str, id: &str, ended: &str) -> Write {
    let ended = DateTime::parse_from_rfc3339(ended)
        .unwrap()
        .with_timezone(&Utc);
    let mut record = CallRecord::blank(id.into(), ended, ended, Outcome::Held);
    record.call_target_id = Some("billing".into());
    Write::Record(Box::new(RecordEntry {
        organization: org.into(),
        record,
    }))
}

/// A store under test, with raw SQL for what the store itself never does (counting rows,
/// corrupting one).
trait Raw: Store {
    fn exec(&mut self, sql: &str);
    fn count(&mut self, sql: &str) -> i64;
}

impl Raw for SqliteStore {
    fn exec(&mut self, sql: &str) {
        self.conn_for_tests().execute_batch(sql).unwrap();
    }
    fn count(&mut self, sql: &str) -> i64 {
        self.conn_for_tests()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }
}

impl Raw for PostgresStore {
    fn exec(&mut self, sql: &str) {
        self.execute_raw(sql).unwrap();
    }
    fn count(&mut self, sql: &str) -> i64 {
        self.count_raw(sql).unwrap()
    }
}

/// One behaviour case on both stores: `$case(open)` where `open()` opens the case's store
/// again (same file, same database).
macro_rules! both {
    ($case:ident) => {
        mod $case {
            #[test]
            fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let open = || super::SqliteStore::open(dir.path()).unwrap();
                super::$case(&open);
            }

            #[test]
            fn postgres() {
                if let Some(db) = super::TestDb::create(stringify!($case)) {
                    super::$case(&|| super::PostgresStore::open(db.url()).unwrap());
                }
            }
        }
    };
}

fn round_trip<S: Raw>(open: &dyn Fn() -> S) {
    let mut e = engine();
    let a = register(&mut e, 1);
    let b = register(&mut e, 2);
    let _ = e.handle_register(
        t0(),
        RegisterRequest {
            call_target: "billing".into(),
            number: "junk".into(),
            ..RegisterRequest::default()
        },
    );
    e.poll_launch(t0()).unwrap();
    {
        let mut s = open();
        s.apply(&drain(&mut e)).unwrap();
    }
    let mut s = open();
    let snap = s.load().unwrap();
    assert_eq!(snap.max_seq, b.seq);
    assert_eq!(snap.callbacks.len(), 2);
    let got_a = &snap.callbacks[0];
    assert_eq!(got_a.status, Status::InProgress);
    assert_eq!(got_a.attempts, 1);
    assert!(got_a.punctuality.is_some());
    assert_eq!(snap.callbacks[1], b, "every field survives");
    assert!(b.inbound.is_some() && got_a.inbound.is_none());
    assert_eq!(s.get(&a.id).unwrap().unwrap().user_data, a.user_data);
    assert_eq!(s.get("nope").unwrap(), None);
    let outcome = Refusal::InvalidNumber.as_str();
    assert_eq!(s.count("SELECT COUNT(*) FROM refusals"), 1);
    assert_eq!(
        s.count(&format!(
            "SELECT COUNT(*) FROM refusals WHERE outcome = '{outcome}'"
        )),
        1
    );
}
both!(round_trip);

fn finished_callbacks_are_kept_but_not_loaded<S: Raw>(open: &dyn Fn() -> S) {
    let mut s = open();
    let mut e = engine();
    let a = register(&mut e, 1);
    e.poll_launch(t0()).unwrap();
    e.handle_agent_connected(t0(), &a.id).unwrap();
    e.handle_attempt_ended(t0(), &a.id, AttemptResult::Completed)
        .unwrap();
    s.apply(&drain(&mut e)).unwrap();
    let snap = s.load().unwrap();
    assert!(snap.callbacks.is_empty());
    assert_eq!(snap.max_seq, a.seq, "sequence numbers are never reused");
    assert_eq!(snap.estimators.len(), 1);
    let done = s.get(&a.id).unwrap().unwrap();
    assert_eq!(done.status, Status::Completed);
    assert_eq!(done.finished_at, Some(t0()));
    assert_eq!(
        s.count("SELECT COUNT(*) FROM attempts WHERE result = 'completed'"),
        1
    );
}
both!(finished_callbacks_are_kept_but_not_loaded);

fn a_failed_batch_writes_nothing<S: Raw>(open: &dyn Fn() -> S) {
    let mut s = open();
    let mut e = engine();
    register(&mut e, 1);
    let mut w = drain(&mut e);
    w.push(entry("acme", "r1", "2026-01-14T03:00:00Z"));
    let mut dup = match &w[0] {
        Write::Callback(c) => c.clone(),
        _ => unreachable!(),
    };
    dup.id = "other".into(); // same seq: violates UNIQUE(seq)
    w.push(Write::Callback(dup));
    assert!(matches!(s.apply(&w), Err(StoreError::Backend { .. })));
    assert!(s.load().unwrap().callbacks.is_empty());
    assert_eq!(s.count("SELECT COUNT(*) FROM call_records"), 0);
    // The store is usable again at once.
    w.pop();
    s.apply(&w).unwrap();
    assert_eq!(s.load().unwrap().callbacks.len(), 1);
}
both!(a_failed_batch_writes_nothing);

fn corrupt_rows_are_reported_not_panicked_on<S: Raw>(open: &dyn Fn() -> S) {
    let mut s = open();
    let mut e = engine();
    let a = register(&mut e, 1);
    s.apply(&drain(&mut e)).unwrap();
    s.exec(&format!(
        "UPDATE callbacks SET user_data = 'nope' WHERE id = '{}'",
        a.id
    ));
    assert!(matches!(s.load(), Err(StoreError::Corrupt { .. })));
    s.exec("UPDATE callbacks SET user_data = '{}', kind = 'weird'");
    assert!(matches!(s.get(&a.id), Err(StoreError::Corrupt { .. })));
}
both!(corrupt_rows_are_reported_not_panicked_on);

fn old_refusals_are_pruned<S: Raw>(open: &dyn Fn() -> S) {
    let mut s = open();
    let mut e = engine();
    for _ in 0..3 {
        let _ = e.handle_register(
            t0(),
            RegisterRequest {
                call_target: "billing".into(),
                number: "x".into(),
                ..RegisterRequest::default()
            },
        );
    }
    s.apply(&drain(&mut e)).unwrap();
    assert_eq!(s.prune_refusals(t0()).unwrap(), 0);
    assert_eq!(
        s.prune_refusals(t0() + chrono::Duration::seconds(1))
            .unwrap(),
        3
    );
}
both!(old_refusals_are_pruned);

fn all_pages(
    s: &mut dyn Store,
    org: &str,
    from: &str,
    to: &str,
    limit: usize,
) -> (Vec<String>, usize) {
    let at = |v: &str| DateTime::parse_from_rfc3339(v).unwrap().with_timezone(&Utc);
    let (mut ids, mut pages, mut after) = (vec![], 0, None);
    loop {
        let p = s
            .records_page(org, at(from), at(to), after.as_ref(), limit)
            .unwrap();
        pages += 1;
        for r in &p.records {
            let v: serde_json::Value = serde_json::from_str(r).unwrap();
            ids.push(v["id"].as_str().unwrap().to_owned());
        }
        match p.next {
            Some(c) => after = Some(c),
            None => return (ids, pages),
        }
    }
}

fn call_records_are_paged_by_hour_and_organization<S: Raw>(open: &dyn Fn() -> S) {
    let mut s = open();
    let mut w = vec![
        entry("acme", "before", "2026-01-14T02:59:59.999Z"),
        entry("acme", "first", "2026-01-14T03:00:00Z"),
        entry("acme", "last", "2026-01-14T03:59:59.999Z"),
        entry("acme", "after", "2026-01-14T04:00:00Z"),
        entry("globex", "theirs", "2026-01-14T03:30:00Z"),
    ];
    // Five with the same endedAt: the id breaks the tie, bytewise ('M' < 'm'), across
    // page boundaries.
    for id in ["m5", "m1", "m3", "M2", "m4"] {
        w.push(entry("acme", id, "2026-01-14T03:30:00Z"));
    }
    s.apply(&w).unwrap();
    let window = ("2026-01-14T03:00:00Z", "2026-01-14T04:00:00Z");
    let want = ["first", "M2", "m1", "m3", "m4", "m5", "last"];
    for limit in [1, 2, 3, 7, 500] {
        let (ids, pages) = all_pages(&mut s, "acme", window.0, window.1, limit);
        assert_eq!(ids, want, "limit {limit}");
        assert_eq!(pages, 7 / limit + 1, "limit {limit}");
    }
    let (ids, _) = all_pages(&mut s, "globex", window.0, window.1, 500);
    assert_eq!(ids, ["theirs"]);
    let (ids, _) = all_pages(&mut s, "nobody", window.0, window.1, 500);
    assert!(ids.is_empty());
    // Writing a record again replaces it (the dialler may complete a record).
    s.apply(&[entry("acme", "first", "2026-01-14T05:00:00Z")])
        .unwrap();
    let (ids, _) = all_pages(&mut s, "acme", window.0, window.1, 500);
    assert_eq!(ids[0], "M2");
}
both!(call_records_are_paged_by_hour_and_organization);

/// A batch of many writes (pipelined on PostgreSQL) lands whole and in order: the last
/// write of a callback wins.
fn a_large_batch_lands_whole_and_in_order<S: Raw>(open: &dyn Fn() -> S) {
    let mut s = open();
    let mut e = engine();
    let cbs: Vec<Callback> = (0..50).map(|n| register(&mut e, n)).collect();
    let mut w = drain(&mut e);
    for cb in &cbs {
        let mut later = cb.clone();
        later.status = Status::Canceled;
        w.push(Write::Callback(Box::new(later)));
    }
    for n in 0..400 {
        w.push(entry("acme", &format!("r{n}"), "2026-01-14T03:00:00Z"));
    }
    s.apply(&w).unwrap();
    assert!(s.load().unwrap().callbacks.is_empty(), "all canceled");
    assert_eq!(s.count("SELECT COUNT(*) FROM callbacks"), 50);
    assert_eq!(s.count("SELECT COUNT(*) FROM call_records"), 400);
}
both!(a_large_batch_lands_whole_and_in_order);

fn beat(id: &str, instance: i64, lead: bool) -> NodeBeat {
    NodeBeat {
        id: id.into(),
        instance,
        admin: Some(format!("127.0.0.1:{}", 9000 + instance)),
        lease: std::time::Duration::from_millis(400),
        lead,
        dials: false,
    }
}

/// One node leads; the other's writes are fenced off; when the leader stops beating, the
/// other takes over once the lease ends, and the old leader's writes are fenced off in
/// turn.
#[test]
fn postgres_one_node_leads_and_another_takes_over_when_its_lease_ends() {
    let Some(db) = TestDb::create("leadership") else {
        return;
    };
    let (mut a, mut b) = (
        PostgresStore::open(db.url()).unwrap(),
        PostgresStore::open(db.url()).unwrap(),
    );
    let leader = a.heartbeat(&beat("a", 1, true)).unwrap();
    assert_eq!(
        (leader.me, leader.other, leader.live),
        (true, None, vec![1])
    );
    let follower = b.heartbeat(&beat("b", 2, true)).unwrap();
    assert!(!follower.me);
    let mut live = follower.live.clone();
    live.sort();
    assert_eq!(live, [1, 2], "both nodes beat within the lease");
    assert_eq!(
        follower.other,
        Some(("a".into(), Some("127.0.0.1:9001".into())))
    );
    let mut e = engine();
    register(&mut e, 1);
    let one = drain(&mut e);
    a.apply(&one).unwrap_or_else(|err| panic!("{err}"));
    register(&mut e, 2);
    let two = drain(&mut e);
    assert!(matches!(b.apply(&two), Err(StoreError::NotLeader)));
    // Renewed within its lease, the lead stays.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(a.heartbeat(&beat("a", 1, true)).unwrap().me);
    std::thread::sleep(std::time::Duration::from_millis(250));
    assert!(!b.heartbeat(&beat("b", 2, true)).unwrap().me);
    // a goes silent: after the lease, b leads.
    std::thread::sleep(std::time::Duration::from_millis(450));
    let took = b.heartbeat(&beat("b", 2, true)).unwrap();
    assert_eq!(
        (took.me, took.live),
        (true, vec![2]),
        "a is no longer alive"
    );
    assert!(matches!(a.apply(&two), Err(StoreError::NotLeader)));
    b.apply(&two).unwrap();
    assert_eq!(b.load().unwrap().callbacks.len(), 2);
    let back = a.heartbeat(&beat("a", 1, true)).unwrap();
    assert_eq!(
        (back.me, back.other.map(|o| o.0)),
        (false, Some("b".to_string()))
    );
}

/// A draining node lets go of the lead at once: the next node's heartbeat takes it.
#[test]
fn postgres_a_draining_leader_lets_go_at_once() {
    let Some(db) = TestDb::create("drain_lead") else {
        return;
    };
    let (mut a, mut b) = (
        PostgresStore::open(db.url()).unwrap(),
        PostgresStore::open(db.url()).unwrap(),
    );
    let lease = std::time::Duration::from_secs(60);
    let long = |id: &str, instance, lead| NodeBeat {
        lease,
        ..beat(id, instance, lead)
    };
    assert!(a.heartbeat(&long("a", 1, true)).unwrap().me);
    assert!(!b.heartbeat(&long("b", 2, true)).unwrap().me);
    let gone = a.heartbeat(&long("a", 1, false)).unwrap();
    assert!(!gone.me);
    assert!(
        b.heartbeat(&long("b", 2, true)).unwrap().me,
        "no wait for the lease"
    );
    // A restarted node is a new instance: it does not inherit its predecessor's lead.
    let mut a2 = PostgresStore::open(db.url()).unwrap();
    assert!(!a2.heartbeat(&long("a", 3, true)).unwrap().me);
}

#[test]
fn postgres_a_newer_schema_is_refused() {
    let Some(db) = TestDb::create("newer_schema") else {
        return;
    };
    {
        let mut s = PostgresStore::open(db.url()).unwrap();
        assert_eq!(s.schema_version().unwrap(), 3);
        s.exec("UPDATE holdless_schema SET version = 99");
    }
    let err = PostgresStore::open(db.url()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NewerSchema {
                found: 99,
                supported: 3
            }
        ),
        "{err}"
    );
}

/// Sessions cut under the store (a restarted server, a failover): the next ping reports
/// the failure or reconnects, nothing acknowledged is lost.
#[test]
fn postgres_cut_sessions_are_reconnected() {
    let Some(db) = TestDb::create("cut_sessions") else {
        return;
    };
    let mut s = PostgresStore::open(db.url()).unwrap();
    let mut e = engine();
    let a = register(&mut e, 1);
    s.apply(&drain(&mut e)).unwrap();
    db.terminate_sessions();
    // The pool's connections died with their sessions: at most one failed round.
    let mut ok = false;
    for _ in 0..3 {
        if s.ping().is_ok() {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ok, "the store reconnects");
    let b = register(&mut e, 2);
    s.apply(&drain(&mut e)).unwrap();
    let ids: Vec<String> = s
        .load()
        .unwrap()
        .callbacks
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [a.id, b.id]);
}

#[test]
fn store_urls_are_parsed_and_passwords_never_shown() {
    let l = Location::parse("postgres://holdless:s3cret@db.example:6543/cb").unwrap();
    assert_eq!(l.to_string(), "postgres://holdless@db.example:6543/cb");
    assert!(!format!("{l:?}").contains("s3cret"));
    assert_eq!(
        Location::parse("sqlite://data/x.db").unwrap(),
        Location::Sqlite("data/x.db".into())
    );
    assert!(Location::parse("sqlite://").is_err());
    assert!(Location::parse("mysql://x").is_err());
    assert!(Location::parse("postgres://x:notaport/db").is_err());
}

/// The heartbeat tells each node which other live nodes take launches: those that say
/// they dial and have an admin address, not itself, not one whose heartbeat is stale.
#[test]
fn postgres_the_heartbeat_names_the_other_nodes_that_dial() {
    let Some(db) = TestDb::create("diallers") else {
        return;
    };
    let mut stores: Vec<PostgresStore> = (0..3)
        .map(|_| PostgresStore::open(db.url()).unwrap())
        .collect();
    let dialling = |id: &str, instance| NodeBeat {
        dials: true,
        ..beat(id, instance, true)
    };
    stores[0].heartbeat(&dialling("a", 1)).unwrap();
    stores[1].heartbeat(&dialling("b", 2)).unwrap();
    stores[2].heartbeat(&beat("c", 3, true)).unwrap(); // takes no launches
    let seen = stores[0].heartbeat(&dialling("a", 1)).unwrap();
    assert!(seen.me);
    assert_eq!(
        seen.diallers,
        vec![crate::store::Dialler {
            instance: 2,
            admin: "127.0.0.1:9002".into()
        }]
    );
    let from_b = stores[1].heartbeat(&dialling("b", 2)).unwrap();
    assert_eq!(
        from_b
            .diallers
            .iter()
            .map(|d| d.instance)
            .collect::<Vec<_>>(),
        [1]
    );
    // b stops dialling (it drains); then a, alone beating, sees no dialler at all.
    stores[1].heartbeat(&beat("b", 2, false)).unwrap();
    assert!(stores[0]
        .heartbeat(&dialling("a", 1))
        .unwrap()
        .diallers
        .is_empty());
    stores[1].heartbeat(&dialling("b", 2)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(450));
    assert!(
        stores[0]
            .heartbeat(&dialling("a", 1))
            .unwrap()
            .diallers
            .is_empty(),
        "b's heartbeat is older than the lease"
    );
}

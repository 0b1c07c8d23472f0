//! The shared store: one PostgreSQL database (`store.url = "postgres://…"`).
//!
//! * tokio-postgres with a deadpool pool, on a runtime of the store's own (one thread,
//!   `store-pg`): the [`Store`] trait stays synchronous for the callback service's thread,
//!   which waits on each operation (at most [`OP_TIMEOUT`]) as it waits on SQLite's fsync.
//! * A batch is one transaction whose statements are pipelined on one connection (sent
//!   without waiting for each answer), committed with `synchronous_commit = on` whatever
//!   the server's default: a registration is acknowledged only once PostgreSQL has it on
//!   disk.
//! * Migrations (`migrations/postgres/*.sql`) run in order at start-up under an advisory
//!   lock (two nodes starting together migrate once), tracked in `holdless_schema`; a
//!   database from a newer holdless is refused.
//! * Several nodes share a database: each announces itself ([`Store::heartbeat`]), one
//!   leads (a lease in the `leader` row, on the database's clock), and a batch is written
//!   only while its node still leads (the `leader` row is checked and share-locked in the
//!   batch's own transaction: a node that lost the lead cannot overwrite the new leader).

use std::future::Future;
use std::str::FromStr;
use std::sync::mpsc::sync_channel;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::row::{from_ms, ms, CallbackRow, COLUMNS};
use super::{
    Dialler, Leadership, NodeBeat, RecordCursor, RecordPage, Snapshot, Store, StoreError,
    MAX_RECORD_PAGE,
};
use crate::callback::ecbt::Estimator;
use crate::callback::engine::Write;
use crate::callback::model::Callback;

/// Migrations, in order; version N is the N-th entry.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_init.sql"),
    include_str!("migrations/postgres/0002_cluster.sql"),
    include_str!("migrations/postgres/0003_diallers.sql"),
];

/// Advisory lock key held while migrating ("holdless" + 'm').
const MIGRATION_LOCK: i64 = 0x686f_6c64_6c65_736d;

/// Longest a store operation may take before it counts as failed (the store is then
/// reported down and the batch unacknowledged, as with any other failure).
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a new connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool.
const POOL_SIZE: usize = 4;

/// A PostgreSQL URL with its password hidden (for logs and errors).
pub fn redacted(url: &str) -> String {
    match tokio_postgres::Config::from_str(url) {
        Ok(c) => {
            let user = c.get_user().unwrap_or("");
            let host = c
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_default();
            let port = c.get_ports().first().copied().unwrap_or(5432);
            let db = c.get_dbname().unwrap_or(user);
            format!("postgres://{user}@{host}:{port}/{db}")
        }
        Err(_) => "postgres://(unparsable)".into(),
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    shown: String,
    /// The instance whose lead every batch checks (set by the first heartbeat).
    fence: Option<i64>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.shown)
            .finish()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // The runtime may be dropped from an async context (tests), where only a
        // background shutdown is allowed.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The driver's error with its causes ("error connecting to server: Connection refused"),
/// or the server's SQLSTATE and message.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.code().code(), db.message());
    }
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn backend(op: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::Backend {
        op,
        message: describe(&e),
    }
}

fn pool_error(op: &'static str) -> impl Fn(deadpool_postgres::PoolError) -> StoreError {
    move |e| StoreError::Backend {
        op,
        message: e.to_string(),
    }
}

/// One statement of a batch with its owned parameters.
struct Owned {
    sql: &'static str,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

fn upsert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let cols: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
        let values: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let set: Vec<String> = cols[1..]
            .iter()
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect();
        format!(
            "INSERT INTO callbacks ({COLUMNS}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}",
            values.join(", "),
            set.join(", ")
        )
    })
}

fn json_error(e: serde_json::Error) -> StoreError {
    StoreError::Backend {
        op: "encoding",
        message: e.to_string(),
    }
}

/// A write as a statement with owned values (moved into the store's runtime).
fn owned(w: &Write) -> Result<Owned, StoreError> {
    Ok(match w {
        Write::Callback(cb) => {
            let r = CallbackRow::encode(cb).map_err(json_error)?;
            Owned {
                sql: upsert_sql(),
                params: vec![
                    Box::new(r.id),
                    Box::new(r.seq),
                    Box::new(r.organization),
                    Box::new(r.call_target),
                    Box::new(r.widget),
                    Box::new(r.number),
                    Box::new(r.kind),
                    Box::new(r.status),
                    Box::new(r.source),
                    Box::new(r.channel),
                    Box::new(r.user_data),
                    Box::new(r.sip_headers),
                    Box::new(r.requested_at),
                    Box::new(r.estimated_for),
                    Box::new(r.ecbt_secs),
                    Box::new(r.due_at),
                    Box::new(r.appointment),
                    Box::new(r.attempts),
                    Box::new(r.failed_busy),
                    Box::new(r.failed_no_answer),
                    Box::new(r.failed_voicemail),
                    Box::new(r.failed_error),
                    Box::new(r.last_result),
                    Box::new(r.launched_at),
                    Box::new(r.agent_connected_at),
                    Box::new(r.processed_at),
                    Box::new(r.punctuality_secs),
                    Box::new(r.was_punctual),
                    Box::new(r.estimate_accuracy),
                    Box::new(r.finished_at),
                    Box::new(r.inbound),
                    Box::new(r.retry_created_at),
                    Box::new(r.launched_by),
                ],
            }
        }
        Write::Attempt(a) => Owned {
            sql: "INSERT INTO attempts \
                  (callback_id, attempt, call_target, launched_at, agent_connected_at, ended_at, result) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7) \
                  ON CONFLICT (callback_id, attempt) DO UPDATE SET call_target = EXCLUDED.call_target, \
                  launched_at = EXCLUDED.launched_at, agent_connected_at = EXCLUDED.agent_connected_at, \
                  ended_at = EXCLUDED.ended_at, result = EXCLUDED.result",
            params: vec![
                Box::new(a.callback_id.clone()),
                Box::new(i64::from(a.attempt)),
                Box::new(a.call_target.clone()),
                Box::new(ms(a.launched_at)),
                Box::new(a.agent_connected_at.map(ms)),
                Box::new(ms(a.ended_at)),
                Box::new(a.result.as_str()),
            ],
        },
        Write::Refusal(r) => Owned {
            sql: "INSERT INTO refusals (at, call_target, widget, number, outcome, source) \
                  VALUES ($1, $2, $3, $4, $5, $6)",
            params: vec![
                Box::new(ms(r.at)),
                Box::new(r.call_target.clone()),
                Box::new(r.widget.clone()),
                Box::new(r.number.clone()),
                Box::new(r.outcome.as_str()),
                Box::new(r.source.as_str()),
            ],
        },
        Write::Record(e) => {
            let r = &e.record;
            Owned {
                sql: "INSERT INTO call_records (id, org, call_target, ended_at, record) \
                      VALUES ($1, $2, $3, $4, $5) \
                      ON CONFLICT (id) DO UPDATE SET org = EXCLUDED.org, \
                      call_target = EXCLUDED.call_target, ended_at = EXCLUDED.ended_at, \
                      record = EXCLUDED.record",
                params: vec![
                    Box::new(r.id.clone()),
                    Box::new(e.organization.clone()),
                    Box::new(r.call_target_id.clone().unwrap_or_default()),
                    Box::new(ms(r.ended_at)),
                    Box::new(serde_json::to_string(r).map_err(json_error)?),
                ],
            }
        }
        Write::Estimator { call_target, state } => Owned {
            sql: "INSERT INTO estimators (call_target, state) VALUES ($1, $2) \
                  ON CONFLICT (call_target) DO UPDATE SET state = EXCLUDED.state",
            params: vec![
                Box::new(call_target.clone()),
                Box::new(serde_json::to_string(state).map_err(json_error)?),
            ],
        },
    })
}

/// A `callbacks` row read in [`COLUMNS`] order.
fn decode(row: &Row) -> Result<Callback, StoreError> {
    let get = || -> Result<CallbackRow, tokio_postgres::Error> {
        Ok(CallbackRow {
            id: row.try_get(0)?,
            seq: row.try_get(1)?,
            organization: row.try_get(2)?,
            call_target: row.try_get(3)?,
            widget: row.try_get(4)?,
            number: row.try_get(5)?,
            kind: row.try_get(6)?,
            status: row.try_get(7)?,
            source: row.try_get(8)?,
            channel: row.try_get(9)?,
            user_data: row.try_get(10)?,
            sip_headers: row.try_get(11)?,
            requested_at: row.try_get(12)?,
            estimated_for: row.try_get(13)?,
            ecbt_secs: row.try_get(14)?,
            due_at: row.try_get(15)?,
            appointment: row.try_get(16)?,
            attempts: row.try_get(17)?,
            failed_busy: row.try_get(18)?,
            failed_no_answer: row.try_get(19)?,
            failed_voicemail: row.try_get(20)?,
            failed_error: row.try_get(21)?,
            last_result: row.try_get(22)?,
            launched_at: row.try_get(23)?,
            agent_connected_at: row.try_get(24)?,
            processed_at: row.try_get(25)?,
            punctuality_secs: row.try_get(26)?,
            was_punctual: row.try_get(27)?,
            estimate_accuracy: row.try_get(28)?,
            finished_at: row.try_get(29)?,
            inbound: row.try_get(30)?,
            retry_created_at: row.try_get(31)?,
            launched_by: row.try_get(32)?,
        })
    };
    get().map_err(backend("decoding a callback"))?.decode()
}

async fn migrate(pool: Pool) -> Result<(), StoreError> {
    let op = "migrating";
    let mut client = pool.get().await.map_err(pool_error(op))?;
    let tx = client.transaction().await.map_err(backend(op))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend(op))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS holdless_schema (version BIGINT NOT NULL)")
        .await
        .map_err(backend(op))?;
    let found: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM holdless_schema", &[])
        .await
        .map_err(backend(op))?
        .get(0);
    let supported = MIGRATIONS.len() as i64;
    if found > supported {
        return Err(StoreError::NewerSchema { found, supported });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        tx.batch_execute(sql).await.map_err(backend(op))?;
        tx.execute("DELETE FROM holdless_schema", &[])
            .await
            .map_err(backend(op))?;
        tx.execute(
            "INSERT INTO holdless_schema (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(backend(op))?;
        tracing::info!(version, "store schema migrated (PostgreSQL)");
    }
    tx.commit().await.map_err(backend(op))
}

impl PostgresStore {
    /// Connects to `url` and migrates the schema.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let shown = redacted(url);
        let open_err = |message: String| StoreError::Open {
            path: shown.clone(),
            message,
        };
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| open_err(e.to_string()))?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .options("-c synchronous_commit=on")
            .application_name("holdless");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-pg")
            .enable_all()
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(OP_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let store = PostgresStore {
            rt: Some(rt),
            pool,
            shown: shown.clone(),
            fence: None,
        };
        store
            .run(migrate(store.pool.clone()))
            .map_err(|e| match e {
                e @ StoreError::NewerSchema { .. } => e,
                e => open_err(e.to_string()),
            })?;
        Ok(store)
    }

    /// The URL, password hidden.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The schema version in the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            let op = "reading the schema version";
            let c = pool.get().await.map_err(pool_error(op))?;
            let row = c
                .query_one("SELECT COALESCE(MAX(version), 0) FROM holdless_schema", &[])
                .await
                .map_err(backend(op))?;
            Ok(row.get(0))
        })
    }

    /// Runs `fut` on the store's runtime and waits for it, at most [`OP_TIMEOUT`].
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = sync_channel(1);
        let rt = self
            .rt
            .as_ref()
            .expect("the runtime lives as long as the store");
        rt.spawn(async move {
            let r = match tokio::time::timeout(OP_TIMEOUT, fut).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Backend {
                    op: "waiting for PostgreSQL",
                    message: format!("no answer within {} s", OP_TIMEOUT.as_secs()),
                }),
            };
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Backend {
                op: "waiting for PostgreSQL",
                message: "the store's task ended without an answer".into(),
            })
        })
    }

    /// Runs `sql` as it is (tests: rows the store itself would never write).
    #[cfg(test)]
    pub(crate) fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let sql = sql.to_owned();
        self.run(async move {
            let c = pool.get().await.map_err(pool_error("raw"))?;
            c.batch_execute(&sql).await.map_err(backend("raw"))
        })
    }

    /// The one BIGINT `sql` selects (tests).
    #[cfg(test)]
    pub(crate) fn count_raw(&self, sql: &str) -> Result<i64, StoreError> {
        let pool = self.pool.clone();
        let sql = sql.to_owned();
        self.run(async move {
            let c = pool.get().await.map_err(pool_error("raw"))?;
            Ok(c.query_one(&sql, &[]).await.map_err(backend("raw"))?.get(0))
        })
    }
}

impl Store for PostgresStore {
    fn heartbeat(&mut self, me: &NodeBeat) -> Result<Leadership, StoreError> {
        self.fence = Some(me.instance);
        let pool = self.pool.clone();
        let me = me.clone();
        self.run(async move {
            let op = "the node heartbeat";
            let lease = i64::try_from(me.lease.as_millis()).unwrap_or(i64::MAX);
            let mut client = pool.get().await.map_err(pool_error(op))?;
            let tx = client.transaction().await.map_err(backend(op))?;
            tx.execute(
                "INSERT INTO nodes (id, instance, admin, started_at, heartbeat_at, wants_lead, dials) \
                 VALUES ($1, $2, $3, holdless_now_ms(), holdless_now_ms(), $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET instance = EXCLUDED.instance, \
                 admin = EXCLUDED.admin, heartbeat_at = EXCLUDED.heartbeat_at, \
                 wants_lead = EXCLUDED.wants_lead, dials = EXCLUDED.dials, started_at = CASE \
                 WHEN nodes.instance = EXCLUDED.instance THEN nodes.started_at \
                 ELSE EXCLUDED.started_at END",
                &[&me.id, &me.instance, &me.admin, &me.lead, &me.dials],
            )
            .await
            .map_err(backend(op))?;
            if me.lead {
                // Renew our lease, or take one that expired.
                tx.execute(
                    "INSERT INTO leader (one, node, instance, expires_at) \
                     VALUES (true, $1, $2, holdless_now_ms() + $3) \
                     ON CONFLICT (one) DO UPDATE SET node = EXCLUDED.node, \
                     instance = EXCLUDED.instance, expires_at = EXCLUDED.expires_at \
                     WHERE leader.instance = EXCLUDED.instance \
                     OR leader.expires_at <= holdless_now_ms()",
                    &[&me.id, &me.instance, &lease],
                )
                .await
                .map_err(backend(op))?;
            } else {
                // Draining: let go at once, so another node takes over now.
                tx.execute("DELETE FROM leader WHERE instance = $1", &[&me.instance])
                    .await
                    .map_err(backend(op))?;
            }
            let row = tx
                .query_opt(
                    "SELECT l.node, l.instance, n.admin FROM leader l \
                     LEFT JOIN nodes n ON n.id = l.node \
                     WHERE l.expires_at > holdless_now_ms()",
                    &[],
                )
                .await
                .map_err(backend(op))?;
            let rows = tx
                .query(
                    "SELECT instance, admin, dials FROM nodes \
                     WHERE heartbeat_at > holdless_now_ms() - $1 ORDER BY id",
                    &[&lease],
                )
                .await
                .map_err(backend(op))?;
            let live: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            let diallers: Vec<Dialler> = rows
                .iter()
                .filter(|r| r.get::<_, bool>(2) && r.get::<_, i64>(0) != me.instance)
                .filter_map(|r| {
                    Some(Dialler {
                        instance: r.get(0),
                        admin: r.get::<_, Option<String>>(1)?,
                    })
                })
                .collect();
            tx.commit().await.map_err(backend(op))?;
            Ok(match row {
                Some(r) if r.get::<_, i64>(1) == me.instance => Leadership {
                    live,
                    diallers,
                    ..Leadership::alone()
                },
                Some(r) => Leadership {
                    me: false,
                    other: Some((r.get(0), r.get(2))),
                    live,
                    diallers,
                },
                None => Leadership {
                    me: false,
                    other: None,
                    live,
                    diallers,
                },
            })
        })
    }

    fn apply(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let stmts = writes.iter().map(owned).collect::<Result<Vec<_>, _>>()?;
        let pool = self.pool.clone();
        let fence = self.fence;
        self.run(async move {
            let op = "writing";
            let mut client = pool.get().await.map_err(pool_error(op))?;
            let tx = client.transaction().await.map_err(backend(op))?;
            if let Some(instance) = fence {
                // Held until the commit: a takeover waits for this batch, and a node that
                // lost the lead writes nothing.
                let leads = tx
                    .query_opt(
                        "SELECT 1 FROM leader WHERE instance = $1 \
                         AND expires_at > holdless_now_ms() FOR SHARE",
                        &[&instance],
                    )
                    .await
                    .map_err(backend(op))?;
                if leads.is_none() {
                    let _ = tx.rollback().await;
                    return Err(StoreError::NotLeader);
                }
            }
            let mut prepared = Vec::with_capacity(stmts.len());
            for s in &stmts {
                prepared.push(tx.prepare_cached(s.sql).await.map_err(backend(op))?);
            }
            let params: Vec<Vec<&(dyn ToSql + Sync)>> = stmts
                .iter()
                .map(|s| {
                    s.params
                        .iter()
                        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                        .collect()
                })
                .collect();
            // Pipelined: every statement is sent before the first answer is awaited; the
            // connection keeps them in order.
            let sent = prepared
                .iter()
                .zip(&params)
                .map(|(st, p)| tx.execute(st, p.as_slice()));
            let done = futures_util::future::try_join_all(sent).await;
            match done {
                Ok(_) => tx.commit().await.map_err(backend("committing")),
                Err(e) => {
                    let _ = tx.rollback().await;
                    Err(backend(op)(e))
                }
            }
        })
    }

    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            let op = "loading";
            let c = pool.get().await.map_err(pool_error(op))?;
            let sql = format!(
                "SELECT {COLUMNS} FROM callbacks \
                 WHERE status IN ('pending', 'waitlisted', 'in_progress') ORDER BY seq"
            );
            let rows = c.query(&sql, &[]).await.map_err(backend(op))?;
            let callbacks = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
            let mut estimators = Vec::new();
            for r in c
                .query("SELECT call_target, state FROM estimators", &[])
                .await
                .map_err(backend("loading estimators"))?
            {
                let (t, json): (String, String) = (r.get(0), r.get(1));
                match serde_json::from_str::<Estimator>(&json) {
                    Ok(e) => estimators.push((t, e)),
                    Err(e) => {
                        tracing::warn!(call_target = %t, error = %e, "ignoring stored ECBT state")
                    }
                }
            }
            let max_seq: i64 = c
                .query_one("SELECT COALESCE(MAX(seq), 0)::BIGINT FROM callbacks", &[])
                .await
                .map_err(backend(op))?
                .get(0);
            Ok(Snapshot {
                callbacks,
                estimators,
                max_seq: u64::try_from(max_seq).unwrap_or(0),
            })
        })
    }

    fn get(&mut self, id: &str) -> Result<Option<Callback>, StoreError> {
        let pool = self.pool.clone();
        let id = id.to_owned();
        self.run(async move {
            let op = "reading a callback";
            let c = pool.get().await.map_err(pool_error(op))?;
            let sql = format!("SELECT {COLUMNS} FROM callbacks WHERE id = $1");
            let st = c.prepare_cached(&sql).await.map_err(backend(op))?;
            let row = c.query_opt(&st, &[&id]).await.map_err(backend(op))?;
            row.as_ref().map(decode).transpose()
        })
    }

    fn ping(&mut self) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            let op = "checking the store";
            let c = pool.get().await.map_err(pool_error(op))?;
            c.query_one("SELECT COUNT(*) FROM estimators", &[])
                .await
                .map_err(backend(op))?;
            Ok(())
        })
    }

    fn prune_refusals(&mut self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let pool = self.pool.clone();
        self.run(async move {
            let op = "pruning refusals";
            let c = pool.get().await.map_err(pool_error(op))?;
            let n = c
                .execute("DELETE FROM refusals WHERE at < $1", &[&ms(before)])
                .await
                .map_err(backend(op))?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn records_page(
        &mut self,
        org: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage, StoreError> {
        let limit = limit.clamp(1, MAX_RECORD_PAGE);
        let pool = self.pool.clone();
        let org = org.to_owned();
        let after = after.map(|c| (ms(c.ended_at), c.id.clone()));
        self.run(async move {
            let op = "reading call records";
            let c = pool.get().await.map_err(pool_error(op))?;
            let n = limit as i64;
            let (from, to) = (ms(from), ms(to));
            let rows = match &after {
                None => {
                    let st = c
                        .prepare_cached(
                            "SELECT id, ended_at, record FROM call_records \
                             WHERE org = $1 AND ended_at >= $2 AND ended_at < $3 \
                             ORDER BY ended_at, id LIMIT $4",
                        )
                        .await
                        .map_err(backend(op))?;
                    c.query(&st, &[&org, &from, &to, &n]).await
                }
                Some((ended, id)) => {
                    let st = c
                        .prepare_cached(
                            "SELECT id, ended_at, record FROM call_records \
                             WHERE org = $1 AND ended_at >= $2 AND ended_at < $3 \
                             AND (ended_at, id) > ($4, $5) \
                             ORDER BY ended_at, id LIMIT $6",
                        )
                        .await
                        .map_err(backend(op))?;
                    c.query(&st, &[&org, &from, &to, ended, id, &n]).await
                }
            }
            .map_err(backend(op))?;
            let next = match rows.last() {
                Some(r) if rows.len() == limit => Some(RecordCursor {
                    ended_at: from_ms(r.get(1)),
                    id: r.get(0),
                }),
                _ => None,
            };
            Ok(RecordPage {
                records: rows.iter().map(|r| r.get(2)).collect(),
                next,
            })
        })
    }

    /// PostgreSQL stores hold Mindful's meanings from their first version: nothing was
    /// stored in the old meaning of `wasPunctual`, so nothing is rechecked.
    fn recheck_punctuality(
        &mut self,
        _tolerance: &dyn Fn(&str) -> Option<u64>,
    ) -> Result<usize, StoreError> {
        Ok(0)
    }
}

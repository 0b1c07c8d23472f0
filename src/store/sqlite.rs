//! The embedded store: one SQLite file, `holdless.sqlite3` in the data directory.
//!
//! * WAL journal with `synchronous = FULL`: a commit is on disk (WAL fsynced) before
//!   [`Store::apply`] returns, so an acknowledged registration survives `kill -9` and a
//!   power cut. NORMAL would only survive a process crash. The fsync cost is shared by
//!   every write of a batch (the callback service group-commits).
//! * `locking_mode = EXCLUSIVE`: a second holdless on the same data directory fails at
//!   start-up instead of dialling the same callbacks twice.
//! * Schema migrations (`migrations/*.sql`) run in order at start-up, each in a
//!   transaction, tracked by `PRAGMA user_version`; a database from a newer holdless is
//!   refused.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::row::{from_ms, ms, CallbackRow, COLUMNS};
use super::{RecordCursor, RecordPage, Snapshot, Store, StoreError, MAX_RECORD_PAGE};
use crate::callback::ecbt::Estimator;
use crate::callback::engine::{AttemptRecord, RefusalRecord, Write};
use crate::callback::model::Callback;
use crate::callback::record::RecordEntry;

/// The database file's name in the data directory.
pub const FILE_NAME: &str = "holdless.sqlite3";

/// How long a statement waits for a lock before failing (only a second process, which
/// the exclusive lock refuses anyway, could hold one).
pub const BUSY_TIMEOUT_MS: i64 = 5000;

/// Migrations, in order; version N is the N-th entry.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_init.sql"),
    include_str!("migrations/sqlite/0002_call_records.sql"),
    include_str!("migrations/sqlite/0003_mindful_values.sql"),
    include_str!("migrations/sqlite/0004_attempt_created_at.sql"),
    include_str!("migrations/sqlite/0005_launched_by.sql"),
];

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// (device, inode) of the file at open: a replaced or deleted file is detected.
    identity: (u64, u64),
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn backend(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Backend {
        op,
        message: e.to_string(),
    }
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with_busy_timeout(
            data_dir,
            std::time::Duration::from_millis(BUSY_TIMEOUT_MS as u64),
        )
    }

    /// Opens (creating if needed) the store in the file `path` and migrates it.
    pub fn open_file(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_file_with_busy_timeout(
            path,
            std::time::Duration::from_millis(BUSY_TIMEOUT_MS as u64),
        )
    }

    /// [`SqliteStore::open`], waiting at most `busy` for another process's lock.
    pub fn open_with_busy_timeout(
        data_dir: &Path,
        busy: std::time::Duration,
    ) -> Result<SqliteStore, StoreError> {
        Self::open_file_with_busy_timeout(&data_dir.join(FILE_NAME), busy)
    }

    fn open_file_with_busy_timeout(
        path: &Path,
        busy: std::time::Duration,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let shown = path.display().to_string();
        let open_err = |message: String| StoreError::Open {
            path: shown.clone(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        }
        let conn = Connection::open(&path).map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(busy)
            .map_err(|e| open_err(e.to_string()))?;
        let locked = " (is another holdless using this data directory?)";
        for (k, v) in [("locking_mode", "EXCLUSIVE"), ("journal_mode", "WAL")] {
            conn.pragma_update_and_check(None, k, v, |_| Ok(()))
                .map_err(|e| open_err(format!("PRAGMA {k}={v}: {e}{locked}")))?;
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| open_err(format!("PRAGMA synchronous=FULL: {e}")))?;
        let mut store = SqliteStore {
            conn,
            identity: identity(&path).unwrap_or((0, 0)),
            path,
        };
        // Takes the exclusive lock now, not at the first write.
        store
            .conn
            .execute_batch("BEGIN IMMEDIATE; COMMIT;")
            .map_err(|e| open_err(format!("{e}{locked}")))?;
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let supported = MIGRATIONS.len() as i64;
        let found: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend("reading the schema version"))?;
        if found > supported {
            return Err(StoreError::NewerSchema { found, supported });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = i as i64 + 1;
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend("starting a migration"))?;
            tx.execute_batch(sql).map_err(backend("migrating"))?;
            tx.pragma_update(None, "user_version", version)
                .map_err(backend("setting the schema version"))?;
            tx.commit().map_err(backend("committing a migration"))?;
            tracing::info!(version, path = %self.path.display(), "store schema migrated");
        }
        Ok(())
    }

    /// The connection (tests: rows the store itself would never write).
    #[cfg(test)]
    pub(crate) fn conn_for_tests(&self) -> &Connection {
        &self.conn
    }

    /// The schema version in the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend("reading the schema version"))
    }

    fn write_one(tx: &rusqlite::Transaction, w: &Write) -> rusqlite::Result<()> {
        match w {
            Write::Callback(cb) => upsert(tx, cb),
            Write::Attempt(a) => attempt(tx, a),
            Write::Refusal(r) => refusal(tx, r),
            Write::Record(e) => record(tx, e),
            Write::Estimator { call_target, state } => {
                let json = to_json(state)?;
                tx.prepare_cached(
                    "INSERT INTO estimators (call_target, state) VALUES (?1, ?2) \
                     ON CONFLICT(call_target) DO UPDATE SET state = excluded.state",
                )?
                .execute(params![call_target, json])?;
                Ok(())
            }
        }
    }
}

/// `INSERT … ON CONFLICT(id) DO UPDATE` every column but `id` (not `INSERT OR REPLACE`,
/// which would silently delete another row that clashes on `seq`).
fn upsert_sql() -> String {
    let cols: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
    let values: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let set: Vec<String> = cols[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO callbacks ({COLUMNS}) VALUES ({}) ON CONFLICT(id) DO UPDATE SET {}",
        values.join(", "),
        set.join(", ")
    )
}

fn upsert(tx: &rusqlite::Transaction, cb: &Callback) -> rusqlite::Result<()> {
    let r = CallbackRow::encode(cb)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached(&upsert_sql())?.execute(params![
        r.id,
        r.seq,
        r.organization,
        r.call_target,
        r.widget,
        r.number,
        r.kind,
        r.status,
        r.source,
        r.channel,
        r.user_data,
        r.sip_headers,
        r.requested_at,
        r.estimated_for,
        r.ecbt_secs,
        r.due_at,
        r.appointment,
        r.attempts,
        r.failed_busy,
        r.failed_no_answer,
        r.failed_voicemail,
        r.failed_error,
        r.last_result,
        r.launched_at,
        r.agent_connected_at,
        r.processed_at,
        r.punctuality_secs,
        r.was_punctual,
        r.estimate_accuracy,
        r.finished_at,
        r.inbound,
        r.retry_created_at,
        r.launched_by,
    ])?;
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn attempt(tx: &rusqlite::Transaction, a: &AttemptRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO attempts \
         (callback_id, attempt, call_target, launched_at, agent_connected_at, ended_at, result) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        a.callback_id,
        a.attempt,
        a.call_target,
        ms(a.launched_at),
        a.agent_connected_at.map(ms),
        ms(a.ended_at),
        a.result.as_str(),
    ])?;
    Ok(())
}

fn record(tx: &rusqlite::Transaction, e: &RecordEntry) -> rusqlite::Result<()> {
    let r = &e.record;
    let json = to_json(r)?;
    tx.prepare_cached(
        "INSERT INTO call_records (id, org, call_target, ended_at, record) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(id) DO UPDATE SET org = excluded.org, call_target = excluded.call_target, \
         ended_at = excluded.ended_at, record = excluded.record",
    )?
    .execute(params![
        r.id,
        e.organization,
        r.call_target_id.as_deref().unwrap_or(""),
        ms(r.ended_at),
        json,
    ])?;
    Ok(())
}

fn refusal(tx: &rusqlite::Transaction, r: &RefusalRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO refusals (at, call_target, widget, number, outcome, source) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        ms(r.at),
        r.call_target,
        r.widget,
        r.number,
        r.outcome.as_str(),
        r.source.as_str(),
    ])?;
    Ok(())
}

/// A row as stored, before the text columns are checked.
fn decode(row: &Row) -> rusqlite::Result<Result<Callback, StoreError>> {
    Ok(CallbackRow {
        id: row.get(0)?,
        seq: row.get(1)?,
        organization: row.get(2)?,
        call_target: row.get(3)?,
        widget: row.get(4)?,
        number: row.get(5)?,
        kind: row.get(6)?,
        status: row.get(7)?,
        source: row.get(8)?,
        channel: row.get(9)?,
        user_data: row.get(10)?,
        sip_headers: row.get(11)?,
        requested_at: row.get(12)?,
        estimated_for: row.get(13)?,
        ecbt_secs: row.get(14)?,
        due_at: row.get(15)?,
        appointment: row.get(16)?,
        attempts: row.get(17)?,
        failed_busy: row.get(18)?,
        failed_no_answer: row.get(19)?,
        failed_voicemail: row.get(20)?,
        failed_error: row.get(21)?,
        last_result: row.get(22)?,
        launched_at: row.get(23)?,
        agent_connected_at: row.get(24)?,
        processed_at: row.get(25)?,
        punctuality_secs: row.get(26)?,
        was_punctual: row.get(27)?,
        estimate_accuracy: row.get(28)?,
        finished_at: row.get(29)?,
        inbound: row.get(30)?,
        retry_created_at: row.get(31)?,
        launched_by: row.get(32)?,
    }
    .decode())
}

impl Store for SqliteStore {
    fn recheck_punctuality(
        &mut self,
        tolerance: &dyn Fn(&str) -> Option<u64>,
    ) -> Result<usize, StoreError> {
        let op = "rechecking wasPunctual";
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend(op))?;
        let rows: Vec<(String, String, String, i64)> = {
            let mut stmt = tx
                .prepare("SELECT kind, id, call_target, early_secs FROM punctuality_recheck")
                .map_err(backend(op))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(backend(op))?;
            rows.collect::<rusqlite::Result<_>>().map_err(backend(op))?
        };
        let mut unpunctual = 0;
        for (kind, id, target, early) in rows {
            let Some(tol) = tolerance(&target) else {
                continue;
            };
            if early.unsigned_abs() > tol {
                unpunctual += 1;
                let sql = if kind == "callback" {
                    "UPDATE callbacks SET was_punctual = 0 WHERE id = ?1"
                } else {
                    "UPDATE call_records SET record = json_set(record, '$.wasPunctual', json('false')) \
                     WHERE id = ?1"
                };
                tx.execute(sql, [&id]).map_err(backend(op))?;
            }
            tx.execute(
                "DELETE FROM punctuality_recheck WHERE kind = ?1 AND id = ?2",
                [&kind, &id],
            )
            .map_err(backend(op))?;
        }
        tx.commit().map_err(backend(op))?;
        Ok(unpunctual)
    }

    fn apply(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        self.ping()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend("starting a transaction"))?;
        for w in writes {
            Self::write_one(&tx, w).map_err(backend("writing"))?;
        }
        tx.commit().map_err(backend("committing"))
    }

    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM callbacks \
             WHERE status IN ('pending', 'waitlisted', 'in_progress') ORDER BY seq"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(backend("loading"))?;
        let rows = stmt.query_map([], decode).map_err(backend("loading"))?;
        let mut callbacks = Vec::new();
        for r in rows {
            callbacks.push(r.map_err(backend("loading"))??);
        }
        drop(stmt);
        let mut stmt = self
            .conn
            .prepare("SELECT call_target, state FROM estimators")
            .map_err(backend("loading estimators"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(backend("loading estimators"))?;
        let mut estimators = Vec::new();
        for r in rows {
            let (t, json) = r.map_err(backend("loading estimators"))?;
            match serde_json::from_str::<Estimator>(&json) {
                Ok(e) => estimators.push((t, e)),
                // A bad estimator only costs what was learned: start afresh.
                Err(e) => {
                    tracing::warn!(call_target = %t, error = %e, "ignoring stored ECBT state")
                }
            }
        }
        drop(stmt);
        let max_seq: i64 = self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM callbacks", [], |r| {
                r.get(0)
            })
            .map_err(backend("loading"))?;
        Ok(Snapshot {
            callbacks,
            estimators,
            max_seq: u64::try_from(max_seq).unwrap_or(0),
        })
    }

    fn get(&mut self, id: &str) -> Result<Option<Callback>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM callbacks WHERE id = ?1");
        let row = self
            .conn
            .prepare_cached(&sql)
            .map_err(backend("reading a callback"))?
            .query_row([id], decode)
            .optional()
            .map_err(backend("reading a callback"))?;
        row.transpose()
    }

    fn ping(&mut self) -> Result<(), StoreError> {
        if identity(&self.path) != Some(self.identity) {
            return Err(StoreError::FileGone(self.path.display().to_string()));
        }
        self.conn
            .query_row("SELECT COUNT(*) FROM estimators", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(backend("checking the store"))?;
        Ok(())
    }

    fn prune_refusals(&mut self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        self.conn
            .execute("DELETE FROM refusals WHERE at < ?1", [ms(before)])
            .map_err(backend("pruning refusals"))
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
        let op = "reading call records";
        let map = |r: &Row| -> rusqlite::Result<(String, i64, String)> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        };
        let rows: Vec<(String, i64, String)> = match after {
            None => self
                .conn
                .prepare_cached(
                    "SELECT id, ended_at, record FROM call_records \
                     WHERE org = ?1 AND ended_at >= ?2 AND ended_at < ?3 \
                     ORDER BY ended_at, id LIMIT ?4",
                )
                .map_err(backend(op))?
                .query_map(params![org, ms(from), ms(to), limit as i64], map)
                .map_err(backend(op))?
                .collect::<rusqlite::Result<_>>(),
            Some(c) => self
                .conn
                .prepare_cached(
                    "SELECT id, ended_at, record FROM call_records \
                     WHERE org = ?1 AND ended_at >= ?2 AND ended_at < ?3 \
                     AND (ended_at, id) > (?4, ?5) \
                     ORDER BY ended_at, id LIMIT ?6",
                )
                .map_err(backend(op))?
                .query_map(
                    params![org, ms(from), ms(to), ms(c.ended_at), c.id, limit as i64],
                    map,
                )
                .map_err(backend(op))?
                .collect::<rusqlite::Result<_>>(),
        }
        .map_err(backend(op))?;
        let next = match rows.last() {
            Some((id, ended, _)) if rows.len() == limit => Some(RecordCursor {
                ended_at: from_ms(*ended),
                id: id.clone(),
            }),
            _ => None,
        };
        Ok(RecordPage {
            records: rows.into_iter().map(|(_, _, json)| json).collect(),
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::record::CallRecord;
    use crate::store::tests::{drain, engine, entry, register, t0};

    #[test]
    fn a_second_process_cannot_open_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SqliteStore::open(dir.path()).unwrap();
        let short = std::time::Duration::from_millis(50);
        let err = SqliteStore::open_with_busy_timeout(dir.path(), short).unwrap_err();
        assert!(err.to_string().contains("another holdless"), "{err}");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SqliteStore::open(dir.path()).unwrap();
            s.conn.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = SqliteStore::open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::NewerSchema {
                    found: 99,
                    supported: 5
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_deleted_file_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(dir.path()).unwrap();
        s.ping().unwrap();
        std::fs::remove_file(s.path()).unwrap();
        assert!(matches!(s.ping(), Err(StoreError::FileGone(_))));
        let mut e = engine();
        register(&mut e, 1);
        assert!(s.apply(&drain(&mut e)).is_err());
    }

    #[test]
    fn a_version_1_store_is_migrated_and_keeps_its_callbacks() {
        let dir = tempfile::tempdir().unwrap();
        let a = {
            let mut s = SqliteStore::open(dir.path()).unwrap();
            let mut e = engine();
            let a = register(&mut e, 1);
            s.apply(&drain(&mut e)).unwrap();
            // Back to what version 1 wrote.
            s.conn
                .execute_batch(
                    "DROP TABLE punctuality_recheck; \
                     ALTER TABLE callbacks RENAME COLUMN processed_at TO actual_callback_time; \
                     DROP TABLE call_records; ALTER TABLE callbacks DROP COLUMN inbound; \
                     ALTER TABLE callbacks DROP COLUMN retry_created_at; \
                     ALTER TABLE callbacks DROP COLUMN launched_by; \
                     PRAGMA user_version = 1;",
                )
                .unwrap();
            a
        };
        let mut s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(s.load().unwrap().callbacks, [a]);
        s.apply(&[entry("acme", "r", "2026-01-14T03:00:00Z")])
            .unwrap();
    }

    /// A version 2 store held `estimatePercentAccuracy` as a percentage and `wasPunctual`
    /// as "not late"; version 3 holds a fraction and "within the tolerance either way".
    #[test]
    fn a_version_2_store_is_migrated_to_mindful_values() {
        let dir = tempfile::tempdir().unwrap();
        let (early, late) = {
            let mut s = SqliteStore::open(dir.path()).unwrap();
            let mut e = engine();
            let early = register(&mut e, 1);
            let late = register(&mut e, 2);
            let rec = |id: &str, punctuality: i64, accuracy: f64| {
                let Write::Record(mut r) = entry("acme", id, "2026-01-14T10:30:00Z") else {
                    unreachable!()
                };
                r.record.punctuality = Some(punctuality);
                r.record.was_punctual = Some(punctuality <= 120);
                r.record.estimate_percent_accuracy = Some(accuracy);
                Write::Record(r)
            };
            let mut w = drain(&mut e);
            w.push(rec("r-early", -300, 16.7));
            w.push(rec("r-slightly-early", -30, 95.0));
            w.push(rec("r-late", 200, 0.0));
            s.apply(&w).unwrap();
            // Back to what version 2 wrote: the launch instant in `actual_callback_time`,
            // a percentage, and "punctual" for any early launch.
            s.conn
                .execute_batch(&format!(
                    "DROP TABLE punctuality_recheck; \
                     ALTER TABLE callbacks RENAME COLUMN processed_at TO actual_callback_time; \
                     UPDATE callbacks SET actual_callback_time = {launch}, punctuality_secs = -300, \
                       was_punctual = 1, estimate_accuracy = 85.1 WHERE id = '{early}'; \
                     UPDATE callbacks SET actual_callback_time = {launch}, punctuality_secs = 30, \
                       was_punctual = 1, estimate_accuracy = 50.0 WHERE id = '{late}'; \
                     ALTER TABLE callbacks DROP COLUMN retry_created_at; \
                     ALTER TABLE callbacks DROP COLUMN launched_by; \
                     PRAGMA user_version = 2;",
                    launch = ms(t0() + chrono::Duration::seconds(60)),
                    early = early.id,
                    late = late.id,
                ))
                .unwrap();
            (early, late)
        };
        let mut s = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let p = |s: &mut SqliteStore, id: &str| s.get(id).unwrap().unwrap().punctuality.unwrap();
        let pe = p(&mut s, &early.id);
        assert_eq!(pe.processed_at, t0() + chrono::Duration::seconds(60));
        assert_eq!(pe.estimate_percent_accuracy, 0.851);
        assert!(
            pe.was_punctual,
            "rechecked at start-up, not by the migration"
        );
        // The tolerance is configuration: the service passes it in at start-up.
        let unknown = s.recheck_punctuality(&|_: &str| None).unwrap();
        assert_eq!(unknown, 0, "call targets not configured wait");
        let n = s
            .recheck_punctuality(&|t: &str| (t == "billing").then_some(120))
            .unwrap();
        assert_eq!(n, 2, "the callback and the record launched 300 s early");
        assert!(!p(&mut s, &early.id).was_punctual);
        let pl = p(&mut s, &late.id);
        assert_eq!((pl.was_punctual, pl.estimate_percent_accuracy), (true, 0.5));
        let (from, to) = (
            DateTime::parse_from_rfc3339("2026-01-14T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            DateTime::parse_from_rfc3339("2026-01-14T11:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        let page = s.records_page("acme", from, to, None, 10).unwrap();
        let recs: Vec<serde_json::Value> = page
            .records
            .iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect();
        let get = |id: &str| recs.iter().find(|r| r["id"] == id).unwrap().clone();
        assert_eq!(get("r-early")["wasPunctual"], false);
        assert_eq!(get("r-early")["estimatePercentAccuracy"], 0.167);
        assert_eq!(get("r-slightly-early")["wasPunctual"], true);
        assert_eq!(get("r-slightly-early")["estimatePercentAccuracy"], 0.95);
        assert_eq!(get("r-late")["wasPunctual"], false);
        assert_eq!(get("r-late")["estimatePercentAccuracy"], 0.0);
        // Done once: a second recheck finds nothing.
        assert_eq!(s.recheck_punctuality(&|_: &str| Some(0)).unwrap(), 0);
        // Every record still parses as a record.
        for r in &page.records {
            serde_json::from_str::<CallRecord>(r).unwrap();
        }
    }
}

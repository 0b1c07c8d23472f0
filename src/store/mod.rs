//! Durable storage of callbacks behind one trait: [`sqlite::SqliteStore`] (one file, the
//! embedded default) or [`postgres::PostgresStore`] (a database that several holdless
//! nodes can share), chosen by [`Location`] (`store.url`).
//!
//! The trait is synchronous on purpose: the callback service calls it from its own thread,
//! in batches (group commit), so the store never blocks the async runtime and an
//! implementation is free to use a blocking client.

pub mod postgres;
pub mod row;
pub mod sqlite;
pub mod testing;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::callback::ecbt::Estimator;
use crate::callback::engine::Write;
use crate::callback::Callback;

/// Where the callback store lives (`[store]`: `url`, or `data_dir` alone).
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (`sqlite://path`, or `holdless.sqlite3` in `data_dir`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://…` or `postgresql://…`).
    Postgres(String),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "{self}")
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Location::Postgres(url) => f.write_str(&postgres::redacted(url)),
        }
    }
}

impl Location {
    /// The location a `store.url` names; `Err` says what is wrong with it.
    pub fn parse(url: &str) -> Result<Location, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path.ends_with('/') {
                return Err(format!(
                    "{url:?} names no file (sqlite://data/holdless.sqlite3)"
                ));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return match <tokio_postgres::Config as std::str::FromStr>::from_str(url) {
                Ok(_) => Ok(Location::Postgres(url.to_owned())),
                Err(e) => Err(format!("not a PostgreSQL URL: {e}")),
            };
        }
        Err("must start with sqlite:// or postgres://".into())
    }

    /// Opens (creating or migrating) the store.
    pub fn open(&self) -> Result<Box<dyn Store>, StoreError> {
        Ok(match self {
            Location::Sqlite(file) => Box::new(sqlite::SqliteStore::open_file(file)?),
            Location::Postgres(url) => Box::new(postgres::PostgresStore::open(url)?),
        })
    }
}

/// What the engine needs to resume after a restart.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every active callback (pending, waitlisted, in progress).
    pub callbacks: Vec<Callback>,
    /// Learned ECBT state per call target.
    pub estimators: Vec<(String, Estimator)>,
    /// The highest callback sequence number ever stored (0 when empty).
    pub max_seq: u64,
}

/// Where a page of call records ended: the last record's `(endedAt, id)`. The next page
/// starts strictly after it (keyset paging: no offset, no record seen twice or skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCursor {
    /// The last record's `endedAt`.
    pub ended_at: DateTime<Utc>,
    /// The last record's id.
    pub id: String,
}

/// One page of an organization's call records in a time window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordPage {
    /// The records' JSON, as stored, in `(endedAt, id)` order.
    pub records: Vec<String>,
    /// Where to continue; `None` when this page was the last.
    pub next: Option<RecordCursor>,
}

/// Most call records one page may hold (the API asks for [`RECORD_PAGE`]).
pub const MAX_RECORD_PAGE: usize = 5000;

/// Call records per page of the historical API: a few hundred kilobytes of JSON, so an
/// hour of any size is served in bounded memory.
pub const RECORD_PAGE: usize = 500;

/// A store that cannot do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or created.
    #[error("cannot open the store at {path}: {message}")]
    Open {
        /// Where.
        path: String,
        /// Why.
        message: String,
    },
    /// This node no longer leads: another node writes callbacks now.
    #[error("this node no longer leads the callback engine (another node took over)")]
    NotLeader,
    /// The database was written by a newer holdless.
    #[error("the store's schema version {found} is newer than this holdless supports ({supported}); upgrade holdless")]
    NewerSchema {
        /// Version in the database.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The database file is gone or was replaced while holdless ran (writes would be lost).
    #[error("the store file {0} was removed or replaced while holdless was running")]
    FileGone(String),
    /// A query failed.
    #[error("store {op} failed: {message}")]
    Backend {
        /// What was being done.
        op: &'static str,
        /// The driver's message.
        message: String,
    },
    /// A stored row could not be decoded.
    #[error("stored callback {id} is unreadable: {what}")]
    Corrupt {
        /// Row id.
        id: String,
        /// What was wrong.
        what: String,
    },
}

/// This node as it announces itself to the others (several nodes on one database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBeat {
    /// The node's configured id (`[cluster] node_id`).
    pub id: String,
    /// This run of the node (random at start-up): a restarted node is a new instance.
    pub instance: i64,
    /// Where the other nodes forward callback requests to (the admin listener).
    pub admin: Option<String>,
    /// How long leadership lasts without a heartbeat.
    pub lease: std::time::Duration,
    /// Whether this node is willing to lead (false while it drains: it lets go at once).
    pub lead: bool,
    /// Whether this node takes callback launches (it has a dialler and is not draining).
    pub dials: bool,
}

/// Another live node that takes callback launches from the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialler {
    /// Its node instance (what the leader stamps on the callbacks it hands it).
    pub instance: i64,
    /// Its admin listener (host:port), where launches are sent.
    pub admin: String,
}

/// Who leads the callback engine, as the store says after a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// This node (this instance) leads.
    pub me: bool,
    /// The leader's node id and admin address, when another node leads.
    pub other: Option<(String, Option<String>)>,
    /// The node instances alive (heartbeat within the lease), this one included.
    pub live: Vec<i64>,
    /// The other live nodes that dial, with an admin address (by node id).
    pub diallers: Vec<Dialler>,
}

impl Leadership {
    /// A store used by one node only (SQLite): it always leads.
    pub fn alone() -> Leadership {
        Leadership {
            me: true,
            other: None,
            live: Vec::new(),
            diallers: Vec::new(),
        }
    }
}

/// Durable storage of the callback engine's state.
pub trait Store: Send {
    /// Announces this node and takes, keeps or gives up the lead. Once this node leads,
    /// [`Store::apply`] writes only while it still does (a node that lost the lead,
    /// paused past its lease, cannot overwrite the new leader's state). A store of one
    /// node always leads.
    fn heartbeat(&mut self, me: &NodeBeat) -> Result<Leadership, StoreError> {
        let _ = me;
        Ok(Leadership::alone())
    }

    /// Makes every write durable in one transaction: all of them or none.
    fn apply(&mut self, writes: &[Write]) -> Result<(), StoreError>;
    /// What the engine needs to resume.
    fn load(&mut self) -> Result<Snapshot, StoreError>;
    /// A callback by id, whatever its status.
    fn get(&mut self, id: &str) -> Result<Option<Callback>, StoreError>;
    /// Whether the store answers and its file is still the one in use.
    fn ping(&mut self) -> Result<(), StoreError>;
    /// Deletes refusal records older than `before`; how many went.
    fn prune_refusals(&mut self, before: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Up to `limit` (at most [`MAX_RECORD_PAGE`]) of an organization's call records that
    /// ended in `[from, to)`, after `after`, in `(endedAt, id)` order.
    fn records_page(
        &mut self,
        org: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        after: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<RecordPage, StoreError>;
    /// Rechecks `wasPunctual` of early launches stored before it meant "within the
    /// tolerance either way" (schema 3): `tolerance` gives a call target's
    /// `punctual_within_secs` (`None`: not configured, left for later). Returns how many
    /// were found unpunctual.
    fn recheck_punctuality(
        &mut self,
        tolerance: &dyn Fn(&str) -> Option<u64>,
    ) -> Result<usize, StoreError>;
}

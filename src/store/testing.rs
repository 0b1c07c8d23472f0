//! Databases of their own for tests on PostgreSQL (the store behaviour suite, the server
//! tests): created on the server at `HOLDLESS_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and dropped, with their sessions, when
//! the [`TestDb`] goes.
//!
//! Where no server answers, [`TestDb::create`] prints why the case is skipped and returns
//! `None`, unless `HOLDLESS_REQUIRE_PG=1` (set by `.ci/run`): then it fails the case.

use std::sync::atomic::{AtomicU32, Ordering};

/// Where the PostgreSQL cases find a server.
pub fn admin_url() -> String {
    std::env::var("HOLDLESS_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of one case's own, dropped (with its sessions) at the end of the case.
pub struct TestDb {
    name: String,
    url: String,
}

/// Runs `sql` on the server's admin database (on a thread of its own: callable from
/// async tests too).
pub fn admin(sql: String) -> Result<(), String> {
    std::thread::spawn(move || admin_here(&sql))
        .join()
        .unwrap_or_else(|_| Err("the admin thread panicked".into()))
}

fn admin_here(sql: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut cfg: tokio_postgres::Config = admin_url().parse().map_err(|e| format!("{e}"))?;
        cfg.connect_timeout(std::time::Duration::from_secs(3));
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| super::postgres::describe(&e))?;
        tokio::spawn(conn);
        client
            .batch_execute(sql)
            .await
            .map_err(|e| super::postgres::describe(&e))
    })
}

impl TestDb {
    /// A fresh database, or `None` (the case is skipped) where no PostgreSQL answers.
    pub fn create(case: &str) -> Option<TestDb> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "holdless_t{}_{}_{case}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        match admin(format!("CREATE DATABASE {name}")) {
            Ok(()) => {}
            Err(e) if std::env::var("HOLDLESS_REQUIRE_PG").is_ok_and(|v| v == "1") => {
                panic!(
                    "PostgreSQL is required (HOLDLESS_REQUIRE_PG=1) but {}: {e}",
                    admin_url()
                )
            }
            Err(e) => {
                eprintln!(
                    "SKIPPED {case} on PostgreSQL: no server answers at {} ({e}); \
                     set HOLDLESS_REQUIRE_PG=1 to make this a failure",
                    admin_url()
                );
                return None;
            }
        }
        let mut url = admin_url();
        let slash = url.rfind('/').unwrap();
        url.truncate(slash + 1);
        url.push_str(&name);
        Some(TestDb { name, url })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Lets sessions connect to the database, or refuses every new one (with
    /// [`TestDb::terminate_sessions`]: a database out of reach).
    pub fn allow_connections(&self, allowed: bool) {
        admin(format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {allowed}",
            self.name
        ))
        .unwrap();
    }

    /// Ends every session on the database (a restarted server, a cut connection).
    pub fn terminate_sessions(&self) {
        admin(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.name
        ))
        .unwrap();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Err(e) = admin(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

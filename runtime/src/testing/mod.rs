//! Throwaway, fully migrated databases for tests, in constant time whatever
//! the number of migrations (feature `testing`).
//!
//! The migrations run once per migration set, into a template named by the
//! set's chain head; each test then gets a copy:
//!
//! - PostgreSQL: `CREATE DATABASE … TEMPLATE …`;
//! - MySQL/MariaDB: the template schema's tables (with their rows), views,
//!   triggers and routines recreated from their own definitions;
//! - SQLite: a copy of the template file.
//!
//! On PostgreSQL and MySQL a copy takes about what creating that many tables
//! takes, so a passing test's database is not dropped but reset to the
//! template's state and kept as a spare for the next test, which claims it
//! at once (PostgreSQL renames it; MySQL drops the table that marks it, and
//! records the claim in `stowage_claims.owners` for [`cleanup()`]). The reset
//! finds what the test wrote (PostgreSQL 15 and later: the server's row
//! statistics, flushed as the test's sessions end; MySQL: `CHECKSUM TABLE`
//! and `AUTO_INCREMENT` against the template schema), deletes it, puts back
//! the template's rows and sequence values, and checks the result against
//! the template; DDL, or anything it cannot put back exactly, and the
//! database is dropped instead (the reset modules say how, and what they
//! do not see: settings made with `ALTER DATABASE … SET` are checked,
//! ownership and connection limits are not). Where a copy is slow (over 100
//! ms), a test that had to make its own also starts a spare copy, in a
//! thread of its own, for a later test; dropping a [`TestDb`] does not wait
//! for it. A test that finds a spare ready gets its database in a few
//! milliseconds, whatever the number of migrations.
//! `STOWAGE_TEST_SPARES` sets how many spares to keep ready per template
//! (default: the number of CPUs, at most 8); `0` turns spares and resets
//! off: every test copies the template and drops its copy. Spares are
//! ordinary test databases named `stowage_test_…` that stay on the server
//! for the next run of the suite.
//!
//! Every database stowage makes carries the tag of the project that made it
//! (a hash of the host and of the crate's folder), and stowage only ever
//! drops its own project's. The first test database a process makes on a
//! server sweeps what earlier runs left: the template of the same migrations
//! folder's earlier set and the spares of sets without a template, the
//! databases of test processes that are gone (a run stopped with Ctrl-C),
//! and, with `STOWAGE_TEST_DROP_KEPT=1`, those kept by failing tests, which
//! it otherwise lists.
//!
//! The server comes from `STOWAGE_TEST_DATABASE_URL`, else `DATABASE_URL`;
//! without either, SQLite files in the temporary folder. (`#[test]`'s
//! `server = "ENV_VAR"` names another variable for its test; a test that
//! takes a `SqlitePool` gets SQLite files whatever the server.) Any `sqlite:` URL
//! (`sqlite::memory:` included) means files there: copying a template file
//! takes about a millisecond, and a file outlives its connections, so a
//! failing test's database can be kept. A test's database is reset or
//! dropped when its [`TestDb`] is dropped, before the drop returns (on a
//! worker of a multi-thread tokio runtime, the worker's other tasks move to
//! another worker meanwhile), unless the test failed: then it is
//! kept, renamed `stowage_kept_…` (on MySQL, where a schema cannot be
//! renamed, recorded as kept in `stowage_claims.owners`), and its name
//! printed, for a look after the fact. [`kept_databases`] lists them;
//! `STOWAGE_TEST_DROP_KEPT=1 cargo test` drops them at the start of the run,
//! and [`cleanup()`] by age.
//!
//! ```no_run
//! static MIGRATOR: stowage::Migrator = stowage::embed_migrations!();
//!
//! #[stowage::test(migrator = "MIGRATOR")]
//! async fn creates_a_todo(pool: sqlx::AnyPool) {
//!     sqlx::query("INSERT INTO todos (title) VALUES ('write tests')")
//!         .execute(&pool)
//!         .await
//!         .unwrap();
//! }
//! ```

use crate::connect::redact;
use crate::{Dialect, Error, Migrator};
use std::time::Duration;

/// Run statements of stowage's own making (every name in them generated
/// here) on a maintenance connection; the error names the step. A macro: a
/// generic async fn over sqlx executors would cost its callers' futures their
/// `Send` (rust-lang/rust#100013; `tests/tests/send.rs`).
macro_rules! run {
    ($conn:expr, $sql:expr, $what:expr, $server:expr) => {
        sqlx::raw_sql(sqlx::AssertSqlSafe($sql))
            .execute($conn)
            .await
            .map(drop)
            .map_err($crate::testing::server::test_error($what, $server))
    };
}

/// A query of stowage's own on a maintenance connection (`Maint`):
/// `sqlx::$query($sql)` with `binds` bound in order, then `.$fetch`; the
/// error names the step and the server. A macro, as [`run!`] is.
macro_rules! fetch {
    ($m:expr, $query:ident, $fetch:ident, $sql:expr, [$($bind:expr),* $(,)?], $what:expr) => {
        sqlx::$query($sql)
            $(.bind($bind))*
            .$fetch(&mut $m.conn)
            .await
            .map_err($crate::testing::server::test_error($what, &$m.server))
    };
}

/// The one value a query of stowage's own returns: [`fetch!`] of
/// `query_scalar` and `fetch_one`.
macro_rules! scalar {
    ($m:expr, $sql:expr, [$($bind:expr),* $(,)?], $what:expr) => {
        fetch!($m, query_scalar, fetch_one, $sql, [$($bind),*], $what)
    };
}

mod cleanup;
mod flow;
#[doc(hidden)]
pub mod harness;
mod mysql;
mod names;
mod postgres;
mod reuse_mysql;
mod reuse_postgres;
mod schema_file;
mod server;
mod spares;
mod sqlite;

pub use cleanup::{cleanup, kept_databases};
pub use names::{server_from_env, template_name};
pub use schema_file::{UPDATE_VAR, check_schema_file, check_schema_snapshot};

/// A fresh database for one test, migrated to head (or empty).
#[derive(Debug)]
pub struct TestDb {
    dialect: Dialect,
    server: String,
    name: String,
    url: String,
    keep: bool,
    /// Whether the database may exist on the server: not before a failed
    /// `on` reached it, so that dropping that value connects nowhere.
    created: bool,
    /// The spare copy being made for a later test, not waited for on drop.
    refill: Option<std::thread::JoinHandle<()>>,
    /// The template it is a copy of (empty for an empty database).
    template: String,
    /// How many spares to keep ready (0: none, and no reset).
    spares: usize,
    /// What a reset at the end needs to know (PostgreSQL: the first
    /// transaction id the test may have used); without it, no reset.
    since: Option<String>,
    /// How long its copy took, if it is a new copy (not a spare claimed).
    copied: Option<Duration>,
}

impl TestDb {
    /// A fresh database on the server from the environment
    /// ([`server_from_env`]), migrated to head.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached, the user may not create databases,
    /// or the migrations fail.
    pub async fn new(migrator: &Migrator) -> Result<TestDb, Error> {
        TestDb::on(&server_from_env(), migrator).await
    }

    /// A fresh database on `server`, migrated to head.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub async fn on(server: &str, migrator: &Migrator) -> Result<TestDb, Error> {
        let spares = spares::wanted()?;
        let (mut db, kind) = TestDb::named(server)?;
        let template = template_name(migrator, db.dialect)?;
        db.spares = spares;
        // Make sure of the template, then claim a spare copy or make one.
        let wanted = server::Wanted {
            template: &template,
            migrator,
            claim: spares > 0,
        };
        let copied = kind.create(&mut db, wanted).await?;
        cleanup::at_start(kind, server, &template).await;
        db.copied = copied;
        if spares::pay(spares, kind, copied) {
            db.refill = spares::start_refill(kind, server, &template, spares);
        }
        db.template = template;
        Ok(db)
    }

    /// A fresh, empty database on `server`, with the same life cycle.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the user may not create databases.
    pub async fn empty_on(server: &str) -> Result<TestDb, Error> {
        let (mut db, kind) = TestDb::named(server)?;
        kind.create_empty(&mut db).await?;
        Ok(db)
    }

    /// Name and URL of a new test database, and its server's kind; nothing
    /// created yet.
    fn named(server: &str) -> Result<(TestDb, &'static dyn server::TestServer), Error> {
        let dialect = names::dialect_of(server)?;
        let kind = server::of(dialect)?;
        let name = names::new_name();
        let db = TestDb {
            dialect,
            server: server.to_owned(),
            url: kind.database_url(server, &name)?,
            name,
            keep: false,
            created: false,
            refill: None,
            template: String::new(),
            spares: 0,
            since: None,
            copied: None,
        };
        Ok((db, kind))
    }

    /// The database's URL (with its password, for connecting).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name (for SQLite, the file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A new pool on the database: `PgPool`, `MySqlPool`, `SqlitePool` or `AnyPool`.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached.
    pub async fn pool<DB: crate::Backend>(&self) -> Result<sqlx::Pool<DB>, Error> {
        let options = crate::ConnectOptions::default()
            .timeout(Duration::from_secs(10))
            .create_database(false);
        crate::connect_with(&self.url, options).await
    }

    /// Wait for the spare copy this test started, if any (a benchmark's
    /// way to count the server's whole work per test).
    #[doc(hidden)]
    pub fn wait_for_spare(&mut self) {
        if let Some(refill) = self.refill.take() {
            let _ = refill.join();
        }
    }

    /// Keep the database when this value is dropped, and print its name.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

/// Waits for `thread`, the work of a drop. On a multi-thread runtime's
/// worker the runtime is told first, so that the worker's other tasks (other
/// tests, with timeouts of their own) move to another worker rather than
/// wait for this drop's reset.
fn join<T>(thread: std::thread::JoinHandle<T>) -> std::thread::Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| thread.join())
        }
        _ => thread.join(),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.name.is_empty() || !self.created {
            // Moved into the test by `#[stowage::test]`, or never made.
            return;
        }
        // The spare this test started goes on being made, beside the next
        // test, without this one waiting for it. One a process leaves
        // half-made as it exits is swept by the next run.
        drop(self.refill.take());
        let (dialect, server, name) = (self.dialect, self.server.clone(), self.name.clone());
        if self.keep || std::thread::panicking() {
            // Drop runs in sync code, perhaps inside a runtime: use a thread of our own.
            let kept = join(std::thread::spawn(move || {
                let kind = server::of(dialect)?;
                let name =
                    server::block_on(async { Ok(cleanup::keep(kind, &server, &name).await) })?;
                Ok::<_, Error>((kind.database_url(&server, &name)?, name))
            }));
            let (url, name) = match kept {
                Ok(Ok(kept)) => kept,
                _ => (self.url.clone(), self.name.clone()),
            };
            eprintln!(
                "stowage: kept the database of a failing test: {name} ({}); \
                 `STOWAGE_TEST_DROP_KEPT=1 cargo test` drops the kept ones at the start of the run",
                redact(&url)
            );
            return;
        }
        let finished = server::Finished {
            server,
            name,
            template: std::mem::take(&mut self.template),
            since: self.since.take(),
        };
        let spares = self.spares;
        let copied = self.copied;
        let dropped = join(std::thread::spawn(move || {
            server::block_on(async {
                let kind = server::of(dialect)?;
                // Reset for the next test when it can be; else dropped.
                let reset = spares > 0
                    && !finished.template.is_empty()
                    && kind.reset_pays(copied)
                    && kind.recycle(&finished, spares).await.unwrap_or(false);
                if reset {
                    return Ok(());
                }
                kind.drop_database(&finished.server, &finished.name).await
            })
        }));
        if let Ok(Err(error)) = dropped {
            eprintln!(
                "stowage: could not drop the test database {}: {error}",
                self.name
            );
        }
    }
}

/// The schema of a copy of `migrator`'s test-database template on
/// `server`, when the template is there: what
/// [`Migrator::expected_schema`] at the head reads instead of migrating a
/// scratch database. `None` when there is none, or it cannot be copied.
pub(crate) async fn template_schema(
    migrator: &Migrator,
    server: &str,
    dialect: crate::Dialect,
) -> Option<crate::Schema> {
    let kind = server::of(dialect).ok()?;
    let template = names::template_name(migrator, dialect).ok()?;
    let name = names::new_name();
    match kind.copy_template(server, &template, &name).await {
        Ok(true) => {}
        Ok(false) => return None,
        Err(error) => {
            tracing::debug!(%error, "the test-database template is not used");
            let _ = kind.drop_database(server, &name).await;
            return None;
        }
    }
    let url = kind.database_url(server, &name).ok();
    let schema = match url {
        Some(url) => match crate::connect::<sqlx::Any>(&url).await {
            Ok(pool) => {
                let schema = migrator.dump(&pool).await.ok();
                pool.close().await;
                schema
            }
            Err(_) => None,
        },
        None => None,
    };
    let _ = kind.drop_database(server, &name).await;
    schema
}

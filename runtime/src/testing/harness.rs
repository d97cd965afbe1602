//! Plumbing for `#[stowage::test]`: what a test function may take and
//! return, and `run`, which the attribute's expansion calls.

use super::TestDb;
use crate::{Error, Migrator};

/// What a `#[stowage::test]` function can take.
pub trait FromTestDb: Sized {
    fn from_test_db(db: &mut TestDb) -> impl Future<Output = Result<Self, Error>>;
    /// The dialect the test needs (its pool's), when it needs one.
    fn dialect() -> Option<crate::Dialect> {
        None
    }
}

impl<DB: crate::Backend> FromTestDb for sqlx::Pool<DB> {
    async fn from_test_db(db: &mut TestDb) -> Result<Self, Error> {
        db.pool().await
    }
    fn dialect() -> Option<crate::Dialect> {
        DB::DIALECT
    }
}

/// The test gets the `TestDb` itself; it is dropped (or kept) by the test.
impl FromTestDb for TestDb {
    async fn from_test_db(db: &mut TestDb) -> Result<Self, Error> {
        // The shell left behind, with no name, drops nothing.
        let name = std::mem::take(&mut db.name);
        Ok(TestDb {
            dialect: db.dialect,
            server: db.server.clone(),
            url: db.url.clone(),
            name,
            keep: false,
            created: db.created,
            refill: db.refill.take(),
            template: db.template.clone(),
            spares: db.spares,
            since: db.since.take(),
            copied: db.copied,
        })
    }
}

/// Make spare copies ahead only after copies slower than `threshold` (100
/// ms unless set): the tests of spares set it.
pub fn copy_ahead_after(threshold: std::time::Duration) {
    super::spares::copy_ahead_after(threshold);
}

/// On MySQL, reset finished tests' databases whose copy took `threshold` or
/// more (50 ms unless set); quicker ones are dropped: the tests of resets
/// set it.
pub fn reset_after(threshold: std::time::Duration) {
    super::spares::reset_after(threshold);
}

/// What a test function may return: `()` or a `Result`.
pub trait TestResult {
    fn failure(self) -> Option<String>;
}

impl TestResult for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Debug> TestResult for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| format!("{e:?}"))
    }
}

/// Run one test: a migrated database, the argument, the body. The server
/// comes from the environment variable `server_env` when given.
#[allow(clippy::panic)]
pub fn run<T, F, Fut>(migrator: &Migrator, server_env: Option<&str>, test: F)
where
    T: FromTestDb,
    F: FnOnce(T) -> Fut,
    Fut: Future,
    Fut::Output: TestResult,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("stowage: cannot start a Tokio runtime for the test: {error}"),
    };
    let server = match server_env {
        Some(var) => match std::env::var(var) {
            Ok(url) if !url.trim().is_empty() => url,
            _ => panic!(
                "stowage: {var} is not set; set it to the URL of a server this test may create databases on"
            ),
        },
        None => super::server_from_env(),
    };
    // A test that takes a SQLite pool gets SQLite files, whatever server
    // the suite's other tests use: a mixed suite needs no second variable.
    let server = match (T::dialect(), super::names::dialect_of(&server)) {
        (Some(crate::Dialect::Sqlite), Ok(found))
            if found != crate::Dialect::Sqlite && server_env.is_none() =>
        {
            "sqlite://".to_owned()
        }
        _ => server,
    };
    if let (Some(wanted), Ok(found)) = (T::dialect(), super::names::dialect_of(&server))
        && wanted != found
    {
        let (var, example) = match wanted {
            crate::Dialect::Postgres => ("PostgreSQL", "postgres://postgres@localhost/postgres"),
            crate::Dialect::MySql => ("MySQL or MariaDB", "mysql://root@localhost/mysql"),
            _ => ("SQLite", "sqlite://"),
        };
        let given = match server_env {
            Some(var) => format!("{var} names"),
            None if found == crate::Dialect::Sqlite
                && std::env::var_os("STOWAGE_TEST_DATABASE_URL").is_none()
                && std::env::var_os("DATABASE_URL").is_none() =>
            {
                "with neither STOWAGE_TEST_DATABASE_URL nor DATABASE_URL set, tests get".to_owned()
            }
            None => "the test server is".to_owned(),
        };
        panic!(
            "stowage: this test takes a {wanted} pool, but {given} a {found} database; set {} \
             to the URL of a {var} server this test may create databases on, e.g. {example}; \
             in a suite whose tests need servers of two kinds, give these tests a variable of \
             their own: #[stowage::test(server = \"ENV_VAR\")] (tests that take a SQLite pool \
             always get SQLite files)",
            server_env.unwrap_or("STOWAGE_TEST_DATABASE_URL")
        );
    }
    let mut db = match runtime.block_on(TestDb::on(&server, migrator)) {
        Ok(db) => db,
        Err(error) => panic!("stowage: cannot create the test database: {error}"),
    };
    let argument = match runtime.block_on(T::from_test_db(&mut db)) {
        Ok(argument) => argument,
        Err(error) => panic!(
            "stowage: cannot connect to the test database {}: {error}",
            db.name()
        ),
    };
    if let Some(failure) = runtime.block_on(test(argument)).failure() {
        db.keep();
        panic!("test failed: {failure}");
    }
    drop(runtime);
    drop(db);
}
